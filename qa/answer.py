"""Hits -> verbatim Quotes with the answering sentence marked, or an abstention."""
from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from qa.config import Settings
from qa.scoring import ANSWERED, NONE, confidence, is_heading, masthead
from qa.types import Answer, Hit, Quote, ScoredSpan, Span


# A question about who wrote, edited or reported a piece: the only kind a byline answers.
_BYLINE_QUESTION = re.compile(
    r"\b(wr[io]te|written|writers?|edit(s|ed|or|ors|ing)?|authors?|authored|by-?lines?|"
    r"reporters?|reported by|journalists?|credited)\b", re.IGNORECASE)


def is_byline(text: str) -> bool:
    """Is this passage a page's byline and nothing else ("Edited By", a name, a role)?"""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return bool(paragraphs) and all(kind == "byline" for kind in masthead(paragraphs))


def answering_hits(question: str, hits: Sequence[Hit]) -> list[Hit]:
    """`hits` without bylines, unless the question asks who wrote or edited: a name in a
    byline looks like the answer to any "who" question (it was quoted for 4 of the 37
    seed questions, none about the author)."""
    if _BYLINE_QUESTION.search(question):
        return list(hits)
    return [hit for hit in hits if not is_byline(hit.passage.text)]


@dataclass(frozen=True, slots=True)
class _Merged:
    """Overlapping hits of one article joined into one stretch of its text."""

    first: Hit
    start: int
    end: int
    text: str
    rank_score: float
    relevance: float
    sentences: tuple[ScoredSpan, ...]


def relevance(hit: Hit) -> float:
    """How well a hit answers on an absolute scale (what abstention compares): the
    reader's probability that it answers, where the reader read it; else the best cosine
    of the passage or one of its sentences to the question."""
    if hit.answer_probability is not None:
        return hit.answer_probability
    return similarity(hit)


def similarity(hit: Hit) -> float:
    """The best cosine of the passage or one of its sentences to the question: how near
    the hit is to the question's topic, whether or not the reader read it."""
    best_sentence = max((s.similarity for s in hit.sentences), default=0.0)
    return max(hit.dense_score or 0.0, best_sentence)


def stitch(a_start: int, a_text: str, b_start: int, b_text: str) -> tuple[int, str]:
    """The union of two overlapping slices of one text, as (start, text)."""
    if b_start < a_start:
        a_start, a_text, b_start, b_text = b_start, b_text, a_start, a_text
    a_end = a_start + len(a_text)
    return a_start, a_text + b_text[a_end - b_start:]


def merge_overlapping(hits: Sequence[Hit]) -> list[_Merged]:
    """Join hits of the same article whose spans overlap or touch; keep rank order.

    Each article's stretches are kept disjoint and sorted by start, so a hit finds the
    ones it touches by binary search instead of being compared with every earlier one
    (pairwise, 30,000 hits took 79 s). A hit that bridges two stretches joins all three.
    """
    merged: list[_Merged | None] = []
    # article id -> (starts of its stretches, ascending; their positions in `merged`)
    stretches: dict[str, tuple[list[int], list[int]]] = {}
    for hit in hits:
        p = hit.passage
        starts, slots = stretches.setdefault(p.article_id, ([], []))
        hi = bisect_right(starts, p.end)
        lo = hi
        while lo > 0 and merged[slots[lo - 1]].end >= p.start:  # ends ascend as starts do
            lo -= 1
        touched = slots[lo:hi]
        if not touched:
            merged.append(_Merged(hit, p.start, p.end, p.text, hit.score, relevance(hit),
                                  hit.sentences))
            starts.insert(hi, p.start)
            slots.insert(hi, len(merged) - 1)
            continue
        best = merged[min(touched)]  # the best-ranked stretch keeps its place and score
        # Relevances of one kind only: a probability is not weighed against a cosine (a
        # window the reader did not read, beside one it read).
        unread = best.first.answer_probability is None
        start, text, spans = p.start, p.text, {}
        rel = relevance(hit) if (hit.answer_probability is None) == unread else best.relevance
        for slot in touched:
            m = merged[slot]
            start, text = stitch(start, text, m.start, m.text)
            spans.update({(s.start, s.end): s for s in m.sentences})
            if (m.first.answer_probability is None) == unread:
                rel = max(rel, m.relevance)
            merged[slot] = None
        spans.update({(s.start, s.end): s for s in hit.sentences})
        merged[min(touched)] = _Merged(
            best.first, start, start + len(text), text, best.rank_score, rel,
            tuple(sorted(spans.values(), key=lambda s: s.start)),
        )
        starts[lo:hi] = [start]
        slots[lo:hi] = [min(touched)]
    return [m for m in merged if m is not None]


def pick_highlights(
    sentences: Sequence[ScoredSpan], text: str, offset: int, margin: float
) -> tuple[Span, ...]:
    """The best-scoring sentence, and the runner-up when it is within `margin` of it.

    The reader scores a sentence it read with the one before it as one span (see
    qa.reader.rerank). When a span overlapping the best one scores within `margin` of it,
    only the sentences the two share are marked: both readings credit them (a sentence
    inside the best span scoring as well answers in fewer words). Headings are marked
    only if the quote has nothing else. `text` is the quoted text and `offset` its start
    in the article. Spans come back in reading order.
    """
    prose = [s for s in sentences if not is_heading(text[s.start - offset:s.end - offset])]
    ranked = sorted(prose or sentences, key=lambda s: -s.score)
    top = ranked[0]
    close = [s for s in ranked[1:] if top.score - s.score <= margin]
    apart = [s for s in close if s.end <= top.start or s.start >= top.end]
    shared = next((s for s in close if s not in apart), None)
    best = Span(max(top.start, shared.start), min(top.end, shared.end)) if shared else top
    chosen = [best] + apart[:1]
    return tuple(Span(s.start, s.end) for s in sorted(chosen, key=lambda s: s.start))


def to_quote(m: _Merged, margin: float) -> Quote:
    p = m.first.passage
    highlights = tuple(
        Span(s.start - m.start, s.end - m.start)
        for s in pick_highlights(m.sentences, m.text, m.start, margin)
    )
    return Quote(
        text=m.text, article_id=p.article_id, title=p.title, source=p.source, date=p.date,
        start=m.start, end=m.end, score=round(m.rank_score, 4), highlights=highlights,
        url=p.url,
    )


def diversify(merged: Sequence[_Merged], per_article: int) -> list[_Merged]:
    """Rank order, except that an article's quotes past its first `per_article` wait until
    every other article's have been placed (they fill the list, they are not dropped: a
    one-article corpus still yields k quotes)."""
    counts: dict[str, int] = {}
    first: list[_Merged] = []
    later: list[_Merged] = []
    for m in merged:
        article = m.first.passage.article_id
        counts[article] = counts.get(article, 0) + 1
        (first if counts[article] <= per_article else later).append(m)
    return first + later


def relevance_of(answer: Answer) -> float:
    """How well an answer answers: the best relevance of its quotes (see `relevance`,
    which the quotes' hits were graded by); -1 for one that abstained."""
    return -1.0 if answer.abstained or not answer.quotes else answer.relevance


def build_answer(question: str, hits: Sequence[Hit], k: int, settings: Settings) -> Answer:
    """At most k quotes, graded by the best relevance among them (qa.scoring.confidence).

    "none" abstains and keeps the ranked quotes as `closest` (the page and the CLI show
    the first few); "low" quotes them all, best first (each may answer); "answered" leaves
    out quotes below the abstention threshold.
    """
    ranked = diversify(merge_overlapping(answering_hits(question, hits)),
                       settings.max_quotes_per_article)
    # Relevance is the reader's probability when it read the hits, else a cosine; when the
    # reader read only the first (the stages agreed, qa.reader.rerank), the answer is
    # graded by what it read.
    read = any(h.answer_probability is not None for h in hits)
    best = max((m.relevance for m in ranked
                if not read or m.first.answer_probability is not None), default=0.0)
    abstain_below, confident_from = (
        (settings.reader_abstain_threshold, settings.reader_confident_threshold) if read
        else (settings.abstain_threshold, settings.confident_threshold))
    level = confidence(best, abstain_below, confident_from)
    # With the reader, the cosine still says when nothing is near the question's topic:
    # the reader alone gives some off-topic questions more than some answerable ones
    # (bench/calibrate_abstention.py), the two together separate them. A reader this sure
    # is not overruled (a byline answers "Who edited it?" with words far from it).
    if (read and best < settings.reader_overrides_gate_from
            and max((similarity(h) for h in hits), default=0.0) < settings.abstain_threshold):
        level = NONE
    if level == NONE or not ranked:
        closest = tuple(to_quote(m, settings.highlight_margin) for m in ranked[:k])
        return Answer(question=question, quotes=(), abstained=bool(question.strip()),
                      closest=closest, confidence=NONE, relevance=best)
    floor = abstain_below if level == ANSWERED else float("-inf")
    answering = [m for m in ranked if m.relevance >= floor][:k]
    quotes = tuple(to_quote(m, settings.highlight_margin) for m in answering)
    return Answer(question=question, quotes=quotes, confidence=level, relevance=best)
