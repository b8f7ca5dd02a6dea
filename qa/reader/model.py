"""The shipped reader, run with ONNX Runtime: (question, sentence) pairs -> probabilities.

The graph and its tokenizer live in `qa/reader/weights/`, inside the package, so a wheel and
a fresh clone both have them. `reader.json` records the graph's SHA-256: a missing or
damaged file is a ReaderError that says so, never scores from a broken model.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from qa.errors import ReaderError

MODEL_DIR = Path(__file__).resolve().parent / "weights"
GRAPH = "reader.onnx"
TOKENIZER = "tokenizer.json"
ABOUT = "reader.json"
# Bumped when the graph's inputs or outputs change meaning.
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class ReaderInfo:
    """What reader.json says about the shipped graph."""

    max_length: int
    graph_sha256: str
    precision: str
    base_model: str
    format_version: int = FORMAT_VERSION

    @property
    def fingerprint(self) -> str:
        """A short name of these weights (what `qa info` shows)."""
        return self.graph_sha256[:12]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def read(cls, folder: Path) -> "ReaderInfo":
        path = folder / ABOUT
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise ReaderError(f"the reader model is missing: no {path}") from None
        except (OSError, ValueError, TypeError) as exc:
            raise ReaderError(f"the reader's {path} is unreadable ({exc})") from None


def verify(folder: Path = MODEL_DIR) -> ReaderInfo:
    """The reader's description, once its graph is checked against the recorded SHA-256.

    Raises:
        ReaderError: a file is missing, unreadable or damaged (the message names it).
    """
    return _load_checked(Path(folder))[0]


def _load_checked(folder: Path) -> tuple[ReaderInfo, bytes]:
    info = ReaderInfo.read(folder)
    if info.format_version != FORMAT_VERSION:
        raise ReaderError(
            f"the reader in {folder} has format {info.format_version}, this version of "
            f"Verbatim reads {FORMAT_VERSION}: reinstall Verbatim")
    graph = folder / GRAPH
    try:
        data = graph.read_bytes()
    except OSError as exc:
        raise ReaderError(f"the reader model is missing: {graph} ({exc.strerror})") from None
    if hashlib.sha256(data).hexdigest() != info.graph_sha256:
        raise ReaderError(
            f"the reader model {graph} is damaged (its SHA-256 is not the one in "
            f"{folder / ABOUT}): reinstall Verbatim or retrain it (python -m qa.reader.train)")
    return info, data


def _session(data: bytes, graph: Path):
    """One single-threaded ONNX Runtime session of the reader's graph."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own kinds
        raise ReaderError(f"the reader model {graph} does not load ({exc})") from None


class Reader:
    """Scores (question, text) pairs: the probability that the text answers the question.

    Loading checks the graph against its recorded checksum. Scoring runs `threads`
    single-threaded sessions side by side, each on its share of the pairs: a pair is too
    small to split one run over two threads well (24 pairs of realtimeqa-dev took 228 ms
    p50 on one session of 2 threads, 179 ms on 2 sessions of 1 thread, the same scores).
    """

    def __init__(self, folder: Path = MODEL_DIR, threads: int = 2) -> None:
        from tokenizers import Tokenizer

        folder = Path(folder)
        self.info, data = _load_checked(folder)
        try:
            self._tokenizer = Tokenizer.from_file(str(folder / TOKENIZER))
        except Exception as exc:  # tokenizers raises its own exception type
            raise ReaderError(f"the reader's tokenizer {folder / TOKENIZER} is unreadable "
                              f"({exc})") from None
        self._tokenizer.enable_truncation(self.info.max_length, strategy="longest_first")
        self._tokenizer.no_padding()  # one pair per run: padding would only add work
        self._sessions = [_session(data, folder / GRAPH) for _ in range(max(1, threads))]
        # The calling thread runs the first session; these threads run the others.
        self._helpers = (ThreadPoolExecutor(len(self._sessions) - 1,
                                            thread_name_prefix="verbatim-reader")
                         if len(self._sessions) > 1 else None)
        self.folder = folder

    @property
    def fingerprint(self) -> str:
        return self.info.fingerprint

    def score_pairs(self, questions: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Probabilities in [0, 1], one per (questions[i], texts[i])."""
        if len(questions) != len(texts):
            raise ValueError(f"{len(questions)} questions for {len(texts)} texts")
        out = np.empty(len(texts), dtype=np.float32)
        if not len(texts):
            return out
        encoded = self._tokenizer.encode_batch(list(zip(questions, texts)))
        shares = [range(k, len(encoded), len(self._sessions))
                  for k in range(min(len(self._sessions), len(encoded)))]
        helped = [self._helpers.submit(self._run, self._sessions[k], encoded, rows, out)
                  for k, rows in enumerate(shares) if k]
        self._run(self._sessions[0], encoded, shares[0], out)
        for future in helped:
            future.result()
        return out

    @staticmethod
    def _run(session, encoded: list, rows: range, out: np.ndarray) -> None:
        """Score the pairs at `rows`, each in a run of its own, into `out`."""
        # The int8 graph quantises activations per run: in a run of several pairs a pair's
        # logit moved by up to 0.55 with its run-mates; alone, it depends on the pair only.
        # Unpadded, it is also faster: realtimeqa-dev's 24 pairs per question took 220 ms
        # one by one, 286 ms as one run (runs of 4 like lengths: 197 ms, scores still moved).
        for row in rows:
            pair = encoded[row]
            feed = {
                "input_ids": np.asarray([pair.ids], dtype=np.int64),
                "attention_mask": np.asarray([pair.attention_mask], dtype=np.int64),
                "token_type_ids": np.asarray([pair.type_ids], dtype=np.int64),
            }
            (logits,) = session.run(None, feed)
            out[row] = 1.0 / (1.0 + np.exp(-float(logits[0, 0])))

    def score(self, question: str, texts: Sequence[str]) -> np.ndarray:
        """Probabilities that each of `texts` answers `question`."""
        return self.score_pairs([question] * len(texts), texts)
