"""A sentence-transformers model on the CPU (fp32, bf16, or int8 through its ONNX export):
the only sentence-transformers import, and where builds' torch runs."""
from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.config import resolve_precision
from qa.embed import OnProgress, bundled_model_path, model_identity
from qa.errors import ConfigError

if TYPE_CHECKING:
    from qa.embed.onnx import ExportedModel

# Up to this many texts is a query: encoded on one thread (see _encode_block).
QUERY_TEXTS = 8


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class SentenceTransformerEmbedder:
    """A sentence-transformers model on the CPU: fp32, bf16 autocast, or int8 through its
    ONNX export. `sentence_vectors="late"` (token states pooled) needs torch, so "auto"
    then picks no int8."""

    def __init__(self, model: str | None = None, precision: str = "auto", batch_size: int = 64,
                 *, sentence_vectors: str = "separate"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()

        path = bundled_model_path() if model is None else Path(model)
        try:
            self._model = SentenceTransformer(
                str(path) if path.exists() else str(model), device="cpu"
            )
        except Exception as exc:  # the library raises many kinds; the user needs one
            raise ConfigError(
                f"could not load embedding model {model!r}: {exc}. Give a local folder of a "
                "sentence-transformers model, or a name already in the Hugging Face cache "
                "(Verbatim never downloads)."
            ) from exc
        self.model_id, self.fingerprint = model_identity(model)
        self.dim = int(self._model.get_embedding_dimension())
        self.max_tokens = int(self._model.max_seq_length)
        self.batch_size = batch_size
        import torch

        self.threads = torch.get_num_threads()
        self._direct = _mean_pooling_parts(self._model)
        self.precision = resolve_precision(
            precision, int8=self._direct is not None and sentence_vectors == "separate")
        if self.precision == "int8" and self._direct is None:
            raise ConfigError(
                f"precision 'int8' embeds with the model's ONNX export, which needs a "
                f"Transformer + mean pooling model, and {self.model_id!r} is not one; use "
                "fp32 or bf16"
            )
        self._int8: _Int8Graph | None = None  # exported on first use

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        # verbose=False: counting a paragraph longer than the model reads is the point here
        # (the chunker then splits it), not a mistake worth a warning.
        encoded = self._model.tokenizer(
            list(texts), add_special_tokens=False, return_attention_mask=False,
            return_token_type_ids=False, verbose=False,
        )
        return [len(ids) for ids in encoded["input_ids"]]

    def _encode_block(self, texts: list[str]) -> np.ndarray:
        import torch

        # A question or two runs on one thread: on 2 cores that is as fast, and when the
        # machine is busy a second OpenMP thread spin-waiting on a descheduled peer made
        # one query 20-50x slower (docs/BENCHMARKS.md). Batches use every core.
        threads, previous = (1 if len(texts) <= QUERY_TEXTS else self.threads), None
        if threads != torch.get_num_threads():
            previous = torch.get_num_threads()
            torch.set_num_threads(threads)
        try:
            with torch.inference_mode(), torch.autocast(
                "cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"
            ):
                if self._direct is not None and len(texts) <= QUERY_TEXTS:
                    vectors = self._encode_direct(texts)
                else:
                    vectors = self._model.encode(
                        texts, batch_size=self.batch_size, convert_to_numpy=True,
                        normalize_embeddings=False, show_progress_bar=False,
                    )
        finally:
            if previous is not None:  # the setting is process-wide: leave it as found
                torch.set_num_threads(previous)
        return _normalise(vectors.astype(np.float32))

    def _encode_direct(self, texts: list[str]) -> np.ndarray:
        """Tokenizer -> transformer -> mean pooling, without sentence-transformers' encode
        loop (sorting, batching, per-row dicts): ~1.2 ms less per question, same vectors."""
        tokenizer, transformer = self._direct
        features = tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens,
                             return_tensors="pt")
        hidden = transformer(**features).last_hidden_state
        mask = features["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return pooled.float().numpy()

    def encode(self, texts: Sequence[str], on_progress: OnProgress | None = None) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.precision == "int8":
            return self._int8_graph().encode(texts, self.batch_size * 16, on_progress)
        # Longest first over the whole input, not per block: batches then hold texts of
        # nearly one length, so little compute goes to padding (sentence-transformers sorts
        # only within one call). Blocks keep progress steady; rows go back in input order.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        block = self.batch_size * 16
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), block):
            rows = order[start:start + block]
            out[rows] = self._encode_block([texts[i] for i in rows])
            if on_progress:
                on_progress(min(start + block, len(texts)), len(texts))
        return out

    def encode_late(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
        on_progress: OnProgress | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One forward pass per text: its vector and its spans' vectors ("late chunking").

        Args:
            texts: what the model reads, e.g. "title\npassage" (qa.text.chunk.embedding_text).
            spans: per text, [start, end) character spans of its sentences in that text.

        Returns:
            (text vectors (len(texts), dim), span vectors (total spans, dim)), rows in input
            order (texts, then their spans), float32, L2-normalised. The text vectors are
            `encode`'s (the same mean pooling over the same tokens).

        Raises:
            ConfigError: the model is not Transformer -> mean pooling (nothing to pool).
        """
        import torch

        from qa.embed.late import pool_spans, span_weights

        if self._direct is None:
            raise ConfigError(
                f"sentence_vectors='late' needs a Transformer + mean pooling model, and "
                f"{self.model_id!r} is not one; build with sentence_vectors='separate'"
            )
        if self.precision == "int8":  # the int8 graph gives no token states to pool
            raise ConfigError(
                "sentence_vectors='late' pools the torch model's token states, and this "
                "embedder is int8; load it with precision fp32, bf16, or auto for late")
        tokenizer, transformer = self._direct
        texts = list(texts)
        firsts = np.cumsum([0] + [len(s) for s in spans])
        passages = np.zeros((len(texts), self.dim), dtype=np.float32)
        sentences = np.zeros((int(firsts[-1]), self.dim), dtype=np.float32)
        # Longest first, as in `encode`: batches of nearly one length waste little padding.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        with torch.inference_mode(), torch.autocast(
            "cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"
        ):
            for start in range(0, len(texts), self.batch_size):
                rows = order[start:start + self.batch_size]
                features = tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                     max_length=self.max_tokens, return_tensors="pt",
                                     return_offsets_mapping=True)
                offsets = features.pop("offset_mapping").numpy()
                hidden = transformer(**features).last_hidden_state.float()
                mask = features["attention_mask"]
                lengths = mask.sum(dim=1).tolist()
                pooled = ((hidden * mask.unsqueeze(-1)).sum(dim=1)
                          / mask.sum(dim=1, keepdim=True).clamp(min=1)).numpy()
                hidden = hidden.numpy()
                for j, i in enumerate(rows):
                    passages[i] = pooled[j]
                    weights = span_weights(offsets[j], lengths[j], spans[i])
                    sentences[firsts[i]:firsts[i + 1]] = pool_spans(
                        hidden[j, :lengths[j]], weights, pooled[j])
                if on_progress:
                    on_progress(min(start + self.batch_size, len(texts)), len(texts))
        return _normalise(passages), sentences

    def export_question_model(self, index_dir: Path) -> bool:
        """Export this model for the ONNX question encoder into `index_dir` (once per model;
        a valid export is kept). False if the model is not Transformer -> mean pooling.

        In int8 the index's graph and the one the vectors come from are one: called before
        the first encode, the embedder takes the index's (a build then need not export
        again); after, the index gets the embedder's."""
        from qa.embed import onnx as onnx_embed

        if self._direct is None:
            return False
        folder = onnx_embed.export_folder(index_dir, self.fingerprint)
        kept = onnx_embed.read_export(folder, self.fingerprint)
        if self.precision == "int8" and self._int8 is None:
            self._int8 = _Int8Graph(folder, kept or self._export_to(folder), self.threads)
        elif self._int8 is not None:
            if kept is None or kept.graph_sha256 != self._int8.about.graph_sha256:
                temp = folder.with_name(f".tmp-{folder.name}")
                shutil.rmtree(temp, ignore_errors=True)
                shutil.copytree(self._int8.folder, temp)
                shutil.rmtree(folder, ignore_errors=True)
                os.replace(temp, folder)
        elif kept is None:
            self._export_to(folder)
        return True

    def _export_to(self, folder: Path) -> ExportedModel:
        from qa.embed import onnx as onnx_embed

        tokenizer, transformer = self._direct
        about = onnx_embed.ExportedModel(
            model_id=self.model_id, fingerprint=self.fingerprint, dim=self.dim,
            max_tokens=self.max_tokens, export_version=onnx_embed.EXPORT_VERSION,
            graph_sha256="",
        )
        onnx_embed.export_question_model(transformer, tokenizer, about, folder)
        return onnx_embed.read_export(folder, self.fingerprint)

    def _int8_graph(self) -> _Int8Graph:
        if self._int8 is None:
            home = Path(tempfile.mkdtemp(prefix="verbatim-int8-"))
            weakref.finalize(self, shutil.rmtree, home, True)
            folder = home / "model"
            self._int8 = _Int8Graph(folder, self._export_to(folder), self.threads)
        return self._int8


class _Int8Graph:
    """The model's int8 ONNX export, one single-threaded session per core, each embedding
    every n-th text unpadded: 3.2x a batched fp32 torch encode of squad passages on 2 cores
    (docs/BENCHMARKS.md, "Building")."""

    def __init__(self, folder: Path, about: ExportedModel, sessions: int) -> None:
        from qa.embed.onnx import OnnxQuestionEncoder

        self.folder = folder
        self.about = about
        self.encoders = [OnnxQuestionEncoder(folder, about) for _ in range(max(1, sessions))]

    def encode(self, texts: list[str], block: int,
               on_progress: OnProgress | None = None) -> np.ndarray:
        out = np.empty((len(texts), self.about.dim), dtype=np.float32)
        n = len(self.encoders)
        with ThreadPoolExecutor(n) as pool:  # ONNX Runtime releases the GIL while it runs
            for start in range(0, len(texts), block):
                chunk = texts[start:start + block]
                parts = pool.map(lambda i: self.encoders[i].encode(chunk[i::n]), range(n))
                for i, vectors in enumerate(parts):
                    out[start + i:start + len(chunk):n] = vectors
                if on_progress:
                    on_progress(min(start + block, len(texts)), len(texts))
        return out


def _mean_pooling_parts(model) -> tuple | None:
    """(tokenizer, transformer) if `model` is Transformer -> mean Pooling [-> Normalize]
    (the bundled model and most sentence-transformers checkpoints), else None."""
    try:
        names = [type(module).__name__ for module in model]
        pooling = model[1].get_config_dict() if len(names) > 1 else {}
        if (names[:2] != ["Transformer", "Pooling"]
                or any(name != "Normalize" for name in names[2:])
                or pooling.get("pooling_mode") != "mean"
                or not pooling.get("include_prompt", True)):
            return None
        return model.tokenizer, model[0].auto_model
    except (AttributeError, IndexError, TypeError):
        return None
