"""Approximate vs exact dense search: recall@10 on real questions, latency, build time, size.

Vectors are the synthetic generations of bench/synthetic.py (real squad-dev passage
vectors and noisy copies of them); questions are real squad-dev questions embedded with
the bundled model. "recall@10" is the share of the exact top 10 that the index returns in
its top 10; "rerank@10" is the same after the exact re-scoring the retriever does anyway
(it re-scores its `candidates`=50 dense hits with the stored float32 vectors).

    python bench/ann.py                       # 100k and 1M, the default sweep
    python bench/ann.py --sizes 100000 --factories "IVF1024,Flat" "HNSW32" --nprobe 16 32
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from common import RESULTS, Clock, percentile, questions, save_result, table  # noqa: I001
import synthetic

from qa.index import layout
from qa.index.dense import FaissDense, choose_factory, ivf_lists
from qa.index.manifest import read_manifest
from qa.index.vectors import load_vectors

CANDIDATES = 50


def question_vectors(limit: int) -> np.ndarray:
    """Real squad-dev questions embedded with the bundled model (cached)."""
    path = RESULTS / f"question-vectors-{limit}.npy"
    if path.is_file():
        return np.load(path)
    from qa.embed.transformer import SentenceTransformerEmbedder

    vectors = SentenceTransformerEmbedder().encode([q["question"] for q in questions(limit)])
    RESULTS.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k ids by inner product, in blocks (vectors may be memory-mapped)."""
    best_scores = np.full((len(queries), 0), -np.inf, np.float32)
    best_ids = np.zeros((len(queries), 0), np.int64)
    for start in range(0, len(vectors), 1 << 17):
        block = np.asarray(vectors[start:start + (1 << 17)], dtype=np.float32)
        scores = queries @ block.T
        top = np.argpartition(-scores, min(k, scores.shape[1] - 1), axis=1)[:, :k]
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, 1)], 1)
        best_ids = np.concatenate([best_ids, top + start], 1)
        keep = np.argsort(-best_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(best_scores, keep, 1)
        best_ids = np.take_along_axis(best_ids, keep, 1)
    return best_ids


def recall(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth)]))


def rerank(vectors: np.ndarray, queries: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """The retriever's exact re-scoring of each query's candidates; top-k ids."""
    out = []
    for query, row in zip(queries, ids):
        row = row[row >= 0]
        order = np.sort(row)
        scores = np.asarray(vectors[order], dtype=np.float32) @ query
        out.append(order[np.argsort(-scores, kind="stable")[:k]])
    return np.array([np.pad(r, (0, k - len(r)), constant_values=-1) for r in out])


def measure(n: int, factory: str, nprobes: list[int], queries: np.ndarray, truth: np.ndarray,
            latency_queries: int) -> list[list[object]]:
    index_dir = synthetic.build(n, quiet=True)
    gen = index_dir / layout.read_current(index_dir)
    vectors = load_vectors(gen / layout.VECTORS_FILE)
    manifest = read_manifest(gen)
    with tempfile.TemporaryDirectory(dir=RESULTS) as tmp:
        path = Path(tmp) / "dense.faiss"
        if manifest.dense.factory == factory:  # the generation's own index
            path = gen / layout.DENSE_FILE
            synth = synthetic._read_synth(gen)
            build_s = synth.get("faiss_build_seconds") or synth["build_seconds"]["faiss"]
        else:
            with Clock() as clock:
                FaissDense.build(vectors, factory).save(path)
            build_s = clock.wall
        size_mb = path.stat().st_size / 2**20
        dense = FaissDense.load(path)
        rows = []
        settings = nprobes if "IVF" in factory else [None]
        for nprobe in settings:
            if nprobe is not None:
                dense.set_search_parameters(nprobe=nprobe, ef_search=nprobe)
            _, ids = dense.search(queries, CANDIDATES)
            r10 = recall(ids, truth)
            rr10 = recall(rerank(vectors, queries, ids, 10), truth)
            dense.search(queries[:5], CANDIDATES)  # warm
            times = []
            for query in queries[:latency_queries]:
                start = time.perf_counter()
                dense.search(query[None, :], CANDIDATES)
                times.append((time.perf_counter() - start) * 1000)
            rows.append([f"{n:,}", factory, nprobe if nprobe is not None else "-", r10, rr10,
                         percentile(times, 50), percentile(times, 99), build_s, size_mb])
            print(table(HEADERS, rows[-1:]).splitlines()[-1], flush=True)
    return rows


HEADERS = ["passages", "factory", "nprobe/ef", "recall@10", "rerank@10", "p50 ms", "p99 ms",
           "build s", "MiB"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--factories", nargs="+", help="default: Flat and IVF sweeps")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--questions", type=int, default=500)
    parser.add_argument("--latency-queries", type=int, default=200)
    args = parser.parse_args()
    queries = question_vectors(args.questions)
    rows = []
    print(table(HEADERS, []), flush=True)
    for n in args.sizes:
        vectors = load_vectors(synthetic.build(n) / layout.generation_name(1) / layout.VECTORS_FILE)
        truth = exact_top(vectors, queries, 10)
        factories = args.factories or [
            "Flat", f"IVF{ivf_lists(n) // 4},Flat", f"IVF{ivf_lists(n)},Flat",
            f"IVF{ivf_lists(n)},SQ8",
        ]
        for factory in factories:
            rows += measure(n, factory, args.nprobe, queries, truth, args.latency_queries)
    print()
    print(f"default choice: " + ", ".join(f"{n:,} -> {choose_factory(n)}" for n in args.sizes))
    print(table(HEADERS, rows))
    save_result("ann", {"headers": HEADERS, "rows": rows})


if __name__ == "__main__":
    main()
