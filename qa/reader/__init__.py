"""The reader: a cross-encoder that reads a question with a candidate sentence."""
from __future__ import annotations

import re

# Words of the article's title read before the sentence (context for "it", "the company").
TITLE_WORDS = 16
_SPACE = re.compile(r"\s+")
# A sentence that opens with one of these leans on the one before it ("This move, driven by
# Huawei, ..." says which move only there): the reader reads the two together.
_REFERS_BACK = re.compile(
    r"(?:This|These|That|Those|It|Its|He|She|His|Her|They|Their|Such"
    r"|Despite (?:this|these|that|those))\b")
# So does a fragment: a line of a few words with no end mark, such as a byline's name
# ("Mackenzie Ferguson" says who edited only after "Edited By").
FRAGMENT_WORDS = 3


def pair_text(title: str, sentence: str) -> str:
    """The second segment the reader reads: the title, cut short, then the sentence."""
    words = _SPACE.sub(" ", title).strip().split(" ")
    short = " ".join(words[:TITLE_WORDS])
    return f"{short}: {sentence}" if short else sentence


def refers_back(sentence: str) -> bool:
    """Does the sentence need the one before it: does it open with a word that points
    back, or is it a fragment of a few words?"""
    sentence = sentence.strip()
    fragment = (len(sentence.split()) <= FRAGMENT_WORDS
                and not sentence.endswith((".", "!", "?", '"', "”")))
    return fragment or _REFERS_BACK.match(sentence) is not None
