"""Synthetic index generations of any size, in the real on-disk format, from a real one.

Embedding a million passages takes hours on 2 cores, so the big indexes are made from the
squad-dev index built with the real model: article copy c of base article a repeats a's
text (title suffixed "(c)", one date per copy), with the same passages and sentences.
Passage vectors of copies c > 0 mix the real vector with two random other real passage
vectors plus a little noise (see write_passage_vectors): plain noisy copies sit in tight
clusters around the 1,206 real vectors, where any IVF finds the exact top 10 (recall 1.0
at every setting measured), which tells nothing. Sentence vectors are exact copies. Texts go through the real BM25 and SQLite writers, so posting lists,
SQLite pages and files are what a real archive of this size would have (longer articles
than news: squad articles are Wikipedia pages of ~50 passages).

    python bench/synthetic.py 1000000            # build (or reuse) bench/results/synth-1000000
    python bench/synthetic.py 1000000 --faiss "IVF1024,Flat"   # swap only the FAISS index
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from common import (  # noqa: I001
    RESULTS, Clock, current_chunker, current_generation, folder_mb, squad_index,
)

from qa.index import layout
from qa.index.db import PassageDB, PassageRow, write_db
from qa.index.lexical import LexicalIndex, tokenize
from qa.index.manifest import MANIFEST, file_entries, read_manifest
from qa.index.dense import FaissDense, choose_factory
from qa.index.vectors import load_vectors
from qa.types import Article, Span

NOISE = 0.02
MIX = 0.8
CHUNK = 65_536


def synthetic_dir(n: int) -> Path:
    return RESULTS / f"synth-{n}" / "index"


def _base(base_index: Path):
    gen = current_generation(base_index)
    db = PassageDB(gen / layout.DB_FILE)
    try:
        infos = {a.id: a for a in db.articles()}
        rows = db.passage_rows()
        texts = {aid: db.article_text(aid) for aid in infos}
    finally:
        db.close()
    order = [aid for aid in sorted(rows, key=lambda a: rows[a][0].id)]
    return gen, infos, rows, texts, order


def _plan(n: int, rows: dict, order: list[str]):
    """(copy, article id, rows) in passage-id order until n passages."""
    total = 0
    copy = 0
    while total < n:
        for aid in order:
            take = rows[aid][: n - total]
            if not take:
                return
            yield copy, aid, take
            total += len(take)
            if total >= n:
                return
        copy += 1


def _plan_arrays(plan: list, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(base passage id, copy number) of every synthetic passage."""
    base_ids = np.fromiter((r.id for _, _, take in plan for r in take), np.int64, n)
    copies = np.fromiter((c for c, _, take in plan for _ in take), np.int64, n)
    return base_ids, copies


def write_passage_vectors(gen: Path, base_vectors: np.ndarray, base_ids: np.ndarray,
                          copies: np.ndarray, noise: float, mix: float, seed: int) -> None:
    """vectors.npy: copy 0 of a passage is its real vector; copy c > 0 is
    normalize(v + mix * (u1 * v_r1 + u2 * v_r2) + noise * N(0, I)) with r1, r2 random real
    passages and u1, u2 ~ U(0, 1): copies spread between real passages instead of sitting
    in tight clusters around them, which is what makes approximate search easy."""
    rng = np.random.default_rng(seed)
    n, dim = len(base_ids), base_vectors.shape[1]
    out = np.lib.format.open_memmap(gen / layout.VECTORS_FILE, "w+", np.float32, (n, dim))
    for start in range(0, n, CHUNK):
        block = base_vectors[base_ids[start:start + CHUNK]].copy()
        noisy = np.flatnonzero(copies[start:start + CHUNK] > 0)
        if noisy.size:
            others = base_vectors[rng.integers(0, len(base_vectors), (noisy.size, 2))]
            weights = rng.random((noisy.size, 2, 1), dtype=np.float32)
            block[noisy] += mix * (weights * others).sum(axis=1)
            block[noisy] += noise * rng.standard_normal((noisy.size, dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:start + CHUNK] = block
    out.flush()
    del out


# How the copies were made; beside the manifest, whose keys are fixed by qa.index.manifest.
SIDECAR = "synthetic.json"


def _read_synth(gen: Path) -> dict:
    path = gen / SIDECAR
    return json.loads(path.read_text()) if path.is_file() else {}


def _write_manifest(gen: Path, manifest: dict, synth: dict) -> None:
    """Write the sidecar, then the manifest with this folder's own file sizes and hashes,
    and check that the real reader accepts it."""
    (gen / SIDECAR).write_text(json.dumps(synth, indent=2))
    manifest["files"] = {name: {"size": e.size, "sha256": e.sha256}
                         for name, e in file_entries(gen).items()}
    (gen / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    read_manifest(gen)


def build(n: int, *, factory: str | None = None, noise: float = NOISE, mix: float = MIX,
          seed: int = 0,
          base_index: Path | None = None, quiet: bool = False) -> Path:
    """Build (or reuse) the synthetic index of `n` passages; returns its index folder."""
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    index_dir = synthetic_dir(n)
    requested, factory = factory, factory or choose_factory(n)
    gen_name = layout.generation_name(1)
    gen = index_dir / gen_name
    manifest_path = gen / MANIFEST
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        synth = _read_synth(gen)
        if manifest["chunker"] != current_chunker():
            # Chunker settings only describe how the base index was cut; a synthetic
            # generation keeps its passages and takes the running code's section.
            manifest["chunker"] = current_chunker()
            _write_manifest(gen, manifest, synth)
        factory = requested or manifest["dense"]["factory"]  # None: keep what is there
        rebuild_dense = manifest["dense"]["factory"] != factory
        if (synth.get("noise"), synth.get("mix"), synth.get("seed")) != (noise, mix, seed):
            say(f"synth-{n}: rewriting the passage vectors (noise {noise}, mix {mix})")
            base_gen, _, rows, _, order = _base(base_index or squad_index("fp32"))
            base_vectors = np.asarray(load_vectors(base_gen / layout.VECTORS_FILE), np.float32)
            base_ids, copies = _plan_arrays(list(_plan(n, rows, order)), n)
            (gen / layout.VECTORS_FILE).unlink()
            write_passage_vectors(gen, base_vectors, base_ids, copies, noise, mix, seed)
            synth.update(noise=noise, mix=mix, seed=seed)
            rebuild_dense = True
        if rebuild_dense:
            say(f"synth-{n}: building the FAISS index {factory!r}")
            vectors = load_vectors(gen / layout.VECTORS_FILE)
            with Clock() as clock:
                FaissDense.build(vectors, factory).save(gen / layout.DENSE_FILE)
            manifest["dense"] = {"backend": "faiss", "factory": factory}
            synth["faiss_build_seconds"] = round(clock.wall, 1)
            say(f"  {clock.wall:.1f} s")
            _write_manifest(gen, manifest, synth)
        return index_dir
    shutil.rmtree(index_dir, ignore_errors=True)
    gen.mkdir(parents=True)

    base_gen, infos, rows, texts, order = _base(base_index or squad_index("fp32"))
    base_manifest = json.loads((base_gen / MANIFEST).read_text())
    base_vectors = np.asarray(load_vectors(base_gen / layout.VECTORS_FILE), dtype=np.float32)
    base_sentences = np.asarray(load_vectors(base_gen / layout.SENTENCE_VECTORS_FILE))
    plan = list(_plan(n, rows, order))
    sentence_total = sum(len(r.sentences) for _, _, take in plan for r in take)
    seconds: dict[str, float] = {}
    say(f"synth-{n}: {len(plan)} articles, {n} passages, {sentence_total} sentences")

    # Vectors: passage ids in plan order; copy 0 is the real vectors, later copies mixed.
    with Clock() as clock:
        base_ids, copies = _plan_arrays(plan, n)
        write_passage_vectors(gen, base_vectors, base_ids, copies, noise, mix, seed)
        sentence_ids = np.fromiter(
            (r.first_sentence + i for _, _, take in plan for r in take
             for i in range(len(r.sentences))), np.int64, sentence_total)
        out = np.lib.format.open_memmap(gen / layout.SENTENCE_VECTORS_FILE, "w+",
                                        base_sentences.dtype, (sentence_total, base_sentences.shape[1]))
        for start in range(0, sentence_total, CHUNK * 4):
            out[start:start + CHUNK * 4] = base_sentences[sentence_ids[start:start + CHUNK * 4]]
        out.flush()
        del out
    seconds["vectors"] = clock.wall
    say(f"  vectors {clock.wall:.1f} s")

    # Articles and passages through the real SQLite writer.
    def articles():
        seen = set()
        for copy, aid, _ in plan:
            info = infos[aid]
            new_id = f"{aid}~{copy:05d}"
            if new_id in seen:
                continue
            seen.add(new_id)
            title = info.title if copy == 0 else f"{info.title} ({copy})"
            day = (date(2001, 1, 1) + timedelta(days=copy)).isoformat()
            yield (Article(new_id, title, texts[aid], info.source, day, info.url),
                   info.content_hash)

    def passage_rows():
        pid = first = 0
        for copy, aid, take in plan:
            for r in take:
                yield PassageRow(pid, f"{aid}~{copy:05d}", r.start, r.end, r.context, first,
                                 tuple(Span(s.start, s.end) for s in r.sentences))
                pid += 1
                first += len(r.sentences)

    with Clock() as clock:
        write_db(gen / layout.DB_FILE, articles(), passage_rows())
    seconds["sqlite"] = clock.wall
    say(f"  sqlite {clock.wall:.1f} s")

    # BM25 through the real bm25s indexer (texts repeat, so tokenize each base text once).
    with Clock() as clock:
        base_rows = {r.id: (aid, r) for aid in order for r in rows[aid]}
        base_tokens = dict(zip(base_rows, tokenize(
            [texts[aid][r.start:r.end] for aid, r in base_rows.values()])))
        LexicalIndex.from_tokens([base_tokens[int(b)] for b in base_ids]).save(
            gen / layout.LEXICAL_DIR)
    seconds["bm25"] = clock.wall
    say(f"  bm25 {clock.wall:.1f} s")

    with Clock() as clock:
        vectors = load_vectors(gen / layout.VECTORS_FILE)
        FaissDense.build(vectors, factory).save(gen / layout.DENSE_FILE)
    seconds["faiss"] = clock.wall
    say(f"  faiss {factory} {clock.wall:.1f} s")

    manifest = {
        **base_manifest,
        "chunker": current_chunker(),
        "generation": gen_name,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "corpus_dir": f"synthetic copies of {base_manifest.get('corpus_dir')}",
        "dense": {"backend": "faiss", "factory": factory},
        "counts": {"articles": len({(c, a) for c, a, _ in plan}), "passages": n,
                   "sentences": sentence_total},
        "articles": {f"{a}~{c:05d}": infos[a].content_hash for c, a, _ in plan},
    }
    synth = {"n": n, "noise": noise, "mix": mix, "seed": seed,
             "build_seconds": {k: round(v, 1) for k, v in seconds.items()}}
    _write_manifest(gen, manifest, synth)
    layout.switch_current(index_dir, gen_name)
    say(f"  {folder_mb(gen):,.0f} MiB on disk")
    return index_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", type=int, nargs="+", help="passage counts")
    parser.add_argument("--faiss", help="FAISS factory (default: qa.index.dense.choose_factory)")
    parser.add_argument("--noise", type=float, default=NOISE)
    parser.add_argument("--mix", type=float, default=MIX)
    args = parser.parse_args()
    for n in args.sizes:
        print(build(n, factory=args.faiss, noise=args.noise, mix=args.mix))


if __name__ == "__main__":
    main()
