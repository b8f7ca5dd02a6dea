"""Dense vectors on disk and their FAISS index; the only faiss import."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

# Exact search stays under a few ms up to here on 2 cores; past it, IVF (see bench/).
EXACT_SEARCH_LIMIT = 200_000
IVF_NPROBE = 32


def choose_factory(count: int) -> str:
    """The FAISS index-factory string for `count` vectors: exact while it is fast."""
    if count <= EXACT_SEARCH_LIMIT:
        return "Flat"
    nlist = 1 << round(math.log2(4 * math.sqrt(count)))
    return f"IVF{nlist},Flat"


class DenseIndex:
    """Inner-product search over L2-normalised vectors (cosine similarity)."""

    def __init__(self, index) -> None:
        self._index = index

    @classmethod
    def build(cls, vectors: np.ndarray, factory: str) -> "DenseIndex":
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained:
            # Train on a sample: k-means over millions of vectors adds minutes, not recall.
            rng = np.random.default_rng(0)
            sample_size = min(len(vectors), max(256 * getattr(index, "nlist", 1), 50_000))
            sample = vectors[rng.choice(len(vectors), sample_size, replace=False)]
            index.train(sample)
        index.add(vectors)
        return cls(index)

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> "DenseIndex":
        import faiss

        # mmap where the index type allows: a large index does not fill the heap up front.
        try:
            index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        except RuntimeError:
            index = faiss.read_index(str(path))
        if hasattr(index, "nprobe"):
            index.nprobe = IVF_NPROBE
        return cls(index)

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (len(queries), k); missing results have id -1."""
        import faiss

        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(k, max(self.size, 1))
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            params = (
                faiss.SearchParametersIVF(sel=selector, nprobe=IVF_NPROBE)
                if hasattr(self._index, "nprobe")
                else faiss.SearchParameters(sel=selector)
            )
        scores, ids = self._index.search(queries, k, params=params)
        return scores, ids


def save_vectors(path: Path, vectors: np.ndarray) -> None:
    """Vectors kept beside the index so an incremental build can reuse them."""
    with path.open("wb") as handle:
        np.save(handle, vectors, allow_pickle=False)


def load_vectors(path: Path) -> np.ndarray:
    """Memory-mapped: only the rows that are read come into memory."""
    return np.load(path, mmap_mode="r", allow_pickle=False)
