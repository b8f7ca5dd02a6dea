"""Integration: the seed article indexed with the real bundled model and real FAISS."""
import pytest

from conftest import EVAL, read_jsonl
from qa.text.chunk import SPECIAL_TOKENS
from qa.errors import ConfigError
from qa.eval import answers_in, read_questions

PROMO = "Learn to use AI like a Pro"


def all_passages(retriever):
    generation = retriever.generation
    return list(generation.db.passages(list(range(generation.passage_count))).values())


def test_every_passage_is_a_verbatim_slice_of_its_article(seed_retriever):
    passages = all_passages(seed_retriever)
    assert len(passages) > 10
    for passage in passages:
        article_text = seed_retriever.article_text(passage.article_id)
        assert article_text[passage.start:passage.end] == passage.text
        assert passage.sentences, passage
        for sentence in passage.sentences:
            assert passage.start <= sentence.start < sentence.end <= passage.end


def test_no_passage_contains_the_repeated_promo(seed_retriever):
    assert not [p.id for p in all_passages(seed_retriever) if PROMO in p.text]


def test_no_passage_is_truncated_by_the_model(seed_retriever, real_embedder):
    texts = [f"{p.context}\n{p.text}" for p in all_passages(seed_retriever)]
    limit = real_embedder.max_tokens
    assert max(real_embedder.count_tokens(texts)) + SPECIAL_TOKENS <= limit


def test_hits_carry_article_metadata(seed_retriever):
    hits = seed_retriever.search("Which companies joined?", k=5)
    assert len(hits) == 5
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for hit in hits:
        assert hit.passage.title == "Chinese AI Powerhouses Unite to Sidestep U.S. Tech Curbs!"
        assert hit.passage.source == "000_2cb1631c0639e46a.txt"
        assert hit.passage.article_id == "000_2cb1631c0639e46a.txt"


@pytest.mark.parametrize("question", read_questions(EVAL / "seed_dev.jsonl"), ids=lambda q: q.id)
def test_every_seed_question_has_an_answering_passage_in_the_top_5(seed_retriever, question):
    hits = seed_retriever.search(question.question, k=5)
    assert any(answers_in(hit.passage.text, question) for hit in hits), [
        hit.passage.text[:80] for hit in hits
    ]


def test_seed_dev_file_has_the_eight_questions():
    assert len(read_jsonl(EVAL / "seed_dev.jsonl")) == 8


@pytest.mark.parametrize("blank", ["", "   ", "\n\t"])
def test_a_blank_question_finds_nothing(seed_retriever, blank):
    assert seed_retriever.search(blank) == []
    answer = seed_retriever.answer(blank)
    assert answer.quotes == () and not answer.abstained


@pytest.mark.parametrize("k", [0, -1])
def test_k_must_be_positive(seed_retriever, k):
    with pytest.raises(ConfigError, match=f"k must be > 0, got {k}"):
        seed_retriever.search("Who formed the alliance?", k=k)


def test_a_huge_question_is_a_clear_error(seed_retriever):
    with pytest.raises(ConfigError, match="characters long"):
        seed_retriever.search("why " * 5000)


def test_unknown_mode_is_a_clear_error(seed_retriever):
    with pytest.raises(ConfigError, match="mode must be one of"):
        seed_retriever.search("Who?", mode="magic")


def test_load_retriever_from_python(seed_settings):
    from qa import load_retriever

    retriever = load_retriever(seed_settings.index_dir)
    hits = retriever.search("Which platform did Huawei unveil as a rival to Nvidia?", k=3)
    assert any("CloudMatrix 384" in h.passage.text for h in hits)
