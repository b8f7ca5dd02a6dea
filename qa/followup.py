"""Follow-up questions: how a question leans on the earlier turns of its conversation.

Pure: the question and the earlier (question, Answer) turns in, a Reading out. No
generated text: a follow-up is only ever re-worded from the words of the turns before it
("What's StepFun good at?" then "And Baidu?" is read as "What's Baidu good at?"), or read
together with the earlier question and the sentence its answer highlighted.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qa.types import Answer

# A question that starts like this continues the one before ("And Baidu?", "What about
# people on Twitter?"); the rest is what changes.
_CONTINUATION = re.compile(
    r"^\s*(?:and|but|also|so|then|or)?\s*(?:what|how)\s+about\s+(?P<rest>.+?)\s*\??\s*$"
    r"|^\s*(?:and|but|or|also)\s+(?P<bare>.+?)\s*\??\s*$",
    re.IGNORECASE,
)
# Words that stand for something said before. "it" and "that" also occur without a
# referent ("is it true that..."): reading such a question with context is harmless,
# because the answer read alone is kept unless the context makes a clear difference
# (qa.retriever.FOLLOWUP_MARGIN).
_PRONOUN = re.compile(
    r"\b(they|them|their|theirs|it|its|he|him|his|she|her|hers|there|then|the same|"
    r"each other|"
    # "this week", "that year": a time of the question's own, not something said before.
    r"(?:these|those|this|that)(?!\s+(?:week|weekend|month|year|season|morning|afternoon|"
    r"evening|night|spring|summer|fall|autumn|winter|decade|century|quarter)s?\b))\b",
    re.IGNORECASE,
)
# A question made of a question word alone ("Why?", "Since when?", "Where was that?").
_BARE = re.compile(r"^\s*(?:and\s+)?(?:why|when|where|how|who|what|since when|how come|"
                   r"how many|how much|which one)\b[\w\s']{0,20}\??\s*$", re.IGNORECASE)
_DIGIT = re.compile(r"\d")
_QUESTION_WORD = re.compile(r"\b(who|whom|whose|what|which|when|where|why|how)\b", re.I)
_WORD = re.compile(r"[\w'’-]+")
# Capitalised words that are not names: question words and sentence starters.
_NOT_NAMES = frozenset("""a an the and or but so what which who whom whose when where why
how is are was were do does did can could will would should has have had i""".split())


# How many of the earlier answer's first quotes name the articles a follow-up that could
# stand alone must answer from to be read with it.
EARLIER_QUOTES = 3


@dataclass(frozen=True, slots=True)
class Reading:
    """How a question is read in its conversation.

    `search` is what candidates are found with; `reader_questions` what the reader reads
    with each candidate sentence (a sentence counts by its best reading); `leans_on` the
    earlier question it was read with (shown on the quote cards), None when the question
    stands on its own; `fragment` is set for a question that cannot stand on its
    own ("And Baidu?", "Why?"), whose reading in context is kept unless read alone it
    answers clearly better (qa.retriever.FRAGMENT_MARGIN).
    """

    question: str
    search: str
    reader_questions: tuple[str, ...]
    leans_on: str | None = None
    fragment: bool = False
    # The articles the earlier answer quoted first: a question that could stand alone is
    # read with its context only while, read alone, it quotes one of them (qa.retriever).
    earlier_articles: frozenset[str] = frozenset()

    @property
    def in_context(self) -> bool:
        return self.leans_on is not None


def standing_alone(question: str) -> Reading:
    return Reading(question, question, (question,))


def needs_context(question: str) -> bool:
    """Does the question lean on what came before: a continuation ("And Baidu?"), a bare
    question word ("Why?"), or a word that stands for something said before?"""
    return bool(_CONTINUATION.match(question) or is_bare(question)
                or _PRONOUN.search(question))


def names(text: str) -> list[tuple[int, int]]:
    """Spans of capitalised words that are not at the start of the text (names, mostly)."""
    out = []
    for m in _WORD.finditer(text):
        word = m.group(0)
        if m.start() and word[:1].isupper() and word.lower() not in _NOT_NAMES:
            out.append((m.start(), m.end()))
    return out


def is_bare(question: str) -> bool:
    """A question word with a few words and nothing it is about: "Why?", "Where was
    that?". A short question that names something ("Who won Super Bowl 50?", "What does
    AFC stand for?") stands on its own."""
    return bool(_BARE.match(question)) and not names(question) and not _DIGIT.search(question)


def names_span(text: str) -> tuple[int, int] | None:
    """From the first name to the last ("Weibo and Zhihu"), or None."""
    found = names(text)
    return (found[0][0], found[-1][1]) if found else None


def continue_frame(earlier: str, rest: str) -> str:
    """`earlier` with its names replaced by what the continuation names: "What's StepFun
    good at?" + "Baidu" -> "What's Baidu good at?"; "How do users on Weibo and Zhihu feel?"
    + "people on Twitter and Reddit" -> "How do users on Twitter and Reddit feel?". Without
    names to swap, the continuation is added to the earlier question."""
    old = names_span(earlier)
    if old is None:
        return f"{earlier.rstrip(' ?')} {rest}?"
    new = names_span(rest)
    replacement = rest[new[0]:new[1]] if new else rest
    return earlier[:old[0]] + replacement + earlier[old[1]:]


def highlighted(answer: Answer) -> str:
    """The text the answer's first quote marked. (Hiding it from the follow-up's answer
    was measured and lost: a follow-up is often answered by the same sentence.)"""
    quotes = answer.quotes or answer.closest
    return " ".join(quotes[0].text[h.start:h.end] for h in quotes[0].highlights) if quotes else ""


def read_in_context(question: str, history: Sequence[tuple[str, Answer]]) -> Reading:
    """How to read `question` after `history` (oldest first).

    A question that does not lean on anything is read alone, exactly as without history.
    One that does leans on the latest turn that answered: a continuation takes that
    turn's question as its frame; any other follow-up is searched together with that
    question and the sentence its answer highlighted, and the reader reads it after that
    question. The caller still compares with the question read alone.
    """
    question = question.strip()
    if not history or not needs_context(question):
        return standing_alone(question)
    earlier, answer = next(((q, a) for q, a in reversed(history) if not a.abstained),
                           history[-1])
    if answer.abstained:  # nothing was found to lean on: a new topic
        return standing_alone(question)
    sentence = highlighted(answer)
    continuation = _CONTINUATION.match(question)
    rest = continuation and (continuation.group("rest") or continuation.group("bare"))
    if rest and not _QUESTION_WORD.search(rest) and len(rest.split()) <= 6:
        framed = continue_frame(earlier, rest)
        return Reading(question, framed, (framed, question), earlier, fragment=True)
    # A turn that was itself read with an earlier one carries that one's words too ("What
    # are they used for?" after "Why does Washington block their sale?" after "Which chips
    # are Chinese firms cut off from?").
    before = f"{answer.read_with} {earlier}" if answer.read_with else earlier
    # The reader reads it after what came before, and on its own: the joined text is not
    # the kind of question it was trained on, and many follow-ups ("What are they used
    # for?") are clear once their candidates are about the right thing.
    return Reading(question, f"{question} {before} {sentence}",
                   (f"{before} {question}", question), earlier,
                   fragment=bool(continuation or is_bare(question)),
                   earlier_articles=frozenset(
                       q.article_id for q in answer.quotes[:EARLIER_QUOTES]))
