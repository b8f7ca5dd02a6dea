"""Answer quality on every eval set: plain baselines and Verbatim's modes, one table per set.

    python bench/quality.py [--sets squad-dev,seed_dev,...] [--limit N] [--index-root DIR]

Sets (../shared/eval/README.md): squad-dev, seed_dev, seed_dev_paraphrased,
seed_dev_unanswerable, realtimeqa-dev. Verbatim's rows are `qa eval`'s numbers
(Retriever.answer, the path users get) in each mode; "hybrid (default)" is the default
settings. Baselines index each article's paragraphs as they are (what most tutorials
build): MiniLM + FAISS flat, and BM25 (bm25s); they rank, they do not highlight or
abstain. A hit = a passage (from the question's article, where the set names one) that
contains one of the answers.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.config import MODES, Settings  # noqa: E402
from qa.eval import (  # noqa: E402
    Question, answers_in, eval_index_dir, evaluate, from_article, prepare_retriever,
    read_questions,
)

EVAL = ROOT.parent / "shared" / "eval"


@dataclass(frozen=True, slots=True)
class EvalSet:
    name: str
    articles: Path
    questions: Path
    # The index's folder name under --index-root (sets over one corpus share it).
    index: str
    baselines: bool


SETS = (
    EvalSet("squad-dev", EVAL / "squad-dev" / "articles.jsonl",
            EVAL / "squad-dev" / "questions.jsonl", "squad", True),
    EvalSet("seed_dev", ROOT / "corpus", EVAL / "seed_dev.jsonl", "seed", False),
    EvalSet("seed_dev_paraphrased", ROOT / "corpus", EVAL / "seed_dev_paraphrased.jsonl",
            "seed", False),
    EvalSet("seed_dev_unanswerable", ROOT / "corpus", EVAL / "seed_dev_unanswerable.jsonl",
            "seed", False),
    EvalSet("realtimeqa-dev", EVAL / "realtimeqa-dev" / "articles.jsonl",
            EVAL / "realtimeqa-dev" / "questions.jsonl", "rtqa", True),
)


def ranking_metrics(ranked: list[list[tuple[str, str]]], questions) -> dict[str, float]:
    """recall@1/5/10 and mrr@10 over ranked (title, text) lists."""
    ranks = []
    for hits, q in zip(ranked, questions):
        rank = next((r for r, (title, text) in enumerate(hits[:10], 1)
                     if from_article(title, title, q) and answers_in(text, q)), None)
        ranks.append(rank)
    n = len(ranks)
    return {
        "recall@1": sum(1 for r in ranks if r and r <= 1) / n,
        "recall@5": sum(1 for r in ranks if r and r <= 5) / n,
        "recall@10": sum(1 for r in ranks if r) / n,
        "mrr@10": sum(1 / r for r in ranks if r) / n,
    }


def paragraphs(articles: Path) -> list[tuple[str, str]]:
    out = []
    for line in articles.open(encoding="utf-8"):
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


def cell(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def table(eval_set: EvalSet, questions: list[Question], retriever) -> list[str]:
    """The markdown table of one set: baselines (where they apply), then every mode."""
    answerable = any(q.answers for q in questions)
    rows = []
    if eval_set.baselines and answerable:
        passages = paragraphs(eval_set.articles)
        embedder = retriever.embedder
        for label, (ranked, ms) in (
            ("MiniLM + FAISS flat, paragraphs", baseline_dense(embedder, passages, questions)),
            ("BM25 (bm25s), paragraphs", baseline_bm25(passages, questions)),
        ):
            m = ranking_metrics(ranked, questions)
            rows.append((label, m["recall@1"], m["recall@5"], m["recall@10"], m["mrr@10"],
                         None, None, None, ms))
    default = retriever.settings.mode
    for mode in sorted(MODES, key=lambda m: m == default):  # the default last
        m = evaluate(retriever, questions, mode=mode)
        label = f"Verbatim {mode}" + (" (default)" if mode == default else "")
        if answerable:
            rows.append((label, m.recall_at_1, m.recall_at_5, m.recall_at_10, m.mrr_at_10,
                         m.highlight_at_1, m.abstained_answerable, m.low_confidence_answerable,
                         m.latency_p50_ms))
        else:
            rows.append((label, None, None, None, None, None, m.abstain_recall,
                         m.low_confidence_unanswerable, m.latency_p50_ms))
    out = [f"{eval_set.name}: {len(questions)} questions "
           f"({'answerable' if answerable else 'unanswerable: abstaining is right'})",
           "| method | recall@1 | recall@5 | recall@10 | mrr@10 | highlight@1 | abstained "
           "| may answer | p50 ms |",
           "|---|---|---|---|---|---|---|---|---|"]
    for label, *values, ms in rows:
        out.append(f"| {label} | " + " | ".join(cell(v) for v in values) + f" | {ms:.1f} |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(s.name for s in SETS),
                        help="comma-separated set names (default: all)")
    parser.add_argument("--limit", type=int, help="at most about this many questions per "
                        "set: every Nth, spread over all articles")
    parser.add_argument("--index-root", type=Path, help="keep each set's index in "
                        "DIR/squad, DIR/seed, DIR/rtqa (default: .verbatim-cache/eval/)")
    args = parser.parse_args()
    wanted = args.sets.split(",")
    unknown = set(wanted) - {s.name for s in SETS}
    if unknown:
        parser.error(f"unknown sets {sorted(unknown)}; choose from {[s.name for s in SETS]}")
    retrievers: dict[Path, object] = {}
    for eval_set in (s for s in SETS if s.name in wanted):
        questions = read_questions(eval_set.questions)
        if args.limit:
            questions = questions[:: max(1, len(questions) // args.limit)]
        if eval_set.articles not in retrievers:
            index_dir = (args.index_root / eval_set.index if args.index_root
                         else eval_index_dir(eval_set.articles, Settings()))
            retrievers[eval_set.articles] = prepare_retriever(
                eval_set.articles, Settings(index_dir=index_dir))
        print("\n".join(table(eval_set, questions, retrievers[eval_set.articles])) + "\n",
              flush=True)
    print("(abstained: share of the questions that abstained; may answer: share quoted with "
          "low confidence. Baseline latency is per question in a batch, without highlights; "
          "Verbatim's is one question at a time, end to end)")


if __name__ == "__main__":
    main()
