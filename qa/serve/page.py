"""What the Verbatim page does, without any Gradio layout (that is qa/serve/ui.py).

Page answers through the Retriever and manages the library through a Library, rendering
what they return as the page shows it. qa/serve/server.py starts it.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Answering imports only the query side; the Library's upload and rebuild import the
# write side (qa.web.upload, qa.build) when they are used.
from qa.config import Settings, coerce_k
from qa.embed import Embedder, QuestionEncoder  # (no torch until a model loads)
from qa.errors import BuildLockedError, IndexMissingError, QAError
from qa.serve import render
from qa.serve.library import Library
from qa.serve.reports import feed_row, intake_markdown, rebuild_markdown, when
from qa.types import Answer, Filters

if TYPE_CHECKING:
    from qa.retriever import Retriever

log = logging.getLogger("verbatim.app")

# build_index reports "read" when the files are read; splitting into passages follows it.
STAGES = {"read": "Reading and splitting articles", "embed": "Embedding passages",
          "write": "Writing the index"}
NO_INDEX = ("There is no index yet: add articles in the Library tab and press "
            "“Rebuild index”.")
# Article URLs one submission may add: a visitor cannot make the server crawl a site.
MAX_PAGE_URLS = 20
# Earlier turns of a conversation a follow-up is read with (the page keeps no more).
MAX_TURNS = 8
# Headlines offered as "Ask about" buttons under the chat.
SUGGESTIONS = 3


class Page:
    """What the page does, without any Gradio layout: one instance serves every visitor.

    Answering goes through the Retriever; the library's operations (rebuild, article URLs,
    feeds) through a Library, whose reports are rendered here as Markdown.
    """

    def __init__(self, settings: Settings, embedder: QuestionEncoder,
                 retriever: Retriever | None = None, problem: str | None = None,
                 allow_private_urls: bool = False,
                 build_embedder: Embedder | None = None) -> None:
        self.settings = settings
        # What questions are embedded with (the model's ONNX export, or the model).
        self.embedder = embedder
        # What builds embed with ("Rebuild index", added URLs, feeds): a Ray cluster with
        # --engine ray, else the local model, loaded by the first build unless the question
        # encoder is the model itself (a page that only answers never imports torch).
        # URLs typed into the page may not reach this machine's neighbours unless the
        # operator started the app with --allow-private-urls.
        self.library = Library(
            settings, build_embedder if build_embedder is not None else (
                embedder if isinstance(embedder, Embedder) else None),
            allow_private_urls=allow_private_urls)
        self._retriever = retriever
        # Why there is no retriever (shown in the Library tab until a rebuild fixes it).
        self.problem = problem
        self._lock = threading.Lock()
        # Gradio's upload folder: an upload is deleted from it once handled, saved or not.
        self.upload_cache: Path | None = None

    @property
    def allow_private_urls(self) -> bool:
        return self.library.allow_private_urls

    @allow_private_urls.setter
    def allow_private_urls(self, allow: bool) -> None:
        self.library.allow_private_urls = allow

    # -- the index ----------------------------------------------------------------------
    def open_index(self) -> Retriever:
        """Open the live index now.

        Raises:
            IndexMissingError, IndexCorruptError, IndexMismatchError: nothing to serve.
        """
        from qa.retriever import Retriever

        with self._lock:
            self._retriever = Retriever.open(self.settings, self.embedder)
            self.problem = None
            return self._retriever

    def retriever(self) -> Retriever:
        """The Retriever; opens the index if it appeared since start-up (e.g. `qa index`)."""
        if self._retriever is not None:
            return self._retriever
        try:
            return self.open_index()
        except IndexMissingError:
            raise QAError(NO_INDEX) from None

    def status_markdown(self) -> str:
        try:
            status = self.retriever().status()
        except QAError as exc:
            return f"**No index is being served.** {render.esc(self.problem or exc)}"
        return (
            f"**Index** `{status.generation}` · **{status.articles}** article"
            f"{'s' if status.articles != 1 else ''} · **{status.passages}** passages · "
            f"model `{status.model}` · built {when(status.built_at)}"
        )

    def article_rows(self) -> list[list[Any]]:
        try:
            articles = self.retriever().articles()
        except QAError:
            return []
        return [[a.title, a.date or "", a.passages, a.source] for a in articles]

    def suggestions(self, count: int = SUGGESTIONS) -> list[str]:
        """What to offer under the chat: the newest headlines of the loaded articles (the
        same headline once), never questions written for another corpus."""
        try:
            articles = self.retriever().articles(limit=count * 4)
        except QAError:
            return []
        titles = dict.fromkeys(" ".join(a.title.split()) for a in articles if a.title.strip())
        return [t[:self.settings.max_question_chars] for t in titles][:count]

    def library_view(self) -> tuple[str, list[list[Any]]]:
        return self.status_markdown(), self.article_rows()

    # -- asking ------------------------------------------------------------------------
    def answer(self, question: str, k: int | float | str | None, mode: str | None,
               history: Sequence[tuple[str, Answer]] = (), date_from: str | None = None,
               date_to: str | None = None) -> Answer:
        filters = None
        if (date_from or "").strip() or (date_to or "").strip():
            filters = Filters(date_from=(date_from or "").strip() or None,
                              date_to=(date_to or "").strip() or None)
        return self.retriever().answer(question, coerce_k(k), mode=mode or self.settings.mode,
                                       filters=filters, history=tuple(history)[-MAX_TURNS:])

    def chat(self, message: str, history: list[dict] | None, k: float, mode: str,
             turns: list[tuple[str, Answer]] | None = None, date_from: str | None = None,
             date_to: str | None = None) -> tuple[list[dict], str, list[tuple[str, Answer]]]:
        """Add the question and its rendered answer (or a friendly error) to the chat.

        `turns` is the conversation so far as (question, Answer) pairs: a follow-up ("And
        Baidu?") is read with them; `date_from`/`date_to` (the page's date fields, as
        people write dates) keep the articles of those dates. Returns the chat, the
        emptied text box and the turns.
        """
        history = list(history or [])
        turns = list(turns or [])
        if not (message or "").strip():
            return history, "", turns
        history.append({"role": "user", "content": render.render_question(message)})
        try:
            answer = self.answer(message, k, mode, turns, date_from, date_to)
            content = render.render_answer(answer)
            turns = [*turns, (message, answer)][-MAX_TURNS:]
        except QAError as exc:
            content = render.render_error(str(exc))
        except Exception:  # the page must stay usable whatever happens
            log.exception("answering %r failed", message[:200])
            content = render.render_error("something went wrong on the server (see its log)")
        history.append({"role": "assistant", "content": content})
        return history, "", turns

    def api_ask(self, question: str, k: int = 5, mode: str = "hybrid") -> dict:
        """The Answer as JSON: quotes with highlight spans, or an abstention."""
        import gradio as gr

        try:
            return dataclasses.asdict(self.answer(question, k, mode))
        except QAError as exc:
            raise gr.Error(str(exc)) from exc

    def api_search(self, question: str, k: int = 5, mode: str = "hybrid") -> list[dict]:
        """The k best passages as JSON, with their fused, dense and BM25 scores."""
        import gradio as gr

        try:
            hits = self.retriever().search(question, coerce_k(k), mode=mode or None)
        except QAError as exc:
            raise gr.Error(str(exc)) from exc
        return [dataclasses.asdict(hit) for hit in hits]

    # -- the library ---------------------------------------------------------------------
    def upload(self, files: Sequence[str] | str | None) -> tuple[str, None]:
        """Save uploaded files into the corpus folder; say what happened to each."""
        from qa.web.upload import UploadError, save_file

        if not files:
            return "", None
        if isinstance(files, str):
            files = [files]
        saved, refused = [], []
        for path in files:
            try:
                item = save_file(path, self.settings.corpus_dir,
                                 limit=self.settings.max_upload_bytes)
                renamed = f" (saved as `{render.esc(item.name)}`)" if item.name != item.original \
                    else ""
                saved.append(f"`{render.esc(item.original)}`{renamed}")
            except UploadError as exc:
                refused.append(render.esc(str(exc)))
            except OSError as exc:
                refused.append(render.esc(f"{Path(path).name}: {exc.strerror or exc}"))
            finally:
                self._discard(path)
        lines = []
        if saved:
            lines.append(f"Added {', '.join(saved)}. Press **Rebuild index** to search "
                         f"{'them' if len(saved) > 1 else 'it'}.")
        lines += [f"⚠️ Not added: {reason}" for reason in refused]
        return "\n\n".join(lines), None

    def _discard(self, path: str | Path) -> None:
        """Delete a handled upload from Gradio's upload folder (never anything outside it):
        it was copied into the corpus, or refused; either way it must not linger."""
        if self.upload_cache is None:
            return
        cache, file = self.upload_cache.resolve(), Path(path).resolve()
        if file.is_relative_to(cache) and file != cache:
            file.unlink(missing_ok=True)
            if file.parent != cache:  # gradio keeps each upload in a folder of its own
                try:
                    file.parent.rmdir()
                except OSError:
                    pass

    def corpus_files(self) -> list[str]:
        """The files in the corpus folder (articles, and files the index skipped)."""
        from qa.web.upload import corpus_listing

        return list(corpus_listing(self.settings.corpus_dir))

    def remove_file(self, name: str | None) -> tuple[str, list[str]]:
        """Delete a file from the corpus folder (e.g. one that a build skips)."""
        from qa.web.upload import UploadError, remove_file

        try:
            removed = remove_file(self.settings.corpus_dir, name or "")
        except UploadError as exc:
            note = f"⚠️ {render.esc(exc)}"
        else:
            note = (f"Removed `{render.esc(removed)}` from the corpus folder. Press **Rebuild "
                    "index** to take it out of the index.")
        return note, self.corpus_files()

    def rebuild(self, progress: Any = None) -> tuple[str, str, list[list[Any]]]:
        """Build a new generation from the corpus folder (only new/changed articles embedded)."""
        try:
            report = self.library.rebuild(on_progress=_building(progress))
        except BuildLockedError:
            message = "⚠️ Another build is running; try again when it has finished."
        except QAError as exc:
            message = f"⚠️ Rebuild failed: {render.esc(exc)}"
        except Exception:  # the page must stay usable whatever happens
            log.exception("rebuilding the index failed")
            message = "⚠️ Rebuild failed: something went wrong on the server (see its log)."
        else:
            message = rebuild_markdown(report)
        return (message, *self.library_view())

    # -- news from the web (the Library does the work) -----------------------------------------
    def add_urls(self, text: str | None, progress: Any = None
                 ) -> tuple[str, str, list[list[Any]], str]:
        """Fetch article URLs (one per line), store them, update the index. The URLs that
        failed stay in the field, to try again."""
        urls = (text or "").split()
        if not urls:
            return ("Paste the addresses of articles, one per line.", *self.library_view(), "")
        if len(urls) > MAX_PAGE_URLS:
            return (f"⚠️ At most {MAX_PAGE_URLS} URLs at a time, got {len(urls)}.",
                    *self.library_view(), text or "")
        try:
            report = self.library.add_urls(urls, on_fetch=_fetching(progress),
                                           on_progress=_building(progress))
        except QAError as exc:
            return (f"⚠️ {render.esc(exc)}", *self.library_view(), text or "")
        failed = "\n".join(item.url for item in report.web.items if item.failed)
        return (intake_markdown(report), *self.library_view(), failed)

    def feed_rows(self) -> list[list[Any]]:
        try:
            feeds = self.library.feeds()
        except QAError as exc:
            return [[f"⚠️ {exc}", "", 0, 0, ""]]
        return [feed_row(feed) for feed in feeds]

    def feed_urls(self) -> list[str]:
        return [row[0] for row in self.feed_rows() if str(row[0]).startswith("http")]

    def follow_feed(self, url: str | None) -> tuple[str, list[list[Any]], str]:
        """Add a feed to the list (checked now: a private address is refused at once)."""
        url = (url or "").strip()
        if not url:
            return "Paste the address of an RSS or Atom feed.", self.feed_rows(), ""
        try:
            feed, added = self.library.follow(url, check=True)
        except QAError as exc:
            return f"⚠️ Not followed: {render.esc(exc)}", self.feed_rows(), url
        note = (f"Following `{render.esc(feed.url)}`. Press **Update now** to fetch its "
                "articles." if added else f"Already following `{render.esc(feed.url)}`.")
        return note, self.feed_rows(), ""

    def unfollow_feed(self, url: str | None) -> tuple[str, list[list[Any]]]:
        if not url:
            return "Choose a feed to stop following.", self.feed_rows()
        try:
            feed = self.library.unfollow(url)
        except QAError as exc:
            return f"⚠️ {render.esc(exc)}", self.feed_rows()
        return (f"Stopped following `{render.esc(feed.url)}`; its {feed.stored} articles stay "
                "in the library.", self.feed_rows())

    def update_feeds(self, progress: Any = None
                     ) -> tuple[str, str, list[list[Any]], list[list[Any]]]:
        """Fetch every feed now, store the new articles, update the index."""
        try:
            report = self.library.update_feeds(on_fetch=_fetching(progress),
                                               on_progress=_building(progress))
        except QAError as exc:
            return (f"⚠️ {render.esc(exc)}", *self.library_view(), self.feed_rows())
        note = intake_markdown(report) if report.web.feeds else \
            "No feeds yet: paste a feed's address and press **Follow feed**."
        return (note, *self.library_view(), self.feed_rows())


def _fetching(progress: Any):
    """Fetching progress (one step per URL) on Gradio's progress bar, if there is one."""
    def fetching(desc: str, done: int, total: int) -> None:
        if progress is not None:
            progress((done, max(total, 1)), desc=desc[:120], unit="pages")

    return fetching


def _building(progress: Any):
    """A build's progress (qa.build's stages) on Gradio's progress bar, if there is one."""
    def building(stage: str, done: int, total: int) -> None:
        if progress is not None:
            unit = "texts" if stage == "embed" else "steps"
            progress((done, max(total, 1)), desc=STAGES.get(stage, stage), unit=unit)

    return building
