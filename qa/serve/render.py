"""Answer -> HTML for the page: article text escaped first, then our own markup added."""
from __future__ import annotations

import html
from collections.abc import Sequence

from qa.types import Answer, Quote, Span

# An abstention shows this many of its closest passages.
CLOSEST_SHOWN = 2

# What the user reads, on the page and in the CLI alike.
ABSTAIN_NOTE = "The articles don't seem to answer this."
# A low-confidence answer: the quotes match only loosely (often a question in other words
# than the article's), so they are offered, marked, for the reader to judge.
LOW_CONFIDENCE_NOTE = "These passages may answer this; they match the question only loosely."
MAY_ANSWER = "may answer"
# The closest passages of an abstention: near the question, not claimed to answer it.
CLOSEST_MATCH = "closest match"
CLOSEST_HEAD = "The closest passages, shown for reference:"
EMPTY_NOTE = "Ask a question to get quotes."
# How much text around the highlighted sentence a quote shows; the rest becomes "…".
CONTEXT_CHARS = 220
# The closest passages of an abstention are secondary: show less of them.
CLOSEST_CONTEXT_CHARS = 110
# A relevance bar has this many steps, drawn with CSS classes (no inline styles, which
# an HTML sanitiser may strip).
BAR_STEPS = 10


def esc(text: object) -> str:
    """Untrusted text as HTML text (quotes too, so it is safe inside attributes)."""
    return html.escape(str(text), quote=True)


def text_html(text: str) -> str:
    """Untrusted article text as HTML, its line breaks kept as <br>."""
    return esc(text).replace("\n", "<br>")


def clean_spans(spans: Sequence[Span], length: int) -> list[Span]:
    """Spans clipped to [0, length), sorted, without empties or overlaps."""
    out: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        start, end = max(0, span.start), min(length, span.end)
        if out and start < out[-1].end:
            start = out[-1].end
        if start < end:
            out.append(Span(start, end))
    return out


def _cut_before(text: str, limit: int) -> int:
    """Where to start showing `text` so at most ~limit chars precede its end, on a space."""
    if len(text) <= limit:
        return 0
    cut = len(text) - limit
    space = text.find(" ", cut)
    return cut if space == -1 else space + 1


def _cut_after(text: str, limit: int) -> int:
    """Where to stop showing `text` after ~limit chars, on a space."""
    if len(text) <= limit:
        return len(text)
    space = text.rfind(" ", 0, limit)
    return limit if space <= 0 else space


def window(text: str, spans: Sequence[Span], context: int = CONTEXT_CHARS) -> tuple[int, int]:
    """The [start, end) of `text` worth showing: the highlights with `context` chars around.

    Without highlights it is the first 2 * context characters.
    """
    if not spans:
        return 0, _cut_after(text, 2 * context)
    first, last = spans[0].start, spans[-1].end
    start = _cut_before(text[:first], context)
    end = last + _cut_after(text[last:], context)
    return start, end


def marked_text(text: str, highlights: Sequence[Span], *, context: int | None = CONTEXT_CHARS,
                mark: bool = True) -> str:
    """Escaped `text` with each highlight in <mark>, trimmed to a window around them.

    Every character shown is the article's own; a trimmed side gets an "…" outside
    the quoted characters (in its own span, so it is visibly not part of the quote).
    """
    spans = clean_spans(highlights, len(text))
    start, end = (0, len(text)) if context is None else window(text, spans, context)
    parts: list[str] = []
    if start > 0:
        parts.append('<span class="vb-gap">… </span>')
    cursor = start
    for span in spans:
        if span.start < start or span.end > end:
            continue
        parts.append(text_html(text[cursor:span.start]))
        body = text_html(text[span.start:span.end])
        parts.append(f"<mark>{body}</mark>" if mark else f'<span class="vb-best">{body}</span>')
        cursor = span.end
    parts.append(text_html(text[cursor:end]))
    if end < len(text):
        parts.append('<span class="vb-gap"> …</span>')
    return "".join(parts)


def relevance_bar(score: float) -> str:
    """A small bar and the number, for a cosine-like score in [0, 1]."""
    value = min(1.0, max(0.0, float(score)))
    step = round(value * BAR_STEPS)
    return (
        f'<span class="vb-rel" title="relevance {value:.2f} (0 to 1)">'
        f'<span class="vb-bar vb-bar-{step}"><span></span></span>'
        f'<span class="vb-rel-num">{value:.2f}</span></span>'
    )


def citation(quote: Quote) -> str:
    """Title (linked to the article), date and publisher of the article a quote comes
    from: the host of its URL, or its file where it has none."""
    title = esc(quote.title)
    # Only web links: a feed's "url" is untrusted too (no javascript: or data: links).
    if quote.url and quote.url.lower().startswith(("https://", "http://")):
        title = (f'<a href="{esc(quote.url)}" target="_blank" rel="noopener noreferrer">'
                 f"{title}</a>")
    parts = [f'<span class="vb-title">{title}</span>']
    if quote.date:
        parts.append(f'<span class="vb-date">{esc(quote.date)}</span>')
    parts.append(f'<span class="vb-source">{esc(quote.publisher)}</span>')
    return '<span class="vb-sep"> · </span>'.join(parts)


def render_quote(quote: Quote, number: int, *, answering: bool = True,
                 context: int | None = CONTEXT_CHARS, label: str | None = None) -> str:
    """One quote: the blockquote, then its citation, relevance and `label` underneath.

    A quote that is not `answering` (an abstention's closest passage) is dimmed, its best
    sentence set apart but not marked, and labelled CLOSEST_MATCH unless `label` says.
    """
    kind = "vb-quote" if answering else "vb-quote vb-closest"
    label = label if label is not None else ("" if answering else CLOSEST_MATCH)
    label = f'<span class="vb-label">{esc(label)}</span>' if label else ""
    body = marked_text(quote.text, quote.highlights, context=context, mark=answering)
    return (
        f'<div class="{kind}">'
        f'<blockquote class="vb-text">{body}</blockquote>'
        f'<div class="vb-cite"><span class="vb-num">[{number}]</span> {citation(quote)}'
        f"{relevance_bar(quote.score)}{label}</div>"
        "</div>"
    )


# Above a follow-up's quotes (qa.followup): the earlier question it was read with.
READ_WITH = "Read with your earlier question:"
# Above quotes restricted by time words in the question ("articles from 2023").
READ_TIME = "Read as asking about"


def render_answer(answer: Answer, *, context: int | None = CONTEXT_CHARS) -> str:
    """The whole answer as one HTML fragment for a chat message."""
    html = _render_answer(answer, context)
    notes = []
    if answer.read_with:  # a follow-up: say which earlier question it was read with
        notes.append(f'<p class="vb-read-with">{READ_WITH} <q>{esc(answer.read_with)}</q></p>')
    if answer.read_time:  # time words: say which dates were searched
        notes.append(f'<p class="vb-read-time">{READ_TIME} {esc(answer.read_time)}</p>')
    return html.replace(">", ">" + "".join(notes), 1) if notes else html


def _render_answer(answer: Answer, context: int | None) -> str:
    if answer.abstained:
        short = None if context is None else min(context, CLOSEST_CONTEXT_CHARS)
        closest = "".join(
            render_quote(q, n, answering=False, context=short)
            for n, q in enumerate(answer.closest[:CLOSEST_SHOWN], start=1)
        )
        more = (
            f'<p class="vb-closest-head">{CLOSEST_HEAD}</p>' + closest
            if closest else ""
        )
        return (
            '<div class="vb-answer vb-abstained">'
            f'<p class="vb-note">{ABSTAIN_NOTE}</p>{more}</div>'
        )
    if not answer.quotes:
        return f'<div class="vb-answer"><p class="vb-note">{EMPTY_NOTE}</p></div>'
    if answer.confidence == "low":
        quotes = "".join(
            render_quote(q, n, context=context, label=MAY_ANSWER)
            for n, q in enumerate(answer.quotes, start=1)
        )
        return (f'<div class="vb-answer vb-low"><p class="vb-note">{LOW_CONFIDENCE_NOTE}</p>'
                f"{quotes}</div>")
    quotes = "".join(
        render_quote(q, n, context=context) for n, q in enumerate(answer.quotes, start=1)
    )
    return f'<div class="vb-answer">{quotes}</div>'


def render_question(question: str) -> str:
    """The user's own message, escaped (the chat shows HTML as-is)."""
    return f'<div class="vb-question">{esc(question)}</div>'


def render_error(message: str) -> str:
    """A friendly error bubble instead of a crash."""
    return (
        '<div class="vb-answer vb-error"><p class="vb-note">Sorry, that did not work: '
        f"{esc(message)}</p></div>"
    )


# The page's stylesheet: it only styles the classes above (and uses the theme's colours,
# so dark mode works too).
CSS = """
.vb-answer { display: flex; flex-direction: column; gap: 0.9rem; }
.vb-quote { border-left: 4px solid var(--color-accent, #f97316); padding: 0.1rem 0 0.1rem 0.9rem; }
.vb-quote blockquote.vb-text {
  margin: 0; padding: 0; border: none; font-style: normal;
  line-height: 1.55; color: var(--body-text-color);
}
.vb-quote mark {
  background: #fde68a; color: #1f2937; padding: 0.05em 0.15em; border-radius: 3px;
  box-decoration-break: clone; -webkit-box-decoration-break: clone;
}
.vb-gap { color: var(--body-text-color-subdued); }
.vb-cite {
  margin-top: 0.45rem; font-size: 0.85em; color: var(--body-text-color-subdued);
  display: flex; flex-wrap: wrap; align-items: center; gap: 0.2rem 0.4rem;
}
.vb-num { font-weight: 600; }
.vb-title { font-weight: 600; color: var(--body-text-color); }
.vb-source { font-family: var(--font-mono, monospace); font-size: 0.95em; }
.vb-rel { display: inline-flex; align-items: center; gap: 0.3rem; margin-left: 0.4rem; }
.vb-bar {
  display: inline-block; width: 4.5rem; height: 0.45rem; border-radius: 999px;
  background: var(--border-color-primary, #e5e7eb); overflow: hidden;
}
.vb-bar > span { display: block; height: 100%; background: #16a34a; border-radius: 999px; }
""" + "".join(
    f".vb-bar-{i} > span {{ width: {i * 100 // BAR_STEPS}%; }}\n" for i in range(BAR_STEPS + 1)
) + """
.vb-abstained .vb-note { font-weight: 600; margin: 0; }
.vb-note { margin: 0; }
.vb-read-with, .vb-read-time { margin: 0 0 0.3em; font-size: 0.85em; opacity: 0.75; }
.vb-closest-head { margin: 0; font-size: 0.9em; color: var(--body-text-color-subdued); }
.vb-closest { border-left-color: var(--border-color-primary, #d1d5db); opacity: 0.6; }
.vb-closest blockquote.vb-text { color: var(--body-text-color-subdued); }
.vb-closest .vb-bar > span { background: #9ca3af; }
.vb-label {
  text-transform: uppercase; letter-spacing: 0.04em; font-size: 0.8em; font-weight: 600;
  border: 1px solid currentColor; border-radius: 4px; padding: 0 0.3rem;
}
.vb-low > .vb-note { font-weight: 600; }
.vb-low .vb-quote { border-left-color: #facc15; }
.vb-error .vb-note { color: #b91c1c; }
"""
