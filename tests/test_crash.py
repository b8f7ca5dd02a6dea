"""A build killed with SIGKILL at any moment leaves the previous index loadable and correct."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, SEED_FILE
from index_helpers import (
    NEW_ANSWER, NEW_FILE, NEW_QUESTION, add_new_article, answer_keys, cli_env, copy_index,
    found_answer, index_entries, run_cli, seed_questions, wait_for_line,
)
from qa.index import layout
from qa.build import build_index
from qa.config import Settings
from qa.errors import BuildLockedError
from qa.retriever import Retriever

STAGES = ("embed", "write", "switch")

# A real build in its own process that stops at a known point (through the progress
# callback) and waits there to be killed: "embed" = passages embedded, nothing written;
# "write" = the temp folder holds the dense files only; "switch" = the new generation is in
# place, CURRENT not yet switched to it.
PAUSING_BUILD = """
import sys, time
from pathlib import Path
from qa.config import Settings
from qa.embed import load_embedder
from qa.build import build_index

stage = sys.argv[3]
wanted, step = {"embed": ("embed", 1), "write": ("write", 1), "switch": ("write", 4)}[stage]

def pause_at_stage(name, done, total):
    if name == wanted and done >= step:
        print(f"PAUSED {stage}", file=sys.stderr, flush=True)
        time.sleep(600)

settings = Settings(corpus_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2]))
build_index(settings, load_embedder(settings), on_progress=pause_at_stage)
"""


def start_paused_build(settings, stage: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", PAUSING_BUILD, str(settings.corpus_dir), str(settings.index_dir),
         stage],
        cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def seed_answers(retriever: Retriever) -> tuple[list, int]:
    """The answers to the seed questions, and how many have an answer in the top 5 hits."""
    answers, found = [], 0
    for item in seed_questions():
        answer = retriever.answer(item["question"])
        assert answer.quotes and not answer.abstained, item["question"]
        answers.append(answer_keys(answer))
        found += found_answer(retriever.search(item["question"], k=5), item["answers"])
    return answers, found


@pytest.mark.slow
def test_sigkill_at_each_stage_keeps_the_previous_index(seed_settings, real_embedder, tmp_path):
    before, found = seed_answers(Retriever.open(seed_settings, real_embedder))
    assert found >= 6, f"only {found}/8 seed questions answered before any crash"

    # One build per stage, in parallel (each on its own copy), each paused at its stage.
    copies = {stage: copy_index(seed_settings, tmp_path / stage) for stage in STAGES}
    live = layout.read_current(seed_settings.index_dir)
    new = layout.next_generation(seed_settings.index_dir)
    entries = index_entries(seed_settings)
    builds = {}
    for stage, settings in copies.items():
        add_new_article(settings)
        builds[stage] = start_paused_build(settings, stage)
    try:
        for stage, process in builds.items():
            wait_for_line(process.stderr, f"PAUSED {stage}")

        # While paused, each build holds the lock: a second writer is refused, clearly.
        with pytest.raises(BuildLockedError, match="another build is running"):
            build_index(copies["embed"], real_embedder)
        refused = run_cli(["index", "--corpus", str(copies["write"].corpus_dir),
                           "--index", str(copies["write"].index_dir), "--wait", "0.2", "-q"])
        assert refused.returncode == 2
        assert "error: another build is running" in refused.stderr
        assert "still running after waiting 0.2 s" in refused.stderr

        # What each pause point has on disk (so the kill lands where it says).
        assert index_entries(copies["embed"]) == entries
        assert f".tmp-{new}" in index_entries(copies["write"])
        assert new in index_entries(copies["switch"])
        for settings in copies.values():
            assert layout.read_current(settings.index_dir) == live
    finally:
        for process in builds.values():
            process.send_signal(signal.SIGKILL)
            process.wait()
    for stage, process in builds.items():
        assert process.returncode == -signal.SIGKILL, stage

    for stage, settings in copies.items():
        # The previous index loads and answers exactly as before the build.
        retriever = Retriever.open(settings, real_embedder)
        assert retriever.generation.name == live, stage
        assert seed_answers(retriever)[0] == before, stage
        assert NEW_FILE not in {h.passage.article_id
                                for h in retriever.search(NEW_QUESTION, k=5)}, stage

        # The next build succeeds (the dead build's lock is free) and cleans up after it.
        report = build_index(settings, real_embedder)
        assert report.added == 1 and report.kept == 1, (stage, report.summary())
        assert index_entries(settings) == {"CURRENT", ".build.lock", "models", live,
                                           report.generation}, stage
        assert found_answer(retriever.search(NEW_QUESTION, k=1), [NEW_ANSWER]), stage


CHILD = """
import sys
from pathlib import Path
from conftest import FakeEmbedder
from qa.build import build_index
from qa.config import Settings
settings = Settings(corpus_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2]))
extra = settings.corpus_dir / "extra.txt"
print("ready", flush=True)
for n in range(10_000):
    if n % 2:
        extra.unlink(missing_ok=True)
    else:
        extra.write_text(f"Extra {n}\\n\\nThe extra article number {n}.\\n\\nIt says little.")
    build_index(settings, FakeEmbedder(), wait_seconds=5)
    print("built", n, flush=True)
"""


def test_sigkill_at_random_moments(tmp_path, fake_embedder):
    """Many kills at random times of a fast build loop (fake model): never a broken index."""
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    settings.corpus_dir.mkdir()
    (settings.corpus_dir / SEED_FILE.name).write_bytes(SEED_FILE.read_bytes())
    build_index(settings, fake_embedder)
    rng = random.Random(4)
    for _ in range(12):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(settings.corpus_dir), str(settings.index_dir)],
            cwd=ROOT, env=cli_env(PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}"),
            stdout=subprocess.PIPE, text=True,
        )
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 1.0))
        child.send_signal(signal.SIGKILL)
        child.wait()

        retriever = Retriever.open(settings, fake_embedder)  # loads, with every check
        hits = retriever.search("Huawei Baidu SenseTime alliance", k=3)
        assert hits and hits[0].passage.article_id == SEED_FILE.name
        assert retriever.status().articles in (1, 2)
    # Kills mid-write leave temp folders (or an unswitched generation): a build removes them.
    report = build_index(settings, fake_embedder)
    assert layout.stray_temps(settings.index_dir) == []
    assert set(layout.generations(settings.index_dir)) <= {report.generation, report.previous}
