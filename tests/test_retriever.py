"""The Retriever from its parts: an index assembled in memory, a fake embedder, a re-ranker."""
from __future__ import annotations

import dataclasses

import pytest

from conftest import FakeEmbedder
from index_helpers import ARTICLES, memory_generation
from qa.config import Settings
from qa.errors import ConfigError
from qa.index.live import StaticIndex
from qa.retriever import Retriever
from qa.types import Article


def articles() -> list[Article]:
    out = []
    for name, text in ARTICLES.items():
        title, _, body = text.partition("\n\n")
        out.append(Article(id=name, title=title, text=body, source=name))
    return out


@pytest.fixture(scope="module")
def retriever() -> Retriever:
    embedder = FakeEmbedder()
    return Retriever(StaticIndex(memory_generation(articles(), embedder)), embedder, Settings())


def test_search_without_an_index_on_disk(retriever):
    hits = retriever.search("Which bakery won the bread prize for its rye loaf?", k=2)
    assert hits[0].passage.article_id == "gamma.txt"
    assert "rye loaf" in hits[0].passage.text
    assert retriever.status().generation == "memory" and retriever.status().articles == 3


def test_answer_quotes_the_article(retriever):
    answer = retriever.answer("How many books does the Beta library have?", k=1)
    assert not answer.abstained and answer.quotes[0].article_id == "beta.txt"


class Reverse:
    """A re-ranker that puts the fused order upside down (and says what it saw)."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def rerank(self, question, hits):
        self.seen.append(len(hits))
        return [dataclasses.replace(h, score=1.0 - h.score) for h in reversed(hits)]


def test_a_reranker_sees_every_candidate_and_decides_the_order(retriever):
    reranker = Reverse()
    plain = retriever.search("harbour wall council", k=10)
    reranked = Retriever(retriever.index, retriever.embedder, retriever.settings, reranker)
    hits = reranked.search("harbour wall council", k=2)
    assert reranker.seen == [len(plain)] and len(plain) > 2
    assert [h.passage.id for h in hits] == [h.passage.id for h in reversed(plain)][:2]


@pytest.mark.parametrize("k", [0, -1, "3", 2.5, True])
def test_k_is_checked(retriever, k):
    with pytest.raises(ConfigError, match="k must be > 0"):
        retriever.search("harbour", k=k)


def test_blank_question_finds_nothing(retriever):
    assert retriever.search("   ", k=3) == []
    assert retriever.answer("   ").quotes == ()


def dated_retriever() -> Retriever:
    """Three reports of a harbour, from 2023, 2024 and with no date."""
    texts = {"2023": "In 2023 the harbour wall of Tarnby was repaired by the council.",
             "2024": "In 2024 the harbour wall of Tarnby was raised by the council.",
             None: "The harbour wall of Tarnby was painted by the council."}
    embedder = FakeEmbedder()
    found = [Article(id=f"wall-{year}", title="Harbour wall", text=text, source="news.jsonl",
                     date=f"{year}-05-01" if year else None)
             for year, text in texts.items()]
    return Retriever(StaticIndex(memory_generation(found, embedder)), embedder,
                     Settings(reranker=False, abstain_threshold=0.0))


def test_time_words_restrict_the_dates_and_keep_undated_articles():
    from datetime import date

    retriever = dated_retriever()
    question = "What happened to the harbour wall of Tarnby in 2023?"
    answer = retriever.answer(question, k=3, as_of=date(2025, 1, 1))
    assert {q.article_id for q in answer.quotes} == {"wall-2023", "wall-None"}
    assert answer.read_time == "articles from 2023"
    # "last year", asked in 2025: 2024 and the undated one.
    answer = retriever.answer("What happened to the harbour wall last year?", k=3,
                              as_of=date(2025, 3, 1))
    assert {q.article_id for q in answer.quotes} == {"wall-2024", "wall-None"}


def test_dates_given_by_the_caller_win_and_no_time_words_means_every_date():
    from datetime import date

    from qa.types import Filters

    retriever = dated_retriever()
    answer = retriever.answer("What happened to the harbour wall in 2023?", k=3,
                              filters=Filters(date_from="2024-01-01"), as_of=date(2025, 1, 1))
    assert {q.article_id for q in answer.quotes} == {"wall-2024"}
    assert answer.read_time is None
    answer = retriever.answer("What happened to the harbour wall?", k=3)
    assert {q.article_id for q in answer.quotes} == {"wall-2023", "wall-2024", "wall-None"}
    assert answer.read_time is None


def test_time_words_that_match_no_article_fall_back_to_every_date():
    retriever = dated_retriever()
    answer = retriever.answer("What happened to the harbour wall of Tarnby in 1990?", k=3)
    assert answer.read_time is None
    assert "wall-2023" in {q.article_id for q in answer.quotes}


@pytest.mark.parametrize("question, expected", [
    ("What happened in 2023?", ("2023-01-01", "2023-12-31")),
    ("What aired on Sunday, Jan. 7, 2024?", ("2023-12-31", "2024-01-14")),  # a week each side
    ("What happened yesterday?", ("2025-03-02", "2025-03-10")),  # not past today
    ("Which city plans to ban cars by 2028?", None),  # a deadline, not an article date
    ("What will happen in 2031?", None),
    ("What happened before July 2024?", (None, "2024-06-30")),
])
def test_the_dates_searched_for_time_words(question, expected):
    from datetime import date

    from qa.dates import read_time
    from qa.retriever import article_dates

    today = date(2025, 3, 10)
    assert article_dates(read_time(question, today), today) == expected


def test_the_recency_prior_lifts_newer_articles_and_never_buries_undated_ones():
    from datetime import date

    plain = dated_retriever()
    question = "What happened to the harbour wall of Tarnby?"
    before = [h.passage.article_id for h in plain.search(question, k=3)]
    prior = Retriever(plain.index, plain.embedder,
                      dataclasses.replace(plain.settings, recency_weight=10.0))
    # Asked in mid-2023, the 2023 report is the latest there was.
    order = [q.article_id for q in prior.answer(question, k=3, as_of=date(2023, 6, 1)).quotes]
    assert order[0] == "wall-2023" and before[0] != "wall-2023"
    asked = date(2024, 6, 1)
    # The older dated report gains less; the undated one keeps its plain score.
    scores = {h.passage.article_id: h.score for h in plain.search(question, k=3)}
    lifted = {h.passage.article_id: h.score
              for h in prior._search_batch([question], 3, asked_on=asked)[0]}
    assert lifted["wall-None"] == scores["wall-None"]
    assert lifted["wall-2024"] - scores["wall-2024"] > lifted["wall-2023"] - scores["wall-2023"] > 0
    # A question with time words is filtered instead; asked before 2024, the 2024 report
    # is news from the future and gains nothing.
    early = {h.passage.article_id: h.score
             for h in prior._search_batch([question], 3, asked_on=date(2023, 6, 1))[0]}
    assert early["wall-2024"] == scores["wall-2024"]


def test_a_question_that_could_stand_alone_leans_only_on_a_turn_about_its_articles(retriever):
    searched = []
    counting = Retriever(retriever.index, retriever.embedder, retriever.settings)
    search = counting._search_batch
    counting._search_batch = lambda *a, **kw: searched.append(a[0]) or search(*a, **kw)
    first = "What did the council of Alpha vote to rebuild?"
    history = ((first, counting.answer(first, k=1)),)
    assert history[0][1].quotes[0].article_id == "alpha.txt"
    # "its" has its own referent, and read alone the question quotes another article: it
    # is answered alone, without a second search with the council's words.
    searched.clear()
    question = "Which bakery won the bread prize for its rye loaf?"
    after = counting.answer(question, k=1, history=history)
    assert len(searched) == 1 and after.read_with is None
    assert after.quotes[0].article_id == "gamma.txt"
    # A pronoun question that stays on the harbour article is also read with the turn.
    searched.clear()
    counting.answer("How long should the work on it last?", k=1, history=history)
    assert len(searched) == 2
