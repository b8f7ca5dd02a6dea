"""A small news archive on the page in a real headless Chromium: dated `.jsonl` articles from
two publishers. The suggestions come from it, each quote names its publisher's host, and
"in 2023" in a question restricts the quotes to that year."""
from __future__ import annotations

import json

import pytest

from app_server import ask, chromium_page, start_app

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TIMEOUT_MS = 90_000
RECORDS = [
    {"id": "wall-2023", "title": "Tarnby repairs its harbour wall", "date": "2023-05-02",
     "url": "https://www.tarnby-courier.example/2023/harbour-wall",
     "text": "The council of Tarnby repaired the harbour wall in May 2023 after a winter "
             "storm broke a ten-metre section. The repair cost 400,000 euros."},
    {"id": "wall-2024", "title": "Tarnby raises its harbour wall", "date": "2024-06-11",
     "url": "https://coastnews.example.org/tarnby-raises-wall",
     "text": "The council of Tarnby raised the harbour wall by half a metre in June 2024, "
             "so that spring tides no longer flood the fish market."},
    {"id": "market-2024", "title": "Fish market reopens in Tarnby", "date": "2024-07-01",
     "url": "https://coastnews.example.org/fish-market",
     "text": "The fish market of Tarnby reopened on Monday with twelve new stalls."},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    news = "".join(json.dumps(r) + "\n" for r in RECORDS)
    app = start_app(tmp_path_factory.mktemp("archive"), {"news.jsonl": news})
    yield app
    app.stop()


def test_suggestions_publishers_and_time_words_fit_the_archive(server):
    from playwright.sync_api import expect

    with chromium_page(server.url, TIMEOUT_MS) as tab:
        # The newest headlines (the seed article has no date: it comes last), none of the
        # seed's canned questions.
        buttons = tab.locator("#examples button:visible")
        expect(buttons).to_have_text(["Fish market reopens in Tarnby",
                                      "Tarnby raises its harbour wall",
                                      "Tarnby repairs its harbour wall"])

        answer = ask(tab, "What did the council do to the harbour wall of Tarnby in 2023?")
        expect(answer.locator(".vb-read-time")).to_contain_text("articles from 2023")
        quotes = answer.locator(".vb-quote")
        expect(quotes.first.locator(".vb-source")).to_have_text("tarnby-courier.example")
        for source in quotes.locator(".vb-source").all_inner_texts():
            assert source != "coastnews.example.org"  # 2024's publisher: not in 2023

        answer = ask(tab, "What did the council do to the harbour wall of Tarnby?")
        expect(answer.locator(".vb-read-time")).to_have_count(0)
        expect(answer.locator(".vb-source", has_text="coastnews.example.org").first
               ).to_be_visible()

        # The page's date fields restrict every question, as the API's filters do.
        tab.click("#settings .label-wrap")
        tab.fill("#date-from input, #date-from textarea", "2024-06-01")
        answer = ask(tab, "What did the council do to the harbour wall of Tarnby?")
        sources = answer.locator(".vb-quote .vb-source")
        expect(sources.first).to_have_text("coastnews.example.org")
        assert "tarnby-courier.example" not in sources.all_inner_texts()
        assert tab.js_errors == []
