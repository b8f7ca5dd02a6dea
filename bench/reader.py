"""How the reader should read: coverage of the answer sentence, and quality per reading plan.

    python bench/reader.py coverage [--limit N]
    python bench/reader.py plans [--limit N] [--plans 24/1/2,32/1/3] [--weights 0.4,0.7]
                                 [--sentence-weights 0.5,1] [--sure-from 0.5 --first-read 24]
                                 [--antecedents on|off|both] [--chains 1,2]
                                 [--lead 0.02/0.7,off] [--reader FOLDER]
                                 [--precision fp32|bf16|int8]

`coverage` (no reader needed): for each reading plan, the share of answerable questions
whose answer sentence (from the right article) is among the sentences the reader would
read: the ceiling of highlight@1 with that plan. `plans`: `qa eval`'s metrics on every set
for each plan and weight, with the shipped reader; each (question, sentence) pair is
scored once and remembered, so the sweep costs about one pass. Sets and indexes as in
bench/quality.py.
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
from qa.eval import (  # noqa: E402,E501
    answers_in,
    eval_index_dir,
    evaluate,
    from_article,
    prepare_retriever,
    read_questions,
)
from qa.reader.rerank import ReaderReranker, ReadingPlan  # noqa: E402
from qa.retriever import Retriever  # noqa: E402


class Remembering:
    """A Reader that scores each (question, text) pair once."""

    def __init__(self, reader) -> None:
        self.reader = reader
        self.fingerprint = reader.fingerprint
        self.memory: dict[tuple[str, str], float] = {}
        self.asked = 0  # pairs asked for, remembered or not: what a plan reads


    def score(self, question: str, texts: list[str]):
        import numpy as np

        self.asked += len(texts)
        missing = [t for t in dict.fromkeys(texts) if (question, t) not in self.memory]
        if missing:
            for text, p in zip(missing, self.reader.score(question, missing)):
                self.memory[(question, text)] = float(p)
        return np.asarray([self.memory[(question, t)] for t in texts], dtype=np.float32)


class Recorder:
    """A re-ranker that reads nothing: it keeps the first stage's hits for `coverage`."""

    def __init__(self) -> None:
        self.hits = []

    def rerank(self, question, hits):
        self.hits = list(hits)
        return self.hits


def load_sets(limit: int | None, names: list[str] | None = None, precision: str = "auto"):
    """Each set's questions (every Nth for `limit`) and a retriever without the reader, over
    an eval index of the given vector precision ("auto": this CPU's default)."""
    retrievers, out = {}, []
    for eval_set in SETS:
        if names and eval_set.name not in names:
            continue
        questions = read_questions(eval_set.questions)
        if limit:
            questions = questions[:: max(1, len(questions) // limit)]
        if eval_set.articles not in retrievers:
            settings = Settings(reranker=False, precision=precision)
            settings = settings.replace(index_dir=eval_index_dir(eval_set.articles, settings))
            retrievers[eval_set.articles] = prepare_retriever(eval_set.articles, settings)
        out.append((eval_set, questions, retrievers[eval_set.articles]))
    return out


def coverage(limit: int | None, names: list[str] | None = None) -> None:
    plans = [ReadingPlan(sentences=n, per_passage=p, deep_passages=d)
             for n in (16, 24, 32) for p, d in ((1, 0), (2, 0), (3, 0), (1, 2), (1, 3), (2, 3))]
    print("| set | " + " | ".join(f"{p.sentences}/{p.per_passage}/{p.deep_passages}"
                                  for p in plans) + " |")
    print("|---" * (len(plans) + 1) + "|")
    for eval_set, questions, plain in load_sets(limit, names):
        questions = [q for q in questions if q.answers]
        if not questions:
            continue
        recorder = Recorder()
        retriever = Retriever(plain.index, plain.embedder, plain.settings, recorder)
        found = [0] * len(plans)
        for q in questions:
            retriever.search(q.question, 100)
            holds = {(h.passage.article_id, s.start, s.end):
                     from_article(h.passage.title, h.passage.article_id, q) and answers_in(
                         h.passage.text[s.start - h.passage.start:s.end - h.passage.start], q)
                     for h in recorder.hits for s in h.sentences}
            for i, plan in enumerate(plans):
                found[i] += any(holds[key] for key in ReaderReranker(None, plan).choose(
                    recorder.hits))
        print(f"| {eval_set.name} ({len(questions)}) | "
              + " | ".join(f"{f / len(questions):.3f}" for f in found) + " |", flush=True)


def parse_plan(text: str) -> ReadingPlan:
    """"24/1/2/3": 24 sentences, 1 per passage, the first 2 passages up to 3 (the last
    number may be left out: the default)."""
    numbers = [int(x) for x in text.split("/")]
    plan = ReadingPlan(sentences=numbers[0], per_passage=numbers[1], deep_passages=numbers[2])
    return dataclasses.replace(plan, per_deep_passage=numbers[3]) if len(numbers) > 3 else plan


def plans(limit: int | None, shapes: list[ReadingPlan], weights: list[float],
          sentence_weights: list[float], names: list[str] | None = None,
          sure: list[float | None] = (None,), folder: Path | None = None,
          precision: str = "auto") -> None:
    from qa.reader.model import MODEL_DIR, Reader

    reader = Remembering(Reader(folder or MODEL_DIR))
    print("| set | plan | recall@1 | recall@5 | mrr@10 | highlight@1 | sentences marked | "
          "abstained | pairs read per question |")
    print("|---|---|---|---|---|---|---|---|---|")
    for eval_set, questions, plain in load_sets(limit, names, precision):
        answerable = any(q.answers for q in questions)
        rows = [("off", plain)]
        for shape in shapes:
            for w, sw, s in [(w, sw, s) for w in weights for sw in sentence_weights
                             for s in sure]:
                plan = dataclasses.replace(shape, weight=w, sentence_weight=sw, sure_from=s)
                label = (f"{plan.sentences}/{plan.per_passage}/{plan.deep_passages}/"
                         f"{plan.per_deep_passage}, weight {w}/{sw}"
                         + (f", sure from {s} after {plan.first_read}" if s else "")
                         + ("" if plan.antecedents else ", no antecedents")
                         + (f", chains of {plan.antecedent_chain}"
                            if plan.antecedents and plan.antecedent_chain != 1 else "")
                         + (f", lead {plan.lead_from}/{plan.lead_sure_from}"
                            if plan.lead_from is not None else ", no lead"))
                rows.append((label, Retriever(plain.index, plain.embedder,
                                              plain.settings.replace(reranker=True),
                                              ReaderReranker(reader, plan))))
        for label, retriever in rows:
            before = reader.asked
            m = evaluate(retriever, questions)
            pairs = (reader.asked - before) / max(1, len(questions))
            shown = ((m.recall_at_1, m.recall_at_5, m.mrr_at_10, m.highlight_at_1,
                      m.marked_sentences, m.abstained_answerable) if answerable
                     else (None, None, None, None, None, m.abstain_recall))
            cells = " | ".join("" if v is None else f"{v:.3f}" for v in shown)
            print(f"| {eval_set.name} | {label} | {cells} | {pairs:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("coverage", "plans"))
    parser.add_argument("--limit", type=int, help="about this many questions per set")
    parser.add_argument("--sets", help="only these sets, comma-separated (default: all)")
    parser.add_argument("--plans", default="24/1/2,32/1/3",
                        help="reading plans: sentences/per passage/deep passages, ...")
    parser.add_argument("--weights", default="0.4,0.7,1.0",
                        help="the reader's share of a passage's score")
    parser.add_argument("--sure-from", default="",
                        help="stop reading after the first sentences when one answers this "
                        "surely, e.g. 0.8,0.9 (default: read them all)")
    parser.add_argument("--first-read", type=int, default=ReadingPlan().first_read,
                        help="with --sure-from: the sentences always read (the rest only "
                        "when none of these answers surely)")
    parser.add_argument("--sentence-weights", default="1.0",
                        help="the reader's share of a sentence's score (the highlight)")
    parser.add_argument("--antecedents", default="on", choices=("on", "off", "both"),
                        help="read a sentence that opens with 'This', 'He'... after the one "
                        "before it (ReadingPlan.antecedents)")
    default = ReadingPlan()
    parser.add_argument("--chains", default=str(default.antecedent_chain),
                        help="how far back chains of leaning sentences are followed, "
                        "e.g. 1,2 (ReadingPlan.antecedent_chain; default: %(default)s)")
    parser.add_argument("--lead", default=f"{default.lead_from}/{default.lead_sure_from}",
                        help="read only the first passage when the first stage leads by A "
                        "and the reader reads an answer there with probability B: A/B,... "
                        "or off (ReadingPlan.lead_from, lead_sure_from; default: %(default)s)")
    parser.add_argument("--reader", type=Path,
                        help="a reader folder to measure instead of the shipped one (such as "
                        "a new training round's export)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "int8"),
                        help="the eval indexes' vectors (default: this CPU's, bf16 where it "
                        "has bf16 instructions, else int8); another to compare machines")
    args = parser.parse_args()
    names = args.sets.split(",") if args.sets else None
    if args.what == "coverage":
        coverage(args.limit, names)
    else:
        antecedents = {"on": (True,), "off": (False,), "both": (False, True)}[args.antecedents]
        leads = [(None, default.lead_sure_from) if x == "off"
                 else tuple(float(v) for v in x.split("/")) for x in args.lead.split(",")]
        plans(args.limit, [dataclasses.replace(parse_plan(x), first_read=args.first_read,
                                               antecedents=a, lead_from=lead,
                                               lead_sure_from=sure, antecedent_chain=chain)
                           for x in args.plans.split(",") for a in antecedents
                           for chain in (int(c) for c in args.chains.split(","))
                           for lead, sure in leads],
              [float(x) for x in args.weights.split(",")],
              [float(x) for x in args.sentence_weights.split(",")], names,
              [None] + [float(x) for x in args.sure_from.split(",") if x], args.reader,
              args.precision)


if __name__ == "__main__":
    main()
