"""Errors with messages a user can act on."""
from __future__ import annotations

REBUILD_HINT = "rebuild it with `python -m qa index --full`"


class QAError(Exception):
    """Base class for every error Verbatim raises on purpose."""


class ConfigError(QAError, ValueError):
    """A bad argument or setting (the message names the value)."""


class CorpusError(QAError):
    """The corpus cannot be indexed (missing folder, no readable articles)."""


class IndexMissingError(QAError):
    """No index has been built yet."""


class IndexCorruptError(QAError):
    """The index on disk is damaged; the message names the file and the fix."""


class IndexMismatchError(QAError):
    """The index was built with another model or chunker than the running settings."""


class BuildLockedError(QAError):
    """Another build holds the index lock."""


class ClusterError(QAError):
    """The Ray cluster cannot be reached, refused us, or failed the job (`--engine ray`)."""


class IndexWriteError(QAError):
    """A build could not write its new generation (a full disk, permissions); the live
    generation is untouched."""


class ReaderError(QAError):
    """The shipped reader model is missing or damaged; the message names the file."""
