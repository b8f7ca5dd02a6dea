"""One built generation of the index, opened read-only and checked against the settings."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.config import ChunkSettings
from qa.errors import REBUILD_HINT, IndexCorruptError, IndexMismatchError
from qa.index import layout
from qa.index.db import PassageDB
from qa.index.dense import DenseBackend, backend_class
from qa.index.lexical import LexicalIndex
from qa.index.manifest import (
    MANIFEST, ChunkerInfo, Manifest, check_files, read_manifest, total_bytes,
)
from qa.index.vectors import load_vectors

# Checksumming every file on load costs ~1 s per GB; past this total only sizes are checked
# on load, and `qa info` (health) and builds that reuse vectors still verify everything.
CHECKSUM_ON_LOAD_BYTES = 256 * 2**20


@dataclass(frozen=True, slots=True)
class Expected:
    """What the running settings require of an index: same model, same chunker."""

    model_id: str
    fingerprint: str
    dim: int
    chunker: ChunkerInfo


def chunker_info(chunk_settings: ChunkSettings) -> ChunkerInfo:
    return ChunkerInfo(
        max_tokens=chunk_settings.max_tokens,
        overlap_sentences=chunk_settings.overlap_sentences,
        min_tokens=chunk_settings.min_tokens,
    )


def expected_for(embedder, chunk_settings: ChunkSettings) -> Expected:
    """What an index must have been built with to be searched with `embedder`."""
    return Expected(
        model_id=embedder.model_id,
        fingerprint=embedder.fingerprint,
        dim=embedder.dim,
        chunker=chunker_info(chunk_settings),
    )


def check_compatible(manifest: Manifest, expected: Expected, where: Path) -> None:
    """Raise IndexMismatchError when the index was built with another model or chunker."""
    model = manifest.model
    if model.fingerprint != expected.fingerprint or model.dim != expected.dim:
        raise IndexMismatchError(
            f"{where} was built with model {model.id!r} (dim {model.dim}, "
            f"fingerprint {model.fingerprint}), but the running model is "
            f"{expected.model_id!r} (dim {expected.dim}, fingerprint {expected.fingerprint}); "
            f"{REBUILD_HINT} (or run with the model it was built with)"
        )
    if manifest.chunker != expected.chunker:
        raise IndexMismatchError(
            f"{where} was built with chunker settings {manifest.chunker}, the running "
            f"settings are {expected.chunker}; {REBUILD_HINT}"
        )


class Generation:
    """The dense index, BM25, vectors and passage database of one generation.

    Every file is opened (or memory-mapped) in `open`, never later: a build deletes
    generations that are no longer current, and a reader that still holds one keeps
    working because open files and maps outlive their directory entries. Tests may also
    assemble one from parts held in memory (`path` is then only a label).
    """

    def __init__(self, path: Path, manifest: Manifest, dense: DenseBackend,
                 lexical: LexicalIndex, vectors: np.ndarray, sentence_vectors: np.ndarray,
                 db: PassageDB) -> None:
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
    def open(cls, path: Path, expected: Expected | None = None, *,
             checksums: bool | None = None) -> "Generation":
        """Load and check a generation; damage or mismatch is an error naming the file.

        `checksums`: verify every file's SHA-256 (None: only for generations up to
        CHECKSUM_ON_LOAD_BYTES; sizes are always checked).
        """
        manifest = read_manifest(path)
        if expected is not None:
            check_compatible(manifest, expected, path / MANIFEST)
        if checksums is None:
            checksums = total_bytes(manifest) <= CHECKSUM_ON_LOAD_BYTES
        check_files(path, manifest, checksums)
        for name in (layout.DENSE_FILE, layout.VECTORS_FILE, layout.SENTENCE_VECTORS_FILE,
                     layout.DB_FILE):
            if not (path / name).is_file():
                raise _damaged(path, name, "missing")
        dense = _open_dense(path, manifest)
        lexical = _open_lexical(path, dense.size)
        vectors, sentence_vectors = _open_vectors(path, manifest, dense)
        db = _open_db(path, manifest)
        return cls(path, manifest, dense, lexical, vectors, sentence_vectors, db)

    def close(self) -> None:
        self.db.close()


def _damaged(path: Path, name: str, why: object) -> IndexCorruptError:
    return IndexCorruptError(f"{path / name} is damaged ({why}); {REBUILD_HINT}")


def _open_dense(path: Path, manifest: Manifest) -> DenseBackend:
    try:
        backend = backend_class(manifest.dense.backend)
    except KeyError:
        raise _damaged(path, MANIFEST, f"unknown dense backend {manifest.dense.backend!r}") \
            from None
    try:
        dense = backend.load(path / layout.DENSE_FILE)
    except (RuntimeError, OSError, ValueError) as exc:
        # FAISS errors carry the C++ function signature; the reason is after "Error: ".
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        raise _damaged(path, layout.DENSE_FILE, reason.rsplit("Error: ", 1)[-1]) from None
    if dense.size != manifest.counts.passages or dense.dim != manifest.model.dim:
        raise _damaged(
            path, layout.DENSE_FILE,
            f"{dense.size} vectors of dim {dense.dim}, manifest says "
            f"{manifest.counts.passages} of dim {manifest.model.dim}",
        )
    return dense


def _open_lexical(path: Path, passages: int) -> LexicalIndex:
    try:
        lexical = LexicalIndex.load(path / layout.LEXICAL_DIR)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _damaged(path, layout.LEXICAL_DIR, exc) from None
    if lexical.size != passages:
        raise _damaged(path, layout.LEXICAL_DIR, f"{lexical.size} documents, not {passages}")
    return lexical


def _open_vectors(path: Path, manifest: Manifest, dense: DenseBackend
                  ) -> tuple[np.ndarray, np.ndarray]:
    wanted = {layout.VECTORS_FILE: (dense.size, dense.dim),
              layout.SENTENCE_VECTORS_FILE: (manifest.counts.sentences, dense.dim)}
    arrays = []
    for name, shape in wanted.items():
        try:
            rows = load_vectors(path / name)
        except (OSError, ValueError) as exc:
            raise _damaged(path, name, exc) from None
        if rows.shape != shape:
            raise _damaged(path, name, f"shape {rows.shape}, the manifest says {shape}")
        arrays.append(rows)
    return arrays[0], arrays[1]


def _open_db(path: Path, manifest: Manifest) -> PassageDB:
    counts = manifest.counts
    db = PassageDB(path / layout.DB_FILE)
    try:
        db.check()
        found = db.counts()
        wanted = (counts.articles, counts.passages, counts.sentences)
        if found != wanted:
            raise _damaged(
                path, layout.DB_FILE,
                f"it holds (articles, passages, sentences) {found}, the manifest says {wanted}",
            )
        db.check_rows(counts.passages, counts.sentences)
    except sqlite3.DatabaseError as exc:
        db.close()
        raise _damaged(path, layout.DB_FILE, exc) from None
    except IndexCorruptError:
        db.close()
        raise
    return db
