"""One built generation of the index, loaded and checked against the running settings."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa import layout
from qa.chunk import ChunkSettings
from qa.db import PassageDB
from qa.errors import REBUILD_HINT, IndexCorruptError, IndexMismatchError
from qa.lexical import LexicalIndex
from qa.store import DenseIndex, load_vectors


@dataclass(frozen=True, slots=True)
class Expected:
    """What the running settings require of an index: same model, same chunker."""

    model_id: str
    fingerprint: str
    dim: int
    chunker: dict


def check_compatible(manifest: dict, expected: Expected, where: Path) -> None:
    """Raise IndexMismatchError when the index was built with another model or chunker."""
    model = manifest.get("model", {})
    if model.get("fingerprint") != expected.fingerprint or model.get("dim") != expected.dim:
        raise IndexMismatchError(
            f"{where} was built with model {model.get('id')!r} (dim {model.get('dim')}, "
            f"fingerprint {model.get('fingerprint')}), but the running model is "
            f"{expected.model_id!r} (dim {expected.dim}, fingerprint {expected.fingerprint}); "
            f"{REBUILD_HINT} (or run with the model it was built with)"
        )
    if manifest.get("chunker") != expected.chunker:
        raise IndexMismatchError(
            f"{where} was built with chunker settings {manifest.get('chunker')}, the running "
            f"settings are {expected.chunker}; {REBUILD_HINT}"
        )


def expected_for(embedder, chunk_settings: ChunkSettings) -> Expected:
    return Expected(
        model_id=embedder.model_id,
        fingerprint=embedder.fingerprint,
        dim=embedder.dim,
        chunker=chunker_manifest(chunk_settings),
    )


def chunker_manifest(chunk_settings: ChunkSettings) -> dict:
    return {**chunk_settings.as_dict(), "splitter": "blingfire", "context": "title"}


class Generation:
    """The dense index, BM25, sentence vectors and passage database of one generation."""

    def __init__(self, path: Path, manifest: dict, dense: DenseIndex, lexical: LexicalIndex,
                 vectors: np.ndarray, sentence_vectors: np.ndarray, db: PassageDB) -> None:
        self.path = path
        self.name = path.name
        self.manifest = manifest
        self.dense = dense
        self.lexical = lexical
        self.vectors = vectors
        self.sentence_vectors = sentence_vectors
        self.db = db

    @property
    def passage_count(self) -> int:
        return self.dense.size

    @classmethod
    def open(cls, path: Path, expected: Expected | None = None) -> "Generation":
        """Load and check a generation; damage or mismatch is an error naming the file."""
        manifest = layout.read_manifest(path)
        if expected is not None:
            check_compatible(manifest, expected, path / layout.MANIFEST)
        counts = manifest.get("counts", {})

        def damaged(name: str, why: object) -> IndexCorruptError:
            return IndexCorruptError(f"{path / name} is damaged ({why}); {REBUILD_HINT}")

        try:
            dense = DenseIndex.load(path / layout.DENSE_FILE)
        except (RuntimeError, OSError) as exc:
            raise damaged(layout.DENSE_FILE, str(exc).strip().splitlines()[-1]) from None
        if dense.size != counts.get("passages") or dense.dim != manifest["model"]["dim"]:
            raise damaged(
                layout.DENSE_FILE,
                f"{dense.size} vectors of dim {dense.dim}, manifest says "
                f"{counts.get('passages')} of dim {manifest['model']['dim']}",
            )
        try:
            lexical = LexicalIndex.load(path / layout.LEXICAL_DIR)
        except (OSError, ValueError, KeyError) as exc:
            raise damaged(layout.LEXICAL_DIR, exc) from None
        if lexical.size != dense.size:
            raise damaged(layout.LEXICAL_DIR, f"{lexical.size} documents, not {dense.size}")
        vector_files = (layout.VECTORS_FILE, layout.SENTENCE_VECTORS_FILE)
        try:
            vectors, sentence_vectors = (load_vectors(path / name) for name in vector_files)
        except (OSError, ValueError) as exc:
            raise damaged(f"{vector_files[0]} or {vector_files[1]}", exc) from None
        if vectors.shape != (dense.size, dense.dim):
            raise damaged(layout.VECTORS_FILE, f"shape {vectors.shape}, not {(dense.size, dense.dim)}")
        db_path = path / layout.DB_FILE
        if not db_path.is_file():
            raise damaged(layout.DB_FILE, "missing")
        db = PassageDB(db_path)
        try:
            db.check()
            found = db.counts()
        except sqlite3.DatabaseError as exc:
            db.close()
            raise damaged(layout.DB_FILE, exc) from None
        wanted = (counts.get("articles"), counts.get("passages"), counts.get("sentences"))
        if found != wanted or sentence_vectors.shape[0] != counts.get("sentences"):
            db.close()
            raise damaged(
                layout.DB_FILE,
                f"counts (articles, passages, sentences) {found} and "
                f"{sentence_vectors.shape[0]} sentence vectors disagree with manifest {wanted}",
            )
        return cls(path, manifest, dense, lexical, vectors, sentence_vectors, db)

    def close(self) -> None:
        self.db.close()
