"""Defect 10: small footguns: terminal escapes from articles, k=None/"abc", lone
surrogates and non-UTF-8 arguments, the upload message for a nameless file, Filters with a
string, refused uploads left in the temp folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from qa.serve.page import Page
from conftest import ROOT, FakeEmbedder
from index_helpers import cli_env, small_corpus
from qa.serve.cli import format_answer
from qa.config import Settings
from qa.errors import ConfigError, QAError
from qa.build import build_index
from qa.types import Answer, Filters, Quote, Span
from qa.web.upload import UploadError, safe_name

# Clear the screen, set the window title, an 8-bit CSI, a bell, a right-to-left override.
NASTY = "\x1b[2J\x1b]0;pwned\x07 \x9b31m \u202eevil"
CONTROLS = ("\x1b", "\x07", "\x9b", "\u202e")


def nasty_answer() -> Answer:
    text = f"The lamp {NASTY} was lit. It shines far."
    quote = Quote(text=text, article_id="a", title=f"Title {NASTY}", source=f"a{NASTY}.txt",
                  date=None, start=0, end=len(text), score=0.9,
                  highlights=(Span(0, text.index(" It")),))
    return Answer(question="q", quotes=(quote,))


@pytest.mark.parametrize("tty", [True, False])
def test_article_text_cannot_drive_the_terminal(tty):
    out = format_answer(nasty_answer(), tty)
    if tty:  # our own bold-yellow mark is the only escape sequence left
        out = out.replace("\033[1;33m", "").replace("\033[0m", "")
    assert not any(c in out for c in CONTROLS), repr(out)
    assert "\\x1b[2J" in out and "\\u202e" in out  # shown, visibly, not executed
    assert "The lamp" in out and "It shines far." in out


@pytest.mark.slow
def test_qa_ask_prints_no_escape_sequences(tmp_path, real_embedder):
    settings = small_corpus(tmp_path)
    (settings.corpus_dir / "lamp.txt").write_text(
        f"Lighthouse lamp {NASTY}\nThe lighthouse lamp {NASTY} was lit on Friday.\n")
    build_index(settings, real_embedder)
    for extra in ([], ["--json"]):
        result = subprocess.run(
            [sys.executable, "-m", "qa", "ask", "When was the lighthouse lamp lit?", "--index",
             str(settings.index_dir), *extra],
            cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert not any(c in result.stdout for c in CONTROLS), repr(result.stdout)
        if extra:  # still the same JSON
            assert "Friday" in json.loads(result.stdout)["quotes"][0]["text"]


@pytest.fixture
def page(tmp_path) -> Page:
    settings = small_corpus(tmp_path)
    build_index(settings, FakeEmbedder())
    return Page(settings, FakeEmbedder())


def test_search_with_k_none_uses_the_default_like_ask(page):
    hits = page.api_search("Which bakery won the bread prize?", None, "hybrid")
    assert 1 <= len(hits) <= page.settings.k
    assert page.api_ask("Which bakery won the bread prize?", None, None)["question"]


@pytest.mark.parametrize("k", ["abc", 2.5, True, [3], float("nan"), "1e9999"])
def test_a_bad_k_is_a_clear_error(page, k):
    import gradio as gr

    for call in (page.api_ask, page.api_search):
        with pytest.raises(gr.Error, match="k must be a whole number"):
            call("Which bakery?", k, "hybrid")


@pytest.mark.parametrize("k,expected", [(3, 3), (3.0, 3), ("2", 2), (" 1 ", 1)])
def test_k_as_the_page_and_clients_send_it(page, k, expected):
    assert len(page.api_search("bakery bread prize rye loaf school harbour", k, "bm25")) \
        == expected


def test_a_lone_surrogate_in_a_question_is_a_clear_error(seed_retriever):
    for call in (seed_retriever.search, seed_retriever.answer):
        with pytest.raises(ConfigError, match="not valid text"):
            call("caf\udce9 prices?", 3)


def test_a_non_utf8_argument_is_a_clear_error(seed_settings):
    result = subprocess.run(
        [sys.executable.encode(), b"-m", b"qa", b"ask", b"caf\xe9 prices?", b"--index",
         os.fsencode(seed_settings.index_dir)],
        cwd=ROOT, env=cli_env(), capture_output=True, timeout=300)
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2 and "Traceback" not in stderr, stderr
    assert "not valid text" in stderr and "UTF-8" in stderr


@pytest.mark.parametrize("name", ["   .txt", ".txt", " . .md"])
def test_a_nameless_upload_says_it_has_no_name(name):
    with pytest.raises(UploadError) as caught:
        safe_name(name)
    message = str(caught.value)
    assert "no file type is not" not in message
    assert repr(name) in message and "has no file name" in message, message


def test_a_file_without_a_type_says_so_plainly():
    with pytest.raises(UploadError) as caught:
        safe_name("README")
    assert str(caught.value).startswith("'README' has no file type; upload .txt")


def test_filters_with_a_string_is_an_error():
    with pytest.raises(ConfigError, match="a list of article ids"):
        Filters(articles="x")
    assert Filters(articles=["x"]).articles == ("x",)


def test_uploads_leave_nothing_in_the_upload_cache(tmp_path):
    cache = tmp_path / "gradio" / "0a1b2c"
    cache.mkdir(parents=True)
    page = Page(Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "i"),
                FakeEmbedder())
    page.upload_cache = tmp_path / "gradio"
    good, empty, pdf = cache / "good.txt", cache / "empty.txt", cache / "notes.pdf"
    good.write_text("Title\nSome text.\n")
    empty.write_text("")
    pdf.write_bytes(b"%PDF")
    outside = tmp_path / "mine.txt"  # not in the cache: never deleted
    outside.write_text("Mine\nText.\n")
    note, _ = page.upload([str(good), str(empty), str(pdf), str(outside)])
    assert "Added" in note and note.count("Not added") == 2
    assert not good.exists() and not empty.exists() and not pdf.exists()
    assert outside.exists()
    assert (page.settings.corpus_dir / "good.txt").exists()


def test_errors_have_a_single_base(page):
    with pytest.raises(QAError):
        page.answer("Which bakery?", "abc", "hybrid")
