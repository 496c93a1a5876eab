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

TOML itself gives no positions, so a key's line is found by scanning the text
for table headers and `key =` lines (`key_lines`): exact for the files people
write (headers, dotted keys, quoted keys), and the enclosing key's line for a
key inside an inline table.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from dataclasses import dataclass
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
from harness.model.gate import Tolerance

DEFAULT_PATH = Path("baselines/policy.toml")
"""Where the CLI looks for the policy, relative to the repository root."""

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
                         f"not {_type_name(value)}")
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


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return {str: "a string", int: "an integer", float: "a number"}.get(type(value),
                                                                         type(value).__name__)


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
            f"must be a duration such as '5m', not {_type_name(value)}")
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


_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")


def parse_policy(text: str, source: str = "policy.toml") -> Policy:
    """A policy from its text; every error is one `ConfigError` line `source:LINE: ...`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_POSITION.search(str(exc))
        where = f"{source}:{m.group(1)}" if m else source
        raise ConfigError(f"{where}: invalid TOML: {exc}") from exc
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        raise _error(exc, raw, text, source) from exc


def _error(exc: ValidationError, raw: dict, text: str, source: str) -> ConfigError:
    """The first error in the file's order, as one line naming the key and its line."""
    lines = key_lines(text)
    located = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        line = _line_of(loc, lines)
        located.append((line if line is not None else 10**9, _message(err, loc, raw)))
    located.sort(key=lambda e: e[0])
    line, message = located[0]
    more = f" (and {len(located) - 1} more)" if len(located) > 1 else ""
    where = f"{source}:{line}" if line < 10**9 else source
    return ConfigError(f"{where}: {message}{more}")


def _line_of(loc: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> int | None:
    """The line of `loc`, else of the nearest enclosing key or table that has one."""
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _dig(raw: object, loc: tuple[str, ...]) -> object:
    for part in loc:
        if not isinstance(raw, dict) or part not in raw:
            return None
        raw = raw[part]
    return raw


def table_name(path: tuple[str, ...]) -> str:
    """A key path as TOML writes it: `endpoints."GET /api/v1/agents"`."""
    return ".".join(p if re.fullmatch(r"[A-Za-z0-9_-]+", p) else json.dumps(p) for p in path)


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


def _did_you_mean(key: str, known: list[str]) -> str:
    """` (did you mean 'p95'?)` for the closest known keys (ties: all of them)."""
    scores = [(difflib.SequenceMatcher(None, key, k).ratio(), k) for k in known]
    best = max((s for s, _ in scores), default=0.0)
    if best < 0.6:
        return ""
    close = [repr(k) for s, k in scores if s == best]
    return f" (did you mean {' or '.join(close)}?)"


def _message(err: dict, loc: tuple[str, ...], raw: dict) -> str:
    if loc and loc[-1] == "[key]":  # a table's name that is not allowed there
        return f"[{table_name(loc[:-1])}]: {err['msg']}"
    key, table = (loc[-1], loc[:-1]) if loc else ("", ())
    where = f" in [{table_name(table)}]" if table else ""
    value = _dig(raw, loc)
    if err["type"] == "extra_forbidden":
        hint = _did_you_mean(key, _known_keys(table))
        if isinstance(value, dict):
            return f"unknown table [{table_name(loc)}]{hint}"
        return f"unknown key {key!r}{where}{hint}"
    expected = {"float_type": "a number", "int_type": "an integer", "bool_type": "true or false",
                "string_type": "a string", "model_type": "a table", "dict_type": "a table",
                "literal_error": None}.get(err["type"], "")
    name = f"{key!r}{where}" if loc else "the policy"
    if expected is None:  # a literal: pydantic lists the choices
        return f"{name} must be {err['msg'].removeprefix('Input should be ')}, " \
               f"not {value!r}"
    if expected:
        shown = f" ({value!r})" if not isinstance(value, (dict, list)) else ""
        return f"{name} must be {expected}, not {_type_name(value)}{shown}"
    msg = err["msg"]
    if msg.startswith("Input should be "):
        msg = "must be " + msg.removeprefix("Input should be ")
    return f"{name} {msg}" if msg.startswith("must") else f"{name}: {msg}"


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Key path -> the line (1-based) that first defines it: table headers and `key =` lines."""
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("["):
            path = _path_of(s)
            if path is not None:
                table = path
                for i in range(1, len(path) + 1):
                    found.setdefault(path[:i], n)
            continue
        part = _key_part(s)
        path = _path_of(f"{part} = 0") if part else None
        if path:
            for i in range(1, len(path) + 1):
                found.setdefault(table + path[:i], n)
    return found


def _key_part(s: str) -> str | None:
    """What comes before the first `=` outside quotes."""
    quote = None
    for i, c in enumerate(s):
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "=":
            return s[:i]
    return None


def _path_of(toml: str) -> tuple[str, ...] | None:
    """The key path one header (`[a."b c"]`) or one `key = 0` line defines."""
    try:
        doc: object = tomllib.loads(toml + "\n")
    except tomllib.TOMLDecodeError:
        return None
    path: list[str] = []
    while isinstance(doc, dict) and len(doc) == 1:
        key, doc = next(iter(doc.items()))
        path.append(key)
    return tuple(path) or None
