"""The ranking arithmetic (qa/scoring.py) against examples worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from qa.scoring import (
    CUE_CANDIDATES, DEFAULT_WEIGHTS, Weights, answer_type_cue, asks_for_name, asks_for_number,
    best_per_passage, confidence, fuse, new_names, new_numbers, rank_scores, sentence_scores,
    term_coverage, top, with_joined_compounds,
)


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
    # maximum = 0.2 + 0.8 * (1 + 0.5 + 0.1) + 0.15 = 1.63
    # first:  (0.2 * 0.5 + 0.8 * 0.8 + 0.15 * 1.0) / 1.63 = 0.89 / 1.63
    # second: (0.2 * 0.2 + 0.8 * 0.3 + 0.15 * 0.5) / 1.63 = 0.355 / 1.63
    assert DEFAULT_WEIGHTS.maximum == pytest.approx(1.63)
    scores = fuse(dense, best_sentence, lexical, "hybrid")
    assert scores == pytest.approx([0.89 / 1.63, 0.355 / 1.63])


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


def test_confidence_is_graded_by_two_thresholds():
    assert confidence(0.20, 0.26, 0.42) == "none"
    assert confidence(0.26, 0.26, 0.42) == "low"
    assert confidence(0.41, 0.26, 0.42) == "low"
    assert confidence(0.42, 0.26, 0.42) == "answered"
    # A confident threshold under the abstention one leaves no "low" grade.
    assert confidence(0.45, 0.5, 0.42) == "none"
    assert confidence(0.5, 0.5, 0.42) == "answered"


def test_hyphenated_question_words_are_added_joined_up():
    assert (with_joined_compounds("Will home-grown chips come faster?")
            == "Will home-grown chips come faster? homegrown")
    assert with_joined_compounds("an e-mail or email?") == "an e-mail or email?"
    assert with_joined_compounds("state-of-the-art and home-grown, home-grown") == (
        "state-of-the-art and home-grown, home-grown stateoftheart homegrown")
    assert with_joined_compounds("no hyphen - here") == "no hyphen - here"


def test_name_questions_are_told_from_number_and_date_questions():
    assert asks_for_name("Who founded the alliance?")
    assert asks_for_name("What is the second group called?")
    assert asks_for_name("Which company joined first?")
    assert not asks_for_name("How many companies joined?")
    assert not asks_for_name("When was the alliance announced?")
    assert not asks_for_name("Which year did it start?")
    assert not asks_for_name("Why does Washington restrict exports?")


def test_new_names_counts_capitalised_words_the_question_lacks():
    known = {"tim", "scott", "announced"}
    # "Tim", "Scott" are known; "The" starts the sentence; "South", "Carolina" are new.
    assert new_names("The senator Tim Scott announced it in South Carolina.", known) == 2
    # After a full stop a capital starts a sentence, not a name; one letter is no name.
    assert new_names("He left. Then A came with Acme.", known) == 1


def test_answer_type_cue_counts_new_names_for_name_questions_capped():
    sentences = ["Scott announced a run.", "Scott of South Carolina, Alpha Beta Gamma Delta.",
                 "no names at all"]
    cue = answer_type_cue("Who is Scott?", sentences)
    # 0 new names; 6 new names (South, Carolina, Alpha, Beta, Gamma, Delta) capped at 5.
    assert cue.tolist() == pytest.approx([0.0, 1.0, 0.0])
    # Names do not answer a number question, and a why question has no answer type.
    assert answer_type_cue("How many runs did Scott announce?", sentences).tolist() == [0, 0, 0]
    assert answer_type_cue("Why did Scott run?", sentences).tolist() == [0, 0, 0]
    assert answer_type_cue("Who?", []).shape == (0,)


def test_answer_type_cue_counts_new_numbers_and_dates_for_number_questions():
    assert asks_for_number("How many firms joined in 2025?")
    assert asks_for_number("When did the alliance form?")
    assert not asks_for_number("Who founded the alliance?")
    assert new_numbers("In May 2025, 12 firms and one agency joined.", {"2025"}) == 3
    assert new_numbers("More firms may join; Ten did.", set()) == 1  # "may", the verb
    sentences = ["Many firms joined in 2025.", "In July, 12 firms and 3 labs joined.",
                 "Firms joined."]
    cue = answer_type_cue("How many firms joined in 2025?", sentences)
    # "2025" is the question's own; "July", "12" and "3" are new (capped at 2).
    assert cue.tolist() == pytest.approx([0.0, 1.0, 0.0])


def test_best_per_passage_takes_each_passages_best_sentence():
    scores = np.array([0.2, 0.7, 0.4, 0.1])
    owner = np.array([0, 0, 2, 2])  # passage 1 has no sentences
    assert best_per_passage(scores, owner, 3).tolist() == pytest.approx([0.7, 0.0, 0.4])


def test_rank_scores_fuses_the_best_sentence_of_each_passage():
    dense = np.array([0.5, 0.2])
    similarity = np.array([0.6, 0.3, 0.1])
    coverage = np.array([0.4, 0.0, 0.0])
    owner = np.array([0, 0, 1])
    lexical = np.array([10.0, 5.0])
    scores, sentences = rank_scores(dense, similarity, coverage, owner, lexical, "hybrid")
    # sentences: 0.6 + 0.5 * 0.4 = 0.8, 0.3, 0.1; best per passage 0.8 and 0.1
    assert sentences == pytest.approx([0.8, 0.3, 0.1])
    # (0.2 * 0.5 + 0.8 * 0.8 + 0.15 * 1) / 1.63 = 0.89 / 1.63; (0.04 + 0.08 + 0.075) / 1.63
    assert scores == pytest.approx([0.89 / 1.63, 0.195 / 1.63])


def test_the_answer_type_cue_can_reorder_near_ties_in_hybrid_mode_only():
    dense = np.array([0.5, 0.5])
    similarity = np.array([0.60, 0.58])
    coverage = np.zeros(2)
    owner = np.array([0, 1])
    lexical = np.zeros(2)
    asked = []

    def cue(rows):
        asked.append(rows.tolist())
        return np.array([0.0, 1.0])[rows]

    plain, _ = rank_scores(dense, similarity, coverage, owner, lexical, "hybrid")
    assert plain[0] > plain[1]
    scores, sentences = rank_scores(dense, similarity, coverage, owner, lexical, "hybrid", cue)
    # sentence 1: 0.58 + 0.1 * 1.0 = 0.68 now beats 0.60
    assert sentences == pytest.approx([0.60, 0.68]) and scores[1] > scores[0]
    assert asked == [[0, 1]]
    dense_only, _ = rank_scores(dense, similarity, coverage, owner, lexical, "dense", cue)
    assert asked == [[0, 1]]  # not asked outside hybrid
    assert dense_only.tolist() == [0.5, 0.5]


def test_the_cue_is_asked_only_for_the_leading_candidates():
    n = CUE_CANDIDATES + 5
    dense = np.linspace(0.9, 0.1, n)
    asked = []
    rank_scores(dense, dense.copy(), np.zeros(n), np.arange(n), np.zeros(n), "hybrid",
                lambda rows: asked.append(sorted(rows.tolist())) or np.zeros(len(rows)))
    assert asked == [list(range(CUE_CANDIDATES))]


def test_recency_halves_every_half_life_and_knows_nothing_of_undated_or_future_articles():
    from datetime import date

    from qa.scoring import recency

    today = date(2025, 3, 31)
    got = recency(["2025-03-31", "2025-03-01", "2025-01-30", None, "2025-04-02", "soon",
                   "2025-03-01T08:00:00"], today, 30)
    assert got[0] == 1.0
    assert math.isclose(got[1], 0.5 ** (30 / 30), rel_tol=1e-6)
    assert math.isclose(got[2], 0.25, rel_tol=1e-6)
    assert got[3] == got[4] == got[5] == 0.0
    assert got[6] == got[1]
