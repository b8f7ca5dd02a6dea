"""Corpus files -> Articles: one reader per format, bad files skipped with a reason."""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from qa import clean
from qa.errors import CorpusError
from qa.types import Article

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Document:
    """An article as read from disk, before corpus-wide cleaning."""

    id: str
    title: str
    paragraphs: tuple[str, ...]
    source: str
    date: str | None = None
    url: str | None = None
    # Where it was read, for messages: the file, or `file:line` for a .jsonl record.
    origin: str = ""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file (or a line of one) left out of the index, and why.

    `reason` names the kind of problem (skips are counted by it); `detail` says more.
    """

    source: str
    reason: str
    detail: str = ""

    @property
    def message(self) -> str:
        return f"{self.reason} ({self.detail})" if self.detail else self.reason


@dataclass(frozen=True, slots=True)
class Corpus:
    """The cleaned articles of a folder plus what was skipped on the way."""

    articles: tuple[Article, ...]
    skipped: tuple[Skipped, ...]


class NotText(Exception):
    """These bytes are not an article's text; the message says why (for a skip or a
    refused upload)."""


def decode_text(data: bytes) -> str:
    """The text of an article file's bytes: UTF-8 (a BOM is fine), not binary, not blank.

    Raises:
        NotText: empty, binary (NUL bytes) or not UTF-8.
    """
    if b"\x00" in data[:8192]:
        raise NotText("binary file (contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotText(f"not UTF-8 (byte {exc.start}); save it as UTF-8") from exc
    if not text.strip():
        raise NotText("empty file")
    return text


class _SkipFile(Exception):
    """Internal: this file cannot be read; the message is the reason."""


def read_text(path: Path) -> str:
    """The file's text as UTF-8; raises _SkipFile for empty, binary or non-UTF-8 files."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _SkipFile(f"larger than {MAX_FILE_BYTES // 2**20} MB")
        data = path.read_bytes()
    except OSError as exc:
        raise _SkipFile(f"unreadable ({exc.strerror or exc})") from exc
    try:
        return decode_text(data)
    except NotText as exc:
        raise _SkipFile(str(exc)) from exc


def read_txt(path: Path, rel: str) -> Iterator[Document]:
    """Plain text: the first non-blank line is the title, the rest is the article."""
    lines = clean.line_paragraphs(read_text(path))
    title, body = lines[0], lines[1:]
    if not body:
        raise _SkipFile("only a title line, no text")
    yield Document(id=rel, title=title, paragraphs=tuple(body), source=rel)


def read_markdown(path: Path, rel: str) -> Iterator[Document]:
    """Markdown: a leading `# heading` is the title, else the file name."""
    text = read_text(path)
    first = text.lstrip().split("\n", 1)[0]
    paragraphs = clean.markdown_paragraphs(text)
    if first.startswith("# ") and len(paragraphs) > 1:
        title, paragraphs = paragraphs[0], paragraphs[1:]
    else:
        title = path.stem.replace("_", " ")
    yield Document(id=rel, title=title, paragraphs=tuple(paragraphs), source=rel)


def read_html(path: Path, rel: str) -> Iterator[Document]:
    """HTML news page: main text, title and date extracted by trafilatura."""
    import trafilatura  # heavy; only needed when the corpus has HTML

    doc = trafilatura.bare_extraction(
        read_text(path), with_metadata=True, include_comments=False, include_tables=False
    )
    text = getattr(doc, "text", None) if doc is not None else None
    if not text or not text.strip():
        raise _SkipFile("no article text found in the HTML")
    title = (getattr(doc, "title", None) or path.stem).strip()
    yield Document(
        id=rel,
        title=title,
        paragraphs=tuple(clean.line_paragraphs(text)),
        source=rel,
        date=clean.normalize_date(getattr(doc, "date", None)),
        url=getattr(doc, "url", None),
    )


def valid_text(text: str) -> bool:
    """Can `text` be stored and embedded? (JSON can carry lone surrogates; UTF-8 cannot.)"""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _record_problem(record: object) -> str | None:
    """Why a parsed JSON line is not an article record, or None if it is one."""
    if not isinstance(record, dict):
        return f"a JSON object with id, title and text is expected, got {type(record).__name__}"
    for key in ("id", "text"):
        if key not in record:
            return f"missing {key!r}"
    wanted = {"id": (str, int), "title": (str, type(None)), "text": (str,),
              "url": (str, type(None)), "date": (str, int, type(None))}
    for key, types in wanted.items():
        value = record.get(key)
        if isinstance(value, bool) or not isinstance(value, types):
            kind = "text or a number" if int in types else "text"
            return f"{key} must be {kind}, got {type(value).__name__}"
        if isinstance(value, str) and not valid_text(value):
            return f"{key} is not valid Unicode (it holds a lone surrogate escape)"
    return None


def _json_error(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)[:200]


def read_jsonl(path: Path, rel: str) -> Iterator[Document | Skipped]:
    """One article per line: `id`, `title`, `text`, optional `url`, `date`.

    A bad line is skipped with its line number; the rest of the file still counts.
    """
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{rel}:{number}"
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:  # bad JSON, a huge number, deep nesting
            yield Skipped(where, "not an article record", _json_error(exc))
            continue
        problem = _record_problem(record)
        if problem:
            yield Skipped(where, "not an article record", problem)
            continue
        paragraphs = clean.line_paragraphs(record["text"])
        if not paragraphs:
            yield Skipped(where, "empty text")
            continue
        doc_id = str(record["id"])
        yield Document(
            id=doc_id,
            title=(record.get("title") or doc_id).strip() or doc_id,
            paragraphs=tuple(paragraphs),
            source=rel,
            date=clean.normalize_date(record.get("date")),
            url=record.get("url"),
            origin=where,
        )


READERS: dict[str, Callable[[Path, str], Iterator[Document | Skipped]]] = {
    ".txt": read_txt,
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".html": read_html,
    ".htm": read_html,
    ".jsonl": read_jsonl,
}


def corpus_files(root: Path) -> list[Path]:
    """Every non-hidden file under `root` (or `root` itself if it is a file), sorted."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise CorpusError(f"corpus folder {root} does not exist; create it and add articles")
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def shown_name(name: str) -> str:
    """A file name as text that can be shown and stored: bytes that are not UTF-8 (which
    Python keeps as surrogate escapes) become `\\xe9`."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def read_documents(root: Path) -> tuple[list[Document], list[Skipped]]:
    """All documents under `root`; a file that cannot be read, for any reason, is skipped
    with the reason and the rest is read."""
    documents: list[Document] = []
    skipped: list[Skipped] = []
    seen_ids: set[str] = set()
    base = root if root.is_dir() else root.parent
    for path in corpus_files(root):
        rel = path.relative_to(base).as_posix()
        if not valid_text(rel):
            skipped.append(Skipped(shown_name(rel), "file name is not UTF-8",
                                   "rename the file"))
            continue
        reader = READERS.get(path.suffix.lower())
        if reader is None:
            skipped.append(Skipped(rel, f"unsupported type {path.suffix or '(none)'}"))
            continue
        try:
            for doc in reader(path, rel):
                if isinstance(doc, Skipped):
                    skipped.append(doc)
                    continue
                if doc.id in seen_ids:
                    skipped.append(Skipped(f"{rel}#{doc.id}", "duplicate article id"))
                    continue
                seen_ids.add(doc.id)
                documents.append(doc)
        except _SkipFile as exc:
            skipped.append(Skipped(rel, str(exc)))
        except Exception as exc:  # noqa: BLE001  a reader or its library failing on odd
            # input costs that file, never the build (the README promises bad files skip).
            log.warning("could not read %s", rel, exc_info=True)
            skipped.append(Skipped(rel, "could not be read",
                                   f"{type(exc).__name__}: {_json_error(exc)}"))
    return documents, skipped


def drop_duplicates(documents: Sequence[Document]) -> tuple[list[Document], list[Skipped]]:
    """One document per distinct text; the others are reported as duplicates.

    Of identical texts the one with the shortest file name is kept (`story.txt` rather
    than the `story (2).txt` a second upload makes), then the first read.
    """
    keep: dict[tuple[str, ...], int] = {}
    for i, doc in enumerate(documents):
        j = keep.get(doc.paragraphs)
        if j is None or (len(doc.source), doc.source) < (len(documents[j].source),
                                                        documents[j].source):
            keep[doc.paragraphs] = i
    kept = sorted(keep.values())
    skipped = [
        Skipped(doc.origin or doc.source, "duplicate",
                f"same text as {_origin(documents[keep[doc.paragraphs]])}")
        for i, doc in enumerate(documents) if keep[doc.paragraphs] != i
    ]
    return [documents[i] for i in kept], skipped


def _origin(doc: Document) -> str:
    return doc.origin or doc.source


def to_articles(documents: Sequence[Document]) -> tuple[list[Article], list[Skipped]]:
    """Corpus-wide cleaning: drop duplicates and repeated paragraphs, join the rest verbatim.

    A paragraph shared by several articles is boilerplate, but never all of an article:
    one whose every paragraph appears elsewhere (an article contained in an updated
    copy of it) keeps all but those repeated inside some article.
    """
    unique, skipped = drop_duplicates(documents)
    within, across = clean.find_repeats(doc.paragraphs for doc in unique)
    articles = []
    for doc in unique:
        kept = (clean.remove_boilerplate(doc.paragraphs, within | across)
                or clean.remove_boilerplate(doc.paragraphs, within))
        if not kept:
            skipped.append(Skipped(_origin(doc), "only boilerplate",
                                   "every paragraph repeats inside an article"))
            continue
        articles.append(
            Article(
                id=doc.id,
                title=doc.title,
                text=clean.join_paragraphs(kept),
                source=doc.source,
                date=doc.date,
                url=doc.url,
            )
        )
    return articles, skipped


def load_corpus(root: Path) -> Corpus:
    """Read, clean and return the articles under `root`."""
    documents, skipped = read_documents(Path(root))
    articles, dropped = to_articles(documents)
    skipped += dropped
    for item in skipped:
        log.warning("skipped %s: %s", item.source, item.message)
    return Corpus(articles=tuple(articles), skipped=tuple(skipped))
