"""The passages a filtered search may return, as the dense and BM25 searches take them."""
from __future__ import annotations

import numpy as np


def as_mask(allowed: np.ndarray, size: int) -> np.ndarray:
    """`allowed` (passage ids, or already a bool mask over them) as a bool mask of `size`.

    Ids out of range are dropped; a shorter mask is padded with False, a longer one cut.
    """
    allowed = np.asarray(allowed)
    if allowed.dtype == bool:
        if len(allowed) == size:
            return allowed
        mask = np.zeros(size, dtype=bool)
        mask[:min(size, len(allowed))] = allowed[:size]
        return mask
    ids = allowed.astype(np.int64, copy=False)
    mask = np.zeros(size, dtype=bool)
    mask[ids[(ids >= 0) & (ids < size)]] = True
    return mask
