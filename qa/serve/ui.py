"""The page's Gradio layout: a Chat tab and a Library tab over a Page, mounted with the
JSON API on one FastAPI app. Importing it turns gradio's analytics and the hub's downloads
off, so it comes before any gradio import."""
from __future__ import annotations

import os

# Before gradio (and huggingface_hub) are imported: no analytics, no telemetry, no downloads.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

from qa.config import ARTICLE_SUFFIXES, MODES, human_size  # noqa: E402
from qa.serve import render  # noqa: E402

if TYPE_CHECKING:
    import gradio as gr

    from qa.serve.page import Page

# A headline on its button is cut to this many characters (the question is all of it).
SUGGESTION_CHARS = 70


def clip(text: str, most: int = SUGGESTION_CHARS) -> str:
    return text if len(text) <= most else text[:most - 1].rstrip() + "…"


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
#examples::before { content: "Ask about:"; color: var(--body-text-color-subdued);
                    font-size: 0.9em; }
#examples button { flex: 0 1 auto; min-width: 0; font-weight: normal; }
"""

HEADER = """<div class="vb-header"><h1>Verbatim</h1>
<p>Ask questions of your news articles. Every answer is a verbatim quote with the answering
sentence <mark>highlighted</mark> and its article cited; nothing is generated.</p></div>"""


def build_page(page: Page) -> gr.Blocks:
    """The Gradio Blocks of the page: a Chat tab and a Library tab, plus /ask and /search."""
    import gradio as gr

    from gradio.utils import get_upload_folder

    from qa.serve.page import SUGGESTIONS

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
                    # Follow-ups ("And Baidu?") are read with the earlier turns; this
                    # forgets them.
                    new_conversation = gr.Button("New conversation", elem_id="new-conversation",
                                                 variant="secondary", scale=1, min_width=90)
                # The newest headlines of the loaded articles (Page.suggestions), filled
                # in when the page loads.
                with gr.Row(elem_id="examples"):
                    example_buttons = [
                        gr.Button("", size="sm", variant="secondary", scale=0, visible=False,
                                  elem_classes=["vb-example"])
                        for _ in range(SUGGESTIONS)
                    ]
                with gr.Accordion("Settings", open=False, elem_id="settings"):
                    with gr.Row():
                        k = gr.Slider(1, 10, value=settings.k, step=1, label="Quotes",
                                      info="How many quotes an answer shows at most",
                                      elem_id="k")
                        date_from = gr.Textbox(label="From", placeholder="e.g. 2023-01-01",
                                               info="Only articles dated on or after",
                                               elem_id="date-from", max_length=40)
                        date_to = gr.Textbox(label="To", placeholder="e.g. 2024-03-31",
                                             info="Only articles dated on or before",
                                             elem_id="date-to", max_length=40)
                    with gr.Row():
                        mode = gr.Radio(
                            list(MODES), value=settings.mode, label="Search mode",
                            info="hybrid: meaning + words · dense: meaning only · "
                                 "bm25: words only",
                            elem_id="mode",
                        )
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

        # The conversation so far, (question, Answer) per turn, one per visitor's session.
        turns = gr.State([])
        chat_inputs = [question, chatbot, k, mode, turns, date_from, date_to]
        chat_outputs = [chatbot, question, turns]
        private = {"api_visibility": "private"}
        question.submit(page.chat, chat_inputs, chat_outputs, **private)
        ask.click(page.chat, chat_inputs, chat_outputs, **private)
        headlines = gr.State([])

        def offer():
            titles = page.suggestions()
            return [titles, *(gr.Button(clip(titles[i]), visible=True) if i < len(titles)
                              else gr.Button(visible=False) for i in range(SUGGESTIONS))]

        for number, button in enumerate(example_buttons):
            button.click(lambda titles, *rest, number=number: page.chat(titles[number], *rest),
                         [headlines, *chat_inputs[1:]], chat_outputs, **private)
        demo.load(offer, None, [headlines, *example_buttons], **private)
        new_conversation.click(lambda: ([], "", []), None, chat_outputs, **private)

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
        library_tab.select(page.library_view, None, [status, articles], **private)
        library_tab.select(corpus_choices, None, corpus_file, **private)
        remove.click(remove_file, corpus_file, [library_note, corpus_file], **private)
        demo.load(page.library_view, None, [status, articles], **private)
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
    # Everything that reads or changes the list of feeds runs one at a time, in the order
    # it was asked: a table read on opening the tab must not land after a feed was followed
    # and blank it. ("Update now" stays apart: it takes minutes, and reads the list at its end.)
    feed_list = {"concurrency_id": "feed-list", "concurrency_limit": 1, **private}

    def feed_view() -> tuple[list[list[Any]], Any]:
        return page.feed_rows(), gr.Dropdown(choices=page.feed_urls(), value=None)

    def with_choices(*values: Any) -> tuple[Any, ...]:
        return (*values, gr.Dropdown(choices=page.feed_urls(), value=None))

    web["add"].click(lambda text, progress=gr.Progress(): page.add_urls(text, progress),
                     web["urls"], [web["note"], status, articles, web["urls"]],
                     concurrency_limit=2, **private)
    web["follow"].click(lambda url: with_choices(*page.follow_feed(url)), web["feed_url"],
                        [web["note"], web["feeds"], web["feed_url"], web["choice"]], **feed_list)
    web["remove"].click(lambda url: with_choices(*page.unfollow_feed(url)), web["choice"],
                        [web["note"], web["feeds"], web["choice"]], **feed_list)
    web["update"].click(lambda progress=gr.Progress(): with_choices(*page.update_feeds(progress)),
                        None, [web["note"], status, articles, web["feeds"], web["choice"]],
                        concurrency_limit=1, **private)
    library_tab.select(feed_view, None, [web["feeds"], web["choice"]], **feed_list)
    demo.load(feed_view, None, [web["feeds"], web["choice"]], **feed_list)


def mount(page: Page, demo: gr.Blocks, auth: tuple[str, str] | None) -> Any:
    """One ASGI app for the page and the JSON API (qa/serve/api.py): one process, one port,
    one login, one throttle of failed logins."""
    import gradio as gr

    from qa.serve.api import LOGIN_NOTE, create_api

    api = create_api(page.retriever, page.settings, auth)
    return gr.mount_gradio_app(
        api, demo, path="/", auth=auth, auth_message=LOGIN_NOTE if auth else None,
        theme=theme(), css=PAGE_CSS, max_file_size=page.settings.max_upload_bytes,
        ssr_mode=False, show_error=True, footer_links=["api"],
    )
