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
from qa.reader.model import ABOUT, GRAPH, MODEL_DIR, TOKENIZER, Reader, ReaderInfo, verify

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



def recover_reader(target: Path, folder: Path = MODEL_DIR) -> Path:
    """The shipped int8 graph back as a Hugging Face model folder (fp32 weights).

    Each int8 weight times its scale is the weight the graph computes with, so the folder
    scores like the shipped reader (re-exported, the same int8 graph comes back). A second
    training round starts from it: the fp32 checkpoint of a round is never committed.
    """
    import onnx
    import torch
    from onnx import numpy_helper
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from qa.embed import bundled_model_path

    info = verify(folder)
    graph = onnx.load(str(folder / GRAPH)).graph
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}

    def dequantised(name: str) -> np.ndarray:
        q = values[f"{name}_quantized"].astype(np.float32)
        zero = values[f"{name}_zero_point"].astype(np.float32)
        return (q - zero) * values[f"{name}_scale"]  # per tensor or per output column

    state = {name: torch.tensor(value) for name, value in values.items()
             if name.startswith(("bert.", "classifier."))
             and not name.endswith(("_quantized", "_scale", "_zero_point"))}
    for table in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        state[f"bert.embeddings.{table}.weight"] = torch.tensor(
            dequantised(f"bert.embeddings.{table}.weight"))
    # The exporter names a linear layer's weight onnx::MatMul_N: the layer is the one whose
    # bias the MatMul's output is added to, a few nodes on.
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            continue
        weight = node.input[1].removesuffix("_quantized")
        bias, frontier = None, [node.output[0]]
        for _ in range(6):
            following = [c for t in frontier for c in consumers.get(t, ())]
            bias = next((i for c in following for i in c.input
                         if i.endswith(".bias") and i in values), None)
            if bias:
                break
            frontier = [o for c in following for o in c.output]
        if bias is None:
            raise ValueError(f"{folder / GRAPH}: no layer found for the weight {weight}")
        state[bias.removesuffix(".bias") + ".weight"] = torch.tensor(
            np.ascontiguousarray(dequantised(weight).T))  # torch keeps (out, in)
    config = BertConfig.from_pretrained(str(bundled_model_path()))
    config.num_labels = 1
    config.sentence_transformers = {"max_length": info.max_length}
    model = BertForSequenceClassification(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{folder / GRAPH} is not a reader graph this code can recover "
                         f"(missing {missing}, unexpected {unexpected})")
    model.eval().save_pretrained(str(target))
    tokenizer = AutoTokenizer.from_pretrained(str(bundled_model_path()))
    tokenizer.model_max_length = info.max_length
    tokenizer.save_pretrained(str(target))
    return target
