"""qa.web.upload: uploads land in the corpus folder only, with a clear message when refused."""
from __future__ import annotations

import os

import pytest

from qa.web.upload import UploadError, safe_name, save_file, save_upload

ARTICLE = b"A title\nSome text of the article.\n"


@pytest.mark.parametrize("name,expected", [
    ("story.txt", "story.txt"),
    ("Story.TXT", "Story.txt"),
    ("../../etc/evil.md", "evil.md"),
    ("..\\..\\windows\\evil.html", "evil.html"),
    ("/abs/path/x.htm", "x.htm"),
    (".hidden.txt", "hidden.txt"),
    ("bad name<x>|?.jsonl", "bad name_x_.jsonl"),
    ("Über die Lage.txt", "Über die Lage.txt"),
    ("a" * 300 + ".txt", "a" * 116 + ".txt"),
])
def test_safe_name(name, expected):
    assert safe_name(name) == expected


@pytest.mark.parametrize("name", ["notes.pdf", "script.py", "README", "x.txt.exe", "..", "",
                                  ".txt", "../.txt"])
def test_refused_names(name):
    with pytest.raises(UploadError) as info:
        safe_name(name)
    assert repr(name) in str(info.value)


def test_save_writes_inside_the_corpus(tmp_path):
    corpus = tmp_path / "corpus"
    saved = save_upload(ARTICLE, "../../outside.txt", corpus)
    assert saved.path == (corpus / "outside.txt").resolve()
    assert saved.path.read_bytes() == ARTICLE
    assert not (tmp_path / "outside.txt").exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["corpus", "outside.txt"]


def test_never_overwrites(tmp_path):
    first = save_upload(ARTICLE, "a.txt", tmp_path)
    second = save_upload(b"Other\nbody\n", "a.txt", tmp_path)
    third = save_upload(b"Third\nbody\n", "a.txt", tmp_path)
    assert [first.name, second.name, third.name] == ["a.txt", "a (2).txt", "a (3).txt"]
    assert first.path.read_bytes() == ARTICLE


def test_does_not_follow_a_planted_symlink(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    target = tmp_path / "target.txt"
    target.write_text("keep me")
    os.symlink(target, corpus / "a.txt")
    saved = save_upload(ARTICLE, "a.txt", corpus)
    assert saved.name == "a (2).txt"
    assert target.read_text() == "keep me"


def test_size_limit_message(tmp_path):
    with pytest.raises(UploadError, match=r"'big.txt' is 2 KB; the limit is 1 KB per file"):
        save_upload(b"x" * 2048, "big.txt", tmp_path, limit=1024)
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(UploadError, match="limit"):
        save_file(big, tmp_path / "corpus", limit=1024)
    assert not (tmp_path / "corpus").exists()


@pytest.mark.parametrize("data,reason", [
    (b"", "empty"), (b"  \n", "empty"), (b"\x00\x01binary", "binary"),
    (b"caf\xe9 latin-1", "not UTF-8"),
])
def test_bad_content(tmp_path, data, reason):
    with pytest.raises(UploadError, match=reason):
        save_upload(data, "x.txt", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_save_file_uses_the_given_name(tmp_path):
    cached = tmp_path / "cache" / "tmpab12.txt"
    cached.parent.mkdir()
    cached.write_bytes(ARTICLE)
    saved = save_file(cached, tmp_path / "corpus", original_name="My story.txt")
    assert saved.name == "My story.txt" and saved.bytes == len(ARTICLE)


def test_saved_file_is_read_by_ingest(tmp_path):
    from qa.text.ingest import load_corpus

    save_upload(ARTICLE, "../x/story.txt", tmp_path)
    corpus = load_corpus(tmp_path)
    assert [a.title for a in corpus.articles] == ["A title"]
