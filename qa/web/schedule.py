"""Updating on a schedule: `feeds update --every 30m` (durations, and a loop that keeps time)."""
from __future__ import annotations

import re
import threading
from collections.abc import Callable

from qa.errors import ConfigError, QAError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in "90s", "30m", "2h", "1d".

    Raises:
        ConfigError: anything else.
    """
    match = _DURATION.match(str(text))
    if not match:
        raise ConfigError(f"a duration looks like 90s, 30m, 2h or 1d, got {text!r}")
    return float(match.group(1)) * _UNIT[match.group(2).lower()]


def poll(run_once: Callable[[], object], every: float, stop: threading.Event | None = None,
         report_error: Callable[[str], None] = lambda message: None) -> None:
    """Call `run_once()` now and then every `every` seconds until `stop` is set (or
    Ctrl-C). A failing run is reported and the next one happens on time."""
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            run_once()
        except QAError as exc:
            report_error(str(exc))
        stop.wait(every)
