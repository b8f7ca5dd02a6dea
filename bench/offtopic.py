"""Questions about other articles, asked of the seed corpus: how often Verbatim answers
when it should abstain, and how sure the reader is where the cosine gate stops it.

    python bench/offtopic.py [--squad 300] [--realtimeqa 133]

Every squad-dev and realtimeqa-dev question is about an article that is not in corpus/,
so each should abstain. With the reader on, an answer abstains when the reader's
probability is under `reader_abstain_threshold`, or when the best cosine is under
`abstain_threshold` (the gate) and the reader is less sure than
`reader_overrides_gate_from`. The table counts, per set, the questions answered, and
those under the gate by the reader's probability: what each override threshold would let
through. The seed's own questions are the answerable side.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.answer import similarity  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.eval import eval_index_dir, prepare_retriever, read_questions  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
OVERRIDES = (0.5, 0.6, 0.7, 0.8, 0.9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=int, default=300, help="squad-dev questions, spread out")
    parser.add_argument("--realtimeqa", type=int, default=133)
    args = parser.parse_args()
    settings = Settings()
    corpus = ROOT / "corpus"
    retriever = prepare_retriever(corpus, settings.replace(
        index_dir=eval_index_dir(corpus, settings)))
    if retriever.reranker is not None:
        from bench.reader import Remembering

        # search and answer read the same pairs: each is scored once.
        retriever.reranker.reader = Remembering(retriever.reranker.reader)
    sets = [
        ("squad-dev (other articles)", EVAL / "squad-dev" / "questions.jsonl", args.squad),
        ("realtimeqa-dev (other articles)", EVAL / "realtimeqa-dev" / "questions.jsonl",
         args.realtimeqa),
        ("seed_dev_unanswerable", EVAL / "seed_dev_unanswerable.jsonl", None),
        ("seed_dev (answerable)", EVAL / "seed_dev.jsonl", None),
        ("seed_dev_paraphrased (answerable)", EVAL / "seed_dev_paraphrased.jsonl", None),
    ]
    print(f"gate: cosine {settings.abstain_threshold}; reader abstains under "
          f"{settings.reader_abstain_threshold}, overrides the gate from "
          f"{settings.reader_overrides_gate_from}")
    print("| set | asked | answered | under the gate | "
          + " | ".join(f"under the gate, reader >= {t}" for t in OVERRIDES) + " |")
    print("|---" * (4 + len(OVERRIDES)) + "|")
    for name, path, limit in sets:
        questions = read_questions(path)
        if limit:
            questions = questions[:: max(1, len(questions) // limit)][:limit]
        answered = 0
        gated: list[float] = []  # the reader's best probability where the gate applies
        for q in questions:
            hits = retriever.search(q.question, 10)
            answer = retriever.answer(q.question)
            answered += not answer.abstained
            if max((similarity(h) for h in hits), default=0.0) < settings.abstain_threshold:
                gated.append(max((h.answer_probability or 0.0 for h in hits), default=0.0))
        print(f"| {name} | {len(questions)} | {answered} | {len(gated)} | "
              + " | ".join(str(sum(p >= t for p in gated)) for t in OVERRIDES) + " |",
              flush=True)


if __name__ == "__main__":
    main()
