"""app.Page without a browser: first run with no index, upload, rebuild, friendly errors."""
from __future__ import annotations

from qa.serve.page import NO_INDEX, Page
from qa.config import Settings

ARTICLE = "Harbour Lighthouse Reopens\nThe lighthouse at Port Elsby reopened on Tuesday.\n"


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __call__(self, value, desc=None, unit="steps") -> None:
        self.calls.append((value, desc, unit))


def test_first_run_without_articles_then_upload_and_rebuild(tmp_path, fake_embedder):
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    page = Page(settings, fake_embedder)

    # No index yet: the chat explains what to do instead of crashing.
    history, box, turns = page.chat("Where is the lighthouse?", [], 3, "hybrid")
    assert box == "" and len(history) == 2 and turns == []  # an error is no turn
    assert "vb-error" in history[1]["content"] and "Rebuild index" in history[1]["content"]
    assert NO_INDEX.split(":")[0] in page.status_markdown()
    assert page.article_rows() == []

    # Rebuilding an empty corpus says why it failed.
    note, *_ = page.rebuild()
    assert note.startswith("⚠️ Rebuild failed")

    upload = tmp_path / "cache" / "lighthouse.txt"
    upload.parent.mkdir()
    upload.write_text(ARTICLE, encoding="utf-8")
    note, cleared = page.upload([str(upload), str(tmp_path / "missing.txt")])
    assert cleared is None
    assert "Added `lighthouse.txt`" in note and "Not added" in note
    assert (settings.corpus_dir / "lighthouse.txt").read_text(encoding="utf-8") == ARTICLE

    progress = Progress()
    note, status, rows = page.rebuild(progress)
    assert note.startswith("Rebuilt: **1** articles")
    assert "**1** article ·" in status and "gen-000001" in status
    assert rows == [["Harbour Lighthouse Reopens", "", 1, "lighthouse.txt"]]
    assert {desc for _, desc, _ in progress.calls} >= {"Reading and splitting articles",
                                                      "Writing the index"}

    history, _, turns = page.chat("When did the lighthouse at Port Elsby reopen?", history, 3,
                                  "bm25")
    assert len(history) == 4
    assert "lighthouse.txt" in history[3]["content"]
    # The conversation keeps the turn, as the Retriever answered it, for the next question.
    ((question, answer),) = turns
    assert question == "When did the lighthouse at Port Elsby reopen?"
    assert answer.quotes[0].article_id == "lighthouse.txt"


def test_blank_question_adds_nothing(tmp_path, fake_embedder):
    page = Page(Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index"), fake_embedder)
    history = [{"role": "user", "content": "x"}]
    assert page.chat("   ", history, 3, "hybrid") == (history, "", [])


def test_refused_upload_says_why(tmp_path, fake_embedder):
    page = Page(Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "i"),
                fake_embedder)
    bad = tmp_path / "notes.pdf"
    bad.write_bytes(b"%PDF")
    note, _ = page.upload(str(bad))
    assert "Not added" in note and "not an article type" in note
    assert not (tmp_path / "corpus").exists()


def test_the_date_fields_restrict_the_answer_and_a_bad_date_is_a_clear_error(tmp_path,
                                                                             fake_embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "news.jsonl").write_text(
        '{"id": "old", "title": "Lighthouse", "date": "2020-05-01", "text": "The lighthouse at '
        'Port Elsby closed for repairs."}\n'
        '{"id": "new", "title": "Lighthouse", "date": "2024-05-01", "text": "The lighthouse at '
        'Port Elsby reopened after repairs."}\n', encoding="utf-8")
    page = Page(Settings(corpus_dir=corpus, index_dir=tmp_path / "index"), fake_embedder)
    page.rebuild()
    question = "What happened to the lighthouse at Port Elsby?"
    _, _, turns = page.chat(question, [], 3, "bm25", [], "2023-01-01", "")
    assert [q.article_id for q in turns[0][1].quotes] == ["news.jsonl#new"]
    _, _, turns = page.chat(question, [], 3, "bm25", [], "", "")
    assert {q.article_id for q in turns[0][1].quotes} == {"news.jsonl#old", "news.jsonl#new"}
    history, _, turns = page.chat(question, [], 3, "bm25", [], "next week", None)
    assert turns == [] and "date_from must be a date" in history[1]["content"]
