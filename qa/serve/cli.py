"""The `python -m qa` / `verbatim` command line: parses, calls the package, prints."""
from __future__ import annotations

import argparse
import gc
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from qa.config import MODES, PASSAGE_VECTORS, PRECISIONS, SENTENCE_VECTORS, Settings
from qa.errors import ConfigError, QAError
from qa.index import layout
from qa.embed.ray_engine import add_engine_options
from qa.serve.terminal import (  # noqa: F401  (format_answer: also for its callers)
    ProgressBars, format_answer, json_for_terminal, printable, settings_from,
)
from qa.types import Filters


def cmd_index(args: argparse.Namespace) -> int:
    from qa.serve.library import Library, engine_embedder

    settings = settings_from(args)
    # Say "another build is running" now, not after seconds of loading the model; the
    # build takes the lock for real (and may still wait for it) below.
    with layout.build_lock(settings.index_dir, args.wait):
        pass
    # With --engine ray: Ray installed and the cluster answering are checked before the
    # model loads.
    embedder = engine_embedder(settings, args.engine, args.ray_address, args.ray_actors)
    library = Library(settings, embedder)
    library.embedder()  # the model loads before the first build, as the bars start
    bars = ProgressBars(args.quiet)

    def build_once() -> None:
        report = library.rebuild(full=args.full, on_progress=bars, wait_seconds=args.wait)
        bars.close()
        from qa.text.ingest import skip_summary

        for line in skip_summary(report.skipped):
            print(printable(line), file=sys.stderr)
        print(printable(report.summary()))
        if args.engine == "ray":
            print(embedder.take_stats().summary(embedder.where), flush=True)

    try:
        build_once()
        if args.watch:
            from qa.serve.watch import watch_corpus

            watch_corpus(settings.corpus_dir, build_once, debounce=settings.watch_debounce)
    finally:
        if args.engine == "ray":
            embedder.close()
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from qa.retriever import Retriever

    retriever = Retriever.open(settings_from(args))
    filters = Filters(tuple(args.article or ()), args.date_from, args.date_to)
    answer = retriever.answer(args.question, args.k, mode=args.mode, filters=filters)
    if args.json:
        print(json_for_terminal(asdict(answer)))
    else:
        print(format_answer(answer, sys.stdout.isatty()))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from qa.serve.info import index_info

    print(printable(index_info(settings_from(args))))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from qa.eval import (
        eval_index_dir, evaluate, evaluate_conversations, holds_conversations,
        prepare_retriever, read_conversations, read_questions,
    )

    settings = settings_from(args)
    index_dir = args.index or eval_index_dir(args.articles, settings)
    settings = settings.replace(index_dir=index_dir)
    conversations = holds_conversations(args.questions)
    if conversations and (args.unanswerable or args.after):
        raise ConfigError(f"{args.questions} holds conversations: --unanswerable and --after "
                          "apply to files of questions")
    bars = ProgressBars()
    retriever = prepare_retriever(args.articles, settings, on_progress=bars)
    bars.close()
    if conversations:
        metrics = evaluate_conversations(
            retriever, read_conversations(args.questions)[: args.limit], mode=args.mode)
    else:
        questions = read_questions(args.questions)[: args.limit]
        if args.unanswerable:
            questions += read_questions(args.unanswerable)
        metrics = evaluate(retriever, questions, mode=args.mode, progress=True,
                           after=args.after, as_of_ids=args.as_of_ids)
    if args.json:
        print(json.dumps(asdict(metrics), indent=2))
    else:
        after = f", each after {args.after!r}" if args.after else ""
        print(printable(f"{args.questions} on {args.articles} (mode "
                        f"{args.mode or settings.mode}, index {index_dir}{after})"))
        print(metrics.table())
    return 0


# -- news from the web: `add` and `feeds` (the Library does the work) ------------------------
def _web_report(args: argparse.Namespace, report) -> int:
    """Print every result (and the index update); 1 if anything failed."""
    from qa.serve.reports import intake_lines

    for line in intake_lines(report):  # URLs, titles and messages from the web: escaped
        print(printable(line), flush=True)
    if args.no_index and report.stored:
        print(f"{report.stored} new articles stored; run `python -m qa index` to search them")
    return 1 if report.failures else 0


def _library(settings: Settings):
    """The operator's library: fetches may reach private addresses (it is their machine)."""
    from qa.serve.library import Library

    return Library(settings, allow_private_urls=True)


def cmd_add(args: argparse.Namespace) -> int:
    with _library(settings_from(args)) as library:
        bars = ProgressBars(args.quiet)
        report = library.add_urls(args.urls, index=not args.no_index, on_progress=bars,
                                  wait_seconds=args.wait)
        bars.close()
    return _web_report(args, report)


def cmd_feeds(args: argparse.Namespace) -> int:
    from qa.serve.reports import followed_lines

    library = _library(settings_from(args))
    if args.feeds_command == "add":
        for url in args.urls:
            feed, added = library.follow(url)
            print(printable(f"following {feed.url}" if added else
                            f"already following {feed.url}"))
        print("its articles are fetched by `python -m qa feeds update`")
        return 0
    if args.feeds_command == "remove":
        for url in args.urls:
            feed = library.unfollow(url)
            print(printable(f"stopped following {feed.url} (the {feed.stored} articles stored "
                            "from it stay in the corpus)"))
        return 0
    if args.feeds_command == "list":
        listed = library.feeds()
        if not listed:
            print("no feeds followed; add one with `python -m qa feeds add URL`")
        for feed in listed:
            for line in followed_lines(feed):  # the title and status come from the feed
                print(printable(line))
        return 0
    return _feeds_update(args, library)


def _feeds_update(args: argparse.Namespace, library) -> int:
    from qa.web.schedule import parse_duration, poll

    every = parse_duration(args.every) if args.every else None
    if every is not None and every < 60:
        raise ConfigError(f"--every must be at least 1m (feeds are polled politely), "
                          f"got {args.every!r}")
    status = [0]
    with library:
        def run_once() -> None:
            bars = ProgressBars(args.quiet)
            report = library.update_feeds(index=not args.no_index, on_progress=bars,
                                          wait_seconds=args.wait)
            bars.close()
            if not report.web.feeds:
                print("no feeds followed; add one with `python -m qa feeds add URL`")
            status[0] = _web_report(args, report)

        if every is None:
            run_once()
            return status[0]
        print(f"updating the feeds every {args.every} (Ctrl-C to stop)", file=sys.stderr,
              flush=True)
        try:
            poll(run_once, every,
                 report_error=lambda message: print(f"error: {printable(message)}",
                                                    file=sys.stderr, flush=True))
        except KeyboardInterrupt:
            pass
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from qa.serve.server import serve_page

    return serve_page(args)


INDEX_HELP = "index folder (default: VERBATIM_INDEX, else index)"
CORPUS_HELP = "articles folder (default: VERBATIM_CORPUS, else corpus)"


def _common(parser: argparse.ArgumentParser, corpus: bool = True, index: bool = True,
            precision: str = "embedding precision") -> None:
    if index:
        parser.add_argument("--index", type=Path, help=INDEX_HELP)
    if corpus:
        parser.add_argument("--corpus", type=Path, help="articles folder or file (default: "
                            "VERBATIM_CORPUS, else corpus)")
    parser.add_argument("--model", help="sentence-transformers model name or path "
                        "(default: VERBATIM_MODEL, else the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help=f"{precision} (default: VERBATIM_PRECISION, else auto: the "
                        "index's own; for a new index bf16 where the CPU has bf16 instructions, "
                        "else int8, the ONNX graph that embeds questions, twice fp32's speed)")


def _question_options(p: argparse.ArgumentParser) -> None:
    """What `ask` and `chat` share: the index, the quotes, the filters, the reader."""
    _common(p, corpus=False, precision="precision of the model for the question, used when "
            "the index holds no ONNX export of it")
    p.add_argument("-k", type=int, default=None, help="number of quotes (default 5)")
    p.add_argument("--mode", choices=MODES, help="retrieval mode (default hybrid)")
    p.add_argument("--article", action="append", help="only this article id or title (repeatable)")
    p.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="articles on or after")
    p.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="articles on or before")
    _rerank_option(p)


def _rerank_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rerank", choices=("on", "off"),
                        help="let the reader re-order the quotes and choose the highlight "
                        "(default on, or VERBATIM_RERANK)")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="verbatim", description="Ask questions of news articles; answers are quotes."
    )
    root.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = root.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="build or update the index from the corpus",
                       description="Build index/ from corpus/, re-embedding only new and "
                       "changed articles.")
    _common(p)
    p.add_argument("--full", action="store_true", help="re-embed every article")
    p.add_argument("--watch", action="store_true", help="keep running; rebuild when the corpus changes")
    p.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                   help="wait this long for another build to finish (default: refuse at once)")
    p.add_argument("--faiss", metavar="FACTORY", help="FAISS index-factory string "
                   "(default: exact search, IVF for large indexes)")
    p.add_argument("--sentence-vectors", choices=SENTENCE_VECTORS,
                   help="separate (default): embed each sentence on its own; late: pool them "
                   "from the passage's forward pass, about twice as fast to build, ~1 point "
                   "less recall@1 (a change re-embeds every article)")
    p.add_argument("--passage-vectors", choices=PASSAGE_VECTORS,
                   help="auto (default): the index's own, pooled for a new one; pooled: "
                   "average each passage's sentence vectors, so every text is embedded once "
                   "(half the work); encoded: embed each passage too (a change re-embeds "
                   "every article)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_engine_options(p)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("ask", help="answer a question with quotes",
                       description="Answer a question with verbatim quotes from the articles.")
    p.add_argument("question")
    _question_options(p)
    p.add_argument("--json", action="store_true", help="print the Answer as JSON")
    p.set_defaults(func=cmd_ask)

    from qa.serve.chat import cmd_chat

    p = sub.add_parser("chat", help="a conversation: follow-up questions read the earlier ones",
                       description="Ask one question after another; a follow-up (\"And "
                       "Baidu?\") is read with the questions before it. :new starts over.")
    _question_options(p)
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("info", help="describe the live index",
                       description="Print the live index: generation, model, counts, size, "
                       "health, and the reader's state (VERBATIM_RERANK).")
    p.add_argument("--index", type=Path, help=INDEX_HELP)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("eval", help="measure retrieval quality on a question file",
                       description="Build (or reuse) an index for ARTICLES, ask every question "
                       "and report recall@1/5/10, mrr@10, highlight@1, abstention and latency.")
    p.add_argument("--articles", type=Path, required=True, help="articles file or folder")
    p.add_argument("--questions", type=Path, required=True,
                   help="questions .jsonl, or conversations (records with \"turns\"): "
                   "first turns and follow-ups are then scored apart, and each follow-up "
                   "also without its history")
    p.add_argument("--unanswerable", type=Path, help="unanswerable questions .jsonl")
    p.add_argument("--index", type=Path, help="index folder for ARTICLES (default: a cache "
                   "folder per article set and model, .verbatim-cache/eval/NAME-HASH; "
                   "VERBATIM_INDEX is not used)")
    _common(p, corpus=False, index=False)
    p.add_argument("--mode", choices=MODES, help="retrieval mode (default hybrid)")
    p.add_argument("--limit", type=int, help="only the first N questions (or conversations)")
    p.add_argument("--after", metavar="QUESTION",
                   help="ask each question as the second turn of a conversation that began "
                   "with QUESTION (an unrelated one must not change the figures)")
    p.add_argument("--as-of-ids", action="store_true",
                   help="ask a question whose id starts YYYYMMDD as of that day (time words "
                   "like \"this week\" are read relative to it), as realtimeqa-dev's are")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    _rerank_option(p)
    p.set_defaults(func=cmd_eval)
    _web_parsers(sub)

    from qa.serve.server import DESCRIPTION, EPILOG, add_serve_options

    p = sub.add_parser("serve", help="serve the page and the JSON API (as `python app.py`)",
                       description=DESCRIPTION, epilog=EPILOG)
    add_serve_options(p)
    p.set_defaults(func=cmd_serve)
    return root


def _web_parsers(sub) -> None:
    """`add` and `feeds ...`: news from the web into the corpus, then the index."""
    def indexing(p: argparse.ArgumentParser) -> None:
        p.add_argument("--corpus", type=Path, help=CORPUS_HELP)  # web articles need a folder
        _common(p, corpus=False)
        p.add_argument("--no-index", action="store_true",
                       help="only store the articles; do not update the index")
        p.add_argument("--wait", type=float, default=60, metavar="SECONDS",
                       help="wait this long for another build to finish (default 60)")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("add", help="fetch article URLs into the corpus and index them",
                       description="Fetch each page, extract its article (text, title, date, "
                       "canonical URL), store it under corpus/web/ and update the index.")
    p.add_argument("urls", nargs="+", metavar="URL")
    indexing(p)
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("feeds", help="follow RSS/Atom feeds",
                       description="Follow RSS and Atom feeds; `update` stores and indexes "
                       "the articles not seen before. The list is corpus/.feeds.json.")
    feeds = p.add_subparsers(dest="feeds_command", required=True)
    q = feeds.add_parser("add", help="follow feeds", description="Follow feeds (nothing is "
                         "fetched until `feeds update`).")
    q.add_argument("urls", nargs="+", metavar="FEED_URL")
    q.add_argument("--corpus", type=Path, help=CORPUS_HELP)
    q.set_defaults(func=cmd_feeds)
    q = feeds.add_parser("remove", help="stop following feeds",
                         description="Stop following feeds; their stored articles stay.")
    q.add_argument("urls", nargs="+", metavar="FEED_URL")
    q.add_argument("--corpus", type=Path, help=CORPUS_HELP)
    q.set_defaults(func=cmd_feeds)
    q = feeds.add_parser("list", help="the followed feeds",
                         description="The followed feeds and what their last update did.")
    q.add_argument("--corpus", type=Path, help=CORPUS_HELP)
    q.set_defaults(func=cmd_feeds)
    q = feeds.add_parser("update", help="fetch, store and index new articles of every feed",
                         description="Fetch every followed feed (conditionally), store the "
                         "articles not seen before and update the index.")
    q.add_argument("--every", metavar="DURATION",
                   help="keep updating at this interval until interrupted (e.g. 30m, 2h)")
    indexing(q)
    q.set_defaults(func=cmd_feeds)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(message)s")
    try:
        return args.func(args)
    except QAError as exc:
        print(f"error: {printable(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `verbatim ask ... | head` closed the pipe: not an error
        sys.stderr.close()
        return 0
    except OSError as exc:  # a folder that cannot be read or written: say which, plainly
        print(f"error: {printable(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def run() -> int:
    """The process entry (`python -m qa`, `verbatim`): `main`, then an exit that skips the
    interpreter's last cyclic-GC passes over torch's and transformers' objects, which took
    2-10 s after every command that had loaded the model (0.8 s frozen). Not in `main`:
    freezing a process that goes on (a caller's, a test run) would keep its garbage."""
    code = main()
    gc.freeze()
    return code
