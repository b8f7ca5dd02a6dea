"""Issue 21, item 10: real scraped pages. A .txt page's headline is chosen by measuring
its first lines (the seed's section label "New Alliances, New Era" is not its title), and
the masthead (bylines, "Edited By" and the name under it, datelines) stays out of the
passages that answer, while every word stays in the article."""
from __future__ import annotations

import re

import pytest
from conftest import EVAL, SEED_FILE, read_jsonl

from qa.scoring import masthead
from qa.text import clean
from qa.text.chunk import chunk_article
from qa.text.ingest import read_documents
from qa.types import Article

HEADLINE = "Chinese AI Powerhouses Unite to Sidestep U.S. Tech Curbs!"
MASTHEAD = ("Edited By", "Mackenzie Ferguson", "AI Tools Researcher & Implementation Consultant",
            "Last updated:")


def count(texts):
    return [len(re.findall(r"\w+|[^\w\s]", t)) for t in texts]


def passages(article: Article) -> list[str]:
    return [article.text[c.start:c.end] for c in chunk_article(article, count)]


def seed_article() -> Article:
    (doc,), _ = read_documents(SEED_FILE)
    return Article(id=doc.id, title=doc.title, text=clean.join_paragraphs(doc.paragraphs),
                   source=doc.source)


def test_the_seed_headline_is_its_title_and_every_line_stays():
    article = seed_article()
    assert article.title == HEADLINE
    assert article.text.startswith("New Alliances, New Era\n\nLast updated:\n\nEdited By")
    kept = {article.title, *clean.line_paragraphs(article.text)}
    assert set(clean.line_paragraphs(SEED_FILE.read_text(encoding="utf-8"))) == kept


def test_no_seed_passage_mixes_the_masthead_with_the_text():
    chunks = passages(seed_article())
    with_byline = [p for p in chunks if "Mackenzie Ferguson" in p]
    assert len(with_byline) == 1 and "In a strategic maneuver" not in with_byline[0]
    lede = next(p for p in chunks if "In a strategic maneuver" in p)
    assert not any(line in lede for line in MASTHEAD), lede[:200]


@pytest.mark.parametrize("name", ["realtimeqa-dev", "squad-dev"])
def test_a_title_line_over_the_text_stays_the_title(name):
    """Measured on real pages written as title line + text: the rule never moves the title
    to the next line (1,127 news articles, 24 Wikipedia ones)."""
    moved = []
    for article in read_jsonl(EVAL / name / "articles.jsonl"):
        lines = [clean.normalize_whitespace(article["title"])]
        lines += clean.line_paragraphs(article["text"])
        if clean.headline_index(lines) != 0:
            moved.append(lines[:2])
    assert moved == []


@pytest.mark.parametrize("lines, head", [
    (["New Alliances, New Era", HEADLINE, "Last updated:", "Body text of the article."], 1),
    (["Politics", "Senate passes the budget after a night of debate", "By Ann Lee", "x"], 1),
    (["Senate passes the budget", "By Ann Lee and Bo Ng", "Text."], 0),    # a byline
    (["Politics", "CNN —", "Text."], 0),                                  # a dateline
    (["50 States roundup", "From USA TODAY Network and wire reports", "x"], 0),  # a credit
    (["Markets", "Stocks fell sharply on Tuesday after the report.", "x"], 0),  # a sentence
    (["Storm", "Here are five takeaways from the trip:", "x"], 0),        # a list lead
    (["A headline of six words here", "Another line that is longer than it", "x"], 0),
])
def test_headline_index(lines, head):
    assert clean.headline_index(lines) == head


@pytest.mark.parametrize("paragraph, kind", [
    ("By Gary Strauss and Carolyn Pesce, USA TODAY", "byline"),
    ("By JOSH LEDERMAN and MATTHEW PENNINGTON", "byline"),
    ("From staff and wire reports", "byline"),
    ("CNN —", "dateline"),
    ("Seoul, South Korea CNN —", "dateline"),
    ("Last updated:", "dateline"),
    ("Updated 3:45 PM EDT, Mon July 28, 2025", "dateline"),
    ("By 2030, the city will have doubled its tram network.", None),
    ("by the way, nobody asked", None),
    ("Updated guidance from the health agency arrived on Monday and changed the advice.", None),
    ("1975", None),                    # a timeline's heading, not a dateline
    ("Introduction to China's New AI Alliances", None),
])
def test_masthead_kinds(paragraph, kind):
    assert masthead([paragraph]) == [kind]


def test_edited_by_takes_the_name_and_role_under_it_and_no_more():
    lines = ["Edited By", "Mackenzie Ferguson", "AI Tools Researcher & Implementation Consultant",
             "Introduction", "The text begins here and goes on for a while."]
    assert masthead(lines) == ["byline", "byline", "byline", None, None]


def test_a_news_page_dateline_is_in_no_passage_and_the_byline_is_its_own():
    text = clean.join_paragraphs([
        "CNN —", "The harbour board approved the new lighthouse lamp on Tuesday, after a "
        "debate that lasted most of the night and ended with a vote of seven to two.",
        "Opinion", "By Gary Strauss and Carolyn Pesce, USA TODAY",
        "1975", "The lamp was first lit in the spring of that year by the harbour master."])
    chunks = passages(Article(id="a", title="Lamp approved", text=text, source="a"))
    assert not any("CNN —" in p or "Opinion" in p for p in chunks)  # a label, cut off
    assert "By Gary Strauss and Carolyn Pesce, USA TODAY" in chunks
    assert any(p.startswith("1975\n\nThe lamp") for p in chunks)  # a heading still joins
    assert any(p.startswith("The harbour board") for p in chunks)


@pytest.mark.slow
def test_no_seed_answer_quotes_the_masthead_but_the_editor_question(seed_retriever):
    questions = read_jsonl(EVAL / "seed_dev.jsonl") + read_jsonl(
        EVAL / "seed_dev_paraphrased.jsonl")
    for question in questions:
        answer = seed_retriever.answer(question["question"], 5)
        # The quotes, or the closest passages of an abstention (shown greyed out).
        quoted = "\n".join(q.text for q in answer.quotes + answer.closest)
        if question["id"] == "p09":  # "Who edited the piece?"
            assert "Mackenzie Ferguson" in (answer.quotes or answer.closest)[0].text
            continue
        assert not any(line in quoted for line in MASTHEAD), (question["id"], quoted[:300])
