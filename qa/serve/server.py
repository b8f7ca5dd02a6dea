"""Starting the page: `python app.py` and `verbatim serve`.

Its options, the question encoder and the index (built first if missing, while gradio
imports), the Gradio layout mounted on the JSON API's FastAPI app, served by uvicorn.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qa.config import Settings
from qa.embed.ray_engine import add_engine_options  # (no ray import until used)
from qa.errors import ConfigError, IndexMissingError, QAError
from qa.serve.library import engine_embedder
from qa.serve.page import NO_INDEX, Page

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860


def prepare(settings: Settings, engine: str = "local", ray_address: str | None = None,
            ray_actors: int | None = None) -> Page:
    """Open the index (questions through the model's ONNX export when a build made one, so
    no torch is loaded), or build it first if there is none.

    With engine "ray", builds (this one and "Rebuild index") embed on a Ray cluster;
    questions are always embedded here.
    """
    from qa.embed import load_question_encoder

    builder = engine_embedder(settings, engine, ray_address, ray_actors)
    encoder = load_question_encoder(settings)
    encoder.encode(["warm up"])  # so the first question is as quick as the rest
    page = Page(settings, encoder, build_embedder=builder)
    try:
        page.open_index()
        return page
    except IndexMissingError:
        print(f"No index in {settings.index_dir}/ yet: building it from {settings.corpus_dir}/",
              flush=True)
    except QAError as exc:
        print(f"warning: the index cannot be served: {exc}", file=sys.stderr, flush=True)
        page.problem = f"{exc} (or press “Rebuild index”)."
        return page
    try:
        report = page.library.rebuild()
    except QAError as exc:
        print(f"warning: could not build the index: {exc}", file=sys.stderr, flush=True)
        page.problem = f"{exc}. {NO_INDEX}"
        return page
    print(report.summary(), flush=True)
    page.open_index()
    return page


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """VERBATIM_AUTH="user:password" -> (user, password); empty -> no login."""
    if not value:
        return None
    user, colon, password = value.partition(":")
    if not colon or not user or not password:
        raise ConfigError("VERBATIM_AUTH must look like user:password")
    return user, password


DESCRIPTION = "Serve the Verbatim page and its JSON API (builds the index first if missing)."
EPILOG = ("Environment: VERBATIM_HOST, VERBATIM_PORT, VERBATIM_AUTH=user:password, "
          "VERBATIM_CORPUS, VERBATIM_INDEX, VERBATIM_MODEL, VERBATIM_FORWARDED_ALLOW_IPS, "
          "VERBATIM_RERANK.")


def add_serve_options(p: argparse.ArgumentParser) -> None:
    """The options of `python app.py` and `verbatim serve`."""
    p.add_argument("--host", default=os.environ.get("VERBATIM_HOST", DEFAULT_HOST),
                   help=f"address to listen on (default: VERBATIM_HOST, else {DEFAULT_HOST}: "
                   "this machine only)")
    # A string default goes through type=int too, so a bad VERBATIM_PORT is a usage error.
    p.add_argument("--port", type=int, default=os.environ.get("VERBATIM_PORT", str(DEFAULT_PORT)),
                   help=f"port (default: VERBATIM_PORT, else {DEFAULT_PORT})")
    p.add_argument("--corpus", type=Path,
                   help="articles folder (default: VERBATIM_CORPUS, else corpus)")
    p.add_argument("--index", type=Path,
                   help="index folder (default: VERBATIM_INDEX, else index)")
    p.add_argument("--allow-private-urls", action="store_true",
                   help="let URLs typed into the page reach loopback, private and link-local "
                        "addresses (off by default: visitors cannot make the server fetch its "
                        "own network)")
    p.add_argument("--forwarded-allow-ips", metavar="ADDRESSES",
                   default=os.environ.get("VERBATIM_FORWARDED_ALLOW_IPS") or None,
                   help="behind a reverse proxy: the proxy's addresses (comma-separated, "
                        "or networks), whose X-Forwarded-For names the client; by default "
                        "no forwarded header is believed and every client is the "
                        "connection's peer (VERBATIM_FORWARDED_ALLOW_IPS)")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    add_engine_options(p)


def parser(prog: str = "app.py") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION, epilog=EPILOG)
    add_serve_options(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """`python app.py [options]`."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return serve_page(args)


def serve_page(args: argparse.Namespace) -> int:
    """Load the model and the index (building it if missing), then serve the page and the
    JSON API until interrupted; 2 if it cannot start. `args` are add_serve_options'."""
    started = time.perf_counter()
    from qa.serve import ui  # first: it turns gradio's analytics and the hub's downloads off

    try:
        auth = parse_auth(os.environ.get("VERBATIM_AUTH"))
        settings = Settings.from_env(corpus_dir=args.corpus, index_dir=args.index)
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    # The model loads (and the index builds, if missing) while gradio imports.
    result: dict[str, Any] = {}

    def load() -> None:
        try:
            result["page"] = prepare(settings, args.engine, args.ray_address, args.ray_actors)
            result["page"].allow_private_urls = args.allow_private_urls
        except BaseException as exc:  # re-raised in the main thread
            result["error"] = exc

    loader = threading.Thread(target=load, name="verbatim-load", daemon=True)
    loader.start()
    import gradio  # noqa: F401  (the slow import, overlapping the model load)

    loader.join()
    if "error" in result:
        if isinstance(result["error"], QAError):
            print(f"error: {result['error']}", file=sys.stderr)
            return 2
        raise result["error"]
    page = result["page"]
    demo = ui.build_page(page)
    demo.queue(default_concurrency_limit=4)
    app = ui.mount(page, demo, auth)
    from qa.serve.api import exposure_warning, serve, serving_urls

    warning = exposure_warning(args.host, args.port, auth)
    if warning:
        print(warning, file=sys.stderr, flush=True)

    def ready() -> None:
        first, *others = serving_urls(args.host, args.port)
        also = f" (also {', '.join(others)})" if others else ""
        print(f"Verbatim is ready at {first}{also} ({time.perf_counter() - started:.1f} s); "
              f"JSON API at {first}/api, its docs at {first}/docs", flush=True)

    try:
        serve(app, args.host, args.port, on_ready=ready,
              forwarded_allow_ips=args.forwarded_allow_ips)
    except OSError as exc:  # most often: the port is taken
        print(f"error: cannot serve on {args.host}:{args.port}: {exc}. Pick another port with "
              "--port or VERBATIM_PORT.", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
