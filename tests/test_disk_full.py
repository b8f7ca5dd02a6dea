"""Defect 7: a full disk during a build is a clear error (CLI and page), never a traceback,
and the live index keeps serving."""
from __future__ import annotations

import errno
import resource
import signal
import subprocess
import sys

import pytest

from qa.serve.page import Page
from conftest import ROOT, FakeEmbedder
from index_helpers import NEW_QUESTION, add_new_article, cli_env, small_corpus
from qa.errors import IndexWriteError
from qa.index import layout
from qa.build import build_index
from qa.retriever import Retriever

# Files this process writes may not grow past this: the next write fails with EFBIG, as
# it would with ENOSPC on a full disk (SIGXFSZ ignored, so the write returns the error).
FILE_LIMIT = 4096


def limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))


@pytest.fixture
def built(tmp_path, real_embedder):
    settings = small_corpus(tmp_path)
    build_index(settings, real_embedder)
    add_new_article(settings)
    return settings


@pytest.mark.slow
def test_the_cli_says_it_could_not_write_and_the_live_index_stays(built, real_embedder):
    result = subprocess.run(
        [sys.executable, "-m", "qa", "index", "--corpus", str(built.corpus_dir), "--index",
         str(built.index_dir), "-q"],
        cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=300,
        preexec_fn=limit_file_size,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "error: could not write the new index" in result.stderr, result.stderr
    assert "gen-000001 is still live" in result.stderr
    assert layout.read_current(built.index_dir) == "gen-000001"
    assert layout.stray_temps(built.index_dir) == []  # the half-written folder is gone
    retriever = Retriever.open(built, real_embedder)
    assert retriever.search("Which bakery won the bread prize?", 1)


def fail_writing(monkeypatch) -> None:
    def no_space(path, vectors):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("qa.index.writer.save_vectors", no_space)


def test_build_index_raises_a_clear_error(tmp_path, monkeypatch):
    settings = small_corpus(tmp_path)
    build_index(settings, FakeEmbedder())
    add_new_article(settings)
    fail_writing(monkeypatch)
    with pytest.raises(IndexWriteError) as caught:
        build_index(settings, FakeEmbedder())
    message = str(caught.value)
    assert "No space left on device" in message and "gen-000001 is still live" in message
    assert "Free some disk space" in message


def test_the_page_says_so_and_keeps_answering(tmp_path, monkeypatch):
    settings = small_corpus(tmp_path)
    build_index(settings, FakeEmbedder())
    page = Page(settings, FakeEmbedder())
    add_new_article(settings)
    fail_writing(monkeypatch)
    note, status, rows = page.rebuild()
    assert note.startswith("⚠️ Rebuild failed: could not write the new index"), note
    assert "No space left on device" in note
    assert "gen-000001" in status and len(rows) == 3
    history, _, _ = page.chat(NEW_QUESTION, [], 3, "bm25")
    assert "vb-error" not in history[-1]["content"]


def test_an_unexpected_error_in_a_rebuild_is_a_message_too(tmp_path, monkeypatch):
    settings = small_corpus(tmp_path)
    page = Page(settings, FakeEmbedder())

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("qa.build.embed_articles", broken)
    note, *_ = page.rebuild()
    assert note.startswith("⚠️ Rebuild failed") and "see its log" in note
