"""BM25 over the same passage ids as the dense index (bm25s, saved without pickle)."""
from __future__ import annotations

import logging
import threading
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


def top_k(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (score > 0) of `scores` with their `ids`, best first, ties by lower id."""
    if k < scores.shape[0]:
        part = np.argpartition(-scores, k - 1)[:k]
    else:
        part = np.arange(scores.shape[0])
    part = part[np.lexsort((ids[part], -scores[part]))]
    part = part[scores[part] > 0]
    return scores[part], ids[part].astype(np.int64)


class LexicalIndex:
    """A BM25 index whose document i is passage id i.

    Scores are bm25s's own (its precomputed per-term document scores, summed over the
    question's terms), but a search only touches the question terms' posting lists and
    one reusable score buffer: it does not allocate, scan and sort a corpus-sized array
    per query, which at a million passages was the slow half of hybrid search.
    """

    def __init__(self, model) -> None:
        self._model = model
        scores = model.scores
        self._data = scores["data"]
        self._indices = scores["indices"]
        self._indptr = scores["indptr"]
        self._num_docs = int(scores["num_docs"])
        self._vocab: dict[str, int] = model.vocab_dict
        # BM25L/BM25+ add a score to documents that lack a term; Lucene BM25 (ours) does not.
        self._nonoccurrence = getattr(model, "nonoccurrence_array", None)
        self._local = threading.local()

    @classmethod
    def build(cls, texts: Sequence[str]) -> "LexicalIndex":
        return cls.from_tokens(tokenize(texts))

    @classmethod
    def from_tokens(cls, tokens: Sequence[Sequence[str]]) -> "LexicalIndex":
        """An index of already tokenized passages (see `tokenize`)."""
        model = _bm25s().BM25()
        model.index([list(t) for t in tokens], show_progress=False)
        return cls(model)

    def save(self, folder: Path) -> None:
        self._model.save(str(folder), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex":
        return cls(_bm25s().BM25.load(str(folder), mmap=True, allow_pickle=False))

    @property
    def size(self) -> int:
        return self._num_docs

    def token_ids(self, question: str) -> list[int]:
        """Vocabulary ids of the question's terms (repeats kept, unknown terms dropped)."""
        tokens = tokenize([question])[0]
        return [self._vocab[t] for t in tokens if t in self._vocab]

    def scores(self, question: str) -> np.ndarray:
        """BM25 score of every passage for `question` (a corpus-sized array; for tests)."""
        ids = self.token_ids(question)
        if not ids:
            return np.zeros(self._num_docs, dtype=np.float32)
        return np.asarray(self._model.get_scores_from_ids(ids), dtype=np.float32)

    def _buffer(self) -> np.ndarray:
        # One zeroed score array per thread, reset after each search (only touched cells).
        buffer = getattr(self._local, "buffer", None)
        if buffer is None:
            buffer = self._local.buffer = np.zeros(self._num_docs, dtype=np.float32)
        return buffer

    def search(
        self, question: str, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, passage ids), best first; only ids in `allowed` if given."""
        ids = self.token_ids(question)
        empty = np.zeros(0, np.float32), np.zeros(0, np.int64)
        if not ids or k <= 0:
            return empty
        if self._nonoccurrence is not None:  # every document scores: no sparse shortcut
            scores = self.scores(question)
            docs = np.arange(self._num_docs, dtype=np.int64)
            if allowed is not None:
                docs = np.unique(np.asarray(allowed, dtype=np.int64))
                scores = scores[docs]
            return top_k(scores, docs, k)

        buffer = self._buffer()
        postings: list[np.ndarray] = []
        try:
            for token in ids:
                start, end = int(self._indptr[token]), int(self._indptr[token + 1])
                docs = self._indices[start:end]
                # A term lists a document once, so fancy-index += is exact, adds in the same
                # order as bm25s's np.add.at and gives bit-identical float32 scores.
                buffer[docs] += self._data[start:end]
                postings.append(docs)
            if allowed is not None:
                docs = np.unique(np.asarray(allowed, dtype=np.int64))
                docs = docs[(docs >= 0) & (docs < self._num_docs)]
                scores = buffer[docs]
            else:
                # Collect each touched document once (at its first term) and reset as we go.
                found_docs, found_scores = [], []
                for docs_of_term in postings:
                    term_scores = buffer[docs_of_term]
                    new = term_scores != 0
                    found_docs.append(docs_of_term[new])
                    found_scores.append(term_scores[new])
                    buffer[docs_of_term] = 0.0
                postings = []  # all reset already
                docs = np.concatenate(found_docs).astype(np.int64)
                scores = np.concatenate(found_scores)
        finally:
            for docs_of_term in postings:
                buffer[docs_of_term] = 0.0
        return top_k(scores, docs, k)
