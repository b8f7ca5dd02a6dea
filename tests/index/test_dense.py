"""qa.index.dense: index choice by size, exact/IVF/HNSW build, search, filters, save, mmap load."""
from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from qa.index import dense as store
from qa.index.dense import FaissDense, choose_factory, ivf_lists
from qa.index.vectors import load_vectors, save_vectors


def clustered(n: int, dim: int = 32, clusters: int = 50, seed: int = 0) -> np.ndarray:
    """Unit vectors around random centres: structure an IVF index can exploit."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.3 * rng.standard_normal((n, dim))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(x: np.ndarray, q: np.ndarray, k: int, allowed=None) -> np.ndarray:
    scores = q @ x.T
    if allowed is not None:
        mask = np.full(len(x), -np.inf, np.float32)
        mask[allowed] = 0
        scores = scores + mask
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def mapped_files() -> str:
    return Path("/proc/self/maps").read_text()


# -- choose_factory ---------------------------------------------------------------------
def test_choose_factory_is_exact_up_to_the_limit():
    assert choose_factory(1) == "Flat"
    assert choose_factory(store.EXACT_SEARCH_LIMIT) == "Flat"
    assert choose_factory(store.EXACT_SEARCH_LIMIT + 1).startswith("IVF")


@pytest.mark.parametrize("count", [100_000, 1_000_000, 10_000_000])
def test_choose_factory_ivf_lists_grow_like_sqrt(count):
    nlist = ivf_lists(count)
    assert choose_factory(count) == f"IVF{nlist},{store.IVF_CODEC}"
    assert nlist & (nlist - 1) == 0  # a power of two
    target = store.IVF_LISTS_PER_SQRT * count ** 0.5
    assert target / 1.5 <= nlist <= target * 1.5
    # Every list must get enough training points from the sample build() takes.
    assert store.TRAIN_POINTS_PER_LIST * nlist <= max(count, store.MIN_TRAIN_POINTS) * 4


def test_chosen_factories_are_valid_faiss_strings():
    for count in (10, store.EXACT_SEARCH_LIMIT + 1, 5_000_000):
        index = faiss.index_factory(16, choose_factory(count), faiss.METRIC_INNER_PRODUCT)
        assert index.d == 16


def test_bad_factory_string_is_a_clear_error():
    with pytest.raises(ValueError, match="NotAnIndex"):
        FaissDense.build(clustered(100), "NotAnIndex")


# -- exact --------------------------------------------------------------------------------
def test_flat_search_is_exact_and_filtered_search_stays_inside_the_filter():
    x, q = clustered(2000), clustered(20, seed=1)
    index = FaissDense.build(x, "Flat")
    _, ids = index.search(q, 10)
    assert np.array_equal(ids, brute_force(x, q, 10))
    allowed = np.arange(0, 2000, 7)
    _, ids = index.search(q, 10, allowed)
    assert set(ids.ravel()) <= set(allowed.tolist())
    assert np.array_equal(ids, brute_force(x, q, 10, allowed))


def test_empty_filter_finds_nothing():
    index = FaissDense.build(clustered(100), "Flat")
    scores, ids = index.search(clustered(2, seed=1), 5, np.zeros(0, np.int64))
    assert (ids == -1).all() and ids.shape == (2, 5)


# -- IVF ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ivf_data():
    x, q = clustered(20_000), clustered(50, seed=1)
    return x, q, FaissDense.build(x, "IVF64,Flat")


def test_ivf_recall_against_brute_force(ivf_data):
    x, q, index = ivf_data
    assert "nprobe=32" in index.description
    _, ids = index.search(q, 10)
    assert recall(ids, brute_force(x, q, 10)) >= 0.95


def test_ivf_nprobe_trades_recall(ivf_data):
    x, q, index = ivf_data
    truth = brute_force(x, q, 10)
    index.set_search_parameters(nprobe=1)
    try:
        low = recall(index.search(q, 10)[1], truth)
    finally:
        index.set_search_parameters(nprobe=store.IVF_NPROBE)
    high = recall(index.search(q, 10)[1], truth)
    assert low < high


def test_ivf_small_filter_is_exact_within_the_filter(ivf_data):
    x, q, index = ivf_data
    allowed = np.arange(100, 160)  # 0.3% of the vectors: every list must be probed
    _, ids = index.search(q, 10, allowed)
    assert set(ids.ravel()) <= set(allowed.tolist())
    assert np.array_equal(ids, brute_force(x, q, 10, allowed))


def test_ivf_save_load_roundtrip_is_memory_mapped(ivf_data, tmp_path):
    x, q, index = ivf_data
    path = tmp_path / "dense.faiss"
    index.save(path)
    path.chmod(0o444)  # generations are published read-only
    loaded = FaissDense.load(path)
    assert str(path) in mapped_files()
    assert loaded.size == len(x) and loaded.dim == x.shape[1]
    assert loaded.description == index.description  # nprobe travels with the file
    s1, i1 = index.search(q, 10)
    s2, i2 = loaded.search(q, 10)
    assert np.array_equal(i1, i2) and np.allclose(s1, s2)


def test_old_ivf_files_without_nprobe_get_the_default(tmp_path):
    x = clustered(5000)
    raw = faiss.index_factory(x.shape[1], "IVF32,Flat", faiss.METRIC_INNER_PRODUCT)
    raw.train(x)
    raw.add(x)
    faiss.write_index(raw, str(tmp_path / "old.faiss"))  # nprobe 1, as older builds saved
    assert "nprobe=32" in FaissDense.load(tmp_path / "old.faiss").description


def test_flat_load_is_memory_mapped(tmp_path):
    x = clustered(3000)
    FaissDense.build(x, "Flat").save(tmp_path / "flat.faiss")
    loaded = FaissDense.load(tmp_path / "flat.faiss")
    assert str(tmp_path / "flat.faiss") in mapped_files()
    _, ids = loaded.search(x[:5], 1)
    assert ids[:, 0].tolist() == [0, 1, 2, 3, 4]


def test_hnsw_override_builds_searches_and_loads(tmp_path):
    x, q = clustered(3000), clustered(20, seed=1)
    index = FaissDense.build(x, "HNSW16")
    index.save(tmp_path / "hnsw.faiss")
    loaded = FaissDense.load(tmp_path / "hnsw.faiss")
    assert "efSearch=128" in loaded.description
    assert recall(loaded.search(q, 10)[1], brute_force(x, q, 10)) >= 0.9
    allowed = np.arange(0, 3000, 3)
    _, ids = loaded.search(q, 10, allowed)
    assert set(ids.ravel()) - {-1} <= set(allowed.tolist())


def test_vector_rows_are_read_on_demand_like_an_array(tmp_path):
    x = np.random.default_rng(0).standard_normal((500, 6)).astype(np.float16)
    save_vectors(tmp_path / "v.npy", x)
    rows = load_vectors(tmp_path / "v.npy")
    assert rows.shape == x.shape and rows.dtype == x.dtype and len(rows) == 500
    assert str(tmp_path / "v.npy") not in mapped_files()  # read with pread, never mapped
    assert np.array_equal(rows[7], x[7]) and np.array_equal(rows[-1], x[-1])
    assert np.array_equal(rows[10:20], x[10:20]) and np.array_equal(rows[490:900], x[490:900])
    assert np.array_equal(rows[::9], x[::9])
    for ids in ([3, 1, 1, 499, 2, 0], np.array([4, 5, 6, 100]), [], [-2]):
        assert np.array_equal(rows[ids], x[ids])
    assert np.array_equal(rows[[1, 2], 3], x[[1, 2], 3]) and np.array_equal(rows[4, 1:3], x[4, 1:3])
    assert np.array_equal(np.asarray(rows), x)
    assert np.asarray(rows[0:3], dtype=np.float32).dtype == np.float32
    with pytest.raises(IndexError):
        rows[500]
    with pytest.raises(IndexError):
        rows[[0, 500]]


def test_vector_rows_survive_the_file_being_deleted(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    save_vectors(tmp_path / "v.npy", x)
    rows = load_vectors(tmp_path / "v.npy")
    (tmp_path / "v.npy").unlink()  # an old generation removed while a reader still has it
    assert np.array_equal(rows[1:3], x[1:3])


def test_truncated_vector_file_is_a_clear_error(tmp_path):
    save_vectors(tmp_path / "v.npy", np.ones((100, 8), np.float32))
    data = (tmp_path / "v.npy").read_bytes()
    (tmp_path / "v.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        load_vectors(tmp_path / "v.npy")


def test_a_single_query_searches_on_one_thread_and_restores_the_setting(monkeypatch):
    x = clustered(2000)
    index = FaissDense.build(x, "Flat")
    seen = []
    inner = index._index.search

    def spy(*args, **kwargs):
        seen.append(faiss.omp_get_max_threads())
        return inner(*args, **kwargs)

    monkeypatch.setattr(index._index, "search", spy)
    before = faiss.omp_get_max_threads()
    index.search(x[:1], 5)
    index.search(x[:50], 5)
    assert seen == [1, before] and faiss.omp_get_max_threads() == before
