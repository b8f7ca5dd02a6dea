"""Further training rounds: pairs chosen by the reader that is being improved.

The first round's negatives were what the bi-encoder and shared words find: the retriever's
view. What the reader still gets wrong are the sentences *it* likes that hold no answer,
so a further round reads each training question's candidate sentences with the shipped
reader and keeps as negatives those it scores highest without the answer, and as positives
the answer-holding sentences it scores highest (the answer's words also occur in sentences
that do not answer it). Training then continues from the shipped weights (recovered from
the int8 graph, `qa.reader.export.recover_reader`) at a lower learning rate, with SQuAD
questions mixed in so that what the first round learned there is kept. The third round
reads a sentence that leans back with the ones before it, as the reader does at query time.

    python -m qa.reader.mine --round 2    # mine, fit from the shipped weights, export
    python -m qa.reader.mine --round 3 --target DIR  # the next round, exported to DIR
    python -m qa.reader.mine --mine-only  # only the pairs: <work>/round3/pairs.jsonl.gz
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.reader.followups import Followup, paragraph_followups
from qa.reader.train import (
    _SPACE,
    DEFAULT_TRAIN_DATA,
    DEFAULT_WORK,
    Pool,
    Recipe,
    _sentence_covers,
    article_sentences,
    contains_answer,
    fit,
    inverse_frequencies,
    read_jsonl_gz,
)


@dataclass(frozen=True, slots=True)
class Mining:
    """What a further round's pairs are (written into the model card)."""

    seed: int = 17
    # SQuAD questions (of 87,599) mixed in so the round keeps what the first one learned.
    squad_questions: int = 8_000
    # Sentences per question the reader reads: those sharing the most question words.
    squad_candidates: int = 10
    squad_negatives: int = 3
    news_candidates: int = 40
    news_positives: int = 2
    # Each news question is used this many times, each with the next reader-mined negatives.
    news_repeats: int = 2
    news_negatives: int = 4
    # A sentence without the answer's words that the reader is this sure of may answer in
    # other words ("the president"): not taken as a negative.
    too_sure: float = 0.95
    # Sentences that lean back are read with up to this many before them, as the reader
    # reads them at query time (0: alone, as in the second round).
    antecedent_chain: int = 0
    # SQuAD questions re-asked as follow-ups of another question of their paragraph
    # (qa.reader.followups), half of them leaning on its answer; read after it, as
    # qa.followup reads a follow-up. The earlier question's answer sentence is one of
    # their negatives.
    followup_questions: int = 0
    # Only SQuAD questions whose answer sentence has at most this share of their words
    # (`word_overlap`): 1/3 keeps SQuAD's own paraphrases, the way readers ask, about a
    # quarter of them.
    squad_most_overlap: float = 1.0


def _by_shared_words(pool: Pool, rows: np.ndarray, question_words: frozenset[str],
                     idf: dict[str, float], n: int) -> np.ndarray:
    shared = np.array([sum(idf.get(w, 0.0) for w in question_words & pool.words[r])
                       for r in rows])
    return rows[np.argsort(-shared, kind="stable")[:n]]


class _Scorer:
    """The shipped reader over pool rows, with a progress bar."""

    def __init__(self, pool: Pool, total: int, label: str, chain: int) -> None:
        from tqdm import tqdm

        from qa.reader.model import Reader

        self.reader = Reader()
        self.pool = pool
        self.chain = chain
        self.bar = tqdm(total=total, desc=f"read {label}", unit="question", mininterval=5)

    def __call__(self, question: str, rows: np.ndarray) -> np.ndarray:
        texts = [self.pool.pair(question, int(r), 0.0, self.chain)["text"] for r in rows]
        self.bar.update(1)
        return self.reader.score(question, texts)


@dataclass(frozen=True, slots=True)
class _TrainingSet:
    pool: Pool
    number_of: dict[str, int]  # article id -> its number in the pool
    idf: dict[str, float]
    questions: list[dict]
    words: list[frozenset[str]]  # each question's stemmed words


def _training_set(data: Path, name: str, pick=None) -> _TrainingSet:
    """A training set's sentences (no vectors: the reader reads) and the questions `pick`
    keeps."""
    from qa.index.lexical import tokenize

    articles = list(read_jsonl_gz(data / name / "articles.jsonl.gz"))
    pool = Pool.build(articles, None, name)
    questions = list(read_jsonl_gz(data / name / "questions.jsonl.gz"))
    questions = pick(questions) if pick else questions
    return _TrainingSet(pool, {a["id"]: i for i, a in enumerate(articles)},
                        inverse_frequencies(pool), questions,
                        [frozenset(w) for w in tokenize([q["question"] for q in questions])])


def _hardest(candidates: np.ndarray, probabilities: np.ndarray, mining: Mining) -> list[int]:
    """Answer-free candidates, the likeliest by the reader first, but none it is too sure
    of: those may answer in other words."""
    return [int(candidates[i]) for i in np.argsort(-probabilities)
            if probabilities[i] < mining.too_sure]


def _answer_sentence(question: dict) -> str | None:
    """The sentence of its paragraph a SQuAD question's answer was marked in."""
    context = _SPACE.sub(" ", question["context"]).strip()
    answer = question["answers"][0]
    before = _SPACE.sub(" ", question["context"][:question["answer_start"]]).lstrip()
    return next((s for s in article_sentences(context)
                 if answer in s and _sentence_covers(context, s, len(before))), None)


def _answer_row(pool: Pool, rows: np.ndarray, question: dict) -> int | None:
    """The pool row of the sentence a SQuAD question's answer was marked in."""
    holder = _answer_sentence(question)
    return next((int(r) for r in rows if pool.sentences[r].text == holder), None)


def word_overlap(questions: Sequence[dict]) -> np.ndarray:
    """For each SQuAD question, the share of its words (stems, no stop words) that its
    answer sentence also has: 1 for a question made of the sentence's words."""
    from qa.index.lexical import tokenize

    asked = tokenize([q["question"] for q in questions])
    found = tokenize([_answer_sentence(q) or q["context"] for q in questions])
    return np.array([len(set(a) & set(f)) / len(set(a)) if a else 1.0
                     for a, f in zip(asked, found)])


def squad_pairs(data: Path, mining: Mining, rng: random.Random) -> list[dict]:
    def sample(questions: list[dict]) -> list[dict]:
        rng.shuffle(questions)
        if mining.squad_most_overlap < 1.0:
            shared = word_overlap(questions)
            questions = [q for q, w in zip(questions, shared) if w <= mining.squad_most_overlap]
        return questions[:mining.squad_questions]

    train = _training_set(data, "squad-train", sample)
    pool, number_of, idf, questions, words = (train.pool, train.number_of, train.idf,
                                              train.questions, train.words)
    chain = mining.antecedent_chain
    score = _Scorer(pool, len(questions), "squad-train", chain)
    pairs = []
    for q, q_words in zip(questions, words):
        rows = pool.by_article[number_of[q["article"]]]
        positive = _answer_row(pool, rows, q)
        if positive is None:
            continue
        candidates = np.array([r for r in _by_shared_words(
            pool, rows, q_words, idf, mining.squad_candidates + 1) if r != positive])
        candidates = np.array([r for r in candidates if not contains_answer(
            pool.reading(r, chain), q["answers"])], dtype=np.int64)
        pairs.append(pool.pair(q["question"], positive, 1.0, chain))
        if not len(candidates):
            continue
        probabilities = score(q["question"], candidates)
        hardest = _hardest(candidates, probabilities, mining)[:mining.squad_negatives]
        others = [int(r) for r in rows if int(r) not in hardest and int(r) != positive
                  and not contains_answer(pool.reading(r, chain), q["answers"])]
        hardest += rng.sample(others, min(1, len(others)))
        pairs += [pool.pair(q["question"], r, 0.0, chain) for r in hardest]
    score.bar.close()
    print(f"squad-train: {len(questions):,} questions, {len(pairs):,} pairs")
    return pairs


def followup_pairs(data: Path, mining: Mining, rng: random.Random) -> list[dict]:
    """Pairs for SQuAD questions re-asked as follow-ups: the follow-up is read after the
    question it leans on, its negatives are the sentence answering that question and the
    answer-free ones the reader likes best for the pair."""
    from qa.index.lexical import tokenize

    chosen: list[tuple[dict, dict, Followup]] = []

    def pick(questions: list[dict]) -> list[dict]:
        by_paragraph: dict[str, list[dict]] = {}
        for q in questions:
            by_paragraph.setdefault(q["context"], []).append(q)
        found = [f for group in by_paragraph.values() for f in paragraph_followups(group, rng)]
        rng.shuffle(found)
        half = mining.followup_questions // 2
        by_answer = [f for f in found if f[2].leans_on == "answer"][:half]
        by_name = [f for f in found if f[2].leans_on != "answer"]
        chosen.extend(by_answer + by_name[:mining.followup_questions - len(by_answer)])
        return [later for later, _, _ in chosen]

    train = _training_set(data, "squad-train", pick)
    pool, number_of, idf = train.pool, train.number_of, train.idf
    chain = mining.antecedent_chain
    score = _Scorer(pool, len(chosen), "follow-ups", chain)
    pairs = []
    words = tokenize([followup.text for _, _, followup in chosen])
    for (q, earlier, followup), q_words in zip(chosen, words):
        rows = pool.by_article[number_of[q["article"]]]
        positive = _answer_row(pool, rows, q)
        if positive is None:
            score.bar.update(1)
            continue
        free = [int(r) for r in rows if int(r) != positive
                and not contains_answer(pool.reading(int(r), chain), q["answers"])]
        earlier_row = _answer_row(pool, rows, earlier)
        negatives = [earlier_row] if earlier_row in free else []
        candidates = np.array([r for r in _by_shared_words(
            pool, np.array(free, dtype=np.int64), frozenset(q_words), idf,
            mining.squad_candidates) if int(r) not in negatives], dtype=np.int64)
        if len(candidates):
            probabilities = score(followup.text, candidates)
            negatives += _hardest(candidates, probabilities, mining)[:mining.squad_negatives]
        else:
            score.bar.update(1)
        others = [r for r in free if r not in negatives]
        negatives += rng.sample(others, min(1, len(others)))
        pairs.append(pool.pair(followup.text, positive, 1.0, chain))
        pairs += [pool.pair(followup.text, r, 0.0, chain) for r in negatives]
    score.bar.close()
    print(f"follow-ups: {len(chosen):,} questions, {len(pairs):,} pairs")
    return pairs


def news_pairs(data: Path, mining: Mining, rng: random.Random) -> list[dict]:
    train = _training_set(data, "realtimeqa-train")
    pool, number_of, idf, questions, words = (train.pool, train.number_of, train.idf,
                                              train.questions, train.words)
    chain = mining.antecedent_chain
    score = _Scorer(pool, len(questions), "realtimeqa-train", chain)
    pairs, kept = [], 0
    for q, q_words in zip(questions, words):
        answers = q["answers"]
        rows = pool.rows_of([number_of[a] for a in q["article_ids"] if a in number_of])
        holders = pool.rows_of([number_of[a] for a in q["answer_article_ids"]
                                if a in number_of])
        holders = np.array([r for r in holders
                            if contains_answer(pool.sentences[r].text, answers)], dtype=np.int64)
        if not len(holders) or not len(rows):
            score.bar.update(1)
            continue
        kept += 1
        holders = _by_shared_words(pool, holders, q_words, idf, mining.news_candidates)
        candidates = _by_shared_words(pool, rows, q_words, idf, mining.news_candidates)
        candidates = np.array([r for r in candidates if not contains_answer(
            pool.reading(r, chain), answers)], dtype=np.int64)
        probabilities = score(q["question"], np.concatenate([holders, candidates]))
        held, free = probabilities[:len(holders)], probabilities[len(holders):]
        positives = [int(holders[i]) for i in np.argsort(-held)[:mining.news_positives]]
        hardest = _hardest(candidates, free, mining)
        easy = [int(r) for r in rows if int(r) not in hardest and int(r) not in positives]
        step = mining.news_negatives
        for repeat in range(mining.news_repeats):
            negatives = hardest[repeat * step:(repeat + 1) * step] or hardest[:step]
            negatives = negatives + rng.sample(easy, min(1, len(easy)))
            pairs += [pool.pair(q["question"], r, 1.0, chain) for r in positives]
            pairs += [pool.pair(q["question"], r, 0.0, chain) for r in negatives
                      if not contains_answer(pool.reading(r, chain), answers)]
    score.bar.close()
    print(f"realtimeqa-train: {kept:,} of {len(questions):,} questions with an answer "
          f"sentence, {len(pairs):,} pairs ({mining.news_repeats} repeats)")
    return pairs


def mine(data: Path, work: Path, mining: Mining = Mining()) -> Path:
    """Write a round's mined pairs to `work`/pairs.jsonl.gz (never committed)."""
    rng = random.Random(mining.seed)
    started = time.monotonic()
    pairs = squad_pairs(data, mining, rng) + news_pairs(data, mining, rng)
    if mining.followup_questions:
        pairs += followup_pairs(data, mining, rng)
    rng.shuffle(pairs)
    work.mkdir(parents=True, exist_ok=True)
    target = work / "pairs.jsonl.gz"
    with gzip.open(target, "wt", encoding="utf-8") as handle:
        for pair in pairs:
            handle.write(json.dumps(pair, ensure_ascii=False) + "\n")
    positives = sum(p["label"] for p in pairs)
    print(f"{len(pairs):,} pairs ({positives:,.0f} positive) -> {target} "
          f"in {time.monotonic() - started:.0f} s")
    return target


@dataclass(frozen=True, slots=True)
class Round:
    """A further training round: how its pairs are mined, and the recipe it fits with."""

    mining: Mining
    recipe: Recipe


# Each round continues from the shipped weights of the round before: a smaller step, a new
# shuffle. The third reads leaning sentences with the ones before them, as queries do.
ROUNDS = {
    2: Round(Mining(), Recipe(seed=17, learning_rate=2e-5)),
    3: Round(Mining(seed=19, antecedent_chain=2), Recipe(seed=19, learning_rate=2e-5)),
}
# Measured and not shipped (docs/BENCHMARKS.md, "Training on follow-ups", "Training on
# SQuAD's paraphrases"), from the third round's weights:
#   Round(Mining(seed=23, antecedent_chain=2, squad_questions=3_000,
#                followup_questions=4_000), Recipe(seed=23, learning_rate=2e-5))
#   Round(Mining(seed=29, antecedent_chain=2, squad_most_overlap=0.34),
#         Recipe(seed=29, learning_rate=2e-5))


def further_round(data: Path, work: Path, round_: Round, target: Path,
                  fit_too: bool = True) -> None:
    """Mine pairs with the shipped reader; then fit from its weights and export to
    `target`.

    Pairs already in `work` are used as they are, so a stopped run resumes from its last
    checkpoint with the pairs it was training on; remove `work` to mine anew."""
    from qa.reader.export import export_reader, recover_reader

    if (work / "pairs.jsonl.gz").is_file():
        print(f"using the pairs in {work} (remove the folder to mine anew)")
    else:
        mine(data, work, round_.mining)
    if fit_too:
        start = recover_reader(work / "start")
        export_reader(fit(work, round_.recipe, start=start), target)


def main(argv: Sequence[str] | None = None) -> None:
    from qa.reader.model import MODEL_DIR

    parser = argparse.ArgumentParser(prog="python -m qa.reader.mine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--round", type=int, choices=sorted(ROUNDS), default=max(ROUNDS),
                        help="which round to run, from the weights the round before it "
                             "shipped (default: %(default)s)")
    parser.add_argument("--mine-only", action="store_true",
                        help="write the pairs and stop (no training)")
    parser.add_argument("--data", type=Path, default=DEFAULT_TRAIN_DATA,
                        help="the training data folder (default: %(default)s)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK,
                        help="pairs, checkpoints and the trained model go under "
                             "<work>/round<N> (default: %(default)s)")
    parser.add_argument("--target", type=Path, default=MODEL_DIR,
                        help="where the trained reader is exported (default: the shipped "
                             "one, %(default)s; another folder to measure it first with "
                             "bench/reader.py --reader)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see qa.reader.train.main
    further_round(args.data, args.work / f"round{args.round}", ROUNDS[args.round],
                  args.target, fit_too=not args.mine_only)


if __name__ == "__main__":
    main()
