"""Incremental builds: only new and changed articles are embedded; removed ones disappear."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import FakeEmbedder
from index_helpers import (
    ARTICLES, NEW_ANSWER, NEW_ARTICLE, NEW_FILE, NEW_QUESTION, CountingEmbedder,
    add_new_article, copy_index, found_answer, normalise, small_corpus,
)
from qa.index import layout
from qa.build import build_index, build_settings
from qa.config import Settings, cpu_has_bf16
from qa.embed import load_embedder
from qa.errors import ConfigError
from qa.index.generation import Generation
from qa.index.manifest import read_manifest
from qa.retriever import Retriever

@pytest.fixture
def small(tmp_path) -> Settings:
    return small_corpus(tmp_path)


def article_texts(settings: Settings, article_id: str) -> str:
    """Everything an embedder may see for an article: its title line and its text."""
    return (settings.corpus_dir / article_id).read_text(encoding="utf-8")


def stored(settings: Settings) -> dict[tuple[str, int, int], np.ndarray]:
    """(article, start, end) -> passage vector of the live generation."""
    generation = Generation.open(settings.index_dir / layout.read_current(settings.index_dir))
    try:
        passages = generation.db.passages(list(range(generation.passage_count)))
        return {(p.article_id, p.start, p.end): np.array(generation.vectors[i])
                for i, p in passages.items()}
    finally:
        generation.close()


@pytest.mark.parametrize("passage_vectors", ["encoded", "pooled"])
def test_adding_one_article_embeds_only_its_texts(small, fake_embedder, passage_vectors):
    small = small.replace(passage_vectors=passage_vectors)
    build_index(small, fake_embedder)
    fake_embedder.encoded.clear()
    (small.corpus_dir / "delta.txt").write_text(
        "Delta ferry returns\n\nThe Delta ferry is back in service after repairs.\n\n"
        "Tickets cost the same as last year.", encoding="utf-8")

    report = build_index(small, fake_embedder)

    source = normalise(article_texts(small, "delta.txt"))
    assert fake_embedder.encoded, "the new article was not embedded"
    outside = [t for t in fake_embedder.encoded if normalise(t) not in source
               and not all(normalise(line) in source for line in t.splitlines())]
    assert outside == [], f"texts of other articles were embedded: {outside}"
    assert len(fake_embedder.encoded) == report.texts_embedded
    assert (report.added, report.changed, report.removed, report.kept) == (1, 0, 0, 3)
    assert "1 added, 0 changed, 0 removed, 3 kept" in report.summary()
    assert report.generation == "gen-000002" and report.articles == 4


def test_changed_article_is_reembedded_and_removed_one_is_gone(small, fake_embedder):
    build_index(small, fake_embedder)
    fake_embedder.encoded.clear()
    (small.corpus_dir / "beta.txt").write_text(
        ARTICLES["beta.txt"] + "\n\nThe mayor donated an atlas of the moon.", encoding="utf-8")
    (small.corpus_dir / "gamma.txt").unlink()

    report = build_index(small, fake_embedder)

    assert (report.added, report.changed, report.removed, report.kept) == (0, 1, 1, 1)
    assert any("atlas of the moon" in t for t in fake_embedder.encoded)
    assert not any("Alpha" in t for t in fake_embedder.encoded)
    retriever = Retriever.open(small, fake_embedder)
    hits = retriever.search("Gamma bakery rye loaf bread prize", k=10)
    assert "gamma.txt" not in {h.passage.article_id for h in hits}
    assert "gamma.txt" not in {a.id for a in retriever.articles()}
    assert any("atlas of the moon" in h.passage.text
               for h in retriever.search("atlas of the moon", k=3))


@pytest.mark.parametrize("passage_vectors", ["encoded", "pooled"])
def test_incremental_index_equals_a_full_rebuild(small, fake_embedder, passage_vectors):
    small = small.replace(passage_vectors=passage_vectors)
    build_index(small, fake_embedder)
    (small.corpus_dir / "alpha.txt").unlink()
    (small.corpus_dir / "delta.txt").write_text(
        "Delta ferry returns\n\nThe Delta ferry is back in service.\n\nIt sails at dawn.")
    build_index(small, fake_embedder)
    incremental = stored(small)
    report = build_index(small, fake_embedder, full=True)
    full = stored(small)
    assert report.kept == 0 and report.reembedded == 3 and report.embedded_passages > 0
    assert "3 re-embedded" in report.summary()
    assert incremental.keys() == full.keys()
    for key, vector in full.items():
        np.testing.assert_array_equal(incremental[key], vector, err_msg=str(key))


def test_nothing_changed_writes_no_generation(small, fake_embedder):
    build_index(small, fake_embedder)
    fake_embedder.encoded.clear()
    report = build_index(small, fake_embedder)
    assert report.up_to_date and report.generation == "gen-000001"
    assert fake_embedder.encoded == []
    assert "is up to date" in report.summary() and "3 kept" in report.summary()
    assert layout.generations(small.index_dir) == ["gen-000001"]


def test_full_forces_everything(small, fake_embedder):
    build_index(small, fake_embedder)
    fake_embedder.encoded.clear()
    report = build_index(small, fake_embedder, full=True)
    assert not report.up_to_date and report.generation == "gen-000002"
    assert report.embedded_passages == report.passages
    assert len(fake_embedder.encoded) == report.texts_embedded
    assert (report.added, report.changed, report.removed, report.kept) == (0, 0, 0, 0)


def test_another_model_reembeds_everything(small, fake_embedder):
    build_index(small, fake_embedder)
    other = FakeEmbedder()
    other.fingerprint = "fake-bow-v2"
    report = build_index(small, other)
    assert report.kept == 0 and report.reembedded == 3
    assert len(other.encoded) == report.texts_embedded


def test_generations_keep_the_previous_one_and_remove_older(small, fake_embedder):
    build_index(small, fake_embedder)
    for n in range(3):
        (small.corpus_dir / f"extra{n}.txt").write_text(
            f"Extra {n}\n\nNumber {n} is a fine number.\n\nThat is all.")
        build_index(small, fake_embedder)
    assert layout.generations(small.index_dir) == ["gen-000003", "gen-000004"]
    assert layout.read_current(small.index_dir) == "gen-000004"
    manifest = read_manifest(small.index_dir / "gen-000004")
    assert manifest.previous == "gen-000003"
    assert manifest.build.added == 1 and manifest.build.kept == 5


@pytest.mark.parametrize("field,value", [("url", "https://example.org/harbour/moved"),
                                         ("title", "Harbour wall: the council decides"),
                                         ("date", "2025-08-01")])
def test_a_changed_url_or_title_updates_the_stored_citation(tmp_path, fake_embedder, field,
                                                            value):
    # The same text under another link, headline or date: kept as it was, every quote
    # would cite the old one.
    record = {"id": "wall", "title": "Harbour wall vote", "url": "https://example.org/harbour",
              "date": "2025-07-28",
              "text": "The council voted to rebuild the harbour wall.\n\nWork starts in May."}
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    settings.corpus_dir.mkdir()
    feed = settings.corpus_dir / "feed.jsonl"
    feed.write_text(json.dumps(record) + "\n")
    build_index(settings, fake_embedder)
    feed.write_text(json.dumps({**record, field: value}) + "\n")

    report = build_index(settings, fake_embedder)

    assert (report.added, report.changed, report.removed, report.kept) == (0, 1, 0, 0)
    retriever = Retriever.open(settings, fake_embedder)
    (article,) = retriever.articles()
    (hit,) = retriever.search("harbour wall", k=1)
    assert getattr(article, field) == getattr(hit.passage, field) == value


# -- with the real model ------------------------------------------------------------------

def test_real_model_embeds_only_the_new_article(seed_settings, real_embedder, tmp_path):
    settings = copy_index(seed_settings, tmp_path)
    counting = CountingEmbedder(real_embedder)
    retriever = Retriever.open(settings, counting)
    before = retriever.generation.name

    add_new_article(settings)
    report = build_index(settings, counting)

    source = normalise(NEW_ARTICLE)
    assert counting.encoded
    assert all(all(normalise(line) in source for line in text.splitlines())
               for text in counting.encoded), "a text not from the new article was embedded"
    assert len(counting.encoded) == report.texts_embedded
    assert len(set(counting.encoded)) == len(counting.encoded), "a text was embedded twice"
    assert (report.added, report.changed, report.removed, report.kept) == (1, 0, 0, 1)
    assert retriever.generation.name != before  # picked up without a restart
    hits = retriever.search(NEW_QUESTION, k=3)
    assert hits[0].passage.article_id == NEW_FILE and found_answer(hits[:1], [NEW_ANSWER])

    counting.encoded.clear()
    add_new_article(settings, NEW_ARTICLE.replace("42 megawatts", "57 megawatts"))
    report = build_index(settings, counting)
    assert (report.added, report.changed, report.removed, report.kept) == (0, 1, 0, 1)
    assert any("57 megawatts" in t for t in counting.encoded)
    assert found_answer(retriever.search(NEW_QUESTION, k=1), ["57 megawatts"])

    (settings.corpus_dir / NEW_FILE).unlink()
    counting.encoded.clear()
    report = build_index(settings, counting)
    assert (report.added, report.changed, report.removed, report.kept) == (0, 0, 1, 1)
    assert counting.encoded == []
    assert NEW_FILE not in {h.passage.article_id for h in retriever.search(NEW_QUESTION, k=10)}


def test_another_precision_re_embeds_every_article(small, fake_embedder):
    build_index(small, fake_embedder)
    other = FakeEmbedder()
    other.precision = "bf16"
    report = build_index(small, other)
    assert report.kept == 0 and report.reembedded == 3, report.summary()
    assert read_manifest(small.index_dir / report.generation).model.precision == "bf16"
    assert build_index(small, other).up_to_date


def test_auto_keeps_the_live_index_s_precision_and_picks_no_int8_for_late(small,
                                                                         fp32_embedder):
    settings, best = small, "bf16" if cpu_has_bf16() else "int8"
    # A new index: the machine's best.
    assert load_embedder(build_settings(settings)).precision == best
    # An index built before "auto" meant int8: adding to it must not re-embed it all.
    build_index(settings, fp32_embedder)
    assert build_settings(settings).precision == "fp32"
    assert build_settings(settings.replace(precision="bf16")).precision == "bf16"
    kept = load_embedder(build_settings(settings))
    assert kept.precision == "fp32"
    (settings.corpus_dir / "more.txt").write_text("Ferry Resumes\nThe ferry runs again.\n",
                                                  encoding="utf-8")
    assert build_index(settings, kept).kept >= 1
    # Late sentence vectors pool torch's token states: the int8 graph has none.
    late = load_embedder(build_settings(settings.replace(sentence_vectors="late")))
    assert late.precision == ("bf16" if cpu_has_bf16() else "fp32")
    int8 = load_embedder(settings.replace(precision="int8"))
    with pytest.raises(ConfigError, match="pools the torch model's token states"):
        int8.encode_late(["Title\nA sentence."], [[(6, 17)]])
