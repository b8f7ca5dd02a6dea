"""qa.lexical: the sparse BM25 search equals brute-force BM25, with and without filters."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from collections import Counter

import numpy as np
import pytest

from qa.index.lexical import LexicalIndex, tokenize, top_k
from tests.conftest import EVAL, SEED_FILE

K1, B = 1.5, 0.75  # bm25s defaults (method "lucene")


def passages() -> list[str]:
    """Real text: the seed article's and a squad article's paragraphs."""
    texts = [p for p in SEED_FILE.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    with (EVAL / "squad-dev" / "articles.jsonl").open(encoding="utf-8") as handle:
        article = json.loads(handle.readline())
    texts += [p for p in article["text"].split("\n\n") if p.strip()]
    return texts


QUESTIONS = [
    "Which NFL team represented the AFC at Super Bowl 50?",
    "Where did Super Bowl 50 take place?",
    "Who won the game and what was the score?",
    "What was the halftime show like?",
    "the the the",  # only stop words: no terms
    "Broncos Broncos defense",  # a repeated term counts twice, as in bm25s
]


def brute_force(corpus: list[list[str]], query: list[str]) -> np.ndarray:
    """Lucene BM25 written out term by term, independent of bm25s.

    Lucene's variant (bm25s "lucene") leaves out the constant (k1 + 1) of the numerator.
    """
    n = len(corpus)
    avgdl = sum(len(d) for d in corpus) / n
    df = Counter(t for d in corpus for t in set(d))
    out = np.zeros(n)
    for i, doc in enumerate(corpus):
        tf = Counter(doc)
        for term in query:
            if tf[term]:
                idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                out[i] += idf * tf[term] / (tf[term] + K1 * (1 - B + B * len(doc) / avgdl))
    return out


@pytest.fixture(scope="module")
def corpus():
    texts = passages()
    assert len(texts) > 30
    return texts, tokenize(texts), LexicalIndex.build(texts)


def expected_top(scores: np.ndarray, k: int, allowed=None) -> tuple[np.ndarray, np.ndarray]:
    ids = np.arange(len(scores)) if allowed is None else np.asarray(allowed)
    order = ids[np.lexsort((ids, -scores[ids]))]
    order = order[scores[order] > 0][:k]
    return scores[order], order


@pytest.mark.parametrize("question", QUESTIONS)
def test_search_equals_brute_force_bm25(corpus, question):
    texts, tokens, index = corpus
    truth = brute_force(tokens, tokenize([question])[0])
    scores, ids = index.search(question, 10)
    want_scores, want_ids = expected_top(truth, 10)
    assert np.allclose(scores, want_scores, rtol=1e-5)
    assert np.array_equal(ids, want_ids)


@pytest.mark.parametrize("as_mask", [False, True], ids=["ids", "mask"])
@pytest.mark.parametrize("question", QUESTIONS)
def test_filtered_search_equals_brute_force_within_the_filter(corpus, question, as_mask):
    texts, tokens, index = corpus
    allowed = np.arange(1, len(texts), 3)
    truth = brute_force(tokens, tokenize([question])[0])
    given = np.isin(np.arange(len(texts)), allowed) if as_mask else allowed
    scores, ids = index.search(question, 5, given)
    assert set(ids.tolist()) <= set(allowed.tolist())
    want_scores, want_ids = expected_top(truth, 5, allowed)
    assert np.allclose(scores, want_scores, rtol=1e-5)
    assert np.array_equal(ids, want_ids)


def test_scores_are_bit_identical_to_bm25s(corpus):
    texts, tokens, index = corpus
    for question in QUESTIONS:
        terms = index.token_ids(question)  # bm25s's own scoring, as the reference
        full = (np.asarray(index._model.get_scores_from_ids(terms), dtype=np.float32) if terms
                else np.zeros(index.size, dtype=np.float32))
        scores, ids = index.search(question, len(texts))
        assert np.array_equal(scores, full[ids])
        assert set(ids.tolist()) == set(np.flatnonzero(full > 0).tolist())


def test_searches_leave_no_state_behind(corpus):
    texts, _, index = corpus
    fresh = LexicalIndex.build(texts)
    for question in QUESTIONS * 2:
        index.search(question, 3, np.arange(0, len(texts), 2))
        index.search(question, 7)
    for question in QUESTIONS:
        a, b = index.search(question, 10), fresh.search(question, 10)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_save_load_memory_maps_and_searches_alike(corpus, tmp_path):
    texts, _, index = corpus
    index.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25")
    assert loaded.size == len(texts)
    assert isinstance(loaded._model.scores["data"], np.memmap)
    for question in QUESTIONS:
        a, b = index.search(question, 10), loaded.search(question, 10)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_unknown_words_blank_filters_and_large_k(corpus):
    texts, _, index = corpus
    assert index.search("zzyzx qwertyuiop", 5)[1].size == 0
    assert index.search("Super Bowl", 5, np.zeros(0, np.int64))[1].size == 0
    scores, ids = index.search("Super Bowl", 10 * len(texts))
    assert len(ids) == len(set(ids.tolist())) and np.all(np.diff(scores) <= 0)


def test_threads_get_their_own_buffers(corpus):
    texts, _, index = corpus
    want = {q: index.search(q, 10) for q in QUESTIONS}
    failures = []

    def worker():
        for _ in range(30):
            for q in QUESTIONS:
                got = index.search(q, 10)
                if not np.array_equal(got[1], want[q][1]):
                    failures.append(q)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def test_top_k_orders_by_score_then_id():
    scores = np.array([1.0, 3.0, 3.0, 0.0, 2.0], np.float32)
    ids = np.array([10, 7, 3, 1, 5])
    got_scores, got_ids = top_k(scores, 3, ids)
    assert got_ids.tolist() == [3, 7, 5] and got_scores.tolist() == [3.0, 3.0, 2.0]
    assert top_k(scores, 10, ids)[1].tolist() == [3, 7, 5, 10]  # zero scores dropped
    assert top_k(scores, 2)[1].tolist() == [1, 2]  # positions when no ids are given


def test_top_k_ties_at_the_boundary_go_to_the_lowest_ids():
    scores = np.array([1.0] * 50 + [2.0] + [1.0] * 50, np.float32)
    assert top_k(scores, 3)[1].tolist() == [50, 0, 1]
    ids = np.arange(101)[::-1].copy()
    assert top_k(scores, 3, ids)[1].tolist() == [50, 0, 1]


BUILD_AND_HASH = """
import hashlib, pathlib, sys, tempfile
from qa.index.lexical import LexicalIndex
folder = pathlib.Path(tempfile.mkdtemp())
LexicalIndex.build(sys.argv[1:]).save(folder)
digest = hashlib.sha256()
for path in sorted(folder.rglob("*")):
    if path.is_file():
        digest.update(path.name.encode() + path.read_bytes())
print(digest.hexdigest())
"""


def test_the_same_passages_give_the_same_files_in_every_process():
    """Builds are reproducible (a cluster build and a local one have equal checksums),
    whatever Python's hash seed: the vocabulary is numbered in order of appearance."""
    texts = SEED_FILE.read_text(encoding="utf-8").splitlines()[:40]
    digests = {
        subprocess.run([sys.executable, "-c", BUILD_AND_HASH, *texts], capture_output=True,
                       text=True, check=True, timeout=120,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2", "3")
    }
    assert len(digests) == 1, digests


@pytest.fixture(scope="module")
def squad_twice():
    """Every squad-dev paragraph twice (so each score is tied at every boundary) and the
    first 400 squad-dev questions: a real corpus where the threshold shortcut applies."""
    texts = []
    with (EVAL / "squad-dev" / "articles.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            texts += [p for p in json.loads(line)["text"].split("\n\n") if p.strip()]
    with (EVAL / "squad-dev" / "questions.jsonl").open(encoding="utf-8") as handle:
        questions = [json.loads(line)["question"] for line, _ in zip(handle, range(400))]
    return LexicalIndex.build(texts + texts), questions


@pytest.mark.parametrize("k", [1, 5, 10, 50])
def test_threshold_top_k_equals_top_k_of_every_score(squad_twice, k, monkeypatch):
    """The threshold shortcut returns exactly what ranking every passage returns: the same
    ids in the same order, bit-identical scores, ties broken by the lowest id."""
    index, questions = squad_twice
    shortcut = []
    full = top_k  # the module function the shortcut falls back to, called on everything

    def counting(scores, k, ids=None):
        shortcut.append(ids is not None)
        return full(scores, k, ids)

    monkeypatch.setattr("qa.index.lexical.top_k", counting)
    compared = ties = 0
    for question in questions:
        token_ids = index.token_ids(question)
        if not token_ids:
            continue
        got_scores, got_ids = index.search(question, k)
        every = index._accumulate(token_ids).copy()
        want_scores, want_ids = full(every, k)
        assert got_ids.tolist() == want_ids.tolist(), question
        assert got_scores.tobytes() == want_scores.tobytes(), question
        ties += int(np.any(got_scores[1:] == got_scores[:-1]))
        compared += 1
    assert compared > 350 and (k == 1 or ties > 300)  # the twins' ties were compared
    # The shortcut really ran (else this test would prove nothing); at k=50 the rarest
    # term is in fewer than 50 of these 4,000 passages for most questions.
    assert sum(shortcut) >= (100 if k <= 10 else 15), (sum(shortcut), compared)


def test_the_threshold_shortcut_within_a_filter_equals_ranking_the_filter():
    """A rare term held by a tenth of the passages takes the shortcut; the filter must bound
    the k-th best with its own holders only."""
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(40)]
    texts = [" ".join(rng.choice(words, 12)) + (" rareterm" * int(rng.integers(1, 4))
                                                  if i % 10 == 0 else "")
             for i in range(600)]
    index = LexicalIndex.build(texts)
    tokens = tokenize(texts)
    mask = rng.random(len(texts)) < 0.5
    for question in ("rareterm w1 w2", "rareterm w7", "w3 w4 rareterm w5"):
        truth = brute_force(tokens, tokenize([question])[0])
        scores, ids = index.search(question, 8, mask)
        want_scores, want_ids = expected_top(truth, 8, np.flatnonzero(mask))
        assert np.array_equal(ids, want_ids)
        assert np.allclose(scores, want_scores, rtol=1e-5)
