"""A small real web site for the feed tests: http.server on 127.0.0.1 in a thread.

Serves news pages and an RSS feed, answers conditional requests with 304, and can play
every failure a fetcher meets (404, 500, a slow server, a redirect loop, a PDF, a page
without an article, a feed that is not XML). It records each request it gets.
"""
from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from email.utils import format_datetime
from datetime import datetime, timezone
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0          # seconds before answering (a slow server)
    conditional: bool = False   # ETag / Last-Modified, 304 when unchanged


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    start: float
    end: float = 0.0
    status: int = 0


class Site:
    """Routes on a real HTTP server at 127.0.0.1:<free port>. Use as a context manager."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                record = Request(self.path, {k.lower(): v for k, v in self.headers.items()},
                                 time.monotonic())
                with site._lock:
                    site.requests.append(record)
                route = site.routes.get(self.path.split("#")[0])
                status, headers, body = site._answer(route, record.headers)
                if route is not None and route.delay:
                    time.sleep(route.delay)
                # Recorded before answering: a client that has its answer may look at once.
                record.status = status
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)
                record.end = time.monotonic()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Site":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, path: str, body: bytes | str, **options) -> str:
        """Serve `body` at `path`; the URL."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.routes[path] = Route(body=data, **options)
        return self.url(path)

    def redirect(self, path: str, to: str, status: int = 302) -> str:
        self.routes[path] = Route(status=status, headers={"Location": to})
        return self.url(path)

    def hits(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _answer(self, route: Route | None, asked: dict[str, str]):
        if route is None:
            return 404, {"Content-Type": "text/plain"}, b"not found"
        headers = dict(route.headers)
        if route.status != 200:
            return route.status, {"Content-Type": route.content_type, **headers}, route.body
        headers["Content-Type"] = route.content_type
        if route.conditional:
            etag = '"' + hashlib.sha256(route.body).hexdigest()[:16] + '"'
            headers["ETag"] = etag
            headers["Last-Modified"] = LAST_MODIFIED
            if asked.get("if-none-match") == etag:
                return 304, {"ETag": etag}, b""
        return 200, headers, route.body


LAST_MODIFIED = format_datetime(datetime(2025, 7, 28, 9, 0, tzinfo=timezone.utc), usegmt=True)

# -- content: four short news pages, each with one fact a question can find -------------------
ARTICLES = {
    "/news/lighthouse-reopens.html": (
        "Harbour Lighthouse Reopens in Port Elsby", "2025-07-22",
        ["The restored lighthouse at Port Elsby reopened on Tuesday after a two-year "
         "renovation that closed the harbour path to walkers.",
         "The renovation of the Port Elsby lighthouse cost 3.2 million euros, paid by the "
         "harbour board and a regional heritage fund.",
         "Its old lamp was replaced with an LED beacon that can be seen 40 kilometres out at "
         "sea, the harbour master said."]),
    "/news/tram-line-approved.html": (
        "Tarnby Council Approves a New Tram Line", "2025-07-24",
        ["The city council of Tarnby approved a new tram line on Thursday after a debate that "
         "lasted most of the night.",
         "The line will run for fourteen kilometres between the railway station and the "
         "university, with twenty-two stops along the river.",
         "Construction is planned to begin next spring and trams should carry their first "
         "passengers in the autumn of 2028."]),
    "/news/robotics-prize.html": (
        "Stromvik Pupils Win the National Robotics Prize", "2025-07-25",
        ["A team of pupils from the Stromvik secondary school won the national robotics "
         "prize on Friday with a machine that sorts recycling.",
         "Their robot, nicknamed Magpie, sorted glass, paper and metal from a mixed bin in "
         "under ninety seconds during the final round.",
         "The school plans to spend the prize money on a new workshop for its science "
         "club."]),
    "/news/dam-repair.html": (
        "Kelda Valley Dam Repairs Finish Early", "2025-07-27",
        ["Repairs to the Kelda valley dam finished three weeks early, the regional water "
         "authority announced on Sunday.",
         "Divers sealed forty cracks in the concrete wall of the dam, which holds back the "
         "drinking water for ninety thousand people.",
         "The footpath across the top of the dam reopens to hikers on the first of "
         "August."]),
}
FIRST_THREE = list(ARTICLES)[:3]
FOURTH = list(ARTICLES)[3]
QUESTION = "How much did the renovation of the Port Elsby lighthouse cost?"
ANSWER = "3.2 million euros"
FOURTH_QUESTION = "How many cracks did divers seal in the Kelda valley dam?"
FOURTH_ANSWER = "forty cracks"


def article_html(path: str, extra_head: str = "") -> str:
    title, date, paragraphs = ARTICLES[path]
    body = "\n".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} | Elsby Courier</title>
<meta property="article:published_time" content="{date}T08:00:00Z">{extra_head}
</head><body>
<nav><a href="/">Home</a> <a href="/news/">News</a> <a href="/sport/">Sport</a></nav>
<article><h1>{escape(title)}</h1>
{body}
</article>
<footer><p>Elsby Courier, 12 Quay Street. Subscribe for the morning newsletter.</p></footer>
</body></html>"""


def rss(site: Site, paths: list[str], title: str = "Elsby Courier") -> str:
    items = []
    for path in paths:
        headline, date, _ = ARTICLES.get(path, (path, "2025-07-20", []))
        when = format_datetime(datetime.fromisoformat(date).replace(hour=8, tzinfo=timezone.utc),
                               usegmt=True)
        items.append(f"<item><title>{escape(headline)}</title><link>{site.url(path)}</link>"
                     f"<guid>{site.url(path)}</guid><pubDate>{when}</pubDate></item>")
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>{escape(title)}</title><link>{site.url('/')}</link>"
            f"<description>News from Elsby</description>{''.join(items)}</channel></rss>")


def serve_news(site: Site, feed_paths: list[str] | None = None) -> str:
    """The four pages, and /feed.xml listing `feed_paths` (default: the first three)."""
    for path in ARTICLES:
        site.add(path, article_html(path))
    return site.add("/feed.xml", rss(site, FIRST_THREE if feed_paths is None else feed_paths),
                    content_type="application/rss+xml", conditional=True)
