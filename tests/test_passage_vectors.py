"""Passage vectors pooled from sentence vectors (Settings.passage_vectors): every text
goes through the model once, and "auto" never re-embeds an index built the other way."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import FakeEmbedder
from index_helpers import ARTICLES, CountingEmbedder, small_corpus
from qa.build import build_index, pool_passages
from qa.config import Settings
from qa.errors import ConfigError
from qa.index import layout
from qa.index.generation import Generation
from qa.index.manifest import read_manifest
from qa.retriever import Retriever


@pytest.fixture
def small(tmp_path) -> Settings:
    return small_corpus(tmp_path)


def live(settings: Settings) -> Generation:
    return Generation.open(settings.index_dir / layout.read_current(settings.index_dir))


def test_a_passage_vector_is_the_word_piece_weighted_mean_of_its_sentences():
    sentences = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    pooled = pool_passages(sentences, np.array([3, 1, 5]), [2, 1])
    want = np.array([3, 1, 0]) / np.sqrt(10)
    np.testing.assert_allclose(pooled, [want, [0, 0, 1]], rtol=1e-6)
    # A one-sentence passage reads exactly like its sentence.
    np.testing.assert_array_equal(pool_passages(sentences[2:], np.array([7]), [1]),
                                  sentences[2:])
    assert pool_passages(sentences[:0], np.array([]), []).shape == (0, 3)


def test_a_pooled_build_embeds_sentences_only_and_pools_every_passage(small, fake_embedder):
    report = build_index(small, fake_embedder)

    manifest = read_manifest(small.index_dir / report.generation)
    assert manifest.model.passage_vectors == "pooled"  # "auto" on a new index
    # Each distinct sentence once; no passage text on its own (every passage here has
    # more than one sentence, so none reads like a sentence).
    assert len(fake_embedder.encoded) == len(set(fake_embedder.encoded))
    assert len(fake_embedder.encoded) == report.texts_embedded == report.embedded_sentences
    passages_seen = {"\n".join(t.split("\n\n")) for t in ARTICLES.values()}
    assert not set(fake_embedder.encoded) & passages_seen
    assert f"{report.embedded_sentences} sentences embedded, {report.passages} passages " \
           "pooled from them" in report.summary()

    generation = live(small)
    try:
        rows = [r for article in generation.db.passage_rows().values() for r in article]
        sentence_vectors = np.asarray(generation.sentence_vectors, dtype=np.float32)
        for row in rows:
            mean = sentence_vectors[row.first_sentence:row.first_sentence
                                    + len(row.sentences)].mean(axis=0)
            vector = np.asarray(generation.vectors[row.id], dtype=np.float32)
            # Weighted by word pieces, so not the plain mean, but close to it.
            cosine = float(np.dot(vector, mean / np.linalg.norm(mean)))
            assert cosine > 0.95, (row, cosine)
            assert abs(np.linalg.norm(vector) - 1) < 1e-3
    finally:
        generation.close()


def test_auto_keeps_an_encoded_index_encoded_and_a_switch_re_embeds(small, fake_embedder):
    encoded = small.replace(passage_vectors="encoded")
    build_index(encoded, fake_embedder)
    (small.corpus_dir / "delta.txt").write_text("Delta pier\n\nThe pier reopened in May.",
                                                encoding="utf-8")
    fake_embedder.encoded.clear()

    report = build_index(small, fake_embedder)  # auto: the index's own way
    assert (report.added, report.kept) == (1, 3), report.summary()
    assert read_manifest(small.index_dir / report.generation).model.passage_vectors == "encoded"
    assert len(fake_embedder.encoded) == report.texts_embedded > report.embedded_sentences

    switched = build_index(small.replace(passage_vectors="pooled"), fake_embedder)
    assert (switched.kept, switched.reembedded) == (0, 4), switched.summary()
    assert read_manifest(small.index_dir / switched.generation).model.passage_vectors == "pooled"
    # Another model on a pooled index: re-embedded, and pooled again.
    other = FakeEmbedder()
    other.fingerprint = "fake-bow-v2"
    again = build_index(small, other)
    assert again.kept == 0
    assert read_manifest(small.index_dir / again.generation).model.passage_vectors == "pooled"


def test_late_sentence_vectors_keep_passages_encoded_and_refuse_pooling():
    with pytest.raises(ConfigError, match="passage_vectors must be one of auto, encoded, pooled"):
        Settings(passage_vectors="averaged")
    with pytest.raises(ConfigError, match="use one of them"):
        Settings(passage_vectors="pooled", sentence_vectors="late")
    assert Settings(sentence_vectors="late").passage_vectors == "auto"


# -- with the real model ------------------------------------------------------------------

def test_real_pooled_vectors_find_the_same_passages_as_encoded_ones(tmp_path, real_embedder):
    """Pooled passage vectors stand close to the model's own passage vectors and rank the
    same passage first for a question about it."""
    built = {}
    for way in ("encoded", "pooled"):
        settings = small_corpus(tmp_path / way).replace(passage_vectors=way)
        counting = CountingEmbedder(real_embedder)
        report = build_index(settings, counting)
        assert len(counting.encoded) == report.texts_embedded
        built[way] = settings
    generations = {way: live(s) for way, s in built.items()}
    try:
        encoded, pooled = generations["encoded"], generations["pooled"]
        assert encoded.passage_count == pooled.passage_count
        cosines = np.sum(np.asarray(encoded.vectors) * np.asarray(pooled.vectors), axis=1)
        assert cosines.min() > 0.9, cosines  # measured 0.95-0.99
    finally:
        for generation in generations.values():
            generation.close()
    for question, article in [("Which prize did the bakery win?", "gamma.txt"),
                              ("How many books does the school library have?", "beta.txt")]:
        hits = {way: Retriever.open(s, real_embedder).search(question, k=1)
                for way, s in built.items()}
        assert hits["pooled"][0].passage.article_id == article
        assert hits["pooled"][0].passage.text == hits["encoded"][0].passage.text
