"""Question -> dense + BM25 candidates -> re-scored, filtered Hits, from an index's readers.

The Retriever takes its parts (where the generation comes from, the embedder, an optional
re-ranker), so tests can hand it fakes; `Retriever.open(settings)` is the one place that
assembles it from settings for the CLI, eval and the page.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Protocol

import numpy as np

from qa import scoring
from qa.config import MODES, Mode, Settings, chunk_settings_for
from qa.dates import TimeFrame, read_time
from qa.embed import QuestionEncoder, load_question_encoder
from qa.errors import ConfigError, ReaderError
from qa.followup import EARLIER_QUOTES, read_in_context
from qa.index.db import ArticleInfo
from qa.index.generation import Generation, expected_for
from qa.index.lexical import tokenize
from qa.index.live import IndexSource, LiveIndex
from qa.types import Answer, Filters, Hit, Passage, ScoredSpan

log = logging.getLogger(__name__)
# How much more relevant (reader probability, or cosine without the reader) the answer to a
# follow-up read with its context must be than the answer to the question read alone.
# Reading with context scores a sentence by its better reading, so it wins by a little
# even after an unrelated turn (realtimeqa-dev after a World Cup question: up to 0.097,
# 24 of 133 questions re-read and 2 lost); a follow-up that needs its context gains more
# (seed_dev_followups: 0.50, 0.54, and one that abstained alone).
FOLLOWUP_MARGIN = 0.1
# How long before and after a day a question names its news is searched ("on Jan. 7").
REPORTING_DAYS = timedelta(days=7)
# A fragment ("And Baidu?", "Why?") leans on its context unless read alone it answers
# better by this much.
FRAGMENT_MARGIN = 0.1


class Reranker(Protocol):
    """An optional last stage: re-orders (and may re-score) the fused candidates."""

    def rerank(self, question: str | Sequence[str], hits: Sequence[Hit]) -> list[Hit]:
        """`hits` best first by the fused score -> the same hits in a new order.
        `question` may be several readings of one question (qa.followup)."""
        ...


@dataclass(frozen=True, slots=True)
class IndexStatus:
    """What the page and `qa info` show about the live index."""

    generation: str
    articles: int
    passages: int
    model: str
    built_at: str
    path: Path


@dataclass(frozen=True, slots=True)
class _Candidates:
    """What ranking needs of one question's candidate passages, gathered from the index."""

    passages: list[Passage]
    dense: np.ndarray
    lexical: np.ndarray
    # Per sentence of every candidate, in passage order: its text, its cosine to the
    # question, its term coverage, and the position of its passage in `passages`.
    sentence_texts: list[str]
    similarity: np.ndarray
    coverage: np.ndarray
    owner: np.ndarray


class Retriever:
    """Searches an index's current generation; a live index follows new generations."""

    def __init__(self, index: IndexSource, embedder: QuestionEncoder,
                 settings: Settings | None = None,
                 reranker: Reranker | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings or Settings()
        self.reranker = reranker
        # Why the reader is off although the settings ask for it (shown by `qa info` and
        # the page); None when it runs or was not asked for.
        self.reader_problem: str | None = None

    @classmethod
    def open(cls, settings: Settings, embedder: QuestionEncoder | None = None,
             reranker: Reranker | None = None) -> "Retriever":
        """A Retriever over the live index in `settings.index_dir`, following its rebuilds.

        Questions are embedded by `embedder`, else by the model the settings name: its
        ONNX export if a build made one (no torch), else the model itself.

        Raises:
            IndexMissingError: nothing has been built there yet.
            IndexMismatchError: the index was built with another model or chunker.
            IndexCorruptError: a file of the index is damaged.
        """
        embedder = embedder or load_question_encoder(settings)
        expected = expected_for(embedder, chunk_settings_for(settings, embedder.max_tokens))
        problem = None
        if reranker is None and settings.reranker:
            from qa.reader.rerank import open_reranker

            try:
                reranker = open_reranker(settings)
            except ReaderError as exc:
                problem = f"{exc}; answers fall back to the plain ranking"
                log.warning("the reader is off: %s", problem)
        retriever = cls(LiveIndex(settings.index_dir, expected), embedder, settings, reranker)
        retriever.reader_problem = problem
        return retriever

    @property
    def generation(self) -> Generation:
        return self.index.generation

    def status(self) -> IndexStatus:
        generation = self.generation
        manifest = generation.manifest
        return IndexStatus(
            generation=generation.name,
            articles=manifest.counts.articles,
            passages=manifest.counts.passages,
            model=manifest.model.id,
            built_at=manifest.built_at,
            path=generation.path,
        )

    def articles(self, limit: int | None = None) -> list[ArticleInfo]:
        """The indexed articles (the newest `limit`), newest date first, then by title."""
        return self.generation.db.articles(limit)

    def article_text(self, article_id: str) -> str | None:
        return self.generation.db.article_text(article_id)

    # -- search --------------------------------------------------------------------
    def _check(self, k: int | None, mode: str | None) -> tuple[int, Mode]:
        k = self.settings.k if k is None else k
        mode = mode or self.settings.mode
        if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
            raise ConfigError(f"k must be > 0, got {k!r}")
        if k > self.settings.max_k:
            raise ConfigError(f"k must be at most {self.settings.max_k}, got {k} "
                              "(the max_k setting, VERBATIM_MAX_K)")
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        return k, mode

    def _check_question(self, question: str) -> str:
        if not isinstance(question, str):
            raise ConfigError(f"a question must be text, got {type(question).__name__}")
        bad = next((c for c in question if "\ud800" <= c <= "\udfff"), None)
        if bad is not None:  # the tokenizer and SQLite would fail on it, less clearly
            raise ConfigError(
                f"the question is not valid text (it holds {ascii(bad)}, a lone surrogate: "
                "bytes that were not UTF-8, e.g. typed in a terminal not set to UTF-8)"
            )
        limit = self.settings.max_question_chars
        if len(question) > limit:
            raise ConfigError(
                f"the question is {len(question)} characters long; ask in at most {limit}"
            )
        return question.strip()

    def search(
        self, question: str, k: int | None = None, *, mode: Mode | None = None,
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
        self, questions: Sequence[str], k: int | None = None, *, mode: Mode | None = None,
        filters: Filters | None = None,
    ) -> list[list[Hit]]:
        """`search` for many questions at once (one model call for all of them)."""
        return self._search_batch(questions, k, mode=mode, filters=filters)

    def _search_batch(
        self, questions: Sequence[str], k: int | None = None, *, mode: Mode | None = None,
        filters: Filters | None = None, read_as: Sequence[tuple[str, ...]] | None = None,
        asked_on: date | None = None,
    ) -> list[list[Hit]]:
        """search_batch; `read_as[i]` is what the reader reads with the sentences found for
        `questions[i]` (a follow-up is found with its context; a sentence counts by its
        best reading). With `asked_on`, newer articles get the recency prior (settings)."""
        k, mode = self._check(k, mode)
        cleaned = [self._check_question(q) for q in questions]
        generation = self.generation
        allowed = None
        if filters is not None and filters.active:
            allowed = generation.db.passage_mask_where(
                article_ids=filters.articles, titles=filters.articles,
                date_from=filters.date_from, date_to=filters.date_to, undated=filters.undated,
            )
        asked = [i for i, q in enumerate(cleaned) if q]
        results: list[list[Hit]] = [[] for _ in cleaned]
        if not asked or (allowed is not None and not allowed.any()):
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
                lexical_scores, lexical_ids = generation.lexical.search(
                    scoring.with_joined_compounds(cleaned[i]), n, allowed)
                candidates += [int(x) for x in lexical_ids]
                lexical_by_id = dict(zip(lexical_ids.tolist(), lexical_scores.tolist()))
            candidates = list(dict.fromkeys(candidates))
            results[i] = self._rank(
                generation, cleaned[i], query_vectors[row], candidates, lexical_by_id, mode, k,
                read_as[i] if read_as else (cleaned[i],), asked_on,
            )
        return results

    def _rank(
        self, generation: Generation, question: str, query: np.ndarray, candidates: list[int],
        lexical_by_id: dict[int, float], mode: Mode, k: int, read_as: tuple[str, ...],
        asked_on: date | None = None,
    ) -> list[Hit]:
        """The k best candidates, best first: gathers their features, scoring ranks them."""
        found = _gather(generation, question, query, candidates, lexical_by_id)
        if not found.passages:
            return []
        scores, sentence_scores = scoring.rank_scores(
            found.dense, found.similarity, found.coverage, found.owner, found.lexical, mode,
            cue=lambda rows: scoring.answer_type_cue(
                question, [found.sentence_texts[r] for r in rows]),
        )
        bounds = np.searchsorted(found.owner, np.arange(len(found.passages) + 1))
        # A re-ranker sees every candidate; otherwise only the k best are made into Hits.
        top = scoring.top(scores, len(scores) if self.reranker else k)
        hits = [
            Hit(passage=found.passages[j], score=float(scores[j]),
                dense_score=float(found.dense[j]), lexical_score=float(found.lexical[j]),
                sentences=tuple(
                    ScoredSpan(s.start, s.end, float(sentence_scores[r]),
                               float(found.similarity[r]))
                    for s, r in zip(found.passages[j].sentences,
                                    range(bounds[j], bounds[j + 1]))
                ))
            for j in top
        ]
        if self.reranker is not None:
            hits = self.reranker.rerank(read_as, hits)
        if asked_on is not None and self.settings.recency_weight > 0:
            hits = self._favour_recent(hits, asked_on)
        return hits[:k]

    def _favour_recent(self, hits: list[Hit], asked_on: date) -> list[Hit]:
        """The hits re-ordered with the recency prior added to their scores."""
        prior = scoring.recency([h.passage.date for h in hits], asked_on,
                                self.settings.recency_half_life_days)
        weight = self.settings.recency_weight
        lifted = [dataclasses.replace(h, score=h.score + weight * float(p)) if p else h
                  for h, p in zip(hits, prior)]
        return sorted(lifted, key=lambda h: -h.score)

    def answer(self, question: str, k: int | None = None, *, mode: Mode | None = None,
               filters: Filters | None = None,
               history: Sequence[tuple[str, Answer]] = (),
               as_of: date | None = None) -> Answer:
        """The answer as verbatim quotes with highlights, or an abstention.

        Args:
            history: the earlier turns of the same conversation, oldest first, as
                (question, Answer) pairs as earlier calls returned them. A follow-up that
                leans on them ("And Baidu?", "When did they begin?") is also read with
                them (qa.followup), and that reading is kept when it answers better than
                the question read alone; a question that stands on its own is answered
                exactly as without history.
            as_of: the day the question is asked (default today): time words ("in 2023",
                "last week") are read relative to it and restrict the articles' dates
                (undated articles stay in); `Answer.read_time` then says how.
        """
        k, mode = self._check(k, mode)
        today = as_of or date.today()
        time = read_time(self._check_question(question), today)
        dates = article_dates(time, today)
        # Time words ("in 2023", "last week") restrict the dates unless the caller did.
        # Undated articles stay in, but only an answer quoting an article of those dates
        # is kept; else the question is answered from every date.
        if dates and not (filters and (filters.date_from or filters.date_to)):
            timed = Filters(filters.articles if filters else (), *dates, undated=True)
            answer = self._answer(question, k, mode, timed, history)
            if any(quote.date for quote in answer.quotes):
                label = TimeFrame(*dates).label
                return dataclasses.replace(answer, read_time=label)
        # Only a question that says nothing about time leans towards the latest news.
        return self._answer(question, k, mode, filters, history,
                            asked_on=None if time.bounded else today)

    def _answer(self, question: str, k: int, mode: Mode, filters: Filters | None,
                history: Sequence[tuple[str, Answer]], asked_on: date | None = None) -> Answer:
        from qa.answer import build_answer, relevance_of

        # Fetch extra hits: merging overlaps and the per-article cap can drop some.
        fetch = min(k * 3, max(k, self.settings.max_k))
        hits = self._search_batch([question], fetch, mode=mode, filters=filters,
                                  asked_on=asked_on)[0]
        alone = build_answer(question, hits, k, self.settings)
        reading = read_in_context(self._check_question(question), history)
        if not reading.in_context:
            return alone
        # A question that could stand alone ("What does he see as the hardest problem?")
        # leans on the turn before only while the conversation stays on its articles: read
        # alone, it already quotes one of them. After an unrelated turn, a pronoun with its
        # own referent ("Which city monitored its water?") keeps the plain answer.
        if not reading.fragment and not reading.earlier_articles & {
                q.article_id for q in (alone.quotes or alone.closest)[:EARLIER_QUOTES]}:
            return alone
        search = reading.search[:self.settings.max_question_chars]
        hits = self._search_batch([search], fetch, mode=mode, filters=filters,
                                  read_as=[reading.reader_questions], asked_on=asked_on)[0]
        in_context = build_answer(question, hits, k, self.settings)
        # A fragment ("And Baidu?") means nothing alone. Otherwise the reading with context
        # must answer better than the question alone, by a margin.
        margin = -FRAGMENT_MARGIN if reading.fragment else FOLLOWUP_MARGIN
        if not in_context.abstained and relevance_of(in_context) > relevance_of(alone) + margin:
            return dataclasses.replace(in_context, read_with=reading.leans_on)
        return alone


def article_dates(time: TimeFrame, today: date) -> tuple[str | None, str | None] | None:
    """The articles' dates to search for what a question says about time, or None.

    News reports an event in the days before it (a preview) and after it, so a single
    day also takes the week on either side ("on Jan. 7, 2024"). Dates that restrict
    nothing up to today ("by 2050", a plan's deadline) or lie wholly after it are not a
    restriction.
    """
    if not time.bounded:
        return None
    first, last = time.date_from, time.date_to
    if first and first > today.isoformat():
        return None
    if last and last >= today.isoformat() and not first:
        return None
    if first and first == last:
        day = date.fromisoformat(first)
        first = (day - REPORTING_DAYS).isoformat()
        last = min(day + REPORTING_DAYS, today).isoformat()
    return first, last


def _gather(generation: Generation, question: str, query: np.ndarray, candidates: list[int],
            lexical_by_id: dict[int, float]) -> _Candidates:
    """Read the candidates' passages, vectors and sentence vectors; tokenize for coverage."""
    stored = generation.db.passages_with_rows(candidates)
    candidates = [c for c in candidates if c in stored]
    ids = np.asarray(candidates, dtype=np.int64)
    dense = np.empty(len(ids), dtype=np.float32)
    if len(ids):
        order_on_disk = np.argsort(ids)  # rows read in file order
        dense[order_on_disk] = generation.vectors[ids[order_on_disk]] @ query
    passages = [stored[c][0] for c in candidates]
    texts = [p.text[s.start - p.start:s.end - p.start] for p in passages for s in p.sentences]
    # idf over every candidate sentence: the topic word all of them share counts little.
    terms = tokenize([scoring.with_joined_compounds(question), *texts])
    coverage = scoring.term_coverage(terms[0], terms[1:])
    counts = [len(p.sentences) for p in passages]
    similarity = [
        np.asarray(generation.sentence_vectors[stored[c][1]:stored[c][1] + n],
                   dtype=np.float32) @ query
        for c, n in zip(candidates, counts)
    ]
    owner = np.repeat(np.arange(len(passages), dtype=np.int64), counts)
    lexical = np.asarray([lexical_by_id.get(c, 0.0) for c in candidates], dtype=np.float32)
    return _Candidates(
        passages, dense, lexical, texts,
        np.concatenate(similarity) if texts else np.zeros(0, dtype=np.float32),
        coverage, owner,
    )


def load_retriever(index_dir: str | Path = "index", **overrides: object) -> Retriever:
    """A Retriever over the index in `index_dir` with default settings plus `overrides`.

    Raises:
        IndexMissingError: nothing has been built there yet.
        IndexMismatchError: the index was built with another model or chunker.
        IndexCorruptError: a file of the index is damaged.
    """
    return Retriever.open(Settings.from_env(index_dir=Path(index_dir), **overrides))
