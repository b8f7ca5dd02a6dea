"""Pure: sentence vectors pooled from one passage's token states ("late chunking").

The passage is embedded once (context line, newline, passage text); each sentence's vector
is the mean of the token states whose first character falls inside the sentence. Of the
variants measured on squad-dev (bench/late_chunking.py on the research-speed branch), the
sentence's own tokens lost least against embedding each sentence separately: recall@1
0.8653 vs 0.8763, highlight@1 0.7673 vs 0.7772. So it is an opt-in fast build
(`Settings.sentence_vectors = "late"`), not the default.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def sentence_spans(context: str, chunk_start: int,
                   sentences: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Where each sentence (article offsets) sits in the passage's embedded text, which is
    `context + "\\n" + passage` (qa.text.chunk.embedding_text) or the passage alone."""
    base = len(context) + 1 if context else 0
    return [(base + start - chunk_start, base + end - chunk_start) for start, end in sentences]


def span_weights(offsets: np.ndarray, length: int,
                 spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """(len(spans), length) 0/1 matrix: which of the text's tokens pool into each span.

    Args:
        offsets: (>= length, 2) character offsets of the tokens in the embedded text, as a
            fast tokenizer's offset mapping gives them; special tokens are (0, 0).
        length: the number of real (unpadded) tokens, special tokens included.
        spans: [start, end) of each sentence in the embedded text.
    """
    offsets = np.asarray(offsets[:length])
    starts, ends = offsets[:, 0], offsets[:, 1]
    real = ends > starts  # [CLS], [SEP] have empty spans
    weights = np.zeros((len(spans), length), dtype=np.float32)
    for row, (start, end) in enumerate(spans):
        # A token belongs to the sentence its first character is in.
        weights[row] = (starts >= start) & (starts < end) & real
    return weights


def pool_spans(hidden: np.ndarray, weights: np.ndarray, passage: np.ndarray) -> np.ndarray:
    """Unit-length sentence vectors: the means of the `hidden` rows each weight row picks.

    A span with no token (cut off where the model stops reading) gets the passage vector.
    """
    counts = weights.sum(axis=1, keepdims=True)
    pooled = weights @ np.asarray(hidden, dtype=np.float32)
    pooled = np.where(counts > 0, pooled / np.maximum(counts, 1), passage[None, :])
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return pooled.astype(np.float32)
