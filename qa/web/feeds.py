"""News in: article URLs and followed RSS/Atom feeds -> articles stored in the corpus.

Every URL gets its own result; one failing page or feed never stops the others, and an
item that failed is tried again on the next update (up to feedlist.MAX_ATTEMPTS times)
instead of being lost. The feed list and its polling state are qa.web.feedlist's; updating
the index afterwards is the caller's (qa.serve.library).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from qa.errors import QAError
from qa.web.extract import NotAFeed, NotAnArticle, check_html, extract_page, parse_feed
from qa.web.feedlist import (
    MAX_ATTEMPTS, Feed, change_feeds, corpus_folder, read_feeds,
)
from qa.web.fetch import FetchError, Fetcher, UrlError, canonical_url, normalize_url
from qa.web.store import Known, WebArticle, article_path, known_articles, now_iso, store_article

log = logging.getLogger(__name__)

UPDATE_LOCK = ".feeds-update.lock"
# Items fetched per feed and update: a new feed with hundreds of items is read in parts.
MAX_ITEMS_PER_UPDATE = 100
FEED_ACCEPT = ("application/rss+xml, application/atom+xml, application/xml;q=0.9, "
               "text/xml;q=0.9, */*;q=0.5")
PAGE_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"

# (what is happening, done, total)
OnProgress = Callable[[str, int, int], None]


def _no_progress(desc: str, done: int, total: int) -> None:
    pass


# -- results -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ItemResult:
    """What happened to one article URL."""

    url: str
    status: str                 # "stored", "present" (already in the corpus), "failed"
    message: str
    title: str | None = None
    path: str | None = None     # the stored file, relative to the corpus folder

    @property
    def failed(self) -> bool:
        return self.status == "failed"


@dataclass(frozen=True, slots=True)
class FeedResult:
    """What happened to one feed in an update."""

    url: str
    ok: bool
    message: str
    items: tuple[ItemResult, ...] = ()

    @property
    def stored(self) -> int:
        return sum(1 for item in self.items if item.status == "stored")


@dataclass(frozen=True, slots=True)
class WebReport:
    """The results of adding article URLs or updating feeds, one per URL."""

    items: tuple[ItemResult, ...] = ()
    feeds: tuple[FeedResult, ...] = ()

    @property
    def stored(self) -> int:
        return sum(1 for i in self.items if i.status == "stored") + \
            sum(f.stored for f in self.feeds)

    @property
    def failures(self) -> list[tuple[str, str]]:
        """(URL, reason) of everything that failed: feeds and articles."""
        out = [(i.url, i.message) for i in self.items if i.failed]
        for feed in self.feeds:
            if not feed.ok:
                out.append((feed.url, feed.message))
            out += [(i.url, i.message) for i in feed.items if i.failed]
        return out


# -- fetching articles -----------------------------------------------------------------------
def fetch_article(fetcher: Fetcher, url: str, title: str | None = None,
                  date: str | None = None, feed: str | None = None) -> WebArticle:
    """Fetch one page and extract its article. A feed's date wins over the page's (often
    a guess); the feed's title is used when the page has none.

    Raises:
        FetchError: the page could not be fetched (the message says why).
        NotAnArticle: it is not HTML, or has no article text.
    """
    response = fetcher.get(url, accept=PAGE_ACCEPT)
    check_html(response.content_type, response.body)
    page = extract_page(response.body, response.charset, response.final_url)
    canonical = canonical_url(page.canonical or response.final_url)
    return WebArticle(
        url=canonical, title=page.title or title or canonical, paragraphs=page.paragraphs,
        date=date or page.date, fetched=now_iso(), feed=feed,
    )


def _store_one(corpus_dir: Path, fetcher: Fetcher, url: str, known: Known,
               title: str | None = None, date: str | None = None,
               feed: str | None = None) -> tuple[ItemResult, Known]:
    """Fetch and store one article URL; never raises for a problem with that URL."""
    try:
        key = canonical_url(url)
        if key in known.urls:
            return ItemResult(url, "present", "already in the corpus"), known
        article = fetch_article(fetcher, key, title, date, feed)
        duplicate = known.duplicate_of(article)
        if duplicate:
            return ItemResult(url, "present", duplicate, article.title), known
        path = store_article(corpus_dir, article)
        relative = article_path(article.url).as_posix()
        if path is None:  # stored meanwhile by another process
            return ItemResult(url, "present", f"already in the corpus as {relative}",
                              article.title), known.plus(article)
        return (ItemResult(url, "stored", f"stored as {relative} ({article.title!r})",
                           article.title, relative), known.plus(article))
    except (FetchError, NotAnArticle) as exc:
        return ItemResult(url, "failed", str(exc)), known
    except OSError as exc:  # the corpus folder: full disk, permissions
        return ItemResult(url, "failed", f"could not store it: {exc}"), known
    except Exception as exc:  # one odd page must not stop the others
        log.exception("fetching %s failed", url)
        return ItemResult(url, "failed", f"unexpected error: {type(exc).__name__}: {exc}"), known


def add_urls(corpus_dir: Path, urls: Sequence[str], fetcher: Fetcher,
             on_progress: OnProgress = _no_progress) -> tuple[ItemResult, ...]:
    """Fetch each article URL and store the new ones in the corpus (no index update)."""
    folder = corpus_folder(corpus_dir)
    known = known_articles(folder)
    results = []
    for number, url in enumerate(urls):
        on_progress(f"Fetching {url}", number, len(urls))
        result, known = _store_one(folder, fetcher, url, known)
        results.append(result)
    on_progress("Fetched", len(urls), len(urls))
    return tuple(results)


# -- updating feeds ------------------------------------------------------------------------
def _poll_feed(corpus_dir: Path, fetcher: Fetcher, feed: Feed, known: Known,
               on_progress: OnProgress, save: Callable[[Feed], None] = lambda feed: None
               ) -> tuple[Feed, FeedResult, Known]:
    """One feed: fetch it (conditionally), queue its new items, fetch the queue. `save`
    gets the feed's state after each article stored, so a killed update loses no count."""
    notes = []
    not_modified = False
    try:
        response = fetcher.get(feed.url, accept=FEED_ACCEPT, etag=feed.etag,
                               last_modified=feed.last_modified)
        not_modified = response.not_modified
        if not_modified:
            notes.append("not modified (HTTP 304)")
        else:
            parsed = parse_feed(response.body, response.content_type, response.final_url)
            links = []
            for item in parsed.items:
                try:
                    links.append((canonical_url(item.link), item.title, item.date))
                except (UrlError, TypeError):
                    pass  # an item without a usable link has nothing to fetch
            before = len(feed.pending)
            feed = feed.with_items(links)
            feed = replace(feed, title=parsed.title or feed.title, etag=response.etag,
                           last_modified=response.last_modified)
            notes.append(f"{len(parsed.items)} items, {len(feed.pending) - before} new")
    except (FetchError, NotAFeed) as exc:
        message = str(exc)
        if feed.pending:
            message += f"; {len(feed.pending)} items from earlier updates are tried anyway"
        notes = [message]
        ok = False
    else:
        ok = True

    queue = feed.pending[:MAX_ITEMS_PER_UPDATE]
    results = []
    for number, item in enumerate(queue):
        on_progress(f"{feed.title or feed.url}: {item.title or item.url}", number, len(queue))
        result, known = _store_one(corpus_dir, fetcher, item.url, known, item.title,
                                   item.date, feed.url)
        if result.failed:
            feed, gave_up = feed.failed(item.url, result.message)
            if gave_up:
                result = replace(result, message=result.message +
                                 f" (failed {MAX_ATTEMPTS} times: given up)")
            else:
                result = replace(result, message=result.message + " (will be tried again)")
        else:
            feed = feed.done(item.url)
            if result.status == "stored":
                feed = replace(feed, stored=_stored(feed, known, 1))
                save(feed)
        results.append(result)
    stored = sum(1 for r in results if r.status == "stored")
    present = sum(1 for r in results if r.status == "present")
    failed = sum(1 for r in results if r.failed)
    if ok and (results or not not_modified):
        notes.append(f"{stored} stored" + (f", {present} already in the corpus" if present
                                           else "") + (f", {failed} failed" if failed else ""))
    retried = {r.url for r in results} & {p.url for p in feed.pending}
    if len(feed.pending) > len(retried):
        notes.append(f"{len(feed.pending) - len(retried)} more waiting for the next update")
    message = "; ".join(notes)
    feed = replace(feed, checked=now_iso(), status=message, stored=_stored(feed, known))
    return feed, FeedResult(feed.url, ok, message, tuple(results)), known


def _stored(feed: Feed, known: Known, new: int = 0) -> int:
    """The feed's count of stored articles: what it counted, or what the corpus holds from
    it if that is more (an update killed after storing an article, before saving its count,
    left it uncounted)."""
    return max(feed.stored + new, known.stored_from(feed.url))


def update_feeds(corpus_dir: Path, fetcher: Fetcher, on_progress: OnProgress = _no_progress,
                 only: Sequence[str] | None = None) -> tuple[FeedResult, ...]:
    """Poll every followed feed (or those in `only`) and store their new articles.

    One update at a time per corpus (another one running is an error that says so); the
    feed list stays editable meanwhile, and each feed's state is saved as soon as it is
    done, so an interrupted update keeps what it did.

    Raises:
        QAError: another update is running on this corpus.
    """
    from filelock import FileLock, Timeout

    folder = corpus_folder(corpus_dir)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / UPDATE_LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise QAError(f"another feed update is running on {folder}; try again when it has "
                      "finished") from None
    try:
        feeds = read_feeds(folder).feeds
        if only is not None:
            wanted = {normalize_url(u) for u in only}
            feeds = tuple(f for f in feeds if f.url in wanted)
        known = known_articles(folder)
        results = []
        for number, feed in enumerate(feeds):
            on_progress(f"Feed {number + 1} of {len(feeds)}: {feed.url}", number, len(feeds))

            def save(polled: Feed) -> None:  # a feed removed meanwhile stays removed
                change_feeds(folder, lambda current:
                              current.put(polled) if current.find(polled.url) else current)

            try:
                polled, result, known = _poll_feed(folder, fetcher, feed, known, on_progress,
                                                   save)
            except Exception as exc:  # one bad feed never stops the others
                log.exception("updating %s failed", feed.url)
                polled = replace(feed, checked=now_iso(), status=f"unexpected error: {exc}")
                result = FeedResult(feed.url, False, polled.status or "")
            results.append(result)
            save(polled)
        return tuple(results)
    finally:
        lock.release()
