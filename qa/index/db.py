"""Passages, sentences and article metadata in SQLite (stdlib), fetched lazily by id."""
from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.types import Article, Passage, Span

SCHEMA = """
CREATE TABLE articles (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, source TEXT NOT NULL, date TEXT, url TEXT,
    content_hash TEXT NOT NULL, text TEXT NOT NULL
);
CREATE TABLE passages (
    id INTEGER PRIMARY KEY, article_id TEXT NOT NULL REFERENCES articles(id),
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, context TEXT NOT NULL,
    first_sentence INTEGER NOT NULL, sentence_count INTEGER NOT NULL
);
CREATE INDEX passages_by_article ON passages(article_id);
CREATE TABLE sentences (id INTEGER PRIMARY KEY, start INTEGER NOT NULL, "end" INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class ArticleInfo:
    """An indexed article without its text: what listings show."""

    id: str
    title: str
    source: str
    date: str | None
    url: str | None
    content_hash: str
    passages: int


@dataclass(frozen=True, slots=True, eq=False)
class ArticleSpans:
    """Every article's date and passage-id range (first..last), one row per article."""

    ids: tuple[str, ...]
    dates: np.ndarray  # str, ISO; "" where the article has no date
    dated: np.ndarray  # bool
    first: np.ndarray  # int64
    last: np.ndarray  # int64

    @property
    def passages(self) -> int:
        """How many passage ids there are (ids are 0..n-1)."""
        return int(self.last.max()) + 1 if len(self.last) else 0

    def mask(self, keep: np.ndarray) -> np.ndarray:
        """A bool mask over every passage id: True in the ranges of the kept articles."""
        edges = np.zeros(self.passages + 1, dtype=np.int32)
        edges[self.first[keep]] += 1  # ranges never overlap: each index appears once
        edges[self.last[keep] + 1] -= 1
        return np.cumsum(edges[:-1], dtype=np.int32) > 0


@dataclass(frozen=True, slots=True)
class PassageRow:
    """A passage to store: ids are dense 0..n-1, the same as the vector rows."""

    id: int
    article_id: str
    start: int
    end: int
    context: str
    first_sentence: int
    sentences: tuple[Span, ...]


def _fill(conn: sqlite3.Connection, articles: Iterable[tuple[Article, str]],
          passages: Iterable[PassageRow]) -> None:
    conn.executescript(SCHEMA)
    conn.executemany(
        "INSERT INTO articles VALUES (?, ?, ?, ?, ?, ?, ?)",
        ((a.id, a.title, a.source, a.date, a.url, h, a.text) for a, h in articles),
    )
    for row in passages:
        conn.execute(
            "INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?, ?)",
            (row.id, row.article_id, row.start, row.end, row.context,
             row.first_sentence, len(row.sentences)),
        )
        conn.executemany(
            "INSERT INTO sentences VALUES (?, ?, ?)",
            ((row.first_sentence + i, s.start, s.end) for i, s in enumerate(row.sentences)),
        )
    conn.commit()


def write_db(
    path: Path,
    articles: Iterable[tuple[Article, str]],
    passages: Iterable[PassageRow],
) -> None:
    """Write a new database file (articles with their content hash, passages, sentences)."""
    conn = sqlite3.connect(path)
    try:
        _fill(conn, articles, passages)
    finally:
        conn.close()


MMAP_BYTES = 1 << 34


class PassageDB:
    """Read-only access to one generation's database, safe to share between threads."""

    def __init__(self, path: Path, connection: sqlite3.Connection | None = None) -> None:
        # immutable=1: generations never change once written, so skip all locking.
        self._conn = connection or sqlite3.connect(
            f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False
        )
        # Read pages through a memory map rather than a read() call each: fetching a
        # question's ~100 candidate passages at 1M passages took 3.8 ms instead of 5.3
        # (10k: 3.0 vs 3.2). SQLite caps the size at its compiled maximum.
        self._conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        self._lock = threading.Lock()
        self._spans: ArticleSpans | None = None

    @classmethod
    def in_memory(cls, articles: Iterable[tuple[Article, str]],
                  passages: Iterable[PassageRow]) -> "PassageDB":
        """The same database held in memory (a generation assembled without disk)."""
        conn = sqlite3.connect(":memory:", check_same_thread=False)
        _fill(conn, articles, passages)
        return cls(Path(":memory:"), conn)

    def close(self) -> None:
        self._conn.close()

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def check(self) -> None:
        """Raise sqlite3.DatabaseError if the file is damaged."""
        result = self._query("PRAGMA quick_check")
        if result != [("ok",)]:
            raise sqlite3.DatabaseError(str(result[:3]))

    def check_rows(self, passages: int, sentences: int) -> None:
        """Raise sqlite3.DatabaseError if a passage points outside the sentences or has no
        article: the rows were edited by hand, or written by a broken build. (One pass over
        the passages table, without reading article texts.)"""
        ((bad,),) = self._query(
            """SELECT COUNT(*) FROM passages p
               WHERE p.id < 0 OR p.id >= ? OR p.first_sentence < 0 OR p.sentence_count < 1
                  OR p.first_sentence + p.sentence_count > ? OR p.start < 0
                  OR p."end" <= p.start
                  OR NOT EXISTS (SELECT 1 FROM articles a WHERE a.id = p.article_id)""",
            (passages, sentences),
        )
        if bad:
            raise sqlite3.DatabaseError(
                f"{bad} passage rows point outside the sentences or to no article"
            )

    def counts(self) -> tuple[int, int, int]:
        """(articles, passages, sentences)."""
        (row,) = self._query(
            "SELECT (SELECT COUNT(*) FROM articles), (SELECT COUNT(*) FROM passages),"
            " (SELECT COUNT(*) FROM sentences)"
        )
        return row

    def passages(self, ids: Sequence[int]) -> dict[int, Passage]:
        """The passages with these ids, with their text and sentence spans."""
        return {pid: passage for pid, (passage, _) in self.passages_with_rows(ids).items()}

    def passages_with_rows(self, ids: Sequence[int]) -> dict[int, tuple[Passage, int]]:
        """Like `passages`, with the sentence-vector row of each passage's first sentence."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._query(
            f"""SELECT p.id, p.article_id, a.title, a.source, a.date, p.start, p."end",
                       substr(a.text, p.start + 1, p."end" - p.start), p.context,
                       p.first_sentence, p.sentence_count, a.url
                FROM passages p JOIN articles a ON a.id = p.article_id
                WHERE p.id IN ({marks})""",
            [int(i) for i in ids],
        )
        sentence_ids = [s for r in rows for s in range(r[9], r[9] + r[10])]
        spans = self.sentence_spans(sentence_ids)
        return {
            r[0]: (
                Passage(
                    id=r[0], article_id=r[1], title=r[2], source=r[3], date=r[4], start=r[5],
                    end=r[6], text=r[7], context=r[8],
                    sentences=tuple(spans[s] for s in range(r[9], r[9] + r[10])), url=r[11],
                ),
                r[9],
            )
            for r in rows
        }

    def sentence_spans(self, ids: Sequence[int]) -> dict[int, Span]:
        if not ids:
            return {}
        rows = self._query(
            f'SELECT id, start, "end" FROM sentences WHERE id IN ({",".join("?" * len(ids))})',
            list(ids),
        )
        return {r[0]: Span(r[1], r[2]) for r in rows}

    def article_text(self, article_id: str) -> str | None:
        rows = self._query("SELECT text FROM articles WHERE id = ?", (article_id,))
        return rows[0][0] if rows else None

    def articles(self, limit: int | None = None) -> list[ArticleInfo]:
        """Every article (or the first `limit`), newest date first, then by title."""
        rows = self._query(
            """SELECT a.id, a.title, a.source, a.date, a.url, a.content_hash, COUNT(p.id)
               FROM articles a LEFT JOIN passages p ON p.article_id = a.id
               GROUP BY a.id ORDER BY a.date IS NULL, a.date DESC, a.title LIMIT ?""",
            (-1 if limit is None else limit,),
        )
        return [ArticleInfo(*r) for r in rows]

    def passage_ids_where(
        self, article_ids: Sequence[str] = (), titles: Sequence[str] = (),
        date_from: str | None = None, date_to: str | None = None, undated: bool = False,
    ) -> np.ndarray:
        """Ids (int64, ascending) of the passages `passage_mask_where` keeps."""
        return np.flatnonzero(self.passage_mask_where(
            article_ids, titles, date_from, date_to, undated))

    def passage_mask_where(
        self, article_ids: Sequence[str] = (), titles: Sequence[str] = (),
        date_from: str | None = None, date_to: str | None = None, undated: bool = False,
    ) -> np.ndarray:
        """A bool mask over passage ids: True where the passage's article matches every
        given condition; with `undated`, an article without a date passes the date range.

        An article id also matches .jsonl records by the id they have in their file (`x`
        for `feed.jsonl#x`, in whichever file) when no article has exactly that id.

        Dates are compared in memory against every article's date and passage range, read
        once per generation (`article_spans`): a date filter over a million passages is
        then a few ms of numpy instead of 74 ms of SQL (bench/latency.py).
        """
        spans = self.article_spans()
        keep = np.ones(len(spans.ids), dtype=bool)
        if article_ids or titles:
            named = self._named_articles(article_ids, titles)
            keep &= np.fromiter((i in named for i in spans.ids), bool, len(spans.ids))
        if date_from or date_to:
            # ISO dates compare as strings, as SQLite compared them.
            within = spans.dated.copy()
            if date_from:
                within &= spans.dates >= date_from
            if date_to:
                within &= spans.dates <= date_to
            keep &= (within | ~spans.dated) if undated else within
        return spans.mask(keep)

    def _named_articles(self, article_ids: Sequence[str], titles: Sequence[str]) -> set[str]:
        """The ids of the articles named by id, by a .jsonl record's own id, or by title."""
        # The names travel as one JSON array each (json_each), never one SQL variable or
        # OR-term per name: 991 names overran SQLite's expression depth (a 500 per request).
        # A .jsonl record's id is `file.jsonl#id`: its own id alone matches too (after any
        # "#" of the full id), unless it is some article's full id.
        rows = self._query(
            """WITH RECURSIVE
                wanted(name) AS (SELECT value FROM json_each(?)),
                loose(name) AS (SELECT name FROM wanted
                                WHERE name NOT IN (SELECT id FROM articles)),
                tail(id, rest) AS (
                    SELECT id, substr(id, instr(id, '#') + 1) FROM articles
                    WHERE instr(id, '#') > 0 AND EXISTS (SELECT 1 FROM loose)
                    UNION ALL
                    SELECT id, substr(rest, instr(rest, '#') + 1) FROM tail
                    WHERE instr(rest, '#') > 0)
               SELECT id FROM articles WHERE id IN (SELECT name FROM wanted)
               UNION SELECT id FROM tail WHERE rest IN (SELECT name FROM loose)
               UNION SELECT id FROM articles WHERE lower(title) IN (SELECT value FROM json_each(?))
            """,
            [json.dumps(list(dict.fromkeys(article_ids))),
             json.dumps(list(dict.fromkeys(t.lower() for t in titles)))],
        )
        return {r[0] for r in rows}

    def article_spans(self) -> ArticleSpans:
        """Every article's date and passage-id range, read once (a generation never
        changes). A build gives each article's passages consecutive ids, so one range per
        article describes them."""
        with self._lock:
            if self._spans is None:
                rows = self._conn.execute(
                    "SELECT a.id, a.date,"
                    " (SELECT MIN(id) FROM passages WHERE article_id = a.id),"
                    " (SELECT MAX(id) FROM passages WHERE article_id = a.id)"
                    " FROM articles a").fetchall()
                rows = [r for r in rows if r[2] is not None]
                self._spans = ArticleSpans(
                    ids=tuple(r[0] for r in rows),
                    dates=np.asarray([r[1] or "" for r in rows], dtype=str),
                    dated=np.asarray([bool(r[1]) for r in rows], dtype=bool),
                    first=np.asarray([r[2] for r in rows], dtype=np.int64),
                    last=np.asarray([r[3] for r in rows], dtype=np.int64),
                )
            return self._spans

    def passage_rows(self) -> dict[str, list[PassageRow]]:
        """article id -> its stored rows, in id order: what an incremental build reuses."""
        query = 'SELECT id, start, "end" FROM sentences'
        spans = {r[0]: Span(r[1], r[2]) for r in self._query(query)}
        out: dict[str, list[PassageRow]] = {}
        for pid, aid, start, end, context, first, count in self._query(
            'SELECT id, article_id, start, "end", context, first_sentence, sentence_count'
            " FROM passages ORDER BY id"
        ):
            sentences = tuple(spans[s] for s in range(first, first + count))
            out.setdefault(aid, []).append(
                PassageRow(pid, aid, start, end, context, first, sentences)
            )
        return out

    def content_hashes(self) -> dict[str, str]:
        return dict(self._query("SELECT id, content_hash FROM articles"))
