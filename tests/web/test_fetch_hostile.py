"""Issue 21: the fetcher against a hostile server on 127.0.0.1: decompression bombs in
every encoding stack (the peak memory of the fetch measured in a subprocess), headers
dribbled a byte at a time, URLs that are not URLs, IPv6 forms that embed a private IPv4.
"""
from __future__ import annotations

import functools
import json
import socket
import socketserver
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable

import pytest
from conftest import ROOT

from qa.web.fetch import Fetcher, FetchError, FetchPolicy, UrlError, address_problem, normalize_url

PAGE = b"<html><body><p>hello</p></body></html>"
MB = 2**20


# -- a hostile server ------------------------------------------------------------------------
class Hostile:
    """A raw HTTP/1.1 server on 127.0.0.1 whose answers are functions writing to the socket,
    so it can send what no polite server would. /robots.txt is a plain 404."""

    def __init__(self) -> None:
        self.routes: dict[str, Callable[[socket.socket], None]] = {}
        self.stop = threading.Event()
        hostile = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    data = self.request.recv(4096)
                    if not data:
                        return
                    head += data
                path = head.split(b" ", 2)[1].decode("ascii", "replace")
                answer = hostile.routes.get(path, not_found)
                try:
                    answer(self.request)
                except OSError:
                    pass  # the client gave up: what a bounded fetch does

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Hostile":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def not_found(sock: socket.socket) -> None:
    sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def sends(body: bytes, encoding: str | None) -> Callable[[socket.socket], None]:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
    if encoding:
        head += f"Content-Encoding: {encoding}\r\n".encode()
    head += f"Content-Length: {len(body)}\r\n\r\n".encode()
    return lambda sock: sock.sendall(head + body)


# -- bombs -----------------------------------------------------------------------------------
def raw_deflate_zeros(n_mib: int) -> bytes:
    """Raw deflate of `n_mib` MiB of zeros, built in milliseconds: after a full flush each
    MiB compresses to the same bytes, so one is made and repeated."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(MB)) + c.flush(zlib.Z_FULL_FLUSH)
    return block * n_mib + c.flush()


def gzip_zeros(n_mib: int) -> bytes:
    crc = 0
    zeros = bytes(MB)
    for _ in range(n_mib):
        crc = zlib.crc32(zeros, crc)
    trailer = crc.to_bytes(4, "little") + ((n_mib * MB) % 2**32).to_bytes(4, "little")
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + raw_deflate_zeros(n_mib) + trailer


def zlib_zeros(n_mib: int) -> bytes:
    adler = 1
    zeros = bytes(MB)
    for _ in range(n_mib):
        adler = zlib.adler32(zeros, adler)
    return b"\x78\xda" + raw_deflate_zeros(n_mib) + adler.to_bytes(4, "big")


def gzip(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


@functools.cache
def brotli_zeros(n_mib: int) -> bytes:
    brotli = pytest.importorskip("brotli")
    c = brotli.Compressor(quality=5)
    zeros = bytes(MB)
    return b"".join(c.process(zeros) for _ in range(n_mib)) + c.finish()


GIB = 1024  # MiB


def bomb_routes() -> dict[str, tuple[bytes, str | None]]:
    """path -> (body, Content-Encoding): 1 GiB of zeros behind every stack."""
    gz = gzip_zeros(GIB)
    return {
        "/gzip": (gz, "gzip"),
        "/x-gzip": (gz, "x-gzip"),
        "/deflate": (zlib_zeros(GIB), "deflate"),
        "/raw-deflate": (raw_deflate_zeros(GIB), "deflate"),
        "/gzip-gzip": (gzip(gz), "gzip, gzip"),
        "/gzip-gzip-headers": (gzip(gz), "gzip\r\nContent-Encoding: gzip"),
        "/deflate-gzip": (zlib.compress(gz, 9), "gzip, deflate"),
        "/gzip-x4": (gzip(gzip(gzip(gz))), "gzip, gzip, gzip, gzip"),
        "/br": (brotli_zeros(GIB), "br"),
        "/gzip-br": (gzip(brotli_zeros(GIB)), "br, gzip"),
        "/zstd": (b"\x28\xb5\x2f\xfd" + bytes(64), "zstd"),
        "/compress": (bytes(64), "compress"),
    }


# What each fetch of 1 GiB must end with (the cap is 5 MB).
BOMB_ENDS = {
    "/gzip": "too large: more than 5 MB",
    "/x-gzip": "too large: more than 5 MB",
    "/deflate": "too large: more than 5 MB",
    "/raw-deflate": "too large: more than 5 MB",
    "/gzip-gzip": "too large: more than 5 MB",
    "/gzip-gzip-headers": "too large: more than 5 MB",
    "/deflate-gzip": "too large: more than 5 MB",
    "/gzip-x4": "content encodings",
    "/br": "Content-Encoding br",
    "/gzip-br": "Content-Encoding br",
    "/zstd": "Content-Encoding zstd",
    "/compress": "Content-Encoding compress",
}

# The peak resident memory of the process: VmHWM, not ru_maxrss, which Linux carries over
# from the parent at fork and exec (a pytest holding the model is 1.5 GB already).
MEASURE = r"""
import json, sys, time, tracemalloc
from qa.web.fetch import FetchError, FetchPolicy, Fetcher

def peak_mb():
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

base, paths = sys.argv[1], json.loads(sys.argv[2])
out = {"before_mb": peak_mb(), "fetches": {}}
tracemalloc.start()
with Fetcher(FetchPolicy(delay=0, total_timeout=60)) as fetcher:
    for path in paths:
        tracemalloc.reset_peak()
        started = time.monotonic()
        try:
            fetcher.get(base + path)
            result = "fetched"
        except FetchError as exc:
            result = str(exc)
        out["fetches"][path] = {"result": result, "seconds": time.monotonic() - started,
                                "peak_mb": tracemalloc.get_traced_memory()[1] / 2**20}
out["peak_mb"] = peak_mb()
print(json.dumps(out))
"""


def test_decompression_bombs_in_every_encoding_stack_stay_under_300_mb():
    """1 GiB of zeros behind gzip, deflate (zlib and raw), gzip twice (one header and two),
    gzip over deflate, four gzips, br, br under gzip, zstd and compress. Each fetch is cut
    at the 5 MB cap as it decodes, or refused for its encoding; the whole fetching process
    (Python, httpx, every fetch) peaks under 300 MB."""
    routes = bomb_routes()
    with Hostile() as server:
        for path, (body, encoding) in routes.items():
            server.routes[path] = sends(body, encoding)
        run = subprocess.run([sys.executable, "-c", MEASURE, server.url(""), json.dumps(
            list(routes))], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    measured = json.loads(run.stdout)
    print(json.dumps(measured, indent=1))  # the figures, for the record (pytest -s)
    for path, expected in BOMB_ENDS.items():
        fetch = measured["fetches"][path]
        assert expected in fetch["result"], (path, fetch)
        assert fetch["peak_mb"] < 30, (path, fetch)  # Python's allocations in that fetch
        assert fetch["seconds"] < 20, (path, fetch)
    assert measured["peak_mb"] < 300, measured


def test_a_compressed_page_is_still_read_whole():
    """gzip, deflate (zlib or raw), gzip twice and a gzip of several members decode to the
    page, byte for byte, across many small network pieces."""
    page = PAGE * 20_000  # 760 KB
    members = gzip(page[:1000]) + gzip(page[1000:])
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = c.compress(page) + c.flush()
    with Hostile() as server:
        server.routes.update({
            "/gzip": sends(gzip(page), "gzip"), "/zlib": sends(zlib.compress(page), "deflate"),
            "/raw": sends(raw, "deflate"), "/twice": sends(gzip(gzip(page)), "gzip, gzip"),
            "/members": sends(members, "gzip"), "/identity": sends(page, "identity"),
        })
        with Fetcher(FetchPolicy(delay=0)) as fetcher:
            for path in ("/gzip", "/zlib", "/raw", "/twice", "/members", "/identity"):
                assert fetcher.get(server.url(path)).body == page, path


def test_a_corrupt_compressed_body_is_a_clear_error():
    with Hostile() as server:
        server.routes["/bad"] = sends(b"\x1f\x8b\x08\x00" + b"garbage" * 100, "gzip")
        with Fetcher(FetchPolicy(delay=0)) as fetcher, pytest.raises(FetchError) as info:
            fetcher.get(server.url("/bad"))
    assert str(info.value).startswith("the gzip-compressed body is damaged")


# -- slow headers ----------------------------------------------------------------------------
def dribble(status_line: bytes, every: float, server: Hostile) -> Callable[[socket.socket], None]:
    def answer(sock: socket.socket) -> None:
        sock.sendall(status_line)
        while not server.stop.is_set():
            sock.sendall(b"a")  # a header that never ends
            time.sleep(every)
    return answer


@pytest.mark.parametrize("first", [b"HTTP/1.1 200 OK\r\nX-Slow: ", b"H"])
def test_headers_dribbled_a_byte_at_a_time_hit_the_total_deadline(first):
    """One byte every 0.2 s never trips the 2 s silence timeout; the 3 s deadline over the
    whole request (headers included) ends it."""
    policy = FetchPolicy(delay=0, read_timeout=2, total_timeout=3)
    with Hostile() as server:
        server.routes["/slow"] = dribble(first, 0.2, server)
        with Fetcher(policy) as fetcher:
            started = time.monotonic()
            with pytest.raises(FetchError) as info:
                fetcher.get(server.url("/slow"))
            took = time.monotonic() - started
    assert str(info.value) == "timed out: the response took longer than 3 s"
    assert took < 3 + 1.5, took


def test_the_deadline_holds_for_a_slow_robots_txt_too():
    policy = FetchPolicy(delay=0, read_timeout=2, total_timeout=2)
    with Hostile() as server:
        server.routes["/robots.txt"] = dribble(b"HTTP/1.1 200 OK\r\n", 0.2, server)
        with Fetcher(policy) as fetcher:
            started = time.monotonic()
            with pytest.raises(FetchError, match="longer than 2 s"):
                fetcher.get(server.url("/page"))
            assert time.monotonic() - started < 2 + 1.5


def test_a_kept_alive_connection_gets_the_new_requests_deadline():
    """The deadline belongs to the request, not to the connection: a fast page after a
    slow one on the same connection is fetched."""
    with Hostile() as server:
        def keepalive(sock: socket.socket) -> None:
            for _ in range(3):  # robots.txt (404), then two pages on one connection
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 38\r\n"
                             b"Content-Type: text/html\r\n\r\n" + PAGE)
                sock.recv(4096)
        server.routes["/a"] = keepalive
        with Fetcher(FetchPolicy(delay=0, total_timeout=1)) as fetcher:
            for _ in range(3):
                assert fetcher.get(server.url("/a")).body == PAGE
                time.sleep(0.6)


# -- URLs that are not URLs ------------------------------------------------------------------
@pytest.mark.parametrize("raw, message", [
    ("http://[::1", "'http://[::1' is not a valid URL"),
    ("http://[not-an-address]/", "is not a valid URL"),
    ("http://0177.0.0.1/", "'http://0177.0.0.1/' has a host that looks like an IP address"),
    ("http://0x7f.0.0.1/", "looks like an IP address"),
    ("http://2130706433/", "looks like an IP address"),
    ("http://127.1/", "looks like an IP address"),
    ("http://127.0.0.1.5/", "looks like an IP address"),
])
def test_a_bad_url_is_a_clear_error_that_names_it(raw, message):
    with pytest.raises(UrlError) as info:
        normalize_url(raw)
    assert message in str(info.value)


def test_a_redirect_to_a_bad_url_is_a_clear_error():
    with Hostile() as server:
        server.routes["/go"] = lambda sock: sock.sendall(
            b"HTTP/1.1 302 Found\r\nLocation: http://[::1\r\nContent-Length: 0\r\n\r\n")
        with Fetcher(FetchPolicy(delay=0)) as fetcher, pytest.raises(FetchError) as info:
            fetcher.get(server.url("/go"))
    # httpx reads the Location itself before Verbatim sees the response; its words.
    assert "Invalid URL in location header" in str(info.value)


@pytest.mark.parametrize("raw", ["http://127.0.0.1/", "http://10.0.0.1:8080/a",
                                 "http://[::1]:8000/", "http://[2002:7f00:1::]/",
                                 "http://example.com/", "http://1e100.net/",
                                 "http://0.example/", "http://123.example.com/"])
def test_ordinary_hosts_still_pass(raw):
    assert normalize_url(raw) == raw


# -- IPv6 forms that carry an IPv4 address ---------------------------------------------------
@pytest.mark.parametrize("address, problem", [
    ("2002:7f00:1::", "6to4 form of a loopback"),                  # 127.0.0.1
    ("2002:a9fe:a9fe::", "6to4 form of a cloud metadata"),         # 169.254.169.254
    ("2002:c0a8:101::1", "6to4 form of a private"),                # 192.168.1.1
    ("64:ff9b::7f00:1", "NAT64 form of a loopback"),
    ("64:ff9b::a9fe:a9fe", "NAT64 form of a cloud metadata"),
    ("64:ff9b::10.0.0.1", "NAT64 form of a private"),
    ("64:ff9b:1::a00:1", "NAT64 form of a private"),               # local-use (RFC 8215)
    ("::127.0.0.1", "IPv4-compatible form of a loopback"),
    ("::ffff:0:7f00:1", "IPv4-translated form of a loopback"),     # RFC 2765
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo form of a loopback"),  # client 127.0.0.1
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "Teredo form of a private"),   # client 10.0.0.1
    ("::ffff:169.254.169.254", "cloud metadata"),  # IPv4-mapped: the IPv4 address itself
])
def test_ipv6_forms_are_judged_by_the_ipv4_address_they_embed(address, problem):
    assert address_problem(address) == problem


def test_ipv6_forms_embedding_a_public_address_are_not_refused_for_it():
    assert address_problem("64:ff9b::808:808") is None  # NAT64 of 8.8.8.8


def test_a_6to4_url_of_a_private_address_is_refused():
    with Fetcher(FetchPolicy(allow_private=False, delay=0)) as fetcher:
        for url in ("http://[2002:7f00:1::]/", "http://[2002:a9fe:a9fe::]/latest/meta-data/",
                    "http://[64:ff9b::7f00:1]/"):
            with pytest.raises(FetchError, match="refused: .* form of a .* address;"):
                fetcher.check(url)
