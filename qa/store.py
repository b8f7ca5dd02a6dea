"""Dense vectors on disk and their FAISS index; the only faiss import."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

# From bench/ann.py (2 cores, real squad-dev questions, synthetic vectors; README "Speed"):
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


class DenseIndex:
    """Inner-product search over L2-normalised vectors (cosine similarity)."""

    def __init__(self, index) -> None:
        self._index = index
        self._ivf_part = _ivf(index)
        self._hnsw_part = _hnsw(index)

    @classmethod
    def build(cls, vectors: np.ndarray, factory: str) -> "DenseIndex":
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
        import faiss

        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> "DenseIndex":
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
        allowed = np.asarray(allowed, dtype=np.int64)
        allowed = allowed[(allowed >= 0) & (allowed < self.size)]
        if allowed.size == 0:
            return (np.full((len(queries), k), -np.inf, np.float32),
                    np.full((len(queries), k), -1, np.int64))
        # A bitmap selector: O(n / 8) to build, O(1) per test, whatever the filter's size.
        mask = np.zeros(self.size, dtype=bool)
        mask[allowed] = True
        bitmap = np.packbits(mask, bitorder="little")
        selector = faiss.IDSelectorBitmap(self.size, faiss.swig_ptr(bitmap))
        if self._ivf_part is not None:
            # The filter keeps a share of the vectors: probe that many times more lists so a
            # filtered search sees as many allowed vectors as an unfiltered one sees vectors
            # (a small filter scans every list: exact within the filter).
            share = np.count_nonzero(mask) / self.size
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


def save_vectors(path: Path, vectors: np.ndarray) -> None:
    """Vectors kept beside the index so an incremental build can reuse them."""
    with path.open("wb") as handle:
        np.save(handle, vectors, allow_pickle=False)


def load_vectors(path: Path) -> "RowFile":
    """Rows read on demand (see RowFile): loading costs nothing, whatever the file's size."""
    return RowFile(path)


class RowFile:
    """A 2-D .npy file read a few rows at a time with pread, never memory-mapped.

    Queries read ~100 scattered passage rows and their sentence rows. Memory-mapped, each
    such read faults in the 64 KiB around it (the kernel's fault-around, which
    MADV_RANDOM does not stop), so after a few hundred questions a 1M index had ~1.7 GB
    of its vector files resident, counted in the process's memory though only ~50 MB had
    been read (bench/latency.py). pread copies exactly the rows asked for; the OS page
    cache still keeps hot rows fast. Indexing works like an array's for what the package
    uses: `f[i]`, `f[a:b]`, `f[ids]` (any order, repeats), `f[rows, cols]`,
    `np.asarray(f)`; each returns a new ndarray.

    Raises:
        ValueError: not a 2-D C-order .npy file, or shorter than its header says.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with self.path.open("rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
            else:
                raise ValueError(f"{self.path}: unsupported .npy version {version}")
            offset = handle.tell()
        if fortran or len(shape) != 2 or dtype.hasobject:
            raise ValueError(f"{self.path}: not a 2-D C-order numeric array ({shape}, {dtype})")
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self._offset = offset
        self._row_bytes = self.shape[1] * self.dtype.itemsize
        size = self.path.stat().st_size
        if size < offset + self.shape[0] * self._row_bytes:
            raise ValueError(
                f"{self.path} is truncated: {size} bytes, its header needs "
                f"{offset + self.shape[0] * self._row_bytes}"
            )
        # Opened now and kept: the file can be deleted (an old generation) and still read.
        self._fd = os.open(self.path, os.O_RDONLY)

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)
            self._fd = None

    ndim = 2

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __repr__(self) -> str:
        return f"RowFile({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self._read(0, self.shape[0])
        return out if dtype is None else out.astype(dtype, copy=False)

    def _read(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows [start, stop) into `out` (or a new array)."""
        if out is None:
            out = np.empty((max(stop - start, 0), self.shape[1]), dtype=self.dtype)
        view = memoryview(out).cast("B")
        done, want, where = 0, len(view), self._offset + start * self._row_bytes
        while done < want:
            got = os.preadv(self._fd, [view[done:]], where + done)
            if got <= 0:
                raise OSError(f"{self.path}: unexpected end of file")
            done += got
        return out

    def prefetch(self, ranges) -> None:
        """Ask the OS to start reading these [start, stop) row ranges, all at once.

        Scattered rows that are not in the page cache then come from disk in parallel
        instead of one pread after another.
        """
        if not hasattr(os, "posix_fadvise"):
            return
        for start, stop in ranges:
            os.posix_fadvise(self._fd, self._offset + start * self._row_bytes,
                             max(stop - start, 0) * self._row_bytes, os.POSIX_FADV_WILLNEED)

    def _rows(self, ids: np.ndarray) -> np.ndarray:
        """Rows at `ids` (validated, non-negative), one pread per run of consecutive ids."""
        unique, inverse = np.unique(ids, return_inverse=True)
        block = np.empty((len(unique), self.shape[1]), dtype=self.dtype)
        breaks = np.flatnonzero(np.diff(unique) != 1) + 1
        runs = list(zip(np.r_[0, breaks].tolist(), np.r_[breaks, len(unique)].tolist()))
        if len(runs) > 1:
            self.prefetch([(int(unique[a]), int(unique[b - 1]) + 1) for a, b in runs])
        for first, last in runs:
            self._read(int(unique[first]), int(unique[last - 1]) + 1, block[first:last])
        return block if len(unique) == len(ids) and np.array_equal(unique, ids) else block[inverse]

    def __getitem__(self, key):
        if isinstance(key, tuple):
            rows = self[key[0]]
            return rows[key[1:]] if rows.ndim == 1 else rows[(slice(None),) + key[1:]]
        n = self.shape[0]
        if isinstance(key, (int, np.integer)):
            index = int(key) + n if key < 0 else int(key)
            if not 0 <= index < n:
                raise IndexError(f"row {key} out of range for {n} rows")
            return self._read(index, index + 1)[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step == 1:
                return self._read(start, max(start, stop))
            return self._rows(np.arange(start, stop, step))
        ids = np.asarray(key)
        if ids.dtype == bool:
            if ids.shape != (n,):
                raise IndexError(f"boolean index of shape {ids.shape} for {n} rows")
            ids = np.flatnonzero(ids)
        if ids.size == 0:
            return np.empty((0, self.shape[1]), dtype=self.dtype)
        if not np.issubdtype(ids.dtype, np.integer) or ids.ndim != 1:
            raise IndexError(f"rows must be an int, a slice or a 1-D list of ints, got {key!r}")
        ids = np.where(ids < 0, ids + n, ids).astype(np.int64)
        if ids.min() < 0 or ids.max() >= n:
            raise IndexError(f"row {int(ids.max()) if ids.max() >= n else int(ids.min())} "
                             f"out of range for {n} rows")
        return self._rows(ids)
