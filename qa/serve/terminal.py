"""What the command line prints: answers, escaped outside text, progress bars; and the
Settings its flags ask for (shared by `qa` and `qa chat`)."""
from __future__ import annotations

import argparse
import json
import re

from qa.config import Settings
from qa.serve.render import (
    ABSTAIN_NOTE, CLOSEST_HEAD, CLOSEST_MATCH, CLOSEST_SHOWN, EMPTY_NOTE, LOW_CONFIDENCE_NOTE,
    MAY_ANSWER,
)
from qa.types import Answer, Quote


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        corpus_dir=getattr(args, "corpus", None),
        index_dir=getattr(args, "index", None),
        model=getattr(args, "model", None),
        precision=getattr(args, "precision", None),
        index_factory=getattr(args, "faiss", None),
        sentence_vectors=getattr(args, "sentence_vectors", None),
        passage_vectors=getattr(args, "passage_vectors", None),
        reranker=None if getattr(args, "rerank", None) is None else args.rerank == "on",
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
    """The answer as a terminal reads it: numbered quotes, each with its citation.

    A low-confidence answer says so and labels each quote "may answer" (marked as usual);
    an abstention lists its closest passages as "closest match", nothing in them marked.
    """
    lines = []
    label = ""
    if answer.read_with:  # a follow-up: which earlier question it was read with
        lines.append(printable(f"(read with your earlier question: {answer.read_with})"))
    if answer.read_time:  # time words restricted the dates searched
        lines.append(printable(f"(read as asking about {answer.read_time})"))
    if answer.abstained:
        lines.append(ABSTAIN_NOTE)
        if answer.closest:
            lines.append(CLOSEST_HEAD)
        label = f"  [{CLOSEST_MATCH}]"
    elif not answer.quotes:
        lines.append(EMPTY_NOTE)
    elif answer.confidence == "low":
        lines.append(LOW_CONFIDENCE_NOTE)
        label = f"  [{MAY_ANSWER}]"
    for number, quote in enumerate(answer.quotes or answer.closest[:CLOSEST_SHOWN], start=1):
        cite = printable(f"{quote.title} — {quote.publisher}"
                         + (f", {quote.date}" if quote.date else ""))
        lines.append(f"\n[{number}] {cite}  (relevance {quote.score:.2f}){label}")
        if quote.url:
            lines.append(f"    {printable(quote.url)}")
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
