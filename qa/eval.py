"""Retrieval and answer quality on a question file (metrics as in shared/eval/README.md)."""
from __future__ import annotations

import hashlib
import json
import re
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from qa.config import Settings
from qa.errors import ConfigError
from qa.types import Answer, Hit, Quote

_SPACE = re.compile(r"\s+")
KS = (1, 5, 10)


@dataclass(frozen=True, slots=True)
class Question:
    """One eval question; `answers` empty means it is unanswerable."""

    id: str
    question: str
    answers: tuple[str, ...] = ()
    article: str | None = None


@dataclass(frozen=True, slots=True)
class Metrics:
    """The reported numbers; names as in shared/eval/README.md."""

    questions: int
    answerable: int
    unanswerable: int
    recall_at_1: float
    recall_at_5: float
    recall_at_10: float
    mrr_at_10: float
    highlight_at_1: float
    # Sentences marked in the first quote, on average (a near tie marks two, and so does
    # a sentence read with the one before it).
    marked_sentences: float
    abstain_precision: float | None
    abstain_recall: float | None
    abstained_answerable: float
    # Graded answers: share quoted with "low confidence" ("may answer").
    low_confidence_answerable: float
    low_confidence_unanswerable: float | None
    latency_p50_ms: float
    latency_p99_ms: float

    def table(self) -> str:
        return metrics_table(self)


def metrics_table(metrics) -> str:
    """One `name  value` line per field of a metrics dataclass."""
    rows = list(asdict(metrics).items())
    width = max(len(n) for n, _ in rows)
    return "\n".join(
        f"{n:<{width}}  {'n/a' if v is None else (f'{v:.3f}' if isinstance(v, float) else v)}"
        for n, v in rows
    )


def normalize(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


@dataclass(frozen=True, slots=True)
class Conversation:
    """Questions asked one after the other; a turn after the first may lean on earlier ones."""

    id: str
    turns: tuple[Question, ...]


@dataclass(frozen=True, slots=True)
class ConversationMetrics:
    """First turns and follow-ups apart; `alone_*`: the same follow-ups with no history."""

    conversations: int
    first_turns: int
    followups: int
    first_recall_at_5: float
    first_highlight_at_1: float
    followup_recall_at_5: float
    followup_highlight_at_1: float
    followup_abstained: float
    alone_recall_at_5: float
    alone_highlight_at_1: float
    alone_abstained: float

    def table(self) -> str:
        return metrics_table(self)


class _Invalid(ValueError):
    """A record that parses but cannot be used; the message says why."""


def _read_records(path: Path, kind: str, parse):
    """`parse(record)` for each JSON line of `path`; a bad line is a ConfigError naming it."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(parse(json.loads(line)))
        except _Invalid as exc:
            raise ConfigError(f"{path}:{number}: {exc}") from None
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}:{number} is not a {kind} record ({exc})") from None
    return out


def read_conversations(path: Path) -> list[Conversation]:
    """Conversations from JSON Lines: `id`, `turns`: [{"question", "answers"}, ...]."""
    def conversation(record: dict) -> Conversation:
        turns = tuple(Question(f"{record['id']}#{i}", t["question"],
                               tuple(t.get("answers") or ()), t.get("article"))
                      for i, t in enumerate(record["turns"], start=1))
        if not turns:
            raise _Invalid("a conversation needs at least one turn")
        return Conversation(str(record["id"]), turns)

    return _read_records(path, "conversation", conversation)


def holds_conversations(path: Path) -> bool:
    """Is `path` a file of conversations (records with "turns") rather than questions?"""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                try:
                    return "turns" in json.loads(line)
                except (json.JSONDecodeError, TypeError):
                    return False
    return False


def read_questions(path: Path) -> list[Question]:
    """Questions from JSON Lines: `id`, `question`, optional `answers`, `article`."""
    return _read_records(path, "question", lambda record: Question(
        str(record["id"]), record["question"], tuple(record.get("answers") or ()),
        record.get("article")))


def asked_on(question_id: str) -> date | None:
    """The day in a question id that starts with one ("20231103_4" -> 3 November 2023)."""
    found = re.match(r"(\d{4})(\d{2})(\d{2})(?:_|$)", question_id)
    if not found:
        return None
    try:
        return date(*(int(x) for x in found.groups()))
    except ValueError:
        return None


def answers_in(text: str, question: Question) -> bool:
    """Does `text` contain one of the answers (case and whitespace normalised)?"""
    haystack = normalize(text)
    return any(normalize(a) in haystack for a in question.answers)


def from_article(title: str, article_id: str, question: Question) -> bool:
    return question.article is None or question.article in (title, article_id)


def answers(item: Quote | Hit, question: Question) -> bool:
    """Is `item` a quote (or hit) from the right article that contains an answer?"""
    p = item.passage if isinstance(item, Hit) else item
    return from_article(p.title, p.article_id, question) and answers_in(p.text, question)


def first_answering_rank(ranked: Sequence[Quote | Hit], question: Question) -> int | None:
    """1-based rank of the first quote (or hit) from the right article that contains an
    answer."""
    return next((rank for rank, item in enumerate(ranked, start=1) if answers(item, question)),
                None)


def highlight_hit(answer: Answer, question: Question) -> bool:
    """Does the marked sentence of the first quote (shown or closest) contain an answer?"""
    quotes = answer.quotes or answer.closest
    if not quotes:
        return False
    quote = quotes[0]
    if not from_article(quote.title, quote.article_id, question):
        return False
    marked = " ".join(quote.text[s.start:s.end] for s in quote.highlights)
    return answers_in(marked, question)


def marked_sentences(quote: Quote) -> int:
    """How many sentences the quote's marks cover: one mark may span a sentence and the one
    before it that it refers to (the reader read them together)."""
    from qa.text.chunk import split_sentences

    return sum(len(split_sentences(quote.text[s.start:s.end])) or 1 for s in quote.highlights)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else 0.0


def evaluate(retriever, questions: Iterable[Question], mode: str | None = None,
             progress: bool = False, after: str | None = None,
             as_of_ids: bool = False) -> Metrics:
    """Ask every question once through `retriever.answer(question, 10)`, the path users get.

    Ranks are over the answer's quotes (merged, diversified), or its closest passages
    when it abstained: ranking and highlight metrics ignore abstention (they measure what
    was found); abstention is measured on its own by the abstain_* numbers. With `after`,
    each question is asked as the second turn of a conversation that began with `after`
    (an unrelated first question must not change the figures). With `as_of_ids`, a
    question whose id starts with a date (YYYYMMDD, as realtimeqa-dev's do) is asked as
    of that day.
    """
    history: tuple = ()
    if after:
        history = ((after, retriever.answer(after, max(KS), mode=mode)),)
    ranks: list[int | None] = []
    highlights: list[bool] = []
    marked: list[int] = []
    abstained_answerable = abstained_unanswerable = unanswerable = 0
    low_answerable = low_unanswerable = 0
    latencies: list[float] = []
    if progress:  # to stderr, so --json output stays clean
        from tqdm import tqdm

        questions = tqdm(list(questions), desc="questions", unit=" q", leave=False)
    for question in questions:
        started = time.perf_counter()
        answer = retriever.answer(question.question, max(KS), mode=mode, history=history,
                                  as_of=asked_on(question.id) if as_of_ids else None)
        latencies.append((time.perf_counter() - started) * 1000)
        low = answer.confidence == "low"
        if question.answers:
            ranks.append(first_answering_rank(answer.quotes or answer.closest, question))
            highlights.append(highlight_hit(answer, question))
            first = (answer.quotes or answer.closest)[:1]
            marked.append(marked_sentences(first[0]) if first else 0)
            abstained_answerable += answer.abstained
            low_answerable += low
        else:
            unanswerable += 1
            abstained_unanswerable += answer.abstained
            low_unanswerable += low
    n = len(ranks)
    share = (lambda count: count / n) if n else (lambda count: 0.0)
    abstained = abstained_answerable + abstained_unanswerable
    return Metrics(
        questions=n + unanswerable,
        answerable=n,
        unanswerable=unanswerable,
        recall_at_1=share(sum(1 for r in ranks if r is not None and r <= 1)),
        recall_at_5=share(sum(1 for r in ranks if r is not None and r <= 5)),
        recall_at_10=share(sum(1 for r in ranks if r is not None and r <= 10)),
        mrr_at_10=share(sum(1 / r for r in ranks if r is not None and r <= 10)),
        highlight_at_1=share(sum(highlights)),
        marked_sentences=share(sum(marked)),
        abstain_precision=(abstained_unanswerable / abstained) if abstained else None,
        abstain_recall=(abstained_unanswerable / unanswerable) if unanswerable else None,
        abstained_answerable=share(abstained_answerable),
        low_confidence_answerable=share(low_answerable),
        low_confidence_unanswerable=(low_unanswerable / unanswerable) if unanswerable else None,
        latency_p50_ms=statistics.median(latencies) if latencies else 0.0,
        latency_p99_ms=percentile(latencies, 0.99),
    )


def evaluate_conversations(retriever, conversations: Sequence[Conversation],
                           mode: str | None = None) -> ConversationMetrics:
    """Ask each turn with the earlier turns of its conversation (the questions and the
    answers given) as history; each follow-up is also asked alone, so the gain shows."""
    first: list[tuple[int | None, bool]] = []
    followed: list[tuple[int | None, bool, bool]] = []
    alone: list[tuple[int | None, bool, bool]] = []

    def scored(answer: Answer, question: Question) -> tuple[int | None, bool, bool]:
        return (first_answering_rank(answer.quotes or answer.closest, question),
                highlight_hit(answer, question), answer.abstained)

    for conversation in conversations:
        history: list[tuple[str, Answer]] = []
        for number, turn in enumerate(conversation.turns):
            answer = retriever.answer(turn.question, max(KS), mode=mode,
                                      history=tuple(history))
            if number == 0:
                first.append(scored(answer, turn)[:2])
            else:
                followed.append(scored(answer, turn))
                alone.append(scored(retriever.answer(turn.question, max(KS), mode=mode), turn))
            history.append((turn.question, answer))

    def share(rows, test) -> float:
        return sum(1 for row in rows if test(row)) / len(rows) if rows else 0.0

    def in_top_5(row) -> bool:
        return row[0] is not None and row[0] <= 5

    return ConversationMetrics(
        conversations=len(conversations), first_turns=len(first), followups=len(followed),
        first_recall_at_5=share(first, in_top_5),
        first_highlight_at_1=share(first, lambda row: row[1]),
        followup_recall_at_5=share(followed, in_top_5),
        followup_highlight_at_1=share(followed, lambda row: row[1]),
        followup_abstained=share(followed, lambda row: row[2]),
        alone_recall_at_5=share(alone, in_top_5),
        alone_highlight_at_1=share(alone, lambda row: row[1]),
        alone_abstained=share(alone, lambda row: row[2]),
    )


def eval_index_dir(articles: Path, settings: Settings) -> Path:
    """A cache folder per article set, model and asked-for vector precision, so repeated
    evals reuse the vectors. ("auto" keeps the folder it always had; a build adds to an
    index in its own precision, so another precision needs a folder of its own.)"""
    key = hashlib.sha256(f"{articles.resolve()}|{settings.model}".encode()).hexdigest()[:10]
    suffix = "" if settings.precision == "auto" else f"-{settings.precision}"
    return Path(".verbatim-cache") / "eval" / f"{articles.stem}-{key}{suffix}"


def prepare_retriever(articles: Path, settings: Settings, on_progress=None):
    """Build (incrementally, so usually nothing is embedded) and open an eval index, with
    the question encoder users get (Retriever.open's choice)."""
    from qa.embed import load_embedder
    from qa.build import build_index, build_settings
    from qa.retriever import Retriever

    settings = settings.replace(corpus_dir=articles)
    build_index(settings, load_embedder(build_settings(settings)), on_progress=on_progress)
    return Retriever.open(settings)
