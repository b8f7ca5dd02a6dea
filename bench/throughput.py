"""Build throughput: `qa index --full` per configuration vs a bare fp32 encode.

The baseline is what a user would write by hand: one fp32 `SentenceTransformer.encode`
of the passage texts alone (the same "title\\npassage" texts the pipeline embeds, same
batch size, all cores). Each pipeline row is the real build, end to end (read, clean,
chunk, embed passages and sentences, FAISS, BM25, SQLite, manifest), as `qa index --full`
runs it, with one precision and one way of making the vectors:
- sentences "separate": every distinct "title\\nsentence" is embedded on its own;
  "late": sentence vectors pooled from the passage pass (qa.embed.late);
- passages "pooled": passage vectors averaged from the sentence vectors, so only the
  sentences are embedded (one pass over the text); "encoded": every passage embedded too.
"defaults" is Settings() as it stands (precision "auto": bf16 on CPUs with avx512_bf16 or
amx_bf16, else int8; sentence vectors "separate"; passage vectors "pooled" for a new
index); "encoded" is the defaults with `--passage-vectors encoded` (the default before);
"late" the defaults with `--sentence-vectors late` (bf16 or fp32: late needs torch). Each build is
`build_index(settings, embedder, full=True)`, what `qa index --full` runs after loading
the model; the one-time ONNX export of the question model (once per
model and index folder, ~20 s) is made before timing. Configurations take turns, round
by round, so a change of the machine's load hits them alike; medians are reported with
CPU seconds. The issue-13 bar: the default pipeline >= 1.5x the bare fp32 passage encode.

    python bench/throughput.py                        # 8 squad-dev articles, 2 rounds
    python bench/throughput.py --articles 24 --rounds 1 --configs fp32/separate/encoded bf16/late
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common import (  # noqa: I001
    RESULTS, SQUAD_ARTICLES, Clock, load_average, median, read_jsonl, save_result, table,
)

from qa.build import build_index
from qa.config import Settings, chunk_settings_for, cpu_has_bf16, resolve_precision
from qa.embed.transformer import SentenceTransformerEmbedder
from qa.text.chunk import chunk_article, embedding_text
from qa.text.ingest import load_corpus


def passage_texts_of(settings: Settings, embedder) -> list[str]:
    """The "title\\npassage" texts a build of `settings` cuts: what the baseline encodes."""
    chunking = chunk_settings_for(settings, embedder.max_tokens)
    return [embedding_text(c, a.text) for a in load_corpus(settings.corpus_dir).articles
            for c in chunk_article(a, embedder.count_tokens, chunking)]


def bare_encode(model, texts: list[str], batch_size: int, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=8, help="squad-dev articles (of 24)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--configs", nargs="+",
                        default=["defaults", "late"],
                        help="PRECISION/SENTENCE_VECTORS[/PASSAGE_VECTORS], 'defaults', "
                        "'encoded' or 'late' (the defaults with encoded passage vectors or late "
                        "sentence vectors)")
    args = parser.parse_args()
    print(f"{load_average()}; CPU bf16 instructions: {cpu_has_bf16()}", flush=True)
    defaults = Settings()
    configs = {}
    for name in args.configs:
        precision, mode, passages = (
            (defaults.precision, defaults.sentence_vectors, "auto") if name == "defaults"
            else (defaults.precision, defaults.sentence_vectors, "encoded") if name == "encoded"
            else (defaults.precision, "late", "auto") if name == "late"
            else (*name.split("/"), "auto")[:3])
        configs[name] = (resolve_precision(precision, int8=mode == "separate"), mode, passages)
    embedders = {p: SentenceTransformerEmbedder(precision=p) for p, *_ in configs.values()}
    fp32 = embedders.get("fp32") or SentenceTransformerEmbedder(precision="fp32")
    threads = fp32.threads
    bare_encode(fp32._model, ["warm up the model"] * 8, fp32.batch_size, threads)

    RESULTS.mkdir(parents=True, exist_ok=True)
    times: dict[str, list[Clock]] = {name: [] for name in ["bare fp32 encode", *configs]}
    reports = {}
    with tempfile.TemporaryDirectory(dir=RESULTS) as tmp:
        work = Path(tmp)
        corpus = work / "corpus" / "articles.jsonl"
        corpus.parent.mkdir()
        rows = read_jsonl(SQUAD_ARTICLES)[: args.articles]
        corpus.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        passage_texts = passage_texts_of(Settings(corpus_dir=corpus), fp32)
        for round_ in range(args.rounds):
            order = list(configs) if round_ % 2 == 0 else list(reversed(configs))
            for name in ["bare fp32 encode", *order] if round_ % 2 else [*order, "bare fp32 encode"]:
                if name == "bare fp32 encode":
                    with Clock() as clock:
                        bare_encode(fp32._model, passage_texts, fp32.batch_size, threads)
                    times[name].append(clock)
                    continue
                precision, mode, passages = configs[name]
                settings = Settings(corpus_dir=corpus, index_dir=work / name.replace("/", "-"),
                                    precision=precision, sentence_vectors=mode,
                                    passage_vectors=passages)
                if round_ == 0:  # once per model and index folder: not per build
                    embedders[precision].export_question_model(settings.index_dir)
                with Clock() as clock:
                    reports[name] = build_index(settings, embedders[precision], full=True)
                times[name].append(clock)

    passages = len(passage_texts)
    tokens = sum(min(n + 2, fp32.max_tokens) for n in fp32.count_tokens(passage_texts))
    bare = median([c.wall for c in times["bare fp32 encode"]])
    bare_cpu = median([c.cpu for c in times["bare fp32 encode"]])
    out_rows, result = [], {}
    for name, clocks in times.items():
        wall, cpu = median([c.wall for c in clocks]), median([c.cpu for c in clocks])
        what = "bare SentenceTransformer.encode, passages only" if name not in configs else (
            f"build_index --full, {configs[name][0]}, sentences {configs[name][1]}, "
            f"passages {reports[name].passage_vectors}")
        embedded = "-" if name not in configs else reports[name].texts_embedded
        out_rows.append([name, what, embedded, wall, passages / wall, f"{bare / wall:.2f}x",
                         f"{bare_cpu / cpu:.2f}x"])
        result[name] = {"wall": [c.wall for c in clocks], "cpu": [c.cpu for c in clocks]}
    print(f"\n{args.articles} squad-dev articles, {passages} passages, {tokens:,} passage tokens; "
          f"median of {args.rounds}; {load_average()}")
    print(table(["config", "what", "texts embedded", "seconds", "passages/s",
                 "vs bare (wall)", "vs bare (CPU)"], out_rows))
    if "defaults" in configs:
        ratio = bare / median([c.wall for c in times["defaults"]])
        precision, mode, _ = configs["defaults"]
        print(f"\ndefaults ({precision}/{mode}/{reports['defaults'].passage_vectors}) vs bare "
              "fp32 passage encode: "
              f"{ratio:.2f}x ({'meets' if ratio >= 1.5 else 'BELOW'} the 1.5x bar)")
    for name in configs:
        per_passage = median([c.wall for c in times[name]]) / passages
        print(f"projected 1M-passage build, {name}, at this load: "
              f"{per_passage * 1e6 / 3600:.1f} h (hours = 1,000,000 x {per_passage * 1000:.1f} "
              f"ms per passage / 3600; squad passages average {tokens / passages:.0f} tokens)")
    save_result("throughput", {"configs": configs, "passages": passages, "tokens": tokens,
                               "times": result})


if __name__ == "__main__":
    main()
