"""The reader's training script end to end on a tiny hand-made training set: pairs, a few
steps of the real trainer on the real base model, the ONNX export, and the exported
reader loading and scoring."""
import gzip
import json
from dataclasses import replace

import numpy as np
import pytest

from qa.reader.train import Recipe, contains_answer, length_grouped_batches, prepare, fit

ARTICLES = [
    {"id": "Harbour", "title": "Harbour",
     "text": "The harbour of Stromvik opened in 1901. Its wall was rebuilt in 1950 after a storm."
             "\n\nFishing boats land cod and haddock there. The harbour master is Ada Lee."
             "\n\nA ferry leaves for the islands twice a day. Tickets cost four pounds."},
    {"id": "Bakery", "title": "Bakery",
     "text": "The Gamma bakery won the regional bread prize. Its rye loaf impressed the judges."
             "\n\nThe baker thanked her apprentices. She opened the shop in 2010."
             "\n\nThe bakery sells about four hundred loaves a day."},
]
SQUAD = [
    ("Who is the harbour master?", "Ada Lee", "Harbour", 1),
    ("When did the harbour open?", "1901", "Harbour", 0),
    ("Which town's harbour opened in 1901?", "Stromvik", "Harbour", 0),
    ("When was the wall of Stromvik's harbour rebuilt?", "1950", "Harbour", 0),
    ("What did the bakery win?", "the regional bread prize", "Bakery", 0),
    ("When did the baker open the shop?", "2010", "Bakery", 1),
]


def write_gz(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")


@pytest.fixture(scope="module")
def training_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    write_gz(root / "squad-train" / "articles.jsonl.gz", ARTICLES)
    questions = []
    for number, (question, answer, article, paragraph) in enumerate(SQUAD):
        context = next(a for a in ARTICLES if a["id"] == article)["text"].split("\n\n")[paragraph]
        questions.append({"id": f"q{number}", "question": question, "answers": [answer],
                          "article": article, "context": context,
                          "answer_start": context.index(answer)})
    write_gz(root / "squad-train" / "questions.jsonl.gz", questions)
    news = [{**a, "id": f"https://news.example/{a['id']}", "url": f"https://news.example/{a['id']}",
             "date": "2025-01-01"} for a in ARTICLES]
    write_gz(root / "realtimeqa-train" / "articles.jsonl.gz", news)
    write_gz(root / "realtimeqa-train" / "questions.jsonl.gz", [{
        "id": "20250103_1", "question": "How often does the island ferry sail?",
        "answers": ["twice a day"], "article_ids": [n["id"] for n in news],
        "answer_article_ids": [news[0]["id"]]}])
    return root


def test_length_grouped_batches_cover_every_pair_once_in_batches_of_like_length():
    lengths = list(np.random.default_rng(0).integers(10, 200, size=1000))
    batches = length_grouped_batches(lengths, 16, np.random.default_rng(1), group=8)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(1000))
    spread = np.mean([np.ptp([lengths[i] for i in b]) for b in batches])
    assert spread < 0.3 * np.ptp(lengths)  # each batch holds pairs of similar length


def test_the_answer_rule_is_the_eval_sets():
    assert contains_answer("The harbour  master is ADA Lee.", ["Ada Lee"])
    assert not contains_answer("The harbour master is Ada.", ["Ada Lee"])


@pytest.mark.slow
def test_prepare_fit_and_export_make_a_reader_that_loads(training_data, tmp_path):
    from qa.reader.export import export_reader
    from qa.reader.model import Reader

    recipe = Recipe(squad_questions=len(SQUAD), news_repeats=2, batch_size=8,
                    squad_other_article=1.0)
    pairs_file = prepare(training_data, tmp_path / "work", recipe)
    with gzip.open(pairs_file, "rt", encoding="utf-8") as handle:
        pairs = [json.loads(line) for line in handle]
    positives = [p for p in pairs if p["label"] == 1.0]
    assert {p["text"] for p in positives} >= {
        "Harbour: The harbour master is Ada Lee.",
        "Bakery: The Gamma bakery won the regional bread prize."}
    # Negatives never hold the answer of their question.
    answers = {q: a for q, a, _, _ in SQUAD} | {
        "How often does the island ferry sail?": "twice a day"}
    assert all(answers[p["question"]].lower() not in p["text"].lower()
               for p in pairs if p["label"] == 0.0)
    assert len(pairs) > 2 * len(positives)

    trained = fit(tmp_path / "work", recipe)
    log = json.loads((trained / "training_log.json").read_text())
    assert log["pairs"] == len(pairs) and log["history"]
    info = export_reader(trained, tmp_path / "model")
    reader = Reader(tmp_path / "model")
    assert reader.fingerprint == info.fingerprint
    scores = reader.score("Who is the harbour master?",
                          ["Harbour: The harbour master is Ada Lee.",
                           "Bakery: The baker thanked her apprentices."])
    assert scores.shape == (2,) and ((scores > 0) & (scores < 1)).all()


@pytest.mark.slow
def test_the_shipped_reader_recovered_and_exported_again_is_the_same_graph(tmp_path):
    """A second round starts from the shipped weights: recovered from the int8 graph, they
    export back to the very graph that ships (its SHA-256), so nothing is lost on the way."""
    from qa.reader.export import export_reader, recover_reader
    from qa.reader.model import verify

    shipped = verify()
    recovered = recover_reader(tmp_path / "recovered")
    assert export_reader(recovered, tmp_path / "again").graph_sha256 == shipped.graph_sha256


def test_recovering_a_damaged_reader_says_so(tmp_path):
    import shutil

    from qa.errors import ReaderError
    from qa.reader.export import recover_reader
    from qa.reader.model import GRAPH, MODEL_DIR

    shutil.copytree(MODEL_DIR, tmp_path / "weights")
    with (tmp_path / "weights" / GRAPH).open("r+b") as handle:
        handle.seek(5000)
        handle.write(b"\0" * 16)
    with pytest.raises(ReaderError, match="damaged"):
        recover_reader(tmp_path / "out", tmp_path / "weights")


def test_mined_pairs_take_the_readers_choices_and_never_a_negative_with_the_answer(
        training_data, tmp_path):
    from qa.reader.mine import Mining, mine

    mining = Mining(squad_questions=len(SQUAD), news_repeats=2, news_negatives=1)
    with gzip.open(mine(training_data, tmp_path, mining), "rt", encoding="utf-8") as handle:
        pairs = [json.loads(line) for line in handle]
    answers = {q: a for q, a, _, _ in SQUAD} | {
        "How often does the island ferry sail?": "twice a day"}
    positives = {(p["question"], p["text"]) for p in pairs if p["label"] == 1.0}
    assert ("Who is the harbour master?", "Harbour: The harbour master is Ada Lee.") in positives
    assert ("How often does the island ferry sail?",
            "Harbour: A ferry leaves for the islands twice a day.") in positives
    negatives = [p for p in pairs if p["label"] == 0.0]
    assert negatives and all(answers[p["question"]].lower() not in p["text"].lower()
                             for p in negatives)
    # The news question is used once per repeat.
    assert sum(p["question"] == "How often does the island ferry sail?"
               and p["label"] == 1.0 for p in pairs) == 2


def test_a_third_round_reads_leaning_sentences_with_the_ones_before_as_queries_do(
        training_data, tmp_path):
    from qa.reader.mine import ROUNDS, mine

    mining = replace(ROUNDS[3].mining, squad_questions=len(SQUAD), news_negatives=1)
    with gzip.open(mine(training_data, tmp_path, mining), "rt", encoding="utf-8") as handle:
        pairs = [json.loads(line) for line in handle]
    positives = {(p["question"], p["text"]) for p in pairs if p["label"] == 1.0}
    assert ("When did the baker open the shop?",
            "Bakery: The baker thanked her apprentices. She opened the shop in 2010.") in positives
    # "Its wall was rebuilt..." is read after "...opened in 1901.": no negative for "when".
    answers = {q: a for q, a, _, _ in SQUAD}
    negatives = [p for p in pairs if p["label"] == 0.0 and p["question"] in answers]
    assert negatives and all(answers[p["question"]] not in p["text"] for p in negatives)
    assert any(p["text"].startswith("Bakery: The Gamma bakery won the regional bread prize. "
                                    "Its rye loaf") for p in pairs)


def test_mined_followups_are_read_after_another_question_of_their_paragraph(
        training_data, tmp_path):
    from qa.reader.mine import Mining, mine

    mining = Mining(antecedent_chain=2, squad_questions=0, followup_questions=len(SQUAD),
                    news_negatives=1)
    with gzip.open(mine(training_data, tmp_path, mining), "rt", encoding="utf-8") as handle:
        pairs = [json.loads(line) for line in handle]
    followup = ("Which town's harbour opened in 1901? "
                "When was the wall of its harbour rebuilt?")
    labelled = {(p["text"], p["label"]) for p in pairs if p["question"] == followup}
    # The answer read after the sentence it leans on, as queries read it...
    assert ("Harbour: The harbour of Stromvik opened in 1901. "
            "Its wall was rebuilt in 1950 after a storm.", 1.0) in labelled
    # ...and the earlier question's answer is not the follow-up's.
    assert ("Harbour: The harbour of Stromvik opened in 1901.", 0.0) in labelled
    assert all("1950" not in text for text, label in labelled if label == 0.0)
    # The earlier question gives "When did the harbour open?" away: it follows none.
    assert not any(p["question"].endswith("When did the harbour open?") for p in pairs)


def test_word_overlap_is_the_share_of_question_words_in_the_answer_sentence():
    from qa.reader.mine import word_overlap

    context = ARTICLES[0]["text"].split("\n\n")[1]

    def asked(question):
        return {"question": question, "answers": ["Ada Lee"], "context": context,
                "answer_start": context.index("Ada Lee")}

    # Stems without stop words ("who" is kept), counted in the answer's own sentence
    # ("The harbour master is Ada Lee."), not in the one before it ("Fishing boats...").
    assert list(word_overlap([asked("Who is the harbour master?"),
                              asked("Who is the master of the fishing boats?"),
                              asked("Who runs the port?")])) == [2 / 3, 1 / 4, 0.0]


def test_a_further_round_run_again_keeps_its_pairs(tmp_path, monkeypatch):
    # A stopped round resumes its checkpoints: they were trained on the pairs already
    # mined, so those are kept, not mined afresh by the reader that ships meanwhile.
    from qa.reader import mine as mining

    mined = []
    monkeypatch.setattr(mining, "mine", lambda data, work, how: mined.append((work, how)))
    third = mining.ROUNDS[3]
    mining.further_round(tmp_path / "data", tmp_path / "round3", third, tmp_path / "out",
                         fit_too=False)
    assert mined == [(tmp_path / "round3", third.mining)]
    (tmp_path / "round3").mkdir()
    (tmp_path / "round3" / "pairs.jsonl.gz").write_bytes(b"")
    mining.further_round(tmp_path / "data", tmp_path / "round3", third, tmp_path / "out",
                         fit_too=False)
    assert len(mined) == 1
