"""`qa index --watch`: rebuild when files in the corpus folder appear, change or go."""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from qa.errors import BuildLockedError, CorpusError, QAError

log = logging.getLogger(__name__)

_EVENTS = ("created", "deleted", "modified", "moved")


def is_relevant(corpus_dir: Path, event_type: str, paths: list[str], is_directory: bool) -> bool:
    """Whether a file-system event can change what the corpus reads.

    Hidden files and folders (editor swap files, .git) are ignored, as the reader
    ignores them; so are directory "modified" events, which only echo changes to files.
    """
    if event_type not in _EVENTS or (is_directory and event_type == "modified"):
        return False
    for raw in paths:
        if not raw:
            continue
        try:
            parts = Path(raw).resolve().relative_to(corpus_dir).parts
        except ValueError:
            parts = (Path(raw).name,)  # a file moved out of (or into) the corpus
        if not any(part.startswith(".") for part in parts):
            return True
    return False


def watch_corpus(
    corpus_dir: Path,
    rebuild: Callable[[], object],
    *,
    debounce: float = 2.0,
    stop: threading.Event | None = None,
) -> None:
    """Call `rebuild()` after the corpus changes, once things have been quiet `debounce` s
    (`Settings.watch_debounce`).

    Runs until `stop` is set or Ctrl-C. A failed rebuild (for example another build holds
    the lock, or the folder is briefly empty) is reported and retried on the next change;
    changes made while a rebuild runs trigger another one afterwards.
    """
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    corpus_dir = Path(corpus_dir).resolve()
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder {corpus_dir} does not exist; --watch needs a folder")
    stop = stop or threading.Event()
    changed = threading.Event()
    last_change = [0.0]

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event) -> None:
            paths = [os.fsdecode(event.src_path), os.fsdecode(getattr(event, "dest_path", ""))]
            if is_relevant(corpus_dir, event.event_type, paths, event.is_directory):
                last_change[0] = time.monotonic()
                changed.set()

    observer = Observer()
    observer.schedule(Handler(), str(corpus_dir), recursive=True)
    observer.start()
    print(f"watching {corpus_dir} for changes (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        while not stop.is_set():
            if not changed.wait(timeout=0.2):
                continue
            quiet = time.monotonic() - last_change[0]
            if quiet < debounce:
                stop.wait(min(debounce - quiet, 0.5))
                continue
            changed.clear()
            try:
                rebuild()
            except BuildLockedError as exc:
                print(f"error: {exc}; trying again in {debounce:g} s", file=sys.stderr, flush=True)
                last_change[0] = time.monotonic()
                changed.set()
            except QAError as exc:
                print(f"error: {exc}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        observer.stop()
        observer.join(timeout=5)
