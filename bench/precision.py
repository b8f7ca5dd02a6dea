"""Retrieval quality of bf16 vs fp32 embeddings: recall@1/5/10 on squad-dev.

Each precision builds its own squad-dev index (cached in bench/results/squad-PRECISION)
and embeds the questions with the same precision; hits come from Retriever.search (hybrid
unless --mode says otherwise). A hit answers a question when its passage contains one of
the answers (case and whitespace normalised) and comes from the question's article, as in
../shared/eval/README.md. The bar: bf16 recall@5 within 0.005 of fp32.

    python bench/precision.py                     # all 5,665 questions, fp32 and bf16
    python bench/precision.py --limit 1000 --mode dense
"""
from __future__ import annotations

import argparse

from common import Clock, load_average, questions, save_result, squad_index, table  # noqa: I001

from qa.config import Settings
from qa.embed.transformer import SentenceTransformerEmbedder
from qa.eval import KS, Question, first_answering_rank
from qa.retriever import Retriever


def evaluate(precision: str, rows: list[dict], mode: str) -> dict:
    embedder = SentenceTransformerEmbedder(precision=precision)
    index_dir = squad_index(precision, embedder)
    retriever = Retriever.open(Settings(index_dir=index_dir, precision=precision, mode=mode),
                               embedder)
    found = {k: 0 for k in KS}
    with Clock() as clock:
        for start in range(0, len(rows), 64):
            batch = rows[start:start + 64]
            results = retriever.search_batch([r["question"] for r in batch], max(KS))
            for row, hits in zip(batch, results):
                question = Question(row["id"], row["question"], tuple(row["answers"]),
                                    row.get("article"))
                rank = first_answering_rank(hits, question)
                for k in KS:
                    found[k] += rank is not None and rank <= k
    return {"precision": precision, "questions": len(rows), "seconds": clock.wall,
            **{f"recall@{k}": found[k] / len(rows) for k in KS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, help="only N questions (spread over the file)")
    parser.add_argument("--mode", default="hybrid", choices=["hybrid", "dense", "bm25"])
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    args = parser.parse_args()
    rows = questions(args.limit)
    results = [evaluate(p, rows, args.mode) for p in args.precision]
    print()
    print(f"squad-dev, {len(rows)} questions, mode {args.mode}; {load_average()}")
    print(table(["precision", *[f"recall@{k}" for k in KS], "search seconds"],
                [[r["precision"], *[f"{r[f'recall@{k}']:.4f}" for k in KS], r["seconds"]]
                 for r in results]))
    if len(results) == 2:
        delta = results[1]["recall@5"] - results[0]["recall@5"]
        print(f"\nrecall@5 {results[1]['precision']} - {results[0]['precision']}: {delta:+.4f} "
              f"({'within' if abs(delta) <= 0.005 else 'OUTSIDE'} the 0.005 bar)")
    save_result(f"precision-{args.mode}", {"results": results})


if __name__ == "__main__":
    main()
