"""`baselines/policy.toml`: how far each check may move, and how the gate decides.

The policy is what a team commits beside its baselines and argues about in
review, so it is written the way people write tolerances (`p95 = "+15%"`,
`hit_ratio = "-5pt"`) and read strictly: an unknown key, a wrong type or a
tolerance that does not parse is a `ConfigError` (exit 2) naming the key and
its line, because a typo that silently fell back to a default would make the
gate lie. Every table and key is optional; what is left out has the default
written in `baselines/policy.toml` (a test keeps that file and `Policy()` equal).

Tables:

* `[gate]`: the family-wise misrate (the whole gate's false-alarm rate, after
  Holm), block length, bootstrap resamples and seed, the fewest blocks a side
  needs, and what an `inconclusive` gate does in CI (`pass` or `fail`).
* `[tolerances]`: a default per check kind (`KINDS`), plus `<kind>_advisory`
  flags (an advisory check is shown but never fails the gate; `p99` is by default).
* `[hard]`: limits that fail the gate whatever the statistics say.
* `[alerts]`: what `harness alerts export|grafana` adds to the baseline and the
  tolerances to make monitoring's rules: the SLO objectives (latency, errors),
  the baseline percentile a latency SLO's threshold starts from, the `for`
  durations (Prometheus spellings: `"2m"`, `"1h30m"`), the limits that are the
  policy's rather than the baseline's (pool saturation, waiters, a floor under
  the KPI view's staleness threshold), the scrape job and the runbook.
* `[endpoints."METHOD /route"]`, `[caches.NAME]`, `[queries.NAME]`,
  `[benchmarks."NAME"]`: overrides
  for one subject; `tolerance_for` and `is_advisory` resolve override > default.

Tolerance spellings are `harness.model.tolerances`'s.
An error's line is found by `harness.model.toml_errors`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from harness.errors import ConfigError
from harness.model import toml_errors
from harness.model.gate import Tolerance
from harness.model.tolerances import CHECK_KINDS, KINDS, parse_tolerance

DEFAULT_PATH = Path("baselines/policy.toml")
"""Where the CLI looks for the policy, relative to the repository root."""

def _default(kind: str, text: str | float) -> Any:
    return Field(default_factory=lambda: parse_tolerance(kind, text))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Tolerances(_Model):
    """Parses every field named after a kind from its spelling."""

    @field_validator("*", mode="before")
    @classmethod
    def _spelled(cls, value: object, info: Any) -> object:
        if info.field_name in KINDS and value is not None and not isinstance(value, Tolerance):
            try:
                return parse_tolerance(info.field_name, value)
            except ValueError as exc:
                raise PydanticCustomError("tolerance", str(exc)) from None
        return value


class GateSettings(_Model):
    """`[gate]`: how the gate decides."""

    misrate: float = Field(0.01, gt=0, lt=0.5)
    """Family-wise false-alarm rate of the whole gate (Holm-adjusted over its checks)."""
    block_s: int = Field(5, ge=1)
    """Seconds of consecutive windows in one resampling block."""
    resamples: int = Field(2000, ge=100)
    """Bootstrap resamples per comparison."""
    seed: int = Field(0, ge=0)
    """Bootstrap seed: the same runs always give the same verdict."""
    min_blocks: int = Field(8, ge=2)
    """Fewer blocks on a side is `inconclusive: run longer`."""
    inconclusive: Literal["pass", "fail"] = "pass"
    """What an inconclusive gate does in CI: exit 0 (`pass`) or exit 1 (`fail`)."""


class Tolerances(_Tolerances):
    """`[tolerances]`: the default tolerance of every check kind, and which are advisory."""

    p50: Tolerance = _default("p50", "+15%")
    p95: Tolerance = _default("p95", "+15%")
    p99: Tolerance = _default("p99", "+25%")
    throughput_shortfall: Tolerance = _default("throughput_shortfall", "+10pt")
    error_rate: Tolerance = _default("error_rate", "+1pt")
    hit_ratio: Tolerance = _default("hit_ratio", "-5pt")
    retry_rate: Tolerance = _default("retry_rate", "+5pt")
    retry_amplification: Tolerance = _default("retry_amplification", "+20%")
    failure_rate: Tolerance = _default("failure_rate", "+2pt")
    fallback_rate: Tolerance = _default("fallback_rate", "+5pt")
    upstream_p95: Tolerance = _default("upstream_p95", "+20%")
    query_p95: Tolerance = _default("query_p95", "+20%")
    pool_wait_p95: Tolerance = _default("pool_wait_p95", "+50%")
    freshness_p95: Tolerance = _default("freshness_p95", "+25%")
    bench: Tolerance = _default("bench", "+15%")
    p50_advisory: bool = False
    p95_advisory: bool = False
    p99_advisory: bool = True
    throughput_shortfall_advisory: bool = False
    error_rate_advisory: bool = False
    hit_ratio_advisory: bool = False
    retry_rate_advisory: bool = False
    retry_amplification_advisory: bool = False
    failure_rate_advisory: bool = False
    fallback_rate_advisory: bool = False
    upstream_p95_advisory: bool = False
    query_p95_advisory: bool = True
    pool_wait_p95_advisory: bool = True
    freshness_p95_advisory: bool = False
    bench_advisory: bool = False


class HardLimits(_Model):
    """`[hard]`: failures whatever the statistics say."""

    error_rate_max: float = Field(0.05, ge=0, le=1)
    """The current run's error rate (a share of requests) above this fails the gate."""
    agreement_max: float = Field(0.01, ge=0, le=1)
    """Client and server request counts further apart than this share fail the gate,
    beyond the one request per user that may be in flight as the window opens."""
    tenant_leaks_max: int = Field(0, ge=0)
    """More responses carrying another tenant's data than this fail the gate."""


_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_DURATION_UNITS = (86400, 3600, 60, 1)


def parse_duration(value: object) -> int:
    """Seconds of a Prometheus-style duration (`"90s"`, `"2m"`, `"1h30m"`, `"3d"`, `"0s"`).

    Whole seconds and the units d, h, m, s in that order; ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError(  # noqa: TRY004 - reported as a policy error, like the others
            f"must be a duration such as '5m', not {toml_errors.type_name(value)}")
    m = _DURATION.match(value.strip())
    if not value.strip() or m is None:
        raise ValueError(f"{value!r} is not a duration; write e.g. '30s', '5m', '1h30m' or '3d'")
    return sum(int(n) * unit for n, unit in zip(m.groups(), _DURATION_UNITS, strict=True) if n)


def _duration(value: object) -> object:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("duration", str(exc)) from None


Duration = Annotated[int, BeforeValidator(_duration)]
"""Seconds, written in the policy as a Prometheus duration (`"5m"`)."""

PERCENTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
"""The baseline percentiles a latency SLO's threshold may start from (each has a tolerance)."""


class AlertSettings(_Model):
    """`[alerts]`: SLOs and alert settings of `harness alerts export|grafana`.

    The thresholds themselves come from the baseline and the tolerances above
    (`harness.analysis.thresholds`); these are the choices monitoring adds."""

    latency_percentile: Literal["p50", "p95", "p99"] = "p99"
    """Each endpoint's latency threshold T is this baseline percentile times (1 + its
    tolerance), rounded up to one of the service's histogram buckets."""
    latency_objective: float = Field(0.99, gt=0, lt=1, validate_default=True)
    """The share of an endpoint's requests that must be faster than T."""
    error_objective: float = Field(0.999, gt=0, lt=1)
    """The share of an endpoint's requests that must be answered without a 5xx."""
    page_for: Duration = 120
    """`for` of the paging burn-rate alerts (1 h / 5 min at 14.4x, 6 h / 30 min at 6x)."""
    ticket_for: Duration = 900
    """`for` of the ticket burn-rate alerts (1 d / 2 h at 3x, 3 d / 6 h at 1x)."""
    threshold_for: Duration = 600
    """`for` of the threshold alerts (caches, ElevenLabs, pool, KPI view)."""
    threshold_window: Duration = Field(300, ge=1)
    """The range the threshold alerts read their rates and gauges over."""
    pool_saturation_max: float = Field(0.9, gt=0, le=1)
    """Connections in use / the pool's maximum, averaged over the window, above this alerts."""
    pool_waiting_max: int = Field(0, ge=0)
    """More tasks than this waiting for a connection at every scrape of the window alerts."""
    kpi_staleness_min: Duration = Field(60, ge=1)
    """The KPI view staleness threshold (baseline x (1 + freshness_p95)) is never below this."""
    job: str = "dashboard-api"
    """The scrape job of the service: every selector carries `job="..."` ("" for none)."""
    runbook: str = "docs/runbook.md"
    """Base of the runbook links (a path in the repository or a URL); `#alertname` is added."""

    @field_validator("latency_objective")
    @classmethod
    def _objective_within_percentile(cls, value: float, info: Any) -> float:
        percentile = info.data.get("latency_percentile")
        if percentile is not None and value > PERCENTILES[percentile]:
            raise PydanticCustomError(  # no context: the message is not a template
                "objective", f"{value} is above the share the {percentile} threshold starts "
                f"from ({PERCENTILES[percentile]}): the baseline itself would burn the "
                f"budget; lower it or raise latency_percentile")
        return value

    @field_validator("runbook")
    @classmethod
    def _runbook_named(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("runbook", "is empty; write a repository path such as "
                                      "'docs/runbook.md' or a URL")
        return value


class EndpointOverrides(_Tolerances):
    """`[endpoints."METHOD /route"]`: one endpoint's tolerances."""

    p50: Tolerance | None = None
    p95: Tolerance | None = None
    p99: Tolerance | None = None
    error_rate: Tolerance | None = None
    p50_advisory: bool | None = None
    p95_advisory: bool | None = None
    p99_advisory: bool | None = None
    error_rate_advisory: bool | None = None


class CacheOverrides(_Tolerances):
    """`[caches.NAME]`: one cache's tolerance."""

    hit_ratio: Tolerance | None = None
    hit_ratio_advisory: bool | None = None


class QueryOverrides(_Tolerances):
    """`[queries.NAME]`: one named database query's tolerance."""

    query_p95: Tolerance | None = None
    query_p95_advisory: bool | None = None


class BenchmarkOverrides(_Tolerances):
    """`[benchmarks."NAME"]`: one pytest-benchmark's tolerance (its test name)."""

    bench: Tolerance | None = None
    bench_advisory: bool | None = None


_ENDPOINT_KEY = re.compile(r"[A-Z]+ \S+")


def _endpoint_key(key: str) -> str:
    if not _ENDPOINT_KEY.fullmatch(key):
        raise PydanticCustomError(  # no context: the message is not a template
            "endpoint_key", f"{key!r} is not an endpoint; write \"METHOD /route\" as in the "
            f"results, e.g. \"GET /api/v1/dashboard/overview\"")
    return key


EndpointKey = Annotated[str, AfterValidator(_endpoint_key)]


class Policy(_Model):
    """The whole `policy.toml`."""

    gate: GateSettings = Field(default_factory=GateSettings)
    tolerances: Tolerances = Field(default_factory=Tolerances)
    hard: HardLimits = Field(default_factory=HardLimits)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    endpoints: dict[EndpointKey, EndpointOverrides] = {}
    """Endpoint key ("GET /api/v1/dashboard/overview") -> its overrides."""
    caches: dict[str, CacheOverrides] = {}
    """Cache name (as in the service's `cache` metric label) -> its overrides."""
    queries: dict[str, QueryOverrides] = {}
    """Query name (as in the service's `query` metric label) -> its overrides."""
    benchmarks: dict[str, BenchmarkOverrides] = {}
    """Benchmark name (pytest-benchmark's `name`, e.g. `test_overview_cached`) -> its
    overrides (`harness bench`)."""

    @property
    def inconclusive_fails(self) -> bool:
        """The gate's `GateResult.inconclusive_fails`."""
        return self.gate.inconclusive == "fail"


# ---------------------------------------------------------------- resolving


def _kind(kind: str) -> str:
    name = CHECK_KINDS.get(kind, kind)
    if name not in KINDS:
        raise ValueError(f"no tolerance for check kind {kind!r} (known: {', '.join(KINDS)})")
    return name


def _override(policy: Policy, kind: str, subject: str | None) -> BaseModel | None:
    table = KINDS[kind].subjects
    if table is None or subject is None:
        return None
    return getattr(policy, table).get(subject)


def tolerance_for(policy: Policy, kind: str, subject: str | None = None) -> Tolerance:
    """The tolerance of one check: the subject's override, else the kind's default.

    `kind` is a `[tolerances]` key (`p95`, `hit_ratio`, `query_p95`, ...) or a
    `CheckResult.kind` that names one (`cache_hit_ratio`, `pool_wait`, ...);
    `subject` the endpoint key, cache or query name. An unknown kind is a ValueError
    (a bug in the caller, not in the policy)."""
    name = _kind(kind)
    override = _override(policy, name, subject)
    found = getattr(override, name) if override is not None else None
    return found if found is not None else getattr(policy.tolerances, name)


def is_advisory(policy: Policy, kind: str, subject: str | None = None) -> bool:
    """Whether a check is advisory (shown, never failing): override, else default."""
    name = _kind(kind)
    override = _override(policy, name, subject)
    found = getattr(override, f"{name}_advisory") if override is not None else None
    return found if found is not None else getattr(policy.tolerances, f"{name}_advisory")


# ---------------------------------------------------------------- reading


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file; missing, unreadable or invalid is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"no policy at {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable policy: {exc}") from exc
    return parse_policy(text, str(path))


def parse_policy(text: str, source: str = "policy.toml") -> Policy:
    """A policy from its text; every error is one `ConfigError` line `source:LINE: ...`."""
    raw = toml_errors.loads(text, source)
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        raise toml_errors.located(exc, raw, text, source, _known_keys) from exc


_KNOWN: dict[tuple[str, ...], type[BaseModel]] = {
    (): Policy, ("gate",): GateSettings, ("tolerances",): Tolerances, ("hard",): HardLimits,
    ("alerts",): AlertSettings}
_OVERRIDES = {"endpoints": EndpointOverrides, "caches": CacheOverrides,
              "queries": QueryOverrides, "benchmarks": BenchmarkOverrides}


def _known_keys(table: tuple[str, ...]) -> list[str]:
    model = _KNOWN.get(table)
    if model is None and len(table) == 2:
        model = _OVERRIDES.get(table[0])
    return list(model.model_fields) if model is not None else []
