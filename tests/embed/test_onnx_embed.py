"""Answering without torch: a build exports the model, questions go through ONNX Runtime."""
from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest

from conftest import EVAL, ROOT, read_jsonl
from index_helpers import cli_env, copy_index
from qa.embed import load_question_encoder
from qa.eval import answers_in, read_questions
from qa.build import build_index
from qa.config import Settings
from qa.errors import ConfigError
from qa.embed.onnx import GRAPH, OnnxQuestionEncoder, export_folder, read_export
from qa.retriever import Retriever

QUESTIONS = [q["question"] for q in read_jsonl(EVAL / "seed_dev_paraphrased.jsonl")]


def test_a_build_exports_the_model_once(seed_settings, real_embedder):
    folder = export_folder(seed_settings.index_dir, real_embedder.fingerprint)
    about = read_export(folder, real_embedder.fingerprint)
    assert about is not None and about.model_id == "all-MiniLM-L6-v2" and about.dim == 384
    written = (folder / GRAPH).stat().st_mtime_ns
    build_index(seed_settings, real_embedder)  # up to date: the export is kept as it is
    assert (folder / GRAPH).stat().st_mtime_ns == written


def test_the_export_is_int8(seed_settings, real_embedder):
    folder = export_folder(seed_settings.index_dir, real_embedder.fingerprint)
    # int8 weights: ~23 MB; the fp32 graph is ~90 MB (and is not kept).
    assert (folder / GRAPH).stat().st_size < 40 * 2**20
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", GRAPH, "tokenizer.json"]


def test_onnx_questions_agree_with_the_torch_model(seed_settings, real_embedder, fp32_embedder):
    encoder = load_question_encoder(seed_settings)
    assert isinstance(encoder, OnnxQuestionEncoder)
    assert (encoder.model_id, encoder.fingerprint, encoder.dim, encoder.max_tokens) == (
        real_embedder.model_id, real_embedder.fingerprint, real_embedder.dim,
        real_embedder.max_tokens)
    cosine = (encoder.encode(QUESTIONS) * fp32_embedder.encode(QUESTIONS)).sum(axis=1)
    # int8 weights: cosine 0.989-0.996 here (fp32 ONNX: 1.00000; it really is int8).
    assert cosine.min() > 0.985 and np.median(cosine) < 0.9999, cosine


def test_the_retriever_answers_alike_through_either(seed_settings, fp32_embedder):
    # The first stage compared (the reader re-orders near ties further); abstention with
    # the reader too.
    plain = seed_settings.replace(reranker=False)
    onnx, torch = Retriever.open(plain), Retriever.open(plain, fp32_embedder)
    read = {"onnx": Retriever.open(seed_settings),
            "torch": Retriever.open(seed_settings, fp32_embedder)}
    assert isinstance(onnx.embedder, OnnxQuestionEncoder)
    # int8 question vectors swap near ties (the eval sets score alike: the module doc of
    # qa.embed.onnx), so: nine in ten of the top-5 passages the same (109 of 115 measured,
    # the least 3 of 5, for "Who edited the piece?", which no passage answers well), the
    # same abstentions, and as many questions with an answering passage in the top 5.
    found, shared, asked = {"onnx": 0, "torch": 0}, 0, 0
    for question in read_questions(EVAL / "seed_dev.jsonl") + read_questions(
            EVAL / "seed_dev_paraphrased.jsonl") + read_questions(
            EVAL / "seed_dev_unanswerable.jsonl"):
        top = {}
        for name, retriever in (("onnx", onnx), ("torch", torch)):
            hits = retriever.search(question.question, k=5)
            top[name] = {h.passage.id for h in hits}
            found[name] += any(answers_in(h.passage.text, question) for h in hits)
        assert len(top["onnx"] & top["torch"]) >= 3, question
        shared, asked = shared + len(top["onnx"] & top["torch"]), asked + 5
        assert (onnx.answer(question.question).abstained
                == torch.answer(question.question).abstained), question
        assert (read["onnx"].answer(question.question).abstained
                == read["torch"].answer(question.question).abstained), question
    assert found["onnx"] == found["torch"] > 10, found
    assert shared >= 0.9 * asked, (shared, asked)


def test_a_damaged_export_falls_back_to_torch_and_is_made_again(seed_settings, real_embedder,
                                                               tmp_path, caplog):
    settings = copy_index(seed_settings, tmp_path)
    folder = export_folder(settings.index_dir, real_embedder.fingerprint)
    with (folder / GRAPH).open("r+b") as handle:  # same size, other bytes
        handle.seek(4096)
        handle.write(b"\0" * 64)
    with caplog.at_level(logging.WARNING):
        encoder = load_question_encoder(settings)
    assert not isinstance(encoder, OnnxQuestionEncoder)
    assert Retriever.open(settings, encoder).search(QUESTIONS[0], k=1)
    build_index(settings, real_embedder)  # nothing to index; the export is made again
    assert isinstance(load_question_encoder(settings), OnnxQuestionEncoder)


ANSWER_WITHOUT_TORCH = """
import json, sys
from pathlib import Path
from qa.config import Settings
from qa.retriever import Retriever
retriever = Retriever.open(Settings(index_dir=Path(sys.argv[1])))
answer = retriever.answer("What hardware did the US export bans target?", k=1)
print(json.dumps({"quote": answer.quotes[0].text,
                  "torch": "torch" in sys.modules,
                  "sentence_transformers": "sentence_transformers" in sys.modules}))
"""


@pytest.mark.slow
def test_answering_never_imports_torch(seed_settings):
    result = subprocess.run([sys.executable, "-c", ANSWER_WITHOUT_TORCH,
                             str(seed_settings.index_dir)],
                            cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert "Nvidia GPUs" in out["quote"]
    assert not out["torch"] and not out["sentence_transformers"], out



@pytest.fixture(scope="module")
def int8_embedder():
    from qa.embed.transformer import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(precision="int8")


def test_int8_vectors_are_the_graphs_and_close_to_fp32(int8_embedder, fp32_embedder):
    texts = QUESTIONS + [q["question"] for q in read_jsonl(EVAL / "seed_dev.jsonl")]
    vectors = int8_embedder.encode(texts)
    assert vectors.shape == (len(texts), 384) and vectors.dtype == np.float32
    cosine = (vectors * fp32_embedder.encode(texts)).sum(axis=1)
    assert cosine.min() > 0.97 and np.median(cosine) < 0.9999, cosine
    # Each text is its own run of the graph: a text's vector does not move with the texts
    # beside it (int8 activations are quantised per run), nor with the session it lands on.
    alone = int8_embedder.encode(texts[3:4])
    assert np.array_equal(alone[0], vectors[3])
    assert np.array_equal(int8_embedder.encode(texts[1:])[2], vectors[3])


def test_an_int8_build_answers_with_the_graph_it_was_built_with(tmp_path, int8_embedder,
                                                                 monkeypatch):
    settings = Settings(corpus_dir=ROOT / "corpus", index_dir=tmp_path / "index",
                        precision="int8")
    build_index(settings, int8_embedder)
    manifest = json.loads((tmp_path / "index" / (tmp_path / "index" / "CURRENT").read_text()
                           .strip() / "manifest.json").read_text())
    assert manifest["model"]["precision"] == "int8"
    encoder = load_question_encoder(settings)
    assert isinstance(encoder, OnnxQuestionEncoder)
    # The index's question graph is the one the passages were embedded with, to the bit.
    assert np.array_equal(encoder.encode(QUESTIONS[:3]), int8_embedder.encode(QUESTIONS[:3]))
    answer = Retriever.open(settings).answer("Which platform did Huawei unveil as a rival "
                                             "to Nvidia?")
    assert not answer.abstained and "CloudMatrix" in answer.quotes[0].text

    # The next build (a new process) embeds with the index's graph instead of exporting
    # its own (~5 s): the graph file stays as it was, and the vectors are the same.
    from qa.embed.transformer import SentenceTransformerEmbedder

    folder = export_folder(settings.index_dir, int8_embedder.fingerprint)
    written = (folder / GRAPH).stat().st_mtime_ns
    again = SentenceTransformerEmbedder(precision="int8")

    def export_again(_folder):
        raise AssertionError("the index's graph was there to use")

    monkeypatch.setattr(again, "_export_to", export_again)
    build_index(settings, again, full=True)
    assert (folder / GRAPH).stat().st_mtime_ns == written
    assert np.array_equal(again.encode(QUESTIONS[:3]), int8_embedder.encode(QUESTIONS[:3]))


def test_int8_with_late_sentence_vectors_is_a_clear_error():
    with pytest.raises(ConfigError, match="late.*int8|int8.*late"):
        Settings(precision="int8", sentence_vectors="late")
