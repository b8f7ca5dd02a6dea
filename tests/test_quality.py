"""Quality regression: `qa eval` on the seed dev set and a squad-dev slice, with floors.

Floors sit a little under what the default measures today (README "Quality"), so a real
regression fails while noise does not.
"""
import json
import subprocess
import sys

import pytest

from conftest import EVAL, ROOT, read_jsonl

pytestmark = pytest.mark.slow


def run_eval(tmp_path, articles, questions, *extra):
    result = subprocess.run(
        [sys.executable, "-m", "qa", "eval", "--articles", str(articles), "--questions",
         str(questions), "--index", str(tmp_path / "index"), "--json", *extra],
        capture_output=True, text=True, cwd=ROOT, timeout=900,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_seed_dev_set_all_answered_none_of_the_off_topic(tmp_path):
    m = run_eval(tmp_path, ROOT / "corpus", EVAL / "seed_dev.jsonl",
                 "--unanswerable", str(EVAL / "seed_dev_unanswerable.jsonl"))
    assert (m["answerable"], m["unanswerable"]) == (8, 3)
    assert m["recall_at_5"] == 1.0
    assert m["recall_at_1"] >= 0.75
    assert m["highlight_at_1"] >= 0.6
    assert m["abstained_answerable"] == 0.0  # no seed question abstains
    assert m["abstain_recall"] == 1.0  # every off-topic question does
    assert m["abstain_precision"] == 1.0


def test_squad_slice_keeps_its_floors(tmp_path):
    # Three articles and every other question about them: hundreds of questions, a minute.
    articles = read_jsonl(EVAL / "squad-dev" / "articles.jsonl")[:3]
    titles = {a["title"] for a in articles}
    (tmp_path / "articles.jsonl").write_text("".join(json.dumps(a) + "\n" for a in articles))
    questions = [q for q in read_jsonl(EVAL / "squad-dev" / "questions.jsonl")
                 if q["article"] in titles][::2]
    (tmp_path / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    m = run_eval(tmp_path, tmp_path / "articles.jsonl", tmp_path / "questions.jsonl")
    # Measured: 784 questions, recall@1 0.860, recall@5 0.982, mrr@10 0.912, highlight 0.769.
    assert m["answerable"] == len(questions) > 100
    assert m["recall_at_1"] >= 0.84
    assert m["recall_at_5"] >= 0.97
    assert m["mrr_at_10"] >= 0.89
    assert m["highlight_at_1"] >= 0.74
