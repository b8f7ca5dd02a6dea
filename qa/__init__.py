"""Verbatim: ask questions of news articles; every answer is a quote."""
from __future__ import annotations

from typing import TYPE_CHECKING

from qa.config import Settings
from qa.errors import QAError
from qa.types import Answer, Article, Filters, Hit, Passage, Quote, Span

if TYPE_CHECKING:
    from qa.retriever import Retriever

__all__ = ["Answer", "Article", "Filters", "Hit", "Passage", "QAError", "Quote", "Settings",
           "Span", "ask", "load_retriever"]


def load_retriever(index_dir: str = "index", **overrides: object) -> "Retriever":
    """A Retriever over the index in `index_dir` (see qa.retriever.load_retriever)."""
    from qa.retriever import load_retriever as _load

    return _load(index_dir, **overrides)


def ask(question: str, k: int | None = None, index_dir: str = "index", **kwargs: object) -> Answer:
    """One-off question against `index_dir`; for many questions keep a Retriever."""
    return load_retriever(index_dir).answer(question, k, **kwargs)
