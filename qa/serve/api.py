"""The JSON API beside the page: POST /api/ask and /api/search (FastAPI, OpenAPI at /docs),
HTTP Basic with the page's login, failed logins throttled, served with uvicorn.

app.py mounts the Gradio page on the app made here, so one process and one port serve
both. The only fastapi/uvicorn import in the package.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import fcntl
import hmac
import ipaddress
import json
import logging
import math
import socket
import struct
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.exceptions import HTTPException

from qa.config import MODES, Settings
from qa.dates import normalize_date
from qa.errors import ConfigError, QAError
from qa.serve.throttle import LoginThrottle
from qa.types import Answer, Filters, Hit, Quote, Span

if TYPE_CHECKING:
    from qa.retriever import Retriever

log = logging.getLogger("verbatim.api")

REALM = 'Basic realm="Verbatim", charset="UTF-8"'
# Shown on the page's login form: a throttled login gets no other answer there.
LOGIN_NOTE = ("After 5 wrong passwords from one address, each further try waits: 1 s, "
              "then 2, 4, … up to 5 minutes.")
# Request bodies: a question is at most 2,000 characters, so 1 MiB leaves room for a long
# articles filter (about 25,000 ids); the page's own requests (Gradio's queue, which
# posts the chat history back) get more; uploads are Gradio's, capped per file by it.
API_MAX_BODY = 2**20
PAGE_MAX_BODY = 16 * 2**20
# Echoed values (a field name, a bad value) are cut to this many characters in errors.
ECHO_CHARS = 80
MAX_MESSAGE_CHARS = 400
API_ROUTES = ("/api/ask", "/api/search")


class ApiError(Exception):
    """An error the API answers as JSON `{"error": message}` with this status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class Question(BaseModel):
    """A question, as /api/ask and /api/search take it (the same as the page's /ask)."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="Free text; at most max_question_chars (2,000).")
    # Strict: true, "5" and 2.0 are not a count (a lax int took true as 1).
    k: int | None = Field(None, ge=1, strict=True,
                          description="How many quotes (ask) or passages (search); 1 to max_k "
                          "(VERBATIM_MAX_K, default 100). Default 5.")
    mode: Literal["hybrid", "dense", "bm25"] | None = Field(
        None, description="hybrid (meaning + words, the default), dense or bm25.")
    articles: list[str] = Field(default_factory=list,
                                description="Only these articles (ids or titles).")
    date_from: str | None = Field(None, description="Only articles dated on or after.")
    date_to: str | None = Field(None, description="Only articles dated on or before.")

    def filters(self) -> Filters | None:
        if not (self.articles or self.date_from or self.date_to):
            return None
        return Filters(tuple(self.articles), self.date_from, self.date_to)


# A conversation's earlier turns, as /api/ask takes them: bounded in count and size.
MAX_TURNS = 8
MAX_TURN_QUOTES = 10
MAX_QUOTE_CHARS = 20_000


class ShownSpan(BaseModel):
    """A marked sentence: offsets into the quote's text."""

    start: int = Field(ge=0, strict=True)
    end: int = Field(ge=0, strict=True)


class ShownQuote(BaseModel):
    """A quote as /api/ask returned it; its other fields may be sent back too."""

    model_config = ConfigDict(extra="ignore")

    article_id: str = Field(max_length=2_000)
    start: int = Field(ge=0, strict=True, description="The quote's offset in its article.")
    text: str = Field(max_length=MAX_QUOTE_CHARS)
    highlights: list[ShownSpan] = Field(default_factory=list, max_length=MAX_TURN_QUOTES)


class Turn(BaseModel):
    """An earlier turn of the conversation: the question and the quotes it was answered
    with (none when it abstained)."""

    model_config = ConfigDict(extra="ignore")

    question: str = Field(max_length=2_000)
    quotes: list[ShownQuote] = Field(default_factory=list, max_length=MAX_TURN_QUOTES)
    read_with: str | None = Field(None, max_length=2_000,
                                  description="As the answer to that turn said, if it did.")

    def as_pair(self) -> tuple[str, Answer]:
        quotes = tuple(
            Quote(text=q.text, article_id=q.article_id, title="", source="", date=None,
                  start=q.start, end=q.start + len(q.text), score=0.0,
                  highlights=tuple(Span(h.start, h.end) for h in q.highlights
                                   if h.start < h.end <= len(q.text)))
            for q in self.quotes)
        return self.question, Answer(question=self.question, quotes=quotes,
                                          abstained=not quotes, read_with=self.read_with)


class Ask(Question):
    """A question for /api/ask, with the conversation before it."""

    as_of: str | None = Field(
        None, max_length=40,
        description="The day the question is asked (default today): time words in it "
                    "(\"in 2023\", \"last week\") are read relative to it.")
    history: list[Turn] = Field(
        default_factory=list, max_length=MAX_TURNS,
        description=f"The earlier turns of the same conversation, oldest first (at most "
                    f"{MAX_TURNS}): each question with the quotes it was answered with. A "
                    "follow-up (\"And Baidu?\", \"When did they begin?\") is read with them.")

    def as_of_date(self) -> date | None:
        if not self.as_of:
            return None
        iso = normalize_date(self.as_of)
        if iso is None:
            raise ConfigError(f"as_of must be a date like 2025-07-28, got {self.as_of!r}")
        return date.fromisoformat(iso)


def question_model(max_k: int, base: type[Question] = Question) -> type[Question]:
    """`base` with k's upper bound, so the OpenAPI schema states the whole range."""
    k = Question.model_fields["k"]
    return create_model(base.__name__, __base__=base, __doc__=base.__doc__,
                        k=(int | None, Field(None, ge=1, le=max_k, strict=True,
                                             description=k.description)))


def with_body(model: type[BaseModel]) -> Callable[[Callable], Callable]:
    """Declare an endpoint's `body` to be `model`, a class made at run time (a string
    annotation would not find it)."""
    def declare(endpoint: Callable) -> Callable:
        endpoint.__annotations__["body"] = model
        return endpoint
    return declare


def clip(text: str, chars: int = ECHO_CHARS) -> str:
    """`text` cut to about `chars` characters, saying how much was left out."""
    if len(text) <= chars:
        return text
    return f"{text[:chars]}… ({len(text) - chars:,} more characters)"


def _shown(value: object) -> str:
    return clip(repr(value))


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    # Messages may quote what the client sent (a bad date, an unknown field): never all of it.
    return JSONResponse({"error": clip(message, MAX_MESSAGE_CHARS)}, status_code=status,
                        headers=headers)


class BodyTooLarge(HTTPException):
    """A request body over its cap (413); raised while the body is being received."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {_human(limit)}, the most "
                              "this server reads")


def _human(n: int) -> str:
    from qa.config import human_size

    return human_size(n)


class BodyLimit:
    """ASGI middleware: request bodies are capped by path (`limit_of`), and counted as they
    arrive, so an oversized body is refused before it is read, let alone parsed. A declared
    Content-Length over the cap is answered 413 at once, without reading a byte of it."""

    def __init__(self, app: Any, limit_of: Callable[[str], int | None]) -> None:
        self.app, self.limit_of = app, limit_of

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        limit = self.limit_of(scope.get("path", "")) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _error(413, BodyTooLarge(limit).detail, {"Connection": "close"})(
                scope, receive, send)
            return
        received, started = 0, False

        async def counted() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as exc:  # raised outside any app's exception handling
            if started:
                raise
            await _error(413, exc.detail, {"Connection": "close"})(scope, receive, send)


def body_limit(path: str) -> int | None:
    """The cap on a request body to `path` (None: Gradio's upload, capped per file by it)."""
    if path.startswith("/api/") or path.rstrip("/") in ("/login", "/openapi.json", "/docs"):
        return API_MAX_BODY
    if path.rstrip("/").endswith("/upload"):
        return None
    return PAGE_MAX_BODY


def client_address(scope_or_request: Any) -> str:
    """The peer address of a request (not a forwarded header, which a client can forge)."""
    client = getattr(scope_or_request, "client", None)
    if client is None and isinstance(scope_or_request, dict):
        client = scope_or_request.get("client")
    return client[0] if client else "unknown"


def _wait_message(seconds: float) -> tuple[str, dict[str, str]]:
    wait = max(1, math.ceil(seconds))
    return (f"too many failed logins from this address; try again in {wait} s",
            {"Retry-After": str(wait)})


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic ...` header, or None."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, colon, password = base64.b64decode(value.strip(), validate=True) \
            .decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if colon else None


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class ThrottledLogin:
    """ASGI middleware: the page's login form (Gradio's POST /login) goes through the
    same per-address throttle as the API; a throttled try is refused without being
    checked (429, Retry-After)."""

    def __init__(self, app: Any, throttle: LoginThrottle) -> None:
        self.app, self.throttle = app, throttle

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if (scope["type"] != "http" or scope.get("method") != "POST"
                or scope.get("path", "").rstrip("/") != "/login"):
            await self.app(scope, receive, send)
            return
        client = client_address(scope)
        wait = self.throttle.retry_after(client)
        if wait > 0:
            message, headers = _wait_message(wait)
            # "detail" is what Gradio's login form shows; "error" is every API error's key.
            response = JSONResponse({"detail": message[0].upper() + message[1:] + ".",
                                     "error": message}, status_code=429, headers=headers)
            await response(scope, receive, send)
            return

        async def watch(message: dict) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                if status == 200:
                    self.throttle.succeeded(client)
                elif status in (400, 401, 403):  # Gradio says 400 to a wrong password
                    self.throttle.failed(client)
            await send(message)

        await self.app(scope, receive, watch)


def create_api(retriever: Callable[[], Retriever], settings: Settings,
               auth: tuple[str, str] | None = None, throttle: LoginThrottle | None = None,
               workers: int = 4) -> FastAPI:
    """The FastAPI app with /api/ask, /api/search, /docs and /openapi.json.

    Args:
        retriever: returns the Retriever to answer with (the page's, so both follow the
            same live index).
        settings: k, the cap and the question length come from here.
        auth: (user, password) every API request must send with HTTP Basic; None: open.
        throttle: failed logins per address (share the page's); a new one if None.
        workers: threads answering at once (the answering itself holds the GIL for most
            of its time; more threads only queue).
    """
    throttle = throttle or LoginThrottle()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verbatim-api")
    app = FastAPI(
        title="Verbatim API",
        summary="Answers as verbatim quotes from your news articles.",
        description=(
            "`POST /api/ask` answers with quotes (the answering sentences marked as "
            "`highlights`: offsets into each quote's `text`), or abstains. "
            "`POST /api/search` returns the ranked passages with their scores. Both return "
            "the same JSON as the page's `/ask` and `/search`. With a login "
            "(VERBATIM_AUTH=user:password), send it with HTTP Basic; after 5 wrong "
            "passwords from one address each try waits longer (429, Retry-After). Errors "
            'are `{"error": "..."}` with a 4xx/5xx status; a body over 1 MB is refused '
            "(413)."
        ),
        version="1",
        docs_url=None, redoc_url=None, openapi_url=None,  # added below, behind the login
    )
    app.add_middleware(ThrottledLogin, throttle=throttle)
    # Outermost: a body over its cap is refused before anything else reads it.
    app.add_middleware(BodyLimit, limit_of=body_limit)
    Body = question_model(settings.max_k)
    AskBody = question_model(settings.max_k, Ask)

    def login(request: Request) -> None:
        if auth is None:
            return
        client = client_address(request)
        wait = throttle.retry_after(client)
        if wait > 0:
            raise ApiError(429, *_wait_message(wait))
        given = basic_credentials(request.headers.get("authorization"))
        if given is None:  # no credentials yet (a first request): not a failure
            raise ApiError(401, "log in with HTTP Basic (the user:password of VERBATIM_AUTH)",
                           {"WWW-Authenticate": REALM})
        # Both compared, always: the time taken says nothing about which was wrong.
        if not (_same(given[0], auth[0]) & _same(given[1], auth[1])):
            throttle.failed(client)
            raise ApiError(401, "wrong user name or password", {"WWW-Authenticate": REALM})
        throttle.succeeded(client)

    async def run(call: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(pool, call)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = [clip(str(part)) for part in first.get("loc", ()) if part != "body"]
        kind, given = first.get("type"), first.get("input")
        if kind == "json_invalid":
            return _error(400, f"the request body is not valid JSON ({first.get('msg')})")
        if not where:
            return _error(422, "send a JSON object: {\"question\": \"...\", \"k\": 5, "
                               "\"mode\": \"hybrid\"}")
        field = where[0]
        if field == "k" and len(where) == 1:
            if kind == "greater_than_equal":
                return _error(422, f"k must be > 0, got {_shown(given)}")
            if kind == "less_than_equal":
                return _error(422, f"k must be at most {settings.max_k}, got {_shown(given)} "
                                   "(the max_k setting, VERBATIM_MAX_K)")
            return _error(422, f"k must be a whole number, got {_shown(given)}")
        if field == "mode" and len(where) == 1:
            return _error(422, f"mode must be one of {', '.join(MODES)}, got {_shown(given)}")
        return _error(422, f"{'.'.join(where)}: {first.get('msg')}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        # FastAPI's own refusals (a body that is not UTF-8, a body over the cap) in the
        # API's one error shape.
        message = str(exc.detail)
        if exc.status_code == 400:
            message = f"the request body could not be read as JSON ({exc.detail}); send UTF-8 JSON"
        return _error(exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(QAError)
    async def qa_error(request: Request, exc: QAError) -> JSONResponse:
        # A bad argument is the client's to fix; anything else (no index yet, a damaged
        # one) is the server's state.
        return _error(422 if isinstance(exc, ConfigError) else 503, str(exc))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _error(500, "something went wrong on the server (see its log)")

    guarded = [Depends(login)]

    @app.post("/api/ask", dependencies=guarded, response_model=None,
              responses={200: {"model": Answer, "description": "The answer"}})
    @with_body(AskBody)
    async def ask(body: Ask) -> JSONResponse:
        """The answer as verbatim quotes with highlight spans, or an abstention."""
        history = tuple(turn.as_pair() for turn in body.history)
        answer = await run(lambda: retriever().answer(body.question, body.k, mode=body.mode,
                                                      filters=body.filters(), history=history,
                                                      as_of=body.as_of_date()))
        return JSONResponse(dataclasses.asdict(answer))

    @app.post("/api/search", dependencies=guarded, response_model=None,
              responses={200: {"model": list[Hit], "description": "The passages, best first"}})
    @with_body(Body)
    async def search(body: Question) -> JSONResponse:
        """The k best passages, with their fused, dense and BM25 scores."""
        hits = await run(lambda: retriever().search(body.question, body.k, mode=body.mode,
                                                    filters=body.filters()))
        return JSONResponse([dataclasses.asdict(hit) for hit in hits])

    @app.get("/openapi.json", dependencies=guarded, include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", dependencies=guarded, include_in_schema=False)
    async def docs() -> HTMLResponse:
        # Rendered here from the schema: Swagger UI would load its script from a CDN
        # (blank offline, and a third party's code in the browser).
        return HTMLResponse(docs_html(app.openapi()), headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})

    # Before the page's mount at "/": every other path under /api/ is the API's to answer,
    # in its error shape (Gradio would say {"detail": "Not Found"}).
    @app.api_route("/api/{rest:path}", dependencies=guarded, include_in_schema=False,
                   methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    async def elsewhere(request: Request, rest: str) -> JSONResponse:
        if request.url.path.rstrip("/") in API_ROUTES:
            return _error(405, f"use POST for {request.url.path}, not {request.method}",
                          {"Allow": "POST"})
        return _error(404, f"there is no {clip(request.url.path)} in the API; it has "
                           "POST /api/ask and POST /api/search (see /docs)")

    return app


def docs_html(spec: dict) -> str:
    """The API's documentation as one self-contained page: each endpoint, its fields with
    their types, bounds and descriptions, and a link to the schema. Nothing is loaded."""
    from html import escape

    schemas = spec.get("components", {}).get("schemas", {})

    def kind(field: dict) -> str:
        options = field.get("anyOf", [field])
        shown = []
        for option in options:
            name = option.get("type") or option.get("$ref", "").rsplit("/", 1)[-1] or "any"
            if "enum" in option:
                name = " | ".join(json.dumps(v) for v in option["enum"])
            elif name == "array":
                name = f"list of {option.get('items', {}).get('type', 'any')}"
            if "minimum" in option or "maximum" in option:
                low, high = (f"{option[b]:g}" if b in option else "" for b in ("minimum",
                                                                                "maximum"))
                name += f" ({low} to {high})"
            shown.append(name)
        return " or ".join(shown)

    parts = [f"<h1>{escape(spec['info']['title'])}</h1>",
             f"<p>{escape(spec['info'].get('description', ''))}</p>",
             '<p>The schema: <a href="/openapi.json">/openapi.json</a> (OpenAPI '
             f"{escape(spec.get('openapi', ''))}).</p>"]
    for path, methods in spec.get("paths", {}).items():
        for method, operation in methods.items():
            parts.append(f"<h2><code>{escape(method.upper())} {escape(path)}</code></h2>"
                         f"<p>{escape(operation.get('description') or operation.get('summary', ''))}</p>")
            ref = (operation.get("requestBody", {}).get("content", {})
                   .get("application/json", {}).get("schema", {}).get("$ref", ""))
            body = schemas.get(ref.rsplit("/", 1)[-1], {})
            required = set(body.get("required", ()))
            rows = "".join(
                f"<tr><td><code>{escape(name)}</code></td><td>{escape(kind(field))}</td>"
                f"<td>{'required' if name in required else 'optional'}</td>"
                f"<td>{escape(field.get('description', ''))}</td></tr>"
                for name, field in body.get("properties", {}).items())
            if rows:
                parts.append("<table><tr><th>field</th><th>type</th><th></th><th></th></tr>"
                             f"{rows}</table>")
    style = ("body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
             "padding:0 1rem}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
             "padding:.3rem .5rem;text-align:left;vertical-align:top}")
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(spec['info']['title'])}</title><style>{style}</style></head>"
            f"<body>{''.join(parts)}</body></html>")


# -- serving ---------------------------------------------------------------------------------
_WILDCARDS = ("", "0.0.0.0", "::")


def is_local(host: str) -> bool:
    """Does `host` listen on this machine only?"""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (best effort; sends nothing)."""
    found: list[str] = []
    try:  # Linux: ask each interface (SIOCGIFADDR)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _, name in socket.if_nameindex():
                try:
                    packed = fcntl.ioctl(sock.fileno(), 0x8915,
                                         struct.pack("256s", name[:15].encode()))
                except OSError:
                    continue  # no IPv4 address on this interface
                found.append(socket.inet_ntoa(packed[20:24]))
    except (OSError, AttributeError):
        pass
    try:
        found += [info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None,
                                                            socket.AF_INET)]
    except OSError:
        pass
    return sorted({a for a in found if not ipaddress.ip_address(a).is_loopback},
                  key=lambda a: ipaddress.ip_address(a))


def serving_urls(host: str, port: int) -> list[str]:
    """Where the server can be reached: a wildcard host is every address of the machine."""
    if host in _WILDCARDS:
        return [f"http://{a}:{port}" for a in local_addresses()] + [f"http://127.0.0.1:{port}"]
    shown = f"[{host}]" if ":" in host else host
    return [f"http://{shown}:{port}"]


def exposure_warning(host: str, port: int, auth: object) -> str | None:
    """A loud warning when the page is served beyond this machine without a login."""
    if auth or is_local(host):
        return None
    urls = [u for u in serving_urls(host, port) if "127.0.0.1" not in u] or [host]
    bar = "!" * 78
    return "\n".join([
        bar,
        f"WARNING: serving on {host or '0.0.0.0'} WITHOUT A LOGIN. Anyone who can reach",
        *(f"    {url}" for url in urls),
        "can read every article, upload files, remove them and rebuild the index.",
        "Set VERBATIM_AUTH=user:password to require a login, or serve on 127.0.0.1.",
        bar,
    ])


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port), so a taken port is an OSError here, not a log line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY on accepted connections only
    # when the listening socket says it is TCP. Without it every response on a kept-alive
    # connection waited ~40 ms (Nagle against the client's delayed ACK): one client got
    # 12 answers/s instead of 34 (bench/serve.py).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host or "0.0.0.0", port))
    except OSError:
        sock.close()
        raise
    return sock


def serve(app: Any, host: str, port: int, on_ready: Callable[[], None] | None = None,
          forwarded_allow_ips: str | None = None) -> None:
    """Serve `app` until SIGINT/SIGTERM; `on_ready` runs once it accepts connections.

    Raises:
        OSError: the address cannot be bound (most often: the port is taken).
    """
    import uvicorn

    sock = bind(host, port)

    class Server(uvicorn.Server):
        async def startup(self, sockets: list | None = None) -> None:
            await super().startup(sockets=sockets)
            if on_ready is not None and not self.should_exit:
                on_ready()

    Server(server_config(app, forwarded_allow_ips)).run(sockets=[sock])


def server_config(app: Any, forwarded_allow_ips: str | None = None) -> Any:
    """How uvicorn serves `app`. X-Forwarded-For and -Proto are believed only from the
    proxies named in `forwarded_allow_ips` (comma-separated addresses or networks, "*"
    for any); None believes nobody, so the address a login is throttled by is always the
    connection's peer. (uvicorn's own default believes 127.0.0.1, which let any local
    client, or anything a local proxy passes on, name its own address.)"""
    import uvicorn

    # A stopping server waits at most this long for open streams (a page's event stream
    # stays open as long as its tab).
    return uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                          timeout_graceful_shutdown=3,
                          proxy_headers=bool(forwarded_allow_ips),
                          forwarded_allow_ips=forwarded_allow_ips or "")
