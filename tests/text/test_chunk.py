"""Unit tests of chunking (pure; word counts stand in for the tokenizer)."""
import re

from qa.config import ChunkSettings
from qa.text.chunk import SPECIAL_TOKENS, chunk_article, embedding_text, split_sentences
from qa.text.clean import join_paragraphs
from qa.types import Article


def count_words(texts):
    return [len(re.findall(r"\w+|[^\w\s]", t)) for t in texts]


def article(paragraphs, title="A title"):
    return Article(id="a", title=title, text=join_paragraphs(paragraphs), source="a.txt")


def sentence(n, words=10):
    return f"Sentence{n} " + " ".join(f"w{n}x{i}" for i in range(words - 1)) + "."


def test_split_sentences_gives_exact_offsets():
    text = "Dr. Li Wei spoke. The U.S. acted in 2022!  Then what?"
    spans = split_sentences(text, offset=100)
    assert [text[s.start - 100:s.end - 100] for s in spans] == [
        "Dr. Li Wei spoke.", "The U.S. acted in 2022!", "Then what?",
    ]


def test_passages_are_verbatim_slices_and_fit_the_budget():
    paragraphs = [" ".join(sentence(p * 100 + i) for i in range(12)) for p in range(5)]
    a = article(paragraphs)
    settings = ChunkSettings(max_tokens=64, overlap_sentences=1, min_tokens=8)
    chunks = chunk_article(a, count_words, settings)
    assert len(chunks) > 5
    title_cost = count_words([a.title])[0] + 1
    for c in chunks:
        body = a.text[c.start:c.end]
        assert body == body.strip() and body
        assert count_words([body])[0] + title_cost + SPECIAL_TOKENS <= settings.max_tokens
        # The chunk is its sentences, first to last.
        assert (c.sentences[0].start, c.sentences[-1].end) == (c.start, c.end)
        assert all(a.text[s.start:s.end] in body for s in c.sentences)
        assert embedding_text(c, a.text).endswith(body)


def test_every_sentence_is_in_some_passage():
    paragraphs = [" ".join(sentence(p * 100 + i) for i in range(7)) for p in range(3)]
    a = article(paragraphs)
    chunks = chunk_article(a, count_words, ChunkSettings(max_tokens=50, min_tokens=8))
    covered = {(s.start, s.end) for c in chunks for s in c.sentences}
    for p in paragraphs:
        for s in split_sentences(p):
            start = a.text.index(p) + s.start
            assert (start, start + s.end - s.start) in covered


def test_overlap_repeats_the_last_sentence_of_a_window():
    a = article([" ".join(sentence(i) for i in range(10))])
    chunks = chunk_article(a, count_words, ChunkSettings(max_tokens=60, overlap_sentences=1,
                                                         min_tokens=8))
    assert len(chunks) >= 2
    for left, right in zip(chunks, chunks[1:]):
        assert left.sentences[-1] == right.sentences[0]


def test_heading_joins_the_paragraph_after_it():
    a = article(["Background on the alliances", sentence(1, 30) + " " + sentence(2, 30)])
    chunks = chunk_article(a, count_words, ChunkSettings(max_tokens=256))
    assert len(chunks) == 1
    assert a.text[chunks[0].start:chunks[0].end].startswith("Background on the alliances\n\n")


def test_a_sentence_longer_than_the_budget_is_cut_at_words():
    a = article([sentence(1, 400)])
    chunks = chunk_article(a, count_words, ChunkSettings(max_tokens=100, min_tokens=8))
    assert len(chunks) >= 4
    assert "".join(a.text[c.start:c.end] for c in chunks).replace(" ", "") == a.text.replace(" ", "")
