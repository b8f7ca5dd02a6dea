"""Corpus files -> Articles: one reader per format, bad files skipped with a reason."""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.dates import normalize_date
from qa.text import clean
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
    # How many lines of a .jsonl this stands for; 0 for a whole file. Past the first few
    # bad lines of a file for one reason, one entry counts all the others.
    lines: int = 0

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

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason} ({detail})" if detail else reason)
        self.reason, self.detail = reason, detail


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
        raise NotText("not UTF-8", f"byte {exc.start}; save it as UTF-8") from exc
    if not text.strip():
        raise NotText("empty file")
    return text


class _SkipFile(Exception):
    """Internal: this file cannot be read, for `reason` (and `detail`)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def read_text(path: Path) -> str:
    """The file's text as UTF-8; raises _SkipFile for empty, binary or non-UTF-8 files."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _SkipFile(f"larger than {MAX_FILE_BYTES // 2**20} MB")
        data = path.read_bytes()
    except OSError as exc:
        raise _SkipFile("unreadable", str(exc.strerror or exc)) from exc
    try:
        return decode_text(data)
    except NotText as exc:
        raise _SkipFile(exc.reason, exc.detail) from exc


def read_txt(path: Path, rel: str) -> Iterator[Document]:
    """Plain text: the first non-blank line is the title, the rest is the article; but
    when that line is a section label over the headline (a scraped page's "New Alliances,
    New Era" above "Chinese AI Powerhouses Unite..."), the headline is the title and the
    label stays in the text (clean.headline_index)."""
    lines = clean.line_paragraphs(read_text(path))
    head = clean.headline_index(lines)
    title, body = lines[head], lines[:head] + lines[head + 1:]
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
        date=normalize_date(getattr(doc, "date", None)),
        url=getattr(doc, "url", None),
    )


def valid_text(text: str) -> bool:
    """Can `text` be stored and embedded? (JSON can carry lone surrogates; UTF-8 cannot.)"""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_NOT_OBJECT = "a JSON object with id, title and text is expected"


def _record_problem(record: object) -> str | None:
    """Why a parsed JSON line is not an article record, or None if it is one."""
    if not isinstance(record, dict):
        return f"{_NOT_OBJECT}, got {type(record).__name__}"
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
        if not line.lstrip().startswith("{"):  # cheaply, for a file of a million bad lines
            yield Skipped(where, "not an article record", _NOT_OBJECT, lines=1)
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:  # bad JSON, a huge number, deep nesting
            yield Skipped(where, "not an article record", _json_error(exc), lines=1)
            continue
        problem = _record_problem(record)
        if problem:
            yield Skipped(where, "not an article record", problem, lines=1)
            continue
        paragraphs = clean.line_paragraphs(record["text"])
        if not paragraphs:
            yield Skipped(where, "empty text", lines=1)
            continue
        record_id = str(record["id"])
        yield Document(
            # Namespaced by the file: a record can never take over another file's article
            # (or another feed's record) by claiming its id.
            id=f"{rel}#{record_id}",
            title=(record.get("title") or record_id).strip() or record_id,
            paragraphs=tuple(paragraphs),
            source=rel,
            date=normalize_date(record.get("date")),
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


_LINK_OUT = "symbolic link out of the corpus folder"


def corpus_files(root: Path) -> tuple[list[tuple[Path, Path]], list[Skipped]]:
    """Every non-hidden file under `root` (or `root` itself if it is a file), sorted, as
    (where it is in the corpus, what to read), and the entries that are not read.

    Symbolic links are followed only when they resolve to a file inside the corpus folder:
    `ln -s /etc/shadow corpus/x.txt` must not get a file indexed and quoted. Links to
    folders are never walked into, and fifos or devices are never opened.
    """
    if root.is_file():
        return [(root, root)], []
    if not root.is_dir():
        raise CorpusError(f"corpus folder {root} does not exist; create it and add articles")
    real_root = root.resolve()
    found: list[tuple[Path, Path]] = []
    skipped: list[Skipped] = []
    for folder, dirs, files in os.walk(root):  # followlinks=False: links are checked below
        here = Path(folder)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in [*files, *(d for d in dirs if (here / d).is_symlink())]:
            if name.startswith("."):
                continue
            path = here / name
            rel = shown_name(path.relative_to(root).as_posix())
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(real_root) or not target.exists():
                    skipped.append(Skipped(rel, _LINK_OUT, "not followed"))
                elif target.is_file():
                    found.append((path, target))
                # else: a link to a folder inside the corpus, whose files are read where
                # they are.
            elif path.is_file():
                found.append((path, path))
            else:
                skipped.append(Skipped(rel, "not a regular file", "a fifo, socket or device"))
    return sorted(found), skipped


# Bad lines of one file kept one by one, per reason; the rest are counted.
LINES_SHOWN = 3
_MORE_LINES = "more lines like these"


class _LineSkips:
    """The bad lines of one file: the first few per reason, then only counts, so a file
    of a million bad lines costs a few entries, not a million."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.counts: dict[str, int] = {}

    def add(self, skip: Skipped, into: list[Skipped]) -> None:
        seen = self.counts.get(skip.reason, 0)
        if skip.lines:
            self.counts[skip.reason] = seen + 1
        if seen < LINES_SHOWN or not skip.lines:
            into.append(skip)

    def rest(self) -> list[Skipped]:
        return [Skipped(self.source, reason, f"{n - LINES_SHOWN:,} {_MORE_LINES}",
                        lines=n - LINES_SHOWN)
                for reason, n in self.counts.items() if n > LINES_SHOWN]


def skip_counts(skipped: Sequence[Skipped]) -> tuple[int, int]:
    """(files, lines) skipped."""
    return (sum(1 for s in skipped if not s.lines), sum(s.lines for s in skipped))


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def skipped_phrase(skipped: Sequence[Skipped]) -> str:
    """"0 files skipped", "1 file skipped", "2 files and 85,716 lines skipped"."""
    files, lines = skip_counts(skipped)
    parts = [_plural(files, "file")] if files or not lines else []
    if lines:
        parts.append(_plural(lines, "line"))
    return " and ".join(parts) + " skipped"


def skip_summary(skipped: Sequence[Skipped], reasons: int = 8, examples: int = 3) -> list[str]:
    """What was skipped, in a few lines: the totals, then per reason (most first) its count
    and its first few files or lines. Empty if nothing was skipped."""
    if not skipped:
        return []
    groups: dict[str, list[Skipped]] = {}
    for skip in skipped:
        groups.setdefault(skip.reason, []).append(skip)
    ranked = sorted(groups.items(), key=lambda g: -sum(max(s.lines, 1) for s in g[1]))
    out = [skipped_phrase(skipped) + ":"]
    for reason, items in ranked[:reasons]:
        files, lines = skip_counts(items)
        count = " and ".join(
            [_plural(files, "file")] * bool(files) + [_plural(lines, "line")] * bool(lines))
        shown = [s for s in items if not s.detail.endswith(_MORE_LINES)]
        first = ", ".join(
            f"{s.source}" + (f" ({s.detail[:80]})" if s.detail else "") for s in shown[:examples]
        )
        more = " …" if len(items) > examples else ""
        out.append(f"{reason}: {count} ({first}{more})" if first else f"{reason}: {count}")
    if len(ranked) > reasons:
        out.append(f"… and {len(ranked) - reasons} other reasons")
    return out


def shown_name(name: str) -> str:
    """A file name as text that can be shown and stored: bytes that are not UTF-8 (which
    Python keeps as surrogate escapes) become `\\xe9`."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def read_documents(root: Path) -> tuple[list[Document], list[Skipped]]:
    """All documents under `root`; a file that cannot be read, for any reason, is skipped
    with the reason and the rest is read."""
    documents: list[Document] = []
    base = root if root.is_dir() else root.parent
    files, skipped = corpus_files(root)
    file_ids = {path.relative_to(base).as_posix() for path, _ in files}
    seen_ids: dict[str, str] = {}  # article id -> where it was first read
    for path, target in files:
        rel = path.relative_to(base).as_posix()
        if not valid_text(rel):
            skipped.append(Skipped(shown_name(rel), "file name is not UTF-8",
                                   "rename the file"))
            continue
        reader = READERS.get(path.suffix.lower())
        if reader is None:
            skipped.append(Skipped(rel, f"unsupported type {path.suffix or '(none)'}"))
            continue
        bad_lines = _LineSkips(rel)
        try:
            for doc in reader(target, rel):
                if isinstance(doc, Skipped):
                    bad_lines.add(doc, skipped)
                    continue
                first = seen_ids.get(doc.id) or (doc.origin and doc.id in file_ids and doc.id)
                if first:
                    skipped.append(Skipped(_origin(doc), "duplicate article id",
                                           f"{doc.id!r} is also the id of {first}",
                                           lines=int(bool(doc.origin))))
                    continue
                seen_ids[doc.id] = _origin(doc)
                documents.append(doc)
        except _SkipFile as exc:
            skipped.append(Skipped(rel, exc.reason, exc.detail))
        except Exception as exc:  # noqa: BLE001  a reader or its library failing on odd
            # input costs that file, never the build (the README promises bad files skip).
            log.warning("could not read %s", rel, exc_info=True)
            skipped.append(Skipped(rel, "could not be read",
                                   f"{type(exc).__name__}: {_json_error(exc)}"))
        skipped += bad_lines.rest()
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
        Skipped(_origin(doc), "duplicate",
                f"same text as {_origin(documents[keep[doc.paragraphs]])}",
                lines=int(bool(doc.origin)))
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
                                   "every paragraph repeats inside an article",
                                   lines=int(bool(doc.origin))))
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
    for line in skip_summary(skipped):
        log.warning("%s", line)
    return Corpus(articles=tuple(articles), skipped=tuple(skipped))
