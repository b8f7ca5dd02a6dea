"""BM25 query time by index size: qa.lexical.LexicalIndex.search vs bm25s's own scoring.

"bm25s" is what LexicalIndex.search did before (bm25s get_scores_from_ids: np.add.at into
a new corpus-sized array, then a top-k over all of it); "ours" is LexicalIndex.search
now (the same np.add.at sums into a reused buffer; a filter is applied by gathering the
allowed ids, not by masking the whole array). "filtered" keeps 44% of the passages. Both run on the same loaded index (memory-mapped, as the app loads
it) and the same real squad-dev questions; the table says whether their top-k scores agree.

    python bench/bm25.py                      # 10k, 100k, 1M (synthetic generations)
    python bench/bm25.py --sizes 100000 --questions 500
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from common import load_average, percentile, questions, save_result, table  # noqa: I001
import synthetic

from qa.index import layout
from qa.index.lexical import LexicalIndex

K = 50


def old_search(index: LexicalIndex, question: str, k: int, allowed=None):
    """LexicalIndex.search as it was: bm25s scores for every passage, then top-k."""
    ids = index.token_ids(question)
    if not ids:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    scores = np.asarray(index._model.get_scores_from_ids(ids), dtype=np.float32)
    if allowed is not None:
        mask = np.zeros(scores.shape[0], dtype=bool)
        mask[allowed] = True
        scores = np.where(mask, scores, 0.0)
    k = min(k, scores.shape[0])
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    keep = scores[top] > 0
    return scores[top][keep], top[keep].astype(np.int64)


def run(fn, asked: list[str]) -> tuple[list[float], list]:
    times, outs = [], []
    for question in asked:
        start = time.perf_counter()
        outs.append(fn(question))
        times.append((time.perf_counter() - start) * 1000)
    return times, outs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--questions", type=int, default=300)
    args = parser.parse_args()
    asked = [q["question"] for q in questions(args.questions)]
    rows = []
    for n in args.sizes:
        gen = synthetic.build(n) / layout.generation_name(1)
        index = LexicalIndex.load(gen / layout.LEXICAL_DIR)
        nnz = int(index._indptr[-1])
        postings = [sum(int(index._indptr[t + 1] - index._indptr[t]) for t in index.token_ids(q))
                    for q in asked]
        run(lambda q: index.search(q, K), asked[:20])  # warm the page cache and the buffer
        run(lambda q: old_search(index, q, K), asked[:20])
        tokenize_t, _ = run(index.token_ids, asked)
        # Interleaved halves, so a burst of load on the shared machine hits both alike.
        half = len(asked) // 2
        ours_a, ours_out_a = run(lambda q: index.search(q, K), asked[:half])
        old_a, old_out_a = run(lambda q: old_search(index, q, K), asked[:half])
        old_b, old_out_b = run(lambda q: old_search(index, q, K), asked[half:])
        ours_b, ours_out_b = run(lambda q: index.search(q, K), asked[half:])
        ours, old = ours_a + ours_b, old_a + old_b
        same = all(np.array_equal(a[0], b[0]) for a, b in
                   zip(ours_out_a + ours_out_b, old_out_a + old_out_b))
        # Filtered: passages of the first ~44% of articles (as a date filter would keep).
        allowed = np.arange(int(n * 0.44), dtype=np.int64)
        old_f, old_f_out = run(lambda q: old_search(index, q, K, allowed), asked[:100])
        ours_f, ours_f_out = run(lambda q: index.search(q, K, allowed), asked[:100])
        same = same and all(np.array_equal(a[0], b[0]) for a, b in zip(ours_f_out, old_f_out))
        rows.append([f"{n:,}", f"{nnz:,}", int(np.median(postings)), percentile(tokenize_t, 50),
                     percentile(old, 50), percentile(old, 99), percentile(ours, 50),
                     percentile(ours, 99), percentile(old_f, 50), percentile(ours_f, 50),
                     "yes" if same else "NO"])
        print(table(HEADERS, rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(f"top-{K} per question, {len(asked)} squad-dev questions; {load_average()}")
    print(table(HEADERS, rows))
    save_result("bm25", {"headers": HEADERS, "rows": rows})


HEADERS = ["passages", "postings", "postings/question (median)", "tokenize p50 ms",
           "bm25s p50 ms", "bm25s p99 ms", "ours p50 ms", "ours p99 ms",
           "filtered bm25s p50", "filtered ours p50", "same top-k scores"]

if __name__ == "__main__":
    main()
