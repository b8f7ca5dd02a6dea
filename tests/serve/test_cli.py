"""The command line, run as a user runs it (subprocesses on a real seed index)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT


def verbatim(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "qa", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout)


@pytest.mark.parametrize("command", ["index", "ask", "info", "eval", "add", "feeds", "serve"])
def test_every_subcommand_has_help(command):
    result = verbatim(command, "--help")
    assert result.returncode == 0
    assert f"usage: verbatim {command}" in result.stdout


def options(*command: str) -> set[str]:
    """The options a subcommand accepts, from its parser."""
    from qa.serve.cli import parser

    found = parser()
    for name in command:
        found = next(a for a in found._actions if a.dest in ("command", "feeds_command")
                     ).choices[name]
    return {o for a in found._actions for o in a.option_strings}


def test_no_command_accepts_an_option_it_ignores():
    # `info` reads the index and the reader, nothing else.
    assert options("info") == {"-h", "--help", "--index"}
    # Feeds are listed, followed and unfollowed without a model or an index.
    for command in ("add", "remove", "list"):
        assert options("feeds", command) == {"-h", "--help", "--corpus"}
    # The page's own options, the same as app.py's.
    from qa.serve.server import parser as app_parser

    assert options("serve") == {o for a in app_parser()._actions for o in a.option_strings}


def test_help_gives_the_real_defaults():
    from qa.config import Settings
    from qa.eval import eval_index_dir

    assert verbatim("eval", "--help").stdout.count(".verbatim-cache/eval/") == 1
    assert str(eval_index_dir(Path("a.jsonl"), Settings())).startswith(".verbatim-cache/eval/")
    for command in ("index", "ask", "info", "add"):
        text = " ".join(verbatim(command, "--help").stdout.split())
        assert "(default: VERBATIM_INDEX, else index)" in text, command


def test_ask_prints_the_quote_with_the_answer_marked(seed_settings):
    result = verbatim("ask", "What hardware did the US export bans target?", "--index",
                      seed_settings.index_dir, "-k", 2)
    assert result.returncode == 0, result.stderr
    assert "[1] Chinese AI Powerhouses Unite to Sidestep U.S. Tech Curbs! — 000_2cb1631c0639e46a.txt" in result.stdout
    marked = result.stdout.split("**")[1::2]
    # Exactly the answering sentence of the first quote (tests/serve/test_highlights.py checks
    # its offsets through --json).
    assert marked[0] == ("The export bans on Nvidia GPUs are indicative of attempts to retain "
                         "an upper hand in the global AI race, which has subsequently prompted "
                         "Chinese AI giants like Huawei and Baidu to innovate domestically."), \
        result.stdout


def test_ask_json_is_the_answer(seed_settings):
    result = verbatim("ask", "Which platform did Huawei unveil as a rival to Nvidia?",
                      "--index", seed_settings.index_dir, "--json")
    answer = json.loads(result.stdout)
    assert answer["abstained"] is False
    quote = answer["quotes"][0]
    marked = [quote["text"][h["start"]:h["end"]] for h in quote["highlights"]]
    assert any("CloudMatrix 384" in m for m in marked)


def test_ask_off_topic_says_so(seed_settings):
    result = verbatim("ask", "How do vaccines work?", "--index", seed_settings.index_dir)
    assert result.returncode == 0
    assert result.stdout.startswith("The articles don't seem to answer this.")
    assert "**" not in result.stdout  # nothing is marked as an answer


def test_bad_k_is_a_clear_error_with_exit_code_2(seed_settings):
    result = verbatim("ask", "Who?", "--index", seed_settings.index_dir, "-k", 0)
    assert result.returncode == 2
    assert "error: k must be > 0, got 0" in result.stderr


def test_index_on_an_empty_corpus_is_a_clear_error(tmp_path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "empty.txt").write_text("")
    result = verbatim("index", "--corpus", tmp_path / "corpus", "--index", tmp_path / "index")
    assert result.returncode == 2
    assert "no readable articles" in result.stderr and "empty.txt: empty file" in result.stderr


def test_index_without_an_index_asks_to_build(tmp_path):
    result = verbatim("ask", "Who?", "--index", tmp_path / "nothing")
    assert result.returncode == 2
    assert "python -m qa index" in result.stderr
