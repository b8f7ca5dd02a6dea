"""`qa index --watch`: a debounced rebuild when corpus files appear, change or go."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from index_helpers import (
    NEW_ANSWER, NEW_FILE, NEW_QUESTION, add_new_article, found_answer, signal_state,
    small_corpus, start_build, wait_for_line,
)
from qa.build import build_index
from qa.config import Settings
from qa.errors import ConfigError, CorpusError
from qa.retriever import Retriever
from qa.serve.watch import is_relevant, watch_corpus

DEBOUNCE = 0.4


def wait_until(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@contextmanager
def watching(settings, embedder):
    """watch_corpus in a thread, rebuilding with `embedder`; yields the build reports."""
    reports = []
    stop = threading.Event()
    watcher = threading.Thread(
        target=watch_corpus,
        args=(settings.corpus_dir, lambda: reports.append(build_index(settings, embedder))),
        kwargs={"debounce": DEBOUNCE, "stop": stop},
    )
    watcher.start()
    time.sleep(0.3)  # the observer is running
    try:
        yield reports
    finally:
        stop.set()
        watcher.join(10)
    assert not watcher.is_alive()


@pytest.mark.parametrize("event, paths, is_dir, relevant", [
    ("created", ["/c/a.txt"], False, True),
    ("modified", ["/c/sub/a.html"], False, True),
    ("deleted", ["/c/a.txt"], False, True),
    ("moved", ["/c/.a.txt.swp", "/c/a.txt"], False, True),  # an editor's atomic save
    ("modified", ["/c/sub"], True, False),  # echoes a change to a file inside
    ("created", ["/c/.git/index"], False, False),
    ("modified", ["/c/.a.txt.swp"], False, False),
    ("opened", ["/c/a.txt"], False, False),
    ("closed_no_write", ["/c/a.txt"], False, False),
])
def test_which_events_count(event, paths, is_dir, relevant):
    assert is_relevant(Path("/c"), event, paths, is_dir) is relevant


def test_debounce_setting(monkeypatch):
    monkeypatch.delenv("VERBATIM_WATCH_DEBOUNCE", raising=False)
    assert Settings.from_env().watch_debounce == 2.0
    monkeypatch.setenv("VERBATIM_WATCH_DEBOUNCE", "0.25")
    assert Settings.from_env().watch_debounce == 0.25
    monkeypatch.setenv("VERBATIM_WATCH_DEBOUNCE", "soon")
    with pytest.raises(ConfigError, match="'soon'"):
        Settings.from_env()
    with pytest.raises(ConfigError, match="-1"):
        Settings(watch_debounce=-1)


def test_watch_needs_a_folder(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        watch_corpus(tmp_path / "nowhere", lambda: None)


def test_watch_rebuilds_once_per_burst_of_changes(tmp_path, fake_embedder):
    settings = small_corpus(tmp_path)
    build_index(settings, fake_embedder)
    with watching(settings, fake_embedder) as reports:
        for n in range(3):  # a burst: three files, 0.1 s apart, is one rebuild
            (settings.corpus_dir / f"new{n}.txt").write_text(f"New {n}\n\nArticle {n} text.")
            time.sleep(0.1)
        assert wait_until(lambda: len(reports) >= 1)
        time.sleep(DEBOUNCE * 3)
        assert len(reports) == 1
        assert (reports[0].added, reports[0].kept) == (3, 3)

        (settings.corpus_dir / ".hidden.txt").write_text("Hidden\n\nNot an article.")
        time.sleep(DEBOUNCE * 3)
        assert len(reports) == 1, "a hidden file triggered a rebuild"

        (settings.corpus_dir / "alpha.txt").write_text("Alpha\n\nThe Alpha harbour is done.")
        assert wait_until(lambda: len(reports) == 2)
        assert reports[1].changed == 1

        (settings.corpus_dir / "new0.txt").unlink()
        assert wait_until(lambda: len(reports) == 3)
        assert reports[2].removed == 1


def test_a_failing_rebuild_does_not_stop_the_watch(tmp_path, fake_embedder, capsys):
    settings = small_corpus(tmp_path)
    with watching(settings, fake_embedder) as reports:
        for path in list(settings.corpus_dir.iterdir()):
            path.unlink()  # an empty corpus: CorpusError, reported
        assert wait_until(lambda: "no readable articles" in capsys.readouterr().err)
        (settings.corpus_dir / "back.txt").write_text("Back\n\nArticles are back.")
        assert wait_until(lambda: len(reports) == 1)
        assert reports[0].articles == 1


@pytest.mark.slow
def test_cli_watch_rebuilds_on_change(tmp_path, real_embedder):
    settings = small_corpus(tmp_path)
    process = start_build(settings, "--watch", VERBATIM_WATCH_DEBOUNCE="0.5")
    try:
        first = wait_for_line(process.stdout, "gen-000001: 3 articles")
        assert first
        wait_for_line(process.stderr, "watching")
        add_new_article(settings)
        wait_for_line(process.stdout, "gen-000002: 4 articles")
        retriever = Retriever.open(settings, real_embedder)
        assert found_answer(retriever.search(NEW_QUESTION, k=1), [NEW_ANSWER])

        (settings.corpus_dir / NEW_FILE).unlink()
        lines = wait_for_line(process.stdout, "gen-000003: 3 articles")
        assert "0 added, 0 changed, 1 removed, 3 kept" in lines[-1]
        assert NEW_FILE not in {h.passage.article_id
                                for h in retriever.search(NEW_QUESTION, k=5)}
    finally:
        process.send_signal(signal.SIGINT)
        try:
            # Reads what is left in both pipes while waiting: a child blocked writing to a
            # full pipe could not exit. ~1.5 s here; CI machines can be far busier.
            _, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            state = signal_state(process.pid)
            process.kill()
            _, stderr = process.communicate()
            raise AssertionError(f"--watch did not stop on SIGINT ({state}); in this test "
                                 f"process: {signal_state(os.getpid())}; its stderr ends: "
                                 f"{stderr[-1500:]!r}") from None
    assert process.returncode == 0
