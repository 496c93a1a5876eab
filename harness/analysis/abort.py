"""`harness run --abort-on SPEC`: a threshold judged on the live figures while a run goes on.

Like k6's `abortOnFail` thresholds and a Prometheus alert's `for`: a run whose
service is plainly broken stops early instead of burning its whole duration,
and says why. Pure: specs are parsed from text, and the evaluator is fed the
plugin's successive `live.json` snapshots (`LiveStatus`); the runner does the
reading, the stopping and the recording.

Grammar (spaces around the parts are optional)::

    SPEC      = METRIC [":" ENDPOINT] OP THRESHOLD [" for " DURATION]
    METRIC    = p50 | p90 | p95 | p99 | max     latency, THRESHOLD in ms or s
              | errors                         failed share of requests, THRESHOLD in %
              | rps                            requests per second, THRESHOLD a number
    ENDPOINT  = "GET /api/v1/agents/{agent_id}" (a key as in result.json) or a bare
                route "/api/v1/agents" when one method serves it; none: all requests
    OP        = ">" | "<"
    DURATION  = 30s, 1m, 1m30s, 500ms; none: the first breaching evaluation fires

e.g. `p95:/api/v1/dashboard/overview>500ms for 30s`, `errors>5% for 10s`, `rps<20 for 15s`.

What is judged: the live span, the last `LIVE_SPAN_S` (5) complete seconds of
requests, re-evaluated each time the plugin rewrites `live.json` (every second).

* Only the measured phase is judged: a snapshot counts once its whole span
  lies after the warm-up (so warm-up requests never trip it), and never while
  stopping. k6's `delayAbortEval` is the warm-up here.
* A spec fires when every judged snapshot since its breach began has breached
  for at least `for`; one that does not breach clears it (the breach starts
  over). Several specs are independent; the first to fire stops the run.
* No data is neither a breach nor a clear: a latency or error spec on an
  endpoint that completed no request in the span (all of them hung, say)
  keeps its breach start, and fires only on a snapshot that breaches itself.
  `rps` has no such gap: an endpoint seen earlier in the run with no requests
  in the span runs at 0 rps.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from harness.errors import UsageError
from harness.model.client import LiveEndpoint, LiveStatus
from harness.model.endpoint import split_endpoint
from harness.model.result import AbortInfo, iso_time

Metric = Literal["p50", "p90", "p95", "p99", "max", "errors", "rps"]
LATENCY_METRICS = ("p50", "p90", "p95", "p99", "max")
METRICS: tuple[str, ...] = (*LATENCY_METRICS, "errors", "rps")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
EXAMPLE = "e.g. p95:/api/v1/dashboard/overview>500ms for 30s, errors>5% for 10s"

_NUMBER = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-z%/]*)")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class AbortSpecError(UsageError):
    """An `--abort-on` spec that cannot be used: exit 2, one line, before anything starts
    (or, for a bare route that turns out to have several methods, when that is seen)."""


@dataclass(frozen=True)
class AbortSpec:
    """One parsed `--abort-on` threshold. `threshold` is in `unit` (ms, % or rps);
    `endpoint` is a full key, or a bare route (`method` None) resolved against the run."""

    text: str
    metric: Metric
    op: Literal[">", "<"]
    threshold: float
    unit: Literal["ms", "%", "rps"]
    for_s: float = 0.0
    endpoint: str | None = None
    method: str | None = None

    def breaches(self, value: float) -> bool:
        """Whether one observed value (in `unit`) is on the wrong side of the threshold."""
        return value > self.threshold if self.op == ">" else value < self.threshold

    def matches(self, key: str) -> bool:
        """Whether an endpoint key (`METHOD /route`) is the one this spec names."""
        if self.endpoint is None:
            return False
        if self.method is not None:
            return key == f"{self.method} {self.endpoint}"
        return split_endpoint(key)[1] == self.endpoint


def parse_duration(text: str) -> float:
    """`30s`, `1m30s`, `500ms`, `2m`, `1h` -> seconds (a unit is required)."""
    value = text.strip().lower()
    parts = _DURATION_PART.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"malformed duration {text!r} (use e.g. 10s, 1m, 1m30s)")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def parse_spec(text: str) -> AbortSpec:
    """One spec from its text; anything malformed is an `AbortSpecError` naming the fault."""
    def bad(why: str) -> AbortSpecError:
        return AbortSpecError(f"--abort-on {text!r}: {why} ({EXAMPLE})")

    head, *tail = re.split(r"\s+for\s+", text.strip(), maxsplit=1)
    for_s = 0.0
    if tail:
        try:
            for_s = parse_duration(tail[0])
        except ValueError as exc:
            raise bad(f"after 'for': {exc}") from None
    found = re.search(r"[<>]", head)
    if found is None and "=" in head:
        raise bad("the comparison is > or < (no =, >=, <=)")
    if found is None:
        raise bad("no comparison; write METRIC[:ENDPOINT]>THRESHOLD or <THRESHOLD")
    op = found.group()
    if head[found.end():found.end() + 1] in ("=", "<", ">"):
        raise bad("the comparison is > or < (no =, >=, <=)")
    left, right = head[:found.start()].strip(), head[found.end():].strip()
    name, colon, where = left.partition(":")
    metric = name.strip().lower()
    if metric not in METRICS:
        raise bad(f"unknown metric {name.strip()!r}; use one of {', '.join(METRICS)}")
    method, endpoint = _endpoint(where.strip(), bad) if colon else (None, None)
    number = _NUMBER.fullmatch(right.lower())
    if number is None:
        raise bad(f"the threshold {right!r} is not a number with a unit")
    value, unit = float(number.group(1)), number.group(2)
    if metric in LATENCY_METRICS:
        if unit not in ("ms", "s"):
            raise bad(f"a latency threshold needs a unit, ms or s, not {unit or 'none'!r}")
        threshold, canonical = (value * 1000.0 if unit == "s" else value), "ms"
    elif metric == "errors":
        if unit != "%":
            raise bad("an errors threshold is a percentage, e.g. errors>5%")
        if value > 100:
            raise bad("an errors threshold is at most 100%")
        threshold, canonical = value, "%"
    else:
        if unit not in ("", "rps", "/s"):
            raise bad(f"an rps threshold is requests per second, not {unit!r}")
        threshold, canonical = value, "rps"
    return AbortSpec(text=text.strip(), metric=metric, op=op,  # type: ignore[arg-type]
                     threshold=threshold, unit=canonical,  # type: ignore[arg-type]
                     for_s=for_s, endpoint=endpoint, method=method)


def _endpoint(where: str, bad) -> tuple[str | None, str]:
    """`GET /route` -> ("GET", "/route"); `/route` -> (None, "/route")."""
    if not where:
        raise bad("nothing after ':'; name an endpoint, e.g. GET /api/v1/agents")
    method, space, route = where.partition(" ")
    if not space:
        method, route = None, where
    elif method.upper() not in METHODS:
        raise bad(f"unknown method {method!r}")
    route = route.strip()
    if not route.startswith("/") or " " in route:
        raise bad(f"the endpoint {where!r} is not METHOD /route or /route")
    if "?" in route or "#" in route:
        raise bad("an endpoint is a route template, without a query string")
    return (method.upper() if method else None), route


def parse_specs(texts: Iterable[str]) -> tuple[AbortSpec, ...]:
    """Every `--abort-on` given, parsed (the first bad one is the error)."""
    return tuple(parse_spec(t) for t in texts)


@dataclass(frozen=True)
class Firing:
    """A spec that has breached for its whole `for`: what stops the run, and why."""

    spec: AbortSpec
    endpoint: str | None
    observed: float
    since: float
    at: float
    measure_from: float

    @property
    def breached_for_s(self) -> float:
        """How long it had been breaching when it fired (at least the spec's `for`)."""
        return self.at - self.since

    def message(self) -> str:
        """The one line `harness run` prints when it stops the run."""
        what = f"{self.endpoint or 'all requests'} {self.spec.metric}"
        return (f"--abort-on {self.spec.text!r} fired: {what} {_show(self.observed, self.spec)}"
                f" {self.spec.op} {_show(self.spec.threshold, self.spec)} for "
                f"{self.breached_for_s:.1f}s, {self.at - self.measure_from:.1f}s into the "
                "measured phase")

    def info(self) -> AbortInfo:
        """The record `result.json` keeps of it (`run.aborted`)."""
        return AbortInfo(spec=self.spec.text, metric=self.spec.metric, endpoint=self.endpoint,
                         observed=round(self.observed, 3), threshold=self.spec.threshold,
                         unit=self.spec.unit, breached_since=iso_time(self.since) or "",
                         fired_at=iso_time(self.at) or "",
                         breached_for_s=round(self.breached_for_s, 3),
                         after_measured_s=round(self.at - self.measure_from, 3))


def _show(value: float, spec: AbortSpec) -> str:
    if spec.unit == "%":
        return f"{value:.2f}%"
    return f"{value:.1f} {spec.unit}"


@dataclass
class _State:
    since: float | None = None
    endpoint: str | None = None
    evaluated: bool = False


@dataclass
class AbortEvaluator:
    """Feed it every live snapshot (`observe`); it answers with the first spec to fire."""

    specs: tuple[AbortSpec, ...]
    _states: list[_State] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)
    _last_t: float | None = None

    def __post_init__(self) -> None:
        self._states = [_State() for _ in self.specs]

    @staticmethod
    def judged(live: LiveStatus) -> bool:
        """Whether a snapshot is judged: measured phase, its whole span after the warm-up."""
        if live.phase != "measured" or live.measure_from is None:
            return False
        return live.span_from is None or live.span_from >= live.measure_from

    def observe(self, live: LiveStatus) -> Firing | None:
        """Advance every spec by one snapshot (one already seen is ignored)."""
        self._seen.update(live.endpoints)
        if (self._last_t is not None and live.t <= self._last_t) or not self.judged(live):
            return None
        self._last_t = live.t
        fired = None
        for spec, state in zip(self.specs, self._states, strict=True):
            value = self._value(spec, state, live)
            if value is None:
                continue  # no data: neither a breach nor a clear
            state.evaluated = True
            if not spec.breaches(value):
                state.since = None
                continue
            state.since = live.t if state.since is None else state.since
            if fired is None and live.t - state.since >= spec.for_s:
                fired = Firing(spec, state.endpoint, value, state.since, live.t,
                               live.measure_from or live.t)
        return fired

    def never_evaluated(self) -> list[AbortSpec]:
        """Specs that never had data in the measured phase (an endpoint the scenario
        never requested, or a run too short): said in the record, not silently passed."""
        return [s for s, st in zip(self.specs, self._states, strict=True) if not st.evaluated]

    def _value(self, spec: AbortSpec, state: _State, live: LiveStatus) -> float | None:
        if spec.endpoint is None:
            entry = live.total
        else:
            key = state.endpoint or self._resolve(spec)
            if key is None:
                return None
            state.endpoint = key
            entry = live.endpoints.get(key)
            if entry is None:
                return 0.0 if spec.metric == "rps" else None
        return None if entry is None else _metric(spec.metric, entry)

    def _resolve(self, spec: AbortSpec) -> str | None:
        """The endpoint key a spec names, once the run has shown it."""
        found = sorted(k for k in self._seen if spec.matches(k))
        if len(found) > 1:
            raise AbortSpecError(f"--abort-on {spec.text!r}: {spec.endpoint} is served by "
                                 f"{' and '.join(found)}; write the method")
        return found[0] if found else None


def _metric(metric: str, entry: LiveEndpoint) -> float | None:
    if metric == "rps":
        return entry.rps
    if not entry.count:
        return None
    if metric == "errors":
        return 100.0 * entry.failures / entry.count
    return getattr(entry, f"{metric}_ms")
