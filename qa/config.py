"""Settings: one frozen object with defaults; CLI flags and kwargs override fields."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from qa.errors import ConfigError

Mode = Literal["dense", "bm25", "hybrid"]
Precision = Literal["fp32", "bf16"]
MODES: tuple[str, ...] = ("dense", "bm25", "hybrid")
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")
BUNDLED_MODEL = "all-MiniLM-L6-v2"


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
    mode: Mode = "hybrid"
    # How many candidates each retriever hands to fusion and re-scoring.
    candidates: int = 50
    # Below this relevance (best cosine of a passage or sentence) the answer abstains.
    # From bench/calibrate_abstention.py: abstains on 68% of squad-dev questions about
    # articles not in the index and on 2.4% of answerable ones; seed dev 8/8 answered.
    abstain_threshold: float = 0.42
    max_quotes_per_article: int = 2
    # A second sentence is marked too when it scores within this of the best (a near tie).
    highlight_margin: float = 0.05
    batch_size: int = 64
    precision: Precision = "fp32"
    # A FAISS index-factory string; None picks by size (see store.choose_factory).
    index_factory: str | None = None
    max_question_chars: int = 2000

    def __post_init__(self) -> None:
        object.__setattr__(self, "corpus_dir", Path(self.corpus_dir))
        object.__setattr__(self, "index_dir", Path(self.index_dir))
        for name in ("chunk_tokens", "k", "candidates", "max_quotes_per_article", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be > 0, got {value!r}")
        if self.overlap_sentences < 0:
            raise ConfigError(f"overlap_sentences must be >= 0, got {self.overlap_sentences}")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )

    def replace(self, **changes: object) -> "Settings":
        """A copy with `changes` applied; None values mean "keep the current one"."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        """Defaults, then VERBATIM_* environment variables, then `overrides`."""
        env = {
            "corpus_dir": os.environ.get("VERBATIM_CORPUS"),
            "index_dir": os.environ.get("VERBATIM_INDEX"),
            "model": os.environ.get("VERBATIM_MODEL"),
            "precision": os.environ.get("VERBATIM_PRECISION"),
        }
        return cls().replace(**env).replace(**overrides)
