"""The `python -m qa` / `verbatim` command line: parses, calls the package, prints."""
from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from qa.config import MODES, PRECISIONS, Settings
from qa.errors import QAError
from qa.index import layout
from qa.render import ABSTAIN_NOTE, EMPTY_NOTE
from qa.types import Answer, Filters, Quote


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        corpus_dir=getattr(args, "corpus", None),
        index_dir=getattr(args, "index", None),
        model=getattr(args, "model", None),
        precision=getattr(args, "precision", None),
        index_factory=getattr(args, "faiss", None),
    )


# Characters that drive a terminal or reorder what it shows: C0 controls but tab and
# newline, DEL and C1 controls (0x9b is an 8-bit CSI), bidirectional overrides. Article
# text is untrusted: printed raw, "\x1b]0;..." would retitle the window, "\x1b[2J" wipe it.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` safe to print on a terminal: control characters shown as `\\x1b`."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def json_for_terminal(data: object) -> str:
    """JSON of `data` with every terminal control escaped (json.dumps leaves C1 controls
    and bidi overrides raw when ensure_ascii is off); still the same JSON."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def mark(quote: Quote, tty: bool) -> str:
    """The quote's text with its highlights in bold yellow (TTY) or **stars** (pipe)."""
    open_, close = ("\033[1;33m", "\033[0m") if tty else ("**", "**")
    out, cursor = [], 0
    for span in quote.highlights:
        out += [printable(quote.text[cursor:span.start]), open_,
                printable(quote.text[span.start:span.end]), close]
        cursor = span.end
    out.append(printable(quote.text[cursor:]))
    return "".join(out)


def format_answer(answer: Answer, tty: bool) -> str:
    """The answer as a terminal reads it: numbered quotes, each with its citation."""
    lines = []
    if answer.abstained:
        lines.append(ABSTAIN_NOTE)
        if answer.closest:
            lines.append("Closest passages (not an answer):")
    elif not answer.quotes:
        lines.append(EMPTY_NOTE)
    for number, quote in enumerate(answer.quotes or answer.closest, start=1):
        cite = printable(f"{quote.title} — {quote.source}"
                         + (f", {quote.date}" if quote.date else ""))
        lines.append(f"\n[{number}] {cite}  (relevance {quote.score:.2f})")
        # Closest passages of an abstention are not answers: nothing in them is marked.
        text = printable(quote.text) if answer.abstained else mark(quote, tty)
        lines += ["    " + line for line in text.splitlines()]
    return "\n".join(lines)


class ProgressBars:
    """A tqdm bar per build stage (on stderr), fed by build_index's on_progress."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self._bars: dict = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        bar = self._bars.get(stage)
        if bar is None:
            unit = " texts" if stage == "embed" else " steps"
            bar = self._bars[stage] = tqdm(total=total, desc=stage, unit=unit, leave=False,
                                           disable=self.quiet)
        bar.total = total
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


def cmd_index(args: argparse.Namespace) -> int:
    from qa.embed import load_embedder
    from qa.index.build import build_index

    settings = _settings(args)
    # Say "another build is running" now, not after seconds of loading the model; the
    # build takes the lock for real (and may still wait for it) below.
    with layout.build_lock(settings.index_dir, args.wait):
        pass
    embedder = load_embedder(settings)
    bars = ProgressBars(args.quiet)

    def build_once() -> None:
        report = build_index(settings, embedder, full=args.full, on_progress=bars,
                             wait_seconds=args.wait)
        bars.close()
        from qa.ingest import skip_summary

        for line in skip_summary(report.skipped):
            print(printable(line), file=sys.stderr)
        print(printable(report.summary()))

    build_once()
    if args.watch:
        from qa.watch import watch_corpus

        watch_corpus(settings.corpus_dir, build_once, debounce=settings.watch_debounce)
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from qa.retriever import Retriever

    retriever = Retriever.open(_settings(args))
    filters = Filters(tuple(args.article or ()), args.date_from, args.date_to)
    answer = retriever.answer(args.question, args.k, mode=args.mode, filters=filters)
    if args.json:
        print(json_for_terminal(asdict(answer)))
    else:
        print(format_answer(answer, sys.stdout.isatty()))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from qa.info import index_info

    print(index_info(_settings(args)))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from qa.eval import eval_index_dir, evaluate, prepare_retriever, read_questions

    settings = _settings(args)
    index_dir = args.index or eval_index_dir(args.articles, settings)
    settings = settings.replace(index_dir=index_dir)
    questions = read_questions(args.questions)[: args.limit]
    if args.unanswerable:
        questions += read_questions(args.unanswerable)
    bars = ProgressBars()
    retriever = prepare_retriever(args.articles, settings, on_progress=bars)
    bars.close()
    metrics = evaluate(retriever, questions, mode=args.mode, progress=True)
    if args.json:
        print(json.dumps(asdict(metrics), indent=2))
    else:
        print(f"{args.questions} on {args.articles} (mode {args.mode or settings.mode}, "
              f"index {index_dir})")
        print(metrics.table())
    return 0


def _common(parser: argparse.ArgumentParser, corpus: bool = True) -> None:
    parser.add_argument("--index", type=Path, help="index folder (default: index)")
    if corpus:
        parser.add_argument("--corpus", type=Path, help="articles folder or file (default: corpus)")
    parser.add_argument("--model", help="sentence-transformers model name or path "
                        "(default: the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--precision", choices=PRECISIONS, help="embedding precision (default fp32)")


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
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("ask", help="answer a question with quotes",
                       description="Answer a question with verbatim quotes from the articles.")
    p.add_argument("question")
    _common(p, corpus=False)
    p.add_argument("-k", type=int, default=None, help="number of quotes (default 5)")
    p.add_argument("--mode", choices=MODES, help="retrieval mode (default hybrid)")
    p.add_argument("--article", action="append", help="only this article id or title (repeatable)")
    p.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="articles on or after")
    p.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="articles on or before")
    p.add_argument("--json", action="store_true", help="print the Answer as JSON")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("info", help="describe the live index",
                       description="Print the live index: generation, model, counts, size.")
    _common(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("eval", help="measure retrieval quality on a question file",
                       description="Build (or reuse) an index for ARTICLES, ask every question "
                       "and report recall@1/5/10, mrr@10, highlight@1, abstention and latency.")
    p.add_argument("--articles", type=Path, required=True, help="articles file or folder")
    p.add_argument("--questions", type=Path, required=True, help="questions .jsonl")
    p.add_argument("--unanswerable", type=Path, help="unanswerable questions .jsonl")
    _common(p, corpus=False)
    p.add_argument("--mode", choices=MODES, help="retrieval mode (default hybrid)")
    p.add_argument("--limit", type=int, help="only the first N questions")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=cmd_eval)
    return root


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
