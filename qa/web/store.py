"""Articles from the web in the corpus: one small .jsonl record each, under corpus/web/.

`corpus/web/HOST/SLUG-HASH.jsonl` holds one line that the corpus reader already reads
(`id`, `title`, `text`, `date`, `url`) plus `fetched`, `feed` and `sha256`. The id is the
article's canonical URL, so the file name, the id and the link never change and a
rebuild from the corpus alone keeps everything.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from qa.text import clean
from qa.errors import CorpusError

WEB_DIR = "web"
MAX_SLUG = 60
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_NOT_HOST = re.compile(r"[^a-z0-9.-]+")
_PAGE_SUFFIX = re.compile(r"\.(s?html?|php\d?|aspx?|jsp|cgi)$")


@dataclass(frozen=True, slots=True)
class WebArticle:
    """An article fetched from the web, as it is stored."""

    url: str                      # canonical URL: also the article id
    title: str
    paragraphs: tuple[str, ...]
    date: str | None
    fetched: str                  # when, ISO 8601 UTC
    feed: str | None = None       # the feed it came from, if any

    @property
    def sha256(self) -> str:
        return text_hash(self.paragraphs)


@dataclass(frozen=True, slots=True)
class Known:
    """What the corpus already holds: canonical URLs, text hash -> URL, and URL -> the
    feed it was stored from (for the articles stored from one)."""

    urls: frozenset[str]
    hashes: dict[str, str]
    feeds: dict[str, str] = field(default_factory=dict)

    def duplicate_of(self, article: WebArticle) -> str | None:
        """Why `article` must not be stored again (a message), or None."""
        if article.url in self.urls:
            return f"already in the corpus ({article.url})"
        other = self.hashes.get(article.sha256)
        if other is not None:
            return f"the same text is already in the corpus as {other}"
        return None

    def stored_from(self, feed: str) -> int:
        """How many articles in the corpus were stored from `feed`."""
        return sum(1 for source in self.feeds.values() if source == feed)

    def plus(self, article: WebArticle) -> "Known":
        feeds = {**self.feeds, article.url: article.feed} if article.feed else self.feeds
        return Known(self.urls | {article.url}, {**self.hashes, article.sha256: article.url},
                     feeds)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def text_hash(paragraphs: tuple[str, ...] | list[str]) -> str:
    """The content hash: the same article text (whitespace aside) at two URLs is one
    article."""
    text = "\n".join(clean.normalize_whitespace(p) for p in paragraphs if p.strip())
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def host_folder(url: str) -> str:
    """A folder name for the URL's host: `example.com`, `127.0.0.1_8000`; never hidden."""
    parts = urlsplit(url)
    host = (parts.hostname or "unknown").lower().strip("[]").replace(":", "_")
    host = _NOT_HOST.sub("_", host).lstrip(".") or "unknown"
    return f"{host}_{parts.port}" if parts.port else host


def slug(url: str) -> str:
    """A readable file-name stem from the URL's last path segment (`lighthouse-reopens`)."""
    segments = [s for s in unquote(urlsplit(url).path).split("/") if s]
    stem = _PAGE_SUFFIX.sub("", segments[-1].lower()) if segments else ""
    return _NOT_SLUG.sub("-", stem).strip("-")[:MAX_SLUG].strip("-") or "index"


def article_path(url: str) -> PurePosixPath:
    """Where the article with canonical `url` lives, relative to the corpus folder.

    The hash of the whole URL keeps two pages with the same last segment apart.
    """
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
    return PurePosixPath(WEB_DIR, host_folder(url), f"{slug(url)}-{digest}.jsonl")


def to_record(article: WebArticle) -> dict:
    return {
        "id": article.url, "url": article.url, "title": article.title,
        "date": article.date, "text": clean.join_paragraphs(article.paragraphs),
        "fetched": article.fetched, "feed": article.feed, "sha256": article.sha256,
    }


def web_folder(corpus_dir: Path) -> Path:
    """corpus/web, after checking the corpus is a folder (web articles need one)."""
    corpus_dir = Path(corpus_dir)
    if corpus_dir.exists() and not corpus_dir.is_dir():
        raise CorpusError(f"the corpus {corpus_dir} is a file; articles from the web are "
                          "stored in a corpus folder (use --corpus FOLDER)")
    return corpus_dir / WEB_DIR


def known_articles(corpus_dir: Path) -> Known:
    """Every web article already stored (its URL and text hash), read from corpus/web/."""
    urls: set[str] = set()
    hashes: dict[str, str] = {}
    feeds: dict[str, str] = {}
    folder = web_folder(corpus_dir)
    if not folder.is_dir():
        return Known(frozenset(), {})
    for path in folder.rglob("*.jsonl"):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue  # the corpus reader reports it; here it just is not a known article
        for line in lines:
            try:
                record = json.loads(line)
                url = str(record.get("url") or record["id"])
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
                continue
            urls.add(url)
            if isinstance(record.get("feed"), str):
                feeds.setdefault(url, record["feed"])
            digest = record.get("sha256") or text_hash(
                clean.line_paragraphs(str(record.get("text", ""))))
            hashes.setdefault(str(digest), url)
    return Known(frozenset(urls), hashes, feeds)


def store_article(corpus_dir: Path, article: WebArticle) -> Path | None:
    """Write `article` to its file; None if that file exists already (never overwritten).

    Written to a hidden temporary file first, then linked into place, so the corpus
    reader (which skips hidden files) never sees half a record and two writers of the same
    article cannot both win.
    """
    relative = article_path(article.url)
    path = Path(corpus_dir) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    line = json.dumps(to_record(article), ensure_ascii=False) + "\n"
    with open(temp, "w", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temp, path)
    except FileExistsError:
        return None
    finally:
        temp.unlink(missing_ok=True)
    return path
