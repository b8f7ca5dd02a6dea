"""Build throughput: the real pipeline (qa.build.build_index) vs a bare model.encode.

The pipeline reads, cleans and chunks the articles, embeds every passage AND every
sentence of every passage (the sentence vectors drive the highlighting), then writes
FAISS, BM25 and SQLite. The bare baseline is one `SentenceTransformer.encode` call (same
batch size, same precision, nothing else) over exactly the texts the pipeline embedded,
recorded during its run. tokens/s counts word pieces (with [CLS]/[SEP], capped at the
model's 256) of all embedded texts; passages/s counts passages only, so the pipeline's
passages/s is also shown next to a bare encode of the passage texts alone. Runs alternate
bare / pipeline / pipeline / bare so a change in the machine's load hits both alike;
medians are reported, with CPU seconds (steadier than wall time on a shared machine).

    python bench/throughput.py                        # fp32 and bf16, 8 squad-dev articles
    python bench/throughput.py --precision fp32 --articles 24 --rounds 1
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common import (  # noqa: I001
    RESULTS, SQUAD_ARTICLES, Clock, load_average, median, read_jsonl, save_result, table,
)

from qa.index.build import build_index
from qa.config import Settings
from qa.embed import SentenceTransformerEmbedder


class Recording:
    """Passes through to the embedder and keeps the texts the pipeline asks it to embed."""

    def __init__(self, embedder) -> None:
        self._embedder = embedder
        self.texts: list[str] = []

    def __getattr__(self, name):
        return getattr(self._embedder, name)

    def encode(self, texts, on_progress=None):
        self.texts.extend(texts)
        return self._embedder.encode(texts, on_progress)


def bare_encode(embedder: SentenceTransformerEmbedder, texts: list[str]) -> None:
    import torch

    torch.set_num_threads(embedder.threads)
    with torch.inference_mode(), torch.autocast(
        "cpu", dtype=torch.bfloat16, enabled=embedder.precision == "bf16"
    ):
        embedder._model.encode(texts, batch_size=embedder.batch_size, convert_to_numpy=True,
                               show_progress_bar=False)


def run(precision: str, corpus: Path, rounds: int, work: Path) -> dict:
    embedder = SentenceTransformerEmbedder(precision=precision)
    recording = Recording(embedder)
    settings = Settings(corpus_dir=corpus, index_dir=work / f"index-{precision}",
                        precision=precision)
    bare_encode(embedder, ["warm up the model"] * 8)

    pipeline, bare, bare_passages = [], [], []
    report = None
    texts: list[str] = []
    for _ in range(rounds):
        for step in ("bare", "pipeline", "pipeline", "bare"):
            if step == "pipeline":
                recording.texts = []
                with Clock() as clock:
                    report = build_index(settings, recording, full=True)
                pipeline.append(clock)
                texts = recording.texts
            elif texts:
                with Clock() as clock:
                    bare_encode(embedder, texts)
                bare.append(clock)
        with Clock() as clock:
            bare_encode(embedder, texts[:report.passages])
        bare_passages.append(clock)
    cap = embedder.max_tokens
    tokens = sum(min(n + 2, cap) for n in embedder.count_tokens(texts))
    passage_tokens = sum(min(n + 2, cap) for n in embedder.count_tokens(texts[:report.passages]))
    wall = lambda clocks: median([c.wall for c in clocks])
    cpu = lambda clocks: median([c.cpu for c in clocks])
    return {
        "precision": precision, "articles": report.articles, "passages": report.passages,
        "texts": len(texts), "tokens": tokens, "passage_tokens": passage_tokens,
        "pipeline_s": wall(pipeline), "pipeline_cpu_s": cpu(pipeline),
        "bare_s": wall(bare), "bare_cpu_s": cpu(bare),
        "bare_passages_s": wall(bare_passages), "bare_passages_cpu_s": cpu(bare_passages),
        "runs": {"pipeline": [c.wall for c in pipeline], "bare": [c.wall for c in bare]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"],
                        choices=["fp32", "bf16"])
    parser.add_argument("--articles", type=int, default=8, help="squad-dev articles (of 24)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds of bare/pipeline/pipeline/bare")
    args = parser.parse_args()
    print(load_average(), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=RESULTS) as tmp:
        work = Path(tmp)
        corpus = work / "corpus" / "articles.jsonl"
        corpus.parent.mkdir()
        rows = read_jsonl(SQUAD_ARTICLES)[: args.articles]
        corpus.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        results = [run(p, corpus, args.rounds, work) for p in args.precision]

    print()
    print(f"{results[0]['articles']} squad-dev articles: {results[0]['passages']} passages + "
          f"{results[0]['texts'] - results[0]['passages']} sentences embedded, "
          f"{results[0]['tokens']:,} tokens; {load_average()}")
    rows = []
    for r in results:
        rows.append([r["precision"], "pipeline (build_index)", r["pipeline_s"],
                     r["tokens"] / r["pipeline_s"], r["passages"] / r["pipeline_s"],
                     r["tokens"] / r["pipeline_cpu_s"], "-"])
        rows.append([r["precision"], "bare encode, same texts", r["bare_s"],
                     r["tokens"] / r["bare_s"], r["passages"] / r["bare_s"],
                     r["tokens"] / r["bare_cpu_s"],
                     f"{r['bare_s'] / r['pipeline_s']:.3f}x wall, "
                     f"{r['bare_cpu_s'] / r['pipeline_cpu_s']:.3f}x CPU"])
        rows.append([r["precision"], "bare encode, passages only", r["bare_passages_s"],
                     r["passage_tokens"] / r["bare_passages_s"],
                     r["passages"] / r["bare_passages_s"],
                     r["passage_tokens"] / r["bare_passages_cpu_s"], "-"])
    print(table(["precision", "what", "seconds", "tokens/s", "passages/s", "tokens/CPU-s",
                 "pipeline vs bare"], rows))
    by = {r["precision"]: r for r in results}
    if "fp32" in by and "bf16" in by:
        f, b = by["fp32"], by["bf16"]
        print(f"\nbf16 vs fp32, pipeline: {f['pipeline_s'] / b['pipeline_s']:.2f}x wall, "
              f"{f['pipeline_cpu_s'] / b['pipeline_cpu_s']:.2f}x CPU; bare: "
              f"{f['bare_s'] / b['bare_s']:.2f}x wall")
    save_result("throughput", {"results": results})


if __name__ == "__main__":
    main()
