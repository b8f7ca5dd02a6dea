"""Quality regression: `qa eval` on the seed dev sets, a squad-dev slice and a
realtimeqa-dev slice, with floors.

Each floor sits at least one question under what the default (the reader on) measures today
(docs/BENCHMARKS.md "Answer quality"; the same with bf16, int8 and fp32 vectors unless said), so one
borderline question does not fail the build and a real regression does. Each says how far
below today it is. "Today" is the lower of the last figures of two machines where they
differ: an AMD EPYC with AVX2 (int8 vectors, last measured with the second reader round) and
an Intel Xeon with AMX (bf16 vectors, the shipped third round), whose int8 reader arithmetic
rounds differently (docs/BENCHMARKS.md "A third round, trained as it reads"). `qa eval` asks
through Retriever.answer, the path users get.
"""
import json
import re
import subprocess
import sys

import pytest

from conftest import EVAL, ROOT, read_jsonl
from qa.answer import relevance
from qa.config import Settings
from qa.retriever import Retriever

pytestmark = pytest.mark.slow


def run_eval(tmp_path, articles, questions, *extra):
    result = subprocess.run(
        [sys.executable, "-m", "qa", "eval", "--articles", str(articles), "--questions",
         str(questions), "--index", str(tmp_path / "index"), "--json", *extra],
        capture_output=True, text=True, cwd=ROOT, timeout=900,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_seed_dev_set_keeps_its_floors(tmp_path):
    m = run_eval(tmp_path, ROOT / "corpus", EVAL / "seed_dev.jsonl",
                 "--unanswerable", str(EVAL / "seed_dev_unanswerable.jsonl"))
    assert (m["answerable"], m["unanswerable"]) == (8, 3)
    assert m["recall_at_5"] >= 7 / 8  # today 8/8: one question below
    assert m["recall_at_1"] >= 6 / 8  # today 7/8 (8/8 on the Xeon): one below
    assert m["highlight_at_1"] >= 6 / 8  # today 7/8 (8/8 on the Xeon; 6/8 without the reader)
    assert m["abstained_answerable"] <= 1 / 8  # today none of 8: one more
    assert m["abstain_recall"] >= 2 / 3  # today 3/3 off-topic questions abstain: one fewer
    assert m["abstain_precision"] >= 3 / 4  # today 3/3: one answerable question abstaining


def test_paraphrased_seed_questions_keep_their_floors(tmp_path):
    # Questions worded the way readers ask. Measured: recall@5 11/12, recall@1 10/12 (9/12
    # on the Xeon), recall@10 12/12, mrr@10 0.868 (0.816), highlight@1 10/12 (9/12; 5/12
    # without the reader), none abstains (1 without the reader; docs/BENCHMARKS.md says what
    # is still missing).
    m = run_eval(tmp_path, ROOT / "corpus", EVAL / "seed_dev_paraphrased.jsonl")
    assert m["answerable"] == 12
    assert m["recall_at_5"] >= 10 / 12  # one question below today
    assert m["recall_at_10"] >= 11 / 12  # one below
    assert m["mrr_at_10"] >= 0.68  # 0.083 below: one question found first lost altogether
    assert m["highlight_at_1"] >= 8 / 12  # one below the Xeon's 9/12
    assert m["abstained_answerable"] <= 1 / 12  # one more than today


def test_follow_ups_keep_their_floors(tmp_path):
    # seed_dev_followups: 8 conversations, 9 follow-ups. Measured: follow-ups recall@5 8/9,
    # highlight@1 5/9 (4/9 on the Xeon), none abstain; the same asked without their
    # history 8/9, 3/9, 2 of 9 abstain (the bar is 9/9 and 7/9: docs/BENCHMARKS.md).
    m = run_eval(tmp_path, ROOT / "corpus", EVAL / "seed_dev_followups.jsonl")
    assert (m["first_turns"], m["followups"]) == (8, 9)
    assert m["followup_recall_at_5"] >= 7 / 9  # one below today
    assert m["followup_highlight_at_1"] >= 3 / 9  # one below the Xeon's 4/9
    assert m["followup_abstained"] <= 1 / 9  # one more than today


# Questions scoring closest to the abstention threshold (0.26) on the seed article, from
# both sides: relevance with the ONNX question encoder users get (in brackets: the torch
# model in fp32). Off-topic, hand-written: the article does not answer them.
NEAR_OFF_TOPIC = [
    "Which university is best for computer science?",  # 0.237 (0.229)
    "What will the weather be in Beijing tomorrow?",  # 0.237 (0.225)
    "How does a semiconductor fab clean its wafers?",  # 0.231 (0.230)
    "Who won the 2022 World Cup?",  # 0.230 (0.217)
]
# Answerable, from seed_dev_paraphrased.jsonl ("may answer" today).
NEAR_ANSWERABLE = [
    "How might ordinary people benefit?",  # 0.278 (0.283)
    "What is the second group called?",  # 0.287 (0.286)
    "Which legal news outlet wrote about the standards strategy?",  # 0.302 (0.308)
]


def test_the_abstention_default_is_pinned_from_both_sides(seed_settings):
    # The default abstain_threshold must sit between the two groups: lowered under 0.237
    # an off-topic question is answered, raised over 0.278 an answerable one abstains.
    # (Without the reader; with it, it still gates off-topic questions: below.)
    retriever = Retriever.open(seed_settings.replace(reranker=False))
    answered = [q for q in NEAR_OFF_TOPIC if not retriever.answer(q).abstained]
    abstained = [q for q in NEAR_ANSWERABLE if retriever.answer(q).abstained]
    assert (answered, abstained) == ([], [])
    # The guards are near the default (else they pin nothing): within 0.04 on each side.
    threshold = Settings().abstain_threshold
    best = {q: max(relevance(h) for h in retriever.search(q, 15))
            for q in NEAR_OFF_TOPIC + NEAR_ANSWERABLE}
    assert max(best[q] for q in NEAR_OFF_TOPIC) >= threshold - 0.04, best
    assert min(best[q] for q in NEAR_ANSWERABLE) <= threshold + 0.04, best


def test_with_the_reader_off_topic_questions_abstain_and_paraphrases_answer(seed_retriever):
    # The reader's probability alone would answer "Which university is best for computer
    # science?" (0.26); the cosine gate (abstain_threshold) keeps it out. The least likely
    # answerable paraphrase ("What is the second group called?") gets 0.08 (0.094 with
    # the torch encoder's candidates, 0.11 with bf16 vectors on a CPU with bf16):
    # reader_abstain_threshold raised over 0.12 abstains.
    assert seed_retriever.reranker is not None
    answered = [q for q in NEAR_OFF_TOPIC if not seed_retriever.answer(q).abstained]
    abstained = [q for q in NEAR_ANSWERABLE if seed_retriever.answer(q).abstained]
    assert (answered, abstained) == ([], [])
    lowest = min(seed_retriever.answer(q).relevance for q in NEAR_ANSWERABLE)
    assert lowest <= Settings().reader_abstain_threshold + 0.07, lowest


def realtimeqa_slice(tmp_path):
    """Every other question, each with the latest article up to its quiz's date that
    contains an answer (the week's news it asks about), plus every 40th article as
    distractors (87 articles, 67 questions), written to tmp_path: the texts are read from
    ../shared/eval, never kept in the project. Building the whole set's index takes half
    an hour here; this, seconds. The article is picked by date, never by the question's
    words: the one sharing the most words with it made an easier subset (recall@5 0.836,
    mrr@10 0.659, highlight@1 0.507 where the whole set has 0.639, 0.514, 0.361).
    """
    space = re.compile(r"\s+")

    def norm(text):
        return space.sub(" ", text).strip().casefold()

    articles = read_jsonl(EVAL / "realtimeqa-dev" / "articles.jsonl")
    questions = read_jsonl(EVAL / "realtimeqa-dev" / "questions.jsonl")[::2]
    texts = [norm(a["text"]) for a in articles]
    keep = set(range(0, len(articles), 40))
    for q in questions:
        quiz_day = f"{q['id'][:4]}-{q['id'][4:6]}-{q['id'][6:8]}"  # ids are YYYYMMDD_n
        having = [i for i, t in enumerate(texts) if articles[i]["date"] <= quiz_day
                  and any(norm(a) in t for a in q["answers"])]
        keep.update(sorted(having, key=lambda i: (articles[i]["date"], -i))[-1:])
    (tmp_path / "articles.jsonl").write_text(
        "".join(json.dumps(articles[i]) + "\n" for i in sorted(keep)))
    (tmp_path / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    return tmp_path / "articles.jsonl", tmp_path / "questions.jsonl", len(questions), len(keep)


def test_realtimeqa_slice_keeps_its_floors(tmp_path):
    # News-quiz questions in other words than the articles'. Measured on the slice with the
    # defaults (int8 where the CPU has no bf16, passage vectors pooled, the reader reading
    # one passage when both stages agree and 40 sentences otherwise, and a sentence with the
    # one before it that it leans on, weight 0.5): recall@5 45/67 (0.672), mrr@10 0.572,
    # highlight@1 29/67 (0.433), none abstains (the same reading 24 and 16 more when unsure;
    # 44/67, 0.573, 29/67 at weight 0.4; 45/67, 0.573, 29/67 reading each sentence alone).
    # Without the reader, fp32: 41/67, 0.495, 24/67, none.
    articles, questions, count, kept = realtimeqa_slice(tmp_path)
    m = run_eval(tmp_path, articles, questions)
    assert m["answerable"] == count == 67 and kept == 87
    assert m["recall_at_5"] >= 44 / 67  # one question below today
    assert m["mrr_at_10"] >= 0.555  # 0.018 below: one question found first lost
    assert m["highlight_at_1"] >= 28 / 67  # one below
    assert m["abstained_answerable"] <= 2 / 67  # one more than today
    # A question that stands on its own is answered as if it came first, also when it holds
    # a word that could lean on a turn before ("its", "these"): after an unrelated turn,
    # the same quotes and highlights, never read with that turn.
    from qa.followup import needs_context

    retriever = Retriever.open(Settings(index_dir=tmp_path / "index"))
    first = "Who won the 2018 FIFA World Cup?"
    history = ((first, retriever.answer(first)),)
    leaning = [q["question"] for q in read_jsonl(questions) if needs_context(q["question"])]
    assert len(leaning) >= 10
    for question in leaning:
        alone, after = retriever.answer(question), retriever.answer(question, history=history)
        assert after.read_with is None, question
        assert [(q.article_id, q.start, q.highlights) for q in after.quotes or after.closest] == [
            (q.article_id, q.start, q.highlights) for q in alone.quotes or alone.closest]


def test_squad_slice_keeps_its_floors(tmp_path):
    # Three articles and every fourth question about them: hundreds of questions, a minute.
    articles = read_jsonl(EVAL / "squad-dev" / "articles.jsonl")[:3]
    titles = {a["title"] for a in articles}
    (tmp_path / "articles.jsonl").write_text("".join(json.dumps(a) + "\n" for a in articles))
    questions = [q for q in read_jsonl(EVAL / "squad-dev" / "questions.jsonl")
                 if q["article"] in titles][::4]
    (tmp_path / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    m = run_eval(tmp_path, tmp_path / "articles.jsonl", tmp_path / "questions.jsonl")
    # Measured: 392 questions, recall@1 0.890, recall@5 0.992, mrr@10 0.936, highlight
    # 0.842, 3 abstain, with pooled passage vectors (chains of one leaning sentence: 0.893,
    # 0.992, 0.937, 0.844, 3; reading 24 and 16 more when unsure:
    # 0.895, 0.990, 0.938, 0.849, 3; at weight 0.4: 0.908, 0.990, 0.945, 0.862; reading
    # each sentence alone: 0.895, 0.992, 0.938, 0.844, 4; without the reader 0.895, 0.990,
    # 0.935, 0.801, none). Questions
    # worded like their paragraph: the floors allow more than one borderline question, so
    # a change of ranking that trades a few is not a failure.
    assert m["answerable"] == len(questions) > 100
    assert m["recall_at_1"] >= 0.86  # 0.030 (12 questions) below today
    assert m["recall_at_5"] >= 0.975  # 0.017 (7 questions) below
    assert m["mrr_at_10"] >= 0.91  # 0.026 below
    assert m["highlight_at_1"] >= 0.80  # 0.044 (17 questions) below
    assert m["abstained_answerable"] <= 0.025  # 6 more than today
