"""The reader's stage (pure: hand-made hits, a reader that scores by a word it looks for)."""
import numpy as np
import pytest

from qa.answer import build_answer
from qa.config import Settings
from qa.reader import pair_text, refers_back
from qa.reader.rerank import UNREAD_OFFSET, ReaderReranker, ReadingPlan
from qa.types import Hit, Passage, ScoredSpan, Span

TEXT = ("The port opened in May. Dockers formed a union. The union named Ada Lee its head. "
        "Wages rose by a tenth. Ships now dock at night.")


def spans() -> list[Span]:
    from qa.text.chunk import split_sentences

    return split_sentences(TEXT)


def hit(first: int, last: int, score: float, first_stage: list[float], article="a") -> Hit:
    """A hit over sentences first..last (inclusive) with the first stage's sentence scores."""
    chosen = spans()[first:last + 1]
    start, end = chosen[0].start, chosen[-1].end
    passage = Passage(id=first, article_id=article, title="Harbour news", source="a.txt",
                      date=None, start=start, end=end, text=TEXT[start:end],
                      sentences=tuple(chosen))
    return Hit(passage=passage, score=score, dense_score=0.5, sentences=tuple(
        ScoredSpan(s.start, s.end, f, 0.4) for s, f in zip(chosen, first_stage)))


class WordReader:
    """Probability 0.9 for a text holding `word`, 0.05 otherwise; records what it read."""

    fingerprint = "test"

    def __init__(self, word: str) -> None:
        self.word = word
        self.read: list[list[str]] = []

    def score(self, question, texts):
        self.read.append(list(texts))
        return np.asarray([0.9 if self.word in t else 0.05 for t in texts], dtype=np.float32)


def sentence(i: int) -> str:
    s = spans()[i]
    return TEXT[s.start:s.end]


def test_the_plan_reads_each_passages_best_sentences_in_rank_order_once():
    hits = [hit(0, 2, 0.9, [0.1, 0.5, 0.3]), hit(2, 4, 0.8, [0.3, 0.2, 0.6])]
    chosen = ReaderReranker(None, ReadingPlan(sentences=3, per_passage=2, deep_passages=0)
                            ).choose(hits)
    # Passage 1: sentences 1 and 2 (its best two); passage 2: sentence 4, then 2 again
    # (shared with passage 1, read once), and the budget of 3 is spent.
    keys = [(a, s, e) for a, s, e in chosen]
    assert [TEXT[s:e] for _, s, e in keys] == [sentence(1), sentence(2), sentence(4)]
    assert [r.text for r in chosen.values()] == [pair_text("Harbour news", sentence(i))
                                                 for i in (1, 2, 4)]


def test_the_first_passages_may_give_more_sentences_than_the_rest():
    hits = [hit(0, 2, 0.9, [0.1, 0.5, 0.3]), hit(3, 4, 0.8, [0.3, 0.6])]
    plan = ReadingPlan(sentences=8, per_passage=1, deep_passages=1, per_deep_passage=3)
    chosen = ReaderReranker(None, plan).choose(hits)
    assert [TEXT[s:e] for _, s, e in chosen] == [sentence(1), sentence(2), sentence(0),
                                                 sentence(4)]


def test_the_reader_decides_the_order_and_the_highlight():
    # The first stage prefers passage 1 and, in passage 2, the sentence on wages.
    hits = [hit(0, 1, 0.9, [0.6, 0.5]), hit(2, 3, 0.7, [0.2, 0.5])]
    reader = WordReader("Ada Lee")
    reranked = ReaderReranker(reader, ReadingPlan(sentences=8, weight=0.8)).rerank(
        "Who leads the union?", hits)
    assert [h.passage.id for h in reranked] == [2, 0]
    assert reranked[0].answer_probability == np.float32(0.9).item()
    assert reranked[0].score == 0.8 * np.float32(0.9).item() + 0.2 * 0.7
    assert [s.score for s in reranked[0].sentences] == [np.float32(0.9).item(),
                                                        np.float32(0.05).item()]
    answer = build_answer("Who leads the union?", reranked, 2, Settings())
    quote = answer.quotes[0]
    marked = [quote.text[h.start:h.end] for h in quote.highlights]
    assert marked == [sentence(2)]


class NamedWordReader:
    """Probability 0.9 when the text holds the question's last word, 0.1 otherwise."""

    fingerprint = "test"

    def score(self, question, texts):
        word = question.rstrip("?").split()[-1]
        return np.asarray([0.9 if word in t else 0.1 for t in texts], dtype=np.float32)


def test_with_several_readings_each_sentence_counts_by_its_best():
    hits = [hit(0, 3, 0.9, [0.4, 0.3, 0.2, 0.1])]
    plan = ReadingPlan(sentences=8, per_passage=4, deep_passages=0)
    readings = ("Who named Lee?", "What rose by a tenth?")
    reranked = ReaderReranker(NamedWordReader(), plan).rerank(readings, hits)[0]
    assert [s.score for s in reranked.sentences] == [
        np.float32(p).item() for p in (0.1, 0.1, 0.9, 0.9)]


def test_sentences_left_unread_rank_below_every_read_one_and_keep_their_order():
    hits = [hit(0, 3, 0.9, [0.9, 0.8, 0.2, 0.1])]
    plan = ReadingPlan(sentences=8, per_passage=2, deep_passages=0)
    reranked = ReaderReranker(WordReader("nothing"), plan).rerank("q", hits)[0]
    scores = [s.score for s in reranked.sentences]
    assert scores[:2] == [np.float32(0.05).item()] * 2
    assert scores[2:] == [0.2 + UNREAD_OFFSET, 0.1 + UNREAD_OFFSET]


def test_a_passage_the_reader_did_not_reach_has_probability_zero_and_comes_after():
    hits = [hit(0, 1, 0.9, [0.6, 0.5]), hit(2, 3, 0.85, [0.4, 0.3], article="b")]
    plan = ReadingPlan(sentences=2, per_passage=2, lead_from=None)
    reranked = ReaderReranker(WordReader("Dockers"), plan).rerank("q", hits)
    assert [h.passage.article_id for h in reranked] == ["a", "b"]
    assert reranked[1].answer_probability == 0.0


def test_abstention_reads_the_reader_probability_with_its_own_thresholds():
    hits = ReaderReranker(WordReader("nothing"), ReadingPlan()).rerank(
        "q", [hit(0, 1, 0.9, [0.6, 0.5])])
    settings = Settings(reader_abstain_threshold=0.1, abstain_threshold=0.0)
    assert build_answer("q", hits, 3, settings).abstained
    settings = Settings(reader_abstain_threshold=0.01, reader_confident_threshold=0.5)
    answer = build_answer("q", hits, 3, settings)
    assert not answer.abstained and answer.confidence == "low"


def test_far_from_the_question_only_a_sure_reader_answers():
    from dataclasses import replace

    # Cosines under the gate (abstain_threshold): a byline answering "Who edited it?".
    far = hit(0, 1, 0.9, [0.6, 0.5])
    far = replace(far, dense_score=0.1, sentences=tuple(
        replace(s, similarity=0.1) for s in far.sentences))
    settings = Settings(abstain_threshold=0.26, reader_overrides_gate_from=0.7)
    sure = ReaderReranker(WordReader("Dockers"), ReadingPlan()).rerank("q", [far])
    assert sure[0].answer_probability == np.float32(0.9).item()
    assert not build_answer("q", sure, 3, settings).abstained
    assert build_answer("q", sure, 3, settings.replace(reader_overrides_gate_from=0.95)
                        ).abstained


def test_the_scores_it_sets_are_plain_floats_the_json_api_can_send():
    import dataclasses
    import json

    reranked = ReaderReranker(WordReader("Dockers"), ReadingPlan()).rerank(
        "q", [hit(0, 2, 0.9, [0.6, 0.5, 0.4])])
    assert json.loads(json.dumps(dataclasses.asdict(reranked[0])))["answer_probability"] > 0.5


def test_when_a_first_sentence_answers_surely_the_rest_are_not_read():
    hits = [hit(0, 4, 0.9, [0.5, 0.4, 0.3, 0.2, 0.1])]
    plan = ReadingPlan(sentences=8, per_passage=5, deep_passages=0, first_read=2,
                       sure_from=0.8, lead_from=None)
    sure = WordReader("port")  # sentence 0, read first: 0.9
    reranked = ReaderReranker(sure, plan).rerank("q", hits)[0]
    assert [len(texts) for texts in sure.read] == [2]
    assert reranked.answer_probability == np.float32(0.9).item()
    assert [s.score for s in reranked.sentences][2:] == [0.3 + UNREAD_OFFSET,
                                                        0.2 + UNREAD_OFFSET,
                                                        0.1 + UNREAD_OFFSET]
    unsure = WordReader("tenth")  # sentence 3: only in the second read
    reranked = ReaderReranker(unsure, plan).rerank("q", hits)[0]
    assert [len(texts) for texts in unsure.read] == [2, 3]
    assert reranked.answer_probability == np.float32(0.9).item()


LEAD = ReadingPlan(sentences=8, per_passage=1, deep_passages=1, per_deep_passage=2,
                   lead_from=0.1, lead_sure_from=0.5)


def test_when_the_first_stage_leads_and_the_reader_agrees_only_the_first_passage_is_read():
    hits = [hit(0, 1, 0.9, [0.6, 0.5]), hit(2, 3, 0.7, [0.4, 0.3], article="b"),
            hit(4, 4, 0.6, [0.2], article="c")]
    reader = WordReader("Dockers")  # sentence 1, in the first passage
    reranked = ReaderReranker(reader, LEAD).rerank("q", hits)
    assert reader.read == [[pair_text("Harbour news", sentence(i)) for i in (0, 1)]]
    # The first stage's order and scores stay; what was not read has no probability and
    # ranks its sentences as the first stage did.
    assert [(h.passage.article_id, h.score) for h in reranked] == [("a", 0.9), ("b", 0.7),
                                                                   ("c", 0.6)]
    assert reranked[0].answer_probability == np.float32(0.9).item()
    assert [h.answer_probability for h in reranked[1:]] == [None, None]
    assert [s.score for s in reranked[1].sentences] == [0.4 + UNREAD_OFFSET,
                                                        0.3 + UNREAD_OFFSET]
    answer = build_answer("q", reranked, 3, Settings(reader_confident_threshold=0.5))
    # Graded by what the reader read; the first stage's other quotes still follow.
    assert answer.relevance == np.float32(0.9).item() and answer.confidence == "answered"
    assert [q.article_id for q in answer.quotes] == ["a", "b", "c"]
    assert [answer.quotes[0].text[h.start:h.end] for h in answer.quotes[0].highlights] == [
        sentence(1)]


def test_when_the_reader_finds_no_answer_in_the_leading_passage_it_reads_on():
    hits = [hit(0, 1, 0.9, [0.6, 0.5]), hit(2, 3, 0.7, [0.4, 0.3], article="b")]
    reader = WordReader("Ada Lee")  # sentence 2, in the second passage
    reranked = ReaderReranker(reader, LEAD).rerank("q", hits)
    assert [len(texts) for texts in reader.read] == [2, 1]  # nothing read twice
    assert [h.passage.article_id for h in reranked] == ["b", "a"]
    assert [h.answer_probability for h in reranked] == [np.float32(0.9).item(),
                                                        np.float32(0.05).item()]


def test_a_small_lead_or_a_rival_with_other_words_means_reading_on_a_copy_does_not():
    reranker = ReaderReranker(None, LEAD)
    close = [hit(0, 1, 0.9, [0.6, 0.5]), hit(2, 3, 0.85, [0.4, 0.3], article="b")]
    assert not reranker.leads(close)
    copy = hit(0, 1, 0.88, [0.6, 0.5], article="copy")  # the same text, another article
    assert reranker.leads([close[0], copy, hit(2, 3, 0.7, [0.4, 0.3], article="b")])
    assert reranker.leads(close[:1])
    assert not ReaderReranker(None, ReadingPlan(lead_from=None)).leads(close[:1])


def test_a_window_read_beside_one_not_read_is_graded_by_its_probability():
    from dataclasses import replace

    read = replace(hit(0, 2, 0.9, [0.6, 0.5, 0.4]), answer_probability=0.2)
    beside = replace(hit(2, 3, 0.5, [0.4, 0.3]), dense_score=0.8)  # overlaps: sentence 2
    answer = build_answer("q", [read, beside], 3, Settings())
    assert len(answer.quotes) == 1 and answer.relevance == 0.2


@pytest.mark.parametrize("sentence,leans", [
    ("This move, driven by Huawei, was swift.", True),
    ("Despite these efforts, it failed.", True),
    ("Its owner sold it.", True),
    ("Mackenzie Ferguson", True),  # a byline's name: who it is, the line before says
    ("Italy won the match.", False),  # "It" only as a word of its own
    ("The union named Ada Lee its head.", False),
    ("Prices rose.", False),  # short, but a sentence
    ("Despite the rain, the match went on.", False),
])
def test_refers_back_knows_a_sentence_that_needs_the_one_before_it(sentence, leans):
    assert refers_back(sentence) is leans


class BothWordsReader:
    """Probability 0.9 for a text holding both words, 0.05 otherwise."""

    fingerprint = "test"

    def __init__(self, *words: str) -> None:
        self.words = words
        self.read: list[str] = []

    def score(self, question, texts):
        self.read.extend(texts)
        return np.asarray([0.9 if all(w in t for w in self.words) else 0.05 for t in texts],
                          dtype=np.float32)


# "It" in the third sentence is the union of the second: only the two together answer.
REFERRING = "The port opened in May. Dockers formed a union. It named Ada Lee its head."


def referring_hit(first: int) -> Hit:
    from qa.text.chunk import split_sentences

    chosen = split_sentences(REFERRING)[first:]
    start = chosen[0].start
    passage = Passage(id=first, article_id="a", title="Harbour news", source="a.txt",
                      date=None, start=start, end=len(REFERRING), text=REFERRING[start:],
                      sentences=tuple(chosen))
    return Hit(passage=passage, score=0.9, dense_score=0.5, sentences=tuple(
        ScoredSpan(s.start, s.end, 0.5, 0.4) for s in chosen))


def test_a_sentence_that_refers_back_is_read_and_marked_with_the_one_before_it():
    reader = BothWordsReader("union", "Lee")
    plan = ReadingPlan(sentences=8, per_passage=3, deep_passages=0)
    reranked = ReaderReranker(reader, plan).rerank("Who leads the union?", [referring_hit(0)])
    together = "Dockers formed a union. It named Ada Lee its head."
    assert pair_text("Harbour news", together) in reader.read
    assert reranked[0].answer_probability == np.float32(0.9).item()
    answer = build_answer("Who leads the union?", reranked, 1, Settings())
    quote = answer.quotes[0]
    assert [quote.text[h.start:h.end] for h in quote.highlights] == [together]
    # Without antecedents the reader sees "It named Ada Lee its head." alone.
    alone = ReaderReranker(BothWordsReader("union", "Lee"),
                           ReadingPlan(sentences=8, per_passage=3, deep_passages=0,
                                       antecedents=False))
    assert alone.rerank("Who leads the union?", [referring_hit(0)])[0].answer_probability \
        == np.float32(0.05).item()


def test_a_chain_of_leaning_sentences_is_followed_as_far_back_as_the_plan_says():
    from qa.text.chunk import split_sentences

    text = "The port opened in May. Dockers formed a union. It grew fast. Its head is Ada Lee."
    chosen = split_sentences(text)
    passage = Passage(id=0, article_id="a", title="Harbour news", source="a.txt", date=None,
                      start=0, end=len(text), text=text, sentences=tuple(chosen))
    last = chosen[-1]
    found = Hit(passage=passage, score=0.9, dense_score=0.5, sentences=tuple(
        ScoredSpan(c.start, c.end, 0.5 if c is last else 0.1, 0.4) for c in chosen))
    for chain, read_from in ((1, "It grew fast."), (2, "Dockers formed a union."),
                             (3, "Dockers formed a union.")):  # that one leans on nothing
        plan = ReadingPlan(per_passage=1, deep_passages=0, antecedent_chain=chain)
        reading = ReaderReranker(None, plan).choose([found])[("a", last.start, last.end)]
        assert reading.text == pair_text("Harbour news", text[text.index(read_from):])
        assert reading.start == text.index(read_from)


def test_a_passage_that_opens_with_the_referring_sentence_reads_it_alone():
    reader = BothWordsReader("It", "Lee")
    plan = ReadingPlan(sentences=8, per_passage=3, deep_passages=0)
    reranked = ReaderReranker(reader, plan).rerank("q", [referring_hit(2)])
    assert reader.read == [pair_text("Harbour news", "It named Ada Lee its head.")]
    marked = reranked[0].sentences[0]
    assert REFERRING[marked.start:marked.end] == "It named Ada Lee its head."
