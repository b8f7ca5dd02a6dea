"""`qa chat`: the loop on its own (a recording answerer), then the real command on the seed."""
import subprocess
import sys

from conftest import ROOT
from qa.errors import QAError
from qa.serve.chat import MAX_TURNS, chat
from qa.types import Answer


class Recording:
    """Answers every question with an empty Answer and records the history it was given."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, tuple[str, ...]]] = []

    def __call__(self, question, history):
        self.seen.append((question, tuple(q for q, _ in history)))
        if question == "boom":
            raise QAError("the index is missing")
        return Answer(question=question)


def run(lines: list[str]) -> tuple[Recording, list[str], int]:
    answerer, out, feed = Recording(), [], iter(lines)

    def read(prompt):
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    code = chat(answerer, lambda answer: f"answered {answer.question}", read, out.append)
    return answerer, out, code


def test_each_question_gets_the_turns_before_and_new_forgets_them():
    answerer, out, code = run(["Who formed the alliances?", "And Baidu?", "", ":new",
                               "And Baidu?", ":quit", "never asked"])
    assert code == 0
    assert answerer.seen == [("Who formed the alliances?", ()),
                             ("And Baidu?", ("Who formed the alliances?",)),
                             ("And Baidu?", ())]
    assert "answered And Baidu?" in out and "(a new conversation)" in out


def test_an_error_is_printed_and_the_conversation_goes_on_without_that_turn():
    answerer, out, code = run(["first", "boom", "second"])
    assert code == 0 and "error: the index is missing" in out
    assert answerer.seen[-1] == ("second", ("first",))


def test_the_history_keeps_the_latest_turns_only():
    questions = [f"q{i}" for i in range(MAX_TURNS + 3)]
    answerer, _, _ = run(questions)
    assert answerer.seen[-1][1] == tuple(questions[-MAX_TURNS - 1:-1])


def test_the_command_reads_a_follow_up_with_the_question_before(seed_settings):
    result = subprocess.run(
        [sys.executable, "-m", "qa", "chat", "--index", str(seed_settings.index_dir), "-k", "2"],
        input="What is StepFun known for?\nAnd Baidu?\n", capture_output=True, text=True,
        cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    follow_up = result.stdout.split("(read with your earlier question: What is StepFun "
                                    "known for?)")
    assert len(follow_up) == 2, result.stdout
    assert "Baidu, a leader in AI research and innovation" in follow_up[1]
