"""The reader: a cross-encoder that reads a question with a candidate sentence."""
from __future__ import annotations

import re

# Words of the article's title read before the sentence (context for "it", "the company").
TITLE_WORDS = 16
_SPACE = re.compile(r"\s+")


def pair_text(title: str, sentence: str) -> str:
    """The second segment the reader reads: the title, cut short, then the sentence."""
    words = _SPACE.sub(" ", title).strip().split(" ")
    short = " ".join(words[:TITLE_WORDS])
    return f"{short}: {sentence}" if short else sentence
