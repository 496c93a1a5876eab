"""The values monitoring is fed: SLOs with their burn-rate windows, threshold alerts.

`harness.analysis.thresholds.compute` derives one `Thresholds` from a baseline
and the policy; the Prometheus rules and promtool tests, the Sloth spec and
the Grafana dashboard (`harness.outputs.alerts`, `.sloth`, `.grafana`) render
it. What is written into each of them (PromQL selectors and queries, durations,
numbers, `le` labels) is written here once, so the renderings cannot disagree
on a label or a digit. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Literal

from prometheus_client.utils import floatToGoString

from harness.model.endpoint import split_endpoint

Severity = Literal["page", "ticket"]
SloKind = Literal["latency", "errors"]

SLO_PERIOD_S = 30 * 86400
"""The error budget's period: the workbook's (and Sloth's default) 30 days."""

HTTP_HISTOGRAM = "http_request_duration_seconds"


@dataclass(frozen=True)
class BurnWindow:
    """One multiwindow burn-rate condition: both windows burn faster than `factor`."""

    severity: Severity
    long_s: int
    short_s: int
    factor: float
    """Burn rate: the error ratio over the budget (1 = exactly the budget in the period)."""

    @property
    def budget_spent(self) -> float:
        """Share of the period's budget spent in the long window at this burn rate."""
        return self.factor * self.long_s / SLO_PERIOD_S

    @property
    def long(self) -> str:
        return duration(self.long_s)

    @property
    def short(self) -> str:
        return duration(self.short_s)


WORKBOOK = (
    BurnWindow("page", 3600, 300, 14.4),      # 2% of the budget in 1 h
    BurnWindow("page", 6 * 3600, 1800, 6.0),  # 5% in 6 h
    BurnWindow("ticket", 86400, 7200, 3.0),   # 10% in 1 d
    BurnWindow("ticket", 3 * 86400, 6 * 3600, 1.0),  # 10% in 3 d
)
"""The workbook's recommended windows and burn rates for a 30-day SLO."""

WINDOWS_S = tuple(sorted({s for w in WORKBOOK for s in (w.long_s, w.short_s)}))
"""Every window an SLO's error ratio is recorded over (5m ... 3d)."""

LATENCY_ALERT = "EndpointLatencyBudgetBurn"
ERROR_ALERT = "EndpointErrorBudgetBurn"


def duration(seconds: int) -> str:
    """A Prometheus duration: 300 -> "5m", 5400 -> "1h30m", 0 -> "0s"."""
    if seconds <= 0:
        return "0s"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            out += f"{n}{unit}"
    return out


def le_label(bound: float) -> str:
    """An upper bound as the service's exporter writes its `le` label (`1.0`, `+Inf`)."""
    return floatToGoString(bound)


def number(value: float) -> str:
    """A threshold as the rules, the spec and the tests write it (12 significant digits)."""
    return format(value, ".12g")


def exact(value: float) -> float:
    """`value` rounded to what `number` writes, so every output carries the same float."""
    return float(number(value))


def _string(value: str) -> str:
    return json.dumps(value)  # a PromQL double-quoted string (Go escapes)


def selector(job: str, *matchers: tuple[str, str, str]) -> str:
    """`{job="...",name="value",...}`; matchers are (label, op, value), op `=` or `=~`."""
    parts = [f"job={_string(job)}"] if job else []
    parts += [f"{name}{op}{_string(value)}" for name, op, value in matchers]
    return "{" + ",".join(parts) + "}" if parts else ""


# ---------------------------------------------------------------- SLOs


@dataclass(frozen=True)
class Slo:
    """One endpoint's latency or error SLO, with its burn-rate alerts."""

    kind: SloKind
    endpoint: str
    """"METHOD /route" as in the results and the service's `method`/`route` labels."""
    objective: float
    job: str
    baseline: float | None
    """latency: the baseline percentile in ms; errors: the baseline's 5xx share."""
    baseline_text: str
    derivation: str
    """How the threshold was reached, for people: `p99 41.2 ms x (1 + 25%) = 51.5 ms -> 0.075`."""
    page_for_s: int
    ticket_for_s: int
    threshold_s: float | None = None
    """latency: T in seconds (an exported bucket bound)."""
    le: str | None = None
    """latency: T as the service's `le` label."""

    @property
    def method(self) -> str:
        return split_endpoint(self.endpoint)[0]

    @property
    def route(self) -> str:
        return split_endpoint(self.endpoint)[1]

    @property
    def alert(self) -> str:
        return LATENCY_ALERT if self.kind == "latency" else ERROR_ALERT

    @property
    def budget(self) -> float:
        return exact(1 - self.objective)

    @property
    def name(self) -> str:
        """A stable id: `latency-get-api-v1-agents-agent-id`."""
        slug = re.sub(r"[^a-z0-9]+", "-", self.endpoint.lower()).strip("-")
        return f"{self.kind}-{slug}"

    @property
    def labels(self) -> dict[str, str]:
        """The labels of its recording rules and alerts (besides window and severity)."""
        return {"slo": self.kind, "method": self.method, "route": self.route}

    def burn_threshold(self, window: BurnWindow) -> float:
        """The error ratio above which `window` burns too fast."""
        return exact(window.factor * self.budget)

    def for_s(self, window: BurnWindow) -> int:
        return self.page_for_s if window.severity == "page" else self.ticket_for_s

    def _sel(self, *extra: tuple[str, str, str]) -> str:
        return selector(self.job, ("method", "=", self.method), ("route", "=", self.route),
                        *extra)

    def total_query(self, window: str) -> str:
        """Requests per second over `window` (a duration or Sloth's `{{.window}}`)."""
        return f"sum(rate({HTTP_HISTOGRAM}_count{self._sel()}[{window}]))"

    def error_query(self, window: str) -> str:
        """Bad requests per second: slower than T, or answered with a 5xx."""
        if self.kind == "latency":
            good = f"sum(rate({HTTP_HISTOGRAM}_bucket{self._sel(('le', '=', self.le or ''))}" \
                   f"[{window}]))"
            return f"({self.total_query(window)} - {good})"
        bad = f"sum(rate({HTTP_HISTOGRAM}_count{self._sel(('status', '=~', '5..'))}[{window}]))"
        return f"({bad} or vector(0))"

    def ratio_query(self, window: str) -> str:
        """The error ratio over `window`: what burns the budget."""
        return f"{self.error_query(window)} / {self.total_query(window)}"

    def good_ratio_query(self, window: str) -> str:
        """The SLI itself: the share of good requests over `window`."""
        return f"1 - ({self.ratio_query(window)})"


# ---------------------------------------------------------------- threshold alerts


Signal = Literal["cache_hit_ratio", "upstream_retry_amplification", "upstream_failure_ratio",
                 "breaker_state", "pool_saturation", "pool_waiting", "kpi_staleness"]
Unit = Literal["share", "ratio", "seconds", "count", "state"]


@dataclass(frozen=True)
class Threshold:
    """One threshold alert: `query op value` for `for_s`."""

    alert: str
    signal: Signal
    title: str
    query: str
    """PromQL of the watched series (no comparison)."""
    op: Literal[">", "<", ">="]
    value: float
    unit: Unit
    baseline: float | None
    baseline_text: str
    derivation: str
    for_s: int
    window_s: int
    severity: Severity = "ticket"
    labels: dict[str, str] = field(default_factory=dict)
    """Subject labels the alert carries (`cache`)."""
    by_instance: bool = False
    """The query keeps the `instance` label (a gauge read per process)."""

    @property
    def expr(self) -> str:
        return f"{self.query} {self.op} {number(self.value)}"

    def breached(self, x: float) -> bool:
        return {">": x > self.value, "<": x < self.value, ">=": x >= self.value}[self.op]


@dataclass(frozen=True)
class Thresholds:
    """Everything monitoring is fed, derived once."""

    baseline: str
    runs: int
    slos: tuple[Slo, ...]
    thresholds: tuple[Threshold, ...]
    notes: tuple[str, ...]
    job: str
    runbook: str
    windows: tuple[BurnWindow, ...] = WORKBOOK

    def runbook_url(self, alert: str) -> str:
        """The alert's section of the runbook: `docs/runbook.md#cachehitratiolow`."""
        return f"{self.runbook.split('#', 1)[0]}#{alert.lower()}"

    @property
    def alerts(self) -> list[str]:
        """Every alert name, in order."""
        names = [s.alert for s in self.slos] + [t.alert for t in self.thresholds]
        return list(dict.fromkeys(names))
