"""Defect 4 (and 10's "85716 files skipped"): skips are summarised, counts per reason and
the first few, so a file of a million bad lines cannot flood the page, the log or memory."""
from __future__ import annotations

import logging

import pytest

from qa.serve.page import Page
from conftest import FakeEmbedder
from index_helpers import run_cli
from qa.config import Settings
from qa.build import build_index
from qa.text.ingest import load_corpus, skip_summary

BAD_LINES = 1_000_000


@pytest.fixture
def flooded(tmp_path) -> Settings:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text("Good news\nThe harbour reopened on Monday.\n")
    (corpus / "empty.txt").write_text("")
    (corpus / "flood.jsonl").write_text("x\n" * BAD_LINES)  # 2 MB, under the upload limit
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index")


def test_a_million_bad_lines_are_counted_not_listed(flooded, caplog):
    with caplog.at_level(logging.WARNING):
        corpus = load_corpus(flooded.corpus_dir)
    assert len(corpus.skipped) <= 10  # the first few lines, then one entry counting the rest
    lines = skip_summary(corpus.skipped)
    assert lines[0].startswith("1 file and 1,000,000 lines skipped")
    text = "\n".join(lines)
    assert "not an article record: 1,000,000 lines" in text and "flood.jsonl:1" in text
    assert "empty file: 1 file (empty.txt)" in text
    assert len(text) < 1000, text
    assert len(caplog.text) < 2000, caplog.text[:3000]


def test_the_summary_line_counts_files_and_lines_apart(flooded):
    report = build_index(flooded, FakeEmbedder())
    assert "1 file and 1,000,000 lines skipped" in report.summary()
    assert "files skipped" not in report.summary()


def test_the_rebuild_message_on_the_page_stays_short(flooded):
    message, *_ = Page(flooded, FakeEmbedder()).rebuild()
    assert message.startswith("Rebuilt: **1** articles")
    assert "1,000,000 lines" in message and "flood.jsonl:1" in message
    assert len(message) < 2000, message[:3000]


def test_the_cli_prints_the_summary_not_every_line(flooded):
    result = run_cli(["index", "--corpus", str(flooded.corpus_dir), "--index",
                      str(flooded.index_dir), "-q"], timeout=400)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 file and 1,000,000 lines skipped" in result.stdout
    assert len(result.stderr) < 2000, result.stderr[:3000]
