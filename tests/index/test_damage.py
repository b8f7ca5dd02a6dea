"""Damage is reported, never served: each kind names the file and the fix, and the fix works."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3

import pytest

from conftest import FakeEmbedder
from index_helpers import copy_index, run_cli, small_corpus
from qa.index import layout
from qa.index.generation import Generation
from qa.index.manifest import MANIFEST
from qa.build import build_index
from qa.config import Settings
from qa.errors import IndexCorruptError, IndexMismatchError
from qa.retriever import Retriever

FIX = "python -m qa index --full"
QUESTION = "What prize did the Gamma bakery win?"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, real_embedder) -> Settings:
    """Three tiny articles built with the real model: two generations (live + previous)."""
    settings = small_corpus(tmp_path_factory.mktemp("pristine"))
    (settings.corpus_dir / "delta.txt").write_text("Delta\n\nThe Delta ferry runs again.")
    build_index(settings, real_embedder)
    (settings.corpus_dir / "delta.txt").unlink()
    build_index(settings, real_embedder)
    return settings


@pytest.fixture
def damaged_copy(pristine, tmp_path) -> Settings:
    return copy_index(pristine, tmp_path)


def live(settings: Settings):
    return settings.index_dir / layout.read_current(settings.index_dir)


def edit_manifest(path, change) -> None:
    manifest = json.loads((path / MANIFEST).read_text())
    change(manifest)
    (path / MANIFEST).write_text(json.dumps(manifest))


def truncate(path, keep: float = 0.5) -> None:
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.truncate(int(size * keep))


def scribble(path, at: int, length: int = 512) -> None:
    """Overwrite bytes in place (the size stays the same)."""
    with path.open("r+b") as handle:
        handle.seek(at)
        handle.write(os.urandom(length))


def forget_sizes(path) -> None:
    """As if the manifest listed no files: the loaders' own checks must still hold."""
    edit_manifest(path, lambda m: m.update(files={}))


def point_past_the_sentences(path) -> None:
    """A hand edit of the passages table (the checksum catches it; so do the row checks)."""
    with sqlite3.connect(path / "passages.sqlite") as conn:
        conn.execute("UPDATE passages SET first_sentence = 1000000 WHERE id = 0")


def bump(section: str, key: str):
    return lambda m: m[section].__setitem__(key, m[section][key] + 1)


# kind -> (damage(generation folder, index folder), error, file the message names)
DAMAGE = {
    "dense.faiss missing": (lambda g, i: (g / "dense.faiss").unlink(), IndexCorruptError,
                            "dense.faiss"),
    "dense.faiss truncated": (lambda g, i: truncate(g / "dense.faiss"), IndexCorruptError,
                              "dense.faiss"),
    "dense.faiss truncated, old manifest": (
        lambda g, i: (truncate(g / "dense.faiss"), forget_sizes(g)), IndexCorruptError,
        "dense.faiss"),
    "vectors.npy truncated, old manifest": (
        lambda g, i: (truncate(g / "vectors.npy"), forget_sizes(g)), IndexCorruptError,
        "vectors.npy"),
    "sentence_vectors.npy missing": (lambda g, i: (g / "sentence_vectors.npy").unlink(),
                                     IndexCorruptError, "sentence_vectors.npy"),
    "bm25 file missing, old manifest": (
        lambda g, i: (next((g / "bm25").glob("*.npy")).unlink(), forget_sizes(g)),
        IndexCorruptError, "bm25"),
    "manifest bad JSON": (lambda g, i: (g / "manifest.json").write_text('{"format_version": 1,'),
                          IndexCorruptError, "manifest.json"),
    "manifest missing": (lambda g, i: (g / "manifest.json").unlink(), IndexCorruptError,
                         "manifest.json"),
    "CURRENT missing": (lambda g, i: (i / "CURRENT").unlink(), IndexCorruptError, "CURRENT"),
    "CURRENT names nothing": (lambda g, i: (i / "CURRENT").write_text("gen-000042\n"),
                              IndexCorruptError, "CURRENT"),
    "sqlite pages scribbled": (lambda g, i: scribble(g / "passages.sqlite", 4096, 8192),
                               IndexCorruptError, "passages.sqlite"),
    "sqlite header scribbled": (lambda g, i: scribble(g / "passages.sqlite", 0, 100),
                                IndexCorruptError, "passages.sqlite"),
    "sqlite truncated, old manifest": (
        lambda g, i: (truncate(g / "passages.sqlite"), forget_sizes(g)), IndexCorruptError,
        "passages.sqlite"),
    "counts: passages disagree": (lambda g, i: edit_manifest(g, bump("counts", "passages")),
                                  IndexCorruptError, "dense.faiss"),
    "counts: articles disagree": (lambda g, i: edit_manifest(g, bump("counts", "articles")),
                                  IndexCorruptError, "passages.sqlite"),
    "counts: sentences disagree": (lambda g, i: edit_manifest(g, bump("counts", "sentences")),
                                   IndexCorruptError, "sentence_vectors.npy"),
    "bm25 array overwritten, same size": (
        lambda g, i: scribble(max((g / "bm25").glob("*.npy"), key=lambda p: p.stat().st_size),
                              200, 16),
        IndexCorruptError, "bm25"),
    "passage row points past the sentences": (lambda g, i: point_past_the_sentences(g),
                                              IndexCorruptError, "passages.sqlite"),
    "manifest files is a list": (lambda g, i: edit_manifest(g, lambda m: m.update(files=[1, 2])),
                                 IndexCorruptError, "manifest.json"),
    "manifest names a file outside": (
        lambda g, i: edit_manifest(g, lambda m: m["files"].update(
            {"/etc/shadow": {"size": 1, "sha256": "0"}})),
        IndexCorruptError, "manifest.json"),
    "another model": (
        lambda g, i: edit_manifest(g, lambda m: m["model"].update(id="other", fingerprint="f")),
        IndexMismatchError, "manifest.json"),
    "another chunker": (lambda g, i: edit_manifest(g, bump("chunker", "max_tokens")),
                        IndexMismatchError, "manifest.json"),
}


def answers_gamma(retriever: Retriever) -> bool:
    hits = retriever.search(QUESTION, k=1)
    return bool(hits) and hits[0].passage.article_id == "gamma.txt"


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damage_is_named_and_the_fix_works(kind, damaged_copy, real_embedder):
    damage, error, file = DAMAGE[kind]
    settings = damaged_copy
    damage(live(settings), settings.index_dir)

    with pytest.raises(error) as caught:
        Retriever.open(settings, real_embedder)
    message = str(caught.value)
    assert str(settings.index_dir) in message and file in message, message
    assert FIX in message, message

    report = build_index(settings, real_embedder, full=True)
    assert report.generation == "gen-000003" and report.articles == 3
    assert answers_gamma(Retriever.open(settings, real_embedder))
    assert layout.stray_temps(settings.index_dir) == []


@pytest.mark.parametrize("kind", ["dense.faiss truncated", "sqlite pages scribbled",
                                  "counts: sentences disagree", "another model"])
def test_a_plain_build_does_not_reuse_a_damaged_index(kind, damaged_copy, real_embedder):
    damage, _, _ = DAMAGE[kind]
    damage(live(damaged_copy), damaged_copy.index_dir)
    report = build_index(damaged_copy, real_embedder)
    assert report.kept == 0 and report.reembedded == 3, report.summary()
    assert answers_gamma(Retriever.open(damaged_copy, real_embedder))


def test_a_damaged_new_generation_is_not_served(damaged_copy, real_embedder):
    retriever = Retriever.open(damaged_copy, real_embedder)
    assert retriever.generation.name == "gen-000002"
    (damaged_copy.corpus_dir / "beta.txt").write_text("Beta\n\nThe Beta school closed.")
    build_index(damaged_copy, real_embedder)
    truncate(live(damaged_copy) / "vectors.npy")
    assert answers_gamma(retriever) and retriever.generation.name == "gen-000002"
    build_index(damaged_copy, real_embedder, full=True)
    assert answers_gamma(retriever) and retriever.generation.name == "gen-000004"


def test_damaged_live_and_previous_generations_do_not_block_the_fix(damaged_copy,
                                                                    real_embedder):
    index = damaged_copy.index_dir
    for name in layout.generations(index):
        shutil.rmtree(index / name / "bm25")
        (index / name / "passages.sqlite").write_bytes(b"not a database")
    (index / "CURRENT").unlink()
    info = run_cli(["info", "--index", str(index)])
    assert info.returncode == 2 and "CURRENT is missing" in info.stderr and FIX in info.stderr

    fixed = run_cli(["index", "--full", "--corpus", str(damaged_copy.corpus_dir),
                     "--index", str(index), "-q"])
    assert fixed.returncode == 0, fixed.stderr
    assert "gen-000003: 3 articles" in fixed.stdout
    assert answers_gamma(Retriever.open(damaged_copy, real_embedder))
    info = run_cli(["info", "--index", str(index)])
    assert "health        ok" in info.stdout
    build_index(damaged_copy, real_embedder, full=True)  # the damaged ones age out
    assert layout.generations(index) == ["gen-000003", "gen-000004"]


def test_info_reports_damage_without_loading_the_model(damaged_copy):
    truncate(live(damaged_copy) / "dense.faiss")
    info = run_cli(["info", "--index", str(damaged_copy.index_dir)])
    assert info.returncode == 0
    health = next(line for line in info.stdout.splitlines() if line.startswith("health"))
    assert "DAMAGED" in health and "dense.faiss" in health and FIX in health


def test_an_index_of_another_model_is_a_mismatch(tmp_path, real_embedder):
    settings = small_corpus(tmp_path)
    build_index(settings, FakeEmbedder())
    with pytest.raises(IndexMismatchError) as caught:
        Retriever.open(settings, real_embedder)
    assert "fake-bow" in str(caught.value) and "all-MiniLM-L6-v2" in str(caught.value)
    assert FIX in str(caught.value)
    build_index(settings, real_embedder, full=True)
    assert answers_gamma(Retriever.open(settings, real_embedder))


def test_row_checks_hold_where_checksums_are_skipped(damaged_copy):
    """Large generations skip checksums on load: the passage rows are still checked."""
    point_past_the_sentences(live(damaged_copy))
    with pytest.raises(IndexCorruptError, match="point outside the sentences"):
        Generation.open(live(damaged_copy), checksums=False)


def overwrite_array(path, values) -> None:
    """Replace a .npy file's data with `values` (same dtype and size: checksums catch it,
    sizes do not)."""
    import numpy as np

    array = np.load(path)
    raw = bytearray(path.read_bytes())
    raw[len(raw) - array.nbytes:] = np.full(array.shape, values, dtype=array.dtype).tobytes()
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("array,values", [("indices", 10**6), ("indptr", 7), ("indptr", -1)])
def test_bm25_garbage_is_damage_where_checksums_are_skipped(damaged_copy, real_embedder,
                                                            array, values):
    """Large generations skip checksums on load: garbage in the BM25 arrays must still be
    reported as damage (on load, or by the search that meets it), never an IndexError."""
    overwrite_array(live(damaged_copy) / "bm25" / f"{array}.csc.index.npy", values)
    try:
        generation = Generation.open(live(damaged_copy), checksums=False)
    except IndexCorruptError as exc:
        assert "bm25" in str(exc) and FIX in str(exc)
        return
    from qa.index.live import StaticIndex

    retriever = Retriever(StaticIndex(generation), real_embedder)
    with pytest.raises(IndexCorruptError, match="bm25"):
        for question in (QUESTION, "Alpha council harbour wall", "Beta school library"):
            retriever.search(question, 3, mode="bm25")


@pytest.mark.parametrize("files", [[1, 2], {"/etc/shadow": {"size": 1, "sha256": "0"}}])
def test_info_on_a_tampered_manifest_is_a_clear_error(damaged_copy, files):
    edit_manifest(live(damaged_copy), lambda m: m.update(files=files))
    info = run_cli(["info", "--index", str(damaged_copy.index_dir)])
    assert info.returncode == 2 and "Traceback" not in info.stderr, info.stderr
    assert "manifest.json" in info.stderr and FIX in info.stderr


def test_info_does_not_follow_a_link_planted_in_a_generation(damaged_copy, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 50 * 2**20)
    before = run_cli(["info", "--index", str(damaged_copy.index_dir)]).stdout
    (live(damaged_copy) / "planted").symlink_to(big)
    after = run_cli(["info", "--index", str(damaged_copy.index_dir)]).stdout
    size = [line for line in after.splitlines() if line.startswith("size on disk")]
    assert size == [line for line in before.splitlines() if line.startswith("size on disk")]
