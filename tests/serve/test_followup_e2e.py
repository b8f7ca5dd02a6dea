"""A conversation on the seed page in a real headless Chromium: a follow-up is read with the
question before it, and "New conversation" forgets it."""
from __future__ import annotations

import pytest

from app_server import ROOT, ask, chromium_page, start_app

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TIMEOUT_MS = 90_000
DOCS_SCREENSHOT = ROOT / "docs" / "followup.png"
FIRST = "What is StepFun known for?"
BAIDU = "Baidu, a leader in AI research and innovation"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app = start_app(tmp_path_factory.mktemp("conversation"))
    yield app
    app.stop()


def test_a_follow_up_is_read_with_the_question_before_and_new_conversation_forgets(server):
    from playwright.sync_api import expect

    with chromium_page(server.url, TIMEOUT_MS, height=1300) as tab:
        first = ask(tab, FIRST)
        expect(first.locator("mark").first).to_contain_text("StepFun")
        follow_up = ask(tab, "And Baidu?")
        expect(follow_up.locator(".vb-read-with")).to_contain_text(FIRST)
        expect(follow_up.locator(".vb-quote").first.locator("mark").first).to_contain_text(BAIDU)
        if DOCS_SCREENSHOT.parent.is_dir():  # the README's picture: the follow-up on top
            follow_up.evaluate("""e => { e.scrollIntoView({block: 'start'});
                let box = e.parentElement;
                while (box && box.scrollHeight <= box.clientHeight) box = box.parentElement;
                if (box) box.scrollTop -= 80; }""")
            tab.screenshot(path=str(DOCS_SCREENSHOT))

        tab.click("#new-conversation")
        expect(tab.locator("#chat .vb-answer")).to_have_count(0)
        alone = ask(tab, "And Baidu?")
        expect(alone.locator(".vb-read-with")).to_have_count(0)
        assert tab.js_errors == []
