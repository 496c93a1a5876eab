"""How a latency reads, the same in every view of a run.

A p95 of 5.04 ms printed as "5.0" in the terminal and "5.04" in the report
makes a reader wonder which one the gate used, and at single-digit
milliseconds the lost digit is 2%. Every view (terminal tables, Markdown, the
HTML report, the scaling table) formats milliseconds here, with one rule:
three significant figures in fixed point, thousands separated, so the digit
shown is always the one that matters at that size.
"""

from __future__ import annotations

import math

MISSING = "–"
"""What a view shows for no value (None, NaN or infinite)."""


def ms_decimals(value: float) -> int:
    """The decimals that give a millisecond value three significant figures."""
    size = abs(value)
    return 3 if size < 1 else 2 if size < 10 else 1 if size < 100 else 0


def ms(value: float | None) -> str:
    """Milliseconds to three significant figures: 0.123, 5.04, 12.3, 123, 1,234."""
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:,.{ms_decimals(value)}f}"
