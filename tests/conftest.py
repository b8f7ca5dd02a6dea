"""Shared fixtures: the real bundled model, a small fake embedder, a built seed index."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import hashlib  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from qa.build import build_index  # noqa: E402
from qa.config import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SEED_CORPUS = ROOT / "corpus"
SEED_FILE = SEED_CORPUS / "000_2cb1631c0639e46a.txt"
EVAL = SHARED / "eval"
ARTIFACTS = ROOT / "tests" / "artifacts"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


class FakeEmbedder:
    """Deterministic bag-of-words hashing embedder for unit tests of pure logic.

    It records every text it is asked to encode, so tests can count what was embedded.
    """

    model_id = "fake-bow"
    fingerprint = "fake-bow-v1"
    dim = 64
    max_tokens = 256
    precision = "fp32"

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(re.findall(r"\w+|[^\w\s]", t)) for t in texts]

    def encode(self, texts: Sequence[str], on_progress=None) -> np.ndarray:
        self.encoded.extend(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        out[:, 0] += 1e-3  # no all-zero rows
        if on_progress:
            on_progress(len(texts), len(texts))
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture(scope="session")
def real_embedder():
    """The model as users get it: precision "auto" (bf16 on CPUs with bf16, else int8)."""
    from qa.embed.transformer import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def fp32_embedder():
    from qa.embed.transformer import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(precision="fp32")


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory, real_embedder) -> Settings:
    """The seed corpus (copied) built into a fresh index with the real model."""
    root = tmp_path_factory.mktemp("seed")
    shutil.copytree(SEED_CORPUS, root / "corpus")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index")
    build_index(settings, real_embedder)
    return settings


@pytest.fixture(scope="session")
def seed_retriever(seed_settings, real_embedder):
    from qa.retriever import Retriever

    return Retriever.open(seed_settings, real_embedder)
