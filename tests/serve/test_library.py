"""News in, end to end: a real HTTP server on 127.0.0.1 serving a feed of news pages ->
`follow` + `update_feeds` -> the Library's index update (real model) -> answers quoting the
page, with its URL. Incremental: a new item is the only one fetched and embedded; an
unchanged feed is a 304. Every failure is reported per URL while the rest is stored and
indexed."""
from __future__ import annotations

import json

import pytest

from index_helpers import CountingEmbedder, run_cli, small_corpus
from qa.serve.library import Library
from qa.web import feedlist
from qa.web.feeds import WebReport, add_urls, update_feeds
from qa.web.fetch import FetchPolicy, Fetcher
from qa.build import build_index
from qa.retriever import Retriever
from web_site import (
    ANSWER, ARTICLES, FIRST_THREE, FOURTH, FOURTH_ANSWER, FOURTH_QUESTION, QUESTION, Site,
    article_html, rss, serve_news,
)

pytestmark = pytest.mark.slow
POLICY = FetchPolicy(delay=0.0, connect_timeout=2, read_timeout=1, total_timeout=10)


@pytest.fixture
def site():
    with Site() as s:
        yield s


@pytest.fixture
def settings(tmp_path, real_embedder):
    settings = small_corpus(tmp_path)
    build_index(settings, real_embedder)
    return settings


def best_quote(settings, embedder, question):
    answer = Retriever.open(settings, embedder).answer(question, 3)
    assert not answer.abstained, question
    return answer.quotes[0]


def test_follow_update_answer_then_only_the_new_item_is_fetched_and_embedded(
        site, settings, real_embedder):
    feed_url = serve_news(site)
    counting = CountingEmbedder(real_embedder)
    feedlist.follow(settings.corpus_dir, feed_url)

    with Fetcher(POLICY) as fetcher:
        # 1. The first update stores the three articles and indexes them.
        results = update_feeds(settings.corpus_dir, fetcher)
        report = Library(settings, counting).index_if_stored(WebReport(feeds=results))
        assert report.failures == [] and report.stored == 3
        assert (report.index.added, report.index.kept) == (3, 3)
        quote = best_quote(settings, real_embedder, QUESTION)
        assert ANSWER in quote.text
        assert quote.url == site.url(FIRST_THREE[0])
        assert quote.title == ARTICLES[FIRST_THREE[0]][0]
        assert quote.date == ARTICLES[FIRST_THREE[0]][1]
        assert quote.source.startswith(f"web/127.0.0.1_{site.port}/lighthouse-reopens-")

        # 2. Unchanged: the server answers 304, nothing is fetched, stored or built.
        counting.encoded.clear()
        results = update_feeds(settings.corpus_dir, fetcher)
        assert results[0].message == "not modified (HTTP 304)"
        assert site.hits("/feed.xml")[-1].status == 304
        assert Library(settings, counting).index_if_stored(WebReport(feeds=results)).index \
            is None
        assert counting.encoded == []

        # 3. A fourth item: only its page is fetched, only its text embedded.
        site.add("/feed.xml", rss(site, FIRST_THREE + [FOURTH]),
                 content_type="application/rss+xml", conditional=True)
        results = update_feeds(settings.corpus_dir, fetcher)
        report = Library(settings, counting).index_if_stored(WebReport(feeds=results))
    assert results[0].message == "4 items, 1 new; 1 stored"
    assert [i.url for i in results[0].items] == [site.url(FOURTH)]
    assert {path: len(site.hits(path)) for path in ARTICLES} == {
        **{path: 1 for path in FIRST_THREE}, FOURTH: 1}
    assert (report.index.added, report.index.kept) == (1, 6)
    fourth_title = ARTICLES[FOURTH][0]
    assert counting.encoded and all(fourth_title in text for text in counting.encoded), \
        "a text of another article was embedded again"
    quote = best_quote(settings, real_embedder, FOURTH_QUESTION)
    assert FOURTH_ANSWER in quote.text and quote.url == site.url(FOURTH)

    # The state travels with the corpus: a hidden file the reader skips.
    state = json.loads((settings.corpus_dir / feedlist.STATE_FILE).read_text())
    (feed,) = state["feeds"]
    assert feed["stored"] == 4 and feed["etag"] and feed["pending"] == []
    assert sorted(feed["seen"]) == sorted(site.url(p) for p in ARTICLES)


def test_every_failure_is_reported_and_the_rest_is_indexed(site, settings, real_embedder):
    with Site() as gone:
        dead = gone.url("/story.html")  # nothing listens there any more
    site.add(FIRST_THREE[2], article_html(FIRST_THREE[2]))
    site.add("/slow.html", article_html(FIRST_THREE[0]), delay=3)
    site.add("/broken.html", "oops", status=500, content_type="text/plain")
    site.redirect("/loop-a", site.url("/loop-b"))
    site.redirect("/loop-b", site.url("/loop-a"))
    site.add("/report.pdf", b"%PDF-1.4", content_type="application/pdf")
    site.add("/menu.html", "<html><head><title>Menu</title></head><body><nav>"
                           "<a href='/'>Home</a></nav></body></html>")
    items = [FIRST_THREE[2], "/missing.html", "/broken.html", "/slow.html", "/loop-a",
             "/report.pdf", "/menu.html"]
    # The dead and unresolvable hosts are items too (absolute links in the feed).
    feed_text = rss(site, items).replace(
        "</channel>", f"<item><title>Dead</title><link>{dead}</link></item>"
        "<item><title>Nowhere</title><link>http://no-such-host.invalid/story.html</link>"
        "</item></channel>")
    good = site.add("/good.xml", feed_text, content_type="application/rss+xml")
    not_xml = site.add("/page.html", article_html(FIRST_THREE[1]))
    broken_feed = site.add("/down.xml", "oops", status=500, content_type="text/plain")
    for url in (not_xml, broken_feed, "http://no-such-host.invalid/feed.xml", good):
        feedlist.follow(settings.corpus_dir, url)

    with Fetcher(POLICY) as fetcher:
        results = update_feeds(settings.corpus_dir, fetcher)
    report = Library(settings, real_embedder).index_if_stored(WebReport(feeds=results))

    by_url = {r.url: r for r in results}
    assert not by_url[not_xml].ok
    assert by_url[not_xml].message.startswith("not an RSS or Atom feed (the server sent "
                                              "text/html")
    assert by_url[broken_feed].message == "HTTP 500 Internal Server Error"
    assert by_url["http://no-such-host.invalid/feed.xml"].message.startswith(
        "cannot resolve host 'no-such-host.invalid'")
    assert by_url[good].ok and by_url[good].stored == 1
    messages = {item.url: item.message for item in by_url[good].items}
    retry = " (will be tried again)"
    port = site.port
    assert messages == {
        site.url(FIRST_THREE[2]): messages[site.url(FIRST_THREE[2])],
        site.url("/missing.html"): "HTTP 404 Not Found" + retry,
        site.url("/broken.html"): "HTTP 500 Internal Server Error" + retry,
        site.url("/slow.html"): f"timed out: 127.0.0.1:{port} sent nothing for 1 s" + retry,
        site.url("/loop-a"): f"redirect loop: {site.url('/loop-a')} -> {site.url('/loop-b')}"
                             f" -> {site.url('/loop-a')}" + retry,
        site.url("/report.pdf"): "not a web page: the server sent application/pdf" + retry,
        site.url("/menu.html"): "no article text found on the page (1 word of main text; "
                                "at least 25 needed)" + retry,
        dead: messages[dead],
        "http://no-such-host.invalid/story.html":
            messages["http://no-such-host.invalid/story.html"],
    }
    assert messages[dead].startswith(f"cannot connect to 127.0.0.1:{gone.port}")
    assert messages["http://no-such-host.invalid/story.html"].startswith(
        "cannot resolve host 'no-such-host.invalid' (DNS:")
    assert len(report.failures) == 3 + 8

    # What could be stored is stored and indexed...
    assert report.index is not None and report.index.added == 1
    quote = best_quote(settings, real_embedder, "What did the Stromvik pupils' robot sort?")
    assert quote.url == site.url(FIRST_THREE[2])
    # ...and nothing is lost: the failed items wait for the next update.
    state = feedlist.read_feeds(settings.corpus_dir).find(good)
    assert {p.url for p in state.pending} == set(messages) - {site.url(FIRST_THREE[2])}
    assert all(p.attempts == 1 for p in state.pending)

    # Fixed on the server: the next update (feed unchanged) fetches the waiting item.
    site.add("/missing.html", article_html(FIRST_THREE[0]))
    with Fetcher(POLICY) as fetcher:
        again = {r.url: r for r in update_feeds(settings.corpus_dir, fetcher, only=[good])}
    assert again[good].stored == 1
    assert feedlist.read_feeds(settings.corpus_dir).find(good).pending[0].attempts == 2


def test_add_urls_stores_each_article_once(site, settings, real_embedder):
    serve_news(site)
    lighthouse = site.url(FIRST_THREE[0])
    site.add("/mirror/copy.html", article_html(FIRST_THREE[0]))  # same text, other URL
    site.add("/tram", article_html(FIRST_THREE[1], '<link rel="canonical" '
                                                   'href="/news/tram-line-approved.html">'))
    with Fetcher(POLICY) as fetcher:
        first = add_urls(settings.corpus_dir, [lighthouse, lighthouse + "?utm_source=rss",
                                               site.url("/mirror/copy.html"),
                                               site.url("/tram"), "ftp://x.example/y"],
                         fetcher)
        again = add_urls(settings.corpus_dir, [site.url("/news/tram-line-approved.html")],
                         fetcher)
    assert [r.status for r in first] == ["stored", "present", "present", "stored", "failed"]
    assert first[2].message == f"the same text is already in the corpus as {lighthouse}"
    assert first[4].message == "only http:// and https:// URLs can be fetched, got " \
                               "'ftp://x.example/y'"
    assert again[0].status == "present"
    stored = sorted((settings.corpus_dir / "web").rglob("*.jsonl"))
    assert len(stored) == 2
    ids = {json.loads(p.read_text())["id"] for p in stored}
    assert ids == {lighthouse, site.url("/news/tram-line-approved.html")}
    report = Library(settings, real_embedder).index_if_stored(WebReport(items=first))
    assert report.index.added == 2


def test_the_command_line_end_to_end(site, settings):
    feed_url = serve_news(site)
    where = ["--corpus", str(settings.corpus_dir)]
    index = ["--index", str(settings.index_dir)]

    added = run_cli(["feeds", "add", feed_url, *where])
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith(f"following {feed_url}\n")
    listed = run_cli(["feeds", "list", *where])
    assert listed.stdout.splitlines() == [
        feed_url, "    (title not known yet) · 0 articles stored · never checked"]

    updated = run_cli(["feeds", "update", "-q", *where, *index], timeout=300)
    assert updated.returncode == 0, updated.stderr
    lines = updated.stdout.splitlines()
    assert lines[0] == f"feed    {feed_url}: 3 items, 3 new; 3 stored"
    assert lines[1].startswith(f"  stored  {site.url(FIRST_THREE[0])}: stored as web/")
    assert "(3 added, 0 changed, 0 removed, 3 kept;" in lines[-1]

    asked = run_cli(["ask", QUESTION, "-k", "1", *index], timeout=300)
    assert asked.returncode == 0, asked.stderr
    assert ANSWER in asked.stdout and f"    {site.url(FIRST_THREE[0])}\n" in asked.stdout

    unchanged = run_cli(["feeds", "update", "-q", *where, *index], timeout=300)
    assert unchanged.stdout == f"feed    {feed_url}: not modified (HTTP 304)\n"

    add = run_cli(["add", "-q", *where, *index, site.url(FOURTH), site.url("/missing.html")],
                  timeout=300)
    assert add.returncode == 1  # something failed: a script or cron job can tell
    out = add.stdout.splitlines()
    assert out[0].startswith(f"stored  {site.url(FOURTH)}: stored as web/")
    assert out[1] == f"failed  {site.url('/missing.html')}: HTTP 404 Not Found"
    assert "(1 added," in out[2]

    listed = run_cli(["feeds", "list", *where]).stdout.splitlines()
    assert listed[1].startswith("    Elsby Courier · 3 articles stored · checked ")
    assert listed[1].endswith(": not modified (HTTP 304)")
    removed = run_cli(["feeds", "remove", feed_url, *where])
    assert removed.stdout == (f"stopped following {feed_url} (the 3 articles stored from it "
                              "stay in the corpus)\n")
    assert run_cli(["feeds", "list", *where]).stdout.startswith("no feeds followed")
    bad = run_cli(["feeds", "update", "--every", "5s", *where, *index])
    assert bad.returncode == 2 and "--every must be at least 1m" in bad.stderr
