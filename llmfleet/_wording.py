"""Numbers in messages, written as people read them: `1 warning` and `2 warnings`, never
`1 warning(s)`; `6.5 s`, never `6.54174 s`. Machine formats (JSON, JUnit) keep their own precision."""

from __future__ import annotations

import math


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`1 attempt`, `3 attempts`; `plural` for nouns that do not take an `s`."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def duration(seconds: float) -> str:
    """A number of seconds with the precision that matters at its size: `60 s`, `6.5 s`, `0.25 s`."""
    if not math.isfinite(seconds) or seconds <= 0:
        return f"{max(seconds, 0):g} s"
    if seconds < 0.001:  # only a --timeout written to hurt: 1e-300, not 0.000...0001
        return f"{seconds:.1g} s"
    if seconds >= 10:
        text = f"{seconds:.0f}"
    elif seconds >= 1:
        text = f"{seconds:.1f}"
    else:  # two significant digits: 0.25, 0.05, 0.003
        text = f"{seconds:.{1 - math.floor(math.log10(seconds))}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} s"
