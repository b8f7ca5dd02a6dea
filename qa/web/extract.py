"""Fetched bytes -> what Verbatim keeps: an article from a web page, the items of a feed.

Pure (no network): the caller fetched the bytes. trafilatura and feedparser are imported
here only, lazily.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass

from qa.dates import normalize_date
from qa.text import clean
from qa.errors import QAError

# Fewer words than this is a menu, a paywall stub or an error page, not an article.
MIN_ARTICLE_WORDS = 25
HTML_TYPES = ("text/html", "application/xhtml+xml")
_WORD = re.compile(r"\w+")


class NotAnArticle(QAError):
    """The page has no article to keep (not HTML, or no main text); the message says why."""


class NotAFeed(QAError):
    """The bytes are not an RSS or Atom feed; the message says why."""


@dataclass(frozen=True, slots=True)
class WebPage:
    """An article extracted from a page: `paragraphs` verbatim, `canonical` its own URL
    as the page declares it (None if it declares none on its own site)."""

    title: str
    paragraphs: tuple[str, ...]
    date: str | None
    canonical: str | None


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One entry of a feed: where the article is, and what the feed says about it."""

    link: str | None
    title: str | None
    date: str | None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str | None
    items: tuple[FeedItem, ...]


def looks_like_html(body: bytes) -> bool:
    """For a server that sends no Content-Type: does the start look like HTML?"""
    head = body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


def check_html(content_type: str, body: bytes) -> None:
    """Refuse a response that is not a web page (a PDF, an image, JSON...).

    Raises:
        NotAnArticle: names the type the server sent.
    """
    if content_type in HTML_TYPES or (not content_type and looks_like_html(body)):
        return
    raise NotAnArticle(
        f"not a web page: the server sent {content_type or 'no content type'}"
        + ("" if content_type else " and it does not look like HTML")
    )


def decode_html(body: bytes, charset: str | None) -> str | bytes:
    """Text when the server named a charset it can be decoded with; else the bytes, so
    trafilatura reads the page's own <meta charset>."""
    if charset:
        try:
            return body.decode(charset, errors="replace")
        except LookupError:  # an unknown charset name
            pass
    return body


def canonical_link(html: str | bytes, page_url: str) -> str | None:
    """The page's <link rel=canonical> (else og:url), resolved against `page_url`, if it is
    on the same host: a page cannot claim to be another site's article."""
    from urllib.parse import urljoin, urlsplit

    import lxml.html

    try:
        tree = lxml.html.fromstring(html)
    except ValueError:  # a str with an <?xml encoding=...?> declaration: parse the bytes
        try:
            tree = lxml.html.fromstring(html.encode("utf-8") if isinstance(html, str) else html)
        except (ValueError, lxml.etree.ParserError):
            return None
    except lxml.etree.ParserError:  # an empty document
        return None
    candidates = tree.xpath('//link[contains(concat(" ", normalize-space(@rel), " "), '
                            '" canonical ")]/@href')
    candidates += tree.xpath('//meta[@property="og:url"]/@content')
    for href in candidates:
        href = str(href).strip()
        if not href:
            continue
        url = urljoin(page_url, href)
        here, there = urlsplit(page_url), urlsplit(url)
        if there.scheme in ("http", "https") and there.hostname == here.hostname \
                and there.port == here.port:
            return url
    return None


def extract_page(body: bytes, charset: str | None, url: str) -> WebPage:
    """The article of an HTML page: main text (no menus or footers), title, date, canonical.

    Raises:
        NotAnArticle: no main text of at least MIN_ARTICLE_WORDS words.
    """
    import trafilatura

    html = decode_html(body, charset)
    doc = trafilatura.bare_extraction(html, url=url, with_metadata=True,
                                      include_comments=False, include_tables=False)
    text = getattr(doc, "text", None) if doc is not None else None
    paragraphs = clean.line_paragraphs(text or "")
    title = clean.normalize_whitespace(getattr(doc, "title", None) or "") if doc else ""
    if paragraphs and title and paragraphs[0].casefold() == title.casefold():
        paragraphs = paragraphs[1:]  # the headline is the title, not the first paragraph
    words = sum(len(_WORD.findall(p)) for p in paragraphs)
    if words < MIN_ARTICLE_WORDS:
        raise NotAnArticle(f"no article text found on the page ({words} "
                           f"word{'' if words == 1 else 's'} of main text; at least "
                           f"{MIN_ARTICLE_WORDS} needed)")
    return WebPage(
        title=title,
        paragraphs=tuple(paragraphs),
        date=normalize_date(getattr(doc, "date", None)),
        canonical=canonical_link(html, url),
    )


def parse_feed(body: bytes, content_type: str, url: str) -> ParsedFeed:
    """The items of an RSS or Atom feed, links resolved against the feed's URL.

    Raises:
        NotAFeed: feedparser finds no feed in the bytes.
    """
    from urllib.parse import urljoin

    import feedparser

    # A stream, never a string: feedparser treats a string as a URL or a file name to open.
    parsed = feedparser.parse(io.BytesIO(body), response_headers={
        "content-type": content_type or "application/xml", "content-location": url})
    if not parsed.get("version"):
        problem = parsed.get("bozo_exception")
        detail = f": {problem}" if problem else ""
        raise NotAFeed(f"not an RSS or Atom feed (the server sent "
                       f"{content_type or 'no content type'}{detail})")
    items = []
    for entry in parsed.entries:
        link = entry.get("link") or ""
        if not link and str(entry.get("id", "")).startswith(("http://", "https://")):
            link = entry["id"]  # RSS <guid isPermaLink="true"> without a <link>
        items.append(FeedItem(
            link=urljoin(url, link.strip()) if link.strip() else None,
            title=clean.normalize_whitespace(entry.get("title", "")) or None,
            date=normalize_date(entry.get("published") or entry.get("updated")),
        ))
    title = clean.normalize_whitespace(parsed.feed.get("title", "")) or None
    return ParsedFeed(title=title, items=tuple(items))
