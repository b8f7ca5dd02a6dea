"""qa.embed with the real bundled model: order kept across length sorting, bf16 vs fp32."""
from __future__ import annotations

import numpy as np
import pytest

from qa.text.chunk import split_sentences
from tests.conftest import SEED_FILE


def seed_sentences(count: int) -> list[str]:
    text = SEED_FILE.read_text(encoding="utf-8")
    return [text[s.start:s.end] for s in split_sentences(text)][:count]


@pytest.fixture(scope="module")
def bf16_embedder():
    from qa.embed.transformer import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(precision="bf16")


def test_encode_keeps_input_order_across_sorted_blocks(real_embedder, monkeypatch):
    texts = seed_sentences(40)
    texts[3] = texts[3] * 4  # lengths far apart, so sorting reorders them
    one_by_one = np.stack([real_embedder.encode([t])[0] for t in texts])
    monkeypatch.setattr(real_embedder, "batch_size", 2)  # blocks of 32 texts: 2 blocks
    progress = []
    together = real_embedder.encode(texts, lambda done, total: progress.append((done, total)))
    assert together.dtype == np.float32 and together.shape == (len(texts), real_embedder.dim)
    assert np.allclose(np.linalg.norm(together, axis=1), 1, atol=1e-5)
    assert np.min(np.sum(one_by_one * together, axis=1)) > 0.9999
    assert progress[-1] == (len(texts), len(texts)) and len(progress) == 2


def test_encode_nothing(real_embedder):
    assert real_embedder.encode([]).shape == (0, real_embedder.dim)


def test_bf16_vectors_are_close_to_fp32(fp32_embedder, bf16_embedder):
    texts = seed_sentences(12) + ["Who leads the new chip alliance?"]
    fp32 = fp32_embedder.encode(texts)
    bf16 = bf16_embedder.encode(texts)
    assert bf16.dtype == np.float32
    assert np.allclose(np.linalg.norm(bf16, axis=1), 1, atol=1e-5)
    cosines = np.sum(fp32 * bf16, axis=1)
    assert cosines.min() >= 0.99, cosines
    assert not np.array_equal(fp32, bf16)  # bf16 really ran (else this test proves nothing)


def test_a_query_runs_on_one_thread_and_leaves_the_setting_as_found(fp32_embedder, monkeypatch):
    import torch

    seen = []

    def spy(inner):
        def wrapper(*args, **kwargs):
            seen.append(torch.get_num_threads())
            return inner(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(fp32_embedder, "_encode_direct", spy(fp32_embedder._encode_direct))
    monkeypatch.setattr(fp32_embedder._model, "encode", spy(fp32_embedder._model.encode))
    before = torch.get_num_threads()
    fp32_embedder.encode(["one question?"])
    fp32_embedder.encode(seed_sentences(20))
    assert seen == [1, fp32_embedder.threads]
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_query_fast_path_gives_sentence_transformers_vectors(fp32_embedder, bf16_embedder,
                                                              precision):
    import torch

    embedder = fp32_embedder if precision == "fp32" else bf16_embedder
    assert embedder._direct is not None  # the bundled model is Transformer -> mean pooling
    texts = ["Who leads the new chip alliance?", *seed_sentences(3)]
    fast = embedder.encode(texts)  # <= QUERY_TEXTS: the direct path
    with torch.inference_mode(), torch.autocast(
        "cpu", dtype=torch.bfloat16, enabled=precision == "bf16"
    ):
        reference = embedder._model.encode(texts, convert_to_numpy=True,
                                           normalize_embeddings=True)
    assert np.min(np.sum(fast * reference.astype(np.float32), axis=1)) > 0.9999

