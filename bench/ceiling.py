"""How far can re-weighting the signals Verbatim has go? A learned ranker, cross-validated.

    python bench/ceiling.py [--sets squad-dev,...] [--limit N] [--index-root DIR]

For every question of every set, the default's 100 best candidates (Retriever.search, the
dense + BM25 pool the default fuses) and per candidate the signals it has: passage cosine,
BM25 (raw and over the question's best), the fused score and its gap to the best, the best
and the mean sentence cosine, the best sentence score (cosine + term coverage + answer-type
cue), the candidate's rank and how many candidates its article has. A gradient-boosted
classifier (scikit-learn) learns "this passage holds an answer" from four fifths of every
set's questions together and ranks the candidates of the fifth it did not see; five folds
cover every question once; a second one is fitted to each set of 100 or more questions
alone (the most re-weighting could win on that set). The table compares them with the
default's order of the same candidates (passage ranks, before quotes are merged, so a
little under `qa eval`'s).

If the learned ranker cannot beat the default by much, the gap to a quality bar is not in
the weights but in the signals: it needs a model that reads the question and the passage
together.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402,F401  (offline Hugging Face, the project on sys.path)
from quality import SETS  # noqa: E402

from qa.config import Settings  # noqa: E402
from qa.eval import (  # noqa: E402
    Question, answers, eval_index_dir, prepare_retriever, read_questions,
)
from qa.types import Hit  # noqa: E402

POOL = 100  # candidates per question: the retriever's max_k
FOLDS = 5

FEATURES = ("dense", "bm25", "bm25 / best", "fused", "fused - best", "best sentence cosine",
            "mean sentence cosine", "best sentence score", "rank", "article's candidates")


def features(hits: list[Hit]) -> np.ndarray:
    """One row of FEATURES per hit, best first as the default ranks them."""
    fused = np.asarray([h.score for h in hits], dtype=np.float64)
    lexical = np.asarray([h.lexical_score or 0.0 for h in hits])
    best_lexical = max(lexical.max(), 1e-9)
    per_article = Counter(h.passage.article_id for h in hits)
    rows = []
    for rank, h in enumerate(hits):
        similarity = [s.similarity for s in h.sentences] or [0.0]
        rows.append([
            h.dense_score or 0.0, lexical[rank], lexical[rank] / best_lexical,
            fused[rank], fused[rank] - fused[0], max(similarity), float(np.mean(similarity)),
            max((s.score for s in h.sentences), default=0.0), np.log1p(rank),
            per_article[h.passage.article_id],
        ])
    return np.asarray(rows, dtype=np.float64)


def answering(hits: list[Hit], question: Question) -> np.ndarray:
    return np.asarray([answers(h, question) for h in hits])


def ranking(labels_in_order: list[np.ndarray]) -> dict[str, float]:
    """recall@1/5, mrr@10 and recall within the pool, for lists ranked best first."""
    firsts = [int(np.argmax(ok)) + 1 if ok.any() else None for ok in labels_in_order]
    n = len(firsts) or 1
    return {
        "recall@1": sum(f == 1 for f in firsts) / n,
        "recall@5": sum(f is not None and f <= 5 for f in firsts) / n,
        "mrr@10": sum(1 / f for f in firsts if f is not None and f <= 10) / n,
        f"in the {POOL}": sum(f is not None for f in firsts) / n,
    }


def cross_validated(data, fold_of, classifier) -> dict[str, list[np.ndarray]]:
    """Per set, each question's labels in the order a classifier trained on the other
    folds of every set in `data` ranks its candidates."""
    learned: dict[str, list] = {name: [None] * len(rows) for name, rows in data.items()}
    for fold in range(FOLDS):
        train = [row for name, rows in data.items() for row, f in zip(rows, fold_of[name])
                 if f != fold]
        model = classifier(max_iter=200, learning_rate=0.05, random_state=0)
        model.fit(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]))
        for name, rows in data.items():
            for i, (x, y) in enumerate(rows):
                if fold_of[name][i] == fold:
                    order = np.argsort(-model.predict_proba(x)[:, 1], kind="stable")
                    learned[name][i] = y[order]
    return learned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    answerable = [s for s in SETS if s.name != "seed_dev_unanswerable"]
    parser.add_argument("--sets", default=",".join(s.name for s in answerable),
                        help="comma-separated set names (default: every answerable set)")
    parser.add_argument("--limit", type=int, help="at most about this many questions per set")
    parser.add_argument("--index-root", type=Path, help="each set's index in DIR/squad, "
                        "DIR/seed, DIR/rtqa (default: .verbatim-cache/eval/)")
    args = parser.parse_args()
    from sklearn.ensemble import HistGradientBoostingClassifier

    data: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for eval_set in (s for s in answerable if s.name in args.sets.split(",")):
        questions = [q for q in read_questions(eval_set.questions) if q.answers]
        if args.limit:
            questions = questions[:: max(1, len(questions) // args.limit)]
        index_dir = (args.index_root / eval_set.index if args.index_root
                     else eval_index_dir(eval_set.articles, Settings()))
        retriever = prepare_retriever(eval_set.articles, Settings(index_dir=index_dir))
        data[eval_set.name] = [
            (features(hits), answering(hits, q))
            for q in questions if (hits := retriever.search(q.question, POOL))
        ]
        print(f"{eval_set.name}: {len(data[eval_set.name])} questions gathered", flush=True)

    rng = np.random.default_rng(0)
    fold_of = {name: rng.integers(0, FOLDS, len(rows)) for name, rows in data.items()}
    together = cross_validated(data, fold_of, HistGradientBoostingClassifier)
    # Fitted to each large set alone: the most re-weighting could win on that set.
    alone = {name: cross_validated({name: rows}, fold_of, HistGradientBoostingClassifier)[name]
             for name, rows in data.items() if len(rows) >= 100}

    print(f"\n| set | ranker | recall@1 | recall@5 | mrr@10 | in the {POOL} |")
    print("|---|---|---|---|---|---|")
    for name, rows in data.items():
        rankers = [("default", [y for _, y in rows]),
                   ("learned on all sets (5-fold)", together[name])]
        if name in alone:
            rankers.append(("learned on this set alone (5-fold)", alone[name]))
        for label, ordered in rankers:
            m = ranking(ordered)
            print(f"| {name} ({len(rows)}) | {label} | " + " | ".join(
                f"{v:.3f}" for v in m.values()) + " |")
    print(f"\nfeatures: {', '.join(FEATURES)}")


if __name__ == "__main__":
    main()
