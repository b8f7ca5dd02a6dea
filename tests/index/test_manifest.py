"""The manifest: written typed, read back equal, and anything it did not write is refused."""
from __future__ import annotations

import dataclasses
import json

import pytest

from qa.errors import IndexCorruptError
from qa.index.manifest import check_files, file_entries, read_manifest, write_manifest
from test_layout import a_manifest

FIX = "python -m qa index --full"


def write(folder, data) -> None:
    (folder / "manifest.json").write_text(data if isinstance(data, str) else json.dumps(data))


def valid(folder) -> dict:
    """A valid manifest of generation `folder.name`, as JSON data to tamper with."""
    write_manifest(folder, a_manifest(folder.name, None))
    return json.loads((folder / "manifest.json").read_text())


def test_round_trip(tmp_path):
    folder = tmp_path / "gen-000001"
    folder.mkdir()
    manifest = a_manifest("gen-000001", None)
    write_manifest(folder, manifest)
    assert read_manifest(folder) == manifest


def test_a_manifest_from_before_sentence_vectors_reads_as_separate(tmp_path):
    """Indexes built before late chunking existed hold separately embedded sentences."""
    folder = tmp_path / "gen-000001"
    folder.mkdir()
    data = valid(folder)
    assert data["model"].pop("sentence_vectors") == "separate"
    write(folder, data)
    assert read_manifest(folder).model.sentence_vectors == "separate"


def tampered(change):
    def apply(data: dict) -> dict:
        change(data)
        return data
    return apply


CASES = {
    "not JSON": ("{not json", "not valid JSON"),
    "deeply nested JSON": ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
    "another format version": ({"format_version": 99}, "format version 99"),
    "old format version": ({"format_version": 1}, "format version 1"),
    "a list": (["a list"], "format version None"),
    "files is a list": (tampered(lambda m: m.update(files=[1, 2])), "files"),
    "a file size as text": (
        tampered(lambda m: m["files"].update({"dense.faiss": {"size": "3", "sha256": "x"}})),
        "files.dense.faiss.size"),
    "a missing section": (tampered(lambda m: m.pop("counts")), "counts"),
    "an unknown key": (tampered(lambda m: m.update(extra=1)), "extra"),
    "a count as a float": (tampered(lambda m: m["counts"].update(passages=1.5)),
                           "counts.passages"),
    "an absolute path": (
        tampered(lambda m: m["files"].update({"/etc/shadow": {"size": 1, "sha256": "x"}})),
        "'/etc/shadow'"),
    "a path that climbs out": (
        tampered(lambda m: m["files"].update({"../../x": {"size": 1, "sha256": "x"}})),
        "'../../x'"),
    "another generation's manifest": (tampered(lambda m: m.update(generation="gen-000009")),
                                      "gen-000009"),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_anything_else_is_refused_with_the_file_and_the_fix(tmp_path, kind):
    folder = tmp_path / "gen-000001"
    folder.mkdir()
    data, message = CASES[kind]
    write(folder, data(valid(folder)) if callable(data) else data)
    with pytest.raises(IndexCorruptError) as caught:
        read_manifest(folder)
    text = str(caught.value)
    assert message in text and str(folder / "manifest.json") in text and FIX in text, text


def test_files_are_checked_by_size_then_by_checksum(tmp_path):
    folder = tmp_path / "gen-000001"
    folder.mkdir()
    (folder / "data.bin").write_bytes(b"0123456789")
    manifest = dataclasses.replace(a_manifest("gen-000001", None), files=file_entries(folder))
    check_files(folder, manifest, checksums=True)
    (folder / "data.bin").write_bytes(b"0123456789"[::-1])  # same size, other bytes
    check_files(folder, manifest, checksums=False)  # sizes alone cannot see it
    with pytest.raises(IndexCorruptError, match="checksum"):
        check_files(folder, manifest, checksums=True)
    (folder / "data.bin").write_bytes(b"01234")
    with pytest.raises(IndexCorruptError, match="5 bytes, the manifest says 10"):
        check_files(folder, manifest, checksums=False)
    (folder / "data.bin").unlink()
    (folder / "data.bin").symlink_to("/etc/hostname")
    with pytest.raises(IndexCorruptError, match="not a regular file"):
        check_files(folder, manifest, checksums=False)
