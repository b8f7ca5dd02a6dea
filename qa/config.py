"""Settings: one frozen object with defaults; CLI flags and kwargs override fields."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from qa.errors import ConfigError

Mode = Literal["dense", "bm25", "hybrid"]
Precision = Literal["auto", "fp32", "bf16", "int8"]
MODES: tuple[str, ...] = ("dense", "bm25", "hybrid")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "int8")
SentenceVectors = Literal["separate", "late"]
SENTENCE_VECTORS: tuple[str, ...] = ("separate", "late")
PassageVectors = Literal["auto", "encoded", "pooled"]
PASSAGE_VECTORS: tuple[str, ...] = ("auto", "encoded", "pooled")
# CPU flags that make bf16 matrix products fast (2.4x fp32 here: bench/throughput.py).
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
BUNDLED_MODEL = "all-MiniLM-L6-v2"
# The file types the corpus reader understands (qa.text.ingest has one reader for each); the
# page accepts uploads of exactly these.
ARTICLE_SUFFIXES: tuple[str, ...] = (".txt", ".md", ".markdown", ".html", ".htm", ".jsonl")


@dataclass(frozen=True, slots=True)
class ChunkSettings:
    """How articles are cut; stored in the manifest so a mismatch is caught on load."""

    max_tokens: int = 256
    overlap_sentences: int = 1
    # Paragraphs shorter than this merge with the next one, so no passage is a fragment.
    min_tokens: int = 24


def human_size(n: int) -> str:
    """Bytes as a short size a person reads: 512 bytes, 3.5 KB, 10 MB."""
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.3g} KB"
    return f"{n / 2**20:.3g} MB"


def coerce_k(value: object) -> int | None:
    """k as the page and HTTP clients send it (3, 3.0, "3") as an int; None or "" -> None
    (the default). Range checks are the Retriever's.

    Raises:
        ConfigError: not a whole number.
    """
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"k must be a whole number, got {value!r}")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything tunable. `model=None` means the bundled all-MiniLM-L6-v2."""

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    model: str | None = None
    # Passage budget in word pieces, capped by the model's max sequence length.
    chunk_tokens: int = 256
    overlap_sentences: int = 1
    k: int = 5
    # The largest k a search or an answer accepts (VERBATIM_MAX_K): one request asking
    # for every passage would otherwise hold a server thread for minutes.
    max_k: int = 100
    mode: Mode = "hybrid"
    # How many candidates each retriever hands to fusion and re-scoring.
    candidates: int = 50
    # Relevance (best cosine of a quote's passage or sentence) grades the answer: below
    # abstain_threshold it abstains. Measured on the seed article (ONNX question encoder;
    # torch differs by up to 0.017): the nearest off-topic questions score 0.237, 0.237,
    # 0.231 and 0.230 (one about 6G networks 0.257), the least relevant answering
    # paraphrases 0.278, 0.287 and 0.302, so tests/test_quality.py pins the default between
    # 0.237 and 0.278; one answerable paraphrase ("Who edited the piece?", 0.228) is
    # under it: it abstains without the reader, and with it answers only because the
    # reader is sure (reader_overrides_gate_from).
    # Below confident_threshold the quotes are shown as "may answer" (0.42 alone abstained
    # on 68% of squad-dev questions about articles not indexed, 2.4% of answerable ones,
    # and 5 of 12 paraphrased seed questions). bench/calibrate_abstention.py. A
    # confident_threshold under abstain_threshold means no "may answer" grade.
    abstain_threshold: float = 0.26
    confident_threshold: float = 0.42
    # The reader (qa.reader): a cross-encoder that reads the question with the best
    # candidate sentences and re-orders the passages and highlights (VERBATIM_RERANK).
    reranker: bool = True
    # A folder with a reader's reader.onnx, reader.json and tokenizer.json
    # (VERBATIM_READER); None means the one shipped in qa/reader/weights/.
    reader_model: Path | None = None
    # Sentences it reads per question at most (the first 24 always, the rest only when
    # none of those answers surely: qa.reader.rerank.ReadingPlan): its cost grows with this.
    reader_sentences: int = 40
    # With the reader, an answer is graded by its probability that the best quote answers:
    # below reader_abstain_threshold it abstains, below reader_confident_threshold "may
    # answer". It also abstains when the best cosine is under abstain_threshold: on the
    # seed the reader gives an off-topic question 0.387 and answerable ones 0.066 and
    # 0.090, so its probability alone cannot separate them; with the cosine gate 0.05 lets
    # every seed_dev question answer and the off-topic ones abstain.
    reader_abstain_threshold: float = 0.05
    reader_confident_threshold: float = 0.5
    # ...unless the reader is this sure: "Who edited the piece?" (cosine 0.226) reads 0.79
    # on the seed's byline. Asked on the seed, 300 squad-dev and 133 realtimeqa-dev
    # questions (about other articles) had none from 0.6 up under the gate, two at 0.55
    # and 0.57 (bench/offtopic.py).
    reader_overrides_gate_from: float = 0.7
    # A question without time words favours newer articles when scores are close: a hit
    # gains recency_weight * 2^(-age / recency_half_life_days), its article's age counted
    # back from the day asked (as_of). Undated articles and ones dated after that day gain
    # nothing and lose nothing. 0 turns it off.
    recency_weight: float = 0.0
    recency_half_life_days: float = 30.0
    # Quotes per article before other articles get a turn; more fill the rest of the k
    # (a one-article corpus still shows k quotes). 3 cost squad-dev recall@5 0.978 -> 0.974
    # (its answers sit in one article); 5 keeps 0.978, realtimeqa-dev moves by one question.
    max_quotes_per_article: int = 5
    # A second sentence is marked too when it scores within this of the best (a near tie).
    highlight_margin: float = 0.05
    batch_size: int = 64
    # "int8": the build embeds with the int8 ONNX graph that embeds the questions
    # (qa.embed.onnx); "bf16": torch autocast. Same quality as fp32, each about twice its
    # speed where it is the default (bench/throughput.py, bench/build_variants.py). "auto":
    # the precision of the index being added to (no archive re-embedded on an upgrade);
    # for a new one bf16 where the CPU has bf16 instructions, else int8 (fp32 with late
    # sentence vectors, which need torch's token states).
    precision: Precision = "auto"
    # How a build makes the sentence vectors (highlighting, re-scoring): "separate" embeds
    # each sentence on its own; "late" pools them from the passage's own forward pass
    # (qa.embed.late), one pass instead of ~two, for ~1.1 points less recall@1 on squad-dev.
    sentence_vectors: SentenceVectors = "separate"
    # How a build makes the passage vectors (dense search): "encoded" embeds each passage;
    # "pooled" averages its sentences' vectors, weighted by word pieces, so every text is
    # embedded once: half the work, the same answers with the reader (docs/BENCHMARKS.md,
    # "Passage vectors pooled from sentences"). "auto": the index's own when adding to one
    # (no archive re-embedded on an upgrade), else pooled; encoded with late sentence
    # vectors, which are themselves pooled from the passage's pass.
    passage_vectors: PassageVectors = "auto"
    # A FAISS index-factory string; None picks by size (see store.choose_factory).
    index_factory: str | None = None
    max_question_chars: int = 2000
    # Largest file the page accepts as an upload.
    max_upload_bytes: int = 10 * 2**20
    # `index --watch`: seconds of quiet after the last change before rebuilding (a copy of
    # many files, or an editor's save-as-temp-then-rename, is then one rebuild).
    watch_debounce: float = 2.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "corpus_dir", Path(self.corpus_dir))
        object.__setattr__(self, "index_dir", Path(self.index_dir))
        if self.reader_model is not None:
            object.__setattr__(self, "reader_model", Path(self.reader_model))
        for name in ("chunk_tokens", "k", "max_k", "candidates", "max_quotes_per_article",
                     "batch_size", "reader_sentences",
                     "max_question_chars", "max_upload_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be > 0, got {value!r}")
        if self.k > self.max_k:
            raise ConfigError(f"k must be at most max_k ({self.max_k}), got {self.k}")
        if not isinstance(self.watch_debounce, (int, float)) or self.watch_debounce < 0:
            raise ConfigError(
                f"watch_debounce must be a number of seconds >= 0, got {self.watch_debounce!r}"
            )
        if not isinstance(self.reranker, bool):
            raise ConfigError(f"reranker must be True or False, got {self.reranker!r}")
        for name in ("abstain_threshold", "confident_threshold", "reader_abstain_threshold",
                     "reader_confident_threshold", "reader_overrides_gate_from",
                     "recency_weight", "recency_half_life_days"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ConfigError(f"{name} must be a number, got {value!r}")
        if self.recency_weight < 0 or self.recency_half_life_days <= 0:
            raise ConfigError("recency_weight must be >= 0 and recency_half_life_days > 0, got "
                              f"{self.recency_weight!r} and {self.recency_half_life_days!r}")
        if self.overlap_sentences < 0:
            raise ConfigError(f"overlap_sentences must be >= 0, got {self.overlap_sentences}")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.precision == "int8" and self.sentence_vectors == "late":
            raise ConfigError(
                "sentence_vectors='late' pools the torch model's token states, and precision "
                "'int8' embeds with the ONNX graph: use one of them"
            )
        if self.sentence_vectors not in SENTENCE_VECTORS:
            raise ConfigError(
                f"sentence_vectors must be one of {', '.join(SENTENCE_VECTORS)}, "
                f"got {self.sentence_vectors!r}"
            )
        if self.passage_vectors not in PASSAGE_VECTORS:
            raise ConfigError(
                f"passage_vectors must be one of {', '.join(PASSAGE_VECTORS)}, "
                f"got {self.passage_vectors!r}"
            )
        if self.passage_vectors == "pooled" and self.sentence_vectors == "late":
            raise ConfigError(
                "passage_vectors='pooled' averages sentence vectors, and sentence_vectors="
                "'late' pools those from the passage's vector pass: use one of them"
            )

    def replace(self, **changes: object) -> "Settings":
        """A copy with `changes` applied; None values mean "keep the current one"."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        """Defaults, then VERBATIM_* environment variables, then `overrides`.

        The only place that reads VERBATIM_* (qa/serve/server.py also reads the server's
        own: VERBATIM_HOST, VERBATIM_PORT, VERBATIM_AUTH).
        """
        env: dict[str, object] = {
            "corpus_dir": os.environ.get("VERBATIM_CORPUS"),
            "index_dir": os.environ.get("VERBATIM_INDEX"),
            "model": os.environ.get("VERBATIM_MODEL"),
            "precision": os.environ.get("VERBATIM_PRECISION"),
            "reader_model": os.environ.get("VERBATIM_READER"),
        }
        rerank = os.environ.get("VERBATIM_RERANK")
        if rerank is not None:
            env["reranker"] = parse_switch(rerank, "VERBATIM_RERANK")
        max_k = os.environ.get("VERBATIM_MAX_K")
        if max_k is not None:
            try:
                env["max_k"] = int(max_k)
                # A cap below the default k lowers the default with it.
                env["k"] = min(cls().k, int(max_k)) if int(max_k) > 0 else None
            except ValueError:
                raise ConfigError(
                    f"VERBATIM_MAX_K must be a whole number > 0, got {max_k!r}"
                ) from None
        debounce = os.environ.get("VERBATIM_WATCH_DEBOUNCE")
        if debounce is not None:
            try:
                env["watch_debounce"] = float(debounce)
            except ValueError:
                raise ConfigError(
                    f"VERBATIM_WATCH_DEBOUNCE must be a number of seconds >= 0, got {debounce!r}"
                ) from None
        return cls().replace(**env).replace(**overrides)


def chunk_settings_for(settings: Settings, model_max_tokens: int) -> ChunkSettings:
    """The chunker the settings ask for, capped so no passage exceeds what the model reads."""
    return ChunkSettings(
        max_tokens=min(settings.chunk_tokens, model_max_tokens),
        overlap_sentences=settings.overlap_sentences,
    )


def parse_switch(value: str, name: str) -> bool:
    """"on"/"off" (also 1/0, true/false, yes/no) as a bool; `name` is for the message."""
    switch = {"on": True, "1": True, "true": True, "yes": True,
              "off": False, "0": False, "false": False, "no": False}.get(value.strip().lower())
    if switch is None:
        raise ConfigError(f"{name} must be on or off, got {value!r}")
    return switch


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Does this CPU have bf16 instructions? (/proc/cpuinfo flags; False if unknown.)"""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                cpuinfo = handle.read()
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return not set(BF16_FLAGS).isdisjoint(line.partition(":")[2].split())
    return False


def resolve_precision(precision: str, *, int8: bool = True) -> str:
    """"auto" -> "bf16" where the CPU has bf16 instructions, else "int8" (twice fp32's
    build speed there, same quality), or "fp32" where int8 cannot serve (`int8=False`:
    sentence vectors pooled late, or a model the ONNX export cannot take); others as given."""
    if precision != "auto":
        return precision
    if cpu_has_bf16():
        return "bf16"
    return "int8" if int8 else "fp32"
