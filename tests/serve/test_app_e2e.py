"""The page in a real headless Chromium: answers, abstention, upload + rebuild, no XSS."""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import pytest

from app_server import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, ask, start_app

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TIMEOUT_MS = 90_000  # a shared 2-core machine: be patient
DOCS_SCREENSHOT = ROOT / "docs" / "screenshot.png"

FESTIVAL = """Lantern festival <img src=x onerror="window.__xss=3"> report
The lantern festival in Tarnby drew four thousand visitors on Saturday evening.
A prankster posted <script>window.__xss=1</script> on the festival website before the parade.
Another visitor wrote <img src=x onerror="window.__xss=2"> in the online guest book.
The parade of paper lanterns closes the festival on Sunday.
"""
LIGHTHOUSE = """Harbour Lighthouse Reopens
The restored lighthouse at Port Elsby reopened on Tuesday after a two-year renovation.
The renovation of the Port Elsby lighthouse cost 3.2 million euros, paid by the harbour board.
Its old lamp was replaced with an LED beacon that can be seen 40 kilometres out at sea.
Visitors can climb the 212 steps to the gallery on weekends from May to September.
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app = start_app(tmp_path_factory.mktemp("page"), {"festival.txt": FESTIVAL})
    yield app
    app.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.external_requests = []  # anything not to our own server
    page.js_errors = []
    host = urlparse(server.url).netloc
    page.on("request", lambda r: urlparse(r.url).scheme in ("http", "https")
            and urlparse(r.url).netloc != host and page.external_requests.append(r.url))
    page.on("pageerror", lambda e: page.js_errors.append(str(e)))
    page.goto(server.url)
    page.wait_for_selector("#question textarea")
    yield page
    context.close()


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def set_quotes(page, k: int) -> None:
    """Open the settings and set the number of quotes (retried: the slider may still be
    mounting when the accordion has just opened)."""
    page.click("#settings .label-wrap")
    number, slider = page.locator("#k input[type=number]"), page.locator("#k input[type=range]")
    for _ in range(20):
        number.fill(str(k))
        number.press("Tab")  # the change lands on blur
        page.wait_for_timeout(250)
        if slider.input_value() == str(k) and number.input_value() == str(k):
            return
    raise AssertionError(f"could not set the number of quotes to {k}")


def save_screenshot(page) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(1000)  # the chat scrolls itself down once rendering settles
    page.evaluate("document.querySelector('#chat .bubble-wrap').scrollTo(0, 0)")
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_function("document.querySelector('#chat .bubble-wrap').scrollTop === 0")
    page.screenshot(path=str(ARTIFACTS / "chat.png"))
    if os.environ.get("VERBATIM_UPDATE_SCREENSHOT") or not DOCS_SCREENSHOT.exists():
        shrink_png(ARTIFACTS / "chat.png", DOCS_SCREENSHOT)


def shrink_png(source: Path, target: Path) -> None:
    """The README's copy: 128 colours is plenty for a page of text, and far smaller."""
    from PIL import Image

    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(source) as image:
        image.convert("RGB").quantize(colors=128).save(target, optimize=True)


def test_seed_question_is_answered_with_a_marked_quote(page):
    from playwright.sync_api import expect

    answer = ask(page, "What hardware did the US export bans target?")
    first = answer.locator(".vb-quote").first
    expect(first.locator("blockquote mark").first).to_contain_text("Nvidia GPUs")
    expect(first.locator(".vb-title")).to_have_text("Chinese AI Powerhouses Unite to Sidestep U.S. Tech Curbs!")
    expect(first.locator(".vb-source")).to_have_text("000_2cb1631c0639e46a.txt")
    expect(first.locator(".vb-rel")).to_have_attribute("title", "relevance " +
                                                       first.locator(".vb-rel-num").inner_text()
                                                       + " (0 to 1)")
    assert "vb-abstained" not in (answer.get_attribute("class") or "")

    # The corpus's newest headlines are offered; one asks about its article directly.
    examples = page.locator("#examples button:visible")
    expect(examples).to_have_count(2)  # two articles, no canned questions
    expect(examples.first).to_have_text("Chinese AI Powerhouses Unite to Sidestep U.S. Tech "
                                        "Curbs!")
    before = page.locator("#chat .vb-answer").count()
    examples.first.click()
    expect(page.locator("#chat .vb-answer")).to_have_count(before + 1)
    expect(page.locator("#chat .vb-answer").last.locator(".vb-title").first) \
        .to_have_text("Chinese AI Powerhouses Unite to Sidestep U.S. Tech Curbs!")
    assert page.external_requests == []  # a local tool: no fonts, analytics or CDNs
    assert page.js_errors == []


def test_settings_change_quotes_and_mode(page):
    from playwright.sync_api import expect

    set_quotes(page, 1)
    page.locator("#mode").get_by_text("bm25", exact=True).click()
    answer = ask(page, "Which platform did Huawei unveil as a rival to Nvidia?")
    expect(answer.locator(".vb-quote")).to_have_count(1)
    expect(answer.locator("blockquote")).to_contain_text("CloudMatrix 384")


def test_chat_screenshot(page):
    """The picture in the README: an answer, then an abstention, in one chat."""
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1100, "height": 1000})
    set_quotes(page, 1)
    page.click("#settings .label-wrap")  # fold the settings away again
    expect(ask(page, "What hardware did the US export bans target?").locator("mark").first) \
        .to_contain_text("Nvidia GPUs")
    expect(ask(page, "When was the Eiffel Tower built?")).to_have_class(
        "vb-answer vb-abstained")
    save_screenshot(page)
    assert (ARTIFACTS / "chat.png").stat().st_size > 10_000


def test_off_topic_question_abstains_visibly(page):
    from playwright.sync_api import expect

    answer = ask(page, "When was the Eiffel Tower built?")
    expect(answer).to_have_class("vb-answer vb-abstained")
    expect(answer.locator(".vb-note")).to_have_text("The articles don't seem to answer this.")
    assert answer.locator("mark").count() == 0
    closest = answer.locator(".vb-closest")
    expect(closest).to_have_count(2)  # the seed article always has passages to offer
    expect(closest.first.locator(".vb-label")).to_have_text("closest match")
    assert closest.first.evaluate("e => parseFloat(getComputedStyle(e).opacity)") < 1
    # The chat goes on: history is kept and the next answer is a normal one.
    next_answer = ask(page, "Which platform did Huawei unveil as a rival to Nvidia?")
    expect(next_answer.locator("mark").first).to_be_visible()
    expect(page.locator("#chat .vb-question")).to_have_count(2)


def test_a_question_in_other_words_is_offered_as_may_answer_with_its_highlight(page):
    """Issue 11: the seed answers this in other words ("Shanghai General Chamber of
    Commerce AI Committee" is the second group); it is quoted with a caveat, marked, and
    never labelled as not answering."""
    from playwright.sync_api import expect

    answer = ask(page, "What is the second group called?")
    expect(answer).to_have_class("vb-answer vb-low")
    expect(answer.locator("p.vb-note")).to_contain_text("may answer")
    expect(answer.locator(".vb-label").first).to_have_text("may answer")
    expect(answer.locator("mark").first).to_contain_text("Chamber of Commerce AI Committee")
    assert "not an answer" not in answer.inner_text().lower()
    assert "closest" not in answer.inner_text().lower()


def test_article_markup_is_shown_as_text_and_never_runs(page):
    from playwright.sync_api import expect

    answer = ask(page, "What did a prankster post on the festival website?")
    quote = answer.locator(".vb-quote", has=page.locator(".vb-source", has_text="festival.txt"))
    expect(quote.first).to_be_visible()
    expect(quote.first.locator("blockquote")).to_contain_text(
        "<script>window.__xss=1</script>")
    expect(quote.first.locator(".vb-title")).to_contain_text(
        '<img src=x onerror="window.__xss=3">')
    ask(page, "What did another visitor write in the online guest book?")
    expect(page.locator("#chat blockquote", has_text='<img src=x onerror="window.__xss=2">')
           .first).to_be_visible()
    open_tab(page, "Library")
    expect(page.locator("#articles")).to_contain_text("Lantern festival")
    assert page.locator("#chat script, #chat img[src='x'], #articles img[src='x']").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.js_errors == []


def test_friendly_error_for_a_too_long_question(page):
    from playwright.sync_api import expect

    answer = ask(page, "why " * 600)
    expect(answer).to_have_class("vb-answer vb-error")
    expect(answer).to_contain_text("characters long")
    expect(ask(page, "What hardware did the US export bans target?").locator("mark").first) \
        .to_be_visible()


def test_upload_rebuild_and_ask_the_new_article(page, server, tmp_path):
    from playwright.sync_api import expect

    open_tab(page, "Library")
    expect(page.locator("#status")).to_contain_text("2 articles")
    upload = tmp_path / "lighthouse.txt"
    upload.write_text(LIGHTHOUSE, encoding="utf-8")
    page.set_input_files("#upload input[type=file]", str(upload))
    expect(page.locator("#library-note")).to_contain_text("Added lighthouse.txt")
    assert (server.corpus / "lighthouse.txt").read_text(encoding="utf-8") == LIGHTHOUSE

    page.click("#rebuild")
    expect(page.locator("#library-note")).to_contain_text("Rebuilt", timeout=180_000)
    expect(page.locator("#status")).to_contain_text("3 articles")
    expect(page.locator("#articles")).to_contain_text("Harbour Lighthouse Reopens")

    open_tab(page, "Chat")
    answer = ask(page, "How much did the renovation of the Port Elsby lighthouse cost?")
    assert "vb-abstained" not in (answer.get_attribute("class") or "")
    expect(answer.locator(".vb-quote").first.locator(".vb-source")).to_have_text(
        "lighthouse.txt")
    expect(answer.locator(".vb-quote").first.locator("blockquote")).to_contain_text(
        "3.2 million euros")


def test_remove_a_file_from_the_corpus_then_rebuild(page, server):
    """Defect 3's other half: a file (e.g. one every rebuild skips) can be removed from the
    page, without a shell."""
    from playwright.sync_api import expect

    (server.corpus / "broken.jsonl").write_text('{"a": ' * 1000 + "1" + "}" * 1000)
    open_tab(page, "Library")
    page.locator("#corpus-files input").click()
    page.get_by_role("option", name="broken.jsonl").click()
    page.click("#remove")
    expect(page.locator("#library-note")).to_contain_text("Removed broken.jsonl")
    assert not (server.corpus / "broken.jsonl").exists()

    page.locator("#corpus-files input").click()
    page.get_by_role("option", name="festival.txt").click()
    page.click("#remove")
    expect(page.locator("#library-note")).to_contain_text("Removed festival.txt")
    page.click("#rebuild")
    expect(page.locator("#library-note")).to_contain_text("Rebuilt", timeout=180_000)
    expect(page.locator("#articles")).not_to_contain_text("Lantern festival")
