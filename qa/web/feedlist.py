"""The followed feeds and what polling them has learnt, in `corpus/.feeds.json`.

The list and its polling state (ETag / Last-Modified, items seen, items still to fetch)
live in the corpus folder: hidden, so the corpus reader and `index --watch` ignore it,
and inside the corpus, so it travels with the articles. The CLI and the page may both
change it: every change is read, changed and written under a file lock, and written by
an atomic rename, so readers see the old list or the new one, never half.
"""
from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from qa.errors import ConfigError, CorpusError, QAError
from qa.web.fetch import UrlError, normalize_url
from qa.web.store import now_iso

STATE_FILE = ".feeds.json"
STATE_LOCK = ".feeds.json.lock"
FORMAT = 1
# An item that failed this many updates in a row is given up (and said so).
MAX_ATTEMPTS = 3
# Item links remembered per feed: far more than any feed lists at once.
SEEN_LIMIT = 5000


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
def corpus_folder(corpus_dir: Path) -> Path:
    corpus_dir = Path(corpus_dir)
    if corpus_dir.exists() and not corpus_dir.is_dir():
        raise CorpusError(f"the corpus {corpus_dir} is a file; feeds and articles from the "
                          "web live in a corpus folder (use --corpus FOLDER)")
    return corpus_dir


def state_path(corpus_dir: Path) -> Path:
    return corpus_folder(corpus_dir) / STATE_FILE


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


def change_feeds(corpus_dir: Path, change: Callable[[FeedList], FeedList]) -> FeedList:
    """Read, change and write the feed list under its lock (CLI and page may both write)."""
    from filelock import FileLock, Timeout

    folder = corpus_folder(corpus_dir)
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

    feeds = change_feeds(corpus_dir, change)
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

    change_feeds(corpus_dir, change)
    return found[0]
