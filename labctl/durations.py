"""Durations, in one place: the schema fragment lab and drill files write them with, and the one
parser that reads them there and on the command line."""

from __future__ import annotations

import re
from typing import Any

from labctl.errors import LabctlError, UsageError

# A file writes a whole number of milliseconds, seconds or minutes: the forms Nginx, HAProxy
# and MySQL settings take after rendering.
DURATION: dict[str, Any] = {
    "type": "string",
    "pattern": r"^[0-9]+(ms|s|m)$",
    "description": "a duration like 200ms, 5s or 1m",
}
# The same for drill files, whose problems have always named 500ms as the example.
DRILL_DURATION: dict[str, Any] = {**DURATION, "description": "a duration like 500ms, 5s or 1m"}

# Everything DURATION allows, and what options take besides: hours, compounds (1m30s),
# fractions (1.5s) and bare seconds (45). "m" followed by "s" is milliseconds, not minutes.
_PARTS = re.compile(r"(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)(ms|s)?)?")


def _seconds(text: str) -> float | None:
    match = _PARTS.fullmatch(text.strip())
    if match is None or not any(match.groups()[:3]):
        return None
    hours, minutes, amount, unit = match.groups()
    value = float(amount or 0)
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + (value / 1000 if unit == "ms" else value)


def parse_duration(text: str) -> float:
    """'60s', '2m', '1m30s', '500ms' or '45' -> seconds (options, drill files, lab files)."""
    seconds = _seconds(text)
    if seconds is None:
        raise UsageError(f"expected a duration like 30s, 2m or 1m30s, got {text!r}")
    return seconds


def duration_ms(text: str) -> int:
    """A lab file duration ('200ms', '5s', '1m', as the schema allows) in milliseconds."""
    seconds = _seconds(str(text))
    if seconds is None:
        raise LabctlError(f"expected a duration like 200ms, 5s or 1m, got {text!r}")
    return round(seconds * 1000)
