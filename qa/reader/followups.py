"""Follow-up questions to train on, made from SQuAD: no conversations are at hand here.

At query time a follow-up that leans back ("When did they begin?") is read after the
question it leans on: "Which U.S. measures pushed China to form the alliances? When did they
begin?" (qa.followup). The reader was trained only on questions that stand alone, so it
often answers the first question of such a pair. SQuAD asks several questions of one
paragraph, and one often names what another answers or names ("Who was the MVP?" ...
"How many tackles did Von Miller make?"). Said again with a pronoun, the later one is a
follow-up of the earlier: "Who was the MVP? How many tackles did he make?".
"""
from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from qa.followup import names
from qa.reader.train import contains_answer

# What an earlier answer may be to be said again with a pronoun: a name or a short phrase.
MOST_ANSWER_WORDS = 5
_POSSESSIVE = re.compile(r"^(?:'s|’s)\b")
_NUMBER_AFTER = re.compile(r"(?: \d+\b)+")
_PLURAL = re.compile(r"(?<!s)s$")


@dataclass(frozen=True, slots=True)
class Followup:
    """A later question re-asked after an earlier one: `text` is what the reader reads."""

    earlier: str
    question: str
    # "answer": the pronoun stands for the earlier question's answer; "name": for a name
    # both questions use.
    leans_on: str

    @property
    def text(self) -> str:
        return f"{self.earlier} {self.question}"


_SUBJECT_AFTER = frozenset("""what when who where why how which whom whose did does do was is
were are has have had can could will would should may might""".split())
# A name followed by one of these is the noun it names, not a modifier ("it schools").
_NOT_A_NOUN = frozenset("""of in on at to for from with by and or but as after before during
than that which who when where while into about over under between against through since
until did does do was is were are has have had can could will would should may might 's ’s
?""".split())
_OBJECT = {"he": "him", "she": "her", "they": "them", "it": "it"}
_POSSESSIVE_OF = {"he": "his", "she": "her", "they": "their", "it": "its"}


def pronoun(said: str, person: bool, rng: random.Random) -> str:
    """A pronoun for `said` as a subject: a person's when the earlier question asked who,
    "they" for a plural-looking phrase, else "it"."""
    if person:
        return rng.choice(("he", "she", "they"))
    last = said.split()[-1].lower()
    if _PLURAL.search(last) and len(said.split()) > 1 or last.endswith(("ies", "ers", "ans")):
        return "they"
    return "it"


def _replace(question: str, start: int, end: int, person: bool,
             rng: random.Random) -> str | None:
    said = question[start:end]
    after = question[end:]
    # "the Main Building" -> "it", not "the it".
    before = re.sub(r"\b(?:the|a|an)\s+$", "", question[:start], flags=re.IGNORECASE)
    if not before.strip():
        return None  # "It was ..." opens few questions; skip
    word = pronoun(said, person, rng)
    following = re.match(r"\s*([\w'’-]+)", after)
    next_word = following.group(1) if following else "?"
    if _POSSESSIVE.match(after.lstrip()):
        after, word = _POSSESSIVE.sub("", after.lstrip()), _POSSESSIVE_OF[word]
        after = after if after.startswith(" ") else " " + after.lstrip()
    elif before.split()[-1].lower() in _SUBJECT_AFTER:
        pass  # "Where did it move to?"
    elif next_word.isalpha() and next_word.islower() and next_word not in _NOT_A_NOUN:
        word = _POSSESSIVE_OF[word]  # "the Barcelona club song" -> "its club song"
    else:
        word = _OBJECT[word]  # "the responsibilities of them"
    return before + word + after


def as_followup(earlier: dict, later: dict, rng: random.Random) -> Followup | None:
    """`later` re-asked after `earlier` (both SQuAD questions of one paragraph) with what
    `earlier` answers or names replaced by a pronoun, or None when they share neither."""
    question, asked_before = later["question"], earlier["question"]
    if contains_answer(asked_before, later["answers"]):
        return None  # the earlier question gives the later one's answer away
    answer = earlier["answers"][0].strip()
    if 0 < len(answer.split()) <= MOST_ANSWER_WORDS and len(answer) >= 3:
        found = re.search(rf"(?<!\w){re.escape(answer)}(?!\w)", question, re.IGNORECASE)
        person = re.match(r"\s*who\b", asked_before, re.IGNORECASE) is not None
        if found and (text := _replace(question, *found.span(), person, rng)):
            return Followup(asked_before, text, "answer")
    for start, end in _longest_first(_name_runs(question)):
        said = question[start:end]
        if re.search(rf"(?<!\w){re.escape(said)}(?!\w)", asked_before) and (
                text := _replace(question, start, end, False, rng)):
            return Followup(asked_before, text, "name")
    return None


def _name_runs(question: str) -> list[tuple[int, int]]:
    """Runs of capitalised words ("Notre Dame Main Building"), joined across a space."""
    runs: list[tuple[int, int]] = []
    for start, end in names(question):
        if question[end - 2:end] in ("'s", "’s"):
            end -= 2  # "Seattle's" names Seattle
        if runs and question[runs[-1][1]:start] == " ":
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    # "Super Bowl 50", "Windows 95": a number after a name is part of it.
    return [(start, end + len(m.group(0)) if (m := _NUMBER_AFTER.match(question, end)) else end)
            for start, end in runs]


def _longest_first(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    return sorted(spans, key=lambda s: s[0] - s[1])


def paragraph_followups(questions: Sequence[dict],
                        rng: random.Random) -> list[tuple[dict, dict, Followup]]:
    """For each question of one paragraph that has one: (it, the other question of the
    paragraph it follows, its follow-up form), an answer antecedent preferred."""
    out = []
    for n, later in enumerate(questions):
        found = [(earlier, f) for earlier in questions[:n] + questions[n + 1:]
                 if (f := as_followup(earlier, later, rng))]
        if found:
            by_answer = [pair for pair in found if pair[1].leans_on == "answer"]
            out.append((later, *rng.choice(by_answer or found)))
    return out
