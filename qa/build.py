"""Corpus -> a new index generation, re-embedding only new and changed articles."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from qa import layout
from qa.chunk import ChunkSettings, chunk_article, embedding_text
from qa.config import Settings
from qa.db import PassageDB, PassageRow, write_db
from qa.embed import Embedder
from qa.errors import CorpusError, QAError
from qa.generation import Expected, check_compatible, chunker_manifest, expected_for
from qa.ingest import Skipped, load_corpus
from qa.lexical import LexicalIndex
from qa.store import DenseIndex, choose_factory, load_vectors, save_vectors
from qa.types import Article, Span

log = logging.getLogger(__name__)

# (stage, done, total): stages are "read", "embed", "write".
OnProgress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class BuildReport:
    """What a build did, for the summary line and for tests."""

    generation: str
    articles: int
    passages: int
    added: int
    changed: int
    removed: int
    kept: int
    embedded_passages: int
    skipped: tuple[Skipped, ...]
    seconds: float

    def summary(self) -> str:
        return (
            f"{self.generation}: {self.articles} articles, {self.passages} passages "
            f"({self.added} added, {self.changed} changed, {self.removed} removed, "
            f"{self.kept} kept; {self.embedded_passages} passages embedded), "
            f"{len(self.skipped)} files skipped, {self.seconds:.1f} s"
        )


def content_hash(article: Article) -> str:
    """Changes whenever anything that is embedded or shown for the article changes."""
    payload = json.dumps([article.title, article.text, article.date, article.url, article.source])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def chunk_settings_for(settings: Settings, embedder: Embedder) -> ChunkSettings:
    """Passages never exceed what the model reads, whatever the settings ask for."""
    return ChunkSettings(
        max_tokens=min(settings.chunk_tokens, embedder.max_tokens),
        overlap_sentences=settings.overlap_sentences,
    )


def _pause_for_tests(stage: str) -> None:
    """Crash tests set VERBATIM_PAUSE_AT to stop a build at a known point and kill it."""
    if os.environ.get("VERBATIM_PAUSE_AT") == stage:
        print(f"VERBATIM_PAUSED {stage}", file=sys.stderr, flush=True)
        time.sleep(600)


@dataclass(frozen=True, slots=True)
class _Reusable:
    """The previous generation's rows for unchanged articles."""

    hashes: dict[str, str]
    rows: dict[str, list[PassageRow]]
    vectors: np.ndarray
    sentence_vectors: np.ndarray


def _previous(index_dir: Path, expected: Expected) -> _Reusable | None:
    """What the live generation can lend, or None if there is none or it does not fit."""
    try:
        name = layout.read_current(index_dir, required=False)
        if name is None:
            return None
        path = index_dir / name
        check_compatible(layout.read_manifest(path), expected, path)
        db = PassageDB(path / layout.DB_FILE)
        try:
            hashes, rows = db.content_hashes(), db.passage_rows()
        finally:
            db.close()
        vectors = load_vectors(path / layout.VECTORS_FILE)
        sentence_vectors = load_vectors(path / layout.SENTENCE_VECTORS_FILE)
        return _Reusable(hashes, rows, vectors, sentence_vectors)
    except (QAError, OSError, ValueError, sqlite3.Error) as exc:
        log.warning("not reusing the previous index (%s); embedding everything", exc)
        return None


def build_index(
    settings: Settings,
    embedder: Embedder,
    *,
    full: bool = False,
    on_progress: OnProgress | None = None,
    wait_seconds: float = 0,
) -> BuildReport:
    """Build a new generation from `settings.corpus_dir` and make it live.

    Unchanged articles keep their vectors; `full=True` re-embeds everything. The old
    generation stays live and loadable until the new one is completely on disk.
    """
    started = time.perf_counter()
    progress = on_progress or (lambda stage, done, total: None)
    index_dir = settings.index_dir
    with layout.build_lock(index_dir, wait_seconds):
        corpus = load_corpus(settings.corpus_dir)
        if not corpus.articles:
            detail = "; ".join(f"{s.source}: {s.reason}" for s in corpus.skipped[:5])
            raise CorpusError(
                f"no readable articles in {settings.corpus_dir}"
                + (f" (skipped {detail})" if detail else "")
                + "; add .txt, .md, .html or .jsonl files"
            )
        chunking = chunk_settings_for(settings, embedder)
        expected = expected_for(embedder, chunking)
        previous = None if full else _previous(index_dir, expected)
        old_hashes = previous.hashes if previous else {}

        # Plan: which articles keep their vectors, which are embedded now.
        hashes = {a.id: content_hash(a) for a in corpus.articles}
        kept_ids = {aid for aid, h in hashes.items() if old_hashes.get(aid) == h}
        fresh = [a for a in corpus.articles if a.id not in kept_ids]
        progress("read", len(corpus.articles), len(corpus.articles))

        fresh_chunks = {a.id: chunk_article(a, embedder.count_tokens, chunking) for a in fresh}
        passage_texts = [
            embedding_text(c, a.text) for a in fresh for c in fresh_chunks[a.id]
        ]
        sentence_texts = [
            a.text[s.start:s.end] for a in fresh for c in fresh_chunks[a.id] for s in c.sentences
        ]
        total = len(passage_texts) + len(sentence_texts)
        _pause_for_tests("embed")
        fresh_vectors = embedder.encode(
            passage_texts, lambda done, _: progress("embed", done, total)
        )
        fresh_sentence_vectors = embedder.encode(
            sentence_texts, lambda done, _: progress("embed", len(passage_texts) + done, total)
        )

        # Assemble every article's rows, in corpus order, with fresh dense ids.
        rows: list[PassageRow] = []
        vector_parts: list[np.ndarray] = []
        sentence_parts: list[np.ndarray] = []
        next_fresh = next_fresh_sentence = 0
        for article in corpus.articles:
            if article.id in kept_ids:
                old_rows = previous.rows.get(article.id, [])
                vector_parts.append(previous.vectors[[r.id for r in old_rows]])
                sentence_ids = [r.first_sentence + i for r in old_rows for i in
                                range(len(r.sentences))]
                sentence_parts.append(previous.sentence_vectors[sentence_ids])
                new = [(r.start, r.end, r.context, r.sentences) for r in old_rows]
            else:
                chunks = fresh_chunks[article.id]
                count = sum(len(c.sentences) for c in chunks)
                vector_parts.append(fresh_vectors[next_fresh:next_fresh + len(chunks)])
                sentence_parts.append(
                    fresh_sentence_vectors[next_fresh_sentence:next_fresh_sentence + count]
                )
                next_fresh += len(chunks)
                next_fresh_sentence += count
                new = [(c.start, c.end, c.context, c.sentences) for c in chunks]
            for start, end, context, sentences in new:
                first = rows[-1].first_sentence + len(rows[-1].sentences) if rows else 0
                rows.append(PassageRow(len(rows), article.id, start, end, context, first,
                                       tuple(Span(s.start, s.end) for s in sentences)))
        vectors = np.concatenate(vector_parts).astype(np.float32)
        sentence_vectors = np.concatenate(sentence_parts).astype(np.float16)

        # Write the new generation beside the live one, then switch.
        name = layout.next_generation(index_dir)
        temp = layout.temp_generation(index_dir, name)
        progress("write", 0, 4)
        factory = settings.index_factory or choose_factory(len(vectors))
        DenseIndex.build(vectors, factory).save(temp / layout.DENSE_FILE)
        save_vectors(temp / layout.VECTORS_FILE, vectors)
        save_vectors(temp / layout.SENTENCE_VECTORS_FILE, sentence_vectors)
        progress("write", 1, 4)
        _pause_for_tests("write")
        texts = {a.id: a.text for a in corpus.articles}
        LexicalIndex.build(
            [texts[r.article_id][r.start:r.end] for r in rows]
        ).save(temp / layout.LEXICAL_DIR)
        progress("write", 2, 4)
        write_db(temp / layout.DB_FILE, ((a, hashes[a.id]) for a in corpus.articles), rows)
        progress("write", 3, 4)
        seconds = time.perf_counter() - started
        removed = len(set(old_hashes) - set(hashes))
        layout.write_manifest(temp, {
            "format_version": layout.FORMAT_VERSION,
            "generation": name,
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "build_seconds": round(seconds, 2),
            "corpus_dir": str(settings.corpus_dir),
            "model": {
                "id": embedder.model_id, "fingerprint": embedder.fingerprint,
                "dim": embedder.dim, "normalized": True, "metric": "inner_product",
            },
            "chunker": chunker_manifest(chunking),
            "faiss": {"factory": factory},
            "counts": {
                "articles": len(corpus.articles), "passages": len(rows),
                "sentences": int(sentence_vectors.shape[0]),
            },
            "articles": hashes,
        })
        layout.fsync_tree(temp)
        os.replace(temp, index_dir / name)
        layout.fsync_dir(index_dir)
        _pause_for_tests("switch")
        layout.switch_current(index_dir, name)
        layout.remove_stale(index_dir, keep=name)
        progress("write", 4, 4)

    return BuildReport(
        generation=name,
        articles=len(corpus.articles),
        passages=len(rows),
        added=sum(1 for a in fresh if a.id not in old_hashes),
        changed=sum(1 for a in fresh if a.id in old_hashes),
        removed=removed,
        kept=len(kept_ids),
        embedded_passages=len(passage_texts),
        skipped=corpus.skipped,
        seconds=time.perf_counter() - started,
    )
