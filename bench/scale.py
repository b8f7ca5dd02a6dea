"""Build throughput by engine: local, and a local Ray cluster of 1 and 2 workers; projection.

Each configuration builds the same squad-dev articles from scratch with the real pipeline
(`build_index`, full): the local engine (this process, torch on every core), then
`--engine ray` against a Ray cluster started on this machine (tests/ray_cluster.py: one
`ray start` per node, each node one CPU, so one model actor per node). Timings are split
into the time inside `encode` (where the engines differ) and the rest (reading, chunking,
token counting, FAISS, BM25, SQLite: always on the driver). For Ray it also reports the
wait for each encode call's first vectors (actors starting, models loading: "start-up"),
the steady rate after it (all actors, wall clock), and each actor's own rate (characters
over the seconds it spent inside the model).

Characters, not texts, measure the model's work: blocks go longest first, so a text of
the first block is more work than one of the last.

The projection to 1M and 10M passages on N machines of C cores (one 1-CPU actor per core):

    T(P, N) = P * d  +  u  +  P * s / (N * C * r1 * e)

    P   passages
    d   driver seconds per passage (measured: the least of the runs, as the first build
        also exports the question model once; not spread over the cluster)
    u   the build's start-up: actors starting and loading the model, once per build (its
        passes share the actors)
    s   characters embedded per passage (its distinct sentences, and its own text where
        passage vectors are encoded rather than pooled)
    r1  characters/s of one 1-CPU actor inside the model (measured, 1 worker)
    e   dispatch efficiency: the steady rate of the 2-worker run over the sum of its
        actors' own rates (what Ray's scheduling and transfers leave of perfect scaling;
        CPU sharing on this one machine lowers both, so it cancels out)

    python bench/scale.py                 # 4 squad-dev articles, 1 round
    python bench/scale.py --articles 8 --rounds 3
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from common import (  # noqa: I001
    RESULTS, ROOT, SQUAD_ARTICLES, load_average, median, read_jsonl, save_result, table,
)

sys.path.insert(0, str(ROOT / "tests"))  # the throwaway cluster the tests use

from qa.build import build_index  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.embed.transformer import SentenceTransformerEmbedder  # noqa: E402
from qa.index.writer import live_manifest  # noqa: E402

PASSAGES = (1_000_000, 10_000_000)
MACHINES = (1, 4, 16, 64)


class EncodeClock:
    """Passes through to an embedder and sums the seconds, texts and characters of its
    encode calls."""

    def __init__(self, embedder) -> None:
        self._embedder = embedder
        self.seconds = 0.0
        self.texts = 0
        self.chars = 0
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self._embedder, name)

    def encode(self, texts, on_progress=None):
        started = time.perf_counter()
        try:
            return self._embedder.encode(texts, on_progress)
        finally:
            self.seconds += time.perf_counter() - started
            self.texts += len(texts)
            self.chars += sum(len(t) for t in texts)
            self.calls += 1


def timed_build(settings: Settings, embedder) -> dict:
    clock = EncodeClock(embedder)
    started = time.perf_counter()
    report = build_index(settings, clock, full=True)
    seconds = time.perf_counter() - started
    stats = embedder.take_stats() if hasattr(embedder, "take_stats") else None
    return {
        "seconds": seconds, "encode_s": clock.seconds, "texts": clock.texts,
        "calls": clock.calls, "passages": report.passages,
        "startup_s": stats.startup_seconds if stats else 0.0,
        "chars": clock.chars,
        "steady_chars": stats.steady_chars if stats else clock.chars,
        "steady_s": stats.steady_seconds if stats else clock.seconds,
        "busy_s": stats.busy_seconds if stats else clock.seconds,
        "nodes": len(stats.nodes) if stats else 0, "actors": stats.actors if stats else 0,
        "model_loads": stats.actors_started if stats else 0,
    }


def summarise(engine: str, workers: int, runs: list[dict]) -> dict:
    pick = lambda key: median([r[key] for r in runs])  # noqa: E731
    result = {"engine": engine, "workers": workers, "runs": runs,
              **{k: pick(k) for k in ("seconds", "encode_s", "startup_s")},
              "steady_chars_per_s": median([r["steady_chars"] / r["steady_s"] for r in runs]),
              "actor_chars_per_s": median([r["chars"] / r["busy_s"] for r in runs]),
              "texts": runs[0]["texts"], "chars": runs[0]["chars"],
              "passages": runs[0]["passages"],
              "calls": runs[0]["calls"], "nodes": max(r["nodes"] for r in runs)}
    result["driver_s"] = result["seconds"] - result["encode_s"]
    return result


def run_local(settings: Settings, rounds: int) -> dict:
    embedder = SentenceTransformerEmbedder()
    embedder.encode(["warm up the model"] * 8)
    return summarise("local", embedder.threads, [timed_build(settings, embedder)
                                                 for _ in range(rounds)])


def run_ray(settings: Settings, rounds: int, workers: int, local, work: Path) -> dict:
    from ray_cluster import LocalRayCluster

    from qa.embed.ray_engine import RayEmbedder

    cluster = LocalRayCluster(work / f"ray-{workers}", nodes=workers, cpus=1,
                              env={"PYTHONPATH": str(ROOT)})
    cluster.start()
    os.environ.update(cluster.client_env())
    embedder = RayEmbedder(local, settings, address=cluster.address)
    try:
        embedder.connect()
        runs = [timed_build(settings, embedder) for _ in range(rounds)]
    finally:
        embedder.close()
        left = cluster.stop()
        if left:
            print(f"warning: Ray processes left running: {left}", file=sys.stderr)
    return summarise("ray", workers, runs)


def projection(local: dict, one: dict, two: dict, cores: int) -> tuple[list, dict]:
    s = local["chars"] / local["passages"]
    # The first build into a folder also exports the question model (seconds, once per
    # index), so the least driver time of the runs is the per-passage work.
    d = min(r["driver_s"] for r in (local, one, two)) / local["passages"]
    r1 = one["actor_chars_per_s"]
    e = min(1.0, two["steady_chars_per_s"] / (two["workers"] * two["actor_chars_per_s"]))
    u = one["startup_s"]
    r_local = local["steady_chars_per_s"]
    rows = []
    for passages in PASSAGES:
        local_h = passages * (d + s / r_local) / 3600
        rows.append([f"{passages:,}", "local engine, 1 machine", passages * d / 3600,
                     passages * s / r_local / 3600, local_h])
        for machines in MACHINES:
            embed_h = (u + passages * s / (machines * cores * r1 * e)) / 3600
            rows.append([f"{passages:,}", f"ray, {machines} x {cores} cores",
                         passages * d / 3600, embed_h, passages * d / 3600 + embed_h])
    return rows, {"s": s, "d": d, "r1": r1, "e": e, "u": u, "r_local": r_local,
                  "cores": cores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=4, help="squad-dev articles (of 24)")
    parser.add_argument("--rounds", type=int, default=1, help="builds per configuration")
    parser.add_argument("--cores", type=int, default=os.cpu_count(),
                        help="cores per machine in the projection (default: this machine's)")
    args = parser.parse_args()
    print(load_average(), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=RESULTS) as tmp:
        work = Path(tmp)
        corpus = work / "corpus" / "articles.jsonl"
        corpus.parent.mkdir()
        rows = read_jsonl(SQUAD_ARTICLES)[: args.articles]
        corpus.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        settings = Settings(corpus_dir=corpus, index_dir=work / "index")
        local = run_local(settings, args.rounds)
        print(f"local: {local['seconds']:.1f} s; {load_average()}", flush=True)
        model = SentenceTransformerEmbedder()
        results = [local]
        for workers in (1, 2):
            results.append(run_ray(settings, args.rounds, workers, model, work))
            print(f"ray, {workers} worker(s): {results[-1]['seconds']:.1f} s; {load_average()}",
                  flush=True)
        built = live_manifest(settings.index_dir)[1].model

    first = results[0]
    print(f"\n{args.articles} squad-dev articles: {first['passages']} passages, "
          f"{first['texts']} texts embedded ({built.precision}, distinct sentences, passage "
          f"vectors {built.passage_vectors}); "
          f"{load_average()}")
    print(table(
        ["engine", "workers", "build s", "passages/s", "in encode s", "start-up s",
         "steady kchar/s", "kchar/s per actor", "driver s"],
        [[r["engine"], (f"{r['workers']} threads" if r["engine"] == "local"
                        else f"{r['workers']} x 1 CPU"),
          r["seconds"], r["passages"] / r["seconds"], r["encode_s"], r["startup_s"],
          r["steady_chars_per_s"] / 1000,
          r["actor_chars_per_s"] / 1000 if r["engine"] == "ray" else "-",
          r["driver_s"]] for r in results]))
    rows, params = projection(results[0], results[1], results[2], args.cores)
    print("\nProjection: T = P*d + u + P*s / (N*C*r1*e) with "
          f"s={params['s']:,.0f} chars embedded/passage, d={params['d'] * 1000:.2f} ms/passage, "
          f"u={params['u']:.1f} s, r1={params['r1']:,.0f} chars/s, "
          f"e={params['e']:.2f}, C={params['cores']}; local: P*(d + s/r) with "
          f"r={params['r_local']:,.0f} chars/s")
    print(table(["passages", "where", "driver h", "embedding h", "total h"], rows))
    save_result("scale", {"articles": args.articles, "results": results,
                          "projection": params})


if __name__ == "__main__":
    main()
