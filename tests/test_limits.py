"""Defect 1: k is capped (a setting), and merging overlapping hits stays near-linear."""
from __future__ import annotations

import time

import pytest

from conftest import FakeEmbedder
from index_helpers import ARTICLES, memory_generation
from qa.answer import merge_overlapping
from qa.config import Settings
from qa.errors import ConfigError
from qa.index.live import StaticIndex
from qa.retriever import Retriever
from qa.types import Article, Hit, Passage


def articles() -> list[Article]:
    out = []
    for name, text in ARTICLES.items():
        title, _, body = text.partition("\n\n")
        out.append(Article(id=name, title=title, text=body, source=name))
    return out


@pytest.fixture(scope="module")
def retriever() -> Retriever:
    embedder = FakeEmbedder()
    return Retriever(StaticIndex(memory_generation(articles(), embedder)), embedder,
                     Settings(max_k=20))


def test_the_cap_is_a_setting_with_a_default():
    assert Settings().max_k == 100
    with pytest.raises(ConfigError, match="max_k must be > 0"):
        Settings(max_k=0)
    with pytest.raises(ConfigError, match="k must be at most max_k"):
        Settings(k=30, max_k=20)


def test_the_cap_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("VERBATIM_MAX_K", "7")
    assert Settings.from_env().max_k == 7
    monkeypatch.setenv("VERBATIM_MAX_K", "lots")
    with pytest.raises(ConfigError, match="VERBATIM_MAX_K must be a whole number"):
        Settings.from_env()


@pytest.mark.parametrize("k", [21, 10**9])
def test_search_and_answer_refuse_k_over_the_cap(retriever, k):
    for call in (retriever.search, retriever.answer, lambda q, k: retriever.search_batch([q], k)):
        with pytest.raises(ConfigError, match=f"k must be at most 20, got {k}"):
            call("Which bakery won the bread prize?", k)


def test_k_at_the_cap_works(retriever):
    assert retriever.search("Which bakery won the bread prize?", 20)
    answer = retriever.answer("Which bakery won the bread prize?", 20)
    assert answer.quotes or answer.closest


def passage(pid: int, start: int, end: int, article: str = "a") -> Passage:
    return Passage(id=pid, article_id=article, title="T", source="a.txt", date=None,
                   start=start, end=end, text="x" * (end - start))


def hit(pid: int, start: int, end: int, score: float, article: str = "a") -> Hit:
    return Hit(passage=passage(pid, start, end, article), score=score, dense_score=score)


def test_a_hit_joining_two_stretches_merges_all_three():
    # A and B are apart; C overlaps both: one quote, ranked as A (the best of them).
    merged = merge_overlapping([hit(1, 0, 10, 0.9), hit(2, 20, 30, 0.8),
                                hit(3, 40, 50, 0.75, article="b"), hit(4, 8, 22, 0.7)])
    assert [(m.first.passage.id, m.start, m.end) for m in merged] == [(1, 0, 30), (3, 40, 50)]
    assert merged[0].rank_score == 0.9 and len(merged[0].text) == 30


def test_merging_many_hits_is_not_quadratic():
    # Disjoint hits of one article: 4x the hits must cost about 4x the time, not 16x
    # (compared pairwise, 12,000 took ~7 s here). A ratio, so a busy machine cannot fail it.
    def seconds(count: int) -> float:
        hits = [hit(i, 20 * i, 20 * i + 10, 1 - i / 10**5) for i in range(count)]
        started = time.perf_counter()
        assert len(merge_overlapping(hits)) == count
        return time.perf_counter() - started

    small = min(seconds(3000) for _ in range(3))
    large = min(seconds(12000) for _ in range(3))
    assert large < 9 * small, (small, large)
