"""The shipped reader itself: it loads, it reads, and damage is never silent (real model)."""
import logging
import shutil
from dataclasses import replace

import pytest

from qa.answer import similarity
from qa.errors import ReaderError
from qa.reader import pair_text
from qa.reader.model import ABOUT, GRAPH, MODEL_DIR, TOKENIZER, Reader, verify
from qa.reader.rerank import ReaderReranker
from qa.retriever import Retriever

TITLE = "Chinese AI Powerhouses Unite to Sidestep U.S. Tech Curbs!"


def first_highlight(answer) -> str:
    quote = answer.quotes[0]
    span = quote.highlights[0]
    return quote.text[span.start:span.end]


@pytest.fixture(scope="module")
def reader() -> Reader:
    return Reader()


def test_the_shipped_reader_is_in_the_package_and_matches_its_checksum():
    info = verify(MODEL_DIR)
    assert info.precision == "int8" and info.max_length >= 128
    assert (MODEL_DIR / GRAPH).stat().st_size < 40 * 2**20


def test_it_tells_the_answering_sentence_from_its_neighbours(reader):
    question = "Which companies announced the new alliances?"
    answering = ("On July 28, 2025, China's leading AI companies, including industry giants "
                 "Huawei, Baidu, SenseTime, and chipmaker StepFun, announced the formation "
                 "of two critical industry alliances.")
    context = ("These alliances aim to reduce dependence on U.S. technology and foster "
               "indigenous innovation, marking a pivotal shift toward AI sovereignty.")
    unrelated = "The weather in Lisbon was mild for most of the week."
    # As the retriever reads them: after the article's title.
    yes, near, no = reader.score(question, [pair_text(TITLE, t)
                                            for t in (answering, context, unrelated)])
    assert yes > 0.5 > near > no
    assert yes > near + 0.3 and no < 0.05


def test_a_sentence_scores_the_same_whatever_is_read_with_it(reader):
    # The int8 graph quantises activations per run: scored in one run with other pairs, a
    # pair's probability moved with them. Each pair is now a run of its own.
    question = "Which companies announced the new alliances?"
    answering = pair_text(TITLE, "Huawei, Baidu, SenseTime and StepFun announced two "
                                 "industry alliances on July 28, 2025.")
    others = [pair_text(TITLE, f"Paragraph {i} of a long report on chips, exports, "
                               f"{'and supply chains ' * i}in Asia.") for i in range(1, 24)]
    alone = reader.score(question, [answering])[0]
    among = reader.score(question, [*others[:11], answering, *others[11:]])[11]
    assert alone == among
    # Pairs of other questions in the same call do not move it either.
    mixed = reader.score_pairs(["Who won the match?", question], [others[0], answering])
    assert mixed[1] == alone


def test_it_re_ranks_a_seed_case_the_plain_ranking_gets_wrong(seed_settings, real_embedder,
                                                              seed_retriever):
    # A paraphrase (seed_dev_paraphrased): without the reader the first quote marks a
    # sentence about the government's support.
    question = "What will decide whether the alliances last?"
    answer_words = "ability to produce technologies that can rival those of Western companies"
    plain = Retriever.open(seed_settings.replace(reranker=False), real_embedder)
    assert answer_words not in first_highlight(plain.answer(question))
    answer = seed_retriever.answer(question)
    # The reader's probability that the marked sentence answers: 0.45 today.
    assert seed_retriever.reader_problem is None and answer.relevance > 0.35
    assert answer_words in first_highlight(answer)


def test_a_sentence_that_leans_on_the_one_before_is_read_and_marked_with_it(seed_retriever):
    # seed_dev d05. Alone, "Despite these efforts, achieving effective collaboration can be
    # daunting due to differing corporate cultures and priorities." does not say whose
    # collaboration (the reader gave it 0.14, and marked the sentence before, which names
    # the firms but not the difficulty); read after that sentence, it answers.
    question = "Why is collaboration between these companies hard?"
    reranker = seed_retriever.reranker
    alone = Retriever(seed_retriever.index, seed_retriever.embedder, seed_retriever.settings,
                      ReaderReranker(reranker.reader, replace(reranker.plan,
                                                              antecedents=False)))
    assert "differing corporate cultures" not in first_highlight(alone.answer(question))
    marked = first_highlight(seed_retriever.answer(question))
    assert "differing corporate cultures" in marked and marked.startswith("Collaboration among")


def test_a_byline_read_with_its_label_answers_though_far_from_the_question(seed_retriever):
    # seed_dev_paraphrased p09: "Mackenzie Ferguson" alone read 0.04; after "Edited By",
    # 0.79. No passage is near the question (best cosine 0.23, under the gate), but a
    # reader this sure is not overruled.
    question = "Who edited the piece?"
    hits = seed_retriever.search(question, 5)
    assert max(similarity(h) for h in hits) < seed_retriever.settings.abstain_threshold
    answer = seed_retriever.answer(question)
    assert not answer.abstained
    assert answer.relevance >= seed_retriever.settings.reader_overrides_gate_from
    assert "Mackenzie Ferguson" in first_highlight(answer)


class CountingReader:
    """The real reader, counting the pairs it reads."""

    def __init__(self, reader) -> None:
        self.reader, self.fingerprint, self.pairs = reader, reader.fingerprint, 0

    def score(self, question, texts):
        self.pairs += len(texts)
        return self.reader.score(question, texts)


def test_when_both_stages_agree_it_reads_one_passage_and_quotes_the_same_first(
        seed_retriever):
    # seed_dev: the first ranking leads by 0.16 and the reader gives the CloudMatrix
    # sentence 0.96; reading on to 40 sentences gives the same first quote.
    question = "Which platform did Huawei unveil as a rival to Nvidia?"
    plan = seed_retriever.reranker.plan
    answers, pairs = [], []
    for lead_from in (plan.lead_from, None):
        counting = CountingReader(seed_retriever.reranker.reader)
        retriever = Retriever(seed_retriever.index, seed_retriever.embedder,
                              seed_retriever.settings,
                              ReaderReranker(counting, replace(plan, lead_from=lead_from)))
        answers.append(retriever.answer(question))
        pairs.append(counting.pairs)
    short, long = answers
    assert pairs[0] <= plan.per_deep_passage < pairs[1]
    assert "CloudMatrix" in first_highlight(short)
    # The same first quote and mark; the quotes after it keep the first ranking's order.
    assert (short.quotes[0].start, short.quotes[0].highlights) == (
        long.quotes[0].start, long.quotes[0].highlights)
    assert short.confidence == long.confidence == "answered"


@pytest.mark.parametrize("damage", ["missing graph", "changed byte", "no description",
                                    "bad tokenizer"])
def test_a_damaged_reader_is_an_error_that_names_the_file(tmp_path, damage):
    folder = tmp_path / "reader"
    shutil.copytree(MODEL_DIR, folder)
    if damage == "missing graph":
        (folder / GRAPH).unlink()
    elif damage == "changed byte":
        data = bytearray((folder / GRAPH).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (folder / GRAPH).write_bytes(bytes(data))
    elif damage == "no description":
        (folder / ABOUT).unlink()
    else:
        (folder / TOKENIZER).write_text("{not json", encoding="utf-8")
    with pytest.raises(ReaderError) as caught:
        Reader(folder)
    assert str(folder) in str(caught.value)


def test_a_retriever_with_a_damaged_reader_warns_and_answers_with_the_plain_ranking(
        tmp_path, seed_settings, real_embedder, caplog):
    folder = tmp_path / "reader"
    shutil.copytree(MODEL_DIR, folder)
    (folder / GRAPH).write_bytes(b"not a model")
    with caplog.at_level(logging.WARNING, logger="qa.retriever"):
        retriever = Retriever.open(seed_settings.replace(reader_model=folder), real_embedder)
    assert retriever.reranker is None
    assert "damaged" in retriever.reader_problem and "plain ranking" in retriever.reader_problem
    assert any("reader is off" in r.getMessage() for r in caplog.records)
    plain = Retriever.open(seed_settings.replace(reranker=False), real_embedder)
    question = "When were the alliances announced?"
    assert ([(q.start, q.highlights) for q in retriever.answer(question).quotes]
            == [(q.start, q.highlights) for q in plain.answer(question).quotes])
