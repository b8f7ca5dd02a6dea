"""A cheaper build against the default (two passes, auto precision), reader on, every set.

    python bench/build_variants.py [--variants late int8 pooled] [--squad-every 9]
                                   [--no-default]

`late`: sentence vectors pooled from the passage's forward pass (`sentence_vectors="late"`);
`int8`: every vector from the int8 ONNX graph that embeds the questions (`precision="int8"`),
passages encoded; `pooled`: passage vectors averaged from the sentence vectors
(`passage_vectors="pooled"`, precision "auto"); `pooled-fp32`: the same in fp32 (what
bf16, the default on CPUs with bf16 instructions, stands closest to).
Builds each set's index again per variant (under bench/results/<variant>-*, reused on later
runs) and asks every question of every set through `Retriever.answer` on each (squad-dev
every 9th question, as bench/reader.py --limit 600).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS  # noqa: E402
from bench.quality import SETS  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.eval import eval_index_dir, evaluate, prepare_retriever, read_questions  # noqa: E402

VARIANTS = {"late": {"sentence_vectors": "late"},
            "int8": {"precision": "int8", "passage_vectors": "encoded"},
            "pooled": {"passage_vectors": "pooled"},
            "pooled-fp32": {"precision": "fp32", "passage_vectors": "pooled"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["late"])
    parser.add_argument("--squad-every", type=int, default=9)
    parser.add_argument("--no-default", action="store_true",
                        help="skip the eval indexes `qa eval` builds (the baseline row)")
    args = parser.parse_args()
    print("| set | build | recall@1 | recall@5 | mrr@10 | highlight@1 | sentences marked | "
          "abstained |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in ([] if args.no_default else ["default"]) + args.variants:
        retrievers = {}
        for eval_set in SETS:
            if eval_set.articles not in retrievers:
                settings = (Settings(index_dir=RESULTS / f"{kind}-{eval_set.index}",
                                     **VARIANTS[kind]) if kind != "default"
                            else Settings(index_dir=eval_index_dir(eval_set.articles,
                                                                   Settings())))
                retrievers[eval_set.articles] = prepare_retriever(eval_set.articles, settings)
            questions = read_questions(eval_set.questions)
            if eval_set.name == "squad-dev":
                questions = questions[::args.squad_every]
            m = evaluate(retrievers[eval_set.articles], questions)
            if m.answerable:
                print(f"| {eval_set.name} ({m.answerable}) | {kind} | {m.recall_at_1:.3f} | "
                      f"{m.recall_at_5:.3f} | {m.mrr_at_10:.3f} | {m.highlight_at_1:.3f} | "
                      f"{m.marked_sentences:.3f} | {m.abstained_answerable:.3f} |", flush=True)
            else:
                print(f"| {eval_set.name} ({m.unanswerable}) | {kind} | | | | | | "
                      f"{m.abstain_recall:.3f} |", flush=True)


if __name__ == "__main__":
    main()
