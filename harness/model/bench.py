"""pytest-benchmark's JSON, and `harness bench`'s stored sessions of it.

**pytest-benchmark's document** (`BenchmarkRun`, its own format, not ours):
`pytest --benchmark-json=FILE --benchmark-save-data` writes one document per
session: `machine_info`, `commit_info`, `datetime`, `version` and
`benchmarks`, each with its `name`, `fullname` (the pytest node id) and
`stats`; with `--benchmark-save-data`, `stats.data` holds every round's time
in seconds (per iteration, so rounds of different iteration counts are
comparable). These models validate what the gate relies on and let the rest
through untouched (`extra="allow"`: the suite's own keys such as
`speedups_by_median`, pytest-benchmark's future fields). `parse` reads one
such document and requires the raw timings: every benchmark has
`stats.data`, as many as its `stats.rounds`, each a finite number of
seconds >= 0; node ids are unique.

**A stored result** (`BenchSet`, ours, `schema_version` 1): several
sessions of one build, each a pytest-benchmark document as above, in a small
versioned wrapper:

```
{"format": "harness-bench-sessions", "schema_version": 1, "created_at": "...",
 "k": null, "raw_rounds": false, "sessions": [{machine_info, commit_info,
 datetime, version, benchmarks: [{name, fullname, ..., stats: {min, max,
 mean, stddev, median, rounds, iterations, ...}}]}, ...]}
```

The gate's unit is the session (each session's median round time per
benchmark), so `stats.data` (the raw rounds: 1.1-1.5 MB per session of the
whole suite) is kept only when `raw_rounds` is true: a set of fewer than 5
sessions (the gate then falls back to rounds as samples and needs them) or
one saved with `--keep-data`. Everything else pytest-benchmark wrote is kept.
`raw_rounds` must say the truth: true only if every benchmark of every
session has its rounds. `parse_set` reads a stored set, and a bare
pytest-benchmark document (the format `harness bench` stored before) as a
set of one session.

Every way a document can be malformed is one `ConfigError` line naming the
file (exit 2), never a traceback later.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from harness.errors import ConfigError

SET_FORMAT = "harness-bench-sessions"
"""`BenchSet.format`: what tells a stored set from a bare pytest-benchmark document."""
SET_SCHEMA_VERSION = 1
RAW = "raw"
"""Validation context key: the raw rounds (`stats.data`) are required."""


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class BenchStats(_Open):
    """`stats` of one benchmark: pytest-benchmark's summary, and the raw rounds."""

    min: float
    max: float
    mean: float
    median: float
    """The median round time (seconds per iteration): a session's value in the gate."""
    rounds: int = Field(ge=1)
    iterations: int = Field(1, ge=1)
    data: list[float] | None = None
    """Seconds per iteration, one value per round (only with `--benchmark-save-data`)."""

    @model_validator(mode="after")
    def _raw_rounds(self, info: ValidationInfo) -> BenchStats:
        if not (math.isfinite(self.median) and self.median >= 0):
            raise ValueError(f"stats.median is {self.median!r}, not a time in seconds")
        if self.data is None:
            if info.context and info.context.get(RAW):
                raise ValueError("no raw timings (stats.data): save with "
                                 "--benchmark-save-data")
            return self
        if len(self.data) != self.rounds:
            raise ValueError(f"stats.data holds {len(self.data)} rounds, stats.rounds says "
                             f"{self.rounds}")
        bad = next((v for v in self.data if not (math.isfinite(v) and v >= 0)), None)
        if bad is not None:
            raise ValueError(f"stats.data holds {bad!r}, not a time in seconds")
        return self


class Benchmark(_Open):
    """One benchmark of the session."""

    name: str
    """The test's name with its parameters, e.g. `test_cache_get_hit`."""
    fullname: str
    """The pytest node id, e.g. `scenarios/benchmarks/test_cache_bench.py::test_cache_get_hit`."""
    group: str | None = None
    param: str | None = None
    extra_info: dict[str, Any] = {}
    stats: BenchStats


class BenchmarkRun(_Open):
    """One pytest-benchmark JSON document."""

    machine_info: dict[str, Any] = {}
    commit_info: dict[str, Any] = {}
    datetime: str | None = None
    version: str | None = None
    benchmarks: list[Benchmark]

    @model_validator(mode="after")
    def _unique(self) -> BenchmarkRun:
        seen: set[str] = set()
        for b in self.benchmarks:
            if b.fullname in seen:
                raise ValueError(f"benchmark {b.fullname!r} appears twice")
            seen.add(b.fullname)
        return self

    def by_fullname(self) -> dict[str, Benchmark]:
        return {b.fullname: b for b in self.benchmarks}

    @property
    def git_commit(self) -> str | None:
        """The commit pytest-benchmark recorded (`-dirty` when the tree had changes)."""
        c = self.commit_info or {}
        ident = c.get("id")
        if not isinstance(ident, str) or not ident:
            return None
        return ident + ("-dirty" if c.get("dirty") else "")

    def machine(self) -> dict[str, object]:
        """What must match for two results to be compared: CPU, cores, Python, OS."""
        m = self.machine_info or {}
        cpu = m.get("cpu") if isinstance(m.get("cpu"), dict) else {}
        return {"CPU model": cpu.get("brand_raw"), "CPU count": cpu.get("count"),
                "Python": f"{m.get('python_implementation')} {m.get('python_version')}",
                "system": f"{m.get('system')} {m.get('machine')}"}

    @property
    def raw_rounds(self) -> bool:
        """Whether every benchmark holds its raw rounds (`stats.data`)."""
        return all(b.stats.data is not None for b in self.benchmarks)

    def without_rounds(self) -> BenchmarkRun:
        """A copy without `stats.data`: what a session of a stored set keeps by default."""
        return self.model_copy(update={"benchmarks": [
            b.model_copy(update={"stats": b.stats.model_copy(update={"data": None})})
            for b in self.benchmarks]})


class BenchSet(BaseModel):
    """A stored result: one or more pytest-benchmark sessions of one build (`schema_version` 1)."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["harness-bench-sessions"] = SET_FORMAT
    schema_version: Literal[1] = SET_SCHEMA_VERSION
    created_at: str | None = None
    """When the sessions were measured (UTC, ISO 8601); a bare pytest-benchmark document's
    `datetime`."""
    k: str | None = None
    """The `-k` expression the sessions ran with (None: the whole suite)."""
    raw_rounds: bool
    """Whether every session keeps its raw rounds (`stats.data`)."""
    sessions: list[BenchmarkRun] = Field(min_length=1)

    @model_validator(mode="after")
    def _honest(self) -> BenchSet:
        have = all(s.raw_rounds for s in self.sessions)
        if self.raw_rounds and not have:
            where = next(f"sessions.{i}.benchmarks.{j} ({b.name})"
                         for i, s in enumerate(self.sessions)
                         for j, b in enumerate(s.benchmarks) if b.stats.data is None)
            raise ValueError(f"raw_rounds is true but {where} has no stats.data")
        if have and not self.raw_rounds:
            raise ValueError("raw_rounds is false but every session has its raw rounds")
        return self

    @classmethod
    def of(cls, sessions: Sequence[BenchmarkRun], keep_rounds: bool,
           created_at: str | None = None, k: str | None = None) -> BenchSet:
        """A set of these sessions; their raw rounds kept only if `keep_rounds`."""
        kept = [s if keep_rounds else s.without_rounds() for s in sessions]
        return cls(created_at=created_at, k=k, raw_rounds=keep_rounds, sessions=kept)

    def fullnames(self) -> list[str]:
        """Every benchmark's node id, in the order the sessions first hold them."""
        return list(dict.fromkeys(b.fullname for s in self.sessions for b in s.benchmarks))

    @property
    def git_commit(self) -> str | None:
        """The sessions' commit (several, comma-separated, if they differ)."""
        commits = list(dict.fromkeys(c for s in self.sessions if (c := s.git_commit)))
        return ", ".join(commits) if commits else None

    def dump(self) -> str:
        """The stored JSON: keys in the models' order, no `"data": null`, one space indent."""
        doc = self.model_dump(mode="json")
        for session in doc["sessions"]:
            for b in session["benchmarks"]:
                if b["stats"].get("data") is None:
                    b["stats"].pop("data", None)
        return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def _config_error(exc: ValidationError, source: str, what: str) -> ConfigError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "top level"
    msg = first["msg"].removeprefix("Value error, ")
    return ConfigError(f"{source}: {what}: {where}: {msg}")


def _json(raw: bytes | str, source: str) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: not valid JSON ({exc})") from exc


def parse(raw: bytes | str, source: str) -> BenchmarkRun:
    """A pytest-benchmark JSON document with raw timings, validated; a `ConfigError` line
    naming `source`."""
    return _session(_json(raw, source), source)


def _session(doc: Any, source: str) -> BenchmarkRun:
    try:
        return BenchmarkRun.model_validate(doc, context={RAW: True})
    except ValidationError as exc:
        raise _config_error(exc, source, "not a pytest-benchmark result with raw timings") \
            from exc


def is_set(doc: Any) -> bool:
    """Whether a decoded document is a stored set (else: a bare pytest-benchmark one)."""
    return isinstance(doc, dict) and any(k in doc for k in ("format", "schema_version",
                                                            "sessions"))


def parse_set(raw: bytes | str, source: str) -> BenchSet:
    """A stored set of sessions, or a bare pytest-benchmark document as a set of one."""
    doc = _json(raw, source)
    if not is_set(doc):
        run = _session(doc, source)
        return BenchSet(created_at=run.datetime, raw_rounds=True, sessions=[run])
    version = doc.get("schema_version")
    if version != SET_SCHEMA_VERSION:
        raise ConfigError(f"{source}: stored benchmark sessions of schema version {version!r}; "
                          f"this harness reads version {SET_SCHEMA_VERSION}")
    if doc.get("format") != SET_FORMAT:
        raise ConfigError(f"{source}: format is {doc.get('format')!r}, not {SET_FORMAT!r}")
    try:
        return BenchSet.model_validate(doc)
    except ValidationError as exc:
        raise _config_error(exc, source, "not stored benchmark sessions") from exc


def as_set(result: BenchSet | BenchmarkRun | Iterable[BenchmarkRun]) -> BenchSet:
    """A set from a set, one session, or sessions (raw rounds kept as they are)."""
    if isinstance(result, BenchSet):
        return result
    sessions = [result] if isinstance(result, BenchmarkRun) else list(result)
    return BenchSet(raw_rounds=all(s.raw_rounds for s in sessions), sessions=sessions)
