"""Dates as the index stores and the date filter compares them: ISO YYYY-MM-DD strings."""
from __future__ import annotations

import re

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
