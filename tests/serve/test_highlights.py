"""The promise every face makes: the answering sentence marked at its exact place in the
article's own text, through the CLI's --json, the JSON API and the page's DOM (headless
Chromium), for a quote mid-article, a quote merged from overlapping passages, and text with
multi-byte characters (the real app, the real model, one server for all three)."""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from app_server import ROOT, ask, chromium_page, start_app
from conftest import SEED_FILE
from qa.text.ingest import load_corpus

pytestmark = pytest.mark.slow

TIMEOUT_MS = 90_000

# One paragraph longer than a passage: the chunker cuts it into overlapping windows, and
# the answer sits in the later one, so the quote is both windows merged and starts before
# the passage that ranked first. The short paragraph before it puts it mid-article.
LONG_PARAGRAPH = " ".join([
    "The town council of Elmbridge approved the expansion of the Riverside public library on "
    "Monday evening after a debate that lasted more than four hours.",
    "Supporters packed the council chamber, many of them parents who said the children's "
    "section had been too small for a decade.",
    "Opponents argued that the money would be better spent on road repairs, pointing to the "
    "potholes on the high street that residents have complained about since the floods.",
    "The plan was drawn up by the architects Hale and Morrow, who also designed the town's "
    "swimming pool and the new bus station beside the railway line.",
    "It keeps the Victorian facade of the old building and adds a glass wing on the side "
    "that faces the river, where the car park is now.",
    "The council's planning officer said the design had been changed twice after objections "
    "from the heritage society about the height of the new wing.",
    "Work is due to start in the spring, once the contractor has been chosen from the four "
    "firms that have bid for the job.",
    "During the building work the library will move to temporary rooms in the former post "
    "office on Market Street, with a smaller collection and shorter opening hours.",
    "The head librarian, Margaret Okafor, told the meeting that the temporary rooms would "
    "still have computers for people who need them to apply for jobs.",
    "She also promised that the weekly reading group for older residents and the homework "
    "club would carry on in the church hall nearby.",
    "Several speakers asked what would happen to the local history archive, which holds "
    "parish records going back three hundred years.",
    "The archive will be stored at the county record office until the new building is "
    "finished, the council said.",
    "The glass wing will hold a reading room with 180 seats and a roof terrace overlooking "
    "the river.",
    "The expansion will cost 6.4 million pounds, of which a national lottery grant pays 2.5 "
    "million and the council borrows the rest.",
])
LIBRARY = ("Riverside library doubles in size\n"
           "ELMBRIDGE — Councillors voted nine to four for the plan; the mayor abstained.\n"
           f"{LONG_PARAGRAPH}\n")
# Two-, three- and four-byte characters before the quote and inside it.
CAFE = """Zürich café wins the Golden Bean
ZÜRICH — Café Müller, a family bakery in Zürich’s old town, has run since 1921.
On Friday the café won the 2025 Golden Bean award for its crème brûlée and its espresso 🎉.
Owner Jürgen Müller said the prize of 12,000 francs will pay for a second roaster.
The jury, chaired by the Kyoto pastry chef Sato Haruki (佐藤春樹), visited 40 cafés.
"""

SEATS = ("The glass wing will hold a reading room with 180 seats and a roof terrace "
         "overlooking the river.")
CASES = [  # question, the article of the first quote, the sentences it marks (in order)
    pytest.param("What hardware did the US export bans target?", SEED_FILE.name,
                 ("The export bans on Nvidia GPUs are indicative of attempts to retain an "
                  "upper hand in the global AI race, which has subsequently prompted Chinese "
                  "AI giants like Huawei and Baidu to innovate domestically.",),
                 id="seed-mid-article"),
    pytest.param("How many seats will the new reading room have?", "library.txt", (SEATS,),
                 id="merged-passages"),
    pytest.param("What will the prize money pay for?", "cafe.txt",
                 ("Owner Jürgen Müller said the prize of 12,000 francs will pay for a "
                  "second roaster.",), id="multi-byte"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app = start_app(tmp_path_factory.mktemp("highlights"),
                    {"library.txt": LIBRARY, "cafe.txt": CAFE})
    yield app
    app.stop()


@pytest.fixture(scope="module")
def articles(server) -> dict[str, str]:
    """Each article's text as the index stores it: what quotes and offsets refer to."""
    return {a.id: a.text for a in load_corpus(server.corpus).articles}


def at(article_text: str, sentences) -> list[tuple[int, str]]:
    """The expected marks: each sentence at the offset where the article has it."""
    return [(article_text.index(s), s) for s in sentences]


def check_first_quote(answer: dict, articles: dict[str, str], article: str, sentences) -> None:
    """The first quote is `article`'s own characters at its offsets, and marks exactly
    `sentences` at theirs."""
    assert answer["abstained"] is False, answer
    quote = answer["quotes"][0]
    assert quote["article_id"] == article
    text = articles[article]
    assert text[quote["start"]:quote["end"]] == quote["text"]
    marked = [(quote["start"] + h["start"], quote["text"][h["start"]:h["end"]])
              for h in quote["highlights"]]
    assert marked == at(text, sentences)
    if article == "library.txt":  # both windows of the long paragraph, merged
        assert quote["text"] == LONG_PARAGRAPH


@pytest.mark.parametrize("question,article,sentences", CASES)
def test_cli_json_marks_the_exact_sentence(server, articles, question, article, sentences):
    result = subprocess.run(
        [sys.executable, "-m", "qa", "ask", question, "--index", str(server.index), "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    check_first_quote(json.loads(result.stdout), articles, article, sentences)


@pytest.mark.parametrize("question,article,sentences", CASES)
def test_api_marks_the_exact_sentence(server, articles, question, article, sentences):
    request = urllib.request.Request(
        server.url + "api/ask", data=json.dumps({"question": question}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=120) as response:
        check_first_quote(json.load(response), articles, article, sentences)


@pytest.fixture(scope="module")
def page(server):
    with chromium_page(server.url, TIMEOUT_MS) as tab:
        yield tab


# The blockquote's text in document order as [text, index of its <mark> or -1]: a <br> is
# the article's line break; the "…" of a trimmed side is not the article's text.
SEGMENTS_JS = """bq => {
  const marks = Array.from(bq.querySelectorAll('mark'));
  const out = [];
  const walker = document.createTreeWalker(bq, NodeFilter.SHOW_TEXT | NodeFilter.SHOW_ELEMENT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.nodeType === Node.ELEMENT_NODE) {
      if (n.nodeName === 'BR') out.push(['\\n', -1]);
    } else if (!n.parentElement.closest('.vb-gap')) {
      out.push([n.data, marks.indexOf(n.parentElement.closest('mark'))]);
    }
  }
  return out;
}"""


@pytest.mark.e2e
@pytest.mark.parametrize("question,article,sentences", CASES)
def test_page_marks_the_exact_sentence(page, articles, question, article, sentences):
    quote = ask(page, question).locator(".vb-quote").first
    segments = quote.locator("blockquote").evaluate(SEGMENTS_JS)
    shown = "".join(text for text, _ in segments)
    text = articles[article]
    where = text.find(shown)  # what the page shows is the article's text, verbatim...
    assert where >= 0, shown
    marked: dict[int, tuple[int, str]] = {}
    offset = where
    for part, mark in segments:
        if mark >= 0:  # ...and each <mark> sits at its sentence's offset in the article
            start, before = marked.get(mark, (offset, ""))
            marked[mark] = (start, before + part)
        offset += len(part)
    assert [marked[i] for i in sorted(marked)] == at(text, sentences)
