"""Frozen value types that flow between the modules (no I/O here)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Article:
    """One cleaned article; `text` is what passages and quotes are cut from."""

    id: str
    title: str
    text: str
    source: str
    date: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Span:
    """Character offsets [start, end) into an article's text."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Passage:
    """A slice of an article: `text == article.text[start:end]`.

    `context` (title, section heading) is prepended when embedding only; it is never
    part of the quoted text. `sentences` are the passage's sentences as article offsets.
    """

    id: int
    article_id: str
    title: str
    source: str
    date: str | None
    start: int
    end: int
    text: str
    context: str = ""
    sentences: tuple[Span, ...] = ()
    url: str | None = None


@dataclass(frozen=True, slots=True)
class ScoredSpan:
    """A sentence (article offsets): `similarity` is its cosine to the question, `score`
    adds how much of the question's wording it covers (what highlights are chosen by)."""

    start: int
    end: int
    score: float
    similarity: float


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved passage with its final score and the scores it was fused from."""

    passage: Passage
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None
    sentences: tuple[ScoredSpan, ...] = ()


@dataclass(frozen=True, slots=True)
class Quote:
    """Verbatim text of one article with the answering sentence(s) marked.

    `highlights` are offsets into `text` (not into the article).
    """

    text: str
    article_id: str
    title: str
    source: str
    date: str | None
    start: int
    end: int
    score: float
    highlights: tuple[Span, ...] = ()
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """What the user sees: quotes that answer, or an abstention with the nearest misses."""

    question: str
    quotes: tuple[Quote, ...] = ()
    abstained: bool = False
    closest: tuple[Quote, ...] = field(default=())
