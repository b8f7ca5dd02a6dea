"""The import rules of docs/ARCHITECTURE.md, enforced.

Read from the source: every import counts, also those inside functions (a lazy import that
would pull the builder into a server answering questions fails here too) and typing-only
ones. Only the cycle check and the import-time check look at the imports that run.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from conftest import ROOT
from index_helpers import cli_env

# The write side: what reads corpus files, fetches, builds and trains.
WRITE_SIDE_PACKAGES = ("qa.text", "qa.web")
WRITE_SIDE_MODULES = {"qa.build", "qa.index.writer", "qa.reader.train", "qa.reader.mine",
                      "qa.reader.followups", "qa.reader.export"}
# The query side: question -> Hits -> Quotes, and the index readers it opens.
QUERY_SIDE = ["qa", "qa.types", "qa.config", "qa.errors", "qa.dates", "qa.retriever",
              "qa.scoring", "qa.answer", "qa.followup", "qa.embed", "qa.embed.onnx", "qa.embed.transformer",
              "qa.embed.late", "qa.reader", "qa.reader.model", "qa.reader.rerank",
              "qa.index", "qa.index.layout", "qa.index.manifest", "qa.index.generation",
              "qa.index.live", "qa.index.dense", "qa.index.vectors", "qa.index.lexical",
              "qa.index.db", "qa.index.selection"]
# Package -> the qa packages and modules it may not import (directly or through others).
FORBIDDEN = {
    # Storage only: no corpus files, no chunking, no models, no pipeline.
    "qa.index": ("qa.text", "qa.embed", "qa.build", "qa.web", "qa.serve", "qa.retriever",
                 "qa.reader"),
    # Text is pure values in, values out: it never reaches the index, a model or the web.
    "qa.text": ("qa.index", "qa.embed", "qa.build", "qa.web", "qa.serve", "qa.retriever",
                "qa.reader", "qa.eval"),
    # Intake into the corpus folder; indexing what it stored is the Library's (qa.serve).
    "qa.web": ("qa.serve", "qa.build", "qa.index", "qa.embed", "qa.retriever", "qa.reader",
               "qa.eval"),
    # The Embedder seam knows no corpus, index or face.
    "qa.embed": ("qa.text", "qa.index", "qa.build", "qa.web", "qa.serve", "qa.retriever",
                 "qa.reader"),
    # The pipeline builds from the corpus folder; it knows no face and no fetching.
    "qa.build": ("qa.serve", "qa.web"),
}
# Heavy libraries: the modules that may import them. Loaded lazily: importing the package
# and its faces loads none of them (the last test).
HEAVY = {
    "faiss": {"qa.index.dense"},
    "sentence_transformers": {"qa.embed.transformer", "qa.reader.train"},
    "transformers": {"qa.embed.transformer", "qa.reader.export"},
    "torch": {"qa.embed.transformer", "qa.embed.onnx", "qa.reader.export", "qa.reader.train"},
    "onnxruntime": {"qa.embed.onnx", "qa.reader.model"},
    "tokenizers": {"qa.embed.onnx", "qa.reader.model"},
    "bm25s": {"qa.index.lexical"},
    "Stemmer": {"qa.index.lexical"},
    "gradio": {"qa.serve.ui", "qa.serve.page", "qa.serve.server"},
    "fastapi": {"qa.serve.api"},
    "uvicorn": {"qa.serve.api"},
    "httpx": {"qa.web.fetch"},
    "feedparser": {"qa.web.extract"},
    "trafilatura": {"qa.text.ingest", "qa.web.extract"},
    "ray": {"qa.embed.ray_engine", "qa.embed.ray_connect"},
    "watchdog": {"qa.serve.watch"},
    "blingfire": {"qa.text.chunk"},
    "datasets": {"qa.reader.train"},
}


def module_file(name: str) -> Path:
    path = ROOT.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def all_modules() -> list[str]:
    names = []
    for path in sorted((ROOT / "qa").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _walk(nodes: list[ast.stmt], top_level_only: bool, typing: bool):
    """Import statements among `nodes`: all, or only those that run when the module is
    imported (module level, not under `if TYPE_CHECKING`); `typing` keeps typing-only ones."""
    todo = list(nodes)
    while todo:
        node = todo.pop()
        if _is_type_checking(node) and not typing:
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif top_level_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                  ast.ClassDef, ast.Lambda)):
            continue
        todo.extend(ast.iter_child_nodes(node))


@cache
def imports(name: str, top_level_only: bool = False, typing: bool = True) -> frozenset[str]:
    """The qa modules a module imports (`from qa.index import layout` -> qa.index.layout)."""
    return _imports_of(ast.parse(module_file(name).read_text()), top_level_only, typing)


def _imports_of(tree: ast.Module, top_level_only: bool = False,
                typing: bool = True) -> frozenset[str]:
    found = set()
    for node in _walk(tree.body, top_level_only, typing):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif node.module and node.level == 0:
            found.add(node.module)
            for alias in node.names:  # `from qa import scoring` names a module
                if module_file(f"{node.module}.{alias.name}").exists():
                    found.add(f"{node.module}.{alias.name}")
    return frozenset(name for name in found if name == "qa" or name.startswith("qa."))


def libraries(name: str) -> set[str]:
    """The top-level packages a module imports (`from ray.data import x` -> ray)."""
    tree = ast.parse(module_file(name).read_text())
    return {n for node in _walk(tree.body, False, True) for n in _roots(node)}


def _roots(node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name.split(".")[0] for alias in node.names}
    return {node.module.split(".")[0]} if node.module and node.level == 0 else set()


def closure(start: set[str], top_level_only: bool = False) -> dict[str, str]:
    """Every qa module reachable from `start` -> the module that first imported it."""
    seen: dict[str, str] = {name: "(start)" for name in start}
    todo = list(start)
    while todo:
        name = todo.pop()
        children = imports(name, top_level_only, typing=not top_level_only)
        for child in sorted(children):
            if child not in seen:
                seen[child] = name
                todo.append(child)
    return seen


def inside(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def write_side(name: str) -> bool:
    return name in WRITE_SIDE_MODULES or any(inside(name, p) for p in WRITE_SIDE_PACKAGES)


def test_the_checker_sees_a_lazy_import_of_the_builder():
    reached = closure({"qa.eval"})  # eval builds its index: it must be seen doing so
    assert "qa.build" in reached and "qa.text.ingest" in reached


def test_every_module_is_under_a_rule():
    """A new module says which side it is on (add it to QUERY_SIDE, say)."""
    ruled = set(QUERY_SIDE) | WRITE_SIDE_MODULES | set(FORBIDDEN) | {
        "qa.serve", "qa.__main__", "qa.eval"}
    for name in all_modules():
        assert name in ruled or any(inside(name, p) for p in ruled - {"qa"}), \
            f"{name} is under no rule of this file"


@pytest.mark.parametrize("module", QUERY_SIDE)
def test_query_side_modules_do_not_reach_the_write_side_or_a_face(module):
    reached = closure({module})
    bad = {name: by for name, by in reached.items()
           if write_side(name) or inside(name, "qa.serve")}
    assert not bad, f"{module} reaches {bad} (module: imported by)"


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_import_rules(package):
    for module in (m for m in all_modules() if inside(m, package)):
        reached = closure({module})
        bad = {name: by for name, by in reached.items()
               if any(inside(name, p) for p in FORBIDDEN[package])}
        assert not bad, f"{module} reaches {bad} (module: imported by)"


def test_only_the_entry_points_import_the_faces():
    for module in all_modules():
        if inside(module, "qa.serve") or module == "qa.__main__":
            continue
        bad = sorted(m for m in imports(module) if inside(m, "qa.serve"))
        assert not bad, f"{module} imports {bad}: only qa.__main__ and app.py start a face"
    launcher = _imports_of(ast.parse((ROOT / "app.py").read_text()))
    assert launcher == {"qa.serve.server"}, launcher


def test_no_import_cycles():
    """The imports that run (module level and inside functions), without the edge from a
    module to its own packages: Python imports those first anyway."""
    graph = {m: {i for i in imports(m, typing=False) if not inside(m, i)} for m in all_modules()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == 1:
                cycle = path[path.index(child):] + [child]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if child not in state:
                visit(child)
        path.pop()
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module)


def test_heavy_libraries_live_in_their_own_modules():
    for module in all_modules():
        for library in libraries(module):
            if library not in HEAVY:
                continue
            assert module in HEAVY[library], f"{module} imports {library}"


def test_the_page_answers_without_the_write_side_at_import():
    # The page also manages the library: the Library's calls import the write side when
    # used. What it imports to start and to answer must not.
    reached = closure({"qa.serve.server", "qa.serve.page", "qa.serve.ui"}, top_level_only=True)
    bad = {name: by for name, by in reached.items() if write_side(name)}
    assert not bad, f"the page reaches the write side at import: {bad}"


ANSWER_THROUGH_THE_PAGE = """
import json, sys
from pathlib import Path
from qa.serve.page import Page
from qa.config import Settings
from qa.embed import load_embedder
from qa.retriever import Retriever
settings = Settings(corpus_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2]))
embedder = load_embedder(settings)
page = Page(settings, embedder, Retriever.open(settings, embedder))
history, _, _ = page.chat("What hardware did the US export bans target?", [], 3, "hybrid")
print(json.dumps({"answer": history[-1]["content"],
                  "modules": sorted(m for m in sys.modules if m.startswith("qa"))}))
"""


@pytest.mark.slow
def test_a_question_through_the_page_loads_no_write_side_module(seed_settings):
    result = subprocess.run(
        [sys.executable, "-c", ANSWER_THROUGH_THE_PAGE, str(seed_settings.corpus_dir),
         str(seed_settings.index_dir)],
        cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert "<mark>" in out["answer"] and "Nvidia GPUs" in out["answer"]
    assert "qa.retriever" in out["modules"]
    loaded = [m for m in out["modules"] if write_side(m)]
    assert not loaded, loaded


def test_importing_the_package_and_its_faces_loads_no_heavy_library():
    code = ("import sys, qa, qa.retriever, qa.serve.cli, qa.serve.server, qa.build, qa.eval; "
            f"print(sorted(set({sorted(HEAVY)!r}) & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=cli_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
