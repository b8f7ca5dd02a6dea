"""The pure parts of news from the web: page and feed extraction, file naming, the stored
record, the feed list and its polling state. No network, no model."""
from __future__ import annotations

import json
import threading

import pytest

from qa.web import feedlist, schedule
from qa.errors import ConfigError, CorpusError, QAError
from qa.web.extract import (
    MIN_ARTICLE_WORDS, NotAFeed, NotAnArticle, check_html, extract_page, parse_feed,
)
from qa.web.feedlist import Feed, FeedList, Pending, feed_list_from_json, feed_list_to_json
from qa.web.fetch import UrlError
from qa.text.ingest import load_corpus
from qa.web.store import (
    Known, WebArticle, article_path, host_folder, known_articles, slug, store_article,
    text_hash,
)
from web_site import ARTICLES, article_html

LIGHTHOUSE = "/news/lighthouse-reopens.html"


# -- pages -----------------------------------------------------------------------------------
def test_extract_page_keeps_the_article_and_drops_menus_and_the_headline():
    page = extract_page(article_html(LIGHTHOUSE).encode(), "utf-8",
                        "https://courier.example/news/lighthouse-reopens.html")
    title, date, paragraphs = ARTICLES[LIGHTHOUSE]
    assert page.title == title
    assert page.paragraphs == tuple(paragraphs)  # verbatim, no nav, footer or headline
    assert page.date == date
    assert page.canonical is None


def test_canonical_link_is_kept_only_on_the_same_site():
    url = "https://courier.example/news/lighthouse-reopens.html?from=rss"
    same = article_html(LIGHTHOUSE, '<link rel="canonical" href="/news/lighthouse">')
    other = article_html(LIGHTHOUSE, '<link rel="canonical" href="https://other.example/x">')
    assert extract_page(same.encode(), None, url).canonical == \
        "https://courier.example/news/lighthouse"
    assert extract_page(other.encode(), None, url).canonical is None


def test_a_page_without_an_article_is_refused():
    menu = b"<html><head><title>Menu</title></head><body><nav><a href='/'>Home</a></nav></body>"
    with pytest.raises(NotAnArticle, match=f"1 word of main text; at least "
                                           f"{MIN_ARTICLE_WORDS} needed"):
        extract_page(menu, None, "https://courier.example/")


def test_check_html_refuses_other_types_and_sniffs_a_missing_type():
    check_html("text/html", b"")
    check_html("", b"  <!DOCTYPE html><html>")
    with pytest.raises(NotAnArticle, match="the server sent application/pdf"):
        check_html("application/pdf", b"%PDF")
    with pytest.raises(NotAnArticle, match="no content type and it does not look like HTML"):
        check_html("", b"\x89PNG")


# -- feeds -----------------------------------------------------------------------------------
RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Elsby Courier</title>
<item><title>One</title><link>/news/one.html</link>
<pubDate>Mon, 28 Jul 2025 09:00:00 GMT</pubDate></item>
<item><title>Two</title><guid isPermaLink="true">https://courier.example/two</guid></item>
<item><title>No link</title></item></channel></rss>"""
ATOM = b"""<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">
<title>Atom news</title><entry><title>E</title><link href="https://a.example/e1"/>
<id>urn:e1</id><updated>2025-07-01T10:00:00Z</updated></entry></feed>"""


def test_parse_rss_resolves_links_and_dates():
    parsed = parse_feed(RSS, "application/rss+xml", "https://courier.example/feed.xml")
    assert parsed.title == "Elsby Courier"
    assert [(i.link, i.title, i.date) for i in parsed.items] == [
        ("https://courier.example/news/one.html", "One", "2025-07-28"),
        ("https://courier.example/two", "Two", None),
        (None, "No link", None),
    ]


def test_parse_atom():
    parsed = parse_feed(ATOM, "application/atom+xml", "https://a.example/feed")
    assert parsed.title == "Atom news"
    assert [(i.link, i.date) for i in parsed.items] == [("https://a.example/e1", "2025-07-01")]


@pytest.mark.parametrize("body, content_type", [
    (b"<html><body><p>Hello</p></body></html>", "text/html"),
    (b"not xml at all", "text/plain"),
    (b'{"items": []}', "application/json"),
    (b"", ""),
])
def test_what_is_not_a_feed_says_so(body, content_type):
    with pytest.raises(NotAFeed, match="not an RSS or Atom feed"):
        parse_feed(body, content_type, "https://a.example/feed")


# -- files -----------------------------------------------------------------------------------
def test_file_names_are_stable_readable_and_never_hidden():
    url = "https://Courier.example/news/2025/Lighthouse-Reopens.html"
    path = article_path(url)
    assert path == article_path(url)
    assert path.parts[:2] == ("web", "courier.example")
    assert path.name.startswith("lighthouse-reopens-") and path.suffix == ".jsonl"
    assert article_path(url + "?page=2") != path  # same last segment, another article
    assert host_folder("http://127.0.0.1:8000/a") == "127.0.0.1_8000"
    assert host_folder("http://[::1]:8000/a") == "_1_8000"
    assert slug("https://x.example/") == "index"
    assert slug("https://x.example/.hidden") == "hidden"
    assert slug("https://x.example/%2e%2e/%2e%2e/etc") == "etc"
    assert len(slug("https://x.example/" + "a" * 300)) == 60
    for weird in ("https://x.example/..", "https://x.example/a/../../b", "https://x.example/.."):
        assert not any(part.startswith(".") for part in article_path(weird).parts)


def test_text_hash_ignores_whitespace_only():
    assert text_hash(["A  story.", "Second\tline."]) == text_hash(["A story.", "Second line."])
    assert text_hash(["A story."]) != text_hash(["A story!"])


def web_article(url: str = "https://courier.example/news/a.html", text: str = "First.",
                **extra) -> WebArticle:
    return WebArticle(url=url, title="A title", paragraphs=(text, "Second paragraph."),
                      date="2025-07-28", fetched="2026-01-01T00:00:00+00:00", **extra)


def test_a_stored_article_is_read_by_the_corpus_reader_with_its_url(tmp_path):
    article = web_article(feed="https://courier.example/feed.xml")
    path = store_article(tmp_path, article)
    assert path == tmp_path / article_path(article.url)
    record = json.loads(path.read_text())
    assert record["sha256"] == article.sha256 and record["feed"] == article.feed
    corpus = load_corpus(tmp_path)
    (read,) = corpus.articles
    # A JSON Lines record's id is qualified by its file, as every corpus file's is.
    assert (read.id, read.url, read.title, read.date) == (
        f"{article_path(article.url).as_posix()}#{article.url}", article.url, "A title",
        "2025-07-28")
    assert read.text == "First.\n\nSecond paragraph."
    assert read.source == article_path(article.url).as_posix()
    assert corpus.skipped == ()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_a_stored_article_is_never_overwritten(tmp_path):
    first = web_article()
    assert store_article(tmp_path, first) is not None
    assert store_article(tmp_path, web_article(text="Changed.")) is None
    assert "First." in (tmp_path / article_path(first.url)).read_text()


def test_known_articles_by_url_and_by_text(tmp_path):
    stored = web_article()
    store_article(tmp_path, stored)
    (tmp_path / "web" / "broken.jsonl").write_text("not json\n")
    known = known_articles(tmp_path)
    assert known.urls == {stored.url}
    assert known.duplicate_of(stored) == f"already in the corpus ({stored.url})"
    copy = web_article(url="https://mirror.example/copy.html")
    assert known.duplicate_of(copy) == \
        f"the same text is already in the corpus as {stored.url}"
    assert known.duplicate_of(web_article(url="https://b.example/x", text="New.")) is None
    assert Known(frozenset(), {}).plus(stored).duplicate_of(stored)


def test_the_corpus_must_be_a_folder(tmp_path):
    single = tmp_path / "one.txt"
    single.write_text("Title\nText")
    with pytest.raises(CorpusError, match="is a file"):
        known_articles(single)
    with pytest.raises(CorpusError, match="is a file"):
        feedlist.follow(single, "https://a.example/feed")


# -- the feed list ---------------------------------------------------------------------------
def test_feed_list_round_trips_through_json():
    listed = FeedList((
        Feed("https://a.example/feed", title="A", added="t0", etag='"e1"',
             last_modified="Mon, 28 Jul 2025 09:00:00 GMT", checked="t1", status="ok",
             stored=3, seen=("https://a.example/1",),
             pending=(Pending("https://a.example/2", "Two", "2025-07-01", 1, "HTTP 500"),)),
        Feed("https://b.example/rss"),
    ))
    assert feed_list_from_json(feed_list_to_json(listed)) == listed


@pytest.mark.parametrize("text", ["", "[]", '{"format": 2}', '{"format": 1, "feeds": [{}]}',
                                  '{"format": 1, "feeds": [{"url": "u", "seen": "x"}]}',
                                  '{"format": 1, "feeds": [{"url": "u", "etag": 5}]}'])
def test_a_damaged_feed_list_is_a_clear_error(tmp_path, text):
    (tmp_path / feedlist.STATE_FILE).write_text(text)
    with pytest.raises(CorpusError, match=r"\.feeds\.json is not a readable feed list"):
        feedlist.read_feeds(tmp_path)


def test_new_items_are_queued_once():
    feed = Feed("https://a.example/feed", seen=("https://a.example/1",))
    feed = feed.with_items([("https://a.example/1", "One", None),
                            ("https://a.example/2", "Two", "2025-07-02"),
                            ("https://a.example/2", "Two again", None)])
    assert feed.pending == (Pending("https://a.example/2", "Two", "2025-07-02"),)
    assert feed.with_items([("https://a.example/2", "Two", None)]) == feed
    done = feed.done("https://a.example/2")
    assert done.pending == () and done.seen[-1] == "https://a.example/2"


def test_a_failing_item_is_retried_then_given_up():
    feed = Feed("https://a.example/feed").with_items([("https://a.example/x", None, None)])
    for attempt in range(1, feedlist.MAX_ATTEMPTS):
        feed, gave_up = feed.failed("https://a.example/x", "HTTP 500")
        assert not gave_up and feed.pending[0].attempts == attempt
    feed, gave_up = feed.failed("https://a.example/x", "HTTP 500")
    assert gave_up and feed.pending == () and "https://a.example/x" in feed.seen


def test_seen_items_are_capped():
    feed = Feed("https://a.example/feed", seen=tuple(f"u{n}" for n in range(feedlist.SEEN_LIMIT)))
    feed = feed.done("new")
    assert len(feed.seen) == feedlist.SEEN_LIMIT and feed.seen[-1] == "new" and "u0" not in feed.seen


def test_follow_and_unfollow_on_disk(tmp_path):
    feed, added = feedlist.follow(tmp_path, "HTTPS://A.example/feed#top")
    assert added and feed.url == "https://a.example/feed"
    assert feedlist.follow(tmp_path, "https://a.example/feed")[1] is False
    feedlist.follow(tmp_path, "https://b.example/rss")
    assert [f.url for f in feedlist.read_feeds(tmp_path).feeds] == [
        "https://a.example/feed", "https://b.example/rss"]
    assert load_corpus(tmp_path).skipped == ()  # the hidden list is not an article
    assert feedlist.unfollow(tmp_path, "https://a.example/feed").url == "https://a.example/feed"
    with pytest.raises(ConfigError, match="is not a followed feed .followed: https://b.example"):
        feedlist.unfollow(tmp_path, "https://a.example/feed")
    with pytest.raises(UrlError):
        feedlist.follow(tmp_path, "file:///etc/passwd")


def test_parse_duration():
    assert schedule.parse_duration("30m") == 1800
    assert schedule.parse_duration("90s") == 90
    assert schedule.parse_duration("2H") == 7200
    assert schedule.parse_duration("1.5h") == 5400
    for bad in ("30", "soon", "-5m", "5 minutes"):
        with pytest.raises(ConfigError, match="a duration looks like"):
            schedule.parse_duration(bad)


def test_poll_repeats_and_survives_a_failing_run():
    runs, errors, stop = [], [], threading.Event()

    def run_once():
        runs.append(1)
        if len(runs) == 2:
            raise QAError("another feed update is running")
        if len(runs) == 4:
            stop.set()

    schedule.poll(run_once, 0.01, stop, errors.append)
    assert len(runs) == 4 and errors == ["another feed update is running"]
