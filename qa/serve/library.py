"""The library: what both faces do to the corpus and the index, done once.

Rebuild the index, add article URLs, follow and unfollow feeds, update them: each is a
call that returns a report (qa.build.BuildReport, qa.web.feeds.WebReport, IntakeReport).
The command line prints the reports and the page renders them (qa.serve.reports); neither
does the work itself. The write side is imported when a call needs it, so a page that
only answers questions never loads it.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qa.config import Settings
from qa.errors import QAError

if TYPE_CHECKING:
    from qa.build import BuildReport, OnProgress
    from qa.embed import Embedder
    from qa.web.feedlist import Feed
    from qa.web.feeds import WebReport
    from qa.web.fetch import Fetcher

# (what is happening, done, total): fetching progress, one step per URL.
OnFetch = Callable[[str, int, int], None]


def _quiet(desc: str, done: int, total: int) -> None:
    pass


@dataclass(frozen=True, slots=True)
class IntakeReport:
    """What adding article URLs or updating feeds did: a result per URL, then the index
    update (None when nothing new was stored or the caller did not ask for one)."""

    web: WebReport
    index: BuildReport | None = None
    # Why the index was not updated although articles were stored (they stay stored).
    index_error: str | None = None

    @property
    def stored(self) -> int:
        return self.web.stored

    @property
    def failures(self) -> list[tuple[str, str]]:
        """(URL, reason) of everything that failed: feeds, articles, the index update."""
        return self.web.failures + ([("index", self.index_error)] if self.index_error else [])


def engine_embedder(settings: Settings, engine: str = "local", ray_address: str | None = None,
                    ray_actors: int | None = None) -> Embedder | None:
    """What builds embed with: with engine "ray", a Ray cluster's embedder (Ray installed
    and the cluster answering are checked now, before the model loads); else None, the
    local model, which the Library loads when a build first needs it.

    Raises:
        ConfigError: Ray is not installed. ClusterError: the cluster does not answer.
    """
    if engine != "ray":
        return None
    from qa.build import build_settings
    from qa.embed.ray_engine import load_ray_embedder

    return load_ray_embedder(build_settings(settings), ray_address, ray_actors)


class Library:
    """The corpus folder and the index of one Settings, for every caller of a process.

    Args:
        settings: the corpus and index folders, the model.
        embedder: what builds embed with (a Ray cluster's, or a model already loaded);
            None loads the local model on the first build that needs it.
        allow_private_urls: let fetched URLs reach loopback and private addresses (the
            operator's CLI: yes; URLs typed into the page: only with --allow-private-urls).
    """

    def __init__(self, settings: Settings, embedder: Embedder | None = None, *,
                 allow_private_urls: bool = False) -> None:
        self.settings = settings
        self.allow_private_urls = allow_private_urls
        self._embedder = embedder
        self._embedder_lock = threading.Lock()
        self._fetcher: Fetcher | None = None
        self._fetcher_lock = threading.Lock()

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the fetcher's connections (a later fetch opens new ones)."""
        with self._fetcher_lock:
            if self._fetcher is not None:
                self._fetcher.close()
                self._fetcher = None

    # -- what builds and fetches use ------------------------------------------------------
    def embedder(self) -> Embedder:
        """The embedder builds use; the local model is loaded on the first call."""
        with self._embedder_lock:
            if self._embedder is None:
                from qa.build import build_settings
                from qa.embed import load_embedder

                self._embedder = load_embedder(build_settings(self.settings))
            return self._embedder

    def fetcher(self) -> Fetcher:
        """One Fetcher for every caller, so its one-request-per-host limit holds across them."""
        from qa.web.fetch import FetchPolicy, Fetcher

        with self._fetcher_lock:
            if self._fetcher is None:
                self._fetcher = Fetcher(FetchPolicy(allow_private=self.allow_private_urls))
            return self._fetcher

    # -- the index ----------------------------------------------------------------------------
    def rebuild(self, *, full: bool = False, on_progress: OnProgress | None = None,
                wait_seconds: float = 0) -> BuildReport:
        """Build a new generation from the corpus folder (only new and changed articles are
        embedded; `full` embeds every one) and make it live.

        Raises:
            BuildLockedError: another build holds the index for longer than `wait_seconds`.
            QAError: the corpus has nothing to index, the model cannot load, the disk is full.
        """
        from qa.build import build_index

        return build_index(self.settings, self.embedder(), full=full, on_progress=on_progress,
                           wait_seconds=wait_seconds)

    def index_if_stored(self, report: WebReport, *, on_progress: OnProgress | None = None,
                        wait_seconds: float = 60) -> IntakeReport:
        """`report` with the index updated if anything was stored. A failure to build is
        reported, not raised: the articles are safe in the corpus either way. The model is
        loaded only then, so a run that stored nothing never loads it. Waits up to
        `wait_seconds` for another build (the page's, a cron job's) to finish."""
        if not report.stored:
            return IntakeReport(report)
        try:
            built = self.rebuild(on_progress=on_progress, wait_seconds=wait_seconds)
        except QAError as exc:
            return IntakeReport(report, index_error=f"the articles are stored but the index "
                                f"was not updated: {exc}; run `python -m qa index`")
        return IntakeReport(report, index=built)

    # -- news from the web ----------------------------------------------------------------------
    def add_urls(self, urls: Sequence[str], *, index: bool = True,
                 on_fetch: OnFetch = _quiet, on_progress: OnProgress | None = None,
                 wait_seconds: float = 60) -> IntakeReport:
        """Fetch each article URL, store the new ones in the corpus, then (with `index`)
        update the index. Every URL gets its own result; none stops the others."""
        from qa.web.feeds import WebReport, add_urls

        items = add_urls(self.settings.corpus_dir, urls, self.fetcher(), on_fetch)
        return self._indexed(WebReport(items=items), index, on_progress, wait_seconds)

    def update_feeds(self, *, index: bool = True, on_fetch: OnFetch = _quiet,
                     on_progress: OnProgress | None = None, wait_seconds: float = 60,
                     only: Sequence[str] | None = None) -> IntakeReport:
        """Poll every followed feed (or those in `only`), store their new articles, then
        (with `index`) update the index.

        Raises:
            QAError: another feed update is running on this corpus.
        """
        from qa.web.feeds import WebReport, update_feeds

        results = update_feeds(self.settings.corpus_dir, self.fetcher(), on_fetch, only=only)
        return self._indexed(WebReport(feeds=results), index, on_progress, wait_seconds)

    def _indexed(self, report: WebReport, index: bool, on_progress: OnProgress | None,
                 wait_seconds: float) -> IntakeReport:
        if not index:
            return IntakeReport(report)
        return self.index_if_stored(report, on_progress=on_progress, wait_seconds=wait_seconds)

    def feeds(self) -> tuple[Feed, ...]:
        """The followed feeds, with what their last update found.

        Raises:
            CorpusError: the feed list exists but is damaged.
        """
        from qa.web.feedlist import read_feeds

        return read_feeds(self.settings.corpus_dir).feeds

    def follow(self, url: str, *, check: bool = False) -> tuple[Feed, bool]:
        """Follow a feed; (the feed, whether it is new). Nothing is fetched yet. With
        `check`, the URL is checked now as a fetch would be (a private address refused at
        once when they are not allowed).

        Raises:
            UrlError: not an http(s) URL, or (with `check`) one that may not be fetched.
        """
        from qa.web.feedlist import follow

        return follow(self.settings.corpus_dir, self.fetcher().check(url) if check else url)

    def unfollow(self, url: str) -> Feed:
        """Stop following a feed (its stored articles stay in the corpus).

        Raises:
            ConfigError: the feed is not followed.
        """
        from qa.web.feedlist import unfollow

        return unfollow(self.settings.corpus_dir, url)
