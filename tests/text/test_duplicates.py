"""Defect 2: an exact duplicate is indexed once (and reported); boilerplate detection never
empties an article that has text of its own, and an article that is nothing but
boilerplate is listed as skipped."""
from __future__ import annotations

import shutil

import pytest

from conftest import SEED_FILE, read_jsonl, EVAL
from qa.build import build_index
from qa.config import Settings
from qa.text.ingest import load_corpus

COPY = SEED_FILE.stem + " (2)" + SEED_FILE.suffix  # what uploading the file twice makes


def test_a_copy_of_the_seed_is_indexed_once_under_the_original_name(tmp_path):
    shutil.copy(SEED_FILE, tmp_path / SEED_FILE.name)
    shutil.copy(SEED_FILE, tmp_path / COPY)
    corpus = load_corpus(tmp_path)
    (article,) = corpus.articles
    assert article.id == SEED_FILE.name
    assert "On July 28, 2025, China's leading AI companies" in article.text
    assert "Learn to use AI like a Pro" not in article.text  # real boilerplate still goes
    (skip,) = corpus.skipped
    assert skip.source == COPY
    assert skip.reason == "duplicate" and SEED_FILE.name in skip.detail


def test_duplicate_records_in_jsonl_are_indexed_once(tmp_path):
    line = '{"id": "%s", "title": "Same", "text": "One story.\\n\\nTwo paragraphs."}'
    (tmp_path / "feed.jsonl").write_text("\n".join([line % "a", line % "b"]))
    corpus = load_corpus(tmp_path)
    assert [a.text for a in corpus.articles] == ["One story.\n\nTwo paragraphs."]
    assert [(s.source, s.reason) for s in corpus.skipped] == [("feed.jsonl:2", "duplicate")]


def test_an_article_contained_in_another_keeps_its_text(tmp_path):
    shared = ["The harbour wall was rebuilt in spring.", "Work lasted two years."]
    (tmp_path / "first.txt").write_text("\n".join(["Harbour", *shared]))
    (tmp_path / "update.txt").write_text("\n".join(["Harbour, updated", *shared,
                                                    "The mayor opened it on Friday."]))
    corpus = load_corpus(tmp_path)
    texts = {a.id: a.text for a in corpus.articles}
    assert texts["first.txt"] == "\n\n".join(shared)
    assert "The mayor opened it on Friday." in texts["update.txt"]
    assert not corpus.skipped


def test_an_article_of_nothing_but_boilerplate_is_listed_as_skipped(tmp_path):
    (tmp_path / "real.txt").write_text("Real\nThe council met on Monday.\nSubscribe now!")
    (tmp_path / "promo.txt").write_text("Promo\nSubscribe now!\nSubscribe now!")
    corpus = load_corpus(tmp_path)
    assert [a.id for a in corpus.articles] == ["real.txt"]
    assert "Subscribe now!" not in corpus.articles[0].text
    (skip,) = corpus.skipped
    assert skip.source == "promo.txt" and skip.reason == "only boilerplate"


@pytest.mark.slow
def test_the_seed_questions_are_answered_with_a_copy_beside_the_original(tmp_path,
                                                                          real_embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEED_FILE, corpus / SEED_FILE.name)
    shutil.copy(SEED_FILE, corpus / COPY)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    report = build_index(settings, real_embedder)
    assert report.articles == 1 and [s.reason for s in report.skipped] == ["duplicate"]
    from qa.retriever import Retriever

    retriever = Retriever.open(settings, real_embedder)
    for question in read_jsonl(EVAL / "seed_dev.jsonl"):
        answer = retriever.answer(question["question"], 3)
        assert not answer.abstained, question
        assert answer.quotes[0].article_id == SEED_FILE.name
