"""Dates: as the index stores and the date filter compares them (ISO YYYY-MM-DD strings),
and as questions say them ("in 2023", "since March", "last week")."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

_YEAR = re.compile(r"\b(1[89]|2[0-9])[0-9]{2}\b")


def normalize_date(value: object) -> str | None:
    """An ISO date (YYYY-MM-DD) from what a feed or page gives, or None if it is no date.

    Dates are compared as strings by the date filter, so they must all look alike.
    """
    text = "" if value is None else str(value).strip()
    if not _YEAR.search(text):  # without a year any "date" would be a guess
        return None
    from datetime import datetime

    from dateutil import parser

    try:
        return parser.parse(text, default=datetime(2000, 1, 1)).date().isoformat()
    except (ValueError, OverflowError):
        return None


# -- time words in questions ----------------------------------------------------------------
# Months only capitalised: "may" is more often the verb, "march" the noun.
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
_MONTH = "|".join(MONTHS) + r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec"
_YEAR_WORD = r"(?:19|20)\d\d"
# A date a question may name: "July 28, 2025", "28 July 2025", "2025-07-28", "March 2024",
# "March", "2023", "the 1990s".
_WHEN = (rf"(?P<iso>{_YEAR_WORD}-\d\d-\d\d)"
         rf"|(?P<md>(?-i:{_MONTH})\.?\s+(?P<md_day>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(?P<md_year>{_YEAR_WORD}))?)"
         rf"|(?P<dm>(?P<dm_day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?-i:(?P<dm_month>{_MONTH}))\.?(?:,?\s+(?P<dm_year>{_YEAR_WORD}))?)"
         rf"|(?P<my>(?-i:(?P<my_month>{_MONTH}))\.?(?:,?\s+(?P<my_year>{_YEAR_WORD}))?)"
         rf"|(?P<decade>(?:the\s+)?(?P<decade_year>(?:19|20)\d0)'?s)"
         rf"|(?P<year>{_YEAR_WORD})(?![\w.,]?\d)")
# What a bare year or month needs before it to be a date ("in 2023", not "2023 people";
# "since March", not "the March on Washington").
_LEAD = (r"in|during|of|from|throughout|since|before|after|until|till|by|prior\s+to|between|"
         r"early|late|mid|on")
_RELATIVE = re.compile(
    r"\b(?P<word>yesterday|today|tonight|this\s+morning)\b"
    r"|\b(?P<which>this|last|past|previous)\s+(?P<unit>week|month|year|weekend)\b"
    r"|\b(?:in\s+)?(?:the\s+)?(?:last|past)\s+(?P<n>\d+|two|three|four|five|six|seven|eight|"
    r"nine|ten|few|several)\s+(?P<units>days|weeks|months|years)\b"
    r"|\b(?P<ago_n>\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten)\s+"
    r"(?P<ago_unit>day|week|month|year)s?\s+ago\b",
    re.IGNORECASE)
_RANGE = re.compile(r"\b(?:between|from)\s+(?P<a>.+?)\s+(?:and|to|until|through)\s+"
                    r"(?P<b>.+?)(?=[?.!,;]|$)", re.IGNORECASE)
_SINGLE = re.compile(rf"\b(?P<lead>{_LEAD})\s+"
                     rf"(?:the\s+(?:start|end|beginning|middle)\s+of\s+)?(?P<when>{_WHEN})\b",
                     re.IGNORECASE)
# A full date or a month with its year needs no word before it.
_STANDALONE = re.compile(rf"\b(?P<when>{_WHEN})\b", re.IGNORECASE)
# Words that ask for the newest news without naming a date.
_RECENT = re.compile(r"\b(latest|lately|recent(ly)?|newest|currently|now|so far|"
                     r"still|ongoing|upcoming|this (season))\b", re.IGNORECASE)
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
            "seven": 7, "eight": 8, "nine": 9, "ten": 10, "few": 3, "several": 5}


@dataclass(frozen=True, slots=True)
class TimeFrame:
    """What a question says about when: the dates to search (None: open), the words it was
    read from, and how a quote card says it ("articles from 2023"). `recent` marks a
    question that asks for the latest news without naming dates."""

    date_from: str | None = None
    date_to: str | None = None
    phrase: str = ""
    recent: bool = False

    @property
    def bounded(self) -> bool:
        return bool(self.date_from or self.date_to)

    @property
    def label(self) -> str:
        """How the quote card says the question was read ("articles from 2023")."""
        if self.date_from and self.date_to:
            return f"articles from {spoken_range(self.date_from, self.date_to)}"
        if self.date_from:
            return f"articles from {spoken_range(self.date_from, self.date_from)} on"
        if self.date_to:
            return f"articles up to {spoken_range(self.date_to, self.date_to)}"
        return "the newest articles first" if self.recent else ""


def spoken_range(first_iso: str, last_iso: str) -> str:
    """"2023", "March 2024", "28 July 2025", or "2 March 2026 to 4 December 2026"."""
    first, last = date.fromisoformat(first_iso), date.fromisoformat(last_iso)
    if (first.month, first.day, last.month, last.day) == (1, 1, 12, 31):
        return str(first.year) if first.year == last.year else f"{first.year} to {last.year}"
    if first.day == 1 and last == _month_span(last.year, last.month)[1]:
        if (first.year, first.month) == (last.year, last.month):
            return f"{MONTHS[first.month - 1]} {first.year}"
        return (f"{MONTHS[first.month - 1]} {first.year} to "
                f"{MONTHS[last.month - 1]} {last.year}")

    def day(d: date) -> str:
        return f"{d.day} {MONTHS[d.month - 1]} {d.year}"
    return day(first) if first == last else f"{day(first)} to {day(last)}"


def _month_number(name: str) -> int:
    name = name.rstrip(".").lower()[:3]
    return next(i for i, m in enumerate(MONTHS, start=1) if m.lower().startswith(name))


def _month_span(year: int, month: int) -> tuple[date, date]:
    first = date(year, month, 1)
    last = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1))
    return first, last


def _span(match: re.Match, today: date) -> tuple[date, date] | None:
    """The first and last day a matched _WHEN names; a month without a year is the latest
    one up to `today`."""
    g = match.groupdict()
    try:
        if g.get("iso"):
            day = date.fromisoformat(g["iso"])
            return day, day
        if g.get("md") or g.get("dm"):
            month = _month_number(g.get("md") and g["md"].split()[0] or g["dm_month"])
            number = int(g.get("md_day") or g.get("dm_day"))
            year = g.get("md_year") or g.get("dm_year")
            day = date(int(year) if year else today.year, month, number)
            if not year and day > today:
                day = day.replace(year=day.year - 1)
            return day, day
        if g.get("my"):
            month = _month_number(g["my_month"])
            year = int(g["my_year"]) if g.get("my_year") else (
                today.year if month <= today.month else today.year - 1)
            return _month_span(year, month)
        if g.get("decade"):
            start = int(g["decade_year"])
            return date(start, 1, 1), date(start + 9, 12, 31)
        if g.get("year"):
            year = int(g["year"])
            return date(year, 1, 1), date(year, 12, 31)
    except ValueError:  # "February 30"
        return None
    return None


def _relative(match: re.Match, today: date) -> tuple[date, date]:
    g = match.groupdict()
    if g["word"]:
        day = today - timedelta(days=1) if g["word"].lower() == "yesterday" else today
        return day, day
    if g["unit"]:
        unit, which = g["unit"].lower(), g["which"].lower()
        back = which != "this"
        if unit in ("week", "weekend"):
            monday = today - timedelta(days=today.weekday()) - timedelta(weeks=back)
            return monday, min(today, monday + timedelta(days=6))
        if unit == "month":
            year, month = (today.year, today.month) if not back else (
                (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12))
            first, last = _month_span(year, month)
            return first, min(today, last)
        year = today.year - back
        return date(year, 1, 1), min(today, date(year, 12, 31))
    if g["units"]:
        n = _NUMBERS.get(g["n"].lower()) or int(g["n"])
        days = {"days": 1, "weeks": 7, "months": 31, "years": 366}[g["units"].lower()] * n
        return today - timedelta(days=days), today
    n = _NUMBERS.get(g["ago_n"].lower()) or int(g["ago_n"])
    unit = {"day": 1, "week": 7, "month": 30, "year": 365}[g["ago_unit"].lower()]
    middle = today - timedelta(days=n * unit)
    half = max(1, unit // 2)
    return middle - timedelta(days=half), min(today, middle + timedelta(days=half))


def read_time(question: str, today: date) -> TimeFrame:
    """The dates a question names, relative to `today` (the day it is asked, or the day
    an archive is asked as of). Explicit only: "in 2023", "since March", "last week",
    "yesterday", "between 2019 and 2021", "before July 2024", "on July 28, 2025". Words
    that ask for the latest ("latest", "recently") give no dates, only `recent`. An event
    ("before the election") is not a date: it is left to the search."""
    recent = bool(_RECENT.search(question))
    found = _RANGE.search(question)
    if found:
        a = _STANDALONE.fullmatch(found["a"].strip())
        b = _STANDALONE.fullmatch(found["b"].strip())
        last = b and _span(b, today)
        # "from January to March 2024": the first end takes the year of the second.
        first = a and last and _span(a, last[1])
        if first and last and first[0] <= last[1]:
            return TimeFrame(first[0].isoformat(), last[1].isoformat(), found.group(0).strip(),
                             recent)
    found = _RELATIVE.search(question)
    if found:
        first, last = _relative(found, today)
        return TimeFrame(first.isoformat(), last.isoformat(), found.group(0), recent)
    for found in _SINGLE.finditer(question):
        span = _span(found, today)
        if span is None:
            continue
        lead = found["lead"].lower()
        first, last = span
        if lead == "since":
            return TimeFrame(first.isoformat(), today.isoformat(), found.group(0), recent)
        if lead in ("before",) or lead.startswith("prior"):
            return TimeFrame(None, (first - timedelta(days=1)).isoformat(), found.group(0),
                             recent)
        if lead in ("until", "till", "by"):
            return TimeFrame(None, last.isoformat(), found.group(0), recent)
        if lead == "after":
            return TimeFrame((last + timedelta(days=1)).isoformat(), None, found.group(0),
                             recent)
        return TimeFrame(first.isoformat(), last.isoformat(), found.group(0), recent)
    for found in _STANDALONE.finditer(question):
        g = found.groupdict()
        # Alone, only a whole date or a month with its year is a date: a bare year is
        # as often a name ("the 2022 World Cup"), a bare month a word ("May I ask").
        if (g.get("iso") or (g.get("md") and g.get("md_year"))
                or (g.get("dm") and g.get("dm_year")) or (g.get("my") and g.get("my_year"))):
            span = _span(found, today)
            if span:
                return TimeFrame(span[0].isoformat(), span[1].isoformat(), found.group(0),
                                 recent)
    return TimeFrame(recent=recent)
