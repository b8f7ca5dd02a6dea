"""Questions -> vectors with ONNX Runtime and `tokenizers`: answering never imports torch.

A build (which has the torch model loaded anyway) exports the model once per model
fingerprint into `index/models/<fingerprint>/`: the transformer with its mean pooling and
L2 normalisation as one ONNX graph, its weights quantised to int8 (dynamic, per channel),
and the exact tokenizer it was embedded with. A Retriever then embeds questions with ONNX
Runtime on one thread (the only onnxruntime import) and starts without torch. The int8
graph is ~4x faster than the fp32 one (p50 ~2.5 vs 9.6 ms) with vectors at cosine >= 0.99
to the torch model's and equal quality (squad-dev 1/3: recall@1 0.8793 vs 0.8782 fp32,
recall@5 0.9741 vs 0.9730, highlight@1 0.7718 vs 0.7702; the seed sets identical; every
8th squad-dev question: recall@1 0.867 vs 0.872, recall@5 0.982 vs 0.977; docs/BENCHMARKS.md).
Models that are not Transformer -> mean pooling keep the torch path.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MODELS_DIR = "models"
GRAPH = "question.onnx"
FP32_GRAPH = "question-fp32.onnx"  # only while exporting: quantised into GRAPH
TOKENIZER = "tokenizer.json"
ABOUT = "model.json"
# Bumped when the exported graph changes, so an older export is made again (2: int8).
EXPORT_VERSION = 2


@dataclass(frozen=True, slots=True)
class ExportedModel:
    """What `model.json` says about an export: the model it answers for."""

    model_id: str
    fingerprint: str
    dim: int
    max_tokens: int
    export_version: int
    graph_sha256: str


def export_folder(index_dir: Path, fingerprint: str) -> Path:
    """Where the export of the model with `fingerprint` lives (a name safe as a path)."""
    return Path(index_dir) / MODELS_DIR / hashlib.sha256(fingerprint.encode()).hexdigest()[:16]


def read_export(folder: Path, fingerprint: str) -> ExportedModel | None:
    """The export in `folder` if it is complete, of this version, for this model and
    undamaged (its graph matches the checksum in model.json); else None."""
    try:
        about = ExportedModel(**json.loads((folder / ABOUT).read_text(encoding="utf-8")))
        with (folder / GRAPH).open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    except (OSError, ValueError, TypeError):
        return None
    if (about.export_version, about.fingerprint, about.graph_sha256) != (
            EXPORT_VERSION, fingerprint, digest) or not (folder / TOKENIZER).is_file():
        return None
    return about


def export_question_model(transformer, tokenizer, about: ExportedModel, folder: Path) -> None:
    """Write `transformer` (a Hugging Face BERT-like model) + mean pooling + normalisation
    as one ONNX graph, with `tokenizer` (a fast tokenizer), into `folder`, atomically.
    `about.graph_sha256` is filled in here."""
    import torch

    class Pooled(torch.nn.Module):
        """Transformer -> mean over real tokens -> unit length: the sentence vector."""

        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    temp = folder.with_name(f".tmp-{folder.name}")
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    try:
        ids = torch.ones((1, 12), dtype=torch.long)
        was_training = transformer.training
        transformer.eval()
        # The tracer warns about data-dependent branches of the attention code; the graph is
        # checked against the torch model's vectors by the tests instead.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Pooled(transformer), (ids, torch.ones_like(ids), torch.zeros_like(ids)),
                str(temp / FP32_GRAPH), input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["embedding"], opset_version=17, dynamo=False,
                dynamic_axes={name: {0: "batch", 1: "tokens"}
                              for name in ("input_ids", "attention_mask", "token_type_ids")}
                | {"embedding": {0: "batch"}},
            )
        transformer.train(was_training)
        quantise_int8(temp / FP32_GRAPH, temp / GRAPH)
        (temp / FP32_GRAPH).unlink()
        tokenizer.backend_tokenizer.save(str(temp / TOKENIZER))
        with (temp / GRAPH).open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        fields = {**{k: getattr(about, k) for k in about.__slots__}, "graph_sha256": digest}
        (temp / ABOUT).write_text(json.dumps(fields, indent=2), encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(temp, folder)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def quantise_int8(source: Path, target: Path) -> None:
    """int8 weights (dynamic quantisation, one scale per output channel): per-tensor scales
    lost more (cosine to fp32 ~0.92 with torch's quantize_dynamic, bench/query_embed.py)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantiser logs advice ("consider pre-processing") on the root logger.
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8,
                             per_channel=True)
    finally:
        logging.disable(logging.NOTSET)


class OnnxQuestionEncoder:
    """Embeds questions with an exported model: the query-side half of an Embedder."""

    # Activations in fp32, weights in int8 (see the module docstring).
    precision = "int8"

    def __init__(self, folder: Path, about: ExportedModel) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.model_id = about.model_id
        self.fingerprint = about.fingerprint
        self.dim = about.dim
        self.max_tokens = about.max_tokens
        self._tokenizer = Tokenizer.from_file(str(folder / TOKENIZER))
        self._tokenizer.enable_truncation(about.max_tokens)
        self._tokenizer.no_padding()
        options = ort.SessionOptions()
        # One thread that never spins: a question is small, and on a busy machine a second
        # spinning thread waits on a descheduled peer (docs/BENCHMARKS.md, "Notes from measuring").
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(folder / GRAPH), options,
                                             providers=["CPUExecutionProvider"])

    def encode(self, texts: Sequence[str], on_progress=None) -> np.ndarray:
        """L2-normalised float32 vectors, one text at a time (no padding to compute)."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            ids = np.asarray([self._tokenizer.encode(text).ids], dtype=np.int64)
            (vector,) = self._session.run(None, {
                "input_ids": ids, "attention_mask": np.ones_like(ids),
                "token_type_ids": np.zeros_like(ids),
            })
            out[row] = vector[0]
        if on_progress:
            on_progress(len(texts), len(texts))
        return out


def open_question_encoder(index_dir: Path, fingerprint: str) -> OnnxQuestionEncoder | None:
    """The exported question encoder of the model with `fingerprint`, or None (no export,
    an older one, or a damaged one: questions then go through the torch model)."""
    folder = export_folder(index_dir, fingerprint)
    about = read_export(folder, fingerprint)
    if about is None:
        return None
    try:
        return OnnxQuestionEncoder(folder, about)
    except Exception as exc:  # onnxruntime raises its own kinds: fall back, say why
        log.warning("not using the exported question model in %s (%s); questions are "
                    "embedded with the torch model, and the next build exports it again",
                    folder, exc)
        return None
