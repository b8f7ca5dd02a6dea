"""Where a Retriever gets its generation: the live one on disk (following CURRENT), or a
fixed one (assembled in memory by tests, or pinned by a tool)."""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Protocol

from qa.errors import QAError
from qa.index import layout
from qa.index.generation import Expected, Generation

log = logging.getLogger(__name__)


class IndexSource(Protocol):
    """Hands out the generation to search; may switch between calls, never during one."""

    @property
    def generation(self) -> Generation: ...


class StaticIndex:
    """Always the same generation."""

    def __init__(self, generation: Generation) -> None:
        self.generation = generation


class LiveIndex:
    """The generation `index_dir/CURRENT` names, re-checked on every access.

    A new generation is opened outside the lock, so searches never wait for a switch, and
    searches already running keep the generation object they started with. A new
    generation that fails its checks is reported once and not served; the old one keeps
    answering.
    """

    def __init__(self, index_dir: Path, expected: Expected | None = None) -> None:
        """Open the live generation now.

        Raises:
            IndexMissingError, IndexCorruptError, IndexMismatchError: nothing to serve.
        """
        self.index_dir = Path(index_dir)
        self.expected = expected
        self._lock = threading.Lock()
        self._generation: Generation | None = None
        self._refused: str | None = None
        self.refresh()

    def refresh(self) -> bool:
        """Switch to the generation CURRENT names, if it changed. True if it switched.

        Raises:
            IndexCorruptError, IndexMismatchError: CURRENT names a generation that cannot
                be served (raised once per name; later calls keep the old generation).
        """
        name = layout.read_current(self.index_dir)
        live = self._generation
        if live is not None and name in (live.name, self._refused):
            return False
        try:
            generation = Generation.open(self.index_dir / name, self.expected)
        except QAError:
            self._refused = name  # re-checking a damaged generation on every search is waste
            raise
        with self._lock:
            if self._generation is live:  # another thread may have switched meanwhile
                self._generation = generation
        self._refused = None
        log.info("serving index generation %s", name)
        return True

    @property
    def generation(self) -> Generation:
        """The live generation, after checking CURRENT."""
        try:
            self.refresh()
        except QAError as exc:
            if self._generation is None:
                raise
            log.error("keeping generation %s: %s", self._generation.name, exc)
        return self._generation
