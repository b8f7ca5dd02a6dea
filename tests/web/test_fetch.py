"""qa.web.fetch: URL checks (pure), and real fetches from a server on 127.0.0.1: failures,
robots.txt, politeness, the private-address guard on every hop, the pinned connection."""
from __future__ import annotations

import threading
import time

import pytest

from qa.web.fetch import (
    FetchError, FetchPolicy, Fetcher, HostGate, UrlError, address_problem, canonical_url,
    media_type, normalize_url,
)
from web_site import Site

FAST = FetchPolicy(delay=0.0, connect_timeout=2, read_timeout=2, total_timeout=10)
PAGE = "<html><body><p>hello</p></body></html>"


# -- pure ------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, expected", [
    ("HTTP://Example.COM", "http://example.com/"),
    ("https://example.com:443/a?b=1#frag", "https://example.com/a?b=1"),
    ("http://example.com:8080/x", "http://example.com:8080/x"),
    ("  https://example.com/news  ", "https://example.com/news"),
    ("http://[::1]:8000/a", "http://[::1]:8000/a"),
    ("https://bücher.example/a", "https://xn--bcher-kva.example/a"),
])
def test_normalize_url(raw, expected):
    assert normalize_url(raw) == expected


@pytest.mark.parametrize("raw, message", [
    ("ftp://example.com/file", "only http:// and https://"),
    ("javascript:alert(1)", "only http:// and https://"),
    ("file:///etc/passwd", "only http:// and https://"),
    ("example.com/news", "add https://"),
    ("http://user:secret@example.com/", "user name or password"),
    ("http:///path", "no host"),
    ("http://example.com:99999/", "bad port"),
    ("http://example.com/a b", "spaces"),
    ("", "empty"),
])
def test_normalize_url_refuses(raw, message):
    with pytest.raises(UrlError, match=message):
        normalize_url(raw)


def test_canonical_url_drops_click_tracking_only():
    assert canonical_url("https://News.example/a?id=7&utm_source=rss&utm_medium=x&fbclid=1") \
        == "https://news.example/a?id=7"
    assert canonical_url("https://news.example/a?page=2") == "https://news.example/a?page=2"


@pytest.mark.parametrize("address, problem", [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"),
    ("169.254.169.254", "cloud metadata"), ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"), ("fd00:ec2::254", "cloud metadata"), ("fc00::5", "private"),
    ("::ffff:127.0.0.1", "loopback"), ("0.0.0.0", "private"), ("100.64.0.1", "non-public"),
    ("224.0.0.1", "multicast"), ("100.100.100.200", "cloud metadata"),
])
def test_address_problem_names_non_public_addresses(address, problem):
    assert address_problem(address) == problem


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::6810:85e5", "8.8.8.8"])
def test_address_problem_lets_public_addresses_through(address):
    assert address_problem(address) is None


def test_media_type():
    assert media_type("text/HTML; charset=ISO-8859-1") == ("text/html", "iso-8859-1")
    assert media_type(None) == ("", None)


def test_host_gate_spaces_requests_to_one_host_but_not_to_others():
    now = [100.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    gate = HostGate(2.0, clock=lambda: now[0], sleep=sleep)
    with gate.slot("a.example"):
        pass
    now[0] += 0.5
    with gate.slot("a.example"):
        pass
    with gate.slot("b.example"):
        pass
    with gate.slot("a.example", delay=5.0):  # robots.txt Crawl-delay
        pass
    assert waits == [1.5, 5.0]


# -- against a real server -------------------------------------------------------------------
@pytest.fixture
def site():
    with Site() as s:
        yield s


def fetch_error(fetcher: Fetcher, url: str) -> str:
    with pytest.raises(FetchError) as info:
        fetcher.get(url)
    return str(info.value)


def test_fetches_a_page_with_a_clear_user_agent(site):
    url = site.add("/a.html", PAGE)
    with Fetcher(FAST) as fetcher:
        response = fetcher.get(url)
    assert response.status == 200 and response.body == PAGE.encode()
    assert response.content_type == "text/html" and response.charset == "utf-8"
    assert site.hits("/a.html")[0].headers["user-agent"].startswith("Verbatim/")
    assert [r.path for r in site.requests] == ["/robots.txt", "/a.html"]


def test_each_failure_has_its_own_message(site):
    site.add("/broken", "oops", status=500, content_type="text/plain")
    site.redirect("/loop-a", site.url("/loop-b"))
    site.redirect("/loop-b", site.url("/loop-a"))
    for n in range(8):
        site.redirect(f"/hop{n}", site.url(f"/hop{n + 1}"))
    site.redirect("/to-ftp", "ftp://files.example/x")
    site.add("/huge", "x" * 3072)
    site.add("/slow", PAGE, delay=3)
    policy = FetchPolicy(delay=0, read_timeout=1, max_bytes=2048)
    with Fetcher(policy) as fetcher:
        assert fetch_error(fetcher, site.url("/missing")) == "HTTP 404 Not Found"
        assert fetch_error(fetcher, site.url("/broken")) == "HTTP 500 Internal Server Error"
        assert fetch_error(fetcher, site.url("/loop-a")).startswith(
            f"redirect loop: {site.url('/loop-a')} -> {site.url('/loop-b')} -> ")
        assert fetch_error(fetcher, site.url("/hop0")).startswith("too many redirects (more "
                                                                 "than 5)")
        assert "redirected to a URL that is not fetched" in fetch_error(fetcher,
                                                                         site.url("/to-ftp"))
        assert fetch_error(fetcher, site.url("/huge")) == \
            "too large: 3 KB, the limit is 2 KB"
        started = time.monotonic()
        assert fetch_error(fetcher, site.url("/slow")) == \
            f"timed out: 127.0.0.1:{site.port} sent nothing for 1 s"
        assert time.monotonic() - started < 2.9
    with Site() as gone:
        port = gone.port
    with Fetcher(FAST) as fetcher:
        assert fetch_error(fetcher, f"http://127.0.0.1:{port}/x").startswith(
            f"cannot connect to 127.0.0.1:{port}")


def test_a_dns_failure_names_the_host():
    # .invalid never resolves (RFC 6761): the real resolver fails at once.
    with Fetcher(FAST) as fetcher:
        message = fetch_error(fetcher, "http://no-such-host.invalid/x")
    assert message.startswith("cannot resolve host 'no-such-host.invalid' (DNS:")


def test_size_cap_holds_without_a_content_length(site):
    """A server that streams without Content-Length is cut off at the cap too."""
    import http.server

    class Streaming(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"y" * 1000)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Streaming)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Fetcher(FetchPolicy(delay=0, max_bytes=10 * 1024)) as fetcher:
            message = fetch_error(fetcher, f"http://127.0.0.1:{server.server_address[1]}/")
    finally:
        server.shutdown()
        server.server_close()
    assert message == "too large: more than 10 KB"


def test_robots_txt_is_respected(site):
    site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    site.add("/private/a.html", PAGE)
    site.add("/public/a.html", PAGE)
    with Fetcher(FAST) as fetcher:
        assert fetch_error(fetcher, site.url("/private/a.html")) == \
            f"robots.txt of 127.0.0.1:{site.port} does not allow fetching /private/a.html"
        assert fetcher.get(site.url("/public/a.html")).status == 200
    assert site.hits("/private/a.html") == []
    assert len(site.hits("/robots.txt")) == 1  # read once, then cached


def test_robots_txt_rules_for_verbatim_and_a_failing_robots_txt(site):
    site.add("/robots.txt", "User-agent: Verbatim\nDisallow: /\n\nUser-agent: *\nAllow: /\n",
             content_type="text/plain")
    site.add("/a.html", PAGE)
    with Fetcher(FAST) as fetcher:
        assert "does not allow" in fetch_error(fetcher, site.url("/a.html"))
    with Site() as other:
        other.add("/robots.txt", "down", status=503, content_type="text/plain")
        other.add("/a.html", PAGE)
        with Fetcher(FAST) as fetcher:
            assert fetch_error(fetcher, other.url("/a.html")) == (
                f"robots.txt of 127.0.0.1:{other.port} answered HTTP 503; not fetching from "
                "it until it answers")
        assert other.hits("/a.html") == []


def test_conditional_request_gets_304(site):
    url = site.add("/feed.xml", "<rss/>", content_type="application/rss+xml", conditional=True)
    with Fetcher(FAST) as fetcher:
        first = fetcher.get(url)
        again = fetcher.get(url, etag=first.etag, last_modified=first.last_modified)
    assert first.status == 200 and first.etag
    assert again.not_modified and again.body == b""
    assert site.hits("/feed.xml")[1].headers["if-none-match"] == first.etag
    assert site.hits("/feed.xml")[1].headers["if-modified-since"] == first.last_modified


def test_one_request_at_a_time_per_host_with_a_delay(site):
    for n in range(4):
        site.add(f"/p{n}", PAGE, delay=0.1)
    with Fetcher(FetchPolicy(delay=0.3)) as fetcher:
        threads = [threading.Thread(target=fetcher.get, args=(site.url(f"/p{n}"),))
                   for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    pages = sorted((r for r in site.requests if r.path.startswith("/p")), key=lambda r: r.start)
    assert len(pages) == 4
    for before, after in zip(pages, pages[1:]):
        assert after.start >= before.end + 0.25, "two requests to one host overlapped"


def test_private_addresses_are_refused_when_not_allowed(site):
    url = site.add("/a.html", PAGE)
    with Fetcher(FetchPolicy(allow_private=False, delay=0)) as fetcher:
        message = fetch_error(fetcher, url)
        assert message.startswith("refused: 127.0.0.1 is a loopback address;")
        assert "--allow-private-urls" in message
        assert fetch_error(fetcher, f"http://localhost:{site.port}/a.html").startswith(
            "refused: localhost resolves to 127.0.0.1, a loopback address")
        with pytest.raises(FetchError, match="loopback"):
            fetcher.check(f"http://localhost:{site.port}/feed.xml")
        with pytest.raises(FetchError, match="cloud metadata"):
            fetcher.check("http://169.254.169.254/latest/meta-data/")
    assert site.requests == []  # not even robots.txt


def test_every_redirect_is_checked_again(site):
    """The first hop goes to an address this policy allows; the redirect to a private one
    is refused before any connection to it (the real check applies to that hop)."""
    site.redirect("/go", "http://169.254.169.254/latest/meta-data/")
    site.redirect("/go6", f"http://[::1]:{site.port}/a.html")
    site.add("/a.html", PAGE)

    def test_world(address: str) -> str | None:  # here 127.0.0.1 plays a public server
        return None if address == "127.0.0.1" else address_problem(address)

    with Fetcher(FetchPolicy(allow_private=False, delay=0),
                 address_policy=test_world) as fetcher:
        assert fetcher.get(site.url("/a.html")).status == 200
        assert fetch_error(fetcher, site.url("/go")).startswith(
            "refused: 169.254.169.254 is a cloud metadata address")
        assert fetch_error(fetcher, site.url("/go6")).startswith(
            "refused: ::1 is a loopback address")


def test_the_connection_goes_to_the_address_that_was_checked(site):
    """The guard resolves the name itself and connects to the address it checked: the
    request reaches our server although no DNS knows the name, with the name as Host."""
    site.add("/a.html", PAGE)
    asked = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"] if host == "news.test" else []

    with Fetcher(FAST, resolver=resolver) as fetcher:
        response = fetcher.get(f"http://news.test:{site.port}/a.html")
    assert response.body == PAGE.encode()
    assert "news.test" in asked
    assert site.hits("/a.html")[0].headers["host"] == f"news.test:{site.port}"


def test_a_name_with_one_private_answer_is_refused_whatever_else_it_resolves_to(site):
    def resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.0.0.7"]

    with Fetcher(FetchPolicy(allow_private=False), resolver=resolver) as fetcher:
        assert fetch_error(fetcher, "http://mixed.test/a").startswith(
            "refused: mixed.test resolves to 10.0.0.7, a private address")
