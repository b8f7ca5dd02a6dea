"""Vector files of a generation: .npy on disk, rows read with pread on demand."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


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
