"""End-to-end query latency (question -> Retriever.answer with highlights) by index size.

Each size runs in its own process (so its peak memory is its own) over a synthetic
generation from bench/synthetic.py (real squad-dev passages and vectors, repeated with
noisy vectors up to the size). Questions are real squad-dev questions, asked one at a time
as a user would, with the question encoder a Retriever really uses (the model's ONNX export
that `qa index` writes, copied from the squad-dev index; `--question-encoder torch` for the
torch model). Reported per size: load time, p50/p99 of the whole answer and of its parts
(question embedding, FAISS, BM25, SQLite fetch, the rest: scoring, highlights) and each
part's share of the answer time, the p50 of a bare fp32 `SentenceTransformer.encode` of
one question in the same process (all threads, as a user would call it, and one thread),
a date-filtered query's p50 (and its recall@10 against an exact filtered search), peak
memory (ru_maxrss, plus the anonymous/file-backed split at the end), index size on disk,
and recall@10 of the hybrid ranking against the same ranking with an exact FAISS index.
At the end, two ratios: p50 at the smallest size over the bare encode's p50, and p50 at
the largest size over p50 at the smallest. `--rounds N` asks the sizes in turn N times
and also prints each round's ratios and their medians (the load drifts within minutes).

    python bench/latency.py                          # 10k, 100k, 1M passages, hybrid
    python bench/latency.py --sizes 10000 --mode dense --questions 100
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from common import (  # noqa: I001
    ROOT, folder_mb, load_average, peak_rss_mb, percentile, questions, rss_breakdown_mb,
    save_result, table,
)

from qa.index.dense import choose_factory  # noqa: E402

STAGES = ("embed", "faiss", "bm25", "sqlite", "vectors", "reader")


class _Timer:
    """Wraps a method and adds its wall time to a per-question tally."""

    def __init__(self, tally: dict[str, float], name: str, fn):
        self.tally, self.name, self.fn = tally, name, fn

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.tally[self.name] = self.tally.get(self.name, 0.0) + time.perf_counter() - start


class _TimedRows:
    """A vector file whose row reads add to the tally (under "vectors")."""

    def __init__(self, tally: dict[str, float], rows) -> None:
        self._tally, self._rows = tally, rows
        self.shape, self.dtype = rows.shape, rows.dtype

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, key):
        start = time.perf_counter()
        try:
            return self._rows[key]
        finally:
            self._tally["vectors"] = self._tally.get("vectors", 0.0) + time.perf_counter() - start


def worker(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    import synthetic

    index_dir = synthetic.build(args.size, factory=args.faiss or choose_factory(args.size),
                                quiet=True)
    from qa.config import Settings
    from qa import Filters
    from qa.embed import load_question_encoder
    from qa.retriever import Retriever

    load_start = time.perf_counter()
    settings = Settings(index_dir=index_dir, mode=args.mode, precision=args.precision,
                        reranker=args.rerank != "off")
    if args.question_encoder == "torch":
        from qa.embed.transformer import SentenceTransformerEmbedder

        embedder = SentenceTransformerEmbedder(precision=args.precision)
    else:
        _share_question_model(index_dir)
        embedder = load_question_encoder(settings)
        if type(embedder).__name__ != "OnnxQuestionEncoder":
            raise SystemExit(f"no ONNX question model for {index_dir}")
    retriever = Retriever.open(settings, embedder)
    if args.rerank != "off" and retriever.reranker is None:
        raise SystemExit(f"the reader did not load: {retriever.reader_problem}")
    if args.rerank == "no-lead":  # read on even when both stages agree (ReadingPlan.lead_from)
        import dataclasses

        retriever.reranker.plan = dataclasses.replace(retriever.reranker.plan, lead_from=None)
    generation = retriever.generation
    load_s = time.perf_counter() - load_start
    rss_after_load = rss_breakdown_mb()

    tally: dict[str, float] = {}
    embedder.encode = _Timer(tally, "embed", embedder.encode)
    generation.dense.search = _Timer(tally, "faiss", generation.dense.search)
    generation.lexical.search = _Timer(tally, "bm25", generation.lexical.search)
    generation.db.passages_with_rows = _Timer(tally, "sqlite", generation.db.passages_with_rows)
    if retriever.reranker is not None:
        reader = retriever.reranker.reader
        reader.score = _Timer(tally, "reader", reader.score)
        scored = reader.score

        def counted(question, texts):
            tally["pairs"] = tally.get("pairs", 0) + len(texts)
            return scored(question, texts)

        reader.score = counted

    if args.prefetch:
        # A proposed retriever change, measured without editing the retriever: once the
        # candidates' rows are known, ask for all their vector rows at once.
        fetch = generation.db.passages_with_rows

        def passages_with_rows(ids):
            stored = fetch(ids)
            generation.sentence_vectors.prefetch(
                [(first, first + len(p.sentences)) for p, first in stored.values()])
            generation.vectors.prefetch([(i, i + 1) for i in stored])
            return stored

        generation.db.passages_with_rows = passages_with_rows
    generation.vectors = _TimedRows(tally, generation.vectors)
    generation.sentence_vectors = _TimedRows(tally, generation.sentence_vectors)

    # Warm-up on other questions than the timed ones, as a server that has been answering
    # for a while: lazy imports done, the IVF lists and common posting lists in the page
    # cache; the timed questions' own passages and sentences are still read cold.
    everything = [q["question"] for q in questions(args.questions + args.warmup,
                                                   offset=args.offset)]
    warm = set(range(0, len(everything), max(1, len(everything) // max(args.warmup, 1))))
    warm = set(list(warm)[: args.warmup])
    asked = [q for i, q in enumerate(everything) if i not in warm]
    for i in sorted(warm):
        retriever.answer(everything[i])
    times, parts, pairs = [], {s: [] for s in STAGES}, []
    for question in asked:
        tally.clear()
        start = time.perf_counter()
        answer = retriever.answer(question)
        times.append((time.perf_counter() - start) * 1000)
        pairs.append(tally.get("pairs", 0))
        assert answer.quotes or answer.closest
        for stage in STAGES:
            parts[stage].append(tally.get(stage, 0.0) * 1000)
    rest = [t - sum(parts[s][i] for s in STAGES) for i, t in enumerate(times)]

    # A filtered question: articles of one year (~1/3 of the copies above 1 year's worth).
    # The first one also reads every article's date and passage range (once per generation).
    filters = Filters(date_from="2001-01-01", date_to="2001-12-31")
    filtered = []
    for question in asked[:min(50, args.questions) + 1]:
        start = time.perf_counter()
        retriever.answer(question, filters=filters)
        filtered.append((time.perf_counter() - start) * 1000)
    filtered_first, filtered = filtered[0], filtered[1:]

    peak = peak_rss_mb()
    rss_end = rss_breakdown_mb()
    bare = bare_encode_ms(asked[:args.bare])

    # Recall@10 of the final ranking against the same ranking over an exact index.
    recall = filtered_recall = None
    if args.recall and args.mode != "bm25":
        from qa.index.dense import FaissDense

        exact = FaissDense.build(np.asarray(generation.vectors._rows), "Flat")
        check = asked[:args.recall]
        approx_ids = [[h.passage.id for h in retriever.search(q, 10)] for q in check]
        approx_filtered = [[h.passage.id for h in retriever.search(q, 10, filters=filters)]
                           for q in check]
        generation.dense = exact
        exact_ids = [[h.passage.id for h in retriever.search(q, 10)] for q in check]
        exact_filtered = [[h.passage.id for h in retriever.search(q, 10, filters=filters)]
                          for q in check]
        recall = _recall(approx_ids, exact_ids)
        filtered_recall = _recall(approx_filtered, exact_filtered)

    return {
        "size": args.size, "mode": args.mode, "precision": args.precision,
        "rerank": args.rerank,
        "faiss": generation.manifest.dense.factory,
        "dense": generation.dense.description if recall is None else None,
        "questions": len(times), "load_s": load_s, "process_s": time.perf_counter() - started,
        "p50": percentile(times, 50), "p99": percentile(times, 99),
        "pairs_mean": float(np.mean(pairs)), "pairs_p50": percentile(pairs, 50),
        "parts_p50": {s: percentile(parts[s], 50) for s in STAGES},
        "parts_p99": {s: percentile(parts[s], 99) for s in STAGES},
        "rest_p50": percentile(rest, 50), "rest_p99": percentile(rest, 99),
        "shares": {**{s: sum(parts[s]) / sum(times) for s in STAGES},
                   "rest": sum(rest) / sum(times)},
        "encoder": type(embedder).__name__, **bare,
        "filtered_p50": percentile(filtered, 50), "filtered_p99": percentile(filtered, 99),
        "filtered_first": filtered_first, "filtered_recall10": filtered_recall,
        "peak_rss_mb": peak, "rss_after_load": rss_after_load, "rss_end": rss_end,
        "disk_mb": folder_mb(index_dir), "recall10": recall,
    }


def _recall(found: list[list[int]], exact: list[list[int]]) -> float:
    """Mean share of each exact top 10 that was found."""
    return float(np.mean([len(set(a) & set(e)) / max(len(e), 1) for a, e in zip(found, exact)]))


def _share_question_model(index_dir: Path) -> None:
    """Copy the squad-dev index's ONNX export (which `qa index` wrote) into the synthetic
    index, where a Retriever looks for it: the synthetic builder embeds nothing."""
    import shutil

    from common import squad_index
    from qa.embed.onnx import MODELS_DIR

    source = squad_index("fp32") / MODELS_DIR
    if source.is_dir():  # afresh: an export of an older version would not be used
        shutil.rmtree(index_dir / MODELS_DIR, ignore_errors=True)
        shutil.copytree(source, index_dir / MODELS_DIR)


def bare_encode_ms(texts: list[str]) -> dict[str, float]:
    """p50/p99 ms of a bare fp32 `SentenceTransformer.encode(question)`, one question at a
    time: with torch's default threads (what a user's script does) and with one thread."""
    import torch
    from sentence_transformers import SentenceTransformer

    from qa.embed import bundled_model_path

    model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    out = {}
    default_threads = torch.get_num_threads()
    for label, threads in (("bare", default_threads), ("bare1", 1)):
        torch.set_num_threads(threads)
        for text in texts[:5]:  # warm-up
            model.encode(text, show_progress_bar=False)
        times = []
        for text in texts:
            start = time.perf_counter()
            model.encode(text, show_progress_bar=False)
            times.append((time.perf_counter() - start) * 1000)
        out[f"{label}_p50"], out[f"{label}_p99"] = percentile(times, 50), percentile(times, 99)
    torch.set_num_threads(default_threads)
    out["bare_threads"] = default_threads
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--mode", default="hybrid", choices=["hybrid", "dense", "bm25"])
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--faiss", help="FAISS factory (default: qa.index.dense.choose_factory)")
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=100, help="other questions asked first")
    parser.add_argument("--offset", type=int, default=0,
                        help="shift the question sample (fresh questions: cold rows)")
    parser.add_argument("--prefetch", action="store_true",
                        help="prefetch candidates' vector rows (a proposed retriever change)")
    parser.add_argument("--recall", type=int, default=200,
                        help="questions for hybrid recall@10 vs exact (0: skip)")
    parser.add_argument("--question-encoder", default="onnx", choices=["onnx", "torch"],
                        help="onnx: the export a Retriever uses (default); torch: the model")
    parser.add_argument("--bare", type=int, default=100,
                        help="questions for the bare SentenceTransformer.encode p50")
    parser.add_argument("--rerank", default="both",
                        help="with the reader (on), without it (off), with it reading on "
                        "when both stages agree (no-lead: ReadingPlan.lead_from None), "
                        "comma-separated; both: off,on (default)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="ask every size this many times, in turn, and report the median "
                             "of each round's ratios (the load here drifts within minutes)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = set(args.rerank.split(",")) - {"on", "off", "no-lead", "both"}
    if unknown:
        parser.error(f"--rerank: unknown {sorted(unknown)}; choose from on, off, no-lead, both")
    if args.worker:
        args.size = args.worker
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return

    print(load_average(), flush=True)
    results, rounds = [], []
    runs = [(size, rerank)
            for rerank in ("off,on" if args.rerank == "both" else args.rerank).split(",")
            for size in args.sizes]
    for round_number, (size, rerank) in enumerate(runs * args.rounds):
        import synthetic

        synthetic.build(size, factory=args.faiss or choose_factory(size))  # outside the worker
        command = [sys.executable, str(Path(__file__)), "--worker", str(size), "--rerank",
                   rerank, "--mode",
                   args.mode, "--precision", args.precision, "--questions", str(args.questions),
                   "--warmup", str(args.warmup), "--offset", str(args.offset),
                   "--recall", str(args.recall), "--question-encoder", args.question_encoder,
                   "--bare", str(args.bare)]
        command += ["--faiss", args.faiss] if args.faiss else []
        command += ["--prefetch"] if args.prefetch else []
        out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        if out.returncode or not lines:
            print(out.stdout[-2000:], out.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"worker for {size} failed")
        result = json.loads(lines[-1][len("RESULT "):])
        if round_number < len(runs):
            results.append(result)
        else:
            rounds.append(result)
        print(f"{size:,}, reader {rerank}: p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms, "
              f"peak {result['peak_rss_mb']:,.0f} MiB, pairs read per question "
              f"{result['pairs_mean']:.1f} (median {result['pairs_p50']:.0f})", flush=True)

    print()
    print(f"mode {args.mode}, {args.precision}, {args.questions} questions after {args.warmup} "
          f"others{', candidate rows prefetched' if args.prefetch else ''}; {load_average()}")
    print(table(
        ["passages, reader", "faiss", "p50 ms", "p99 ms", "filtered p50 (first)",
         "filtered / p50", "recall@10 vs exact", "filtered recall@10", "load s",
         "peak RSS MiB", "disk MiB"],
        [[f"{r['size']:,} {r['rerank']}", r["faiss"], r["p50"], r["p99"],
          f"{r['filtered_p50']:.1f} ({r['filtered_first']:.0f})",
          f"{r['filtered_p50'] / r['p50']:.2f}",
          "-" if r["recall10"] is None else f"{r['recall10']:.3f}",
          "-" if r["filtered_recall10"] is None else f"{r['filtered_recall10']:.3f}",
          r["load_s"], r["peak_rss_mb"], r["disk_mb"]] for r in results],
    ))
    print()
    print("p50 / p99 ms of the parts of one answer:")
    print(table(
        ["passages, reader", *[f"{s}" for s in STAGES], "rest"],
        [[f"{r['size']:,} {r['rerank']}",
          *[f"{r['parts_p50'][s]:.1f} / {r['parts_p99'][s]:.1f}" for s in STAGES],
          f"{r['rest_p50']:.1f} / {r['rest_p99']:.1f}"] for r in results],
    ))
    print()
    print("share of the answer time (sum over the questions):")
    print(table(
        ["passages, reader", *STAGES, "rest"],
        [[f"{r['size']:,} {r['rerank']}",
          *[f"{100 * r['shares'][s]:.0f}%" for s in (*STAGES, "rest")]] for r in results],
    ))
    print()
    print("bare fp32 SentenceTransformer.encode of one question, p50 / p99 ms:")
    print(table(
        ["passages, reader", "default threads", "1 thread", "answer p50 / bare p50",
         "answer p50 / bare 1-thread p50"],
        [[f"{r['size']:,} {r['rerank']}",
          f"{r['bare_p50']:.1f} / {r['bare_p99']:.1f} ({r['bare_threads']})",
          f"{r['bare1_p50']:.1f} / {r['bare1_p99']:.1f}", f"{r['p50'] / r['bare_p50']:.2f}",
          f"{r['p50'] / r['bare1_p50']:.2f}"] for r in results],
    ))
    print(f"\nratios ({results[0]['encoder']} questions; {load_average()}):")
    for rerank in dict.fromkeys(r["rerank"] for r in results):
        runs = [r for r in results if r["rerank"] == rerank]
        small, big = runs[0], runs[-1]
        print(f"  reader {rerank}: p50 at {small['size']:,} / bare fp32 encode p50 (same "
              f"process): {small['p50'] / small['bare_p50']:.2f} (default threads), "
              f"{small['p50'] / small['bare1_p50']:.2f} (1 thread)")
        if big is not small:
            print(f"  reader {rerank}: p50 at {big['size']:,} / p50 at {small['size']:,}: "
                  f"{big['p50'] / small['p50']:.2f}")
    if rounds:
        print_rounds(results + rounds, args.rounds)
    print()
    print("memory at the end (MiB): " + "; ".join(
        f"{r['size']:,}: anon {r['rss_end'].get('RssAnon', 0):,.0f}, "
        f"file-backed {r['rss_end'].get('RssFile', 0):,.0f}" for r in results))
    save_result(f"latency-{args.mode}-{args.precision}-reader-{args.rerank.replace(',', '+')}"
                + ("-prefetch" if args.prefetch else ""), {"results": results, "rounds": rounds})


def print_rounds(every: list[dict], count: int) -> None:
    """Each round's growth ratio and answer / bare encode ratio, and their medians: sizes
    asked minutes apart see different loads, sizes asked in turn see about the same."""
    print(f"\nby round ({count} rounds, the sizes in turn in each):")
    for rerank in dict.fromkeys(r["rerank"] for r in every):
        runs = [r for r in every if r["rerank"] == rerank]
        sizes = list(dict.fromkeys(r["size"] for r in runs))
        small, big = sizes[0], sizes[-1]
        by_round = [runs[i:i + len(sizes)] for i in range(0, len(runs), len(sizes))]
        growth = [rs[-1]["p50"] / rs[0]["p50"] for rs in by_round]
        over_bare = [rs[0]["p50"] / rs[0]["bare_p50"] for rs in by_round]
        print(f"  reader {rerank}: p50 at {small:,} / bare encode p50: "
              + ", ".join(f"{x:.2f}" for x in over_bare)
              + f"; median {float(np.median(over_bare)):.2f}")
        if big != small:
            print(f"  reader {rerank}: p50 at {big:,} / p50 at {small:,}: "
                  + ", ".join(f"{x:.2f}" for x in growth)
                  + f"; median {float(np.median(growth)):.2f}")


if __name__ == "__main__":
    main()
