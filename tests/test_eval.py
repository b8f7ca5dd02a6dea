"""qa.eval's scorer on a hand-made answer set: the quality floors rest on these numbers,
so each is checked against a value worked out by hand (pure: a canned retriever)."""
from __future__ import annotations

import pytest

from conftest import EVAL
from qa.eval import (
    Question, evaluate, evaluate_conversations, highlight_hit, holds_conversations,
    marked_sentences, read_conversations,
)
from qa.types import Answer, Quote, Span


def quote(text: str, *marked: str, article: str = "a.txt") -> Quote:
    """A quote of `article` with each of the `marked` sentences highlighted."""
    spans = tuple(Span(text.index(m), text.index(m) + len(m)) for m in marked)
    return Quote(text=text, article_id=article, title=f"Title of {article}", source=article,
                 date=None, start=100, end=100 + len(text), score=0.5, highlights=spans)


EVAL_QUESTIONS_FILE = EVAL / "seed_dev.jsonl"
MISS = quote("Nothing to see here. Really nothing.", "Nothing to see here.")
# The answer ("Paris") is in the quote, but not in the sentence it marks.
OUTSIDE = quote("She lived in Paris. She wrote notes on the engine.",
                "She wrote notes on the engine.")


class CannedRetriever:
    """Answers each question with the Answer it was given; records how it was asked."""

    def __init__(self, answers: dict[str, Answer],
                 in_context: dict[str, Answer] | None = None) -> None:
        self.answers = answers
        self.in_context = in_context or {}
        self.asked: list[tuple[str, int, str | None]] = []
        self.histories: list[tuple[str, tuple[str, ...]]] = []
        self.days: list = []

    def answer(self, question: str, k: int, mode: str | None = None, history=(),
               as_of=None) -> Answer:
        self.asked.append((question, k, mode))
        self.days.append(as_of)
        self.histories.append((question, tuple(q for q, _ in history)))
        if history and question in self.in_context:
            return self.in_context[question]
        return self.answers[question]


def answered(question: str, *quotes: Quote, confidence: str = "answered") -> Answer:
    return Answer(question=question, quotes=quotes, confidence=confidence)


def abstained(question: str, *closest: Quote) -> Answer:
    return Answer(question=question, abstained=True, closest=closest, confidence="none")


QUESTIONS = [
    # rank 1, the answer marked; one sentence marked
    Question("a1", "Who won?", ("Ada Lovelace",), "a.txt"),
    # rank 3: the first quote has the answer but from another article, the second none;
    # the third has it in other case and spacing. Two sentences marked in the first quote.
    Question("a2", "When?", ("in 1843",), "a.txt"),
    # rank 1, but the answer sits outside the marked sentence: no highlight
    Question("a3", "Where?", ("Paris",)),
    # abstained; ranks count its closest passages: the answer 7th (recall@10 only)
    Question("a4", "What?", ("the gears",)),
    # "may answer", and nothing answers
    Question("a5", "Why?", ("no reason",), "a.txt"),
    Question("u1", "Off topic one?"),
    Question("u2", "Off topic two?"),
    Question("u3", "Off topic three?"),
]
ANSWERS = {
    "Who won?": answered("Who won?", quote("The prize went out. Ada Lovelace won the prize.",
                                           "Ada Lovelace won the prize.")),
    "When?": answered(
        "When?",
        quote("It happened in 1843. Then more.", "It happened in 1843.", "Then more.",
              article="b.txt"),
        MISS,
        quote("The notes appeared IN\n 1843, in a journal.", "The notes appeared IN\n 1843,"),
    ),
    "Where?": answered("Where?", OUTSIDE, MISS),
    "What?": abstained("What?", *[MISS] * 6,
                       quote("It had the gears of a mill.", "It had the gears of a mill.")),
    "Why?": answered("Why?", MISS, confidence="low"),
    "Off topic one?": abstained("Off topic one?", MISS),
    "Off topic two?": answered("Off topic two?", MISS, confidence="low"),
    "Off topic three?": answered("Off topic three?", MISS),
}


def test_evaluate_on_a_hand_made_answer_set():
    retriever = CannedRetriever(ANSWERS)
    m = evaluate(retriever, QUESTIONS, mode="bm25")
    # Every question asked once, for the top 10, in the mode given.
    assert retriever.asked == [(q.question, 10, "bm25") for q in QUESTIONS]
    assert (m.questions, m.answerable, m.unanswerable) == (8, 5, 3)
    # First answering ranks: 1, 3, 1, 7, none.
    assert m.recall_at_1 == pytest.approx(2 / 5)
    assert m.recall_at_5 == pytest.approx(3 / 5)
    assert m.recall_at_10 == pytest.approx(4 / 5)
    assert m.mrr_at_10 == pytest.approx((1 + 1 / 3 + 1 + 1 / 7 + 0) / 5)
    # Only a1's marked sentence holds its answer (a3's answer is outside the mark).
    assert m.highlight_at_1 == pytest.approx(1 / 5)
    assert m.marked_sentences == pytest.approx((1 + 2 + 1 + 1 + 1) / 5)
    # a4 and u1 abstained: one of the two abstentions was right, one of the 3 off-topic.
    assert m.abstained_answerable == pytest.approx(1 / 5)
    assert m.abstain_precision == pytest.approx(1 / 2)
    assert m.abstain_recall == pytest.approx(1 / 3)
    assert m.low_confidence_answerable == pytest.approx(1 / 5)
    assert m.low_confidence_unanswerable == pytest.approx(1 / 3)
    assert 0 <= m.latency_p50_ms <= m.latency_p99_ms


def test_evaluate_ranks_past_ten_and_without_off_topic_questions():
    far = abstained("Far?", *[MISS] * 10, quote("The gears turned.", "The gears turned."))
    m = evaluate(CannedRetriever({"Far?": far}), [Question("f", "Far?", ("the gears",))])
    assert (m.recall_at_10, m.mrr_at_10) == (0.0, 0.0)  # 11th: past the top 10
    assert m.abstain_recall is None and m.low_confidence_unanswerable is None
    assert m.abstain_precision == 0.0  # it abstained, and wrongly


def test_the_answer_outside_the_marked_sentence_is_no_highlight():
    where = Question("a3", "Where?", ("Paris",))
    assert not highlight_hit(answered("Where?", OUTSIDE), where)
    # ...and the same quote with the answering sentence marked is one.
    assert highlight_hit(answered("Where?", quote(OUTSIDE.text, "She lived in Paris.")), where)


@pytest.mark.parametrize("answer,hit", [
    (answered("q", quote("One. The answer is 42.", "One.", "The answer is 42.")), True),
    (answered("q", MISS, quote("The answer is 42.", "The answer is 42.")), False),
    (abstained("q", quote("The answer is 42.", "The answer is 42.")), True),
    (answered("q", quote("The answer is 42.", "The answer is 42.", article="b.txt")), False),
    (answered("q", quote("The answer is 42.")), False),  # nothing marked
    (answered("q"), False),
    (abstained("q"), False),
], ids=["second-mark", "only-the-first-quote", "closest-of-an-abstention", "wrong-article",
        "unmarked", "no-quotes", "no-closest"])
def test_highlight_hit_reads_the_marks_of_the_first_quote(answer, hit):
    assert highlight_hit(answer, Question("q", "q", ("42",), "a.txt")) is hit


def test_marked_sentences_counts_the_sentences_a_mark_covers():
    text = "Dockers formed a union. It named Ada Lee its head. Wages rose."
    assert marked_sentences(quote(text, "Wages rose.")) == 1
    assert marked_sentences(quote(text, "Dockers formed a union. It named Ada Lee its head.",
                                  "Wages rose.")) == 3
    assert marked_sentences(quote(text)) == 0


def test_the_article_may_be_named_by_title():
    marked = answered("q", quote("The answer is 42.", "The answer is 42."))
    assert highlight_hit(marked, Question("q", "q", ("42",), "Title of a.txt"))
    assert not highlight_hit(marked, Question("q", "q", ("42",), "Title of b.txt"))


def test_evaluate_after_a_first_question_asks_each_as_its_second_turn():
    first = "Off topic one?"
    retriever = CannedRetriever(ANSWERS)
    evaluate(retriever, QUESTIONS[:2], after=first)
    assert retriever.histories == [(first, ()), ("Who won?", (first,)), ("When?", (first,))]


def test_conversations_score_follow_ups_with_and_without_their_history(tmp_path):
    # Two conversations: the follow-up "Where?" is answered (rank 1, marked) only with its
    # history; "Why?" abstains with it. First turns: "Who won?" rank 1 marked; "When?"
    # rank 1 and marked too (conversation turns name no article, so b.txt's quote counts).
    path = tmp_path / "conversations.jsonl"
    path.write_text(
        '{"id": "c1", "turns": [{"question": "Who won?", "answers": ["Ada Lovelace"]},'
        ' {"question": "Where?", "answers": ["Paris"]}]}\n'
        '{"id": "c2", "turns": [{"question": "When?", "answers": ["in 1843"]},'
        ' {"question": "Why?", "answers": ["no reason"]}]}\n', encoding="utf-8")
    assert holds_conversations(path) and not holds_conversations(EVAL_QUESTIONS_FILE)
    conversations = read_conversations(path)
    assert [len(c.turns) for c in conversations] == [2, 2]
    in_context = {"Where?": answered("Where?", quote("She lived in Paris.", "She lived in Paris.")),
                  "Why?": abstained("Why?", MISS)}
    retriever = CannedRetriever(ANSWERS, in_context)
    m = evaluate_conversations(retriever, conversations)
    assert (m.conversations, m.first_turns, m.followups) == (2, 2, 2)
    assert (m.first_recall_at_5, m.first_highlight_at_1) == (1.0, 1.0)
    assert (m.followup_recall_at_5, m.followup_highlight_at_1, m.followup_abstained) == (
        0.5, 0.5, 0.5)
    # Alone, "Where?" is ANSWERS' (the answer outside the mark) and "Why?" is "may answer".
    assert (m.alone_recall_at_5, m.alone_highlight_at_1, m.alone_abstained) == (0.5, 0.0, 0.0)
    # Each turn saw the earlier questions of its conversation, and nothing else.
    assert ("Where?", ("Who won?",)) in retriever.histories
    assert ("Why?", ("When?",)) in retriever.histories
    assert ("Where?", ()) in retriever.histories


def test_with_as_of_ids_a_question_is_asked_on_the_day_its_id_names():
    from datetime import date

    from qa.eval import Question, asked_on, evaluate

    assert asked_on("20231103_4") == date(2023, 11, 3)
    assert asked_on("20231399_1") is None and asked_on("q7") is None
    retriever = CannedRetriever({"a": answered("a"), "b": answered("b")})
    questions = [Question("20240105_0", "a", ("x",)), Question("seed-3", "b", ("x",))]
    evaluate(retriever, questions, as_of_ids=True)
    evaluate(retriever, questions)
    assert retriever.days == [date(2024, 1, 5), None, None, None]


def test_each_asked_for_vector_precision_gets_an_eval_index_of_its_own():
    # A build adds to an index in that index's precision, so fp32 asked of a bf16 cache
    # would quietly measure bf16 vectors.
    from pathlib import Path

    from qa.config import Settings
    from qa.eval import eval_index_dir

    auto = eval_index_dir(Path("a.jsonl"), Settings())
    fp32 = eval_index_dir(Path("a.jsonl"), Settings(precision="fp32"))
    assert fp32 == auto.with_name(f"{auto.name}-fp32")
    assert eval_index_dir(Path("a.jsonl"), Settings(precision="bf16")) not in {auto, fp32}
