"""The Verbatim page: chat answered with quotes, and the library (Gradio over the Retriever)."""
from __future__ import annotations

import os

# Before gradio (and huggingface_hub) are imported: no analytics, no telemetry, no downloads.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

# Answering imports only the query side; the Library's upload and rebuild import the
# write side (qa.web.upload, qa.build) when they are used.
from qa.serve import render  # noqa: E402
from qa.config import ARTICLE_SUFFIXES, MODES, Settings, coerce_k, human_size  # noqa: E402
from qa.embed import Embedder, QuestionEncoder  # noqa: E402  (no torch until a model loads)
from qa.errors import BuildLockedError, ConfigError, IndexMissingError, QAError  # noqa: E402
from qa.embed.ray_engine import add_engine_options  # noqa: E402  (no ray import until used)

if TYPE_CHECKING:
    import gradio as gr

    from qa.retriever import Retriever

log = logging.getLogger("verbatim.app")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
# Questions the seed article in corpus/ answers; shown as buttons under the chat.
EXAMPLES: tuple[str, ...] = (
    "Who formed the Model-Chip Ecosystem Innovation Alliance?",
    "What hardware did the US export bans target?",
    "Which platform did Huawei unveil as a rival to Nvidia?",
)
# build_index reports "read" when the files are read; splitting into passages follows it.
STAGES = {"read": "Reading and splitting articles", "embed": "Embedding passages",
          "write": "Writing the index"}
NO_INDEX = ("There is no index yet: add articles in the Library tab and press "
            "“Rebuild index”.")
# Article URLs one submission may add: a visitor cannot make the server crawl a site.
MAX_PAGE_URLS = 20


class Page:
    """What the page does, without any Gradio layout: one instance serves every visitor."""

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
        self._build_embedder = build_embedder if build_embedder is not None else (
            embedder if isinstance(embedder, Embedder) else None)
        self._build_lock = threading.Lock()
        self._retriever = retriever
        # Why there is no retriever (shown in the Library tab until a rebuild fixes it).
        self.problem = problem
        self._lock = threading.Lock()
        # URLs typed into the page may not reach this machine's neighbours unless the
        # operator started the app with --allow-private-urls.
        self.allow_private_urls = allow_private_urls
        self._fetcher: Any = None
        # Gradio's upload folder: an upload is deleted from it once handled, saved or not.
        self.upload_cache: Path | None = None

    # -- the index ----------------------------------------------------------------------
    def build_embedder(self) -> Embedder:
        """The embedder builds use; the local model is loaded on the first call."""
        with self._build_lock:
            if self._build_embedder is None:
                from qa.embed import load_embedder

                self._build_embedder = load_embedder(self.settings)
            return self._build_embedder

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
        built = status.built_at.replace("T", " ").replace("+00:00", " UTC")
        return (
            f"**Index** `{status.generation}` · **{status.articles}** article"
            f"{'s' if status.articles != 1 else ''} · **{status.passages}** passages · "
            f"model `{status.model}` · built {built}"
        )

    def article_rows(self) -> list[list[Any]]:
        try:
            articles = self.retriever().articles()
        except QAError:
            return []
        return [[a.title, a.date or "", a.passages, a.source] for a in articles]

    def library(self) -> tuple[str, list[list[Any]]]:
        return self.status_markdown(), self.article_rows()

    # -- asking ------------------------------------------------------------------------
    def answer(self, question: str, k: int | float | str | None, mode: str | None):
        return self.retriever().answer(question, coerce_k(k), mode=mode or self.settings.mode)

    def chat(self, message: str, history: list[dict] | None, k: float, mode: str
             ) -> tuple[list[dict], str]:
        """Add the question and its rendered answer (or a friendly error) to the chat."""
        history = list(history or [])
        if not (message or "").strip():
            return history, ""
        history.append({"role": "user", "content": render.render_question(message)})
        try:
            content = render.render_answer(self.answer(message, k, mode))
        except QAError as exc:
            content = render.render_error(str(exc))
        except Exception:  # the page must stay usable whatever happens
            log.exception("answering %r failed", message[:200])
            content = render.render_error("something went wrong on the server (see its log)")
        history.append({"role": "assistant", "content": content})
        return history, ""

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
        from qa.build import build_index

        def on_progress(stage: str, done: int, total: int) -> None:
            if progress is not None:
                unit = "texts" if stage == "embed" else "steps"
                progress((done, max(total, 1)), desc=STAGES.get(stage, stage), unit=unit)

        try:
            report = build_index(self.settings, self.build_embedder(), on_progress=on_progress)
        except BuildLockedError:
            message = "⚠️ Another build is running; try again when it has finished."
        except QAError as exc:
            message = f"⚠️ Rebuild failed: {render.esc(exc)}"
        except Exception:  # the page must stay usable whatever happens
            log.exception("rebuilding the index failed")
            message = "⚠️ Rebuild failed: something went wrong on the server (see its log)."
        else:
            message = (
                f"Nothing to rebuild: the index already has these **{report.articles}** "
                f"articles ({report.passages} passages)." if report.up_to_date else
                f"Rebuilt: **{report.articles}** articles, **{report.passages}** passages "
                f"({report.added} added, {report.changed} changed, {report.removed} removed, "
                f"{report.kept} unchanged) in {report.seconds:.1f} s. The chat now answers "
                "from them."
            )
            if report.skipped:
                from qa.text.ingest import skip_summary

                head, *reasons = skip_summary(report.skipped)
                message += f"\n\n{render.esc(head.capitalize())}\n" + "".join(
                    f"\n- {render.esc(line)}" for line in reasons
                )
        return (message, *self.library())

    # -- news from the web (qa.web.feeds does the work) ------------------------------------------
    def fetcher(self) -> Any:
        """One Fetcher for every visitor, so its one-request-per-host limit holds across them."""
        from qa.web.fetch import FetchPolicy, Fetcher

        with self._lock:
            if self._fetcher is None:
                self._fetcher = Fetcher(FetchPolicy(allow_private=self.allow_private_urls))
            return self._fetcher

    def _web_progress(self, progress: Any):
        def fetching(desc: str, done: int, total: int) -> None:
            if progress is not None:
                progress((done, max(total, 1)), desc=desc[:120], unit="pages")

        def building(stage: str, done: int, total: int) -> None:
            if progress is not None:
                unit = "texts" if stage == "embed" else "steps"
                progress((done, max(total, 1)), desc=STAGES.get(stage, stage), unit=unit)

        return fetching, building

    def add_urls(self, text: str | None, progress: Any = None
                 ) -> tuple[str, str, list[list[Any]], str]:
        """Fetch article URLs (one per line), store them, update the index. The URLs that
        failed stay in the field, to try again."""
        from qa.web.feeds import WebReport, add_urls, index_if_stored, report_markdown

        urls = (text or "").split()
        if not urls:
            return ("Paste the addresses of articles, one per line.", *self.library(), "")
        if len(urls) > MAX_PAGE_URLS:
            return (f"⚠️ At most {MAX_PAGE_URLS} URLs at a time, got {len(urls)}.",
                    *self.library(), text or "")
        fetching, building = self._web_progress(progress)
        try:
            items = add_urls(self.settings.corpus_dir, urls, self.fetcher(), fetching)
            report = index_if_stored(WebReport(items=items), self.settings,
                                     self.build_embedder, building)
        except QAError as exc:
            return (f"⚠️ {render.esc(exc)}", *self.library(), text or "")
        failed = "\n".join(item.url for item in report.items if item.failed)
        return (report_markdown(report), *self.library(), failed)

    def feed_rows(self) -> list[list[Any]]:
        from qa.web.feeds import read_feeds

        try:
            feeds = read_feeds(self.settings.corpus_dir).feeds
        except QAError as exc:
            return [[f"⚠️ {exc}", "", 0, 0, ""]]
        return [[f.url, f.title or "", f.stored, len(f.pending),
                 ((f.checked or "").replace("T", " ").replace("+00:00", " UTC") + ": "
                  + (f.status or "")) if f.checked else "not yet updated"] for f in feeds]

    def feed_urls(self) -> list[str]:
        return [row[0] for row in self.feed_rows() if str(row[0]).startswith("http")]

    def follow_feed(self, url: str | None) -> tuple[str, list[list[Any]], str]:
        """Add a feed to the list (checked now: a private address is refused at once)."""
        from qa.web.feeds import follow

        url = (url or "").strip()
        if not url:
            return "Paste the address of an RSS or Atom feed.", self.feed_rows(), ""
        try:
            feed, added = follow(self.settings.corpus_dir, self.fetcher().check(url))
        except QAError as exc:
            return f"⚠️ Not followed: {render.esc(exc)}", self.feed_rows(), url
        note = (f"Following `{render.esc(feed.url)}`. Press **Update now** to fetch its "
                "articles." if added else f"Already following `{render.esc(feed.url)}`.")
        return note, self.feed_rows(), ""

    def unfollow_feed(self, url: str | None) -> tuple[str, list[list[Any]]]:
        from qa.web.feeds import unfollow

        if not url:
            return "Choose a feed to stop following.", self.feed_rows()
        try:
            feed = unfollow(self.settings.corpus_dir, url)
        except QAError as exc:
            return f"⚠️ {render.esc(exc)}", self.feed_rows()
        return (f"Stopped following `{render.esc(feed.url)}`; its {feed.stored} articles stay "
                "in the library.", self.feed_rows())

    def update_feeds(self, progress: Any = None
                     ) -> tuple[str, str, list[list[Any]], list[list[Any]]]:
        """Fetch every feed now, store the new articles, update the index."""
        from qa.web.feeds import WebReport, index_if_stored, report_markdown, update_feeds

        fetching, building = self._web_progress(progress)
        try:
            results = update_feeds(self.settings.corpus_dir, self.fetcher(), fetching)
            report = index_if_stored(WebReport(feeds=results), self.settings,
                                     self.build_embedder, building)
        except QAError as exc:
            return (f"⚠️ {render.esc(exc)}", *self.library(), self.feed_rows())
        note = report_markdown(report) if results else \
            "No feeds yet: paste a feed's address and press **Follow feed**."
        return (note, *self.library(), self.feed_rows())


# -- the layout ------------------------------------------------------------------------------
def theme() -> gr.themes.Base:
    import gradio as gr

    # Local fonts only: the default theme would fetch web fonts from the internet.
    return gr.themes.Soft(
        primary_hue="amber", neutral_hue="slate",
        font=["ui-sans-serif", "system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
    )


PAGE_CSS = render.CSS + """
.vb-header h1 { margin: 0.2rem 0 0; font-size: 1.8rem; }
.vb-header p { margin: 0.2rem 0 0.4rem; color: var(--body-text-color-subdued); }
#chat .vb-question { white-space: pre-wrap; }
#examples { align-items: center; gap: 0.4rem; }
#examples::before { content: "Try:"; color: var(--body-text-color-subdued); font-size: 0.9em; }
#examples button { flex: 0 1 auto; min-width: 0; font-weight: normal; }
"""

HEADER = """<div class="vb-header"><h1>Verbatim</h1>
<p>Ask questions of your news articles. Every answer is a verbatim quote with the answering
sentence <mark>highlighted</mark> and its article cited; nothing is generated.</p></div>"""


def build_page(page: Page) -> gr.Blocks:
    """The Gradio Blocks of the page: a Chat tab and a Library tab, plus /ask and /search."""
    import gradio as gr

    from gradio.utils import get_upload_folder

    settings = page.settings
    page.upload_cache = Path(get_upload_folder())
    with gr.Blocks(title="Verbatim: answers as quotes") as demo:
        gr.HTML(HEADER)
        with gr.Tabs():
            with gr.Tab("Chat", id="chat-tab"):
                chatbot = gr.Chatbot(
                    elem_id="chat", show_label=False, height=600, render_markdown=False,
                    sanitize_html=True, feedback_options=None, buttons=["copy_all"],
                    placeholder="Ask a question: the answer is quoted from the articles, "
                                "with the sentence that answers it highlighted.",
                )
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        elem_id="question", show_label=False, scale=8, autofocus=True,
                        placeholder="Ask a question about the articles…", lines=1,
                    )
                    ask = gr.Button("Ask", elem_id="ask", variant="primary", scale=1,
                                    min_width=90)
                with gr.Row(elem_id="examples"):
                    example_buttons = [
                        gr.Button(text, size="sm", variant="secondary", scale=0,
                                  elem_classes=["vb-example"])
                        for text in EXAMPLES
                    ]
                with gr.Accordion("Settings", open=False, elem_id="settings"):
                    with gr.Row():
                        k = gr.Slider(1, 10, value=settings.k, step=1, label="Quotes",
                                      info="How many quotes an answer shows at most",
                                      elem_id="k")
                        mode = gr.Radio(
                            list(MODES), value=settings.mode, label="Search mode",
                            info="hybrid: meaning + words · dense: meaning only · "
                                 "bm25: words only",
                            elem_id="mode",
                        )
                    clear = gr.Button("Clear the chat", size="sm", variant="secondary")
            with gr.Tab("Library", id="library-tab") as library_tab:
                status = gr.Markdown(elem_id="status")
                articles = gr.Dataframe(
                    headers=["Title", "Date", "Passages", "File"],
                    datatype=["str", "str", "number", "str"],
                    interactive=False, elem_id="articles", label="Articles in the index",
                    wrap=True,
                )
                with gr.Row():
                    files = gr.File(
                        file_count="multiple", file_types=list(ARTICLE_SUFFIXES),
                        label=f"Add articles ({' '.join(ARTICLE_SUFFIXES)}, up to "
                              f"{human_size(settings.max_upload_bytes)} each)",
                        elem_id="upload", scale=3,
                    )
                    with gr.Column(scale=2):
                        rebuild = gr.Button("Rebuild index", elem_id="rebuild",
                                            variant="primary")
                        library_note = gr.Markdown(
                            "New and changed articles are embedded; the others keep their "
                            "vectors. The chat keeps working during a rebuild.",
                            elem_id="library-note",
                        )
                with gr.Row(equal_height=True):
                    corpus_file = gr.Dropdown(
                        [], value=None, label="Files in the corpus folder", scale=3,
                        info="Remove one (e.g. a file the rebuild skips), then rebuild",
                        elem_id="corpus-files",
                    )
                    remove = gr.Button("Remove file", elem_id="remove", variant="secondary",
                                       scale=1, min_width=90)
                web = build_web_section(page)

        chat_inputs = [question, chatbot, k, mode]
        private = {"api_visibility": "private"}
        question.submit(page.chat, chat_inputs, [chatbot, question], **private)
        ask.click(page.chat, chat_inputs, [chatbot, question], **private)
        for button, text in zip(example_buttons, EXAMPLES):
            button.click(lambda history, k, mode, text=text: page.chat(text, history, k, mode),
                         [chatbot, k, mode], [chatbot, question], **private)
        clear.click(lambda: ([], ""), None, [chatbot, question], **private)

        def corpus_choices():
            return gr.Dropdown(choices=page.corpus_files(), value=None)

        def remove_file(name: str | None):
            note, choices = page.remove_file(name)
            return note, gr.Dropdown(choices=choices, value=None)

        files.upload(page.upload, files, [library_note, files], **private).then(
            corpus_choices, None, corpus_file, **private)
        rebuild.click(lambda progress=gr.Progress(): page.rebuild(progress), None,
                      [library_note, status, articles], show_progress_on=articles,
                      concurrency_limit=1, **private).then(
            corpus_choices, None, corpus_file, **private)
        library_tab.select(page.library, None, [status, articles], **private)
        library_tab.select(corpus_choices, None, corpus_file, **private)
        remove.click(remove_file, corpus_file, [library_note, corpus_file], **private)
        demo.load(page.library, None, [status, articles], **private)
        wire_web_section(page, web, status, articles, library_tab, demo)

        gr.api(page.api_ask, api_name="ask")
        gr.api(page.api_search, api_name="search")
    return demo


def build_web_section(page: Page) -> dict[str, Any]:
    """The Library's "From the web" part: article URLs, and the feeds with "Update now"."""
    import gradio as gr

    with gr.Group(elem_id="web"):
        gr.Markdown("### From the web\nArticles are fetched, stored in the corpus folder "
                    "(`web/`) and added to the index; quotes link to the original page.")
        with gr.Row(equal_height=True):
            urls = gr.Textbox(label="Article URLs (one per line)", lines=2, scale=4,
                              elem_id="web-urls", placeholder="https://example.com/news/...")
            add = gr.Button("Add articles", elem_id="web-add", variant="primary", scale=1,
                            min_width=120)
        with gr.Row(equal_height=True):
            feed_url = gr.Textbox(label="Feed URL (RSS or Atom)", scale=4, elem_id="feed-url",
                                  placeholder="https://example.com/feed.xml")
            follow = gr.Button("Follow feed", elem_id="feed-add", scale=1, min_width=120)
        feeds = gr.Dataframe(
            headers=["Feed", "Title", "Articles", "Waiting", "Last update"],
            datatype=["str", "str", "number", "number", "str"], interactive=False,
            elem_id="feeds", label="Followed feeds", wrap=True,
            column_widths=["32%", "18%", "10%", "10%", "30%"],
        )
        with gr.Row(equal_height=True):
            choice = gr.Dropdown(label="Feed", choices=[], scale=4, elem_id="feed-choice")
            remove = gr.Button("Stop following", elem_id="feed-remove", scale=1, min_width=120)
            update = gr.Button("Update now", elem_id="feeds-update", variant="primary", scale=1,
                               min_width=120)
        note = gr.Markdown(elem_id="web-note")
    return {"urls": urls, "add": add, "feed_url": feed_url, "follow": follow, "feeds": feeds,
            "choice": choice, "remove": remove, "update": update, "note": note}


def wire_web_section(page: Page, web: dict[str, Any], status: Any, articles: Any,
                     library_tab: Any, demo: Any) -> None:
    import gradio as gr

    private = {"api_visibility": "private"}

    def feed_view() -> tuple[list[list[Any]], Any]:
        return page.feed_rows(), gr.Dropdown(choices=page.feed_urls(), value=None)

    def with_choices(*values: Any) -> tuple[Any, ...]:
        return (*values, gr.Dropdown(choices=page.feed_urls(), value=None))

    web["add"].click(lambda text, progress=gr.Progress(): page.add_urls(text, progress),
                     web["urls"], [web["note"], status, articles, web["urls"]],
                     concurrency_limit=2, **private)
    web["follow"].click(lambda url: with_choices(*page.follow_feed(url)), web["feed_url"],
                        [web["note"], web["feeds"], web["feed_url"], web["choice"]], **private)
    web["remove"].click(lambda url: with_choices(*page.unfollow_feed(url)), web["choice"],
                        [web["note"], web["feeds"], web["choice"]], **private)
    web["update"].click(lambda progress=gr.Progress(): with_choices(*page.update_feeds(progress)),
                        None, [web["note"], status, articles, web["feeds"], web["choice"]],
                        concurrency_limit=1, **private)
    library_tab.select(feed_view, None, [web["feeds"], web["choice"]], **private)
    demo.load(feed_view, None, [web["feeds"], web["choice"]], **private)


# -- start-up ----------------------------------------------------------------------------
def prepare(settings: Settings, engine: str = "local", ray_address: str | None = None,
            ray_actors: int | None = None) -> Page:
    """Open the index (questions through the model's ONNX export when a build made one, so
    no torch is loaded), or build it first if there is none.

    With engine "ray", builds (this one and "Rebuild index") embed on a Ray cluster;
    questions are always embedded here.
    """
    from qa.embed import load_embedder, load_question_encoder

    builder = None
    if engine == "ray":
        from qa.embed.ray_engine import load_ray_embedder

        builder = load_ray_embedder(settings, ray_address, ray_actors,
                                    local=load_embedder(settings))
    encoder = load_question_encoder(settings)
    encoder.encode(["warm up"])  # so the first question is as quick as the rest
    page = Page(settings, encoder, build_embedder=builder)
    try:
        page.open_index()
        return page
    except IndexMissingError:
        print(f"No index in {settings.index_dir}/ yet: building it from {settings.corpus_dir}/",
              flush=True)
    except QAError as exc:
        print(f"warning: the index cannot be served: {exc}", file=sys.stderr, flush=True)
        page.problem = f"{exc} (or press “Rebuild index”)."
        return page
    from qa.build import build_index

    try:
        report = build_index(settings, page.build_embedder())
    except QAError as exc:
        print(f"warning: could not build the index: {exc}", file=sys.stderr, flush=True)
        page.problem = f"{exc}. {NO_INDEX}"
        return page
    print(report.summary(), flush=True)
    page.open_index()
    return page


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """VERBATIM_AUTH="user:password" -> (user, password); empty -> no login."""
    if not value:
        return None
    user, colon, password = value.partition(":")
    if not colon or not user or not password:
        raise ConfigError("VERBATIM_AUTH must look like user:password")
    return user, password


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="app.py", description="Serve the Verbatim page (builds the index first if missing).",
        epilog="Environment: VERBATIM_HOST, VERBATIM_PORT, VERBATIM_AUTH=user:password, "
               "VERBATIM_CORPUS, VERBATIM_INDEX, VERBATIM_MODEL.",
    )
    p.add_argument("--host", default=os.environ.get("VERBATIM_HOST", DEFAULT_HOST),
                   help=f"address to listen on (default {DEFAULT_HOST}: this machine only)")
    # A string default goes through type=int too, so a bad VERBATIM_PORT is a usage error.
    p.add_argument("--port", type=int, default=os.environ.get("VERBATIM_PORT", str(DEFAULT_PORT)),
                   help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--corpus", type=Path, help="articles folder (default: corpus)")
    p.add_argument("--index", type=Path, help="index folder (default: index)")
    p.add_argument("--allow-private-urls", action="store_true",
                   help="let URLs typed into the page reach loopback, private and link-local "
                        "addresses (off by default: visitors cannot make the server fetch its "
                        "own network)")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    add_engine_options(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter()
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        auth = parse_auth(os.environ.get("VERBATIM_AUTH"))
        settings = Settings.from_env(corpus_dir=args.corpus, index_dir=args.index)
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    # The model loads (and the index builds, if missing) while gradio imports.
    result: dict[str, Any] = {}

    def load() -> None:
        try:
            result["page"] = prepare(settings, args.engine, args.ray_address, args.ray_actors)
            result["page"].allow_private_urls = args.allow_private_urls
        except BaseException as exc:  # re-raised in the main thread
            result["error"] = exc

    loader = threading.Thread(target=load, name="verbatim-load", daemon=True)
    loader.start()
    import gradio  # noqa: F401  (the slow import, overlapping the model load)

    loader.join()
    if "error" in result:
        if isinstance(result["error"], QAError):
            print(f"error: {result['error']}", file=sys.stderr)
            return 2
        raise result["error"]
    page = result["page"]
    demo = build_page(page)
    demo.queue(default_concurrency_limit=4)
    app = mount(page, demo, auth)
    from qa.serve.api import exposure_warning, serve, serving_urls

    warning = exposure_warning(args.host, args.port, auth)
    if warning:
        print(warning, file=sys.stderr, flush=True)

    def ready() -> None:
        first, *others = serving_urls(args.host, args.port)
        also = f" (also {', '.join(others)})" if others else ""
        print(f"Verbatim is ready at {first}{also} ({time.perf_counter() - started:.1f} s); "
              f"JSON API at {first}/api, its docs at {first}/docs", flush=True)

    try:
        serve(app, args.host, args.port, on_ready=ready)
    except OSError as exc:  # most often: the port is taken
        print(f"error: cannot serve on {args.host}:{args.port}: {exc}. Pick another port with "
              "--port or VERBATIM_PORT.", file=sys.stderr)
        return 2
    return 0


def mount(page: Page, demo: gr.Blocks, auth: tuple[str, str] | None) -> Any:
    """One ASGI app for the page and the JSON API (qa/api.py): one process, one port, one
    login, one throttle of failed logins."""
    import gradio as gr

    from qa.serve.api import LOGIN_NOTE, create_api

    api = create_api(page.retriever, page.settings, auth)
    return gr.mount_gradio_app(
        api, demo, path="/", auth=auth, auth_message=LOGIN_NOTE if auth else None,
        theme=theme(), css=PAGE_CSS, max_file_size=page.settings.max_upload_bytes,
        ssr_mode=False, show_error=True, footer_links=["api"],
    )


if __name__ == "__main__":
    sys.exit(main())
