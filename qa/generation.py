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
    return {**chunk_settings.as_dict(), "splitter": "blingfire", "context": "title",
            "sentence_context": "title"}


def check_files(path: Path, manifest: dict) -> None:
    """Raise IndexCorruptError naming the first file that is missing or has the wrong size.

    The manifest records every file's size when the generation is written; checking them
    first turns a truncated file into a clear message instead of a library's stack trace.
    """
    for name, size in manifest.get("files", {}).items():
        file = path / name
        try:
            found = file.stat().st_size
        except FileNotFoundError:
            raise IndexCorruptError(f"{file} is missing; {REBUILD_HINT}") from None
        if found != size:
            raise IndexCorruptError(
                f"{file} is damaged ({found} bytes, the manifest says {size}: truncated or "
                f"overwritten); {REBUILD_HINT}"
            )


class Generation:
    """The dense index, BM25, sentence vectors and passage database of one generation.

    Every file is opened (or memory-mapped) in `open`, never later: a build deletes
    generations that are no longer current, and a reader that still holds one keeps
    working because open files and maps outlive their directory entries.
    """

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
        counts = manifest["counts"]
        check_files(path, manifest)

        def damaged(name: str, why: object) -> IndexCorruptError:
            return IndexCorruptError(f"{path / name} is damaged ({why}); {REBUILD_HINT}")

        if not (path / layout.DENSE_FILE).is_file():
            raise damaged(layout.DENSE_FILE, "missing")
        try:
            dense = DenseIndex.load(path / layout.DENSE_FILE)
        except (RuntimeError, OSError, ValueError) as exc:
            # FAISS errors carry the C++ function signature; the reason is after "Error: ".
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
            raise damaged(layout.DENSE_FILE, reason.rsplit("Error: ", 1)[-1]) from None
        if dense.size != counts["passages"] or dense.dim != manifest["model"]["dim"]:
            raise damaged(
                layout.DENSE_FILE,
                f"{dense.size} vectors of dim {dense.dim}, manifest says "
                f"{counts['passages']} of dim {manifest['model']['dim']}",
            )
        try:
            lexical = LexicalIndex.load(path / layout.LEXICAL_DIR)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise damaged(layout.LEXICAL_DIR, exc) from None
        if lexical.size != dense.size:
            raise damaged(layout.LEXICAL_DIR, f"{lexical.size} documents, not {dense.size}")
        arrays = []
        for name in (layout.VECTORS_FILE, layout.SENTENCE_VECTORS_FILE):
            try:
                arrays.append(load_vectors(path / name))
            except (OSError, ValueError) as exc:
                raise damaged(name, exc) from None
        vectors, sentence_vectors = arrays
        if vectors.shape != (dense.size, dense.dim):
            raise damaged(layout.VECTORS_FILE, f"shape {vectors.shape}, not {(dense.size, dense.dim)}")
        if sentence_vectors.shape != (counts["sentences"], dense.dim):
            raise damaged(
                layout.SENTENCE_VECTORS_FILE,
                f"shape {sentence_vectors.shape}, manifest says {(counts['sentences'], dense.dim)}",
            )
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
        wanted = (counts["articles"], counts["passages"], counts["sentences"])
        if found != wanted:
            db.close()
            raise damaged(
                layout.DB_FILE,
                f"it holds (articles, passages, sentences) {found}, the manifest says {wanted}",
            )
        return cls(path, manifest, dense, lexical, vectors, sentence_vectors, db)

    def close(self) -> None:
        self.db.close()
