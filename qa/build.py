"""The pipeline: corpus -> a new index generation, re-embedding only new and changed articles.

Reads the corpus (qa.text.ingest), plans against the live generation, chunks and embeds
what is new (qa.text.chunk, an Embedder), assembles every passage row and vector, and
hands them to the writer (qa.index.writer), which publishes the generation.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.config import ChunkSettings, Settings, chunk_settings_for
from qa.embed import Embedder, ExportsQuestionModel, LateEmbedder, model_identity, workers_kept
from qa.errors import ConfigError, CorpusError, IndexWriteError
from qa.index import layout
from qa.index.db import PassageRow
from qa.index.dense import DEFAULT_BACKEND, choose_factory
from qa.index.generation import chunker_info, expected_for
from qa.index.manifest import BuildStats, DenseInfo, Manifest, ModelInfo, embedded_phrase
from qa.index.writer import (
    Assembled, OnProgress, Reusable, live_manifest, reusable_generation, write_generation,
)
from qa.text.chunk import Chunk, chunk_article, embedding_text, sentence_embedding_text
from qa.text.ingest import Corpus, Skipped, load_corpus, skipped_phrase
from qa.types import Article, Span

log = logging.getLogger(__name__)

# Progress (stage, done, total): "read" (articles read), "embed" (texts embedded), then the
# writer's "write" steps (qa.index.writer.WRITE_STEPS).


@dataclass(frozen=True, slots=True)
class BuildReport:
    """What a build did, for the summary line, the page and the manifest.

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
    # "pooled": the new passages' vectors were averaged from their sentences' vectors, so
    # only the sentences went through the model.
    passage_vectors: str = "encoded"

    @classmethod
    def of(cls, generation: str, corpus: Corpus, passages: int, stats: BuildStats,
           started: float, previous: str | None, *, passage_vectors: str,
           up_to_date: bool = False) -> "BuildReport":
        """The report of a build that started at `started` (time.perf_counter())."""
        return cls(
            generation=generation, articles=len(corpus.articles), passages=passages,
            added=stats.added, changed=stats.changed, removed=stats.removed, kept=stats.kept,
            reembedded=stats.reembedded, embedded_passages=stats.embedded_passages,
            embedded_sentences=stats.embedded_sentences, skipped=corpus.skipped,
            seconds=time.perf_counter() - started, previous=previous, up_to_date=up_to_date,
            passage_vectors=passage_vectors,
        )

    @property
    def texts_embedded(self) -> int:
        """Texts that went through the model (passages too unless their vectors were pooled)."""
        passages = self.embedded_passages if self.passage_vectors == "encoded" else 0
        return passages + self.embedded_sentences

    def summary(self) -> str:
        again = f", {self.reembedded} re-embedded" if self.reembedded else ""
        head = f"{self.generation} is up to date" if self.up_to_date else self.generation
        embedded = embedded_phrase(self.embedded_passages, self.embedded_sentences,
                                   self.passage_vectors)
        return (
            f"{head}: {self.articles} articles, {self.passages} passages "
            f"({self.added} added, {self.changed} changed, {self.removed} removed, "
            f"{self.kept} kept{again}; {embedded}), "
            f"{skipped_phrase(self.skipped)}, {self.seconds:.1f} s"
        )


def content_hash(article: Article) -> str:
    """Changes whenever anything that is embedded or shown for the article changes."""
    payload = json.dumps([article.title, article.text, article.date, article.url, article.source])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Embedded:
    """Fresh articles cut into passages, with their passage and sentence vectors (in
    article order, then passage order, then sentence order)."""

    chunks: dict[str, list[Chunk]]
    vectors: np.ndarray
    sentence_vectors: np.ndarray
    # Sentences embedded on their own (the rest reused a passage vector or a twin sentence).
    unique_sentences: int


def embed_articles(
    embedder: Embedder, articles: Sequence[Article], chunking: ChunkSettings,
    progress: OnProgress = lambda stage, done, total: None,
    sentence_vectors: str = "separate", passage_vectors: str = "encoded",
) -> Embedded:
    """Chunk `articles` and embed their passages and sentences.

    `sentence_vectors`: "separate" embeds each distinct sentence on its own; "late" pools
    them from the passages' forward pass (qa.embed.late; the embedder must be a LateEmbedder).
    `passage_vectors`: "encoded" embeds each passage too; "pooled" makes a passage's vector
    from its sentences' (`pool_passages`), so only the sentences are embedded.
    """
    chunks = {a.id: chunk_article(a, embedder.count_tokens, chunking) for a in articles}
    passage_texts = [embedding_text(c, a.text) for a in articles for c in chunks[a.id]]
    if sentence_vectors == "late":
        return _embed_late(embedder, articles, chunks, passage_texts, progress)
    sentence_texts = [
        sentence_embedding_text(c, a.text, s) for a in articles for c in chunks[a.id]
        for s in c.sentences
    ]
    if passage_vectors == "pooled":
        return _embed_pooled(embedder, chunks, sentence_texts, progress)
    # Embed each distinct text once: overlapping passages share sentences, and a
    # one-sentence passage reads exactly like its sentence.
    passage_row = {text: i for i, text in enumerate(passage_texts)}
    unique = [t for t in dict.fromkeys(sentence_texts) if t not in passage_row]
    total = len(passage_texts) + len(unique)
    vectors = embedder.encode(passage_texts, lambda done, _: progress("embed", done, total))
    unique_vectors = embedder.encode(
        unique, lambda done, _: progress("embed", len(passage_texts) + done, total)
    )
    pool = np.concatenate([vectors, unique_vectors]) if len(unique) else vectors
    row = {**{t: len(passage_texts) + i for i, t in enumerate(unique)}, **passage_row}
    sentence_vectors = pool[np.asarray([row[t] for t in sentence_texts], dtype=np.int64)]
    return Embedded(chunks, vectors, sentence_vectors, len(unique))


def pool_passages(sentence_vectors: np.ndarray, weights: np.ndarray,
                  sentences_per_passage: Sequence[int]) -> np.ndarray:
    """One unit vector per passage: the mean of its consecutive sentences' vectors,
    weighted by their word pieces (what mean pooling over the passage's tokens weighs them
    by), normalised. `sentence_vectors` holds every passage's sentences in order."""
    counts = np.asarray(sentences_per_passage, dtype=np.int64)
    if not len(counts):
        return np.zeros((0, sentence_vectors.shape[1]), np.float32)
    weighted = sentence_vectors.astype(np.float32) * np.asarray(weights, np.float32)[:, None]
    sums = np.add.reduceat(weighted, np.cumsum(counts) - counts, axis=0)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return sums / np.maximum(norms, 1e-12)


def _embed_pooled(embedder: Embedder, chunks: dict[str, list[Chunk]],
                  sentence_texts: list[str], progress: OnProgress) -> Embedded:
    """Sentence vectors embedded, each distinct sentence once; passage vectors pooled."""
    unique = list(dict.fromkeys(sentence_texts))
    unique_vectors = embedder.encode(unique, lambda done, _: progress("embed", done, len(unique)))
    row = {t: i for i, t in enumerate(unique)}
    sentence_vectors = unique_vectors[np.asarray([row[t] for t in sentence_texts], np.int64)]
    passages = [c for article_chunks in chunks.values() for c in article_chunks]
    # A "context\nsentence" text has the word pieces of both (the newline adds none).
    weights = [c.context_tokens + n for c in passages for n in c.sentence_tokens]
    counts = [len(c.sentences) for c in passages]
    vectors = pool_passages(sentence_vectors, weights, counts).astype(unique_vectors.dtype)
    return Embedded(chunks, vectors, sentence_vectors, len(unique))


def _embed_late(embedder: Embedder, articles: Sequence[Article],
                chunks: dict[str, list[Chunk]], passage_texts: list[str],
                progress: OnProgress) -> Embedded:
    """Passage and sentence vectors from one forward pass per passage (late chunking)."""
    from qa.embed.late import sentence_spans

    if not isinstance(embedder, LateEmbedder):
        raise ConfigError(
            f"sentence_vectors='late' needs an embedder with encode_late; "
            f"{type(embedder).__name__} has none (build with sentence_vectors='separate')"
        )
    spans = [sentence_spans(c.context, c.start, [(s.start, s.end) for s in c.sentences])
             for a in articles for c in chunks[a.id]]
    total = len(passage_texts)
    vectors, sentence_vectors = embedder.encode_late(
        passage_texts, spans, lambda done, _: progress("embed", done, total)
    )
    return Embedded(chunks, vectors, sentence_vectors, 0)


def assemble(articles: Sequence[Article], kept_ids: frozenset[str],
             previous: Reusable | None, fresh: Embedded) -> Assembled:
    """Kept articles' stored rows and vectors, fresh ones' new rows, renumbered in order."""
    rows: list[PassageRow] = []
    vector_parts: list[np.ndarray] = []
    sentence_parts: list[np.ndarray] = []
    next_fresh = next_fresh_sentence = 0
    for article in articles:
        if article.id in kept_ids:
            old_rows = previous.rows.get(article.id, [])
            vector_parts.append(previous.vectors[[r.id for r in old_rows]])
            sentence_ids = [r.first_sentence + i for r in old_rows for i in range(len(r.sentences))]
            sentence_parts.append(previous.sentence_vectors[sentence_ids])
            new = [(r.start, r.end, r.context, r.sentences) for r in old_rows]
        else:
            article_chunks = fresh.chunks[article.id]
            count = sum(len(c.sentences) for c in article_chunks)
            vector_parts.append(fresh.vectors[next_fresh:next_fresh + len(article_chunks)])
            sentence_parts.append(
                fresh.sentence_vectors[next_fresh_sentence:next_fresh_sentence + count]
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
    return Assembled(rows, vectors, sentence_vectors)


def _corpus(settings: Settings) -> Corpus:
    corpus = load_corpus(settings.corpus_dir)
    if not corpus.articles:
        detail = "; ".join(f"{s.source}: {s.message}" for s in corpus.skipped[:5])
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

    def stats(self, full: bool, embedded: Embedded | None) -> BuildStats:
        old, new = self.old_hashes, self.hashes
        return BuildStats(
            full=full,
            added=sum(1 for a in self.fresh if a.id not in old),
            changed=sum(1 for a in self.fresh if a.id in old and old[a.id] != new[a.id]),
            removed=self.removed,
            kept=len(self.kept_ids),
            reembedded=sum(1 for a in self.fresh if old.get(a.id) == new[a.id]),
            embedded_passages=0 if embedded is None else len(embedded.vectors),
            embedded_sentences=0 if embedded is None else embedded.unique_sentences,
        )


def _plan(corpus: Corpus, previous: Reusable | None, live: Manifest | None) -> _Plan:
    hashes = {a.id: content_hash(a) for a in corpus.articles}
    # Reuse only what the checked live generation holds; still compare with its
    # manifest when it cannot be reused, so the summary says what changed.
    reusable = previous.hashes if previous else {}
    old_hashes = previous.hashes if previous else dict(live.articles if live else {})
    kept = frozenset(aid for aid, h in hashes.items() if reusable.get(aid) == h)
    fresh = tuple(a for a in corpus.articles if a.id not in kept)
    return _Plan(hashes, old_hashes, kept, fresh)


def _up_to_date(plan: _Plan, previous: Reusable | None, settings: Settings) -> bool:
    return (previous is not None and not plan.fresh and not plan.removed
            and previous.manifest.corpus_dir == _corpus_dir(settings)
            and settings.index_factory in (None, previous.manifest.dense.factory))


def _model_info(embedder: Embedder, sentence_vectors: str, passage_vectors: str) -> ModelInfo:
    return ModelInfo(id=embedder.model_id, fingerprint=embedder.fingerprint, dim=embedder.dim,
                     precision=embedder.precision, sentence_vectors=sentence_vectors,
                     passage_vectors=passage_vectors)


def passage_vectors_for(settings: Settings, embedder: Embedder, live: Manifest | None) -> str:
    """What Settings.passage_vectors "auto" means for this build: the live index's own
    where the build could add to it (same model, precision and sentence vectors), so an
    index built before pooling is not re-embedded whole; else "pooled" ("encoded" with late
    sentence vectors, which come from the passage's own pass)."""
    if settings.passage_vectors != "auto":
        return settings.passage_vectors
    if settings.sentence_vectors == "late":
        return "encoded"
    if live is not None and (live.model.fingerprint, live.model.precision,
                             live.model.sentence_vectors) == (
            embedder.fingerprint, embedder.precision, settings.sentence_vectors):
        return live.model.passage_vectors
    return "pooled"


def build_settings(settings: Settings) -> Settings:
    """`settings` for loading the embedder a build uses: precision "auto" becomes the live
    index's own where the build adds to it (same model and sentence vectors), so an index
    built before "auto" meant int8 is not re-embedded whole."""
    if settings.precision != "auto":
        return settings
    _, manifest = live_manifest(settings.index_dir)
    if manifest is None or manifest.model.sentence_vectors != settings.sentence_vectors:
        return settings
    if manifest.model.fingerprint != model_identity(settings.model)[1]:
        return settings
    return settings.replace(precision=manifest.model.precision)


def _export_question_model(embedder: Embedder, index_dir: Path) -> None:
    """Export the model for answering without torch (qa.embed.onnx; once per model). It
    only speeds up answering, so a failure is a warning and questions use torch."""
    if not isinstance(embedder, ExportsQuestionModel):
        return
    try:
        embedder.export_question_model(index_dir)
    except Exception as exc:  # torch's exporter raises many kinds; the index is fine
        log.warning("could not export the model for answering without torch (%s); questions "
                    "will be embedded with torch", exc)


def _corpus_dir(settings: Settings) -> str:
    return str(settings.corpus_dir.resolve())


def _write_errors_are_clear(build: Callable[..., BuildReport]) -> Callable[..., BuildReport]:
    """A build that cannot write (a full disk, a read-only folder) raises IndexWriteError
    saying so and what is live, not a raw OSError: the new generation's temp folder is
    already gone by then, and CURRENT still names the generation it named before."""

    @functools.wraps(build)
    def wrapper(settings: Settings, *args, **kwargs) -> BuildReport:
        try:
            return build(settings, *args, **kwargs)
        except (OSError, sqlite3.Error) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            try:
                live = layout.read_current(settings.index_dir, required=False)
            except OSError:
                live = None
            state = f"{live} is still live" if live else "no index is live yet"
            raise IndexWriteError(
                f"could not write the new index in {settings.index_dir}/ ({reason}); {state}. "
                "Free some disk space (or make the folder writable) and build again"
            ) from exc

    return wrapper


@_write_errors_are_clear
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
        chunking = chunk_settings_for(settings, embedder.max_tokens)
        live, current = live_manifest(index_dir)
        passage_vectors = passage_vectors_for(settings, embedder, current)
        previous = None if full else reusable_generation(
            index_dir, live, expected_for(embedder, chunking), embedder.precision,
            settings.sentence_vectors, passage_vectors)
        plan = _plan(corpus, previous, current)
        progress("read", len(corpus.articles), len(corpus.articles))
        if _up_to_date(plan, previous, settings):
            # Nothing to build: the live generation stays, and so does the one before it.
            before = previous.manifest.previous
            layout.remove_stale(index_dir, keep=(live, before))
            _export_question_model(embedder, index_dir)
            return BuildReport.of(live, corpus, previous.manifest.counts.passages,
                                  plan.stats(full, None), started, before, up_to_date=True,
                                  passage_vectors=passage_vectors)

        if embedder.precision == "int8":  # embed with the index's own question graph
            _export_question_model(embedder, index_dir)
        with workers_kept(embedder):  # a Ray cluster's actors load the model once
            embedded = embed_articles(embedder, plan.fresh, chunking, progress,
                                      settings.sentence_vectors, passage_vectors)
        assembled = assemble(corpus.articles, plan.kept_ids, previous, embedded)
        stats = plan.stats(full, embedded)
        dense = DenseInfo(DEFAULT_BACKEND,
                          settings.index_factory or choose_factory(len(assembled.vectors)))
        name, before = write_generation(
            index_dir, corpus.articles, plan.hashes, assembled, dense=dense,
            model=_model_info(embedder, settings.sentence_vectors, passage_vectors),
            chunker=chunker_info(chunking), corpus_dir=_corpus_dir(settings), build=stats,
            started=started, progress=progress,
        )
        _export_question_model(embedder, index_dir)
    return BuildReport.of(name, corpus, len(assembled.rows), stats, started, before,
                          passage_vectors=passage_vectors)
