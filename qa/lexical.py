"""BM25 over the same passage ids as the dense index (bm25s, saved without pickle)."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np


def _bm25s():
    import bm25s

    # bm25s sets its logger to DEBUG on import; its chatter is not ours to print.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased, stop-word-free, stemmed words: the same for passages and questions."""
    return _bm25s().tokenize(
        list(texts), stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False
    )


class LexicalIndex:
    """A BM25 index whose document i is passage id i."""

    def __init__(self, model) -> None:
        self._model = model

    @classmethod
    def build(cls, texts: Sequence[str]) -> "LexicalIndex":
        model = _bm25s().BM25()
        model.index(tokenize(texts), show_progress=False)
        return cls(model)

    def save(self, folder: Path) -> None:
        self._model.save(str(folder), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex":
        return cls(_bm25s().BM25.load(str(folder), mmap=True, allow_pickle=False))

    @property
    def size(self) -> int:
        return int(self._model.scores["num_docs"])

    def search(
        self, question: str, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, passage ids), best first; only ids in `allowed` if given."""
        tokens = tokenize([question])[0]
        ids = self._model.get_tokens_ids(tokens)
        if not ids:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        scores = np.asarray(self._model.get_scores_from_ids(ids), dtype=np.float32)
        if allowed is not None:
            mask = np.zeros(scores.shape[0], dtype=bool)
            mask[allowed] = True
            scores = np.where(mask, scores, 0.0)
        k = min(k, scores.shape[0])
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        keep = scores[top] > 0
        return scores[top][keep], top[keep].astype(np.int64)
