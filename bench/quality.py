"""Retrieval quality on squad-dev: a tutorial baseline, BM25 alone, and Verbatim's modes.

    python bench/quality.py [--limit N]

Prints one table (recall@1/5/10, mrr@10, highlight@1, p50 latency). Baselines index the
articles' paragraphs as they are (what most tutorials build); Verbatim uses its own
index (built or reused in .verbatim-cache/). A hit = a passage from the question's article
that contains one of the answers, as in ../shared/eval/README.md.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.config import Settings  # noqa: E402
from qa.eval import (  # noqa: E402
    answers_in, eval_index_dir, evaluate, prepare_retriever, read_questions,
)

SQUAD = ROOT.parent / "shared" / "eval" / "squad-dev"


def ranking_metrics(ranked: list[list[tuple[str, str]]], questions) -> dict[str, float]:
    """recall@1/5/10 and mrr@10 over ranked (title, text) lists."""
    ranks = []
    for hits, q in zip(ranked, questions):
        rank = next((r for r, (title, text) in enumerate(hits[:10], 1)
                     if title == q.article and answers_in(text, q)), None)
        ranks.append(rank)
    n = len(ranks)
    return {
        "recall@1": sum(1 for r in ranks if r and r <= 1) / n,
        "recall@5": sum(1 for r in ranks if r and r <= 5) / n,
        "recall@10": sum(1 for r in ranks if r) / n,
        "mrr@10": sum(1 / r for r in ranks if r) / n,
    }


def paragraphs() -> list[tuple[str, str]]:
    out = []
    for line in (SQUAD / "articles.jsonl").open(encoding="utf-8"):
        record = json.loads(line)
        out += [(record["title"], p.strip()) for p in record["text"].split("\n\n") if p.strip()]
    return out


def baseline_dense(embedder, passages, questions):
    import faiss

    index = faiss.IndexFlatIP(embedder.dim)
    index.add(embedder.encode([text for _, text in passages]))
    started = time.perf_counter()
    vectors = embedder.encode([q.question for q in questions])
    _, ids = index.search(vectors, 10)
    per_query = (time.perf_counter() - started) * 1000 / len(questions)
    return [[passages[i] for i in row if i >= 0] for row in ids], per_query


def baseline_bm25(passages, questions):
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    model = bm25s.BM25()
    model.index(bm25s.tokenize([t for _, t in passages], stopwords="en", stemmer=stemmer,
                               show_progress=False), show_progress=False)
    started = time.perf_counter()
    tokens = bm25s.tokenize([q.question for q in questions], stopwords="en", stemmer=stemmer,
                            show_progress=False)
    ids, _ = model.retrieve(tokens, k=10, show_progress=False)
    per_query = (time.perf_counter() - started) * 1000 / len(questions)
    return [[passages[i] for i in row] for row in ids], per_query


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="only every Nth question, N chosen to keep "
                        "about this many (spread over all articles)")
    args = parser.parse_args()
    questions = read_questions(SQUAD / "questions.jsonl")
    if args.limit:
        questions = questions[:: max(1, len(questions) // args.limit)]
    articles = SQUAD / "articles.jsonl"
    retriever = prepare_retriever(articles, Settings(index_dir=eval_index_dir(articles, Settings())))
    passages = paragraphs()

    rows = []
    ranked, ms = baseline_dense(retriever.embedder, passages, questions)
    rows.append(("MiniLM + FAISS flat, paragraphs", ranking_metrics(ranked, questions), None, ms))
    ranked, ms = baseline_bm25(passages, questions)
    rows.append(("BM25 (bm25s), paragraphs", ranking_metrics(ranked, questions), None, ms))
    for mode in ("dense", "bm25", "hybrid"):
        m = evaluate(retriever, questions, mode=mode)
        metrics = {"recall@1": m.recall_at_1, "recall@5": m.recall_at_5,
                   "recall@10": m.recall_at_10, "mrr@10": m.mrr_at_10}
        label = f"Verbatim {mode}" + (" (default)" if mode == retriever.settings.mode else "")
        rows.append((label, metrics, m.highlight_at_1, m.latency_p50_ms))

    print(f"squad-dev: {len(questions)} questions, 24 articles, {len(passages)} paragraphs")
    print(f"| method | recall@1 | recall@5 | recall@10 | mrr@10 | highlight@1 | p50 ms |")
    print("|---|---|---|---|---|---|---|")
    for label, m, highlight, ms in rows:
        hl = "" if highlight is None else f"{highlight:.3f}"
        print(f"| {label} | {m['recall@1']:.3f} | {m['recall@5']:.3f} | {m['recall@10']:.3f} "
              f"| {m['mrr@10']:.3f} | {hl} | {ms:.1f} |")
    print("(baseline latency is per question in a batch, without highlights; Verbatim's is "
          "one question at a time, end to end)")


if __name__ == "__main__":
    main()
