"""News in: article URLs and RSS/Atom feeds -> articles in the corpus -> the index.

The feed list and its polling state (ETag / Last-Modified, items seen, items still to
fetch) live in `corpus/.feeds.json`: hidden, so the corpus reader and `index --watch`
ignore it, and inside the corpus, so it travels with the articles. Every URL gets its own
result; one failing page or feed never stops the others, and an item that failed is
tried again on the next update (up to MAX_ATTEMPTS times) instead of being lost.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from qa.errors import ConfigError, CorpusError, QAError
from qa.web.extract import NotAFeed, NotAnArticle, check_html, extract_page, parse_feed
from qa.web.fetch import FetchError, Fetcher, UrlError, canonical_url, normalize_url
from qa.web.store import Known, WebArticle, article_path, known_articles, now_iso, store_article

if TYPE_CHECKING:
    from qa.config import Settings
    from qa.embed import Embedder
    from qa.build import BuildReport

log = logging.getLogger(__name__)

STATE_FILE = ".feeds.json"
STATE_LOCK = ".feeds.json.lock"
UPDATE_LOCK = ".feeds-update.lock"
FORMAT = 1
# An item that failed this many updates in a row is given up (and said so).
MAX_ATTEMPTS = 3
# Items fetched per feed and update: a new feed with hundreds of items is read in parts.
MAX_ITEMS_PER_UPDATE = 100
# Item links remembered per feed: far more than any feed lists at once.
SEEN_LIMIT = 5000
FEED_ACCEPT = ("application/rss+xml, application/atom+xml, application/xml;q=0.9, "
               "text/xml;q=0.9, */*;q=0.5")
PAGE_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"

# (what is happening, done, total)
OnProgress = Callable[[str, int, int], None]


def _no_progress(desc: str, done: int, total: int) -> None:
    pass


# -- the feed list (pure values) -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Pending:
    """An item of a feed not yet in the corpus: to fetch on the next update."""

    url: str
    title: str | None = None
    date: str | None = None
    attempts: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Feed:
    """A followed feed and what polling it has learnt."""

    url: str
    title: str | None = None
    added: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    checked: str | None = None          # when the last update ran
    status: str | None = None           # what it found, in words
    stored: int = 0                     # articles stored from this feed so far
    seen: tuple[str, ...] = ()          # item URLs done with (stored, present, given up)
    pending: tuple[Pending, ...] = ()

    def with_items(self, links: Iterable[tuple[str, str | None, str | None]]) -> "Feed":
        """The feed with the items not seen or pending before added to `pending`."""
        seen, queued = set(self.seen), {p.url for p in self.pending}
        new = []
        for url, title, date in links:
            if url not in seen and url not in queued:
                queued.add(url)
                new.append(Pending(url, title, date))
        return replace(self, pending=self.pending + tuple(new))

    def done(self, url: str) -> "Feed":
        """`url` is in the corpus (or given up): never fetched again."""
        seen = tuple(s for s in self.seen if s != url) + (url,)
        return replace(self, seen=seen[-SEEN_LIMIT:],
                       pending=tuple(p for p in self.pending if p.url != url))

    def failed(self, url: str, error: str) -> tuple["Feed", bool]:
        """Count a failed attempt at `url`; (the feed, whether it was given up)."""
        item = next((p for p in self.pending if p.url == url), Pending(url))
        if item.attempts + 1 >= MAX_ATTEMPTS:
            return self.done(url), True
        updated = replace(item, attempts=item.attempts + 1, error=error)
        return replace(self, pending=tuple(updated if p.url == url else p
                                           for p in self.pending)), False


@dataclass(frozen=True, slots=True)
class FeedList:
    feeds: tuple[Feed, ...] = ()

    def find(self, url: str) -> Feed | None:
        return next((f for f in self.feeds if f.url == url), None)

    def put(self, feed: Feed) -> "FeedList":
        """`feed` replacing the one with its URL (or added at the end)."""
        if self.find(feed.url) is None:
            return FeedList(self.feeds + (feed,))
        return FeedList(tuple(feed if f.url == feed.url else f for f in self.feeds))

    def without(self, url: str) -> "FeedList":
        return FeedList(tuple(f for f in self.feeds if f.url != url))


def feed_list_to_json(feeds: FeedList) -> str:
    def plain(feed: Feed) -> dict:
        return {
            "url": feed.url, "title": feed.title, "added": feed.added, "etag": feed.etag,
            "last_modified": feed.last_modified, "checked": feed.checked,
            "status": feed.status, "stored": feed.stored, "seen": list(feed.seen),
            "pending": [{"url": p.url, "title": p.title, "date": p.date,
                         "attempts": p.attempts, "error": p.error} for p in feed.pending],
        }

    return json.dumps({"format": FORMAT, "feeds": [plain(f) for f in feeds.feeds]},
                      indent=1, ensure_ascii=False) + "\n"


def _opt_str(record: dict, key: str) -> str | None:
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key!r} must be text, got {value!r}")
    return value


def feed_list_from_json(text: str) -> FeedList:
    """Parse the feed-list file.

    Raises:
        ValueError: not this format (the message says what is wrong).
    """
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"expected an object with \"format\": {FORMAT}")
    feeds = []
    for record in data.get("feeds", []):
        if not isinstance(record, dict) or not isinstance(record.get("url"), str):
            raise ValueError(f"a feed without a URL: {record!r}")
        pending = []
        for item in record.get("pending") or []:
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                raise ValueError(f"a pending item without a URL: {item!r}")
            pending.append(Pending(item["url"], _opt_str(item, "title"), _opt_str(item, "date"),
                                   int(item.get("attempts") or 0), _opt_str(item, "error")))
        seen = record.get("seen") or []
        if not isinstance(seen, list) or not all(isinstance(s, str) for s in seen):
            raise ValueError(f"'seen' of {record['url']} must be a list of URLs")
        feeds.append(Feed(
            url=record["url"], title=_opt_str(record, "title"), added=_opt_str(record, "added"),
            etag=_opt_str(record, "etag"), last_modified=_opt_str(record, "last_modified"),
            checked=_opt_str(record, "checked"), status=_opt_str(record, "status"),
            stored=int(record.get("stored") or 0), seen=tuple(seen), pending=tuple(pending),
        ))
    return FeedList(tuple(feeds))


# -- the feed list on disk -------------------------------------------------------------------
def _corpus_folder(corpus_dir: Path) -> Path:
    corpus_dir = Path(corpus_dir)
    if corpus_dir.exists() and not corpus_dir.is_dir():
        raise CorpusError(f"the corpus {corpus_dir} is a file; feeds and articles from the "
                          "web live in a corpus folder (use --corpus FOLDER)")
    return corpus_dir


def state_path(corpus_dir: Path) -> Path:
    return _corpus_folder(corpus_dir) / STATE_FILE


def read_feeds(corpus_dir: Path) -> FeedList:
    """The followed feeds (none if the file does not exist yet).

    Raises:
        CorpusError: the file exists but is damaged (the message names it).
    """
    path = state_path(corpus_dir)
    try:
        return feed_list_from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return FeedList()
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CorpusError(f"{path} is not a readable feed list ({exc}); fix it, or move it "
                          "away and add the feeds again (stored articles are kept)") from None


def _write_feeds(corpus_dir: Path, feeds: FeedList) -> None:
    path = state_path(corpus_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temp.write_text(feed_list_to_json(feeds), encoding="utf-8")
    os.replace(temp, path)  # readers see the old list or the new one, never half


def _change_feeds(corpus_dir: Path, change: Callable[[FeedList], FeedList]) -> FeedList:
    """Read, change and write the feed list under its lock (CLI and page may both write)."""
    from filelock import FileLock, Timeout

    folder = _corpus_folder(corpus_dir)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(folder / STATE_LOCK), timeout=30):
            feeds = change(read_feeds(folder))
            _write_feeds(folder, feeds)
            return feeds
    except Timeout:
        raise QAError(f"the feed list in {folder} is locked by another process; "
                      "try again") from None


def follow(corpus_dir: Path, url: str) -> tuple[Feed, bool]:
    """Add a feed to the list; (the feed, whether it is new). Nothing is fetched yet.

    Raises:
        UrlError: not an http(s) URL.
    """
    url = normalize_url(url)
    added = [False]

    def change(feeds: FeedList) -> FeedList:
        if feeds.find(url) is not None:
            return feeds
        added[0] = True
        return feeds.put(Feed(url=url, added=now_iso()))

    feeds = _change_feeds(corpus_dir, change)
    return feeds.find(url), added[0]


def unfollow(corpus_dir: Path, url: str) -> Feed:
    """Remove a feed from the list (its stored articles stay in the corpus).

    Raises:
        ConfigError: the feed is not in the list.
    """
    try:
        url = normalize_url(url)
    except UrlError:
        pass  # look it up as typed: the list may hold anything
    found: list[Feed] = []

    def change(feeds: FeedList) -> FeedList:
        feed = feeds.find(url)
        if feed is None:
            listed = ", ".join(f.url for f in feeds.feeds) or "none"
            raise ConfigError(f"{url} is not a followed feed (followed: {listed})")
        found.append(feed)
        return feeds.without(url)

    _change_feeds(corpus_dir, change)
    return found[0]


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

    def line(self) -> str:
        return f"{self.status:<8}{self.url}: {self.message}"


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

    def lines(self) -> list[str]:
        head = f"{'feed' if self.ok else 'failed'}    {self.url}: {self.message}"
        return [head] + ["  " + item.line() for item in self.items]


@dataclass(frozen=True, slots=True)
class WebReport:
    """The results of `add` or `feeds update`, then of the index update."""

    items: tuple[ItemResult, ...] = ()
    feeds: tuple[FeedResult, ...] = ()
    index: BuildReport | None = None
    index_error: str | None = None

    @property
    def stored(self) -> int:
        return sum(1 for i in self.items if i.status == "stored") + \
            sum(f.stored for f in self.feeds)

    @property
    def failures(self) -> list[tuple[str, str]]:
        """(URL, reason) of everything that failed: feeds, articles, the index update."""
        out = [(i.url, i.message) for i in self.items if i.failed]
        for feed in self.feeds:
            if not feed.ok:
                out.append((feed.url, feed.message))
            out += [(i.url, i.message) for i in feed.items if i.failed]
        if self.index_error:
            out.append(("index", self.index_error))
        return out

    def lines(self) -> list[str]:
        lines = [item.line() for item in self.items]
        for feed in self.feeds:
            lines += feed.lines()
        if self.index is not None:
            lines.append(self.index.summary())
        if self.index_error:
            lines.append(f"error: {self.index_error}")
        return lines


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
    folder = _corpus_folder(corpus_dir)
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
               on_progress: OnProgress) -> tuple[Feed, FeedResult, Known]:
    """One feed: fetch it (conditionally), queue its new items, fetch the queue."""
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
    feed = replace(feed, checked=now_iso(), status=message, stored=feed.stored + stored)
    return feed, FeedResult(feed.url, ok, message, tuple(results)), known


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

    folder = _corpus_folder(corpus_dir)
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
            try:
                polled, result, known = _poll_feed(folder, fetcher, feed, known, on_progress)
            except Exception as exc:  # one bad feed never stops the others
                log.exception("updating %s failed", feed.url)
                polled = replace(feed, checked=now_iso(), status=f"unexpected error: {exc}")
                result = FeedResult(feed.url, False, polled.status or "")
            results.append(result)
            # Saved per feed; a feed removed meanwhile stays removed.
            _change_feeds(folder, lambda current, p=polled:
                          current.put(p) if current.find(p.url) else current)
        return tuple(results)
    finally:
        lock.release()


# -- the index -----------------------------------------------------------------------------
def update_index(settings: Settings, embedder: Embedder,
                 on_progress: Callable[[str, int, int], None] | None = None,
                 wait_seconds: float = 60) -> BuildReport:
    """Update the index from the corpus: only the new articles are embedded.

    The one place the web side calls the builder. Waits up to `wait_seconds` for another
    build (the page's, a cron job's) to finish.
    """
    from qa.build import build_index

    return build_index(settings, embedder, on_progress=on_progress, wait_seconds=wait_seconds)


def index_if_stored(report: WebReport, settings: Settings, embedder: Callable[[], Embedder],
                    on_progress: Callable[[str, int, int], None] | None = None,
                    wait_seconds: float = 60) -> WebReport:
    """`report` with the index updated if anything was stored (a failure to build is
    reported, not raised: the articles are safe in the corpus either way).

    `embedder` is called only then, so a run that stored nothing never loads the model.
    """
    if not report.stored:
        return report
    try:
        built = update_index(settings, embedder(), on_progress, wait_seconds)
    except QAError as exc:
        return replace(report, index_error=f"the articles are stored but the index was not "
                       f"updated: {exc}; run `python -m qa index`")
    return replace(report, index=built)


# -- polling -------------------------------------------------------------------------------
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in "90s", "30m", "2h", "1d".

    Raises:
        ConfigError: anything else.
    """
    match = _DURATION.match(str(text))
    if not match:
        raise ConfigError(f"a duration looks like 90s, 30m, 2h or 1d, got {text!r}")
    return float(match.group(1)) * _UNIT[match.group(2).lower()]


def poll(run_once: Callable[[], object], every: float, stop: threading.Event | None = None,
         report_error: Callable[[str], None] = lambda message: None) -> None:
    """Call `run_once()` now and then every `every` seconds until `stop` is set (or
    Ctrl-C). A failing run is reported and the next one happens on time."""
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            run_once()
        except QAError as exc:
            report_error(str(exc))
        stop.wait(every)


# -- for the page --------------------------------------------------------------------------
def report_markdown(report: WebReport) -> str:
    """The results as the page shows them (Markdown; every URL and message escaped)."""
    from qa.serve.render import esc

    def item_line(item: ItemResult) -> str:
        if item.status == "stored":
            return f"- **added** `{esc(item.url)}`: “{esc(item.title or item.url)}”"
        label = "already there" if item.status == "present" else "**failed**"
        return f"- {label} `{esc(item.url)}`: {esc(item.message)}"

    lines = []
    for item in report.items:
        lines.append(item_line(item))
    for feed in report.feeds:
        label = "feed" if feed.ok else "**feed failed**"
        lines.append(f"- {label} `{esc(feed.url)}`: {esc(feed.message)}")
        lines += ["  " + item_line(item) for item in feed.items]
    failures = len(report.failures) - (1 if report.index_error else 0)
    head = [f"**{report.stored}** new article{'s' if report.stored != 1 else ''} added"
            + (f", **{failures}** failed" if failures else "") + "."]
    if report.index is not None:
        built = report.index
        head.append(f"The index now has **{built.articles}** articles ({built.added} added, "
                    f"{built.passages} passages); the chat answers from them.")
    if report.index_error:
        head.append(f"⚠️ {esc(report.index_error)}")
    return " ".join(head) + ("\n\n" + "\n".join(lines) if lines else "")
