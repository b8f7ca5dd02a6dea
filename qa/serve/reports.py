"""The library's reports as the faces show them: lines for the terminal, Markdown for the
page (every URL, title and message from outside escaped there)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from qa.serve.render import esc

if TYPE_CHECKING:
    from qa.build import BuildReport
    from qa.serve.library import IntakeReport
    from qa.web.feedlist import Feed
    from qa.web.feeds import FeedResult, ItemResult


def when(iso: str) -> str:
    """A stored UTC timestamp as people read it: "2025-07-28 09:00:00 UTC"."""
    return iso.replace("T", " ").replace("+00:00", " UTC")


# -- the terminal ------------------------------------------------------------------------------
def item_line(item: ItemResult) -> str:
    return f"{item.status:<8}{item.url}: {item.message}"


def feed_lines(feed: FeedResult) -> list[str]:
    head = f"{'feed' if feed.ok else 'failed'}    {feed.url}: {feed.message}"
    return [head] + ["  " + item_line(item) for item in feed.items]


def intake_lines(report: IntakeReport) -> list[str]:
    """Every URL's result, then the index update (or why there was none)."""
    lines = [item_line(item) for item in report.web.items]
    for feed in report.web.feeds:
        lines += feed_lines(feed)
    if report.index is not None:
        lines.append(report.index.summary())
    if report.index_error:
        lines.append(f"error: {report.index_error}")
    return lines


def followed_lines(feed: Feed) -> list[str]:
    """`feeds list`: the feed's URL, then what is known of it."""
    return [feed.url,
            f"    {feed.title or '(title not known yet)'} · {feed.stored} articles stored"
            + (f" · {len(feed.pending)} waiting" if feed.pending else "")
            + (f" · checked {when(feed.checked)}: {feed.status}" if feed.checked else
               " · never checked")]


# -- the page ----------------------------------------------------------------------------------
def rebuild_markdown(report: BuildReport) -> str:
    """What a rebuild did, and what it skipped (escaped: file names come from outside)."""
    message = (
        f"Nothing to rebuild: the index already has these **{report.articles}** "
        f"articles ({report.passages} passages)." if report.up_to_date else
        f"Rebuilt: **{report.articles}** articles, **{report.passages}** passages "
        f"({report.added} added, {report.changed} changed, {report.removed} removed, "
        f"{report.kept} unchanged) in {report.seconds:.1f} s. The chat now answers "
        "from them."
    )
    if report.skipped:
        from qa.text.ingest import skip_summary

        head, *reasons = skip_summary(report.skipped)
        message += f"\n\n{esc(head.capitalize())}\n" + "".join(
            f"\n- {esc(line)}" for line in reasons
        )
    return message


def intake_markdown(report: IntakeReport) -> str:
    """The results as the page shows them (Markdown; every URL and message escaped)."""

    def item_line(item: ItemResult) -> str:
        if item.status == "stored":
            return f"- **added** `{esc(item.url)}`: “{esc(item.title or item.url)}”"
        label = "already there" if item.status == "present" else "**failed**"
        return f"- {label} `{esc(item.url)}`: {esc(item.message)}"

    lines = []
    for item in report.web.items:
        lines.append(item_line(item))
    for feed in report.web.feeds:
        label = "feed" if feed.ok else "**feed failed**"
        lines.append(f"- {label} `{esc(feed.url)}`: {esc(feed.message)}")
        lines += ["  " + item_line(item) for item in feed.items]
    failures = len(report.failures) - (1 if report.index_error else 0)
    head = [f"**{report.stored}** new article{'s' if report.stored != 1 else ''} added"
            + (f", **{failures}** failed" if failures else "") + "."]
    if report.index is not None:
        built = report.index
        head.append(f"The index now has **{built.articles}** articles ({built.added} added, "
                    f"{built.passages} passages); the chat answers from them.")
    if report.index_error:
        head.append(f"⚠️ {esc(report.index_error)}")
    return " ".join(head) + ("\n\n" + "\n".join(lines) if lines else "")


def feed_row(feed: Feed) -> list:
    """A row of the page's table of followed feeds."""
    return [feed.url, feed.title or "", feed.stored, len(feed.pending),
            (when(feed.checked) + ": " + (feed.status or "")) if feed.checked
            else "not yet updated"]
