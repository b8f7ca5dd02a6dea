"""Issue 21: the command line and the page's web section against outside text and bad
input: feed titles and item URLs with terminal controls are printed escaped, bad URLs
get a clear message that names them (no traceback), 1,000 `--article` filters work, and
a feed's "stored" count survives an update killed half-way."""
from __future__ import annotations

import html
import logging

import pytest
from conftest import FakeEmbedder
from index_helpers import run_cli
from web_site import ARTICLES, Site, article_html, rss, serve_news

from qa.web import feedlist as feeds
from qa.config import Settings
from qa.serve.cli import main
from qa.serve.page import Page
from qa.web.feedlist import Feed, FeedList, Pending
from qa.web.feeds import update_feeds
from qa.web.fetch import Fetcher, FetchPolicy
from qa.web.store import known_articles

# Clear the screen, set the window title, an 8-bit CSI, a bell, a right-to-left override.
NASTY = "\x1b[2J\x1b]0;pwned\x07 \x9b31m \u202eevil"
CONTROLS = ("\x1b", "\x07", "\x9b", "\u202e", "\u2066")
POLICY = FetchPolicy(delay=0.0, connect_timeout=2, read_timeout=2, total_timeout=10)


def no_controls(text: str) -> bool:
    return not any(c in text for c in CONTROLS)


# -- item 5: outside text is escaped on the terminal -----------------------------------------
def test_feeds_list_prints_a_feed_title_and_status_escaped(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    feeds._write_feeds(corpus, FeedList((Feed(
        url="https://news.example/feed.xml", title=NASTY, checked="2025-07-28T09:00:00+00:00",
        status=f"1 items; {NASTY}", pending=(Pending("https://news.example/a", NASTY),)),)))
    assert main(["feeds", "list", "--corpus", str(corpus)]) == 0
    out = capsys.readouterr().out
    assert no_controls(out), repr(out)
    assert "\\x1b[2J\\x1b]0;pwned\\x07" in out  # shown, harmlessly


def test_feeds_update_prints_item_urls_escaped(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    with Site() as site:
        serve_news(site)
        # feedparser turns C1 controls into their cp1252 look-alikes; bidi controls stay.
        odd = "/news/\u202eevil\u2066.html"
        site.add("/news/%E2%80%AEevil%E2%81%A6.html", article_html(list(ARTICLES)[3]))
        feed_text = rss(site, list(ARTICLES)[:1]).replace(
            "</channel>", f"<item><title>Odd \u202e\x9b</title><link>{site.url(odd)}</link>"
            "</item></channel>")
        feed_url = site.add("/odd.xml", feed_text, content_type="application/rss+xml")
        assert main(["feeds", "add", feed_url, "--corpus", str(corpus)]) == 0
        assert main(["feeds", "update", "--no-index", "-q", "--corpus", str(corpus)]) == 0
        assert main(["feeds", "list", "--corpus", str(corpus)]) == 0
        assert main(["add", site.url(odd) + "?again", "--no-index", "-q",
                     "--corpus", str(corpus)]) in (0, 1)
    out = capsys.readouterr().out
    assert "evil" in out and no_controls(out), repr(out)


# -- item 7: a bad URL is a clear message naming it, in the CLI and on the page -------------
def test_feeds_add_with_a_broken_ipv6_url_says_so(tmp_path, capsys):
    code = main(["feeds", "add", "http://[::1", "--corpus", str(tmp_path / "corpus")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: 'http://[::1' is not a valid URL"), err
    assert "Traceback" not in err


def test_add_with_an_octal_address_says_so_without_a_traceback(tmp_path, capsys, caplog):
    with caplog.at_level(logging.ERROR):
        code = main(["add", "http://0177.0.0.1/", "--no-index", "--corpus",
                     str(tmp_path / "corpus")])
    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith("failed  http://0177.0.0.1/: 'http://0177.0.0.1/' has a host that "
                          "looks like an IP address"), out
    assert "unexpected error" not in out and not caplog.records


@pytest.fixture
def page(tmp_path):
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    return Page(settings, FakeEmbedder())


@pytest.mark.parametrize("url, message", [
    ("http://[::1", "'http://[::1' is not a valid URL"),
    ("http://0177.0.0.1/", "'http://0177.0.0.1/' has a host that looks like an IP address"),
    ("http://[2002:7f00:1::]/feed", "6to4 form of a loopback address"),
])
def test_follow_feed_on_the_page_says_what_is_wrong(page, url, message):
    note, _, kept = page.follow_feed(url)
    assert note.startswith("⚠️ Not followed: ") and message in html.unescape(note), note
    assert kept == url  # left in the field, to correct


def test_add_articles_on_the_page_says_what_is_wrong(page):
    note, *_, failed = page.add_urls("http://0177.0.0.1/\nhttp://[::1")
    shown = html.unescape(note)
    assert "looks like an IP address" in shown and "is not a valid URL" in shown, note
    assert failed.split() == ["http://0177.0.0.1/", "http://[::1"]


# -- item 4: a thousand --article filters ----------------------------------------------------
def test_a_thousand_article_filters_on_the_command_line(seed_settings):
    names = [a for n in range(999) for a in ("--article", f"no-such-article-{n}")]
    run = run_cli(["ask", "What hardware did the US export bans target?", "--index",
                   str(seed_settings.index_dir), *names,
                   "--article", "000_2cb1631c0639e46a.txt"])
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr and "Nvidia GPUs" in run.stdout


# -- item 9: the stored count after an update that was killed half-way ----------------------
class KilledAfter:
    """A Fetcher that dies (as a killed process would: no handler runs) when asked for
    its `n`-th page."""

    def __init__(self, fetcher: Fetcher, n: int) -> None:
        self.fetcher, self.left = fetcher, n

    def get(self, url: str, **options):
        if "/news/" in url:
            self.left -= 1
            if self.left == 0:
                raise KeyboardInterrupt  # a BaseException: past every `except Exception`
        return self.fetcher.get(url, **options)


def stored_from(corpus, feed_url: str) -> int:
    import json

    count = 0
    for path in (corpus / "web").rglob("*.jsonl"):
        count += json.loads(path.read_text())["feed"] == feed_url
    return count


def test_the_stored_count_survives_a_killed_update(tmp_path):
    corpus = tmp_path / "corpus"
    with Site() as site:
        feed_url = serve_news(site, list(ARTICLES))
        feeds.follow(corpus, feed_url)
        with Fetcher(POLICY) as fetcher:
            with pytest.raises(KeyboardInterrupt):
                update_feeds(corpus, KilledAfter(fetcher, 3))
            assert stored_from(corpus, feed_url) == 2
            assert feeds.read_feeds(corpus).find(feed_url).stored == 2  # was 0
            update_feeds(corpus, fetcher)
    assert stored_from(corpus, feed_url) == 4
    feed = feeds.read_feeds(corpus).find(feed_url)
    assert (feed.stored, feed.pending) == (4, ())


def test_an_article_stored_just_before_the_kill_is_counted_on_the_next_update(tmp_path):
    """Killed between writing the article and saving the count: the next update finds
    the article of this feed in the corpus and counts it."""
    corpus = tmp_path / "corpus"
    with Site() as site:
        feed_url = serve_news(site, list(ARTICLES)[:2])
        feeds.follow(corpus, feed_url)
        with Fetcher(POLICY) as fetcher:
            update_feeds(corpus, fetcher)
            first = feeds.read_feeds(corpus).find(feed_url)
            assert first.stored == 2
            # The state as a kill right after storing a third article would leave it.
            site.add("/feed.xml", rss(site, list(ARTICLES)[:3]),
                     content_type="application/rss+xml")
            from qa.web.feeds import fetch_article
            from qa.web.store import store_article

            third = site.url(list(ARTICLES)[2])
            store_article(corpus, fetch_article(fetcher, third, feed=feed_url))
            feeds.change_feeds(corpus, lambda current: current.put(
                current.find(feed_url).with_items([(third, None, None)])))
            assert third in known_articles(corpus).urls
            update_feeds(corpus, fetcher)
    assert feeds.read_feeds(corpus).find(feed_url).stored == 3 == stored_from(corpus, feed_url)
