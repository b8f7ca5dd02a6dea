"""Layering: the query side never reaches the write side (the builder, ingest, upload).

Read from the source (every import, also those inside functions), so a lazy import that
would pull the builder into a server answering questions fails here too.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from index_helpers import cli_env

WRITE_SIDE = {"qa.build", "qa.text.ingest", "qa.web.upload", "qa.web.feeds", "qa.web.fetch", "qa.web.extract",
              "qa.web.store"}
QUERY_SIDE = ["qa.retriever", "qa.answer", "qa.serve.render", "qa.scoring", "qa.index.layout",
              "qa.index.manifest", "qa.index.generation", "qa.index.live", "qa.index.dense",
              "qa.index.vectors", "qa.index.lexical", "qa.index.db"]


def module_file(name: str) -> Path:
    path = ROOT.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imports(tree: ast.AST, top_level_only: bool = False) -> set[str]:
    """The qa modules a parsed file imports (`from qa.index import layout` -> qa.index.layout)."""
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            for alias in node.names:  # `from qa import scoring` names a module
                if module_file(f"{node.module}.{alias.name}").exists():
                    found.add(f"{node.module}.{alias.name}")
    return {name for name in found if name == "qa" or name.startswith("qa.")}


def closure(start: set[str]) -> dict[str, str]:
    """Every qa module reachable from `start` -> the module that first imported it."""
    seen: dict[str, str] = {name: "(start)" for name in start}
    todo = list(start)
    while todo:
        name = todo.pop()
        for child in imports(ast.parse(module_file(name).read_text())):
            if child not in seen:
                seen[child] = name
                todo.append(child)
    return seen


def test_the_checker_sees_a_lazy_import_of_the_builder():
    reached = closure({"qa.eval"})  # eval builds its index: it must be seen doing so
    assert "qa.build" in reached and "qa.text.ingest" in reached


@pytest.mark.parametrize("module", QUERY_SIDE)
def test_query_side_modules_do_not_reach_the_write_side(module):
    reached = closure({module})
    bad = {name: reached[name] for name in WRITE_SIDE & reached.keys()}
    assert not bad, f"{module} reaches the write side: {bad} (module: imported by)"


def test_the_page_answers_without_the_write_side_at_import():
    # app.py also manages the library: its upload and rebuild import the write side when
    # used. What it imports to start and to answer must not.
    tree = ast.parse(module_file("qa.serve.page").read_text())
    reached = closure(imports(tree, top_level_only=True))
    bad = {name: reached[name] for name in WRITE_SIDE & reached.keys()}
    assert not bad, f"app.py reaches the write side at import: {bad}"


ANSWER_THROUGH_THE_PAGE = """
import json, sys
from pathlib import Path
from qa.serve import page as app
from qa.config import Settings
from qa.embed import load_embedder
from qa.retriever import Retriever
settings = Settings(corpus_dir=Path(sys.argv[2]), index_dir=Path(sys.argv[3]))
embedder = load_embedder(settings)
page = app.Page(settings, embedder, Retriever.open(settings, embedder))
history, _ = page.chat("What hardware did the US export bans target?", [], 3, "hybrid")
print(json.dumps({"answer": history[-1]["content"],
                  "modules": sorted(m for m in sys.modules if m.startswith("qa"))}))
"""


@pytest.mark.slow
def test_a_question_through_the_page_loads_no_write_side_module(seed_settings):
    result = subprocess.run(
        [sys.executable, "-c", ANSWER_THROUGH_THE_PAGE, str(ROOT), str(seed_settings.corpus_dir),
         str(seed_settings.index_dir)],
        cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert "<mark>" in out["answer"] and "Nvidia GPUs" in out["answer"]
    assert "qa.retriever" in out["modules"]
    assert not WRITE_SIDE & set(out["modules"]), out["modules"]
