"""Late chunking (Settings.sentence_vectors="late"): sentence vectors from the passages'
own forward pass. Pure pooling first, then real builds with the bundled model."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import EVAL, SEED_CORPUS, FakeEmbedder
from qa.config import Settings
from qa.errors import ConfigError
from qa.eval import answers_in, read_questions
from qa.build import build_index
from qa.index.manifest import read_manifest
from qa.embed.late import pool_spans, sentence_spans, span_weights


def test_sentence_spans_follow_the_context_line():
    # Embedded text "Title\nAb. Cd." for a passage at article offset 100.
    assert sentence_spans("Title", 100, [(100, 103), (104, 107)]) == [(6, 9), (10, 13)]
    assert sentence_spans("", 100, [(100, 103)]) == [(0, 3)]


def test_span_weights_pick_each_sentence_s_tokens_and_no_special_ones():
    # [CLS] T i t l e | A b . | C d . [SEP] [PAD]: offsets as a fast tokenizer gives them.
    offsets = np.array([[0, 0], [0, 5], [6, 8], [8, 9], [10, 12], [12, 13], [0, 0], [0, 0]])
    weights = span_weights(offsets, 7, [(6, 9), (10, 13)])
    assert weights.tolist() == [[0, 0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 1, 1, 0]]


def test_pool_spans_means_unit_length_and_passage_for_empty_spans():
    hidden = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]], np.float32)
    weights = np.array([[1, 1, 0], [0, 0, 1], [0, 0, 0]], np.float32)
    passage = np.array([0.6, 0.8], np.float32)
    pooled = pool_spans(hidden, weights, passage)
    assert np.allclose(pooled, [[1, 0], [0, 1], [0.6, 0.8]])


def test_an_embedder_without_encode_late_is_a_clear_error(tmp_path):
    shutil.copytree(SEED_CORPUS, tmp_path / "corpus")
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index",
                        sentence_vectors="late")
    with pytest.raises(ConfigError, match="encode_late.*FakeEmbedder"):
        build_index(settings, FakeEmbedder())


def test_an_unknown_sentence_vectors_setting_is_refused():
    with pytest.raises(ConfigError, match="sentence_vectors must be one of separate, late, "
                                          "got 'both'"):
        Settings(sentence_vectors="both")


class ForwardCounter:
    """Counts the texts the transformer reads (its batch rows), whoever calls it: a hook on
    its embedding layer (sentence-transformers calls the model's forward directly, past
    the model's own hooks). The build's ONNX export of the question model is left out."""

    def __init__(self, embedder) -> None:
        self.rows = 0
        self._handle = embedder._direct[1].embeddings.register_forward_hook(
            self._hook, with_kwargs=True)
        self._patch = pytest.MonkeyPatch()
        self._patch.setattr("qa.build._export_question_model", lambda *args: None)

    def _hook(self, module, args, kwargs, output) -> None:
        self.rows += int(output.shape[0])

    def close(self) -> None:
        self._handle.remove()
        self._patch.undo()


@pytest.fixture(scope="module")
def late_build(tmp_path_factory, fp32_embedder):
    root = tmp_path_factory.mktemp("late")
    shutil.copytree(SEED_CORPUS, root / "corpus")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index",
                        sentence_vectors="late")
    counter = ForwardCounter(fp32_embedder)
    try:
        report = build_index(settings, fp32_embedder)
    finally:
        counter.close()
    return settings, report, counter.rows


def test_late_build_reads_each_passage_once_and_says_so(late_build):
    settings, report, rows = late_build
    manifest = read_manifest(settings.index_dir / report.generation)
    assert report.passages > 20 and manifest.counts.sentences > report.passages
    # One forward row per passage: no sentence was embedded on its own.
    assert rows == report.passages == report.embedded_passages
    assert report.embedded_sentences == manifest.build.embedded_sentences == 0
    assert manifest.model.sentence_vectors == "late"


def test_late_passage_vectors_are_encode_s(late_build, fp32_embedder):
    from qa.index.generation import Generation

    settings, report, _ = late_build
    generation = Generation.open(settings.index_dir / report.generation)
    try:
        # The context each passage was embedded with: the title, or a page's section label.
        texts = [f"{p.context}\n{p.text}" for p in generation.db.passages([0, 1, 2]).values()]
        cosines = np.sum(fp32_embedder.encode(texts) * generation.vectors[[0, 1, 2]], axis=1)
    finally:
        generation.close()
    assert cosines.min() > 0.999, cosines


@pytest.mark.parametrize("question", read_questions(EVAL / "seed_dev.jsonl"), ids=lambda q: q.id)
def test_a_late_index_answers_the_seed_questions(late_build, fp32_embedder, question):
    from qa.retriever import Retriever

    settings, _, _ = late_build
    # The late vectors' own ranking: with the reader on top, d01's member list falls out
    # of the top 5 (the reader prefers "The newly formed alliances, including the
    # Model-Chip Ecosystem Innovation Alliance ..."; docs/BENCHMARKS.md).
    retriever = Retriever.open(settings.replace(reranker=False), fp32_embedder)
    assert not retriever.answer(question.question, k=5).abstained
    # What test_seed_index asks of the default ("separate") index.
    hits = retriever.search(question.question, k=5)
    assert any(answers_in(hit.passage.text, question) for hit in hits), [
        hit.passage.text[:80] for hit in hits
    ]


def test_switching_sentence_vectors_re_embeds_every_article(late_build, fp32_embedder):
    settings, _, _ = late_build
    separate = settings.replace(sentence_vectors="separate")
    counter = ForwardCounter(fp32_embedder)
    try:
        report = build_index(separate, fp32_embedder)
    finally:
        counter.close()
    assert report.kept == 0 and report.reembedded == 1, report.summary()
    # Separate sentences cost forward rows of their own (the contrast the late test needs).
    assert counter.rows > report.passages
    manifest = read_manifest(separate.index_dir / report.generation)
    assert manifest.model.sentence_vectors == "separate"
    assert build_index(separate, fp32_embedder).up_to_date
    back = build_index(settings, fp32_embedder)
    assert back.kept == 0 and back.reembedded == 1, back.summary()
