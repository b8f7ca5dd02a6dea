"""qa.serve.render: escaping first, then our <mark>, blockquote, citation and relevance bar."""
from __future__ import annotations

import html
import re

import pytest

from qa.serve.render import (
    ABSTAIN_NOTE, CLOSEST_MATCH, LOW_CONFIDENCE_NOTE, MAY_ANSWER, READ_TIME, READ_WITH,
    citation, clean_spans,
    marked_text, relevance_bar, render_answer,
    render_error, render_question, window,
)
from qa.types import Answer, Quote, Span

EVIL = '<script>window.__xss=1</script> and <img src=x onerror="window.__xss=2"> & "q"'


def quote(text: str, highlights: tuple[Span, ...] = (), **kw) -> Quote:
    fields = dict(text=text, article_id="a.txt", title="A title", source="a.txt",
                  date="2025-07-28", start=0, end=len(text), score=0.54, highlights=highlights)
    fields.update(kw)
    return Quote(**fields)


def visible_text(fragment: str) -> str:
    """What a browser would show: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<br>", "\n", re.sub(r"<(?!br>)[^>]+>", "", fragment)))


def test_highlight_is_marked_and_text_is_verbatim():
    text = "First sentence. The answer is Nvidia GPUs. Last one."
    start = text.index("The answer")
    end = text.index(" Last")
    out = marked_text(text, (Span(start, end),), context=None)
    assert "<mark>The answer is Nvidia GPUs.</mark>" in out
    assert visible_text(out) == text


def test_untrusted_text_is_escaped_before_marking():
    text = "Safe start. " + EVIL + " Safe end."
    span = Span(text.index("<script>"), text.index(" Safe end"))
    out = render_answer(Answer("q", (quote(text, (span,), title=EVIL, source=EVIL),)))
    assert "<script" not in out and "<img" not in out
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in out
    assert 'onerror=&quot;window.__xss=2&quot;' in out
    # Only our own tags survive as tags.
    tags = set(re.findall(r"<([a-z]+)", out))
    assert tags <= {"div", "blockquote", "mark", "span", "br", "p"}
    mark = re.search(r"<mark>(.*?)</mark>", out).group(1)
    assert html.unescape(mark) == EVIL


def test_question_and_error_are_escaped():
    assert "<b>" not in render_question("<b>bold</b>?")
    assert "&lt;b&gt;" in render_question("<b>bold</b>?")
    assert "<i>" not in render_error("bad <i>thing</i>")


def test_line_breaks_survive_as_br():
    out = marked_text("Para one.\n\nPara two.", (), context=None)
    assert out == "Para one.<br><br>Para two."


def test_several_highlights_and_bad_spans():
    text = "aaa bbb ccc ddd"
    spans = (Span(8, 11), Span(0, 3), Span(2, 5), Span(20, 30), Span(5, 5))
    assert clean_spans(spans, len(text)) == [Span(0, 3), Span(3, 5), Span(8, 11)]
    out = marked_text(text, spans, context=None)
    assert out.count("<mark>") == 3
    assert visible_text(out) == text


def test_long_passage_is_trimmed_around_the_highlight_with_ellipses():
    before = " ".join(f"before{i}" for i in range(100))
    after = " ".join(f"after{i}" for i in range(100))
    answer = "The answer sentence."
    text = f"{before} {answer} {after}"
    span = Span(len(before) + 1, len(before) + 1 + len(answer))
    start, end = window(text, [span], context=50)
    assert start <= span.start and end >= span.end
    assert span.start - start <= 50 and end - span.end <= 50
    out = marked_text(text, (span,), context=50)
    assert out.startswith('<span class="vb-gap">') and out.endswith("…</span>")
    shown = visible_text(out).strip("… ")
    assert shown in text  # every shown character is the article's own, in order
    assert f"<mark>{answer}</mark>" in out


def test_no_highlight_shows_the_beginning():
    text = "word " * 200
    out = marked_text(text, (), context=40)
    assert "<mark>" not in out
    assert visible_text(out).startswith("word word")
    assert out.endswith("…</span>")


@pytest.mark.parametrize("score,step", [(-1, 0), (0.0, 0), (0.54, 5), (0.96, 10), (3.0, 10)])
def test_relevance_bar_steps(score, step):
    out = relevance_bar(score)
    assert f"vb-bar-{step}" in out
    assert "style=" not in out  # sanitisers strip inline styles; classes do the drawing


def test_answer_shows_blockquotes_with_citation():
    q1 = quote("One. Two.", (Span(5, 9),))
    q2 = quote("Three.", (Span(0, 6),), title="Other", source="b.md", date=None, score=0.4)
    out = render_answer(Answer("q", (q1, q2)))
    assert out.count("<blockquote") == 2
    assert "[1]" in out and "[2]" in out
    assert "A title" in out and "2025-07-28" in out and "a.txt" in out
    assert "Other" in out and "b.md" in out
    assert "vb-abstained" not in out and CLOSEST_MATCH not in out
    assert MAY_ANSWER not in out and LOW_CONFIDENCE_NOTE not in out


@pytest.mark.parametrize("url, shown", [
    ("https://www.reuters.com/world/china/x-2025-07-28/", "reuters.com"),
    ("http://127.0.0.1:8000/a.html", "127.0.0.1"),
    (None, "news.jsonl"),
    ("javascript:alert(1)", "news.jsonl"),
    ("https://[::1/broken", "news.jsonl"),
])
def test_the_citation_names_the_publisher_by_host_and_the_file_only_without_one(url, shown):
    out = citation(quote("Text.", source="news.jsonl", url=url))
    assert re.search(r'<span class="vb-source">([^<]*)</span>', out).group(1) == shown


def test_how_the_question_was_read_is_said_above_the_quotes_escaped():
    answer = Answer("And <b>Baidu</b>?", (quote("One.", (Span(0, 4),)),),
                    read_with="Who is <b>here</b>?", read_time="articles from 2023")
    out = render_answer(answer)
    assert out.index(READ_WITH) < out.index(READ_TIME) < out.index("<blockquote")
    assert "&lt;b&gt;here&lt;/b&gt;" in out and "<b>" not in out
    assert f"{READ_TIME} articles from 2023" in visible_text(out)
    assert READ_WITH not in render_answer(Answer("q", answer.quotes))


def test_abstention_looks_different_and_marks_nothing():
    closest = quote("Nearby text that does not answer.", (Span(0, 6),), score=0.17)
    out = render_answer(Answer("q", (), abstained=True, closest=(closest,)))
    assert ABSTAIN_NOTE in out
    assert "vb-abstained" in out and "vb-closest" in out
    assert CLOSEST_MATCH in out and "not an answer" not in out
    assert "<mark>" not in out  # nothing is presented as the answer


def test_an_abstention_shows_two_of_its_closest_passages():
    closest = tuple(quote(f"Passage number {n}.", score=0.2) for n in range(5))
    out = render_answer(Answer("q", (), abstained=True, closest=closest, confidence="none"))
    assert out.count("vb-closest\"") == 2 and "Passage number 2" not in out


def test_low_confidence_quotes_say_they_may_answer_and_keep_their_highlight():
    text = EVIL + " The dam reopened in May."
    answer = Answer("q", (quote(text, (Span(len(EVIL) + 1, len(text)),), score=0.3),),
                    confidence="low")
    out = render_answer(answer)
    assert LOW_CONFIDENCE_NOTE in out and MAY_ANSWER in out and "vb-low" in out
    assert "<mark>The dam reopened in May.</mark>" in out
    assert "vb-abstained" not in out and CLOSEST_MATCH not in out
    assert "not an answer" not in out
    assert "<script>" not in out and "&lt;script&gt;" in out  # article text stays escaped


def test_abstention_without_closest():
    out = render_answer(Answer("q", (), abstained=True))
    assert ABSTAIN_NOTE in out and "<blockquote" not in out


def test_blank_answer():
    assert "Ask a question" in render_answer(Answer("", ()))


def test_a_web_url_links_the_title_and_other_schemes_do_not():
    linked = citation(quote("Text.", url="https://example.org/a?x=1&y=\"2\""))
    assert '<a href="https://example.org/a?x=1&amp;y=&quot;2&quot;"' in linked
    assert 'rel="noopener noreferrer"' in linked
    for bad in ("javascript:alert(1)", "data:text/html,<script>", None):
        assert "<a " not in citation(quote("Text.", url=bad))
