"""Defect 5: symbolic links that leave the corpus folder are not followed (and say so)."""
from __future__ import annotations

import pytest

from conftest import FakeEmbedder
from qa.config import Settings
from qa.build import build_index
from qa.text.ingest import load_corpus

SECRET = "Secret notes\nThe vault password is hunter2.\n"
REAL = "Harbour news\nThe harbour reopened on Monday.\n"


@pytest.fixture
def linked(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (outside / "more.txt").write_text("More\nAnother secret line.\n")
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "real.txt").write_text(REAL)
    (corpus / "shadow.txt").symlink_to(outside / "secret.txt")  # ln -s /etc/shadow ...
    (corpus / "sub" / "up.txt").symlink_to("../../outside/secret.txt")  # relative, climbs out
    (corpus / "ext").symlink_to(outside, target_is_directory=True)  # a folder outside
    (corpus / "hop.txt").symlink_to(corpus / "sub" / "up.txt")  # inside, then out
    (corpus / "alias.txt").symlink_to(corpus / "real.txt")  # stays inside: followed
    (corpus / "dangling.txt").symlink_to(tmp_path / "nothing.txt")
    return corpus


def test_links_out_of_the_corpus_are_skipped_and_named(linked):
    corpus = load_corpus(linked)
    assert [a.id for a in corpus.articles] == ["real.txt"]
    assert all("hunter2" not in a.text for a in corpus.articles)
    reasons = {s.source: s for s in corpus.skipped}
    for name in ("shadow.txt", "sub/up.txt", "ext", "hop.txt", "dangling.txt"):
        assert reasons[name].reason == "symbolic link out of the corpus folder", name
        assert "not followed" in reasons[name].detail
    # A link to a file inside is read; it is the same text as its target, so it counts once.
    assert reasons["alias.txt"].reason == "duplicate"
    assert "real.txt" in reasons["alias.txt"].detail


def test_a_corpus_folder_that_is_itself_a_link_works(linked, tmp_path):
    (tmp_path / "corpus-link").symlink_to(linked, target_is_directory=True)
    corpus = load_corpus(tmp_path / "corpus-link")
    assert [a.id for a in corpus.articles] == ["real.txt"]


def test_a_build_never_indexes_what_a_link_points_out_to(linked, tmp_path):
    settings = Settings(corpus_dir=linked, index_dir=tmp_path / "index")
    report = build_index(settings, FakeEmbedder())
    assert report.articles == 1
    from qa.retriever import Retriever

    retriever = Retriever.open(settings, FakeEmbedder())
    # Every passage the index holds, not only those a search returns.
    generation = retriever.generation
    passages = generation.db.passages(list(range(generation.passage_count))).values()
    assert [p.text for p in passages] == ["The harbour reopened on Monday."]
