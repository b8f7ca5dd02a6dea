"""Question -> dense + BM25 candidates -> re-scored, filtered Hits; follows the live index."""
from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa import layout
from qa.build import chunk_settings_for
from qa.clean import normalize_date
from qa.config import MODES, Settings
from qa.db import ArticleInfo
from qa.embed import Embedder, load_embedder
from qa.errors import ConfigError, QAError
from qa.generation import Generation, expected_for
from qa.lexical import tokenize
from qa.scoring import fuse, sentence_scores, term_coverage
from qa.types import Answer, Hit, Passage, ScoredSpan

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Filters:
    """Restrict a search to some articles (by id or title) and/or a date range."""

    articles: tuple[str, ...] = ()
    date_from: str | None = None
    date_to: str | None = None

    def __post_init__(self) -> None:
        # Stored dates are ISO; accept what people type ("July 1, 2025") and compare alike.
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value:
                iso = normalize_date(value)
                if iso is None:
                    raise ConfigError(f"{name} must be a date like 2025-07-28, got {value!r}")
                object.__setattr__(self, name, iso)
        object.__setattr__(self, "articles", tuple(self.articles))

    @property
    def active(self) -> bool:
        return bool(self.articles or self.date_from or self.date_to)


@dataclass(frozen=True, slots=True)
class IndexStatus:
    """What the page and `qa info` show about the live index."""

    generation: str
    articles: int
    passages: int
    model: str
    built_at: str
    path: Path


def score_sentences(
    sentence_vectors: np.ndarray, passage: Passage, first_row: int, query: np.ndarray,
    question_terms: Sequence[str], sentence_terms: Sequence[Sequence[str]],
) -> tuple[ScoredSpan, ...]:
    """Each of the passage's sentences scored against the question."""
    count = len(passage.sentences)
    rows = np.asarray(sentence_vectors[first_row:first_row + count], dtype=np.float32)
    similarity = rows @ query
    scores = sentence_scores(similarity, term_coverage(question_terms, sentence_terms))
    return tuple(
        ScoredSpan(s.start, s.end, float(score), float(sim))
        for s, score, sim in zip(passage.sentences, scores, similarity)
    )


class Retriever:
    """Searches the live generation of an index; picks up new generations by itself."""

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self._expected = expected_for(embedder, chunk_settings_for(settings, embedder))
        self._lock = threading.Lock()
        self._generation: Generation | None = None
        self._refused: str | None = None
        self.refresh()

    # -- the live generation -------------------------------------------------------
    def refresh(self) -> bool:
        """Switch to the generation CURRENT names, if it changed. True if it switched.

        Searches already running keep the generation object they started with. A new
        generation is opened outside the lock, so searches never wait for a switch.

        Raises:
            IndexCorruptError, IndexMismatchError: CURRENT names a generation that cannot
                be served (raised once per name; later calls keep the old generation).
        """
        name = layout.read_current(self.settings.index_dir)
        live = self._generation
        if live is not None and name in (live.name, self._refused):
            return False
        try:
            generation = Generation.open(self.settings.index_dir / name, self._expected)
        except QAError:
            self._refused = name  # re-checking a damaged generation on every search is waste
            raise
        with self._lock:
            if self._generation is live:  # another thread may have switched meanwhile
                self._generation = generation
        self._refused = None
        log.info("serving index generation %s", name)
        return True

    @property
    def generation(self) -> Generation:
        """The live generation, re-checked against CURRENT on every call."""
        try:
            self.refresh()
        except QAError as exc:
            if self._generation is None:
                raise
            # A broken new generation is reported and not served; the old one still is.
            log.error("keeping generation %s: %s", self._generation.name, exc)
        return self._generation

    def status(self) -> IndexStatus:
        generation = self.generation
        manifest = generation.manifest
        return IndexStatus(
            generation=generation.name,
            articles=manifest["counts"]["articles"],
            passages=manifest["counts"]["passages"],
            model=manifest["model"]["id"],
            built_at=manifest.get("built_at", ""),
            path=generation.path,
        )

    def articles(self) -> list[ArticleInfo]:
        return self.generation.db.articles()

    def article_text(self, article_id: str) -> str | None:
        return self.generation.db.article_text(article_id)

    # -- search --------------------------------------------------------------------
    def _check(self, k: int | None, mode: str | None) -> tuple[int, str]:
        k = self.settings.k if k is None else k
        mode = mode or self.settings.mode
        if not isinstance(k, int) or k <= 0:
            raise ConfigError(f"k must be > 0, got {k!r}")
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        return k, mode

    def _check_question(self, question: str) -> str:
        if not isinstance(question, str):
            raise ConfigError(f"a question must be text, got {type(question).__name__}")
        limit = self.settings.max_question_chars
        if len(question) > limit:
            raise ConfigError(
                f"the question is {len(question)} characters long; ask in at most {limit}"
            )
        return question.strip()

    def search(
        self, question: str, k: int | None = None, *, mode: str | None = None,
        filters: Filters | None = None,
    ) -> list[Hit]:
        """The k best passages for `question`, best first. A blank question finds nothing.

        Args:
            question: free text.
            k: how many hits (default from settings); must be > 0.
            mode: "hybrid" (default), "dense" or "bm25".
            filters: restrict to articles and/or dates.
        """
        return self.search_batch([question], k, mode=mode, filters=filters)[0]

    def search_batch(
        self, questions: Sequence[str], k: int | None = None, *, mode: str | None = None,
        filters: Filters | None = None,
    ) -> list[list[Hit]]:
        """`search` for many questions at once (one model call for all of them)."""
        k, mode = self._check(k, mode)
        cleaned = [self._check_question(q) for q in questions]
        generation = self.generation
        allowed = None
        if filters is not None and filters.active:
            allowed = generation.db.passage_ids_where(
                article_ids=filters.articles, titles=filters.articles,
                date_from=filters.date_from, date_to=filters.date_to,
            )
        asked = [i for i, q in enumerate(cleaned) if q]
        results: list[list[Hit]] = [[] for _ in cleaned]
        if not asked or (allowed is not None and allowed.size == 0):
            return results
        query_vectors = self.embedder.encode([cleaned[i] for i in asked])
        n = max(self.settings.candidates, k)
        dense_ids = None
        if mode != "bm25":
            _, dense_ids = generation.dense.search(query_vectors, n, allowed)
        for row, i in enumerate(asked):
            candidates = [] if dense_ids is None else [int(x) for x in dense_ids[row] if x >= 0]
            lexical_by_id: dict[int, float] = {}
            if mode != "dense":
                lexical_scores, lexical_ids = generation.lexical.search(cleaned[i], n, allowed)
                candidates += [int(x) for x in lexical_ids]
                lexical_by_id = dict(zip(lexical_ids.tolist(), lexical_scores.tolist()))
            candidates = list(dict.fromkeys(candidates))
            results[i] = self._rank(
                generation, cleaned[i], query_vectors[row], candidates, lexical_by_id, mode, k
            )
        return results

    def _rank(
        self, generation: Generation, question: str, query: np.ndarray, candidates: list[int],
        lexical_by_id: dict[int, float], mode: str, k: int,
    ) -> list[Hit]:
        """Score every candidate passage and its sentences; the k best, best first."""
        if not candidates:
            return []
        stored = generation.db.passages_with_rows(candidates)
        candidates = [c for c in candidates if c in stored]
        ids = np.asarray(candidates, dtype=np.int64)
        order_on_disk = np.argsort(ids)
        dense = np.empty(len(ids), dtype=np.float32)
        dense[order_on_disk] = generation.vectors[ids[order_on_disk]] @ query
        passages = [stored[c][0] for c in candidates]
        texts = [p.text[s.start - p.start:s.end - p.start] for p in passages for s in p.sentences]
        terms = tokenize([question, *texts])
        question_terms, all_sentence_terms = terms[0], terms[1:]
        sentences, cursor = [], 0
        for p, c in zip(passages, candidates):
            sentence_terms = all_sentence_terms[cursor:cursor + len(p.sentences)]
            cursor += len(p.sentences)
            sentences.append(score_sentences(
                generation.sentence_vectors, p, stored[c][1], query, question_terms,
                sentence_terms,
            ))
        best = np.asarray([max((s.score for s in ss), default=0.0) for ss in sentences])
        lexical = np.asarray([lexical_by_id.get(c, 0.0) for c in candidates], dtype=np.float32)
        scores = fuse(dense, best, lexical, mode)
        top = np.argsort(-scores, kind="stable")[:k]
        return [
            Hit(passage=passages[j], score=float(scores[j]), dense_score=float(dense[j]),
                lexical_score=float(lexical[j]), sentences=sentences[j])
            for j in top
        ]

    def answer(self, question: str, k: int | None = None, *, mode: str | None = None,
               filters: Filters | None = None) -> Answer:
        """The answer as verbatim quotes with highlights, or an abstention."""
        from qa.answer import build_answer

        k, mode = self._check(k, mode)
        # Fetch extra hits: merging overlaps and the per-article cap can drop some.
        hits = self.search(question, k * 3, mode=mode, filters=filters)
        return build_answer(question, hits, k, self.settings)


def load_retriever(index_dir: str | Path = "index", **overrides: object) -> Retriever:
    """A Retriever over the index in `index_dir` with default settings plus `overrides`.

    Raises:
        IndexMissingError: nothing has been built there yet.
        IndexMismatchError: the index was built with another model or chunker.
        IndexCorruptError: a file of the index is damaged.
    """
    settings = Settings.from_env(index_dir=Path(index_dir), **overrides)
    return Retriever(settings, load_embedder(settings))
