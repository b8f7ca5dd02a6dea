"""A trained reader (a Hugging Face folder) -> the int8 ONNX graph the package ships.

Run by `python -m qa.reader.train export`; needs torch, which answering never does.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from qa.embed.onnx import quantise_int8
from qa.reader.model import ABOUT, GRAPH, MODEL_DIR, TOKENIZER, Reader, ReaderInfo

FP32_GRAPH = "reader-fp32.onnx"  # only while exporting: quantised into GRAPH
# Pairs that the exported graph must score like the torch model (a smoke check; the
# quality sets are the real test).
_CHECK_PAIRS = (
    ("Who formed the alliance?", "Tech news: Huawei, Baidu and SenseTime formed the alliance."),
    ("When did the war start?", "History: The weather was mild that spring."),
    ("What does the company make?", "Business: The firm makes chips for phones and cars."),
)


def export_reader(trained: Path, target: Path = MODEL_DIR, max_length: int | None = None,
                  quantise: bool = True) -> ReaderInfo:
    """Write `trained` as `target`/reader.onnx (+ tokenizer.json, reader.json), atomically.

    Returns what reader.json records. The largest probability gap to the torch model on a
    few pairs is printed: int8 weights move probabilities by a few hundredths at most.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(trained)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(trained))
    config = json.loads((trained / "config.json").read_text(encoding="utf-8"))
    max_length = max_length or int(
        config.get("sentence_transformers", {}).get("max_length") or tokenizer.model_max_length)
    temp = target.with_name(f".tmp-{target.name}")
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    try:
        features = tokenizer([q for q, _ in _CHECK_PAIRS], [t for _, t in _CHECK_PAIRS],
                             padding=True, return_tensors="pt")
        names = ["input_ids", "attention_mask", "token_type_ids"]
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on data-dependent branches
            expected = torch.sigmoid(model(**features).logits[:, 0]).numpy()
            torch.onnx.export(
                model, tuple(features[n] for n in names), str(temp / FP32_GRAPH),
                input_names=names, output_names=["logits"], opset_version=17, dynamo=False,
                dynamic_axes={n: {0: "batch", 1: "tokens"} for n in names}
                | {"logits": {0: "batch"}},
            )
        if quantise:
            quantise_int8(temp / FP32_GRAPH, temp / GRAPH)
            (temp / FP32_GRAPH).unlink()
        else:
            os.replace(temp / FP32_GRAPH, temp / GRAPH)
        tokenizer.backend_tokenizer.save(str(temp / TOKENIZER))
        with (temp / GRAPH).open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        info = ReaderInfo(max_length=max_length, graph_sha256=digest,
                          precision="int8" if quantise else "fp32",
                          base_model="sentence-transformers/all-MiniLM-L6-v2")
        (temp / ABOUT).write_text(json.dumps(info.to_json(), indent=2) + "\n",
                                  encoding="utf-8")
        reader = Reader(temp)
        got = reader.score_pairs([q for q, _ in _CHECK_PAIRS], [t for _, t in _CHECK_PAIRS])
        print(f"exported probabilities {np.round(got, 3)} vs torch {np.round(expected, 3)} "
              f"(largest gap {np.abs(got - expected).max():.3f})")
        # Keep files the export does not make (the model card) across a re-export.
        for extra in target.glob("*") if target.exists() else ():
            if not (temp / extra.name).exists():
                shutil.copy2(extra, temp / extra.name)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return info

