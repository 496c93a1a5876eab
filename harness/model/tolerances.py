"""The check kinds a tolerance is written for, and how a tolerance is written.

Tolerance spellings (the sign is the bad direction; it may be left out, and
when given it must agree with the kind's: only `hit_ratio` is worse lower):

* `"+15%"`: relative, current / baseline - 1 (`Tolerance(0.15)`); any kind.
* `"+1pt"`, `"-5pt"`: absolute percentage points of a share
  (`Tolerance(1.0, relative=False)`: `limit` is in points, as `harness.model.gate`
  defines it); kinds measured as shares only.
* `0.10`: a bare number is an absolute share, the same as `"+10pt"`; shares only.

Times (latencies, waits, lags) and other ratios take relative tolerances only:
the gate compares them on the log scale (`harness.analysis.compare`), so an
absolute `"+5ms"` is refused rather than misread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from harness.model import toml_errors
from harness.model.gate import Tolerance

Unit = Literal["ms", "share", "ratio"]


@dataclass(frozen=True)
class Kind:
    """One kind of check a tolerance is written for."""

    unit: Unit
    """ms: a time; share: a fraction 0..1 (points apply); ratio: any other ratio (% only)."""
    higher_is_worse: bool = True
    subjects: Literal["endpoints", "caches", "queries", "benchmarks"] | None = None
    """The override table whose entries name this kind's subjects (None: one subject)."""


KINDS: dict[str, Kind] = {
    "p50": Kind("ms", subjects="endpoints"),
    "p95": Kind("ms", subjects="endpoints"),
    "p99": Kind("ms", subjects="endpoints"),
    "throughput_shortfall": Kind("share"),  # of the run's paced tasks, not per endpoint
    "error_rate": Kind("share", subjects="endpoints"),
    "hit_ratio": Kind("share", higher_is_worse=False, subjects="caches"),
    "retry_rate": Kind("share"),
    "retry_amplification": Kind("ratio"),
    "failure_rate": Kind("share"),
    "fallback_rate": Kind("share"),
    "upstream_p95": Kind("ms"),
    "query_p95": Kind("ms", subjects="queries"),
    "pool_wait_p95": Kind("ms"),
    "freshness_p95": Kind("ms"),
    "bench": Kind("ms", subjects="benchmarks"),  # median round time of a pytest-benchmark
}
"""Every check kind a tolerance can be written for, by its key in `[tolerances]`."""

CHECK_KINDS = {
    "cache_hit_ratio": "hit_ratio", "upstream_retry_rate": "retry_rate",
    "upstream_retry_amplification": "retry_amplification",
    "upstream_failure_rate": "failure_rate", "upstream_fallback_rate": "fallback_rate",
    "pool_wait": "pool_wait_p95",
}
"""`harness.model.gate.CheckResult.kind` names that differ from the policy's keys.
(Latency checks, kind `latency`, pass their percentile: `p50`, `p95`, `p99`.)"""

_SPELLING = re.compile(r"^([+-]?)\s*(\d+(?:\.\d*)?|\.\d+)\s*(%|pt|ms)$")
_FORMS = {"ms": "'+15%'", "share": "'+15%', '+1pt' or a share such as 0.01",
          "ratio": "'+15%'"}


def parse_tolerance(kind: str, value: object) -> Tolerance:
    """A tolerance as written in the policy (see the module docstring); ValueError if not."""
    spec = KINDS[kind]
    bad = "+" if spec.higher_is_worse else "-"
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"must be a tolerance such as {_FORMS[spec.unit]}, "  # noqa: TRY004
                         f"not {toml_errors.type_name(value)}")
    if not isinstance(value, str):  # a bare number: an absolute share
        if spec.unit != "share":
            raise ValueError(f"a bare number is a share; write {_FORMS[spec.unit]}")
        if not 0 <= value <= 1:
            raise ValueError(f"a share is between 0 and 1, not {value}")
        return Tolerance(limit=round(value * 100, 10), relative=False,
                         higher_is_worse=spec.higher_is_worse, text=str(value))
    m = _SPELLING.match(value.strip())
    if m is None:
        raise ValueError(f"{value!r} is not a tolerance; write {_FORMS[spec.unit]}")
    sign, number, suffix = m.groups()
    amount = float(number)
    if sign and sign != bad:
        worse = "higher" if spec.higher_is_worse else "lower"
        raise ValueError(f"a {worse} {kind} is worse, so its tolerance is written "
                         f"{bad}{number}{suffix}, not {value!r}")
    if suffix == "%":
        if not spec.higher_is_worse and amount >= 100:
            raise ValueError(f"{value!r}: a drop of 100% or more cannot be tolerated "
                             f"relatively; write points instead")
        return Tolerance(limit=round(amount / 100, 12), relative=True,
                         higher_is_worse=spec.higher_is_worse, text=value)
    if suffix == "ms":
        raise ValueError(f"{value!r}: a tolerance in milliseconds is not supported (times "
                         f"are compared relatively); write {_FORMS[spec.unit]}")
    if spec.unit != "share":
        raise ValueError(f"{value!r} does not fit {kind} (measured as {spec.unit}, not a "
                         f"share); write {_FORMS[spec.unit]}")
    return Tolerance(limit=amount, relative=False, higher_is_worse=spec.higher_is_worse,
                     text=value)
