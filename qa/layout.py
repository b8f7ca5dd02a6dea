"""The index folder: generation directories, the CURRENT pointer, the manifest, the lock."""
from __future__ import annotations

import json
import os
import re
import shutil
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


def remove_stale(index_dir: Path, keep: str) -> list[str]:
    """Delete temp folders of crashed builds and every generation but `keep`."""
    removed = []
    for path in index_dir.iterdir():
        stale_temp = path.name.startswith(_TEMP_PREFIX)
        old_generation = _GENERATION.match(path.name) and path.name != keep
        if stale_temp or old_generation:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


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
        raise BuildLockedError(
            f"another build is running on {index_dir}/ (lock {index_dir / LOCK}); "
            "wait for it to finish, or pass --wait SECONDS"
        ) from None
    try:
        yield
    finally:
        lock.release()
