"""The index folder: generation directories, the CURRENT pointer, the lock, atomic publish.

index/
  CURRENT            one line: the live generation's folder name (replaced atomically)
  gen-000007/        the live generation: immutable once renamed into place
  gen-000006/        the previous one, kept one build longer for readers still opening it
  .tmp-gen-000008/   a build in progress (or a crashed one: removed by the next build)
  .build.lock        the one-writer lock (filelock; released when its holder dies)
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from qa.errors import REBUILD_HINT, BuildLockedError, IndexCorruptError, IndexMissingError
from qa.index.manifest import Manifest, file_entries, write_manifest

CURRENT = "CURRENT"
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


@dataclass(slots=True)
class NewGeneration:
    """A generation being written (see `new_generation`): files go into `path`."""

    name: str
    path: Path
    previous: str | None
    manifest: Manifest | None = None

    def commit(self, manifest: Manifest) -> Manifest:
        """Seal the generation: record every file's size and checksum in its manifest.

        Call once, after the last file is written; returns the manifest as written.
        """
        if self.manifest is not None:
            raise RuntimeError(f"generation {self.name} is already committed")
        if (manifest.generation, manifest.previous) != (self.name, self.previous):
            raise ValueError(
                f"manifest of {manifest.generation} (previous {manifest.previous}) committed "
                f"into {self.name} (previous {self.previous})"
            )
        self.manifest = dataclasses.replace(manifest, files=file_entries(self.path))
        write_manifest(self.path, self.manifest)
        return self.manifest


@contextmanager
def new_generation(index_dir: Path, on_published: Callable[[], None] | None = None
                   ) -> Iterator[NewGeneration]:
    """Write a new generation and make it live, crash-safely. Hold `build_lock` around it.

    Inside the block, write the files into `gen.path` (a temp folder beside the live
    generation) and call `gen.commit(manifest)` last. On leaving the block the folder is
    fsynced and renamed into place, CURRENT is switched with an atomic `os.replace`, and
    generations older than the one replaced are removed. An exception inside the block (a
    full disk, Ctrl-C) removes the temp folder; a crash at any moment leaves the previous
    generation live, and the next build removes what is left. `on_published` runs once the
    new folder is in place, just before CURRENT switches to it.
    """
    previous = read_current(index_dir, required=False)
    name = next_generation(index_dir)
    gen = NewGeneration(name, temp_generation(index_dir, name), previous)
    try:
        yield gen
        if gen.manifest is None:
            raise RuntimeError(f"generation {name} was written without a manifest (commit it)")
        publish(gen.path, index_dir, name)
    except BaseException:
        shutil.rmtree(gen.path, ignore_errors=True)
        raise
    if on_published is not None:
        on_published()
    switch_current(index_dir, name)
    remove_stale(index_dir, keep=(name, previous))
