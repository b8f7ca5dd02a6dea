"""BM25 over the same passage ids as the dense index (bm25s, saved without pickle)."""
from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from qa.errors import REBUILD_HINT, IndexCorruptError
from qa.index.selection import as_mask


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


def top_k(
    scores: np.ndarray, k: int, ids: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The k best (score > 0) of `scores` and their ids (`ids`, or positions), best first.

    Ties go to the lower id, so results do not depend on argpartition's internals.
    """
    if k < scores.shape[0]:
        part = np.argpartition(-scores, k - 1)[:k]
        # argpartition picks arbitrarily among scores tied with the k-th: take them all,
        # so the sort below keeps the lowest ids.
        kth = scores[part].min()
        if kth > 0:
            part = np.concatenate([part[scores[part] > kth], np.flatnonzero(scores == kth)])
        else:  # fewer than k scored: zeros are dropped anyway
            part = part[scores[part] > 0]
    else:
        part = np.arange(scores.shape[0])
    chosen = part if ids is None else ids[part]
    order = np.lexsort((chosen, -scores[part]))
    part, chosen = part[order][:k], chosen[order][:k]
    keep = scores[part] > 0
    return scores[part][keep], chosen[keep].astype(np.int64)


class LexicalIndex:
    """A BM25 index whose document i is passage id i.

    Scores are bm25s's own: its precomputed per-term document scores, summed with
    np.add.at term by term exactly as bm25s does, into a per-thread buffer that is
    reused instead of allocating a corpus-sized array per question (bench/bm25.py).
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
        # Where it was loaded from (for messages about damage); None when built in memory.
        self.folder: Path | None = None

    @classmethod
    def build(cls, texts: Sequence[str]) -> "LexicalIndex":
        return cls.from_tokens(tokenize(texts))

    @classmethod
    def from_tokens(cls, tokens: Sequence[Sequence[str]]) -> "LexicalIndex":
        """An index of already tokenized passages (see `tokenize`).

        The vocabulary is numbered in order of first appearance: bm25s numbers a set's
        iteration order, which changes with Python's hash seed, so the same corpus would
        give different files (and checksums) in every process.
        """
        vocab: dict[str, int] = {}
        ids = [[vocab.setdefault(token, len(vocab)) for token in passage] for passage in tokens]
        model = _bm25s().BM25()
        model.index((ids, vocab), show_progress=False)
        return cls(model)

    def save(self, folder: Path) -> None:
        self._model.save(str(folder), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex":
        """Memory-map a saved index and check its shape (cheaply: the postings are read
        only by the questions that need them; `search` checks what it reads).

        Raises:
            ValueError: the arrays do not fit together (damage checksums were not
                asked to find).
        """
        index = cls(_bm25s().BM25.load(str(folder), mmap=True, allow_pickle=False))
        index.check()
        index.folder = folder
        return index

    def check(self) -> None:
        """Raise ValueError unless the postings pointers are a valid CSC layout."""
        indptr = np.asarray(self._indptr)
        if (indptr.ndim != 1 or len(indptr) < 1 or indptr[0] != 0
                or indptr[-1] != len(self._indices) or len(self._data) != len(self._indices)
                or (len(indptr) > 1 and np.any(np.diff(indptr) < 0))):
            raise ValueError("its postings pointers do not fit its postings")

    @property
    def size(self) -> int:
        return self._num_docs

    def token_ids(self, question: str) -> list[int]:
        """Vocabulary ids of the question's terms (repeats kept, unknown terms dropped)."""
        tokens = tokenize([question])[0]
        return [self._vocab[t] for t in tokens if t in self._vocab]

    def _accumulate(self, token_ids: list[int]) -> np.ndarray:
        """BM25 of every passage for these terms, in this thread's reused buffer."""
        buffer = getattr(self._local, "buffer", None)
        if buffer is None:
            buffer = self._local.buffer = np.zeros(self._num_docs, dtype=np.float32)
        else:
            buffer.fill(0.0)
        for token in token_ids:
            start, end = int(self._indptr[token]), int(self._indptr[token + 1])
            np.add.at(buffer, self._indices[start:end], self._data[start:end])
        if self._nonoccurrence is not None:  # BM25L/BM25+: absent terms score too
            buffer += self._nonoccurrence[token_ids].sum()
        return buffer

    def search(
        self, question: str, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, passage ids), best first; only ids in `allowed` if given.

        Raises:
            IndexCorruptError: the postings the question reads are damaged (checksums,
                skipped on load for large generations, would have said so).
        """
        ids = self.token_ids(question)
        if not ids or k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        try:
            scores = self._accumulate(ids)
        except IndexError as exc:  # a posting past the passages: the arrays are damaged
            raise IndexCorruptError(
                f"{self.folder or 'the BM25 index'} is damaged (a posting points outside the "
                f"passages: {exc}); {REBUILD_HINT}"
            ) from None
        if allowed is None:
            return self._top_k_by_threshold(scores, ids, k)
        # Zero what the filter drops (top_k drops zeros) and keep the threshold shortcut.
        mask = as_mask(allowed, self._num_docs)
        scores *= mask  # this thread's own buffer, refilled by the next question
        return self._top_k_by_threshold(scores, ids, k, mask)

    def _top_k_by_threshold(
        self, scores: np.ndarray, token_ids: list[int], k: int, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """`top_k(scores, k)`, exactly (ids, scores and ties), reading fewer passages.

        Every passage holding the question's rarest term scores > 0, so the k-th best of
        those passages is a lower bound of the k-th best overall: only passages scoring at
        least that can be in the top k, and one comparison pass finds them (~2x faster
        than argpartition over every passage at 1M: bench/bm25.py). Ties at the bound are
        all kept, so top_k still breaks them by the lowest id. With a filter `mask`
        (`scores` already zero outside it), only the holders inside it bound the k-th.
        """
        indptr = self._indptr
        rarest = min(token_ids, key=lambda t: int(indptr[t + 1]) - int(indptr[t]))
        holders = self._indices[int(indptr[rarest]):int(indptr[rarest + 1])]
        if mask is not None:
            holders = holders[mask[holders]]
        # Worth it only when the rarest term's passages are few next to the corpus.
        if len(holders) < k or len(holders) * 4 >= self._num_docs:
            if mask is None:
                return top_k(scores, k)
            # A narrow filter leaves few scores above zero: rank only those.
            scored = np.flatnonzero(scores)
            return top_k(scores[scored], k, scored)
        bound = float(np.partition(scores[holders], len(holders) - k)[len(holders) - k])
        if not bound > 0:  # BM25 scores are positive; anything else: no shortcut
            return top_k(scores, k)
        chosen = np.flatnonzero(scores >= bound)
        return top_k(scores[chosen], k, chosen)
