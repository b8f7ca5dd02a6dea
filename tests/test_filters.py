"""search() filters by article and date, through FAISS selectors and BM25 masks."""
import json

import pytest

from qa.build import build_index
from qa.config import Settings
from qa import Filters
from qa.retriever import Retriever

ARTICLES = [
    {"id": "port", "title": "Port strike ends", "date": "2025-03-14",
     "url": "https://example.org/port",
     "text": "Dock workers ended the strike at the port after nine days."},
    {"id": "chips", "title": "Chip alliance formed", "date": "2025-07-28",
     "text": "Chip makers formed an alliance to share designs. The port of Shanghai hosted it."},
    {"id": "rates", "title": "Rates rise", "date": "2025-09-01",
     "text": "The central bank raised rates; the port authority said costs would rise."},
]


# Records of a .jsonl are namespaced by their file; filters also take the record's own id.
ID = {a["id"]: f"news.jsonl#{a['id']}" for a in ARTICLES}


@pytest.fixture(params=["fake", "real"])
def retriever(request, tmp_path, fake_embedder):
    embedder = fake_embedder if request.param == "fake" else request.getfixturevalue(
        "real_embedder")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "news.jsonl").write_text("".join(json.dumps(a) + "\n" for a in ARTICLES))
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    build_index(settings, embedder)
    return Retriever.open(settings, embedder)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_unfiltered_search_sees_every_article(retriever, mode):
    hits = retriever.search("port", k=10, mode=mode)
    assert {h.passage.article_id for h in hits} == set(ID.values())


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_filter_by_article_id_or_title(retriever, mode):
    by_id = retriever.search("port", k=10, mode=mode, filters=Filters(articles=("chips",)))
    by_title = retriever.search("port", k=10, mode=mode,
                                filters=Filters(articles=("rates rise", "Port strike ends")))
    by_full_id = retriever.search("port", k=10, mode=mode,
                                  filters=Filters(articles=(ID["chips"],)))
    assert {h.passage.article_id for h in by_id} == {ID["chips"]}
    assert {h.passage.article_id for h in by_full_id} == {ID["chips"]}
    assert {h.passage.article_id for h in by_title} == {ID["rates"], ID["port"]}


def test_filter_by_date_range(retriever):
    hits = retriever.search("port", k=10, filters=Filters(date_from="2025-07-01",
                                                          date_to="2025-08-31"))
    assert [h.passage.article_id for h in hits] == [ID["chips"]]
    later = retriever.search("port", k=10, filters=Filters(date_from="2025-08-01"))
    assert {h.passage.article_id for h in later} == {ID["rates"]}


def test_a_filter_that_matches_nothing_finds_nothing(retriever):
    assert retriever.search("port", k=5, filters=Filters(articles=("no-such",))) == []


def test_filtered_ids_are_exactly_the_articles_passages(retriever):
    db = retriever.generation.db
    every = db.passages(list(range(retriever.generation.passage_count)))
    for article in ("port", "chips", "rates"):
        ids = db.passage_ids_where(article_ids=(article,))
        assert ids.tolist() == sorted(p.id for p in every.values()
                                      if p.article_id == ID[article])
    assert db.passage_ids_where(date_from="2025-07-01").tolist() == sorted(
        p.id for p in every.values() if p.article_id in (ID["chips"], ID["rates"]))


def test_the_article_url_reaches_hits_and_quotes(retriever):
    (hit,) = retriever.search("port", k=1, filters=Filters(articles=("port",)))
    assert hit.passage.url == "https://example.org/port"
    quotes = retriever.answer("dock workers strike", k=1,
                              filters=Filters(articles=("port",))).quotes
    assert [q.url for q in quotes] == ["https://example.org/port"]


def test_filter_dates_are_read_like_article_dates():
    from qa.errors import ConfigError

    assert Filters(date_from="July 1, 2025").date_from == "2025-07-01"
    with pytest.raises(ConfigError, match="date_to must be a date"):
        Filters(date_to="next week")
