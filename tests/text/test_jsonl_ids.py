"""Defect 6: a .jsonl record cannot take over another article's id: record ids are
namespaced by their file (`feed.jsonl#id`), and a collision names both places."""
from __future__ import annotations

import json

from conftest import FakeEmbedder
from qa.config import Settings
from qa.build import build_index
from qa.text.ingest import load_corpus
from qa.types import Filters

REAL = "The real story\nThe council voted to rebuild the harbour wall.\n"


def records(*items) -> str:
    return "\n".join(json.dumps(item) for item in items)


def test_a_record_cannot_take_over_a_file(tmp_path):
    (tmp_path / "story.txt").write_text(REAL)
    # "0..." sorts before "story.txt": before the fix the record won the id.
    (tmp_path / "0-feed.jsonl").write_text(records(
        {"id": "story.txt", "title": "Fake story", "text": "The harbour wall was never built."}))
    corpus = load_corpus(tmp_path)
    by_id = {a.id: a for a in corpus.articles}
    assert set(by_id) == {"story.txt", "0-feed.jsonl#story.txt"}
    assert by_id["story.txt"].title == "The real story"
    assert by_id["0-feed.jsonl#story.txt"].source == "0-feed.jsonl"
    assert not corpus.skipped


def test_the_same_record_id_in_two_files_is_two_articles(tmp_path):
    (tmp_path / "a.jsonl").write_text(records({"id": 1, "title": "A", "text": "From feed a."}))
    (tmp_path / "b.jsonl").write_text(records({"id": 1, "title": "B", "text": "From feed b."}))
    assert sorted(a.id for a in load_corpus(tmp_path).articles) == ["a.jsonl#1", "b.jsonl#1"]


def test_a_repeated_id_in_one_file_names_the_first_line(tmp_path):
    (tmp_path / "feed.jsonl").write_text(records(
        {"id": "x", "title": "One", "text": "First text."},
        {"id": "x", "title": "Two", "text": "Second text."}))
    corpus = load_corpus(tmp_path)
    assert [a.title for a in corpus.articles] == ["One"]
    (skip,) = corpus.skipped
    assert skip.source == "feed.jsonl:2" and skip.reason == "duplicate article id"
    assert "feed.jsonl:1" in skip.detail


def test_a_file_named_like_a_record_id_keeps_its_id(tmp_path):
    (tmp_path / "feed.jsonl").write_text(records({"id": "x.txt", "title": "R", "text": "Rec."}))
    (tmp_path / "feed.jsonl#x.txt").write_text(REAL)
    corpus = load_corpus(tmp_path)
    assert [a.title for a in corpus.articles] == ["The real story"]
    (skip,) = corpus.skipped
    assert skip.source == "feed.jsonl:1" and "feed.jsonl#x.txt" in skip.detail


def test_filters_and_the_index_use_the_namespaced_id(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "story.txt").write_text(REAL)
    (corpus / "feed.jsonl").write_text(records(
        {"id": "story.txt", "title": "Fake", "text": "The harbour wall was never built."}))
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    build_index(settings, FakeEmbedder())
    from qa.retriever import Retriever

    retriever = Retriever.open(settings, FakeEmbedder())
    hits = retriever.search("harbour wall", 5, mode="bm25",
                            filters=Filters(articles=("story.txt",)))
    assert {h.passage.article_id for h in hits} == {"story.txt"}
    assert "rebuild" in hits[0].passage.text
