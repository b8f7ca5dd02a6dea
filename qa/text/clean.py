"""Pure text cleaning: paragraphs, whitespace, and boilerplate that repeats."""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from qa.scoring import BYLINE_LABEL, masthead

_SPACE = re.compile(r"\s+")
_BLANK_LINE = re.compile(r"\n[ \t\r\f\v\u00a0]*\n")
_MD_HEADING = re.compile(r"^#{1,6}\s+")
_MD_BLOCK_START = re.compile(r"^(#{1,6}\s|[-*+]\s|\d+[.)]\s|>)")


def normalize_whitespace(text: str) -> str:
    """Collapse every run of whitespace to one space and strip the ends."""
    return _SPACE.sub(" ", text).strip()


def line_paragraphs(text: str) -> list[str]:
    """Paragraphs of a plain or extracted text: every non-blank line is one."""
    lines = (normalize_whitespace(line) for line in text.splitlines())
    return [line for line in lines if line]


def markdown_paragraphs(text: str) -> list[str]:
    """Paragraphs of Markdown: blank-line separated blocks, wrapped lines joined.

    Headings and list items stay paragraphs of their own; heading markers are dropped
    so quotes read as prose.
    """
    paragraphs: list[str] = []
    for block in _BLANK_LINE.split(text.replace("\r\n", "\n")):
        current: list[str] = []
        for raw in block.split("\n"):
            line = raw.strip()
            if not line:
                continue
            if _MD_BLOCK_START.match(line) and current:
                paragraphs.append(normalize_whitespace(" ".join(current)))
                current = []
            if _MD_HEADING.match(line):
                paragraphs.append(normalize_whitespace(_MD_HEADING.sub("", line)))
                continue
            current.append(line)
        if current:
            paragraphs.append(normalize_whitespace(" ".join(current)))
    return [p for p in paragraphs if p]


def _key(paragraph: str) -> str:
    return paragraph.casefold()


def find_repeats(articles: Iterable[Sequence[str]]) -> tuple[frozenset[str], frozenset[str]]:
    """Keys of paragraphs repeated inside one article, and of those shared by several."""
    within: set[str] = set()
    across: Counter[str] = Counter()
    for paragraphs in articles:
        counts = Counter(_key(p) for p in paragraphs)
        within.update(key for key, n in counts.items() if n > 1)
        across.update(counts.keys())
    return frozenset(within), frozenset(key for key, n in across.items() if n > 1)


def find_boilerplate(articles: Iterable[Sequence[str]]) -> frozenset[str]:
    """Keys of paragraphs repeated inside one article or shared by several articles.

    A promo or newsletter box that a scraper picked up repeats; real reporting does not.
    """
    within, across = find_repeats(articles)
    return within | across


def remove_boilerplate(paragraphs: Sequence[str], boilerplate: frozenset[str]) -> list[str]:
    """The paragraphs whose key is not boilerplate, in order."""
    return [p for p in paragraphs if _key(p) not in boilerplate]


def join_paragraphs(paragraphs: Sequence[str]) -> str:
    """The stored article text: paragraphs separated by one blank line."""
    return "\n\n".join(paragraphs)


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) offsets of the paragraphs of a text made by `join_paragraphs`."""
    spans, start = [], 0
    for paragraph in text.split("\n\n"):
        if paragraph:
            spans.append((start, start + len(paragraph)))
        start += len(paragraph) + 2
    return spans


def headline_index(lines: Sequence[str]) -> int:
    """Which of a plain-text page's first lines is its headline: 0, or 1 when line 0 is a
    section label (a kicker such as "New Alliances, New Era": at most 5 words) and line 1
    reads as a headline that is longer (5 to 25 words, capitalised, not ending like a
    sentence or a list lead, not a byline or dateline).

    Measured: it picks line 1 for the seed article and line 0 for all 1,127 realtimeqa-dev
    and 24 squad-dev articles written as title line + text.
    """
    if len(lines) < 3:
        return 0
    label, head = lines[0], lines[1]
    label_words, head_words = len(label.split()), len(head.split())
    is_label = label_words <= 5 and len(label) <= 40 and not re.search(r"[.!?:;,]$", label)
    is_headline = (5 <= head_words <= 25 and len(head) <= 200 and head[:1].isupper()
                   and not re.search(r"[.:;,]$", head) and masthead([head]) == [None]
                   and not BYLINE_LABEL.match(head))
    return 1 if is_label and is_headline and head_words > label_words else 0
