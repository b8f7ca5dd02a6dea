"""Shared helpers for the bench/ scripts: paths, real questions, timing, tables, memory."""
from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python bench/x.py` without installing the package
    sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared"
SQUAD = SHARED / "eval" / "squad-dev"
SQUAD_ARTICLES = SQUAD / "articles.jsonl"
SQUAD_QUESTIONS = SQUAD / "questions.jsonl"
SEED_CORPUS = ROOT / "corpus"
SEED_QUESTIONS = SHARED / "eval" / "seed_dev.jsonl"
RESULTS = ROOT / "bench" / "results"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def questions(limit: int | None = None, path: Path = SQUAD_QUESTIONS,
              offset: int = 0) -> list[dict]:
    """Real questions, spread over the whole file (every n-th, from `offset`) when `limit`
    is given."""
    rows = read_jsonl(path)
    if limit is None or limit >= len(rows):
        return rows
    step = len(rows) / limit
    return [rows[(int(i * step) + offset) % len(rows)] for i in range(limit)]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation, like numpy's default."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Clock:
    """Wall and CPU seconds of a block: CPU time is steadier when the machine is shared."""

    def __enter__(self) -> "Clock":
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def peak_rss_mb() -> float:
    """Peak resident set of this process (ru_maxrss, KiB on Linux), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_breakdown_mb() -> dict[str, float]:
    """Current RSS split into anonymous (heap) and file-backed (mmapped files) parts."""
    out = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return out


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 2**20


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (pastes into the README as is)."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            if value != value:  # nan
                return "-"
            return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
        return str(value)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = lambda values: "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths)) + " |"
    return "\n".join(
        [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        + [line(r) for r in cells]
    )


def save_result(name: str, payload: dict) -> Path:
    """Write the numbers of one bench run to bench/results/NAME.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "load": load_average(), **payload}
    path.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    return path


def squad_index(precision: str = "fp32", embedder=None) -> Path:
    """The squad-dev articles built with the real model (cached in bench/results/).

    Returns the index folder (holding CURRENT). Built once per precision: ~2-4 minutes.
    """
    from qa.config import Settings
    from qa.errors import QAError
    from qa.index import layout
    from qa.build import build_index
    from qa.index.manifest import read_manifest

    index_dir = RESULTS / f"squad-{precision}" / "index"
    name = layout.read_current(index_dir, required=False)
    try:
        stale = name is None or read_manifest(index_dir / name).chunker != current_chunker_info()
    except QAError:  # written by an older format: build it again
        stale = True
    if stale:
        from qa.embed.transformer import SentenceTransformerEmbedder

        embedder = embedder or SentenceTransformerEmbedder(precision=precision)
        print(f"building the squad-dev index ({precision}) in {index_dir} ...", flush=True)
        settings = Settings(corpus_dir=SQUAD_ARTICLES, index_dir=index_dir, precision=precision)
        print(build_index(settings, embedder, full=True).summary(), flush=True)
    return index_dir


def current_generation(index_dir: Path) -> Path:
    from qa.index import layout

    return index_dir / layout.read_current(index_dir)


def current_chunker_info():
    """The chunker a manifest must have to load with today's code and defaults."""
    from qa.config import chunk_settings_for
    from qa.config import Settings
    from qa.index.generation import chunker_info

    return chunker_info(chunk_settings_for(Settings(), 256))  # all-MiniLM-L6-v2 reads 256


def current_chunker() -> dict:
    """`current_chunker_info()` as the manifest's JSON section."""
    import dataclasses

    return dataclasses.asdict(current_chunker_info())
