"""Corpus -> a new index generation, re-embedding only new and changed articles."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from qa import layout
from qa.chunk import (
    Chunk, ChunkSettings, chunk_article, embedding_text, sentence_embedding_text,
)
from qa.config import Settings
from qa.db import PassageRow, write_db
from qa.embed import Embedder
from qa.errors import CorpusError, QAError
from qa.generation import Expected, Generation, chunker_manifest, expected_for
from qa.ingest import Corpus, Skipped, load_corpus
from qa.lexical import LexicalIndex
from qa.store import DenseIndex, choose_factory, save_vectors
from qa.types import Article, Span

log = logging.getLogger(__name__)

# (stage, done, total): stages are "read", "embed", "write".
OnProgress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class BuildReport:
    """What a build did, for the summary line and for tests.

    added/changed/removed compare the corpus with the live generation's manifest; kept
    counts articles whose stored vectors were reused; reembedded counts unchanged
    articles embedded again (`--full`, or a live generation that could not be reused).
    """

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
    reembedded: int = 0
    embedded_sentences: int = 0
    previous: str | None = None
    # Nothing changed since the live generation: no new generation was written.
    up_to_date: bool = False

    def summary(self) -> str:
        again = f", {self.reembedded} re-embedded" if self.reembedded else ""
        head = f"{self.generation} is up to date" if self.up_to_date else self.generation
        return (
            f"{head}: {self.articles} articles, {self.passages} passages "
            f"({self.added} added, {self.changed} changed, {self.removed} removed, "
            f"{self.kept} kept{again}; {self.embedded_passages} passages embedded), "
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
    """Crash tests set VERBATIM_PAUSE_AT to stop a build at a known point and kill it.

    Stages: "embed" (passages embedded, sentences not yet), "write" (the temp folder
    holds the dense files only), "switch" (the new generation is in place, CURRENT is
    not switched yet).
    """
    if os.environ.get("VERBATIM_PAUSE_AT") == stage:
        print(f"VERBATIM_PAUSED {stage}", file=sys.stderr, flush=True)
        time.sleep(600)


@dataclass(frozen=True, slots=True)
class _Reusable:
    """The live generation's rows and vectors, checked, for articles that did not change."""

    name: str
    manifest: dict
    hashes: dict[str, str]
    rows: dict[str, list[PassageRow]]
    vectors: np.ndarray
    sentence_vectors: np.ndarray


def _live_manifest(index_dir: Path) -> tuple[str | None, dict]:
    """The live generation's name and manifest, or (name or None, {}) if unreadable."""
    name = layout.read_current(index_dir, required=False)
    if name is None:
        return None, {}
    try:
        return name, layout.read_manifest(index_dir / name)
    except QAError:
        return name, {}


def _previous(index_dir: Path, name: str | None, expected: Expected) -> _Reusable | None:
    """What the live generation can lend, or None if there is none or it does not fit.

    It is opened with every check a reader makes, so damage is never copied forward.
    """
    if name is None:
        return None
    try:
        generation = Generation.open(index_dir / name, expected)
    except QAError as exc:
        log.warning("not reusing the live index (%s); embedding every article", exc)
        return None
    try:
        return _Reusable(
            name, generation.manifest, generation.db.content_hashes(),
            generation.db.passage_rows(), generation.vectors, generation.sentence_vectors,
        )
    except (sqlite3.Error, OSError, ValueError) as exc:
        log.warning("not reusing the live index %s (%s); embedding every article", name, exc)
        return None
    finally:
        generation.close()


def _corpus(settings: Settings) -> Corpus:
    corpus = load_corpus(settings.corpus_dir)
    if not corpus.articles:
        detail = "; ".join(f"{s.source}: {s.reason}" for s in corpus.skipped[:5])
        raise CorpusError(
            f"no readable articles in {settings.corpus_dir}"
            + (f" (skipped {detail})" if detail else "")
            + "; add .txt, .md, .html or .jsonl files"
        )
    return corpus


@dataclass(frozen=True, slots=True)
class _Plan:
    """Which articles keep their vectors and which are embedded, against the live index."""

    hashes: dict[str, str]
    old_hashes: dict[str, str]
    kept_ids: frozenset[str]
    fresh: tuple[Article, ...]

    @property
    def removed(self) -> int:
        return len(set(self.old_hashes) - set(self.hashes))


def _plan(corpus: Corpus, previous: _Reusable | None, live_manifest: dict) -> _Plan:
    hashes = {a.id: content_hash(a) for a in corpus.articles}
    # Reuse only what the checked live generation holds; still compare with its
    # manifest when it cannot be reused, so the summary says what changed.
    reusable = previous.hashes if previous else {}
    old_hashes = previous.hashes if previous else dict(live_manifest.get("articles", {}))
    kept = frozenset(aid for aid, h in hashes.items() if reusable.get(aid) == h)
    fresh = tuple(a for a in corpus.articles if a.id not in kept)
    return _Plan(hashes, old_hashes, kept, fresh)


def _embed(
    embedder: Embedder, fresh: Sequence[Article], chunking: ChunkSettings, progress: OnProgress
) -> tuple[dict[str, list[Chunk]], np.ndarray, np.ndarray, int]:
    """Chunks of the fresh articles, their passage and sentence vectors, texts embedded."""
    chunks = {a.id: chunk_article(a, embedder.count_tokens, chunking) for a in fresh}
    passage_texts = [embedding_text(c, a.text) for a in fresh for c in chunks[a.id]]
    sentence_texts = [
        sentence_embedding_text(c, a.text, s) for a in fresh for c in chunks[a.id]
        for s in c.sentences
    ]
    # Embed each distinct text once: overlapping passages share sentences, and a
    # one-sentence passage reads exactly like its sentence.
    passage_row = {text: i for i, text in enumerate(passage_texts)}
    unique = [t for t in dict.fromkeys(sentence_texts) if t not in passage_row]
    total = len(passage_texts) + len(unique)
    vectors = embedder.encode(passage_texts, lambda done, _: progress("embed", done, total))
    _pause_for_tests("embed")
    unique_vectors = embedder.encode(
        unique, lambda done, _: progress("embed", len(passage_texts) + done, total)
    )
    pool = np.concatenate([vectors, unique_vectors]) if len(unique) else vectors
    row = {**{t: len(passage_texts) + i for i, t in enumerate(unique)}, **passage_row}
    sentence_vectors = pool[np.asarray([row[t] for t in sentence_texts], dtype=np.int64)]
    return chunks, vectors, sentence_vectors, len(unique)


def _assemble(
    corpus: Corpus, plan: _Plan, previous: _Reusable | None,
    chunks: dict[str, list[Chunk]], fresh_vectors: np.ndarray, fresh_sentences: np.ndarray,
) -> tuple[list[PassageRow], np.ndarray, np.ndarray]:
    """Every article's rows in corpus order with dense ids 0..n-1, and their vectors."""
    rows: list[PassageRow] = []
    vector_parts: list[np.ndarray] = []
    sentence_parts: list[np.ndarray] = []
    next_fresh = next_fresh_sentence = 0
    for article in corpus.articles:
        if article.id in plan.kept_ids:
            old_rows = previous.rows.get(article.id, [])
            vector_parts.append(previous.vectors[[r.id for r in old_rows]])
            sentence_ids = [r.first_sentence + i for r in old_rows for i in range(len(r.sentences))]
            sentence_parts.append(previous.sentence_vectors[sentence_ids])
            new = [(r.start, r.end, r.context, r.sentences) for r in old_rows]
        else:
            article_chunks = chunks[article.id]
            count = sum(len(c.sentences) for c in article_chunks)
            vector_parts.append(fresh_vectors[next_fresh:next_fresh + len(article_chunks)])
            sentence_parts.append(
                fresh_sentences[next_fresh_sentence:next_fresh_sentence + count]
            )
            next_fresh += len(article_chunks)
            next_fresh_sentence += count
            new = [(c.start, c.end, c.context, c.sentences) for c in article_chunks]
        for start, end, context, sentences in new:
            first = rows[-1].first_sentence + len(rows[-1].sentences) if rows else 0
            rows.append(PassageRow(len(rows), article.id, start, end, context, first,
                                   tuple(Span(s.start, s.end) for s in sentences)))
    vectors = np.concatenate(vector_parts).astype(np.float32)
    sentence_vectors = np.concatenate(sentence_parts).astype(np.float16)
    return rows, vectors, sentence_vectors


def _corpus_dir(settings: Settings) -> str:
    return str(settings.corpus_dir.resolve())


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
    generation stays live and loadable until the new one is completely on disk. When
    nothing changed, no generation is written and the report says `up_to_date`.

    Raises:
        BuildLockedError: another build holds the lock for longer than `wait_seconds`.
        CorpusError: the corpus folder is missing or has no readable article.
    """
    started = time.perf_counter()
    progress = on_progress or (lambda stage, done, total: None)
    index_dir = settings.index_dir
    with layout.build_lock(index_dir, wait_seconds):
        # We hold the lock, so any temp folder is a crashed build's: free its space first.
        for leftover in layout.remove_temps(index_dir):
            log.info("removed %s, left by a crashed build", leftover)
        corpus = _corpus(settings)
        chunking = chunk_settings_for(settings, embedder)
        live, live_manifest = _live_manifest(index_dir)
        previous = None if full else _previous(index_dir, live, expected_for(embedder, chunking))
        plan = _plan(corpus, previous, live_manifest)
        progress("read", len(corpus.articles), len(corpus.articles))

        def report(name: str, passages: int, embedded: tuple[int, int] = (0, 0),
                   up_to_date: bool = False, before: str | None = live) -> BuildReport:
            old, new = plan.old_hashes, plan.hashes
            return BuildReport(
                generation=name, articles=len(corpus.articles), passages=passages,
                added=sum(1 for a in plan.fresh if a.id not in old),
                changed=sum(1 for a in plan.fresh if a.id in old and old[a.id] != new[a.id]),
                removed=plan.removed, kept=len(plan.kept_ids),
                reembedded=sum(1 for a in plan.fresh if old.get(a.id) == new[a.id]),
                embedded_passages=embedded[0], embedded_sentences=embedded[1],
                skipped=corpus.skipped, seconds=time.perf_counter() - started,
                previous=before, up_to_date=up_to_date,
            )

        if (previous is not None and not plan.fresh and not plan.removed
                and previous.manifest.get("corpus_dir") == _corpus_dir(settings)
                and (settings.index_factory is None
                     or previous.manifest["faiss"]["factory"] == settings.index_factory)):
            # Nothing to build: the live generation stays, and so does the one before it.
            before = previous.manifest.get("previous")
            layout.remove_stale(index_dir, keep=(live, before))
            return report(live, previous.manifest["counts"]["passages"], up_to_date=True,
                          before=before)

        chunks, fresh_vectors, fresh_sentences, unique_sentences = _embed(
            embedder, plan.fresh, chunking, progress
        )
        rows, vectors, sentence_vectors = _assemble(
            corpus, plan, previous, chunks, fresh_vectors, fresh_sentences
        )

        # Write the new generation beside the live one, then switch.
        name = layout.next_generation(index_dir)
        temp = layout.temp_generation(index_dir, name)
        try:
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
            write_db(temp / layout.DB_FILE,
                     ((a, plan.hashes[a.id]) for a in corpus.articles), rows)
            progress("write", 3, 4)
            done = report(name, len(rows), (len(fresh_vectors), unique_sentences))
            layout.write_manifest(temp, {
                "format_version": layout.FORMAT_VERSION,
                "generation": name,
                "previous": live,
                "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "build_seconds": round(time.perf_counter() - started, 2),
                "corpus_dir": _corpus_dir(settings),
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
                "build": {
                    "full": full, "added": done.added, "changed": done.changed,
                    "removed": done.removed, "kept": done.kept, "reembedded": done.reembedded,
                    "embedded_passages": done.embedded_passages,
                    "embedded_sentences": done.embedded_sentences,
                },
                "files": layout.file_sizes(temp),
                "articles": plan.hashes,
            })
            layout.publish(temp, index_dir, name)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)  # e.g. a full disk: leave no half folder
            raise
        _pause_for_tests("switch")
        layout.switch_current(index_dir, name)
        layout.remove_stale(index_dir, keep=(name, live))
        progress("write", 4, 4)
    return report(name, len(rows), (len(fresh_vectors), unique_sentences))
