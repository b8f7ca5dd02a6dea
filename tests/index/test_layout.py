"""The index folder: CURRENT, generation names, cleanup, manifest checks, the lock, `qa info`."""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from index_helpers import cli_env, copy_index, run_cli
from qa.errors import BuildLockedError, IndexCorruptError, IndexMissingError
from qa.index import layout
from qa.build import build_index
from qa.index.manifest import (
    FORMAT_VERSION, BuildStats, ChunkerInfo, Counts, DenseInfo, Manifest, ModelInfo,
    read_manifest,
)


def make_generations(index_dir, *names):
    for name in names:
        (index_dir / name).mkdir(parents=True)


def test_read_current_missing_index_says_build(tmp_path):
    with pytest.raises(IndexMissingError, match=r"python -m qa index"):
        layout.read_current(tmp_path)
    assert layout.read_current(tmp_path, required=False) is None


def test_read_current_missing_pointer_with_generations_is_damage(tmp_path):
    make_generations(tmp_path, "gen-000001")
    with pytest.raises(IndexCorruptError) as caught:
        layout.read_current(tmp_path)
    assert str(tmp_path / "CURRENT") in str(caught.value)
    assert "python -m qa index --full" in str(caught.value)


@pytest.mark.parametrize("content", ["gen-000009\n", "../etc\n", "", b"\xff\xfe"])
def test_read_current_bad_pointer(tmp_path, content):
    make_generations(tmp_path, "gen-000001")
    target = tmp_path / "CURRENT"
    target.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(IndexCorruptError, match="not a generation folder"):
        layout.read_current(tmp_path)
    assert layout.read_current(tmp_path, required=False) is None


def test_switch_current_is_atomic_and_leaves_no_temp(tmp_path):
    make_generations(tmp_path, "gen-000001", "gen-000002")
    layout.switch_current(tmp_path, "gen-000001")
    layout.switch_current(tmp_path, "gen-000002")
    assert layout.read_current(tmp_path) == "gen-000002"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CURRENT", "gen-000001", "gen-000002"]


def test_next_generation_skips_orphans_of_crashed_builds(tmp_path):
    assert layout.next_generation(tmp_path) == "gen-000001"
    make_generations(tmp_path, "gen-000003", "gen-000007")  # 7: renamed, never made live
    layout.switch_current(tmp_path, "gen-000003")
    assert layout.next_generation(tmp_path) == "gen-000008"


def test_remove_stale_keeps_current_and_previous(tmp_path):
    make_generations(tmp_path, "gen-000001", "gen-000002", "gen-000003", "gen-000004",
                     ".tmp-gen-000005", ".tmp-old-gen-000000")
    (tmp_path / ".tmp-CURRENT").write_text("gen-000004")
    (tmp_path / "gen-000001" / "dense.faiss").write_bytes(b"x")
    removed = layout.remove_stale(tmp_path, keep=("gen-000004", "gen-000003", None))
    assert sorted(removed) == [".tmp-CURRENT", ".tmp-gen-000005", ".tmp-old-gen-000000",
                               "gen-000001", "gen-000002"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen-000003", "gen-000004"]


def test_publish_makes_a_read_only_generation(tmp_path):
    temp = layout.temp_generation(tmp_path, "gen-000001")
    (temp / "dense.faiss").write_bytes(b"abc")
    final = layout.publish(temp, tmp_path, "gen-000001")
    assert not temp.exists() and layout.generations(tmp_path) == ["gen-000001"]
    assert (final / "dense.faiss").stat().st_mode & 0o777 == 0o444


def a_manifest(name: str, previous: str | None) -> Manifest:
    return Manifest(
        format_version=FORMAT_VERSION, generation=name, previous=previous,
        built_at="2026-01-01T00:00:00+00:00", build_seconds=1.5, corpus_dir="/corpus",
        model=ModelInfo(id="m", fingerprint="f", dim=4),
        chunker=ChunkerInfo(max_tokens=256, overlap_sentences=1, min_tokens=24),
        dense=DenseInfo(backend="faiss", factory="Flat"),
        counts=Counts(articles=1, passages=1, sentences=1),
        build=BuildStats(full=True, added=1, changed=0, removed=0, kept=0, reembedded=0,
                         embedded_passages=1, embedded_sentences=0),
        files={}, articles={"a": "h"},
    )


def test_new_generation_publishes_and_switches_on_commit(tmp_path):
    events = []
    with layout.new_generation(tmp_path, on_published=lambda: events.append(
            ("published", layout.read_current(tmp_path, required=False)))) as gen:
        assert gen.name == "gen-000001" and gen.previous is None
        assert gen.path.name == ".tmp-gen-000001"
        (gen.path / "bm25").mkdir()
        (gen.path / "bm25" / "vocab.json").write_text("{}")
        (gen.path / "dense.faiss").write_bytes(b"abc")
        gen.commit(a_manifest(gen.name, gen.previous))
    # The hook runs with the new folder in place and CURRENT not yet switched.
    assert events == [("published", None)]
    assert layout.read_current(tmp_path) == "gen-000001"
    manifest = read_manifest(tmp_path / "gen-000001")
    assert {name: entry.size for name, entry in manifest.files.items()} == {
        "bm25/vocab.json": 2, "dense.faiss": 3}
    assert manifest.files["dense.faiss"].sha256 == hashlib.sha256(b"abc").hexdigest()
    with layout.new_generation(tmp_path) as gen:
        assert (gen.name, gen.previous) == ("gen-000002", "gen-000001")
        gen.commit(a_manifest(gen.name, gen.previous))
    with layout.new_generation(tmp_path) as gen:
        gen.commit(a_manifest(gen.name, gen.previous))
    # The one before the live generation is kept for readers; older ones go.
    assert layout.generations(tmp_path) == ["gen-000002", "gen-000003"]


@pytest.mark.parametrize("failure", ["exception", "no commit"])
def test_new_generation_leaves_nothing_when_the_block_fails(tmp_path, failure):
    with layout.new_generation(tmp_path) as gen:
        gen.commit(a_manifest(gen.name, gen.previous))
    with pytest.raises((OSError, RuntimeError)):
        with layout.new_generation(tmp_path) as gen:
            (gen.path / "dense.faiss").write_bytes(b"half")
            if failure == "exception":
                raise OSError(28, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CURRENT", "gen-000001"]
    assert layout.read_current(tmp_path) == "gen-000001"


def test_a_manifest_must_match_its_generation(tmp_path):
    with pytest.raises(ValueError, match="committed into gen-000001"):
        with layout.new_generation(tmp_path) as gen:
            gen.commit(a_manifest("gen-000007", None))
    assert layout.generations(tmp_path) == [] and layout.stray_temps(tmp_path) == []


HOLD_LOCK = """
import sys, time
from pathlib import Path
from qa.index import layout
with layout.build_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold_lock(index_dir, seconds):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(index_dir), str(seconds)],
                              cwd=ROOT, env=cli_env(), stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_second_writer_refuses_with_a_clear_message(tmp_path, fake_embedder):
    from qa.config import Settings

    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.txt").write_text("A title\n\nSome text about apples.")
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    holder = hold_lock(settings.index_dir, 30)
    try:
        with pytest.raises(BuildLockedError) as caught:
            build_index(settings, fake_embedder)
        assert "another build is running" in str(caught.value)
        assert "--wait SECONDS" in str(caught.value)
        started = time.monotonic()
        with pytest.raises(BuildLockedError, match="after waiting 0.5 s"):
            build_index(settings, fake_embedder, wait_seconds=0.5)
        assert time.monotonic() - started >= 0.5
        assert fake_embedder.encoded == [] and not (settings.index_dir / "CURRENT").exists()
    finally:
        holder.kill()
        holder.wait()


def test_second_writer_waits_when_asked(tmp_path, fake_embedder):
    from qa.config import Settings

    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.txt").write_text("A title\n\nSome text about apples.")
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    holder = hold_lock(settings.index_dir, 1.5)
    started = time.monotonic()
    report = build_index(settings, fake_embedder, wait_seconds=30)
    assert time.monotonic() - started > 0.5  # it really waited for the holder
    assert holder.wait(5) == 0
    assert report.generation == "gen-000001"


def test_info_prints_the_live_index(seed_settings, tmp_path):
    settings = copy_index(seed_settings, tmp_path)
    result = run_cli(["info", "--index", str(settings.index_dir)])
    assert result.returncode == 0, result.stderr
    live = layout.read_current(settings.index_dir)
    manifest = read_manifest(settings.index_dir / live)
    lines = dict(re.match(r"^(\S.*?)\s{2,}(.*)$", line).groups()
                 for line in result.stdout.splitlines())
    assert lines["generation"] == live
    assert lines["model"].startswith("all-MiniLM-L6-v2 (dim 384")
    assert lines["articles"] == str(manifest.counts.articles)
    assert lines["passages"] == str(manifest.counts.passages)
    assert lines["corpus"] == str(seed_settings.corpus_dir.resolve())
    assert lines["size on disk"].endswith("MiB") and lines["built"].startswith("20")
    build = manifest.build
    assert lines["last build"].startswith(
        f"{build.added} added, {build.changed} changed, {build.removed} removed, "
        f"{build.kept} kept")
    assert lines["health"] == "ok"


def test_info_without_an_index_says_how_to_build(tmp_path):
    result = run_cli(["info", "--index", str(tmp_path / "nothing")])
    assert result.returncode == 2
    assert "no index in" in result.stderr and "python -m qa index" in result.stderr


def test_manifest_has_the_documented_fields(seed_settings):
    folder = seed_settings.index_dir / layout.read_current(seed_settings.index_dir)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {"format_version", "generation", "previous", "built_at", "build_seconds",
            "corpus_dir", "model", "chunker", "dense", "counts", "build", "files",
            "articles"} == manifest.keys()
    assert set(manifest["files"]) >= {"dense.faiss", "vectors.npy", "sentence_vectors.npy",
                                      "passages.sqlite"}
    assert any(name.startswith("bm25/") for name in manifest["files"])
    for name, entry in manifest["files"].items():
        data = (folder / name).read_bytes()
        assert entry == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    # Committed files are read-only: no write bit for anyone (os.access would say root may
    # write, so it could not fail where tests run as root).
    assert all(not (folder / name).stat().st_mode & 0o222 for name in manifest["files"])
