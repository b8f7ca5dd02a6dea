"""Uploaded files -> new articles in the corpus folder (and files removed from it), without
ever touching anything outside it."""
from __future__ import annotations

import errno
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from qa.config import ARTICLE_SUFFIXES, Settings, human_size
from qa.errors import QAError
from qa.text.ingest import NotText, decode_text

MAX_UPLOAD_BYTES = Settings().max_upload_bytes
MAX_NAME_CHARS = 120
_UNSAFE = re.compile(r"[^\w .()+-]+")


class UploadError(QAError):
    """An upload was refused; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Saved:
    """One uploaded file now in the corpus: the name it was given and where it went."""

    original: str
    name: str
    path: Path
    bytes: int


def safe_name(name: str) -> str:
    """A plain file name for `name`: its last path part, no hidden dot, no odd characters.

    Raises:
        UploadError: nothing usable is left, or the type is not an article type.
    """
    base = unicodedata.normalize("NFC", str(name)).replace("\\", "/").split("/")[-1]
    # Leading dots stay until the type is split off: ".txt" is a name-less file, not "txt".
    base = _UNSAFE.sub("_", base).strip(" ").rstrip(". ")
    types = ", ".join(ARTICLE_SUFFIXES)
    stem, dot, suffix = base.rpartition(".")
    if not dot or not suffix:
        raise UploadError(f"{name!r} has no file type; upload {types} files")
    suffix = "." + suffix.lower()
    if suffix not in ARTICLE_SUFFIXES:
        raise UploadError(f"{name!r}: {suffix} is not an article type; upload {types} files")
    stem = stem.strip(" .")[: MAX_NAME_CHARS - len(suffix)]
    if not stem:
        raise UploadError(
            f"{name!r} has no file name before {suffix}; rename it and upload again"
        )
    return stem + suffix


def too_big(name: str, size: int, limit: int) -> UploadError:
    """The error for a file over the size limit."""
    return UploadError(
        f"{name!r} is {human_size(size)}; the limit is {human_size(limit)} per file "
        "(split it, or copy it into the corpus folder yourself)"
    )


def check_content(data: bytes, name: str, limit: int = MAX_UPLOAD_BYTES) -> None:
    """Refuse files that are too big, or that the corpus reader would skip as not text."""
    if len(data) > limit:
        raise too_big(name, len(data), limit)
    try:
        decode_text(data)
    except NotText as exc:
        raise UploadError(f"{name!r} is not an article: {exc}") from exc


def _free_name(folder: Path, name: str) -> str:
    """`name`, or `stem (2).ext`, `stem (3).ext`… if that is taken: uploads never overwrite."""
    stem, suffix = os.path.splitext(name)
    candidate, n = name, 1
    while (folder / candidate).exists() or (folder / candidate).is_symlink():
        n += 1
        candidate = f"{stem} ({n}){suffix}"
    return candidate


def save_upload(data: bytes, original_name: str, corpus_dir: Path,
                limit: int = MAX_UPLOAD_BYTES) -> Saved:
    """Write one uploaded file into `corpus_dir` under a safe, unused name.

    Args:
        data: the file's bytes.
        original_name: the name the user's browser sent (untrusted).
        corpus_dir: the corpus folder (created if missing).
        limit: largest accepted size in bytes.

    Raises:
        UploadError: bad name, type, size or content.
    """
    name = safe_name(original_name)
    check_content(data, original_name, limit)
    folder = Path(corpus_dir)
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    for _ in range(100):
        name = _free_name(folder, name)
        path = root / name
        if path.parent != root:  # cannot happen after safe_name; checked anyway
            raise UploadError(f"{original_name!r} would land outside the corpus folder")
        try:
            # O_EXCL | O_NOFOLLOW: never overwrite, never follow a planted symlink.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            continue  # taken meanwhile by a concurrent upload; pick the next name
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                continue
            raise UploadError(f"could not save {original_name!r}: {exc.strerror}") from exc
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return Saved(original=str(original_name), name=name, path=path, bytes=len(data))
    raise UploadError(f"could not find a free name for {original_name!r} in {folder}")


def save_file(path: str | Path, corpus_dir: Path, original_name: str | None = None,
              limit: int = MAX_UPLOAD_BYTES) -> Saved:
    """`save_upload` for a file already on disk (e.g. in Gradio's upload cache)."""
    path = Path(path)
    name = original_name or path.name
    size = path.stat().st_size
    if size > limit:  # say so before reading a huge file into memory
        raise too_big(name, size, limit)
    return save_upload(path.read_bytes(), name, corpus_dir, limit)


def corpus_listing(corpus_dir: Path) -> dict[str, Path]:
    """Every file (or symbolic link) in the corpus folder that the corpus reader sees or
    skips: the name shown (relative, `/`-separated, non-UTF-8 bytes as `\\xe9`) -> path.

    Links are listed, never followed: removing one removes the link.
    """
    from qa.text.ingest import shown_name

    root = Path(corpus_dir)
    if not root.is_dir():
        return {}
    found: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        links = [d for d in dirs if (here / d).is_symlink()]
        for name in [*files, *links]:
            if not name.startswith("."):
                path = here / name
                found[shown_name(path.relative_to(root).as_posix())] = path
    return dict(sorted(found.items()))


def remove_file(corpus_dir: Path, name: str) -> str:
    """Delete the corpus file listed as `name` (see `corpus_listing`); returns the name.

    Only a listed name is accepted, so nothing outside the corpus folder can be named.

    Raises:
        UploadError: no such file in the corpus folder, or it could not be deleted.
    """
    path = corpus_listing(corpus_dir).get(name)
    if path is None:
        raise UploadError(f"{name!r} is not a file in the corpus folder")
    try:
        path.unlink()
    except OSError as exc:
        raise UploadError(f"could not remove {name!r}: {exc.strerror or exc}") from exc
    return name
