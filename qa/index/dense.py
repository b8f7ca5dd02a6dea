"""Dense search behind a small protocol; FAISS is the one backend (the only faiss import).

A generation's manifest names its backend (`dense.backend`), so another ANN library can
sit beside FAISS: implement `DenseBackend` and register it in BACKENDS.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol

import numpy as np

from qa.index.selection import as_mask


class DenseBackend(Protocol):
    """Inner-product search over L2-normalised vectors whose ids are passage ids."""

    @property
    def size(self) -> int: ...

    @property
    def dim(self) -> int: ...

    @property
    def description(self) -> str: ...

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (len(queries), k), best first; missing results id -1.
        `allowed`: passage ids, or a bool mask over them (qa.index.selection)."""
        ...

    def save(self, path: Path) -> None: ...


# From bench/ann.py (2 cores, real squad-dev questions, synthetic vectors; docs/BENCHMARKS.md):
# exact search costs ~0.05 ms per 1,000 vectors per query on one thread (5 ms at 100k,
# 49 ms at 1M), so it stays exact up to ~2.5 ms; past that, IVF with ~sqrt(N) lists and
# 8-bit scalar-quantised codes: at 1M, nprobe 32 takes 0.9 ms, and recall@10 after the
# retriever's exact re-scoring of its candidates is 0.997 (0.979 on SQ8 scores alone);
# the file (memory-mapped) is 375 MiB instead of 1.5 GB for float32 lists.
EXACT_SEARCH_LIMIT = 50_000
IVF_LISTS_PER_SQRT = 1
IVF_CODEC = "SQ8"
IVF_NPROBE = 32
# k-means on a sample: more points per list add build minutes, not recall.
TRAIN_POINTS_PER_LIST = 64
MIN_TRAIN_POINTS = 50_000


def ivf_lists(count: int) -> int:
    """IVF list count for `count` vectors: ~IVF_LISTS_PER_SQRT * sqrt(count), a power of 2."""
    return 1 << max(4, round(math.log2(IVF_LISTS_PER_SQRT * math.sqrt(max(count, 1)))))


def choose_factory(count: int) -> str:
    """The FAISS index-factory string for `count` vectors: exact while it is fast."""
    if count <= EXACT_SEARCH_LIMIT:
        return "Flat"
    return f"IVF{ivf_lists(count)},{IVF_CODEC}"


def _ivf(index):
    """The IVF part of `index` (or None), reaching through a pre-transform or refine."""
    import faiss

    try:
        return faiss.extract_index_ivf(index)
    except (RuntimeError, TypeError):
        return None


def _hnsw(index):
    import faiss

    downcast = faiss.downcast_index(index)
    return downcast if hasattr(downcast, "hnsw") else None


class FaissDense:
    """FAISS inner-product search (cosine on L2-normalised vectors): Flat, IVF or HNSW."""

    def __init__(self, index) -> None:
        self._index = index
        self._ivf_part = _ivf(index)
        self._hnsw_part = _hnsw(index)

    @classmethod
    def build(cls, vectors: np.ndarray, factory: str) -> "FaissDense":
        """Train (on a sample) and fill the index `factory` names with `vectors`.

        Raises:
            ValueError: the factory string is not one FAISS understands.
        """
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        try:
            index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise ValueError(f"not a FAISS index factory string: {factory!r} ({exc})") from None
        if not index.is_trained:
            ivf = _ivf(index)
            nlist = ivf.nlist if ivf is not None else 1
            size = min(len(vectors), max(TRAIN_POINTS_PER_LIST * nlist, MIN_TRAIN_POINTS))
            rng = np.random.default_rng(0)
            sample = vectors[np.sort(rng.choice(len(vectors), size, replace=False))]
            index.train(sample)
        # Add in blocks: a memory-mapped vectors file is then read a block at a time.
        for start in range(0, len(vectors), 1 << 16):
            index.add(np.ascontiguousarray(vectors[start:start + (1 << 16)]))
        dense = cls(index)
        if dense._ivf_part is not None:
            # Saved with the index, so a loaded index searches as it was measured.
            dense._ivf_part.nprobe = min(IVF_NPROBE, dense._ivf_part.nlist)
        if dense._hnsw_part is not None:
            dense._hnsw_part.hnsw.efSearch = max(dense._hnsw_part.hnsw.efSearch, 128)
        return dense

    def save(self, path: Path) -> None:
        """Raises OSError when the file cannot be written (FAISS says RuntimeError)."""
        import faiss

        try:
            faiss.write_index(self._index, str(path))
        except RuntimeError as exc:
            # "... write error in PATH: 4051 != 9216 (No space left on device)"
            reason = str(exc).strip().rsplit("(", 1)[-1].rstrip(")") or "write error"
            raise OSError(f"could not write {path}: {reason}") from exc

    @classmethod
    def load(cls, path: Path) -> "FaissDense":
        """Memory-map the index file where the index type allows (Flat, IVF, HNSW).

        A large index then costs no heap and no read time up front; the pages that
        searches touch come in from the page cache.
        """
        import faiss

        try:
            index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        except RuntimeError:
            index = faiss.read_index(str(path))
        dense = cls(index)
        if dense._ivf_part is not None and dense._ivf_part.nprobe <= 1:
            # Indexes written before nprobe was saved with them.
            dense._ivf_part.nprobe = min(IVF_NPROBE, dense._ivf_part.nlist)
        return dense

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def description(self) -> str:
        """The index type and its search parameters, e.g. "IndexIVFFlat nlist=4096 nprobe=32"."""
        import faiss

        name = type(faiss.downcast_index(self._index)).__name__
        if self._ivf_part is not None:
            return f"{name} nlist={self._ivf_part.nlist} nprobe={self._ivf_part.nprobe}"
        if self._hnsw_part is not None:
            return f"{name} efSearch={self._hnsw_part.hnsw.efSearch}"
        return name

    def set_search_parameters(self, nprobe: int | None = None, ef_search: int | None = None):
        """Trade speed for recall at query time (IVF nprobe, HNSW efSearch)."""
        if nprobe is not None and self._ivf_part is not None:
            self._ivf_part.nprobe = max(1, min(int(nprobe), self._ivf_part.nlist))
        if ef_search is not None and self._hnsw_part is not None:
            self._hnsw_part.hnsw.efSearch = max(1, int(ef_search))

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (len(queries), k); missing results have id -1."""
        import faiss

        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(k, max(self.size, 1))
        # A question or two on one OpenMP thread, as in qa.embed: exact search splits the
        # vectors over threads, and on a busy 2-core machine waiting for the second one
        # made a 10k Flat search 10 ms instead of 0.7 (bench/latency.py).
        threads = faiss.omp_get_max_threads()
        single = len(queries) <= 8 and threads > 1
        if single:
            faiss.omp_set_num_threads(1)
        try:
            return self._search(queries, k, allowed)
        finally:
            if single:
                faiss.omp_set_num_threads(threads)

    def _search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None):
        import faiss

        if allowed is None:
            return self._index.search(queries, k)
        mask = as_mask(allowed, self.size)
        kept = int(np.count_nonzero(mask))
        if kept == 0:
            return (np.full((len(queries), k), -np.inf, np.float32),
                    np.full((len(queries), k), -1, np.int64))
        # A bitmap selector: O(n / 8) to build, O(1) per test, whatever the filter's size.
        bitmap = np.packbits(mask, bitorder="little")
        selector = faiss.IDSelectorBitmap(self.size, faiss.swig_ptr(bitmap))
        if self._ivf_part is not None:
            # The filter keeps a share of the vectors: probe that many times more lists so a
            # filtered search sees as many allowed vectors as an unfiltered one sees vectors
            # (a small filter scans every list: exact within the filter).
            share = kept / self.size
            nprobe = min(self._ivf_part.nlist, math.ceil(self._ivf_part.nprobe / share))
            params = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
        elif self._hnsw_part is not None:
            params = faiss.SearchParametersHNSW(
                sel=selector, efSearch=max(self._hnsw_part.hnsw.efSearch, k)
            )
        else:
            params = faiss.SearchParameters(sel=selector)
        scores, ids = self._index.search(queries, k, params=params)
        del bitmap  # the selector points into it: keep it alive until here
        return scores, ids


# Backend name (as written in the manifest) -> its class: `build(vectors, factory)` and
# `load(path)`.
BACKENDS: dict[str, type] = {"faiss": FaissDense}
DEFAULT_BACKEND = "faiss"


def backend_class(name: str) -> type:
    """The class of a dense backend named in a manifest.

    Raises:
        KeyError: no backend of that name (the caller names the manifest in its error).
    """
    return BACKENDS[name]
