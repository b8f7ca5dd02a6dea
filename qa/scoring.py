"""Pure scoring of candidate passages and their sentences against a question.

A candidate's score mixes its passage cosine, its best sentence (cosine of title+sentence,
question-term coverage and an answer-type cue) and BM25 normalised by the best
candidate's. Weights were compared on all dev sets together (squad-dev, realtimeqa-dev,
the seed article's dev and paraphrased questions; bench/quality.py prints them).

Confidence is graded from a relevance on an absolute scale: a clear off-topic question is
"none" (abstain), a match in other words than the article's "low" (quoted, with a
caveat), the rest "answered".
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from qa.config import Mode
from qa.types import Confidence


@dataclass(frozen=True, slots=True)
class Weights:
    """How the hybrid score mixes its parts."""

    # Sentence evidence counts more than the whole passage's cosine: a 256-token passage
    # vector blurs the one sentence that answers (0.4/0.6 before; docs/BENCHMARKS.md).
    passage: float = 0.2
    sentence: float = 0.8
    lexical: float = 0.15
    # Share of a sentence's score that comes from covering the question's terms.
    coverage: float = 0.5
    # Bonus for a sentence holding the kind of answer asked for (see answer_type_cue).
    answer_type: float = 0.1

    @property
    def maximum(self) -> float:
        """The highest score a candidate can reach (every part at 1)."""
        return (self.passage + self.sentence * (1 + self.coverage + self.answer_type)
                + self.lexical)


DEFAULT_WEIGHTS = Weights()

# A line ending like this closes a sentence; one that does not may be a heading.
_CLOSING = re.compile(r"[.!?…:;\"'”’)\]]$")
# A scraped page's masthead lines, which belong to no answer (measured on the seed and
# the 1,127 realtimeqa-dev articles; see README "The corpus"):
# "By Gary Strauss and Carolyn Pesce, USA TODAY"; "Edited By" then a name and a role.
_BYLINE = re.compile(r"^(by|(edited|written|reported|compiled|produced|photos?|words|story|"
                     r"text|reporting|interview|additional reporting) by)\s+(?=(?-i:[A-Z]))",
                     re.IGNORECASE)
BYLINE_LABEL = re.compile(r"^((edited|written|reported|compiled|produced|photos?|words|"
                           r"story|text|reporting) )?by:?$|^authors?:?$", re.IGNORECASE)
_CREDIT = re.compile(r"^from .{1,60}\b(reports?|wires?)$", re.IGNORECASE)
# "Last updated:", "Updated 3:45 PM EDT, July 28, 2025", "Published Mon 28 Jul 2025"
_STAMP = re.compile(r"^(last )?(updated|published|posted|modified)\b", re.IGNORECASE)
# A dateline on its own line: "CNN —", "Washington CNN —", "Seoul, South Korea CNN —"
_DATELINE = re.compile(r"^\(?[A-Z][^.!?]{0,60}\s[—–]$")
_LINE_END = re.compile(r"[.!?;]$")

ANSWERED: Confidence = "answered"
LOW: Confidence = "low"
NONE: Confidence = "none"


def confidence(relevance: float, abstain_below: float, confident_from: float) -> Confidence:
    """The grade of an answer whose best quote has `relevance` (a cosine, see
    qa.answer.relevance): "none" below `abstain_below`, "answered" from `confident_from`,
    "low" between."""
    if relevance < abstain_below:
        return NONE
    return ANSWERED if relevance >= confident_from else LOW


def is_heading(paragraph: str) -> bool:
    """A short line without closing punctuation reads as a section heading (the chunker
    joins it to the paragraph after it; a quote marks it only when it has nothing else)."""
    return len(paragraph) <= 100 and not _CLOSING.search(paragraph)


def masthead(paragraphs: Sequence[str]) -> list[str | None]:
    """Per paragraph: "byline" (a byline or credit, the name and role lines after an
    "Edited By" label), "dateline" (a dateline or an "Updated ..." stamp alone on its
    line), or None for the article's own text.

    Only short lines are candidates, so a sentence that starts with "By 2030" stays text,
    and a date alone on a line is not one (in a timeline it heads what follows).
    """
    kinds: list[str | None] = []
    after_label = 0  # name and role lines still expected after a bare "Edited By"
    for paragraph in paragraphs:
        words = len(paragraph.split())
        kind = None
        short = words <= 12 and not _LINE_END.search(paragraph)
        if BYLINE_LABEL.match(paragraph):
            kind, after_label = "byline", 2
        elif after_label and words <= 8 and short and not paragraph.endswith(":"):
            kind, after_label = "byline", after_label - 1
        else:
            after_label = 0
            if short and _BYLINE.match(paragraph):  # a name follows: "By 2030, ..." is text
                kind = "byline"
            elif short and _CREDIT.match(paragraph):
                kind = "byline"
            elif words <= 12 and _STAMP.match(paragraph) and (
                    paragraph.endswith(":") or any(c.isdigit() for c in paragraph)):
                kind = "dateline"
            elif words <= 8 and _DATELINE.match(paragraph):
                kind = "dateline"
        kinds.append(kind)
    return kinds


def term_coverage(
    question_terms: Sequence[str], sentence_terms: Sequence[Sequence[str]]
) -> np.ndarray:
    """For each sentence, the idf-weighted share of the question's terms it contains.

    idf is taken over the candidate sentences themselves: a term every candidate has
    (the topic word) counts little, the rare one that pins the answer counts a lot.
    """
    wanted = set(question_terms)
    if not wanted or not sentence_terms:
        return np.zeros(len(sentence_terms), dtype=np.float32)
    sets = [set(terms) & wanted for terms in sentence_terms]
    df = Counter(term for terms in sets for term in terms)
    n = len(sets)
    idf = {term: math.log(1 + n / (1 + df[term])) for term in wanted}
    total = sum(idf.values())
    return np.asarray([sum(idf[t] for t in terms) / total for terms in sets], dtype=np.float32)


def sentence_scores(
    similarity: np.ndarray, coverage: np.ndarray, weights: Weights = DEFAULT_WEIGHTS
) -> np.ndarray:
    """A sentence's score: its cosine to the question plus its term coverage."""
    return similarity + weights.coverage * coverage


def fuse(
    dense: np.ndarray, best_sentence: np.ndarray, lexical: np.ndarray, mode: Mode,
    weights: Weights = DEFAULT_WEIGHTS,
) -> np.ndarray:
    """Final ranking scores in [0, 1] for the candidates of one question.

    "dense" and "bm25" rank by one signal; "hybrid" mixes all three. BM25 is divided by
    the best candidate's so it weighs the same for every question.
    """
    top = float(lexical.max()) if lexical.size else 0.0
    lexical_norm = lexical / top if top > 0 else np.zeros_like(lexical)
    if mode == "dense":
        return np.clip(dense, 0.0, 1.0)
    if mode == "bm25":
        return lexical_norm
    mixed = (weights.passage * dense + weights.sentence * best_sentence
             + weights.lexical * lexical_norm)
    return np.clip(mixed / weights.maximum, 0.0, 1.0)


# Question words that ask for a name: a person, organisation, place or title.
_ENTITY_QUESTION = re.compile(
    r"\b(who|whom|whose|where|which|called|named?|known as)\b"
    r"|\bwhat (\w+ )?(company|team|country|city|state|group|organi[sz]ation|brand|film|movie|"
    r"show|book|band|party|agency|airline|app|network|newspaper|outlet|platform|place|"
    r"region|town|person|man|woman)\b",
    re.IGNORECASE,
)
# Question words that ask for a number, an amount or a date.
_NUMBER_QUESTION = re.compile(
    r"\bhow (many|much|long|old)\b|\bwhen\b|\b(what|which) (year|date|day|month|time|century|"
    r"decade|number|percentage|amount)\b",
    re.IGNORECASE,
)
# Month names only capitalised: "may" is more often the verb.
_NUMBER = re.compile(
    r"\b\d[\d,.]*\b|\b(January|February|March|April|May|June|July|August|September|October|"
    r"November|December)\b|\b(?i:one|two|three|four|five|six|seven|eight|nine|ten|eleven|"
    r"twelve|dozen|hundred|thousand|million|billion|trillion|percent)\b"
)
_WORD = re.compile(r"[\w'’-]+")
_STRIP = "\"'“”‘’()[]{},.;:!?…-—–"
_SENTENCE_END = (".", "!", "?")
_COMPOUND = re.compile(r"\b\w+(?:-\w+)+\b")
CUE_NAMES = 5  # this many new capitalised words make a full cue
CUE_NUMBERS = 2  # this many new numbers or dates make a full cue
# The cue is computed for the sentences of this many best candidates only: it moves
# near-ties, and splitting every candidate sentence would cost more than it moves.
CUE_CANDIDATES = 20


def with_joined_compounds(question: str) -> str:
    """The question plus each hyphenated word written joined up ("home-grown" ->
    "... homegrown"), unless the question already has it: readers write "home-grown"
    where the article says "homegrown", and the tokenizer splits at the hyphen."""
    present = {w.lower() for w in _WORD.findall(question)}
    joined = [m.group(0).replace("-", "") for m in _COMPOUND.finditer(question)]
    extra = list(dict.fromkeys(j for j in joined if j.lower() not in present))
    return " ".join([question, *extra]) if extra else question


def asks_for_name(question: str) -> bool:
    """Does the question ask for a name (who/where/which X/what is it called)?"""
    return bool(_ENTITY_QUESTION.search(question)) and not asks_for_number(question)


def asks_for_number(question: str) -> bool:
    """Does the question ask for a number, an amount or a date (how many/when/what year)?"""
    return bool(_NUMBER_QUESTION.search(question))


def new_names(sentence: str, known: set[str]) -> int:
    """Capitalised words of `sentence` that are not in `known` (lower-cased words), not
    counting a word that starts a sentence."""
    count, previous = 0, ""
    for position, word in enumerate(sentence.split()):
        if position and word[:1].isupper() and not previous.endswith(_SENTENCE_END):
            core = word.strip(_STRIP)
            if len(core) > 1 and core.lower() not in known:
                count += 1
        previous = word
    return count


def new_numbers(sentence: str, known: set[str]) -> int:
    """Numbers, number words and month names in `sentence` that are not in `known`."""
    return sum(1 for m in _NUMBER.finditer(sentence) if m.group(0).lower() not in known)


def answer_type_cue(question: str, sentences: Sequence[str]) -> np.ndarray:
    """Per sentence, in [0, 1]: when the question asks for a name, how many capitalised
    words the sentence has that the question lacks (CUE_NAMES or more -> 1); when it asks
    for a number or a date, how many new numbers and dates (CUE_NUMBERS or more -> 1);
    zeros otherwise.

    A sentence that restates the question ("Tim Scott announced his campaign...") and one
    that also names the answer ("...senator from South Carolina") score alike on cosine
    and coverage; the new names or numbers tell them apart.
    """
    if asks_for_number(question):
        count, full = new_numbers, CUE_NUMBERS
    elif asks_for_name(question):
        count, full = new_names, CUE_NAMES
    else:
        return np.zeros(len(sentences), dtype=np.float32)
    known = {w.lower() for w in _WORD.findall(question)}
    counts = np.asarray([count(s, known) for s in sentences], dtype=np.float32)
    return np.minimum(counts, full) / full


def best_per_passage(scores: np.ndarray, owner: np.ndarray, count: int) -> np.ndarray:
    """The best sentence score of each of `count` passages (`owner[i]` is the passage of
    sentence i); 0 for a passage without sentences."""
    best = np.full(count, -np.inf, dtype=np.float32)
    np.maximum.at(best, np.asarray(owner, dtype=np.int64), np.asarray(scores, np.float32))
    return np.where(np.isfinite(best), best, 0.0).astype(np.float32)


def rank_scores(
    dense: np.ndarray, similarity: np.ndarray, coverage: np.ndarray, owner: np.ndarray,
    lexical: np.ndarray, mode: Mode, cue: Callable[[np.ndarray], np.ndarray] | None = None,
    weights: Weights = DEFAULT_WEIGHTS,
) -> tuple[np.ndarray, np.ndarray]:
    """(passage scores, sentence scores) for one question's candidates.

    `dense` and `lexical` are per passage; `similarity`, `coverage` and `owner` (the
    passage's position) per sentence. `cue(rows)` gives the answer-type cue of the
    sentences at `rows` (see answer_type_cue); in hybrid mode it is asked only for the
    sentences of the CUE_CANDIDATES best passages, which are then scored again.
    """
    sentences = sentence_scores(similarity, coverage, weights)
    fused = fuse(dense, best_per_passage(sentences, owner, len(dense)), lexical, mode, weights)
    if cue is None or mode != "hybrid" or not len(dense):
        return fused, sentences
    leaders = top(fused, CUE_CANDIDATES)
    rows = np.flatnonzero(np.isin(owner, leaders))
    bonus = cue(rows)
    if not bonus.any():
        return fused, sentences
    sentences = sentences.copy()
    sentences[rows] += weights.answer_type * bonus
    fused = fuse(dense, best_per_passage(sentences, owner, len(dense)), lexical, mode, weights)
    return fused, sentences


def recency(dates: Sequence[str | None], today: date, half_life_days: float) -> np.ndarray:
    """Per article date, 2^(-age in days / half_life_days) in (0, 1]: 1 for today's.

    An undated article, an unreadable date or one after `today` (not yet published when
    the question was asked) gets 0: a prior may lift what it knows is recent, never bury
    what it knows nothing about.
    """
    out = np.zeros(len(dates), dtype=np.float32)
    for i, text in enumerate(dates):
        try:
            age = (today - date.fromisoformat((text or "")[:10])).days
        except ValueError:
            continue
        if age >= 0:
            out[i] = 0.5 ** (age / half_life_days)
    return out


def top(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k highest scores, best first; ties keep the earlier position."""
    return np.argsort(-scores, kind="stable")[:k]
