"""Defect 3: one bad file never stops a build: every per-file problem is a skip with a
reason, and the page can remove a file from the corpus."""
from __future__ import annotations

import json
import os

import pytest

from qa.serve.page import Page
from conftest import FakeEmbedder
from qa.config import Settings
from qa.build import build_index
from qa.text.ingest import READERS, load_corpus

GOOD = "Good news\nThe harbour reopened on Monday after repairs.\n"
# A file name that is not UTF-8 (as a Latin-1 system writes "café.txt"); Python gives it
# to us with a surrogate escape.
LATIN1_NAME = os.fsdecode(b"caf\xe9.txt")


def jsonl(*records) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records)


def bad_corpus(folder):
    folder.mkdir(exist_ok=True)
    (folder / "good.txt").write_text(GOOD)
    (folder / "deep.jsonl").write_text(jsonl(
        '{"a": ' * 200_000 + "1" + "}" * 200_000,
        {"id": "ok", "title": "Fine record", "text": "A record that is fine."},
        "[" * 200_000 + "]" * 200_000,
    ))
    (folder / "types.jsonl").write_text(jsonl(
        {"id": "u", "title": "Url", "text": "Text.", "url": {"a": 1}},
        {"id": "t", "title": ["a"], "text": "Text."},
        {"id": {"x": 1}, "title": "Id", "text": "Text."},
        {"id": "x", "title": "Text", "text": 42},
        ["a", "list"],
        '{"id": "s", "title": "Surrogate", "text": "bad \\ud800 char"}',
        '{"id": "n", "title": "Big", "text": "x", "date": ' + "9" * 5000 + "}",
    ))
    (folder / LATIN1_NAME).write_text(GOOD)
    return folder


def test_every_bad_record_and_file_is_a_skip_with_a_reason(tmp_path, monkeypatch):
    monkeypatch.setattr("qa.text.ingest.LINES_SHOWN", 100)  # each line on its own, not counted
    corpus = load_corpus(bad_corpus(tmp_path / "corpus"))
    assert sorted(a.id for a in corpus.articles) == ["deep.jsonl#ok", "good.txt"]
    reasons = {s.source: s.message for s in corpus.skipped}
    assert "nested too deeply" in reasons["deep.jsonl:1"]
    assert "a JSON object" in reasons["deep.jsonl:3"]
    assert "url must be text" in reasons["types.jsonl:1"]
    assert "title must be text" in reasons["types.jsonl:2"]
    assert "id must be text or a number" in reasons["types.jsonl:3"]
    assert "text must be text" in reasons["types.jsonl:4"]
    assert "a JSON object" in reasons["types.jsonl:5"]
    assert "not valid Unicode" in reasons["types.jsonl:6"]
    assert "types.jsonl:7" in reasons
    (name_skip,) = [s for s in corpus.skipped if s.source.startswith("caf")]
    assert name_skip.source == "caf\\xe9.txt" and "file name is not UTF-8" in name_skip.reason
    for skip in corpus.skipped:  # every skip can be shown and stored
        skip.source.encode("utf-8"), skip.message.encode("utf-8")


def test_a_reader_that_fails_skips_its_file_only(tmp_path, monkeypatch):
    (tmp_path / "good.md").write_text("# Good\n\nSome text.")
    (tmp_path / "odd.txt").write_text(GOOD)

    def boom(path, rel):
        raise ValueError("the library choked")
        yield

    monkeypatch.setitem(READERS, ".txt", boom)
    corpus = load_corpus(tmp_path)
    assert [a.id for a in corpus.articles] == ["good.md"]
    (skip,) = corpus.skipped
    assert skip.source == "odd.txt" and skip.reason == "could not be read"
    assert "ValueError: the library choked" in skip.detail


def test_a_build_goes_on_past_every_bad_file(tmp_path):
    settings = Settings(corpus_dir=bad_corpus(tmp_path / "corpus"), index_dir=tmp_path / "i")
    report = build_index(settings, FakeEmbedder())
    assert report.articles == 2
    assert "1 file and 9 lines skipped" in report.summary()
    report.summary().encode("utf-8")


def test_the_page_lists_and_removes_corpus_files(tmp_path):
    settings = Settings(corpus_dir=bad_corpus(tmp_path / "corpus"), index_dir=tmp_path / "i")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (settings.corpus_dir / "link.txt").symlink_to(outside)
    page = Page(settings, FakeEmbedder())
    files = page.corpus_files()
    assert files == sorted(["caf\\xe9.txt", "deep.jsonl", "good.txt", "link.txt",
                            "types.jsonl"])
    note, choices = page.remove_file("deep.jsonl")
    assert "Removed `deep.jsonl`" in note and "deep.jsonl" not in choices
    assert not (settings.corpus_dir / "deep.jsonl").exists()
    note, _ = page.remove_file("caf\\xe9.txt")
    assert not (settings.corpus_dir / LATIN1_NAME).exists()
    page.remove_file("link.txt")  # the link goes, not what it points to
    assert outside.read_text() == "keep me" and not (settings.corpus_dir / "link.txt").exists()
    for bad in ("../outside.txt", str(outside), "nothing.txt", ""):
        note, _ = page.remove_file(bad)
        assert note.startswith("⚠️"), note
    assert outside.exists()
