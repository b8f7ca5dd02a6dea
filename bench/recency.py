"""The recency prior, swept: realtimeqa-dev asked as of each question's day, reader on.

    python bench/recency.py [--weights 0.05,0.1,0.2,0.5,1] [--half-lives 3,7,30]

Each question is asked through `Retriever.answer(..., as_of=<its quiz day>)` (what `qa
eval --as-of-ids` does), once with the prior off and once per weight and half-life
(Settings.recency_weight, recency_half_life_days). squad-dev's articles have no dates and
the seed corpus is one article, so the prior cannot move them.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.quality import SETS  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.eval import eval_index_dir, evaluate, prepare_retriever, read_questions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="0.05,0.1,0.2,0.5,1")
    parser.add_argument("--half-lives", default="3,7,30")
    args = parser.parse_args()
    (rtqa,) = [s for s in SETS if s.name == "realtimeqa-dev"]
    retriever = prepare_retriever(
        rtqa.articles, Settings(index_dir=eval_index_dir(rtqa.articles, Settings())))
    questions = read_questions(rtqa.questions)
    base = retriever.settings
    grid = [(0.0, 30.0)] + [(float(w), float(h)) for w in args.weights.split(",")
                            for h in args.half_lives.split(",")]
    print("| weight | half-life (days) | recall@1 | recall@5 | mrr@10 | highlight@1 |")
    print("|---|---|---|---|---|---|")
    for weight, half_life in grid:
        retriever.settings = dataclasses.replace(base, recency_weight=weight,
                                                 recency_half_life_days=half_life)
        m = evaluate(retriever, questions, as_of_ids=True)
        print(f"| {weight:g} | {half_life:g} | {m.recall_at_1:.3f} | {m.recall_at_5:.3f} | "
              f"{m.mrr_at_10:.3f} | {m.highlight_at_1:.3f} |", flush=True)


if __name__ == "__main__":
    main()
