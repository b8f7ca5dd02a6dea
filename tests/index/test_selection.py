"""Filters as passage masks: PassageDB.passage_mask_where and qa.index.selection.as_mask."""
import itertools

import numpy as np
import pytest

from qa.index.db import PassageDB, PassageRow
from qa.index.selection import as_mask
from qa.types import Article, Span

# (id, title, date, passages): undated articles, a shared date and uneven lengths.
ARTICLES = [
    ("a.jsonl#one", "One", "2023-01-05", 3),
    ("two", "Two", None, 1),
    ("b.jsonl#three", "Three", "2023-06-30", 2),
    ("four", "Four", "2024-02-29", 4),
    ("five", "Five", None, 2),
    ("six", "Six", "2023-06-30", 1),
]


@pytest.fixture(scope="module")
def db():
    articles, rows, pid = [], [], 0
    for aid, title, day, count in ARTICLES:
        articles.append((Article(aid, title, "x " * count, "src", day), "hash"))
        for i in range(count):
            rows.append(PassageRow(pid, aid, 2 * i, 2 * i + 1, "", pid, (Span(2 * i, 2 * i + 1),)))
            pid += 1
    return PassageDB.in_memory(articles, rows)


def expected(date_from=None, date_to=None, undated=False, names=()):
    """The mask by brute force: article by article, passage by passage."""
    out = []
    for aid, title, day, count in ARTICLES:
        keep = not names or aid in names or aid.split("#")[-1] in names or title.lower() in {
            n.lower() for n in names}
        if date_from or date_to:
            if day is None:
                keep = keep and undated
            else:
                keep = keep and (not date_from or day >= date_from) and (
                    not date_to or day <= date_to)
        out += [keep] * count
    return np.asarray(out)


@pytest.mark.parametrize("date_from,date_to,undated,names", list(itertools.product(
    [None, "2023-01-05", "2023-06-30", "2025-01-01"], [None, "2023-06-30", "2022-12-31"],
    [False, True], [(), ("three",), ("Four", "two"), ("nothing",)])))
def test_the_mask_keeps_exactly_the_matching_articles_passages(db, date_from, date_to, undated,
                                                               names):
    mask = db.passage_mask_where(article_ids=names, titles=names, date_from=date_from,
                                 date_to=date_to, undated=undated)
    want = expected(date_from, date_to, undated, names)
    assert mask.dtype == bool and mask.tolist() == want.tolist()
    assert db.passage_ids_where(article_ids=names, titles=names, date_from=date_from,
                                date_to=date_to, undated=undated).tolist() == (
        np.flatnonzero(want).tolist())


def test_article_spans_are_read_once_per_database(db):
    assert db.article_spans() is db.article_spans()
    assert db.article_spans().passages == sum(a[3] for a in ARTICLES)


def test_as_mask_takes_ids_or_a_mask_of_any_length():
    assert as_mask(np.array([0, 3, 3, -1, 9]), 5).tolist() == [True, False, False, True, False]
    assert as_mask(np.array([True, False]), 4).tolist() == [True, False, False, False]
    assert as_mask(np.array([False, True, True]), 2).tolist() == [False, True]
    same = np.array([True, False, True])
    assert as_mask(same, 3) is same
