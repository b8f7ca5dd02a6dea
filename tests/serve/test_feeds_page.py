"""News from the web on the page: private addresses refused without --allow-private-urls,
and in headless Chromium: add a URL and follow a feed in the Library tab, ask, see the
quote with its link."""
from __future__ import annotations

from urllib.parse import urlparse

import pytest

from qa.serve.page import Page
from app_server import ask as ask_on_page, chromium_page, start_app
from index_helpers import small_corpus
from qa.web import feedlist
from web_site import (
    ANSWER, ARTICLES, FIRST_THREE, FOURTH, FOURTH_ANSWER, FOURTH_QUESTION, QUESTION, Site,
    serve_news,
)

TIMEOUT_MS = 120_000


@pytest.fixture
def site():
    with Site() as s:
        yield s


def test_the_page_refuses_private_urls_without_the_flag(site, tmp_path, fake_embedder):
    feed_url = serve_news(site)
    settings = small_corpus(tmp_path)
    page = Page(settings, fake_embedder)  # as `python app.py` starts it: no flag

    note, _status, _articles, left = page.add_urls(site.url(FIRST_THREE[0]))
    assert "failed" in note and "refused: 127.0.0.1 is a loopback address" in note
    assert "--allow-private-urls" in note
    assert left == site.url(FIRST_THREE[0])  # kept in the field
    note, _rows, left = page.follow_feed(f"http://localhost:{site.port}/feed.xml")
    assert note.startswith("⚠️ Not followed: refused: localhost resolves to 127.0.0.1, a "
                           "loopback address")
    assert feedlist.read_feeds(settings.corpus_dir).feeds == ()
    note, *_ = page.add_urls("http://169.254.169.254/latest/meta-data/")
    assert "refused: 169.254.169.254 is a cloud metadata address" in note

    # A feed the operator added with the CLI is not fetched from the page either.
    feedlist.follow(settings.corpus_dir, feed_url)
    note, *_ = page.update_feeds()
    assert "**feed failed**" in note and "refused: 127.0.0.1 is a loopback address" in note
    assert site.requests == []  # the server was never contacted, not even for robots.txt
    assert not (settings.corpus_dir / "web").exists()
    assert fake_embedder.encoded == []


def test_with_the_flag_the_page_adds_urls_and_follows_feeds(site, tmp_path, fake_embedder):
    feed_url = serve_news(site)
    page = Page(small_corpus(tmp_path), fake_embedder, allow_private_urls=True)

    note, status, articles, left = page.add_urls(
        f"{site.url(FIRST_THREE[0])}\n  {site.url('/missing.html')}\n")
    assert note.startswith("**1** new article added, **1** failed. The index now has **4** "
                           "articles")
    assert f"**failed** `{site.url('/missing.html')}`: HTTP 404 Not Found" in note
    assert left == site.url("/missing.html")  # only the failed URL stays in the field
    assert "4** articles" in status
    assert ARTICLES[FIRST_THREE[0]][0] in [row[0] for row in articles]

    note, rows, left = page.follow_feed(feed_url)
    assert note.startswith(f"Following `{feed_url}`") and left == ""
    assert rows == [[feed_url, "", 0, 0, "not yet updated"]]
    note, status, articles, rows = page.update_feeds()
    assert note.startswith("**2** new articles added.")
    assert "already there" in note  # the article added by URL is not stored twice
    assert rows[0][:4] == [feed_url, "Elsby Courier", 2, 0]
    assert "6** articles" in status
    note, rows = page.unfollow_feed(feed_url)
    assert note.startswith(f"Stopped following `{feed_url}`; its 2 articles stay")
    assert rows == []
    assert page.add_urls(" ".join(["http://a.example/"] * 21))[0] == \
        "⚠️ At most 20 URLs at a time, got 21."


# -- in the browser ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def news_site():
    with Site() as s:
        serve_news(s, feed_paths=[FOURTH])
        yield s


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # The test server is on 127.0.0.1, so the app must be told that is allowed.
    app = start_app(tmp_path_factory.mktemp("webpage"), extra_args=("--allow-private-urls",))
    yield app
    app.stop()


@pytest.fixture
def page(server):
    with chromium_page(server.url, TIMEOUT_MS) as tab:
        yield tab


def ask(page, question: str):
    page.get_by_role("tab", name="Chat").click()
    return ask_on_page(page, question)


@pytest.mark.e2e
@pytest.mark.slow
def test_add_a_url_and_a_feed_in_the_library_then_ask(page, news_site, server):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Library").click()
    url = news_site.url(FIRST_THREE[0])
    page.fill("#web-urls textarea", url)
    page.click("#web-add")
    note = page.locator("#web-note")
    expect(note).to_contain_text("1 new article added", timeout=180_000)
    expect(note).to_contain_text(ARTICLES[FIRST_THREE[0]][0])
    expect(page.locator("#status")).to_contain_text("2 articles")
    expect(page.locator("#articles")).to_contain_text(ARTICLES[FIRST_THREE[0]][0])
    assert page.input_value("#web-urls textarea") == ""

    answer = ask(page, QUESTION)
    quote = answer.locator(".vb-quote").first
    expect(quote.locator("mark").first).to_contain_text(ANSWER)
    link = quote.locator(".vb-title a")
    expect(link).to_have_text(ARTICLES[FIRST_THREE[0]][0])
    expect(link).to_have_attribute("href", url)
    # The publisher is the article's host, not the file it was saved to.
    expect(quote.locator(".vb-source")).to_have_text("127.0.0.1")

    page.get_by_role("tab", name="Library").click()
    feed_url = news_site.url("/feed.xml")
    page.fill("#feed-url textarea", feed_url)
    page.click("#feed-add")
    expect(note).to_contain_text(f"Following {feed_url}")
    expect(page.locator("#feeds")).to_contain_text(feed_url)
    page.click("#feeds-update")
    expect(note).to_contain_text("1 new article added", timeout=180_000)
    expect(page.locator("#feeds")).to_contain_text("Elsby Courier")
    expect(page.locator("#status")).to_contain_text("3 articles")

    answer = ask(page, FOURTH_QUESTION)
    quote = answer.locator(".vb-quote").first
    expect(quote.locator("mark").first).to_contain_text(FOURTH_ANSWER)
    expect(quote.locator(".vb-title a")).to_have_attribute("href", news_site.url(FOURTH))
    assert urlparse(page.url).hostname == "127.0.0.1"
    assert page.js_errors == []


def test_everything_that_shows_the_feed_list_runs_in_order(tmp_path, fake_embedder):
    """Opening the Library tab reads the feed list; following a feed a moment later writes
    it. Run side by side, the read could land last and blank the table (seen once in CI):
    they share one queue slot, so each runs after the one asked before it."""
    from qa.serve.ui import build_page

    demo = build_page(Page(small_corpus(tmp_path), fake_embedder))
    by_id = {getattr(block, "elem_id", None): block for block in demo.blocks.values()}
    update = by_id["feeds-update"]._id  # minutes long, it reads the list at its end
    listing = [fn for fn in demo.fns.values() if by_id["feeds"] in fn.outputs
               and update not in {target for target, _event in fn.targets}]
    assert len(listing) == 4  # the tab opening, the page loading, follow, stop following
    assert {(fn.concurrency_id, fn.concurrency_limit) for fn in listing} == {("feed-list", 1)}
