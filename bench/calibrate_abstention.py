"""Calibrate the two confidence thresholds on data (prints a table; not a test).

Answerable: squad-dev questions whose article is in the index, the seed dev set and the
seed's paraphrased questions. Unanswerable: squad-dev questions about the articles left
OUT of the index (so they are on-topic-looking but unanswerable), and the seed's
off-topic questions. Below `abstain_threshold` an answer abstains (pick it under every
paraphrased answerable question and over every off-topic one); below
`confident_threshold` it is "may answer" (the squad columns show what that costs).

    python bench/calibrate_abstention.py
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.answer import relevance  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.eval import eval_index_dir, prepare_retriever, read_questions  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"


def best_relevance(retriever, questions) -> np.ndarray:
    out = []
    for q in questions:
        hits = retriever.search(q.question, 10)
        out.append(max((relevance(h) for h in hits), default=0.0))
    return np.asarray(out)


def main() -> None:
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

    settings = Settings(index_dir=eval_index_dir(half, Settings()).with_name("half-squad"))
    retriever = prepare_retriever(half, settings)
    seed_settings = Settings(index_dir=eval_index_dir(ROOT / "corpus", Settings()))
    seed = prepare_retriever(ROOT / "corpus", seed_settings)

    pos = best_relevance(retriever, answerable)
    neg = best_relevance(retriever, unanswerable)
    seed_pos = best_relevance(seed, read_questions(EVAL / "seed_dev.jsonl"))
    seed_neg = best_relevance(seed, read_questions(EVAL / "seed_dev_unanswerable.jsonl"))
    para = best_relevance(seed, read_questions(EVAL / "seed_dev_paraphrased.jsonl"))
    print(f"squad-dev half index: {len(answerable)} answerable, {len(unanswerable)} about "
          f"articles not indexed; seed: {len(seed_pos)} answerable, {len(seed_neg)} off-topic")
    print(f"seed answerable relevance: min {seed_pos.min():.3f}; paraphrased: min "
          f"{para.min():.3f}, sorted {np.round(np.sort(para), 2).tolist()}; "
          f"seed off-topic: max {seed_neg.max():.3f}")
    print(f"defaults: abstain_threshold {Settings().abstain_threshold}, "
          f"confident_threshold {Settings().confident_threshold}")
    print(f"{'threshold':>9} {'abstain_recall':>14} {'abstain_precision':>17} "
          f"{'answerable_abstained':>20} {'seed_ok':>7} {'paraphrased_below':>17}")
    for threshold in np.arange(0.20, 0.62, 0.02):
        abstain_pos = (pos < threshold).sum()
        abstain_neg = (neg < threshold).sum()
        total = abstain_pos + abstain_neg
        seed_ok = (seed_pos >= threshold).all() and (seed_neg < threshold).all()
        print(f"{threshold:9.2f} {abstain_neg / len(neg):14.3f} "
              f"{(abstain_neg / total if total else float('nan')):17.3f} "
              f"{abstain_pos / len(pos):20.3f} {'yes' if seed_ok else 'no':>7} "
              f"{int((para < threshold).sum()):>17}")


if __name__ == "__main__":
    main()
