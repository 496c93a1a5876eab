"""pytest-benchmark's JSON, as `harness bench` reads it (its own format, not ours).

`pytest --benchmark-json=FILE --benchmark-save-data` writes one document per
session: `machine_info`, `commit_info`, `datetime`, `version` and
`benchmarks`, each with its `name`, `fullname` (the pytest node id) and
`stats`; with `--benchmark-save-data`, `stats.data` holds every round's time
in seconds (per iteration, so rounds of different iteration counts are
comparable). These models validate what the gate relies on and let the rest
through untouched (`extra="allow"`: the suite's own keys such as
`speedups_by_median`, pytest-benchmark's future fields), so a stored result
stays byte for byte what pytest-benchmark wrote, and its own tools
(`pytest-benchmark compare`) still read it.

What the gate relies on, checked here so a malformed stored result is one
`ConfigError` line (exit 2) and never a traceback later: every benchmark has
raw timings (`stats.data`), as many as its `stats.rounds`, each a finite
number of seconds >= 0; node ids are unique.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.errors import ConfigError


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class BenchStats(_Open):
    """`stats` of one benchmark: pytest-benchmark's summary, and the raw rounds."""

    min: float
    max: float
    mean: float
    median: float
    rounds: int = Field(ge=1)
    iterations: int = Field(1, ge=1)
    data: list[float] | None = None
    """Seconds per iteration, one value per round (only with `--benchmark-save-data`)."""

    @model_validator(mode="after")
    def _raw_rounds(self) -> BenchStats:
        if self.data is None:
            raise ValueError("no raw timings (stats.data): save with --benchmark-save-data")
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


def parse(raw: bytes | str, source: str) -> BenchmarkRun:
    """A pytest-benchmark JSON document, validated; a `ConfigError` line naming `source`."""
    try:
        return BenchmarkRun.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise ConfigError(f"{source}: not valid JSON ({first['msg']})") from exc
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        msg = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{source}: not a pytest-benchmark result with raw timings: "
                          f"{where}: {msg}") from exc
