"""`qa chat`: a conversation on the command line; a follow-up is read with the turns before."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from qa.errors import QAError
from qa.types import Answer, Filters

# Earlier turns a follow-up is read with (as on the page).
MAX_TURNS = 8
HISTORY_LINES = 1000
HELP = ("Ask about the articles; a follow-up (\"And Baidu?\", \"When did they begin?\") is "
        "read with the questions before it.\n"
        ":new starts a new conversation, :quit (or Ctrl-D) ends.")


def history_file() -> Path:
    """Where the typed questions are kept between sessions (readline's up arrow)."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(state) / "verbatim" / "chat_history"


def _readline():
    try:
        import readline
    except ImportError:  # not on every platform: the chat works without it
        return None
    try:
        readline.read_history_file(history_file())
    except OSError:
        pass
    readline.set_history_length(HISTORY_LINES)
    return readline


def chat(answer: Callable[[str, tuple[tuple[str, Answer], ...]], Answer],
         show: Callable[[Answer], str], read: Callable[[str], str] = input,
         write: Callable[[str], None] = print) -> int:
    """Ask, answer, repeat. `answer(question, history)` answers; `show` formats."""
    readline = _readline() if read is input else None
    turns: list[tuple[str, Answer]] = []
    write(HELP)
    try:
        while True:
            try:
                line = read("? ").strip()
            except EOFError:
                write("")
                return 0
            except KeyboardInterrupt:  # a half-typed question: drop it, keep chatting
                write("")
                continue
            if not line:
                continue
            if line in (":quit", ":q", ":exit"):
                return 0
            if line == ":new":
                turns = []
                write("(a new conversation)")
                continue
            try:
                result = answer(line, tuple(turns))
            except QAError as exc:
                write(f"error: {exc}")
                continue
            write(show(result))
            turns = [*turns, (line, result)][-MAX_TURNS:]
    finally:
        if readline is not None:
            try:
                history_file().parent.mkdir(parents=True, exist_ok=True)
                readline.write_history_file(history_file())
            except OSError:
                pass


def cmd_chat(args) -> int:
    from qa.retriever import Retriever
    from qa.serve.terminal import format_answer, printable, settings_from

    retriever = Retriever.open(settings_from(args))
    filters = Filters(tuple(args.article or ()), args.date_from, args.date_to)
    tty = sys.stdout.isatty()
    return chat(
        lambda question, history: retriever.answer(question, args.k, mode=args.mode,
                                                   filters=filters, history=history),
        lambda result: format_answer(result, tty),
        write=lambda text: print(printable(text) if text.startswith("error:") else text,
                                 flush=True))
