"""Follow-up questions made from SQuAD for training (qa.reader.followups): hand-made cases."""
import random

import pytest

from qa.reader.followups import as_followup, paragraph_followups


def question(text, answer):
    return {"question": text, "answers": [answer]}


@pytest.mark.parametrize("seed", range(3))
def test_what_the_earlier_question_answers_becomes_a_persons_pronoun_after_who(seed):
    earlier = question("Who was the Super Bowl 50 MVP?", "Von Miller")
    later = question("How many tackles did Von Miller make?", "five")
    followup = as_followup(earlier, later, random.Random(seed))
    assert followup.leans_on == "answer"
    assert followup.question in {f"How many tackles did {p} make?" for p in ("he", "she", "they")}
    assert followup.text == f"Who was the Super Bowl 50 MVP? {followup.question}"


def test_a_name_both_questions_use_becomes_it_its_or_a_pronoun_as_object():
    rng = random.Random(0)
    earlier = question("What computing platform did Huawei unveil?", "CloudMatrix 384")
    assert as_followup(earlier, question("When was Huawei founded?", "1987"), rng).question \
        == "When was it founded?"
    assert as_followup(earlier, question("What is Huawei's chip unit called?", "HiSilicon"),
                       rng).question == "What is its chip unit called?"
    assert as_followup(earlier, question("Who runs Huawei?", "Ren Zhengfei"), rng).question \
        == "Who runs it?"
    # A name used as a modifier: "the Huawei phone" -> "its phone".
    assert as_followup(earlier, question("What sold the most of the Huawei phones?", "P30"),
                       rng).question == "What sold the most of its phones?"


def test_a_plural_answer_is_they():
    earlier = question("Which U.S. measures pushed China to form the alliances?",
                       "export controls")
    followup = as_followup(earlier, question("When did export controls begin?", "2022"),
                           random.Random(0))
    assert followup.question == "When did they begin?"


def test_no_followup_when_the_earlier_question_gives_the_answer_away_or_nothing_is_shared():
    rng = random.Random(0)
    earlier = question("Which town's harbour opened in 1901?", "Stromvik")
    assert as_followup(earlier, question("When did the harbour of Stromvik open?", "1901"),
                       rng) is None
    assert as_followup(earlier, question("What does the bakery sell?", "bread"), rng) is None


def test_each_question_of_a_paragraph_follows_another_preferring_an_answer_antecedent():
    paragraph = [question("Who was the Super Bowl 50 MVP?", "Von Miller"),
                 question("How many tackles did Von Miller make in Super Bowl 50?", "five"),
                 question("Where was Super Bowl 50 played?", "Levi's Stadium")]
    found = paragraph_followups(paragraph, random.Random(0))
    by_later = {later["question"]: (earlier["question"], f) for later, earlier, f in found}
    earlier, followup = by_later["How many tackles did Von Miller make in Super Bowl 50?"]
    assert earlier == "Who was the Super Bowl 50 MVP?" and followup.leans_on == "answer"
    # The others lean on the name they share ("Super Bowl 50").
    assert by_later["Where was Super Bowl 50 played?"][1].question == "Where was it played?"
