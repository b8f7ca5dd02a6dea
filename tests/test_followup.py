"""Reading a follow-up in its conversation (pure: hand-made questions and answers)."""
import pytest

from qa.followup import continue_frame, needs_context, read_in_context
from qa.types import Answer, Quote, Span

SENTENCE = "Huawei, Baidu, SenseTime, and chipmaker StepFun formed two alliances."


def answered(question: str, text: str = SENTENCE, start: int = 100) -> Answer:
    quote = Quote(text=f"Intro. {text}", article_id="seed", title="T", source="s.txt",
                  date=None, start=start, end=start + 7 + len(text), score=0.9,
                  highlights=(Span(7, 7 + len(text)),))
    return Answer(question=question, quotes=(quote,))


def abstained(question: str) -> Answer:
    return Answer(question=question, abstained=True, confidence="none")


@pytest.mark.parametrize("question", [
    "And Baidu?", "What about people on Twitter and Reddit?", "how about StepFun",
    "Why?", "Since when?", "Where was that?", "When did they begin?",
    "What is it meant to compete with?", "What does he see as the hardest problem?",
    "Which of them makes chips?", "Why does Washington block their sale?",
])
def test_questions_that_lean_on_the_turn_before(question):
    assert needs_context(question)


@pytest.mark.parametrize("question", [
    "Who formed the Model-Chip Ecosystem Innovation Alliance?",
    "What hardware did the US export bans target?",
    "Which platform did Huawei unveil as a rival to Nvidia?",
    "How many megawatts does the Kelpwater tidal array produce?",
    # A time of the question's own is not something said before.
    "Which city was monitoring water supplies this week after a spill?",
    "What did the council decide that year about the harbour wall?",
    "Who scored in the final game this weekend?",
    # Short, but about something named.
    "Who won Super Bowl 50?", "What does AFC stand for?",
])
def test_questions_that_stand_alone(question):
    assert not needs_context(question)


@pytest.mark.parametrize("earlier, rest, expected", [
    ("What's StepFun good at?", "Baidu", "What's Baidu good at?"),
    ("How do users on Weibo and Zhihu feel about the alliances?", "people on Twitter and Reddit",
     "How do users on Twitter and Reddit feel about the alliances?"),
    ("What is the company known for?", "its rivals", "What is the company known for its rivals?"),
])
def test_a_continuation_takes_the_earlier_questions_frame(earlier, rest, expected):
    assert continue_frame(earlier, rest) == expected


def test_without_history_or_without_a_cue_the_question_is_read_alone():
    history = [("Who formed the new AI alliances?", answered("Who formed the new AI alliances?"))]
    for question, turns in (("And Baidu?", []),
                            ("What hardware did the US export bans target?", history)):
        reading = read_in_context(question, turns)
        assert (reading.search, reading.reader_questions, reading.leans_on) == (
            question, (question,), None)


def test_a_continuation_is_read_in_the_earlier_frame():
    earlier = "What's StepFun good at?"
    reading = read_in_context("And Baidu?", [(earlier, answered(earlier))])
    assert reading.search == "What's Baidu good at?" and reading.fragment
    assert reading.reader_questions == ("What's Baidu good at?", "And Baidu?")
    assert reading.leans_on == earlier


def test_a_pronoun_is_read_with_the_earlier_question_and_its_highlighted_sentence():
    earlier = "Who formed the new AI alliances?"
    reading = read_in_context("Which of them makes chips?", [(earlier, answered(earlier))])
    assert reading.search == f"Which of them makes chips? {earlier} {SENTENCE}"
    assert reading.reader_questions == (f"{earlier} Which of them makes chips?",
                                        "Which of them makes chips?")
    assert not reading.fragment  # a whole question: kept only when it answers better
    # ... and only while it stays on the articles the earlier answer quoted (qa.retriever)
    assert reading.earlier_articles == {"seed"}


def test_it_leans_on_the_latest_turn_that_found_something():
    first = "Which chips are Chinese firms cut off from?"
    history = [(first, answered(first, "They cannot buy Nvidia GPUs.")),
               ("What is the best way to train for a marathon?", abstained("marathon"))]
    reading = read_in_context("What are they used for?", history)
    assert reading.leans_on == first and "Nvidia GPUs" in reading.search


def test_after_turns_that_found_nothing_a_follow_up_is_a_new_topic():
    history = [("How do vaccines work?", abstained("How do vaccines work?"))]
    reading = read_in_context("When did they begin?", history)
    assert not reading.in_context and reading.search == "When did they begin?"


@pytest.mark.parametrize("question, fragment", [
    ("Why?", True), ("Since when?", True), ("And what can it bring to the alliances?", True),
    ("When did they begin?", True), ("What is it meant to compete with?", False),
    ("Which of them makes chips, and what is it known for?", False),
])
def test_only_a_question_that_cannot_stand_alone_is_a_fragment(question, fragment):
    earlier = "Which U.S. measures pushed China to form the alliances?"
    reading = read_in_context(question, [(earlier, answered(earlier))])
    assert reading.in_context and reading.fragment is fragment
