"""Unit tests of the pure cleaning functions."""
from qa.text import clean


def test_normalize_whitespace_collapses_runs_and_strips():
    assert clean.normalize_whitespace("  a\t b\u00a0\u00a0c \n") == "a b c"


def test_line_paragraphs_drops_blank_lines():
    assert clean.line_paragraphs("one\n\n   \n two  words \n") == ["one", "two words"]


def test_markdown_paragraphs_joins_wrapped_lines_and_splits_headings():
    text = "# Title\n\nFirst line\nwrapped here.\n\n## Section\nBody.\n- item one\n- item two\n"
    assert clean.markdown_paragraphs(text) == [
        "Title", "First line wrapped here.", "Section", "Body.", "- item one", "- item two",
    ]


def test_repeated_paragraph_within_an_article_is_boilerplate():
    article = ["Real news.", "Subscribe now!", "More news.", "subscribe   NOW!".replace("   ", " ")]
    assert clean.find_boilerplate([article]) == {"subscribe now!"}


def test_paragraph_shared_by_two_articles_is_boilerplate_unique_ones_are_not():
    a = ["Story A.", "Follow us on social media."]
    b = ["Story B.", "Follow us on social media."]
    found = clean.find_boilerplate([a, b])
    assert found == {"follow us on social media."}
    assert clean.remove_boilerplate(a, found) == ["Story A."]


def test_paragraph_spans_point_at_the_paragraphs():
    paragraphs = ["First one.", "Second, longer one.", "3"]
    text = clean.join_paragraphs(paragraphs)
    assert [text[a:b] for a, b in clean.paragraph_spans(text)] == paragraphs
