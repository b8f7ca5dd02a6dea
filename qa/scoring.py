"""Pure scoring of candidate passages and their sentences against a question.

Weights were chosen by a grid search on squad-dev (a broad plateau, not a peak; the
result is reproduced by bench/quality.py):
passage cosine, best sentence (cosine of title+sentence plus question-term coverage),
and BM25 normalised by the best candidate's.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qa.config import Mode


@dataclass(frozen=True, slots=True)
class Weights:
    """How the hybrid score mixes its parts."""

    passage: float = 0.4
    sentence: float = 0.6
    lexical: float = 0.15
    # Share of a sentence's score that comes from covering the question's terms.
    coverage: float = 0.5

    @property
    def maximum(self) -> float:
        """The highest score a candidate can reach (every part at 1)."""
        return self.passage + self.sentence * (1 + self.coverage) + self.lexical


DEFAULT_WEIGHTS = Weights()


def term_coverage(
    question_terms: Sequence[str], sentence_terms: Sequence[Sequence[str]]
) -> np.ndarray:
    """For each sentence, the idf-weighted share of the question's terms it contains.

    idf is taken over the candidate sentences themselves: a term every candidate has
    (the topic word) counts little, the rare one that pins the answer counts a lot.
    """
    wanted = set(question_terms)
    if not wanted or not sentence_terms:
        return np.zeros(len(sentence_terms), dtype=np.float32)
    sets = [set(terms) & wanted for terms in sentence_terms]
    df = Counter(term for terms in sets for term in terms)
    n = len(sets)
    idf = {term: math.log(1 + n / (1 + df[term])) for term in wanted}
    total = sum(idf.values())
    return np.asarray([sum(idf[t] for t in terms) / total for terms in sets], dtype=np.float32)


def sentence_scores(
    similarity: np.ndarray, coverage: np.ndarray, weights: Weights = DEFAULT_WEIGHTS
) -> np.ndarray:
    """A sentence's score: its cosine to the question plus its term coverage."""
    return similarity + weights.coverage * coverage


def fuse(
    dense: np.ndarray, best_sentence: np.ndarray, lexical: np.ndarray, mode: Mode,
    weights: Weights = DEFAULT_WEIGHTS,
) -> np.ndarray:
    """Final ranking scores in [0, 1] for the candidates of one question.

    "dense" and "bm25" rank by one signal; "hybrid" mixes all three. BM25 is divided by
    the best candidate's so it weighs the same for every question.
    """
    top = float(lexical.max()) if lexical.size else 0.0
    lexical_norm = lexical / top if top > 0 else np.zeros_like(lexical)
    if mode == "dense":
        return np.clip(dense, 0.0, 1.0)
    if mode == "bm25":
        return lexical_norm
    mixed = (weights.passage * dense + weights.sentence * best_sentence
             + weights.lexical * lexical_norm)
    return np.clip(mixed / weights.maximum, 0.0, 1.0)


def top(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k highest scores, best first; ties keep the earlier position."""
    return np.argsort(-scores, kind="stable")[:k]
