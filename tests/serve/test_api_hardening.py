"""Issue 21: the page and the JSON API served by uvicorn on 127.0.0.1 (in this process,
with a small in-memory index and the fake embedder): forged X-Forwarded-For cannot
dodge the login throttle, bodies are capped and refused early, echoed input is cut, an
articles filter of any length works, k's bounds are in the schema, every API error is
`{"error": ...}`, and /docs loads nothing from another site."""
from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator

import pytest
from conftest import FakeEmbedder
from index_helpers import ARTICLES, memory_generation

from qa.config import Settings
from qa.index.live import StaticIndex
from qa.retriever import Retriever
from qa.types import Article

USER, PASSWORD = "reader", "s3cret"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
WRONG = {"Authorization": "Basic " + base64.b64encode(f"{USER}:wrong".encode()).decode()}
QUESTION = "Who voted to rebuild the harbour wall?"


def small_retriever() -> Retriever:
    articles = []
    for name, text in ARTICLES.items():
        title, _, body = text.partition("\n\n")
        articles.append(Article(id=name, title=title, text=body, source=name))
    embedder = FakeEmbedder()
    return Retriever(StaticIndex(memory_generation(articles, embedder)), embedder, Settings())


@contextlib.contextmanager
def served(app, forwarded_allow_ips: str | None = None) -> Iterator[str]:
    """`app` served by uvicorn as app.py serves it (qa.serve.api.server_config), on a free port
    of 127.0.0.1 in a thread; stopped on exit."""
    import uvicorn

    from qa.serve.api import bind, server_config

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(server_config(app, forwarded_allow_ips))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def call(url: str, path: str, body: object = None, *, headers: dict | None = None,
         raw: bytes | None = None, method: str = "POST", form: dict | None = None):
    """(status, headers, JSON or text) of one request."""
    import httpx

    sent = {"Content-Type": "application/json", **AUTH, **(headers or {})}
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    response = httpx.request(method, url + path.lstrip("/"), content=data, headers=sent,
                             timeout=60, trust_env=False)
    try:
        return response.status_code, response.headers, response.json()
    except ValueError:
        return response.status_code, response.headers, response.text


def page_app():
    """The real page (Gradio) mounted on the real API, with a login, as app.py builds it."""
    from qa.serve.page import Page
    from qa.serve.ui import build_page, mount

    retriever = small_retriever()
    page = Page(Settings(), retriever.embedder, retriever=retriever)
    return mount(page, build_page(page), (USER, PASSWORD))


@pytest.fixture(scope="module")
def page():
    with served(page_app()) as url:
        yield url


def fresh_api():
    from qa.serve.api import create_api

    retriever = small_retriever()
    return create_api(lambda: retriever, Settings(), auth=(USER, PASSWORD))


# -- item 3: X-Forwarded-For is not trusted unless the proxy is named ------------------------
def forged(n: int) -> dict[str, str]:
    return {"X-Forwarded-For": f"203.0.113.{n}"}


def test_the_server_trusts_no_forwarded_header_by_default():
    from qa.serve.api import server_config

    config = server_config(object())
    assert config.proxy_headers is False
    behind = server_config(object(), "10.0.0.5")
    assert behind.proxy_headers is True and behind.forwarded_allow_ips == "10.0.0.5"


def test_forged_forwarded_for_does_not_dodge_the_api_throttle():
    with served(fresh_api()) as url:
        codes = [call(url, "/api/search", {"question": QUESTION},
                      headers={**WRONG, **forged(n)})[0] for n in range(12)]
    assert codes[:5] == [401] * 5 and codes[6:] == [429] * 6, codes


def test_forged_forwarded_for_does_not_dodge_the_page_login_throttle():
    with served(page_app()) as page:
        codes, last = page_logins(page)
    assert codes[:5] == [400] * 5 and codes[6:] == [429] * 6, codes
    status, _, body = last
    assert status == 429 and "try again in" in body["error"] and body["detail"]


def page_logins(page: str):
    codes = [call(page, "/login", form={"username": USER, "password": "wrong"},
                  headers=forged(n))[0] for n in range(12)]
    return codes, call(page, "/login", form={"username": USER, "password": "wrong"})


def test_behind_a_named_proxy_each_forwarded_client_is_throttled_on_its_own():
    with served(fresh_api(), forwarded_allow_ips="127.0.0.1") as url:
        spread = [call(url, "/api/search", {"question": QUESTION},
                       headers={**WRONG, **forged(n)})[0] for n in range(12)]
        one = [call(url, "/api/search", {"question": QUESTION},
                    headers={**WRONG, **forged(99)})[0] for _ in range(8)]
    assert spread == [401] * 12  # twelve clients, one wrong password each
    assert one[:5] == [401] * 5 and one[6:] == [429] * 2, one


def test_app_py_takes_the_proxy_option():
    from qa.serve.server import parser

    assert parser().parse_args([]).forwarded_allow_ips is None
    args = parser().parse_args(["--forwarded-allow-ips", "10.0.0.5,10.0.0.6"])
    assert args.forwarded_allow_ips == "10.0.0.5,10.0.0.6"


# -- item 4: an articles filter of any length ------------------------------------------------
@pytest.mark.parametrize("count", [991, 1000, 5000])
def test_an_articles_filter_of_any_length_works(page, count):
    names = [f"no-such-article-{n}" for n in range(count - 2)] + ["alpha.txt",
                                                                  "Beta school opens a library"]
    status, _, hits = call(page, "/api/search", {"question": QUESTION, "articles": names})
    assert status == 200, hits
    assert {h["passage"]["article_id"] for h in hits} == {"alpha.txt", "beta.txt"}


# -- item 6: bodies are capped and refused early; echoed input is cut -----------------------
def exchange(url: str, data: bytes, wait: float = 10) -> bytes:
    """Send `data` on a new connection and return the server's first answer bytes (b""
    if it says nothing for `wait` seconds: it is waiting for the rest of the body)."""
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=wait) as sock:
        sock.sendall(data)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            pass
        return answer


def head(*lines: str) -> bytes:
    return ("POST /api/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: {AUTH['Authorization']}\r\n" + "".join(f"{line}\r\n" for line in lines)
            + "\r\n").encode()


def test_a_100_mb_body_is_refused_before_it_is_read(page):
    """Content-Length says 100 MB and nothing follows: the answer comes at once."""
    answer = exchange(page, head("Content-Length: 100000000"))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b'{"error":"the request body is larger than 1 MB' in answer, answer


def test_a_chunked_body_is_cut_at_the_cap(page):
    """1.5 MB sent in chunks, no end: the answer comes without waiting for the rest."""
    chunk = b"10000\r\n" + b" " * 65536 + b"\r\n"
    answer = exchange(page, head("Transfer-Encoding: chunked") + chunk * 24)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]


def test_a_body_under_the_cap_is_read(page):
    status, _, body = call(page, "/api/search", {"question": QUESTION,
                                                "articles": ["x" * 100] * 9000})
    assert status == 200, body  # 0.9 MB


@pytest.mark.parametrize("body", [
    {"question": QUESTION, "x" * 500_000: 1},
    {"question": QUESTION, "date_from": "y" * 500_000},
    {"question": QUESTION, "mode": "z" * 500_000},
    {"question": QUESTION, "k": "9" * 500_000},
    {"question": QUESTION, "articles": ["\ud800" + "w" * 500_000]},
    {"question": "q" * 500_000},
])
def test_echoed_input_is_cut(page, body):
    status, _, got = call(page, "/api/ask", raw=json.dumps(body).encode())
    assert status == 422, str(got)[:300]
    assert len(json.dumps(got)) < 600, str(got)[:600]


# -- item 9: k's bounds in the schema, one error shape, /docs without a CDN -----------------
def test_the_schema_has_k_bounds_and_k_must_be_a_number(page):
    _, _, spec = call(page, "/openapi.json", method="GET")
    k = spec["components"]["schemas"]["Question"]["properties"]["k"]
    integer = next(s for s in k["anyOf"] if s.get("type") == "integer")
    assert (integer["minimum"], integer["maximum"]) == (1, 100)
    for value, message in [(True, "k must be a whole number, got True"),
                           (False, "k must be a whole number, got False"),
                           ("5", "k must be a whole number, got '5'"),
                           (0, "k must be > 0, got 0"),
                           (101, "k must be at most 100, got 101")]:
        status, _, got = call(page, "/api/search", {"question": QUESTION, "k": value})
        assert (status, got) == (422, {"error": message + (
            " (the max_k setting, VERBATIM_MAX_K)" if value == 101 else "")}), value
    assert call(page, "/api/search", {"question": QUESTION, "k": 2})[0] == 200


@pytest.mark.parametrize("method, path, raw, status", [
    ("POST", "/api/ask", b'{"question": "caf\xe9"}', 400),     # not UTF-8
    ("POST", "/api/ask", b"{not json", 400),
    ("GET", "/api/ask", None, 405),
    ("PUT", "/api/search", b"{}", 405),
    ("POST", "/api/nothing-here", b"{}", 404),
    ("GET", "/api/", None, 404),
])
def test_every_api_error_is_an_error_object(page, method, path, raw, status):
    got_status, headers, got = call(page, path, raw=raw, method=method)
    assert got_status == status, got
    assert isinstance(got, dict) and set(got) == {"error"} and got["error"], got
    assert headers["Content-Type"] == "application/json"
    if status == 405:
        assert headers["Allow"] == "POST"


def test_the_docs_page_loads_nothing_from_another_site(page):
    status, headers, html = call(page, "/docs", method="GET")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "/api/ask" in html and "/api/search" in html and 'href="/openapi.json"' in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), html
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert call(page, "/docs", method="GET", headers={"Authorization": ""})[0] == 401
