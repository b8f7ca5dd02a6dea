"""Polite, safe HTTP for articles and feeds: http(s) only, timeouts, a size cap, robots.txt,
one request at a time per host, and private addresses refused unless allowed.

The only module that imports httpx. A URL typed into the page is untrusted: with
`allow_private=False` every connection (the first and every redirect's) resolves the host
itself, refuses loopback, private, link-local and metadata addresses, and connects to the
address it checked, so a DNS answer that changes between check and connect cannot slip
through.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import socket
import threading
import time
import urllib.robotparser
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import httpcore
import httpx

from qa.errors import QAError

log = logging.getLogger(__name__)

USER_AGENT = "Verbatim/0.1 (local news question answering; fetches pages its user asked for)"
# The product token robots.txt rules are matched against (RFC 9309).
ROBOTS_AGENT = "Verbatim"
REDIRECTS = (301, 302, 303, 307, 308)
# Query parameters that only track the click; dropped so one article has one URL.
TRACKING_PARAMS = ("utm_", "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "_ga")
# Cloud metadata services (they are also link-local or private; named for the message).
METADATA_ADDRESSES = frozenset({"169.254.169.254", "169.254.170.2", "100.100.100.200",
                                "fd00:ec2::254"})
PRIVATE_HINT = ("the page fetches public addresses only; the operator can start app.py with "
                "--allow-private-urls, or use `python -m qa add` on the server")
# The Content-Encodings Verbatim asks for and undoes itself (stdlib zlib, so every layer's
# output is bounded as it is produced); any other encoding is refused, never decoded.
ACCEPT_ENCODING = "gzip, deflate"
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
# "gzip, gzip" happens (a proxy compressing again); a longer stack is an attack.
MAX_ENCODINGS = 3
# The most one decoding layer produces at a time: memory stays O(layers x this) whatever
# the compression ratio (1 GiB of zeros is 1 MB of gzip, 1 KB of "gzip, gzip").
DECODE_STEP = 64 * 1024
# Hosts made only of numbers that are not a plain dotted quad: 0177.0.0.1, 0x7f.1,
# 2130706433, 127.1. Resolvers read them as IPv4 in ways that differ; refused as typos
# or tricks.
_NUMERIC_HOST = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?", re.IGNORECASE)
# IPv6 prefixes that carry an IPv4 address in their last 32 bits: NAT64's well-known
# prefix (RFC 6052) and its local-use one (RFC 8215).
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # IPv4-translated (RFC 2765)


class FetchError(QAError):
    """One URL could not be fetched; the message says why (shown next to the URL)."""


class UrlError(FetchError):
    """The text is not a URL Verbatim fetches (not http/https, no host, a password...)."""


class _Refused(Exception):
    """Internal: the connection would go to an address the policy refuses."""


class _Unresolved(Exception):
    """Internal: DNS gave no address for the host."""


# -- URLs (pure) -----------------------------------------------------------------------------
def normalize_url(url: str) -> str:
    """The URL as Verbatim stores and compares it: http(s), lower-case scheme and host, no
    default port, no fragment, "/" for an empty path.

    Raises:
        UrlError: not an http(s) URL with a host, or it carries a user name or password.
    """
    text = str(url).strip()
    if not text:
        raise UrlError("empty URL")
    if any(ch.isspace() or ord(ch) < 32 for ch in text):
        raise UrlError(f"{text!r} contains spaces or control characters; is it one URL?")
    try:
        parts = urlsplit(text)
    except ValueError as exc:  # "http://[::1": an IPv6 bracket never closed
        raise UrlError(f"{text!r} is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        hint = " (add https:// in front)" if not parts.scheme else ""
        raise UrlError(f"only http:// and https:// URLs can be fetched, got {text!r}{hint}")
    if parts.username is not None or parts.password is not None:
        raise UrlError(f"{text!r} has a user name or password in it; Verbatim does not send "
                       "credentials")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise UrlError(f"{text!r} has a bad port ({exc})") from None
    if not host:
        raise UrlError(f"{text!r} has no host name")
    _check_host(text, host)
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise UrlError(f"{text!r} has a host name that is not valid") from None
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[scheme]
    netloc = host if port in (None, default) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _check_host(url: str, host: str) -> None:
    """Refuse an IPv6 literal that is no address and a numeric host that is not a plain
    dotted quad (octal, hex, a single number, too few or too many parts)."""
    if ":" in host:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise UrlError(f"{url!r} is not a valid URL ([{host}] is not an IPv6 "
                           "address)") from None
    elif _NUMERIC_HOST.fullmatch(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise UrlError(f"{url!r} has a host that looks like an IP address but is not "
                           f"written as one ({host}); write it as four decimal numbers "
                           "without leading zeros, e.g. 192.0.2.1") from None


def canonical_url(url: str) -> str:
    """`normalize_url` without click-tracking parameters (utm_*, fbclid, ...): the key by
    which an article is known, so the same story linked from two feeds is stored once."""
    parts = urlsplit(normalize_url(url))
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not k.lower().startswith(TRACKING_PARAMS)]
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True)))


def host_key(url: str) -> str:
    """`host[:port]` of a normalized URL: the unit of politeness (one request at a time)."""
    return urlsplit(url).netloc


def address_problem(address: str) -> str | None:
    """Why a page-typed URL must not reach `address` ("loopback", "private"...), or None
    for a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = embedded_ipv4(ip)
        if embedded is not None:
            form, ipv4 = embedded
            problem = address_problem(str(ipv4))
            if problem:
                return f"{form} form of a {problem}"
            if ip in _NAT64[0]:  # how an IPv6-only network reaches a public IPv4 site
                return None
    if str(ip) in METADATA_ADDRESSES:
        return "cloud metadata"
    for kind in ("loopback", "link_local", "private", "multicast", "unspecified", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    if not ip.is_global:  # shared (100.64/10), documentation, benchmarking ranges...
        return "non-public"
    return None


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """(the form, the IPv4 address) an IPv6 transition address carries, or None: 6to4
    (2002::/16), Teredo (2001::/32, its client), NAT64 (64:ff9b::/96, 64:ff9b:1::/48),
    IPv4-translated (::ffff:0:0:0/96) and IPv4-compatible (::/96 but :: and ::1). Such an
    address can route to the IPv4 one, so it is judged by it."""
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip.teredo is not None:
        return "Teredo", ip.teredo[1]
    last = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if any(ip in net for net in _NAT64):
        return "NAT64", last
    if ip in _TRANSLATED:
        return "IPv4-translated", last
    if int(ip) >> 32 == 0 and int(ip) > 1:
        return "IPv4-compatible", last
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (TCP), in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise _Unresolved(f"cannot resolve host {host!r} (DNS: {exc})") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise _Unresolved(f"cannot resolve host {host!r} (DNS: no address)")
    return addresses


def refuse_private(host: str, addresses: list[str],
                   problem_of: Callable[[str], str | None] = address_problem) -> None:
    """Raise _Refused if any address is not public: one bad DNS answer refuses them all,
    so a resolver cannot offer a public address to the check and a private one to use."""
    for address in addresses:
        problem = problem_of(address)
        if problem:
            where = f"{host} is" if host.strip("[]") == address else \
                f"{host} resolves to {address},"
            raise _Refused(f"{where} a {problem} address; {PRIVATE_HINT}")


# -- connections -----------------------------------------------------------------------------
class _Deadline(threading.local):
    """When the request this thread is making must be over (None: no request). Per thread,
    not per connection: a kept-alive connection serves one request after another."""

    at: float | None = None

    def left(self, timeout: float | None, error: type[Exception]) -> float | None:
        """`timeout` shortened to what is left before the deadline; `error` once past it."""
        if self.at is None:
            return timeout
        left = self.at - time.monotonic()
        if left <= 0:
            raise error("the request's deadline has passed")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read, write and TLS handshake waits at most until the
    deadline, so a server that dribbles its headers a byte at a time cannot hold a fetch
    (httpx's own timeouts count silence between bytes, not the whole)."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._inner, self._deadline = inner, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        inner = self._inner.start_tls(ssl_context, server_hostname,
                                      self._deadline.left(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str):
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves the host itself, checks every address, and connects to a checked one;
    every connection keeps to the deadline of the request using it.

    TLS still verifies the certificate against the host name (httpcore passes the name,
    not the address, as the server name).
    """

    def __init__(self, allow_private: bool, resolver: Callable[[str, int], list[str]],
                 address_policy: Callable[[str], str | None],
                 deadline: _Deadline | None = None) -> None:
        self._inner = httpcore.SyncBackend()
        self._allow_private = allow_private
        self._resolve = resolver
        self._problem = address_policy
        self._deadline = deadline or _Deadline()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        addresses = self._resolve(host, port)
        if not addresses:
            raise _Unresolved(f"cannot resolve host {host!r} (DNS: no address)")
        if not self._allow_private:
            refuse_private(host, addresses, self._problem)
        for number, address in enumerate(addresses, start=1):
            try:
                stream = self._inner.connect_tcp(
                    address, port, self._deadline.left(timeout, httpcore.ConnectTimeout),
                    local_address, socket_options)
                return _DeadlineStream(stream, self._deadline)
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                if number == len(addresses):
                    raise  # the last address's error is the one reported

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise _Refused("unix sockets are never used")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with its connection pool on the guarded backend (httpx is pinned:
    its HTTPTransport keeps the pool in `_pool`; tests/web/test_fetch.py fails if that
    changes, because a resolver that is not asked means the guard is bypassed)."""

    def __init__(self, backend: _GuardedBackend) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=20, max_keepalive_connections=10, keepalive_expiry=5.0,
            network_backend=backend,
        )


# -- politeness ------------------------------------------------------------------------------
class HostGate:
    """At most one request at a time per host, with `delay` seconds between two."""

    def __init__(self, delay: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.delay = delay
        self._clock, self._sleep = clock, sleep
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._last: dict[str, float] = {}

    @contextmanager
    def slot(self, host: str, delay: float | None = None) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(host, threading.Lock())
        with lock:
            wait = self._last.get(host, float("-inf")) + (self.delay if delay is None else delay)
            wait -= self._clock()
            if wait > 0:
                self._sleep(wait)
            try:
                yield
            finally:
                self._last[host] = self._clock()


# -- decoding --------------------------------------------------------------------------------
def content_encodings(values: Iterable[str]) -> list[str]:
    """The Content-Encoding layers to undo, in the order they were applied.

    Raises:
        FetchError: an encoding Verbatim did not ask for (br, zstd, compress...), or more
            than MAX_ENCODINGS layers.
    """
    layers = [v.strip().lower() for v in values if v.strip().lower() not in ("", "identity")]
    for layer in layers:
        if layer not in _WBITS:
            raise FetchError(f"the server sent Content-Encoding {layer[:40]}, which Verbatim "
                             f"does not read (it asks for {ACCEPT_ENCODING} only)")
    if len(layers) > MAX_ENCODINGS:
        raise FetchError(f"the server stacked {len(layers)} content encodings "
                         f"({', '.join(layers)[:80]}); at most {MAX_ENCODINGS} are read")
    return layers


def decode(chunks: Iterable[bytes], encodings: list[str]) -> Iterator[bytes]:
    """`chunks` with every layer of `encodings` undone, the last applied first. Each layer
    yields at most DECODE_STEP bytes at a time and only when asked, so a consumer that
    stops at a cap never holds more than a few steps per layer."""
    stream: Iterable[bytes] = chunks
    for encoding in reversed(encodings):
        stream = _inflate(stream, encoding)
    return iter(stream)


def _inflate(chunks: Iterable[bytes], encoding: str) -> Iterator[bytes]:
    """One gzip or deflate layer undone. gzip may hold several members (each is read);
    "deflate" is meant to be zlib-wrapped, but raw deflate is common and read too."""
    wbits = _WBITS[encoding]
    inflater = zlib.decompressobj(wbits)
    started = finished = False
    for data in chunks:
        while data and not finished:
            try:
                out = inflater.decompress(data, DECODE_STEP)
            except zlib.error as exc:
                if encoding == "deflate" and not started and wbits > 0:
                    wbits = -zlib.MAX_WBITS  # no zlib header: raw deflate
                    inflater = zlib.decompressobj(wbits)
                    continue
                raise FetchError(f"the {encoding}-compressed body is damaged ({exc})") \
                    from None
            started = True
            if out:
                yield out
            data = inflater.unconsumed_tail
            if not data and len(out) == DECODE_STEP:
                data = b""  # maybe more output is waiting: asked for below
                while len(out) == DECODE_STEP and not inflater.eof:
                    out = inflater.decompress(b"", DECODE_STEP)
                    if out:
                        yield out
            if inflater.eof:
                data = inflater.unused_data
                if encoding == "deflate":
                    finished = True  # one stream; anything after it is ignored
                else:
                    inflater = zlib.decompressobj(wbits)  # the next gzip member
                    data = data.lstrip(b"\0")  # padding after the last member


# -- fetching --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """How Verbatim fetches. `allow_private` is True for the operator's CLI and False for
    the page unless app.py was started with --allow-private-urls."""

    allow_private: bool = True
    connect_timeout: float = 10.0
    # Longest silence while waiting for the server (per read, not for the whole page).
    read_timeout: float = 20.0
    # The whole response, so a server dripping a byte a second cannot hold a fetch forever.
    total_timeout: float = 60.0
    max_bytes: int = 5 * 2**20
    robots_max_bytes: int = 512 * 1024
    # Seconds between two requests to one host; robots.txt's Crawl-delay can raise it.
    delay: float = 1.0
    max_crawl_delay: float = 30.0
    max_redirects: int = 5
    # robots.txt is read again after this long (a feed polled every 30 min sees changes).
    robots_ttl: float = 3600.0
    user_agent: str = USER_AGENT

    def __post_init__(self) -> None:
        from qa.errors import ConfigError

        for name in ("connect_timeout", "read_timeout", "total_timeout", "max_bytes",
                     "robots_max_bytes"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.delay < 0 or self.max_redirects < 0:
            raise ConfigError(f"delay and max_redirects must be >= 0, got {self.delay!r}, "
                              f"{self.max_redirects!r}")


@dataclass(frozen=True, slots=True)
class _Raw:
    """One HTTP exchange before interpretation: a redirect carries `location`."""

    status: int
    reason: str
    location: str | None
    content_type: str
    charset: str | None
    body: bytes
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True, slots=True)
class Response:
    """A fetched resource (status 200), or "not modified" (304) with an empty body."""

    url: str            # what was asked for (normalized)
    final_url: str      # after redirects
    status: int
    content_type: str   # the media type, lower case, without parameters ("" if none)
    charset: str | None
    body: bytes
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def media_type(header: str | None) -> tuple[str, str | None]:
    """("text/html", "utf-8") from a Content-Type header."""
    if not header:
        return "", None
    message = Message()
    message["content-type"] = header
    return message.get_content_type().lower(), message.get_content_charset()


def _human(n: int) -> str:
    from qa.config import human_size

    return human_size(n)


class Fetcher:
    """Fetches pages and feeds politely. One instance is shared by everything one process
    fetches (the page's visitors included), so the per-host limits hold across them.

    Args:
        policy: timeouts, size cap, delays and whether private addresses may be reached.
        resolver: host, port -> addresses (e.g. to point a name at a test server).
        address_policy: address -> why it is refused, or None; applied to every address
            a host resolves to when `policy.allow_private` is False.
    """

    def __init__(self, policy: FetchPolicy = FetchPolicy(),
                 resolver: Callable[[str, int], list[str]] = resolve,
                 address_policy: Callable[[str], str | None] = address_problem) -> None:
        self.policy = policy
        self._resolver, self._address_policy = resolver, address_policy
        self.gate = HostGate(policy.delay)
        self._robots: dict[str, tuple[float, urllib.robotparser.RobotFileParser | None]] = {}
        self._robots_lock = threading.Lock()
        self._deadline = _Deadline()
        self._client = httpx.Client(
            transport=_GuardedTransport(_GuardedBackend(
                policy.allow_private, resolver, address_policy, self._deadline)),
            headers={"User-Agent": policy.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
            timeout=httpx.Timeout(connect=policy.connect_timeout, read=policy.read_timeout,
                                  write=policy.read_timeout, pool=policy.total_timeout),
            follow_redirects=False, trust_env=False,
        )

    def check(self, url: str) -> str:
        """The normalized URL if it may be fetched under this policy (a quick answer for a
        URL typed into the page; every connection is checked again when it is made).

        Raises:
            FetchError: not an http(s) URL, the host does not resolve, or it resolves to
                an address the policy refuses.
        """
        url = normalize_url(url)
        if not self.policy.allow_private:
            parts = urlsplit(url)
            host = parts.hostname or ""
            port = parts.port or (443 if parts.scheme == "https" else 80)
            try:
                refuse_private(host, self._resolver(host, port), self._address_policy)
            except _Refused as exc:
                raise FetchError(f"refused: {exc}") from None
            except _Unresolved as exc:
                raise FetchError(str(exc)) from None
        return url

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, url: str, *, accept: str = "*/*", etag: str | None = None,
            last_modified: str | None = None) -> Response:
        """GET `url`, following redirects (each one checked like the first).

        Raises:
            FetchError: bad URL, refused address, DNS or connection error, timeout,
                robots.txt disallows, HTTP 4xx/5xx, too large, redirect loop.
        """
        start = normalize_url(url)
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        chain = [start]
        while True:
            self._check_robots(chain[-1])
            raw = self._request(chain[-1], headers, self.policy.max_bytes)
            if raw.location is None:
                break
            chain.append(self._next_hop(chain, raw.location))
        if raw.status >= 400:
            raise FetchError(f"HTTP {raw.status} {raw.reason}".rstrip())
        if raw.status not in (200, 203, 304):
            raise FetchError(f"HTTP {raw.status} {raw.reason}".rstrip()
                             + ": not a response Verbatim can read")
        return Response(url=start, final_url=chain[-1], status=raw.status if raw.status == 304
                        else 200, content_type=raw.content_type, charset=raw.charset,
                        body=raw.body, etag=raw.etag, last_modified=raw.last_modified)

    def _next_hop(self, chain: list[str], location: str) -> str:
        """The redirect target, checked: http(s) only, no loop, not too many hops."""
        try:
            joined = urljoin(chain[-1], location)
        except ValueError:  # "http://[::1": normalize_url says what is wrong with it
            joined = location
        try:
            target = normalize_url(joined)
        except UrlError as exc:
            raise FetchError(f"redirected to a URL that is not fetched: {exc}") from None
        if target in chain:
            loop = " -> ".join(chain[chain.index(target):] + [target])
            raise FetchError(f"redirect loop: {loop}")
        if len(chain) > self.policy.max_redirects:
            raise FetchError(f"too many redirects (more than {self.policy.max_redirects}): "
                             f"{' -> '.join(chain + [target])}")
        return target

    def _request(self, url: str, headers: dict[str, str], limit: int,
                 robots: bool = False) -> _Raw:
        """One request, one host slot: the status and, for 200, the body (capped). The
        deadline covers all of it, from connecting to the last byte, headers included."""
        host = host_key(url)
        with self.gate.slot(host, self._crawl_delay(url)):
            deadline = self._deadline.at = time.monotonic() + self.policy.total_timeout
            try:
                with self._client.stream("GET", url, headers=headers) as r:
                    location = None
                    if r.status_code in REDIRECTS:
                        location = r.headers.get("location")
                        if not location:
                            raise FetchError(f"HTTP {r.status_code} redirect without a "
                                             "Location")
                    content_type, charset = media_type(r.headers.get("content-type"))
                    try:
                        body = self._read(r, limit, deadline) if r.status_code in (200, 203) \
                            else b""
                    except FetchError as exc:
                        if not robots:
                            raise
                        raise FetchError(f"robots.txt of {host} could not be read ({exc}); "
                                         "not fetching from it until it can") from None
                    return _Raw(r.status_code, r.reason_phrase, location, content_type,
                                charset, body, r.headers.get("etag"),
                                r.headers.get("last-modified"))
            except _Refused as exc:
                raise FetchError(f"refused: {exc}") from None
            except _Unresolved as exc:
                raise FetchError(str(exc)) from None
            except httpx.TimeoutException as exc:
                raise self._timed_out(host, exc, deadline) from None
            except httpx.ConnectError as exc:
                raise FetchError(f"cannot connect to {host}: {exc}") from None
            except httpx.HTTPError as exc:
                raise FetchError(f"HTTP error from {host}: {exc or type(exc).__name__}") \
                    from None
            except httpx.InvalidURL as exc:  # normalize_url should have caught it; say so
                raise FetchError(f"{url!r} is not a URL httpx can fetch ({exc})") from None
            finally:
                self._deadline.at = None

    def _timed_out(self, host: str, exc: httpx.TimeoutException, deadline: float) -> FetchError:
        if time.monotonic() >= deadline - 0.05:
            return FetchError(f"timed out: the response took longer than "
                              f"{self.policy.total_timeout:g} s")
        if isinstance(exc, httpx.ConnectTimeout):
            return FetchError(f"timed out connecting to {host} (after "
                              f"{self.policy.connect_timeout:g} s)")
        if isinstance(exc, httpx.ReadTimeout):
            return FetchError(f"timed out: {host} sent nothing for "
                              f"{self.policy.read_timeout:g} s")
        return FetchError(f"timed out talking to {host} ({type(exc).__name__})")

    def _read(self, r: httpx.Response, limit: int, deadline: float) -> bytes:
        """The body, decoded, cut off as soon as more than `limit` bytes were received or
        produced by any decoding layer."""
        declared = r.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(f"too large: {_human(int(declared))}, the limit is {_human(limit)}")
        encodings = content_encodings(r.headers.get_list("content-encoding", split_commas=True))
        received = 0

        def raw() -> Iterator[bytes]:  # the bytes as sent, counted too: a stream of empty
            nonlocal received          # gzip members decodes to nothing, forever
            for chunk in r.iter_raw():
                received += len(chunk)
                if received > limit:
                    raise FetchError(f"too large: more than {_human(limit)}")
                yield chunk

        chunks, size = [], 0
        for chunk in decode(raw(), encodings):
            size += len(chunk)
            if size > limit:
                raise FetchError(f"too large: more than {_human(limit)}")
            if time.monotonic() > deadline:
                raise FetchError(f"timed out: the response took longer than "
                                 f"{self.policy.total_timeout:g} s")
            chunks.append(chunk)
        return b"".join(chunks)

    # -- robots.txt ----------------------------------------------------------------------
    def _robots_for(self, url: str) -> urllib.robotparser.RobotFileParser | None:
        """The parsed robots.txt of `url`'s origin (cached), None if it allows everything.

        RFC 9309: a 4xx robots.txt means no rules; a 5xx or an unreachable one means
        "disallow everything" for now (the FetchError says so). Redirects are followed.
        """
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._robots_lock:
            cached = self._robots.get(origin)
        if cached and time.monotonic() - cached[0] < self.policy.robots_ttl:
            return cached[1]
        chain = [origin + "/robots.txt"]
        # A host that cannot be reached (DNS, refused, timeout) fails with that error, as
        # the page itself would; anything else wrong with robots.txt is said as such.
        while True:
            raw = self._request(chain[-1], {"Accept": "text/plain"},
                                self.policy.robots_max_bytes, robots=True)
            if raw.location is None:
                break
            try:
                chain.append(self._next_hop(chain, raw.location))
            except FetchError as exc:
                raise FetchError(f"robots.txt of {parts.netloc} could not be read ({exc}); "
                                 "not fetching from it until it can") from None
        if raw.status >= 500:
            raise FetchError(f"robots.txt of {parts.netloc} answered HTTP {raw.status}; "
                             "not fetching from it until it answers")
        parser = None
        if raw.status in (200, 203):
            parser = urllib.robotparser.RobotFileParser(chain[0])
            parser.parse(raw.body.decode("utf-8", errors="replace").splitlines())
        with self._robots_lock:
            self._robots[origin] = (time.monotonic(), parser)
        return parser

    def _check_robots(self, url: str) -> None:
        parser = self._robots_for(url)
        if parser is not None and not parser.can_fetch(ROBOTS_AGENT, url):
            raise FetchError(f"robots.txt of {host_key(url)} does not allow fetching "
                             f"{urlsplit(url).path}")

    def _crawl_delay(self, url: str) -> float | None:
        parts = urlsplit(url)
        with self._robots_lock:
            cached = self._robots.get(f"{parts.scheme}://{parts.netloc}")
        if not cached or cached[1] is None:
            return None
        delay = cached[1].crawl_delay(ROBOTS_AGENT)
        if delay is None:
            return None
        return min(max(float(delay), self.policy.delay), self.policy.max_crawl_delay)


def join_url(base: str, link: str) -> str:
    """`link` resolved against `base` (feeds and pages may use relative links)."""
    return urljoin(base, link.strip())

