"""Train the reader: `python -m qa.reader.train` (prepare pairs, fit, export to ONNX).

The reader is a cross-encoder that reads a question with one candidate sentence (and its
article's title) and gives the probability that the sentence answers. It starts from the
bundled all-MiniLM-L6-v2 weights and learns from the open training data in
`../shared/train/` (SQuAD v1.1 train and RealTimeQA training weeks, never the eval sets):

1. `prepare`: every article is cut into sentences the way the index cuts them; for each
   question, the sentence that holds the answer is a positive and hard sentences that do
   not hold it are negatives: the most similar ones of the same articles by the bundled
   bi-encoder and by shared words (what the retriever would hand the reader), one random
   one of the same articles, and for news questions, one similar sentence of another
   question's articles. Pairs go to `<work>/pairs.jsonl.gz` (they quote the texts, which
   belong to their publishers: the work folder is never committed).
2. `fit`: binary cross-entropy with sentence-transformers' CrossEncoderTrainer, AdamW,
   linear decay after a warmup, bf16 on CPUs that have it. Checkpoints resume.
3. `export`: the weights as an int8 ONNX graph with its tokenizer into `qa/reader/weights/`.

Further rounds, from the shipped weights on pairs the reader itself finds hard, are
`python -m qa.reader.mine --round 2`, then `--round 3` (the shipped weights).

Needs the `train` extra (`pip install .[train]`: datasets and accelerate).
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import random
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from qa.reader import refers_back

DEFAULT_TRAIN_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "train"
DEFAULT_WORK = Path(".verbatim-cache") / "reader"
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Recipe:
    """Everything that decides the shipped weights (written into the model card)."""

    seed: int = 13
    squad_questions: int = 45_000
    news_repeats: int = 4
    dense_negatives: int = 2
    lexical_negatives: int = 1
    random_negatives: int = 1
    # News questions: the best answer-holding sentences taken as positives.
    news_positives: int = 2
    # Share of SQuAD questions that also get a sentence of another article (calibration).
    squad_other_article: float = 0.2
    max_length: int = 128
    batch_size: int = 64
    epochs: float = 1.0
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.05
    weight_decay: float = 0.01


@dataclass(frozen=True, slots=True)
class Sentence:
    article: int
    text: str


def reader_text(title: str, sentence: str) -> str:
    """The second segment the reader reads: a short title, then the sentence. The index
    side builds the same string (qa.reader.pair_text) so training and use agree."""
    from qa.reader import pair_text

    return pair_text(title, sentence)


def normalize(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    """The eval sets' rule: an answer occurs in the text after normalising case and space."""
    folded = normalize(text)
    return any(normalize(a) and normalize(a) in folded for a in answers)


def article_sentences(text: str) -> list[str]:
    """Sentences as the index cuts them: paragraphs, then blingfire sentences."""
    from qa.text.chunk import split_sentences

    out = []
    for paragraph in text.split("\n\n"):
        paragraph = _SPACE.sub(" ", paragraph).strip()
        for span in split_sentences(paragraph):
            sentence = paragraph[span.start:span.end]
            if len(sentence.split()) >= 3:
                out.append(sentence)
    return out


def read_jsonl_gz(path: Path) -> Iterator[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


class Pool:
    """All sentences of a training set, their vectors and stemmed words."""

    def __init__(self, titles: list[str], sentences: list[Sentence], vectors: np.ndarray | None,
                 words: list[frozenset[str]], by_article: dict[int, np.ndarray]) -> None:
        self.titles = titles
        self.sentences = sentences
        self.vectors = vectors
        self.words = words
        self.by_article = by_article

    @classmethod
    def build(cls, articles: list[dict], embedder, label: str) -> "Pool":
        from qa.index.lexical import tokenize

        titles, sentences = [], []
        for number, article in enumerate(articles):
            titles.append(_SPACE.sub(" ", article["title"].replace("_", " ")).strip())
            sentences += [Sentence(number, s) for s in article_sentences(article["text"])]
        print(f"{label}: {len(articles):,} articles, {len(sentences):,} sentences")
        texts = [s.text for s in sentences]
        # No embedder: a pool for word overlap only (further rounds read with the reader).
        vectors = embed(embedder, texts, label) if embedder is not None else None
        words = [frozenset(w) for w in tokenize(texts)]
        owners = np.fromiter((s.article for s in sentences), dtype=np.int64)
        order = np.argsort(owners, kind="stable")
        bounds = np.searchsorted(owners[order], np.arange(len(articles) + 1))
        by_article = {a: order[bounds[a]:bounds[a + 1]] for a in range(len(articles))}
        return cls(titles, sentences, vectors, words, by_article)

    def rows_of(self, articles: Sequence[int]) -> np.ndarray:
        parts = [self.by_article[a] for a in articles if len(self.by_article[a])]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def reading(self, row: int, chain: int = 0) -> str:
        """The sentence as the reader reads it at query time: with up to `chain` sentences
        before it while each it starts from leans back ("This move...")."""
        article, first = self.sentences[row].article, row
        for _ in range(chain):
            if (first == 0 or self.sentences[first - 1].article != article
                    or not refers_back(self.sentences[first].text)):
                break
            first -= 1
        return " ".join(s.text for s in self.sentences[first:row + 1])

    def pair(self, question: str, row: int, label: float, chain: int = 0) -> dict:
        return {"question": question,
                "text": reader_text(self.titles[self.sentences[row].article],
                                    self.reading(row, chain)),
                "label": label}


def embed(embedder, texts: list[str], label: str) -> np.ndarray:
    from tqdm import tqdm

    bar = tqdm(total=len(texts), desc=f"embed {label}", unit="text", mininterval=5)
    done = 0

    def progress(finished: int, _total: int) -> None:
        nonlocal done
        bar.update(finished - done)
        done = finished

    vectors = embedder.encode(texts, on_progress=progress)
    bar.close()
    return vectors


def hard_negatives(pool: Pool, question_vector: np.ndarray, question_words: frozenset[str],
                   rows: np.ndarray, answers: Sequence[str], exclude: set[int],
                   dense: int, lexical: int, idf: dict[str, float]) -> list[int]:
    """The `dense` most similar and `lexical` most word-sharing rows that hold no answer."""
    if not len(rows):
        return []
    cosine = pool.vectors[rows] @ question_vector
    shared = np.array([sum(idf.get(w, 0.0) for w in question_words & pool.words[r])
                       for r in rows])
    chosen: list[int] = []
    for ranking, wanted in ((np.argsort(-cosine), dense), (np.argsort(-shared), lexical)):
        taken = 0
        for position in ranking:
            row = int(rows[position])
            if taken == wanted:
                break
            if row in exclude or row in chosen:
                continue
            if contains_answer(pool.sentences[row].text, answers):
                continue
            chosen.append(row)
            taken += 1
    return chosen


def inverse_frequencies(pool: Pool) -> dict[str, float]:
    counts: dict[str, int] = {}
    for words in pool.words:
        for w in words:
            counts[w] = counts.get(w, 0) + 1
    n = len(pool.words)
    return {w: math.log(1 + (n - c + 0.5) / (c + 0.5)) for w, c in counts.items()}


def squad_pairs(data: Path, embedder, recipe: Recipe, rng: random.Random) -> list[dict]:
    from qa.index.lexical import tokenize

    articles = list(read_jsonl_gz(data / "squad-train" / "articles.jsonl.gz"))
    number_of = {a["id"]: i for i, a in enumerate(articles)}
    pool = Pool.build(articles, embedder, "squad-train")
    idf = inverse_frequencies(pool)
    questions = list(read_jsonl_gz(data / "squad-train" / "questions.jsonl.gz"))
    rng.shuffle(questions)
    questions = questions[:recipe.squad_questions]
    vectors = embed(embedder, [q["question"] for q in questions], "squad questions")
    words = [frozenset(w) for w in tokenize([q["question"] for q in questions])]
    pairs, missed = [], 0
    for q, vector, q_words in zip(questions, vectors, words):
        article = number_of[q["article"]]
        rows = pool.by_article[article]
        # The sentence holding the answer at its offset in the paragraph.
        context = _SPACE.sub(" ", q["context"]).strip()
        answer = q["answers"][0]
        before = _SPACE.sub(" ", q["context"][:q["answer_start"]]).lstrip()
        holder = next((s for s in article_sentences(context)
                       if answer in s and _sentence_covers(context, s, len(before))), None)
        positive = next((int(r) for r in rows if pool.sentences[r].text == holder), None)
        if positive is None:
            missed += 1
            continue
        pairs.append(pool.pair(q["question"], positive, 1.0))
        negatives = hard_negatives(pool, vector, q_words, rows, q["answers"], {positive},
                                   recipe.dense_negatives, recipe.lexical_negatives, idf)
        others = [int(r) for r in rows if int(r) not in negatives and int(r) != positive
                  and not contains_answer(pool.sentences[r].text, q["answers"])]
        negatives += rng.sample(others, min(recipe.random_negatives, len(others)))
        if rng.random() < recipe.squad_other_article:
            other = rng.randrange(len(pool.sentences))
            if pool.sentences[other].article != article:
                negatives.append(other)
        pairs += [pool.pair(q["question"], r, 0.0) for r in negatives]
    print(f"squad-train: {len(questions) - missed:,} questions kept ({missed} without a "
          f"findable answer sentence), {len(pairs):,} pairs")
    return pairs


def _sentence_covers(context: str, sentence: str, offset: int) -> bool:
    """Does `sentence`, found in the whitespace-normalised `context`, span `offset`?"""
    start = context.find(sentence)
    while start >= 0:
        if start <= offset < start + len(sentence):
            return True
        start = context.find(sentence, start + 1)
    return False


def news_pairs(data: Path, embedder, recipe: Recipe, rng: random.Random) -> list[dict]:
    from qa.index.lexical import tokenize

    articles = list(read_jsonl_gz(data / "realtimeqa-train" / "articles.jsonl.gz"))
    number_of = {a["id"]: i for i, a in enumerate(articles)}
    pool = Pool.build(articles, embedder, "realtimeqa-train")
    idf = inverse_frequencies(pool)
    questions = list(read_jsonl_gz(data / "realtimeqa-train" / "questions.jsonl.gz"))
    vectors = embed(embedder, [q["question"] for q in questions], "news questions")
    words = [frozenset(w) for w in tokenize([q["question"] for q in questions])]
    pairs, kept = [], 0
    for q, vector, q_words in zip(questions, vectors, words):
        answers = q["answers"]
        own = [number_of[a] for a in q["article_ids"] if a in number_of]
        holders = pool.rows_of([number_of[a] for a in q["answer_article_ids"]
                                if a in number_of])
        holders = np.array([r for r in holders
                            if contains_answer(pool.sentences[r].text, answers)], dtype=np.int64)
        if not len(holders):
            continue
        kept += 1
        # The answer's words occur in unrelated sentences too ("California"): of the
        # sentences that hold it, the ones closest to the question are the likely answers.
        closeness = pool.vectors[holders] @ vector + 0.02 * np.array(
            [sum(idf.get(w, 0.0) for w in q_words & pool.words[r]) for r in holders])
        positives = [int(holders[i]) for i in np.argsort(-closeness)[:recipe.news_positives]]
        rows = pool.rows_of(own)
        hard = hard_negatives(pool, vector, q_words, rows, answers, set(positives),
                              4 * recipe.dense_negatives, 4 * recipe.lexical_negatives, idf)
        # A similar sentence of articles found for other questions (another week's news).
        cosine = pool.vectors @ vector
        cosine[rows] = -np.inf
        foreign_hard = hard_negatives(pool, vector, q_words, np.argsort(-cosine)[:50],
                                      answers, set(), 4, 0, idf)
        easy = [int(r) for r in rows if int(r) not in hard and int(r) not in positives]
        for repeat in range(recipe.news_repeats):
            pairs += [pool.pair(q["question"], r, 1.0) for r in positives]
            per_repeat = recipe.dense_negatives + recipe.lexical_negatives
            negatives = hard[repeat * per_repeat:(repeat + 1) * per_repeat] or hard[:per_repeat]
            negatives = list(negatives)
            negatives += rng.sample(easy, min(recipe.random_negatives, len(easy)))
            if repeat < len(foreign_hard):
                negatives.append(foreign_hard[repeat])
            pairs += [pool.pair(q["question"], r, 0.0) for r in negatives
                      if not contains_answer(pool.sentences[r].text, answers)]
    print(f"realtimeqa-train: {kept:,} of {len(questions):,} questions with an answer "
          f"sentence, {len(pairs):,} pairs ({recipe.news_repeats} repeats)")
    return pairs


def prepare(data: Path, work: Path, recipe: Recipe) -> Path:
    from qa.config import Settings
    from qa.embed import load_embedder

    rng = random.Random(recipe.seed)
    embedder = load_embedder(Settings(batch_size=128))
    started = time.monotonic()
    pairs = squad_pairs(data, embedder, recipe, rng) + news_pairs(data, embedder, recipe, rng)
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


def length_grouped_batches(lengths: Sequence[int], batch_size: int,
                           rng: np.random.Generator, group: int = 64) -> list[list[int]]:
    """Shuffled batches of pairs of similar length: each batch is padded to its longest
    pair, and a batch padded to 128 word pieces trains ~3x slower than one of 64 here.

    Shuffle, cut into groups of `group` batches, sort each group by length, cut it into
    batches, then shuffle the batches."""
    order = rng.permutation(len(lengths))
    batches = []
    for start in range(0, len(order), batch_size * group):
        chunk = sorted(order[start:start + batch_size * group].tolist(),
                       key=lambda i: lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _length_grouped_sampler_class():
    from sentence_transformers.base.sampler import DefaultBatchSampler

    class LengthGroupedBatchSampler(DefaultBatchSampler):
        """The trainer's batch sampler with length_grouped_batches' order (a new order
        each epoch, the same for the same seed, so a resumed run sees the same batches)."""

        def __init__(self, dataset, lengths: Sequence[int], batch_size: int,
                     drop_last: bool, **kwargs) -> None:
            super().__init__(dataset, batch_size=batch_size, drop_last=drop_last, **kwargs)
            self.lengths = lengths

        def __len__(self) -> int:
            return math.ceil(len(self.lengths) / self.batch_size)

        def __iter__(self):
            rng = np.random.default_rng(self.seed + getattr(self, "epoch", 0))
            yield from length_grouped_batches(self.lengths, self.batch_size, rng)

    return LengthGroupedBatchSampler


class LengthGrouping:
    """What the trainer calls for its batch sampler (a plain class: the trainer pickles its
    arguments with each checkpoint, and a lambda cannot be pickled)."""

    def __init__(self, lengths: Sequence[int]) -> None:
        self.lengths = list(lengths)

    def __call__(self, dataset, **kwargs):
        return _length_grouped_sampler_class()(dataset, self.lengths, **kwargs)


def fit(work: Path, recipe: Recipe, limit: int | None = None, resume: bool = True,
        start: Path | None = None) -> Path:
    """Train on the prepared pairs, from `start` (a reader's folder) or the bundled
    MiniLM weights; returns the folder of the trained torch model."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    from qa.config import cpu_has_bf16
    from qa.embed import bundled_model_path

    rows = list(read_jsonl_gz(work / "pairs.jsonl.gz"))
    if limit:
        rows = rows[:limit]
    dataset = Dataset.from_dict({
        "question": [r["question"] for r in rows], "text": [r["text"] for r in rows],
        "label": [float(r["label"]) for r in rows]})
    lengths = [len(r["question"]) + len(r["text"]) for r in rows]
    torch.manual_seed(recipe.seed)
    model = CrossEncoder(str(start or bundled_model_path()), num_labels=1,
                         max_length=recipe.max_length, device="cpu")
    output = work / ("checkpoints" if not limit else f"checkpoints-{limit}")
    args = CrossEncoderTrainingArguments(
        output_dir=str(output), num_train_epochs=recipe.epochs,
        per_device_train_batch_size=recipe.batch_size, learning_rate=recipe.learning_rate,
        warmup_ratio=recipe.warmup_ratio, lr_scheduler_type="linear",
        weight_decay=recipe.weight_decay, bf16=cpu_has_bf16(), seed=recipe.seed,
        logging_steps=25, save_strategy="steps", save_steps=200, save_total_limit=2,
        dataloader_drop_last=False, report_to=[], use_cpu=True,
        batch_sampler=LengthGrouping(lengths),
    )
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=dataset,
                                  loss=BinaryCrossEntropyLoss(model))
    has_checkpoint = resume and any(output.glob("checkpoint-*"))
    started = time.monotonic()
    trainer.train(resume_from_checkpoint=True if has_checkpoint else None)
    final = work / ("final" if not limit else f"final-{limit}")
    model.save_pretrained(str(final))
    log = {"recipe": asdict(recipe), "pairs": len(rows), "seconds": time.monotonic() - started,
           "torch_threads": torch.get_num_threads(), "bf16": cpu_has_bf16(),
           "history": trainer.state.log_history}
    (final / "training_log.json").write_text(json.dumps(log, indent=1), encoding="utf-8")
    print(f"trained on {len(rows):,} pairs in {log['seconds'] / 60:.1f} min -> {final}")
    return final


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m qa.reader.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("prepare", "fit", "export", "all"), nargs="?",
                        default="all")
    parser.add_argument("--data", type=Path, default=DEFAULT_TRAIN_DATA,
                        help="the training data folder (default: %(default)s)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK,
                        help="pairs and checkpoints, never committed (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None,
                        help="fit on the first N pairs only (a quick check of the recipe)")
    args = parser.parse_args(argv)
    # Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine a spinning
    # thread waits on a descheduled peer, and a training step took 2-4x longer (read by
    # OpenMP when torch loads, so set before anything imports it).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    recipe = Recipe()
    if args.step in ("prepare", "all"):
        prepare(args.data, args.work, recipe)
    if args.step in ("fit", "all"):
        fit(args.work, recipe, args.limit)
    if args.step in ("export", "all"):
        from qa.reader.export import export_reader

        export_reader(args.work / "final")


if __name__ == "__main__":
    main()
