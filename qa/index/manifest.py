"""A generation's manifest: typed, validated on read, with every file's size and checksum.

`manifest.json` is the last file written into a generation; it records what the files
are (model, chunker, dense backend, counts), how they were built, and each file's size and
SHA-256, so damage is named before any library reads a damaged file.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pydantic
from pydantic import ConfigDict

from qa.errors import REBUILD_HINT, IndexCorruptError

FORMAT_VERSION = 2
MANIFEST = "manifest.json"

# Strict: a manifest is written by this code, so anything else in it is damage or tampering.
_STRICT = pydantic.with_config(ConfigDict(strict=True, extra="forbid"))


@_STRICT
@dataclass(frozen=True, slots=True)
class ModelInfo:
    """The embedding model the vectors come from; `fingerprint` hashes its files."""

    id: str
    fingerprint: str
    dim: int
    normalized: bool = True
    metric: str = "inner_product"
    # What the vectors were computed in ("fp32", "bf16", "int8"); a build in another precision
    # re-embeds. Questions need not match (bf16 and fp32 question cosines agree to 0.99998).
    precision: str = "fp32"
    # How the sentence vectors were made (Settings.sentence_vectors): "separate" (each
    # sentence embedded on its own) or "late" (pooled from the passage's forward pass).
    sentence_vectors: str = "separate"
    # How the passage vectors were made (Settings.passage_vectors): "encoded" (each passage
    # embedded) or "pooled" (the word-piece-weighted mean of its sentences' vectors).
    passage_vectors: str = "encoded"


@_STRICT
@dataclass(frozen=True, slots=True)
class ChunkerInfo:
    """How articles were cut into passages and sentences; a reader must cut alike."""

    max_tokens: int
    overlap_sentences: int
    min_tokens: int
    splitter: str = "blingfire"
    context: str = "title"
    sentence_context: str = "title"


@_STRICT
@dataclass(frozen=True, slots=True)
class DenseInfo:
    """Which dense backend holds the passage vectors, and its index type."""

    backend: str
    factory: str


@_STRICT
@dataclass(frozen=True, slots=True)
class Counts:
    articles: int
    passages: int
    sentences: int


@_STRICT
@dataclass(frozen=True, slots=True)
class BuildStats:
    """What the build that wrote the generation did (see BuildReport)."""

    full: bool
    added: int
    changed: int
    removed: int
    kept: int
    reembedded: int
    embedded_passages: int
    embedded_sentences: int


def embedded_phrase(passages: int, sentences: int, passage_vectors: str) -> str:
    """What a build's model did, for its summary: "12 passages embedded", or with pooled
    passage vectors "40 sentences embedded, 12 passages pooled from them"."""
    if passage_vectors == "pooled":
        return f"{sentences} sentences embedded, {passages} passages pooled from them"
    return f"{passages} passages embedded"


@_STRICT
@dataclass(frozen=True, slots=True)
class FileEntry:
    size: int
    sha256: str


@_STRICT
@dataclass(frozen=True, slots=True)
class Manifest:
    """Everything a reader checks before it trusts a generation's files."""

    format_version: int
    generation: str
    previous: str | None
    built_at: str
    build_seconds: float
    corpus_dir: str
    model: ModelInfo
    chunker: ChunkerInfo
    dense: DenseInfo
    counts: Counts
    build: BuildStats
    # Path relative to the generation folder (posix) -> size and checksum.
    files: Mapping[str, FileEntry]
    # Article id -> content hash (what an incremental build compares).
    articles: Mapping[str, str]


_ADAPTER = pydantic.TypeAdapter(Manifest)


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def file_entries(folder: Path) -> dict[str, FileEntry]:
    """Every file under `folder` but the manifest -> its size and SHA-256."""
    entries = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            entries[path.relative_to(folder).as_posix()] = FileEntry(
                path.stat().st_size, file_sha256(path)
            )
    return entries


def write_manifest(folder: Path, manifest: Manifest) -> None:
    data = _ADAPTER.dump_python(manifest, mode="json")
    with (folder / MANIFEST).open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)


def _inside(name: str) -> bool:
    """Is `name` a plain relative path that stays inside the generation folder?"""
    path = PurePosixPath(name)
    return (bool(name) and "\\" not in name and not path.is_absolute()
            and ".." not in path.parts and name == path.as_posix())


def read_manifest(folder: Path) -> Manifest:
    """The validated manifest of the generation in `folder`.

    Raises:
        IndexCorruptError: missing, not JSON, another format version, or not a manifest
            this code wrote (a wrong type, an unknown key, a path outside the folder).
    """
    path = folder / MANIFEST
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
    except FileNotFoundError:
        raise IndexCorruptError(f"{path} is missing; {REBUILD_HINT}") from None
    except OSError as exc:
        raise IndexCorruptError(f"{path} is unreadable ({exc.strerror}); {REBUILD_HINT}") \
            from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise IndexCorruptError(f"{path} is not valid JSON ({exc}); {REBUILD_HINT}") from None
    found = data.get("format_version") if isinstance(data, dict) else None
    if found != FORMAT_VERSION:
        raise IndexCorruptError(
            f"{path} has format version {found!r}, this Verbatim reads {FORMAT_VERSION}; "
            f"{REBUILD_HINT}"
        )
    try:
        manifest = _ADAPTER.validate_json(raw)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the top level"
        raise IndexCorruptError(
            f"{path} is not a valid manifest ({where}: {first['msg']}); {REBUILD_HINT}"
        ) from None
    outside = [name for name in manifest.files if not _inside(name) or name == MANIFEST]
    if outside:
        raise IndexCorruptError(
            f"{path} lists a file outside its generation ({outside[0]!r}); {REBUILD_HINT}"
        )
    if manifest.generation != folder.name:
        raise IndexCorruptError(
            f"{path} describes generation {manifest.generation!r}, not {folder.name!r}; "
            f"{REBUILD_HINT}"
        )
    return manifest


def check_files(folder: Path, manifest: Manifest, checksums: bool) -> None:
    """Raise IndexCorruptError naming the first file that is missing, resized or (with
    `checksums`) changed since the generation was written."""
    for name, entry in manifest.files.items():
        file = folder / name
        try:
            found = file.lstat()
        except FileNotFoundError:
            raise IndexCorruptError(f"{file} is missing; {REBUILD_HINT}") from None
        if not file.is_file() or file.is_symlink():
            raise IndexCorruptError(f"{file} is not a regular file; {REBUILD_HINT}")
        if found.st_size != entry.size:
            raise IndexCorruptError(
                f"{file} is damaged ({found.st_size} bytes, the manifest says {entry.size}: "
                f"truncated or overwritten); {REBUILD_HINT}"
            )
        if checksums and file_sha256(file) != entry.sha256:
            raise IndexCorruptError(
                f"{file} is damaged (its checksum differs from the manifest's: overwritten "
                f"in place); {REBUILD_HINT}"
            )


def total_bytes(manifest: Manifest) -> int:
    return sum(entry.size for entry in manifest.files.values())
