"""Readers never see errors or a mix of generations while builds switch and delete them."""
from __future__ import annotations

import shutil
import threading
import time

import numpy as np
import pytest

from index_helpers import (
    NEW_FILE, NEW_QUESTION, add_new_article, copy_index, hit_keys, seed_questions,
)
from qa.index import layout
from qa.build import build_index
from qa.index.generation import Generation
from qa.retriever import Retriever


def test_a_loaded_generation_survives_deletion_of_its_folder(seed_settings, tmp_path):
    """Everything is opened at load time, so a build may delete a generation a reader holds."""
    settings = copy_index(seed_settings, tmp_path)
    path = settings.index_dir / layout.read_current(settings.index_dir)
    generation = Generation.open(path)
    query = np.asarray(generation.vectors[3], dtype=np.float32)[None, :]
    before = (generation.dense.search(query, 5)[1].tolist(),
              generation.lexical.search("Huawei alliance", 5)[1].tolist(),
              generation.db.passages([0, 3]), np.array(generation.sentence_vectors[:4]))
    shutil.rmtree(path)
    assert not path.exists()
    after = (generation.dense.search(query, 5)[1].tolist(),
             generation.lexical.search("Huawei alliance", 5)[1].tolist(),
             generation.db.passages([0, 3]), np.array(generation.sentence_vectors[:4]))
    assert after[:3] == before[:3]
    np.testing.assert_array_equal(after[3], before[3])
    assert generation.db.articles()[0].passages > 0
    generation.close()


@pytest.mark.slow
def test_readers_see_old_or_new_generation_during_rebuilds(seed_settings, real_embedder,
                                                           tmp_path):
    settings = copy_index(seed_settings, tmp_path)
    ferry_question = "What was replaced on the island ferry?"
    questions = [q["question"] for q in seed_questions()[:4]] + [NEW_QUESTION, ferry_question]
    retriever = Retriever.open(settings, real_embedder)

    def expected_now() -> tuple[str, dict[str, tuple]]:
        fresh = Retriever.open(settings, real_embedder)
        return fresh.generation.name, {q: hit_keys(fresh.search(q, k=5)) for q in questions}

    expected = dict([expected_now()])
    first = next(iter(expected))
    seen: list[tuple[str, tuple]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read(offset: int) -> None:
        n = offset
        while not stop.is_set():
            question = questions[n % len(questions)]
            n += 1
            try:
                seen.append((question, hit_keys(retriever.search(question, k=5))))
                if n % 3 == 0:
                    assert retriever.answer(question).question == question
            except BaseException as exc:  # noqa: BLE001 - any error fails the test
                errors.append(exc)

    readers = [threading.Thread(target=read, args=(i,)) for i in range(4)]
    for reader in readers:
        reader.start()
    try:
        time.sleep(0.5)
        # Build 1 adds an article; build 2 removes it again and adds another, so the first
        # generation is deleted while readers may still hold it.
        add_new_article(settings)
        build_index(settings, real_embedder)
        name, results = expected_now()
        expected[name] = results
        time.sleep(0.5)
        (settings.corpus_dir / NEW_FILE).unlink()
        (settings.corpus_dir / "ferry.txt").write_text(
            "Ferry back in service\n\nThe island ferry sails again after its engine was "
            "replaced.\n\nThe first crossing carried forty cars.")
        build_index(settings, real_embedder)
        name, results = expected_now()
        expected[name] = results
        time.sleep(1.0)
    finally:
        stop.set()
        for reader in readers:
            reader.join(60)

    assert errors == [], errors[:3]
    assert len(expected) == 3 and first not in layout.generations(settings.index_dir)
    assert retriever.generation.name == name
    per_generation = {name: 0 for name in expected}
    for question, keys in seen:
        matches = [name for name, results in expected.items() if results[question] == keys]
        assert matches, f"{question!r} got {keys}, which no generation gives"
        for name in matches:
            per_generation[name] += 1
    assert len(seen) >= 20 and all(per_generation.values()), per_generation
    # The new articles' questions really tell the three generations apart.
    assert len({(r[NEW_QUESTION], r[ferry_question]) for r in expected.values()}) == 3
