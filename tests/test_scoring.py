"""The ranking arithmetic (qa/scoring.py) against examples worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from qa.scoring import DEFAULT_WEIGHTS, Weights, fuse, sentence_scores, term_coverage, top


def test_coverage_counts_the_share_of_question_terms_a_sentence_has():
    # Every term is in exactly one of three sentences: equal idf, so plain shares.
    coverage = term_coverage(["chip", "export", "ban"], [["chip", "export"], ["ban"], []])
    assert coverage == pytest.approx([2 / 3, 1 / 3, 0.0])


def test_coverage_weighs_rare_terms_more():
    # "chip" is in both sentences (df 2 of n 2), "ban" in one (df 1):
    # idf(chip) = ln(1 + 2/3) = 0.5108, idf(ban) = ln(1 + 2/2) = 0.6931.
    coverage = term_coverage(["chip", "ban"], [["chip"], ["chip", "ban", "chip"]])
    chip, ban = math.log(1 + 2 / 3), math.log(2)
    assert coverage == pytest.approx([chip / (chip + ban), 1.0])
    assert coverage[0] == pytest.approx(0.4243, abs=1e-4)


def test_coverage_without_question_terms_or_sentences():
    assert term_coverage([], [["a"], ["b"]]).tolist() == [0.0, 0.0]
    assert term_coverage(["a"], []).shape == (0,)


def test_sentence_score_adds_half_the_coverage_to_the_cosine():
    scores = sentence_scores(np.array([0.6, 0.3]), np.array([0.2, 1.0]))
    assert scores == pytest.approx([0.6 + 0.5 * 0.2, 0.3 + 0.5 * 1.0])


def test_hybrid_mixes_passage_sentence_and_normalised_bm25():
    dense = np.array([0.5, 0.2])
    best_sentence = np.array([0.8, 0.3])
    lexical = np.array([10.0, 5.0])  # normalised by the best: 1.0 and 0.5
    # maximum = 0.4 + 0.6 * (1 + 0.5) + 0.15 = 1.45
    # first:  (0.4 * 0.5 + 0.6 * 0.8 + 0.15 * 1.0) / 1.45 = 0.83 / 1.45
    # second: (0.4 * 0.2 + 0.6 * 0.3 + 0.15 * 0.5) / 1.45 = 0.335 / 1.45
    assert DEFAULT_WEIGHTS.maximum == pytest.approx(1.45)
    scores = fuse(dense, best_sentence, lexical, "hybrid")
    assert scores == pytest.approx([0.83 / 1.45, 0.335 / 1.45])


def test_single_signal_modes():
    dense = np.array([1.2, -0.1, 0.4])
    lexical = np.array([0.0, 4.0, 2.0])
    assert fuse(dense, dense, lexical, "dense") == pytest.approx([1.0, 0.0, 0.4])
    assert fuse(dense, dense, lexical, "bm25") == pytest.approx([0.0, 1.0, 0.5])
    assert fuse(dense, dense, np.zeros(3), "bm25").tolist() == [0.0, 0.0, 0.0]


def test_weights_change_the_mix():
    only_bm25 = Weights(passage=0.0, sentence=0.0, lexical=1.0)
    scores = fuse(np.array([0.9, 0.1]), np.array([0.9, 0.1]), np.array([1.0, 3.0]), "hybrid",
                  only_bm25)
    assert scores == pytest.approx([1 / 3, 1.0])


def test_top_is_best_first_and_keeps_ties_in_order():
    assert top(np.array([0.2, 0.9, 0.2, 0.5]), 3).tolist() == [1, 3, 0]
    assert top(np.array([0.1]), 5).tolist() == [0]
