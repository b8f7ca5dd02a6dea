"""Incremental update vs full rebuild: squad-dev (24 articles) plus one new article.

Prints a table of medians (wall and CPU seconds) for:
- a full rebuild of the 25 articles (`index --full`),
- the incremental update that adds the new article to the 24 (`index`),
- embedding only the new article's texts (exactly what that update embeds),
- the incremental update that removes it again,
and where the incremental update's time goes. Target (issue 4): the incremental update
costs no more than embedding the new article plus 2 s.

    .venv/bin/python bench/incremental.py [--runs 3] [--full-runs 1]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/incremental.py` without installing

SQUAD_ARTICLES = ROOT.parent / "shared" / "eval" / "squad-dev" / "articles.jsonl"
SEED_CORPUS = ROOT / "corpus"
RESULT = ROOT / "bench" / "results" / "incremental.json"
TARGET_OVERHEAD = 2.0


def clocked(fn):
    """(wall s, CPU s, result) of fn(): CPU time is steadier on a shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()) + f" on {os.cpu_count()} cores"


def markdown(headers: list[str], rows: list[tuple]) -> str:
    cells = [[f"{v:.2f}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = [headers, ["-" * w for w in widths], *cells]
    return "\n".join("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths)) + " |"
                     for line in lines)


class StageClock:
    """Records when each build stage starts, from the build's progress callback."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.marks: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.perf_counter() - self.start
        key = stage if stage != "write" else f"write {done}/{total}"
        self.marks.setdefault(key, now)
        if stage == "embed":
            self.marks["embed end"] = now

    def spans(self, total: float) -> dict[str, float]:
        """Seconds per part: read+plan, embed, write dense, write BM25, write DB+publish."""
        m = self.marks
        read = m.get("read", 0.0)
        write0 = m.get("write 0/5", read)
        return {
            "read, plan, check live index": read,
            "chunk + embed": write0 - read,
            "FAISS + vectors": m.get("write 1/5", write0) - write0,
            "BM25": m.get("write 2/5", write0) - m.get("write 1/5", write0),
            "SQLite": m.get("write 3/5", write0) - m.get("write 2/5", write0),
            "manifest, fsync, switch, cleanup": total - m.get("write 3/5", total),
        }


def embed_only(embedder, settings, article_path: Path) -> tuple[float, float, int]:
    """Wall, CPU seconds and text count to chunk and embed one article as a build does."""
    from qa.config import chunk_settings_for
    from qa.build import embed_articles
    from qa.text.ingest import load_corpus

    article = load_corpus(article_path).articles[0]
    chunking = chunk_settings_for(settings, embedder.max_tokens)
    wall, cpu, embedded = clocked(lambda: embed_articles(embedder, [article], chunking))
    return wall, cpu, len(embedded.vectors) + embedded.unique_sentences


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="incremental runs (default 3)")
    parser.add_argument("--full-runs", type=int, default=1,
                        help="full rebuilds to time (default 1; each takes minutes)")
    args = parser.parse_args()

    from qa.build import build_index
    from qa.config import Settings
    from qa.embed.transformer import SentenceTransformerEmbedder

    print(f"start: {load()}", flush=True)
    embedder = SentenceTransformerEmbedder()
    embedder.encode(["warm up"])
    new_article = next(SEED_CORPUS.glob("*.txt"))
    root = Path(tempfile.mkdtemp(prefix="verbatim-bench-incremental-"))
    try:
        corpus = root / "corpus"
        corpus.mkdir()
        shutil.copy(SQUAD_ARTICLES, corpus / "squad-dev.jsonl")
        settings = Settings(corpus_dir=corpus, index_dir=root / "index")

        rows: dict[str, list[tuple[float, float, int]]] = {}
        stages: list[dict[str, float]] = []

        def build(label: str, full: bool = False) -> None:
            clock = StageClock()
            wall, cpu, report = clocked(
                lambda: build_index(settings, embedder, full=full, on_progress=clock)
            )
            texts = report.embedded_passages + report.embedded_sentences
            rows.setdefault(label, []).append((wall, cpu, texts))
            print(f"  {label}: {wall:.1f} s wall, {cpu:.1f} s CPU | {report.summary()}",
                  flush=True)
            if label.startswith("incremental: add"):
                stages.append(clock.spans(wall))

        print("full rebuilds of squad-dev + the new article ...", flush=True)
        shutil.copy(new_article, corpus / new_article.name)
        for _ in range(max(args.full_runs, 1)):
            build("full rebuild (25 articles)", full=True)
        (corpus / new_article.name).unlink()
        build("incremental: remove 1 article")
        rows.pop("incremental: remove 1 article")  # the base state; timed below
        for run in range(args.runs):
            print(f"run {run + 1}/{args.runs} ...", flush=True)
            shutil.copy(new_article, corpus / new_article.name)
            build("incremental: add 1 article (24 kept)")
            wall, cpu, texts = embed_only(embedder, settings, corpus / new_article.name)
            rows.setdefault("embed the new article only", []).append((wall, cpu, texts))
            (corpus / new_article.name).unlink()
            build("incremental: remove 1 article")
    finally:
        shutil.rmtree(root, ignore_errors=True)

    def med(label: str, i: int) -> float:
        return median([r[i] for r in rows[label]])

    print()
    print(markdown(["step", "median wall s", "median CPU s", "runs", "texts embedded"],
                [(label, med(label, 0), med(label, 1), len(values), values[0][2])
                 for label, values in rows.items()]))
    incremental = med("incremental: add 1 article (24 kept)", 0)
    embed = med("embed the new article only", 0)
    print()
    parts = {k: median([s[k] for s in stages]) for k in stages[0]}
    print(markdown(["where the incremental update goes", "median s"], list(parts.items())))
    overhead = incremental - embed
    verdict = "meets" if overhead <= TARGET_OVERHEAD else "MISSES"
    print(f"\nincremental {incremental:.2f} s = embedding {embed:.2f} s + {overhead:.2f} s "
          f"overhead: {verdict} the target (overhead <= {TARGET_OVERHEAD:g} s); "
          f"full rebuild {med('full rebuild (25 articles)', 0):.1f} s")
    print(f"end: {load()}")
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps({
        "when": time.strftime("%Y-%m-%d %H:%M:%S"), "load_at_end": load(),
        "runs": args.runs, "full_runs": args.full_runs,
        "medians": {label: {"wall": med(label, 0), "cpu": med(label, 1),
                            "texts": values[0][2], "runs": len(values)}
                    for label, values in rows.items()},
        "incremental_parts": parts, "overhead": overhead,
        "target_met": overhead <= TARGET_OVERHEAD,
    }, indent=2))
    path = RESULT
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
