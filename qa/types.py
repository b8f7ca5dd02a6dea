"""Frozen value types that flow between the modules (no I/O here)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit


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
    """A retrieved passage with its final score and the scores it was fused from.

    `answer_probability` is set when the reader (qa.reader) read the hit: the probability
    that its best sentence answers (0 for a hit it did not read); None without a reader.
    """

    passage: Passage
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None
    sentences: tuple[ScoredSpan, ...] = ()
    answer_probability: float | None = None


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

    @property
    def publisher(self) -> str:
        """Who published the article: its URL's host ("reuters.com"), else its file."""
        return publisher_of(self.url) or self.source


def publisher_of(url: str | None) -> str | None:
    """The host of a web URL without "www.", or None for no URL or another kind."""
    if not url or not url.lower().startswith(("https://", "http://")):
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:  # an unparseable URL (an article's field is untrusted)
        return None
    return host.removeprefix("www.") if host else None


# How sure an answer is: "answered"; "low" (quotes that match the question only loosely,
# e.g. in other words than the article's: shown as "may answer"); "none" (abstained).
Confidence = Literal["answered", "low", "none"]


@dataclass(frozen=True, slots=True)
class Answer:
    """What the user sees: quotes that answer, or an abstention with the nearest misses.

    `confidence` grades it (see Confidence); when it is "none", `abstained` is set and
    `closest` holds the ranked passages, of which a page shows the first few.
    """

    question: str
    quotes: tuple[Quote, ...] = ()
    abstained: bool = False
    closest: tuple[Quote, ...] = field(default=())
    confidence: Confidence = "answered"
    # The best relevance among the quotes found, what `confidence` grades: the reader's
    # probability that the first answers, or without the reader a cosine (qa.answer).
    relevance: float = 0.0
    # The earlier question a follow-up was read with (qa.followup), None when it was read
    # on its own: the faces show it, so a reader sees why these quotes were chosen.
    read_with: str | None = None
    # How time words in the question restricted the articles ("articles from 2023"), None
    # when they did not (qa.dates.read_time).
    read_time: str | None = None


@dataclass(frozen=True, slots=True)
class Filters:
    """Restrict a search to some articles (by id or title) and/or a date range.

    Dates may be written as people type them ("July 1, 2025"); they are kept as ISO dates,
    as stored articles' dates are, so they compare alike. `undated` keeps articles that
    have no date in a date range (what time words in a question ask for: an article
    whose date is unknown must not disappear).
    """

    articles: tuple[str, ...] = ()
    date_from: str | None = None
    date_to: str | None = None
    undated: bool = False

    def __post_init__(self) -> None:
        from qa.dates import normalize_date
        from qa.errors import ConfigError

        if isinstance(self.articles, str):  # Filters(articles="x") would match nothing
            raise ConfigError(
                f"articles must be a list of article ids or titles, got the text "
                f"{self.articles!r}; write articles=({self.articles!r},)"
            )
        for item in self.articles:
            if not isinstance(item, str) or any("\ud800" <= c <= "\udfff" for c in item):
                raise ConfigError(f"articles must be article ids or titles (text), got {item!r}")
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value:
                iso = normalize_date(value)
                if iso is None:
                    raise ConfigError(f"{name} must be a date like 2025-07-28, got {value!r}")
                object.__setattr__(self, name, iso)
        object.__setattr__(self, "articles", tuple(self.articles))

    @property
    def active(self) -> bool:
        return bool(self.articles or self.date_from or self.date_to)
