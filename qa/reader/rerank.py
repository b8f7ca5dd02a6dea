"""The reader as the Retriever's last stage: it reads the best candidate sentences with the
question and decides the order of the passages and the sentence to highlight."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from qa.reader import pair_text, refers_back
from qa.types import Hit

# Unread sentences of a read passage score this much below their first-stage score, so
# every read sentence (a probability in [0, 1]) outranks them and they keep their order.
UNREAD_OFFSET = -2.0


@dataclass(frozen=True, slots=True)
class ReadingPlan:
    """Which sentences the reader reads, and how its probability meets the first stage."""

    # Sentences read per question at most: the reader's cost grows with this (and see
    # `first_read`).
    sentences: int = 40
    # At most this many of one passage's sentences (its best by the first stage), so the
    # reader sees more passages than the best one's every sentence; the first
    # `deep_passages` passages may give `per_deep_passage` (the answer is most often in
    # them, not always in the sentence the first stage liked best). bench/reader.py: 5
    # from the first 2 marks one more seed_dev answer than 3, the other sets unchanged.
    per_passage: int = 1
    deep_passages: int = 2
    per_deep_passage: int = 5
    # A passage's score: weight * its best sentence's probability + (1 - weight) * the
    # first stage's score; the reader alone forgets what the words matched. bench/reader.py
    # (0.3 to 1): 0.4 was best on realtimeqa-dev reading sentences alone; with
    # antecedents 0.5 is, every seed set the same, for about 1 point of squad-dev's
    # recall@1 and highlight@1 (docs/BENCHMARKS.md, "Reading a sentence with the one
    # before it").
    weight: float = 0.5
    # A read sentence's score (what the highlight is chosen by), the same way.
    sentence_weight: float = 1.0
    # Read the first `first_read` sentences, and the rest only when none of those answers
    # with a probability of at least `sure_from` (None: always read them all). Reading
    # 40 instead of 24 lifts realtimeqa-dev recall@5 0.744 -> 0.782 (an answer further down
    # the first stage); since the reader stops early when both stages agree (`lead_from`),
    # it reads all 40 otherwise (docs/BENCHMARKS.md "Reading further", "When both stages
    # agree").
    first_read: int = 24
    sure_from: float | None = None
    # A sentence that opens with "This", "He", "Their"... is read after the sentence before
    # it in its passage, and when it answers both are marked: alone, "Despite these
    # efforts, collaboration can be daunting due to differing corporate cultures" does not
    # say whose (docs/BENCHMARKS.md, "Reading a sentence with the one before it").
    antecedents: bool = True
    # How far back a chain of such sentences is followed ("These alliances, known as X..."
    # after "These are designed to..." after "...announced two alliances."): at most this
    # many sentences before the one read. 2 rather than 1: one more squad-dev answer in the
    # top 5 of 600, one more follow-up marked, nothing lost, 0.01 sentence more per mark
    # (docs/BENCHMARKS.md, "Chains of leaning sentences").
    antecedent_chain: int = 2
    # When the first stage's best passage leads the best passage with other words by at
    # least `lead_from` (its score's scale) and the reader finds an answer in it (a
    # probability of at least `lead_sure_from`), only that passage is read: the two
    # stages agree, and the order stays the first stage's. On the eval sets no metric
    # fell, and most squad-dev questions read 5 pairs instead of 40 (docs/BENCHMARKS.md,
    # "When both stages agree"). None: always read on.
    lead_from: float | None = 0.02
    lead_sure_from: float = 0.7


@dataclass(frozen=True, slots=True)
class Reading:
    """What the reader reads for one sentence: `text` (after the title), from `start` in
    the article (the sentence's own start, or its antecedent's)."""

    text: str
    start: int


class ReaderReranker:
    """Re-scores hits with a Reader (qa.reader.model): a `Reranker` for the Retriever."""

    def __init__(self, reader, plan: ReadingPlan = ReadingPlan()) -> None:
        self.reader = reader
        self.plan = plan

    @property
    def fingerprint(self) -> str:
        return self.reader.fingerprint

    def choose(self, hits: Sequence[Hit]) -> dict[tuple[str, int, int], Reading]:
        """The sentences to read, keyed by (article, start, end), with what is read: the
        best `per_passage` of each passage in rank order, until `sentences` are chosen."""
        chosen: dict[tuple[str, int, int], Reading] = {}
        for rank, hit in enumerate(hits):
            p = hit.passage
            taken = 0
            most = (self.plan.per_deep_passage if rank < self.plan.deep_passages
                    else self.plan.per_passage)
            in_order = sorted(hit.sentences, key=lambda s: s.start)
            before = {s.start: previous for previous, s in zip(in_order, in_order[1:])}
            for s in sorted(hit.sentences, key=lambda s: -s.score):
                if taken == most or len(chosen) == self.plan.sentences:
                    break
                key = (p.article_id, s.start, s.end)
                taken += 1
                if key in chosen:  # overlapping passages share a sentence
                    continue
                start, leaning = s.start, s
                for _ in range(self.plan.antecedent_chain if self.plan.antecedents else 0):
                    if leaning.start not in before or not refers_back(
                            p.text[leaning.start - p.start:leaning.end - p.start]):
                        break
                    leaning = before[leaning.start]
                    start = leaning.start
                chosen[key] = Reading(pair_text(p.title, p.text[start - p.start:s.end - p.start]),
                                      start)
            if len(chosen) == self.plan.sentences:
                break
        return chosen

    def rerank(self, question: str | Sequence[str], hits: Sequence[Hit]) -> list[Hit]:
        """The hits ordered by the blend of reader and first stage, with each read
        sentence scored by its probability (what highlights are chosen by) and each hit's
        `answer_probability` set (what abstention reads; 0 for a hit not read).

        `question` may be several readings of one question (a follow-up with and without
        its context): each sentence then counts by its best."""
        if not hits:
            return []
        readings = (question,) if isinstance(question, str) else tuple(question)
        chosen = self.choose(hits)
        texts = [reading.text for reading in chosen.values()]
        best = np.zeros(0, dtype=np.float32)
        if self.leads(hits):
            # The first passage's sentences come first in `chosen`.
            best = self._read(readings, texts[:len(self.choose(hits[:1]))])
            if best.max(initial=0.0) >= self.plan.lead_sure_from:
                return self._scored(hits, chosen, dict(zip(chosen, best)), blend=False)
        first = len(texts) if self.plan.sure_from is None else self.plan.first_read
        best = np.concatenate([best, self._read(readings, texts[len(best):first])])
        if len(texts) > first and best.max(initial=0.0) < self.plan.sure_from:
            best = np.concatenate([best, self._read(readings, texts[first:])])
        return self._scored(hits, chosen, dict(zip(chosen, best)), blend=True)

    def leads(self, hits: Sequence[Hit]) -> bool:
        """Whether the first stage's best hit leads the best one with other words (a copy
        of the same text is no rival) by at least the plan's `lead_from`."""
        if self.plan.lead_from is None or not hits:
            return False
        top = hits[0]
        rival = next((h for h in hits[1:] if h.passage.text != top.passage.text), None)
        return rival is None or top.score - rival.score >= self.plan.lead_from

    def _scored(self, hits: Sequence[Hit], chosen: dict[tuple[str, int, int], Reading],
                probabilities: dict[tuple[str, int, int], float], blend: bool) -> list[Hit]:
        """The hits with each read sentence scored by its probability. `blend`: each
        hit's score blends its best probability with the first stage's (a hit not read
        gets 0) and they are re-sorted; else the first stage's scores and order stay and
        a hit not read has no `answer_probability` (its relevance is its cosine)."""
        weight = self.plan.weight
        out = []
        for hit in hits:
            article = hit.passage.article_id
            best = None
            sentences = []
            for s in hit.sentences:
                key = (article, s.start, s.end)
                probability = probabilities.get(key)
                if probability is None:
                    sentences.append(replace(s, score=s.score + UNREAD_OFFSET))
                    continue
                probability = float(probability)  # plain floats: the API's JSON
                best = probability if best is None else max(best, probability)
                # What was read together is marked together (if this passage holds it).
                read_from = chosen[key].start
                start = read_from if read_from >= hit.passage.start else s.start
                sentences.append(replace(s, start=start,
                                         score=self.plan.sentence_weight * probability
                                         + (1 - self.plan.sentence_weight) * s.score))
            if blend:
                best = best or 0.0
                out.append(replace(hit, score=weight * best + (1 - weight) * hit.score,
                                   sentences=tuple(sentences), answer_probability=best))
            else:
                out.append(replace(hit, sentences=tuple(sentences), answer_probability=best))
        if blend:
            out.sort(key=lambda h: -h.score)
        return out

    def _read(self, readings: tuple[str, ...], texts: list[str]) -> np.ndarray:
        """Each text's best probability over the readings."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        return np.max([self.reader.score(q, texts) for q in readings], axis=0)


def open_reranker(settings) -> ReaderReranker | None:
    """The shipped reader as a re-ranker when `settings.reranker` is on, else None.

    Raises:
        ReaderError: the model is missing or damaged (the message names the file).
    """
    if not settings.reranker:
        return None
    from qa.reader.model import GRAPH, MODEL_DIR

    folder = Path(settings.reader_model or MODEL_DIR).resolve()
    try:
        stamp = (folder / GRAPH).stat()
        version = (stamp.st_mtime_ns, stamp.st_size)
    except OSError:
        version = None  # Reader names the missing file
    return ReaderReranker(_reader(folder, version),
                          ReadingPlan(sentences=settings.reader_sentences))


@lru_cache(maxsize=4)
def _reader(folder: Path, version: tuple[int, int] | None):
    """One Reader per graph file and version: every Retriever a process opens (the page
    reopens one after each rebuild) shares it instead of hashing and loading 22 MiB again.
    A replaced file has another version and is loaded (and checked) anew."""
    from qa.reader.model import Reader

    return Reader(folder)
