"""Helpers for the rebuild tests: copies of built indexes, CLI subprocesses, a new article."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from conftest import EVAL, ROOT, read_jsonl
from qa.config import Settings

# A short article unlike the seed one, with one fact a test can ask about.
NEW_ARTICLE = """Kelpwater opens tidal array in the Orkney strait

The Kelpwater tidal array began feeding the grid on Tuesday after six years of construction.

Its twelve turbines sit on the seabed of the Orkney strait and produce 42 megawatts at peak flow, enough for about thirty thousand homes.

Engineers from the harbour town of Stromvik said the turbines are painted orange so that fishing boats can see them at low tide.

The project cost 310 million pounds and was paid for by a cooperative of island councils.
"""
NEW_FILE = "kelpwater.txt"
NEW_QUESTION = "How many megawatts does the Kelpwater tidal array produce?"
NEW_ANSWER = "42 megawatts"

# Three tiny articles: quick to embed with the real model.
ARTICLES = {
    "alpha.txt": "Alpha council votes on the harbour\n\nThe council of Alpha voted to rebuild the "
                 "old harbour wall.\n\nWork starts in spring and should last two years.",
    "beta.txt": "Beta school opens a library\n\nThe Beta primary school opened a library with "
                "four thousand books.\n\nPupils chose the name of the reading room.",
    "gamma.txt": "Gamma bakery wins a prize\n\nThe Gamma bakery won the regional bread prize for "
                 "its rye loaf.\n\nThe baker thanked her apprentices.",
}


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def seed_questions() -> list[dict]:
    return read_jsonl(EVAL / "seed_dev.jsonl")


def small_corpus(root: Path) -> Settings:
    """Settings for a fresh corpus of ARTICLES under `root` (index not built)."""
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    for name, text in ARTICLES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    return Settings(corpus_dir=corpus, index_dir=root / "index")


def copy_index(settings: Settings, dest: Path) -> Settings:
    """A private copy of a built corpus + index, so a test may change or break it."""
    shutil.copytree(settings.corpus_dir, dest / "corpus")
    shutil.copytree(settings.index_dir, dest / "index")
    for folder, dirs, files in os.walk(dest / "index"):
        for name in dirs + files:  # generations are read-only; copies must be changeable
            os.chmod(os.path.join(folder, name), 0o755 if name in dirs else 0o644)
    return Settings(corpus_dir=dest / "corpus", index_dir=dest / "index")


def add_new_article(settings: Settings, text: str = NEW_ARTICLE) -> Path:
    path = settings.corpus_dir / NEW_FILE
    path.write_text(text, encoding="utf-8")
    return path


def hit_keys(hits) -> tuple:
    """What identifies a result list: which passages, in which order."""
    return tuple((h.passage.article_id, h.passage.start, h.passage.end) for h in hits)


def answer_keys(answer) -> tuple:
    return (answer.abstained,
            tuple((q.article_id, q.text, tuple(q.highlights)) for q in answer.quotes))


def found_answer(hits, answers: Sequence[str]) -> bool:
    return any(normalise(a) in normalise(h.passage.text) for h in hits for a in answers)


class CountingEmbedder:
    """Wraps an embedder and records every text it is asked to encode."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.model_id, self.fingerprint = inner.model_id, inner.fingerprint
        self.dim, self.max_tokens, self.precision = inner.dim, inner.max_tokens, inner.precision
        self.encoded: list[str] = []
        self._lock = threading.Lock()

    def count_tokens(self, texts):
        return self._inner.count_tokens(texts)

    def encode(self, texts, on_progress=None) -> np.ndarray:
        with self._lock:
            self.encoded.extend(texts)
        return self._inner.encode(texts, on_progress)


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1",
               HF_HUB_DISABLE_TELEMETRY="1")
    env.update(extra)
    return env


def run_cli(args: Sequence[str], timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
    """`python -m qa ARGS` in a subprocess; returns the finished process (text output)."""
    return subprocess.run(
        [sys.executable, "-m", "qa", *args], cwd=ROOT, env=cli_env(**env),
        capture_output=True, text=True, timeout=timeout,
    )


def _ctrl_c_deliverable() -> None:
    """In the child, before exec: SIGINT unblocked and not ignored, as in a terminal. A
    blocked or ignored SIGINT is inherited across exec, and this test process may carry
    one from an earlier test (Ray starts its node processes with SIGINT blocked)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def signal_state(pid: int) -> str:
    """How a process treats signals (/proc: blocked, ignored, caught masks), for messages."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError as exc:
        return str(exc)
    return " ".join(line for line in lines if line.startswith(("State", "SigBlk", "SigIgn",
                                                                "SigCgt")))


def start_build(settings: Settings, *extra: str, **env: str) -> subprocess.Popen:
    """`python -m qa index` on `settings` in the background (stderr piped, for pauses)."""
    return subprocess.Popen(
        [sys.executable, "-m", "qa", "index", "--corpus", str(settings.corpus_dir),
         "--index", str(settings.index_dir), "-q", *extra],
        cwd=ROOT, env=cli_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, preexec_fn=_ctrl_c_deliverable,
    )


def wait_for_line(stream, marker: str, timeout: float = 180) -> list[str]:
    """Read lines from `stream` until one contains `marker`; the lines read so far."""
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        for line in stream:
            lines.append(line)
            if marker in line:
                done.set()
                return
        done.set()

    threading.Thread(target=read, daemon=True).start()
    started = time.monotonic()
    done.wait(timeout)
    if not any(marker in line for line in lines):
        raise AssertionError(
            f"no {marker!r} within {time.monotonic() - started:.0f} s; got: {''.join(lines)[-2000:]}"
        )
    return lines


def index_entries(settings: Settings) -> set[str]:
    return {p.name for p in settings.index_dir.iterdir()}


def memory_generation(articles, embedder, settings: Settings = Settings()):
    """A Generation assembled in memory (no files) from `articles`, as a build would."""
    from qa.config import chunk_settings_for
    from qa.build import assemble, content_hash, embed_articles
    from qa.index.db import PassageDB
    from qa.index.dense import FaissDense
    from qa.index.generation import Generation, chunker_info
    from qa.index.lexical import LexicalIndex
    from qa.index.manifest import (
        FORMAT_VERSION, BuildStats, Counts, DenseInfo, Manifest, ModelInfo,
    )

    chunking = chunk_settings_for(settings, embedder.max_tokens)
    built = assemble(articles, frozenset(), None, embed_articles(embedder, articles, chunking))
    hashes = {a.id: content_hash(a) for a in articles}
    texts = {a.id: a.text for a in articles}
    manifest = Manifest(
        format_version=FORMAT_VERSION, generation="memory", previous=None, built_at="",
        build_seconds=0.0, corpus_dir="(memory)",
        model=ModelInfo(id=embedder.model_id, fingerprint=embedder.fingerprint,
                        dim=embedder.dim),
        chunker=chunker_info(chunking), dense=DenseInfo("faiss", "Flat"),
        counts=Counts(len(articles), len(built.rows), len(built.sentence_vectors)),
        build=BuildStats(True, len(articles), 0, 0, 0, 0, len(built.rows), 0),
        files={}, articles=hashes,
    )
    return Generation(
        Path("memory"), manifest, FaissDense.build(built.vectors, "Flat"),
        LexicalIndex.build([texts[r.article_id][r.start:r.end] for r in built.rows]),
        built.vectors, built.sentence_vectors,
        PassageDB.in_memory(((a, hashes[a.id]) for a in articles), built.rows),
    )
