"""The index folder: generation directories, the CURRENT pointer, the manifest, the lock.

index/
  CURRENT            one line: the live generation's folder name (replaced atomically)
  gen-000007/        the live generation: immutable once renamed into place
  gen-000006/        the previous one, kept one build longer for readers still opening it
  .tmp-gen-000008/   a build in progress (or a crashed one: removed by the next build)
  .build.lock        the one-writer lock (filelock; released when its holder dies)
"""
from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

from qa.errors import REBUILD_HINT, BuildLockedError, IndexCorruptError, IndexMissingError

FORMAT_VERSION = 1
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
LOCK = ".build.lock"
DENSE_FILE = "dense.faiss"
VECTORS_FILE = "vectors.npy"
SENTENCE_VECTORS_FILE = "sentence_vectors.npy"
DB_FILE = "passages.sqlite"
LEXICAL_DIR = "bm25"
_GENERATION = re.compile(r"^gen-(\d{6})$")
_TEMP_PREFIX = ".tmp-"
# Sections (and their keys) every manifest has; loading checks them before use.
_MANIFEST_SHAPE = {
    "model": ["id", "fingerprint", "dim"],
    "chunker": [],
    "counts": ["articles", "passages", "sentences"],
    "articles": [],
}


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """fsync every file and folder under `path` (and `path` itself)."""
    for folder, _, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))


def generation_name(number: int) -> str:
    return f"gen-{number:06d}"


def generations(index_dir: Path) -> list[str]:
    """Finished generation folders, oldest first."""
    if not index_dir.is_dir():
        return []
    names = [p.name for p in index_dir.iterdir() if p.is_dir() and _GENERATION.match(p.name)]
    return sorted(names)


def next_generation(index_dir: Path) -> str:
    numbers = [int(_GENERATION.match(n).group(1)) for n in generations(index_dir)]
    current = read_current(index_dir, required=False)
    if current and _GENERATION.match(current):
        numbers.append(int(_GENERATION.match(current).group(1)))
    return generation_name(max(numbers, default=0) + 1)


def read_current(index_dir: Path, required: bool = True) -> str | None:
    """The live generation's folder name, checked to exist."""
    pointer = index_dir / CURRENT
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        if not required:
            return None
        if generations(index_dir):
            raise IndexCorruptError(
                f"{pointer} is missing, so no generation is marked live; {REBUILD_HINT}"
            ) from None
        raise IndexMissingError(
            f"no index in {index_dir}/ yet; build it with `python -m qa index`"
        ) from None
    except (UnicodeDecodeError, IsADirectoryError):
        name = "<unreadable>"
    if not _GENERATION.match(name) or not (index_dir / name).is_dir():
        if not required:
            return None
        raise IndexCorruptError(
            f"{pointer} names {name!r}, which is not a generation folder; {REBUILD_HINT}"
        )
    return name


def switch_current(index_dir: Path, name: str) -> None:
    """Atomically make `name` the live generation (write, fsync, os.replace, fsync dir)."""
    temp = index_dir / f"{_TEMP_PREFIX}{CURRENT}"
    with temp.open("w", encoding="utf-8") as handle:
        handle.write(name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, index_dir / CURRENT)
    fsync_dir(index_dir)


def temp_generation(index_dir: Path, name: str) -> Path:
    """A fresh folder to write generation `name` into before it is renamed into place."""
    path = index_dir / f"{_TEMP_PREFIX}{name}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def publish(temp: Path, index_dir: Path, name: str) -> Path:
    """Make a finished temp folder a generation: read-only files, fsync, atomic rename.

    Files are made read-only because readers memory-map them: an edit in place would
    change (or, if truncated, crash) a running search. Only the folder is renamed, so a
    crash leaves either the temp folder (removed later) or a complete generation.
    """
    for folder, _, files in os.walk(temp):
        for file in files:
            os.chmod(os.path.join(folder, file), 0o444)
    fsync_tree(temp)
    final = index_dir / name
    os.replace(temp, final)
    fsync_dir(index_dir)
    return final


def stray_temps(index_dir: Path) -> list[str]:
    """Leftovers of crashed builds (temp generation folders, a half-written CURRENT)."""
    if not index_dir.is_dir():
        return []
    return sorted(p.name for p in index_dir.iterdir() if p.name.startswith(_TEMP_PREFIX))


def _remove(path: Path) -> None:
    """Delete a file or folder; a folder is first renamed to a temp name, atomically.

    A crash halfway through deleting then leaves a `.tmp-` folder (which the next build
    removes), never a half-deleted folder that still looks like a generation.
    """
    if path.is_dir() and not path.name.startswith(_TEMP_PREFIX):
        doomed = path.with_name(f"{_TEMP_PREFIX}old-{path.name}")
        shutil.rmtree(doomed, ignore_errors=True)
        os.replace(path, doomed)
        path = doomed
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_temps(index_dir: Path) -> list[str]:
    """Delete what crashed builds left behind. Call only while holding the build lock."""
    names = stray_temps(index_dir)
    for name in names:
        _remove(index_dir / name)
    return names


def remove_stale(index_dir: Path, keep: Iterable[str | None]) -> list[str]:
    """Delete temp folders of crashed builds and every generation not in `keep`.

    Builds keep the new generation and the one it replaced: a reader that read the old
    `CURRENT` a moment before the switch can still open that generation. Readers that
    already opened a generation do not need its files any more (everything is opened at
    load time; on POSIX, open files and memory maps outlive the directory entry).
    Call only while holding the build lock.
    """
    keep = {name for name in keep if name}
    removed = remove_temps(index_dir)
    for name in generations(index_dir):
        if name not in keep:
            _remove(index_dir / name)
            removed.append(name)
    return removed


def file_sizes(folder: Path) -> dict[str, int]:
    """Every file under `folder` (but the manifest) -> its size: recorded in the manifest,
    so a missing or truncated file is named on load before anything reads it."""
    sizes = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            sizes[path.relative_to(folder).as_posix()] = path.stat().st_size
    return sizes


def write_manifest(folder: Path, manifest: dict) -> None:
    with (folder / MANIFEST).open("w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexCorruptError(f"{path} is missing; {REBUILD_HINT}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"{path} is not valid JSON ({exc}); {REBUILD_HINT}") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        found = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise IndexCorruptError(
            f"{path} has format version {found!r}, this Verbatim reads {FORMAT_VERSION}; "
            f"{REBUILD_HINT}"
        )
    missing = []
    for section, keys in _MANIFEST_SHAPE.items():
        value = manifest.get(section)
        if isinstance(value, dict):
            missing += [f"{section}.{key}" for key in keys if key not in value]
        else:
            missing.append(section)
    if missing:
        raise IndexCorruptError(f"{path} lacks {', '.join(missing)}; {REBUILD_HINT}")
    return manifest


@contextmanager
def build_lock(index_dir: Path, wait_seconds: float = 0):
    """Hold the one-writer lock; a second build waits up to `wait_seconds`, then refuses."""
    from filelock import FileLock, Timeout

    index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(index_dir / LOCK))
    try:
        lock.acquire(timeout=wait_seconds)
    except Timeout:
        waited = f"still running after waiting {wait_seconds:g} s" if wait_seconds > 0 else ""
        raise BuildLockedError(
            f"another build is running on {index_dir}/ (it holds {index_dir / LOCK})"
            + (f", {waited}" if waited else "")
            + "; let it finish, or pass --wait SECONDS to wait for it"
        ) from None
    try:
        yield
    finally:
        lock.release()
