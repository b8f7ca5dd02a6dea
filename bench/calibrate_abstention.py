"""Calibrate the two confidence thresholds on data (prints a table; not a test).

Answerable: squad-dev questions whose article is in the index, the seed dev set and the
seed's paraphrased questions. Unanswerable: squad-dev questions about the articles left
OUT of the index (so they are on-topic-looking but unanswerable), and the seed's
off-topic questions. Below `abstain_threshold` an answer abstains (pick it under every
paraphrased answerable question and over every off-topic one); below
`confident_threshold` it is "may answer" (the squad columns show what that costs).

    python bench/calibrate_abstention.py [--rerank on|off]

With the reader on (the default), relevance is its probability that the best quote
answers, and the reader's thresholds (reader_abstain_threshold, ...) are the ones to pick.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.answer import relevance, similarity  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.eval import eval_index_dir, prepare_retriever, read_questions  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"


def best_relevance(retriever, questions) -> np.ndarray:
    """Per question: (best relevance, best cosine) of its hits; the two are the same
    without the reader, with it the first is its probability."""
    out = []
    for q in questions:
        hits = retriever.search(q.question, 10)
        out.append((max((relevance(h) for h in hits), default=0.0),
                    max((similarity(h) for h in hits), default=0.0)))
    return np.asarray(out).reshape(-1, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rerank", choices=("on", "off"), default="on")
    reranker = parser.parse_args().rerank == "on"
    records = [json.loads(line) for line in (EVAL / "squad-dev" / "articles.jsonl").open()]
    inside = records[::2]  # every other article is indexed
    inside_titles = {r["title"] for r in inside}
    half = Path(tempfile.mkdtemp()) / "half.jsonl"
    half.write_text("".join(json.dumps(r) + "\n" for r in inside))
    squad = read_questions(EVAL / "squad-dev" / "questions.jsonl")
    step = max(1, len(squad) // 2000)  # a spread-out sample keeps this to minutes
    squad = squad[::step]
    answerable = [q for q in squad if q.article in inside_titles]
    unanswerable = [q for q in squad if q.article not in inside_titles]

    settings = Settings(index_dir=eval_index_dir(half, Settings()).with_name("half-squad"),
                        reranker=reranker)
    retriever = prepare_retriever(half, settings)
    seed_settings = Settings(index_dir=eval_index_dir(ROOT / "corpus", Settings()),
                             reranker=reranker)
    seed = prepare_retriever(ROOT / "corpus", seed_settings)

    pos = best_relevance(retriever, answerable)
    neg = best_relevance(retriever, unanswerable)
    seed_pos = best_relevance(seed, read_questions(EVAL / "seed_dev.jsonl"))
    seed_neg = best_relevance(seed, read_questions(EVAL / "seed_dev_unanswerable.jsonl"))
    para = best_relevance(seed, read_questions(EVAL / "seed_dev_paraphrased.jsonl"))
    print(f"squad-dev half index: {len(answerable)} answerable, {len(unanswerable)} about "
          f"articles not indexed; seed: {len(seed_pos)} answerable, {len(seed_neg)} off-topic")
    print(f"seed answerable relevance: min {seed_pos[:, 0].min():.3f}; paraphrased: min "
          f"{para[:, 0].min():.3f}, sorted {np.round(np.sort(para[:, 0]), 3).tolist()}; "
          f"seed off-topic: max {seed_neg[:, 0].max():.3f}")
    defaults = Settings()
    gate = defaults.abstain_threshold
    if reranker:
        print(f"defaults: reader_abstain_threshold {defaults.reader_abstain_threshold}, "
              f"reader_confident_threshold {defaults.reader_confident_threshold}; "
              f"'gated' also abstains when the best cosine is under abstain_threshold ({gate})")
        grid = [0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
                0.6, 0.7]
        rules = {"reader": lambda v, t: v[:, 0] < t,
                 "gated": lambda v, t: (v[:, 0] < t) | (v[:, 1] < gate)}
    else:
        print(f"defaults: abstain_threshold {defaults.abstain_threshold}, "
              f"confident_threshold {defaults.confident_threshold}")
        grid = np.arange(0.20, 0.62, 0.02)
        rules = {"cosine": lambda v, t: v[:, 0] < t}
    print(f"{'rule':>6} {'threshold':>9} {'abstain_recall':>14} {'abstain_precision':>17} "
          f"{'answerable_abstained':>20} {'seed_ok':>7} {'paraphrased_abstain':>19}", flush=True)
    for name, abstains in rules.items():
        for threshold in grid:
            abstain_pos = abstains(pos, threshold).sum()
            abstain_neg = abstains(neg, threshold).sum()
            total = abstain_pos + abstain_neg
            seed_ok = (not abstains(seed_pos, threshold).any()
                       and abstains(seed_neg, threshold).all())
            print(f"{name:>6} {threshold:9.3f} {abstain_neg / len(neg):14.3f} "
                  f"{(abstain_neg / total if total else float('nan')):17.3f} "
                  f"{abstain_pos / len(pos):20.3f} {'yes' if seed_ok else 'no':>7} "
                  f"{int(abstains(para, threshold).sum()):>19}")

if __name__ == "__main__":
    main()
