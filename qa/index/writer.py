"""The index writer: passage rows and their vectors -> a new generation, made live at once.

It takes what the builder (qa.build) assembled: the articles with their content hashes,
the passage rows numbered 0..n-1 in corpus order, float32 passage vectors and float16
sentence vectors. It knows nothing of corpus files, chunking or models; the manifest
records what they were. `layout.new_generation` owns fsync, the atomic rename, the
CURRENT switch and the cleanup. It also hands the builder what the live generation can
lend to the next one (`reusable_generation`): the checked rows and vectors of articles
that did not change.
"""
from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from qa.errors import QAError
from qa.index import layout
from qa.index.db import PassageRow, write_db
from qa.index.dense import backend_class
from qa.index.generation import Expected, Generation
from qa.index.lexical import LexicalIndex
from qa.index.manifest import (
    FORMAT_VERSION, BuildStats, ChunkerInfo, Counts, DenseInfo, Manifest, ModelInfo,
    read_manifest,
)
from qa.index.vectors import save_vectors
from qa.types import Article

log = logging.getLogger(__name__)

# (stage, done, total). The writer reports "write" in WRITE_STEPS steps: dense files,
# BM25, passages, published (CURRENT not yet switched), live.
OnProgress = Callable[[str, int, int], None]
WRITE_STEPS = 5


@dataclass(frozen=True, slots=True)
class Reusable:
    """The live generation's rows and vectors, checked, for articles that did not change."""

    name: str
    manifest: Manifest
    hashes: dict[str, str]
    rows: dict[str, list[PassageRow]]
    vectors: np.ndarray
    sentence_vectors: np.ndarray


@dataclass(frozen=True, slots=True)
class Assembled:
    """Every article's passage rows (ids 0..n-1 in corpus order) and their vectors."""

    rows: list[PassageRow]
    vectors: np.ndarray
    sentence_vectors: np.ndarray


def write_files(folder: Path, articles: Sequence[Article], hashes: dict[str, str],
                assembled: Assembled, dense: DenseInfo, progress: OnProgress) -> None:
    """A generation's data files (everything but the manifest) into `folder`."""
    backend_class(dense.backend).build(assembled.vectors, dense.factory).save(
        folder / layout.DENSE_FILE
    )
    save_vectors(folder / layout.VECTORS_FILE, assembled.vectors)
    save_vectors(folder / layout.SENTENCE_VECTORS_FILE, assembled.sentence_vectors)
    progress("write", 1, WRITE_STEPS)
    texts = {a.id: a.text for a in articles}
    LexicalIndex.build(
        [texts[r.article_id][r.start:r.end] for r in assembled.rows]
    ).save(folder / layout.LEXICAL_DIR)
    progress("write", 2, WRITE_STEPS)
    write_db(folder / layout.DB_FILE, ((a, hashes[a.id]) for a in articles), assembled.rows)
    progress("write", 3, WRITE_STEPS)


def write_generation(
    index_dir: Path, articles: Sequence[Article], hashes: dict[str, str],
    assembled: Assembled, *, dense: DenseInfo, model: ModelInfo, chunker: ChunkerInfo,
    corpus_dir: str, build: BuildStats, started: float, progress: OnProgress,
) -> tuple[str, str | None]:
    """Write a complete generation into `index_dir` and make it live; (its name, the
    generation it replaced). `started` (time.perf_counter()) dates the build's duration.
    """
    progress("write", 0, WRITE_STEPS)
    with layout.new_generation(
        index_dir, on_published=lambda: progress("write", 4, WRITE_STEPS)
    ) as gen:
        write_files(gen.path, articles, hashes, assembled, dense, progress)
        gen.commit(Manifest(
            format_version=FORMAT_VERSION,
            generation=gen.name,
            previous=gen.previous,
            built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            build_seconds=round(time.perf_counter() - started, 2),
            corpus_dir=corpus_dir,
            model=model,
            chunker=chunker,
            dense=dense,
            counts=Counts(articles=len(articles), passages=len(assembled.rows),
                          sentences=len(assembled.sentence_vectors)),
            build=build,
            files={},  # filled in by commit
            articles=hashes,
        ))
    progress("write", WRITE_STEPS, WRITE_STEPS)
    return gen.name, gen.previous


def live_manifest(index_dir: Path) -> tuple[str | None, Manifest | None]:
    """The live generation's name and manifest (None if it has none or it is unreadable)."""
    name = layout.read_current(index_dir, required=False)
    if name is None:
        return None, None
    try:
        return name, read_manifest(index_dir / name)
    except QAError:
        return name, None


def reusable_generation(index_dir: Path, name: str | None, expected: Expected,
              precision: str, sentence_vectors: str = "separate",
              passage_vectors: str = "encoded") -> Reusable | None:
    """What the live generation can lend, or None if there is none or it does not fit.

    It is opened with every check a reader makes, checksums included, so damage is never
    copied forward. Vectors of another precision are not mixed into a generation (their
    cosines agree to 0.99998, but a manifest then says what every vector is), nor sentence
    vectors made the other way (separate vs late: they score differently), nor passage
    vectors (encoded vs pooled).
    """
    if name is None:
        return None
    try:
        generation = Generation.open(index_dir / name, expected, checksums=True)
    except QAError as exc:
        log.warning("not reusing the live index (%s); embedding every article", exc)
        return None
    if generation.manifest.model.precision != precision:
        log.info("the live index holds %s vectors, this build makes %s: embedding every "
                 "article", generation.manifest.model.precision, precision)
        generation.close()
        return None
    if generation.manifest.model.sentence_vectors != sentence_vectors:
        log.info("the live index holds %s sentence vectors, this build makes %s: embedding "
                 "every article", generation.manifest.model.sentence_vectors, sentence_vectors)
        generation.close()
        return None
    if generation.manifest.model.passage_vectors != passage_vectors:
        log.info("the live index holds %s passage vectors, this build makes %s: embedding "
                 "every article", generation.manifest.model.passage_vectors, passage_vectors)
        generation.close()
        return None
    try:
        return Reusable(
            name, generation.manifest, generation.db.content_hashes(),
            generation.db.passage_rows(), generation.vectors, generation.sentence_vectors,
        )
    except (sqlite3.Error, OSError, ValueError, KeyError) as exc:
        log.warning("not reusing the live index %s (%s); embedding every article", name, exc)
        return None
    finally:
        generation.close()
