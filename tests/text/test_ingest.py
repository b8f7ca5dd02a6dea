"""Ingestion of every supported format, and bad files skipped with a named reason."""
import json
from pathlib import Path

import pytest

from conftest import EVAL, SEED_FILE
from qa.errors import CorpusError
from qa.text.ingest import load_corpus

HTML = """<!doctype html><html><head><title>Port strike ends | Daily Planet</title>
<meta property="article:published_time" content="2025-03-14T09:00:00Z"></head>
<body><nav><a href="/">Home</a> <a href="/world">World</a></nav>
<article><h1>Port strike ends after nine days</h1>
<p>Dock workers in Rotterdam voted on Friday to end a nine-day strike that had stranded
hundreds of containers, the union said in a statement.</p>
<p>The agreement raises wages by 6 percent over two years and limits night shifts, according
to a copy of the deal seen by reporters at the harbour.</p>
<p>Shipping companies said it would take about a week to clear the backlog of vessels
waiting outside the port.</p></article>
<footer>Copyright Daily Planet. All rights reserved.</footer></body></html>"""


def test_seed_txt_title_is_its_headline_and_promo_is_gone(tmp_path):
    corpus = load_corpus(SEED_FILE)
    (article,) = corpus.articles
    # The headline, not the section label above it (issue 21), which stays in the text.
    assert article.title == "Chinese AI Powerhouses Unite to Sidestep U.S. Tech Curbs!"
    assert article.text.startswith("New Alliances, New Era\n\n")
    assert "Learn to use AI like a Pro" not in article.text
    assert "Get the latest AI workflows" not in article.text
    assert "On July 28, 2025, China's leading AI companies" in article.text
    assert not corpus.skipped


def test_squad_articles_jsonl_ingests_as_is():
    corpus = load_corpus(EVAL / "squad-dev" / "articles.jsonl")
    assert len(corpus.articles) == 24
    assert corpus.articles[0].title == "Super Bowl 50"
    assert not corpus.skipped


def test_html_main_text_title_and_date_come_from_trafilatura(tmp_path):
    (tmp_path / "strike.html").write_text(HTML, encoding="utf-8")
    (article,) = load_corpus(tmp_path).articles
    assert "Port strike ends" in article.title
    assert article.date == "2025-03-14"
    assert "Dock workers in Rotterdam voted" in article.text
    assert "Home" not in article.text.split()[:3]
    assert "All rights reserved" not in article.text


def test_markdown_title_from_heading(tmp_path):
    (tmp_path / "note.md").write_text("# Rates rise\n\nThe bank raised\nrates today.\n")
    (article,) = load_corpus(tmp_path).articles
    assert (article.title, article.text) == ("Rates rise", "The bank raised rates today.")


def test_jsonl_bad_lines_are_skipped_and_named(tmp_path):
    lines = [
        json.dumps({"id": "a1", "title": "One", "text": "First article text.", "date": "2025-01-02"}),
        "{not json",
        json.dumps({"id": "a2", "title": "Two"}),
        json.dumps({"id": "a3", "title": "Three", "text": "Third article text."}),
    ]
    (tmp_path / "feed.jsonl").write_text("\n".join(lines))
    corpus = load_corpus(tmp_path)
    assert [a.id for a in corpus.articles] == ["feed.jsonl#a1", "feed.jsonl#a3"]
    assert corpus.articles[0].date == "2025-01-02"
    assert {s.source for s in corpus.skipped} == {"feed.jsonl:2", "feed.jsonl:3"}


def test_bad_files_are_skipped_with_a_reason_and_the_rest_is_read(tmp_path, monkeypatch):
    (tmp_path / "good.txt").write_text("Title\nSome real text here.")
    (tmp_path / "empty.txt").write_text("   \n")
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\x00\x00\x00binary")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 news\nBody".encode("latin-1"))
    (tmp_path / "locked.txt").write_text("Title\nText")
    (tmp_path / "picture.png").write_bytes(b"\x89PNG")
    real_read = Path.read_bytes

    def read_bytes(self):
        if self.name == "locked.txt":
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    corpus = load_corpus(tmp_path)
    assert [a.id for a in corpus.articles] == ["good.txt"]
    reasons = {s.source: s.reason for s in corpus.skipped}
    assert reasons["empty.txt"] == "empty file"
    assert "binary" in reasons["binary.txt"]
    assert "not UTF-8" in reasons["latin1.txt"]
    assert "unreadable" in reasons["locked.txt"]
    assert "unsupported" in reasons["picture.png"]


def test_missing_corpus_folder_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nope")
