"""What `harness run` was asked to do: the load, and the stack it runs against.

One configuration object per concern: `RunConfig` holds the load (scenario,
shape, users, durations, Locust workers) and a `StackConfig` for everything
the stack needs, instead of repeating its fields. `validate` runs once, before
anything starts, and touches nothing on the machine (whether a port is free is
checked by `Stack.up`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.analysis.abort import AbortSpec
from harness.errors import UsageError
from harness.model.chaos import FaultSpec
from harness.run import layout
from harness.stack.stack import StackConfig
from harness.stubs.elevenlabs.faults import PRESETS as STUB_PRESETS
from scenarios import SCENARIOS, SHAPE_NAMES

INTERLEAVE_EXPORT_DELAY_MS = 1_000
"""The batch span processor's export interval in an interleaved run (its default is
5 s): the same spans in smaller, more frequent batches, so a sampled block's export
lands inside it or within the guard after it, and blocks can be short (10 s blocks
with a 2 s guard give three times the pairs of 30 s blocks with a 6 s one)."""


@dataclass
class RunConfig:
    """The load of one run, and its stack."""

    scenario: str = "mixed"
    shape: str | None = None
    users: int = 50
    spawn_rate: float = 10.0
    duration_s: float = 60.0
    warmup_s: float = 10.0
    workers: int = 1
    remote_workers: int = 0
    master_bind_port: int = 0
    """The Locust master's port; 0: a free one. A fixed one is what a firewall between
    the machines of a distributed run can be opened for."""
    pace_scale: float = 1.0
    locust_cpus: set[int] | None = None
    out: Path = Path("reports")
    stack: StackConfig = field(default_factory=StackConfig)
    trace_sampling: float | None = None
    """None: no tracing. Otherwise the target exports spans into the run directory
    (`spans.jsonl`) and every request carries a client-made W3C `traceparent`, sampled
    with this probability (the service's own traces use the same ratio)."""
    trace_interleave_s: int | None = None
    """`--trace-interleave`: sample at `trace_sampling` only in every other block of this
    many seconds of the epoch, nothing between (`harness.analysis.interleave`)."""
    trace_guard_s: int = 2
    """The first seconds of each block the overhead comparison leaves out: a sampled
    block's last export (and its garbage) spills past the block's end. An interleaved run
    exports every second (`INTERLEAVE_EXPORT_DELAY_MS`), so the spill is about a second."""
    abort_on: tuple[AbortSpec, ...] = ()
    """`--abort-on` thresholds: the runner judges them on the live figures of the
    measured phase and stops the run (status `aborted`, exit 1) when one fires."""
    chaos: tuple[FaultSpec, ...] = ()
    """`--chaos` faults (`harness.model.chaos.parse_chaos`), injected by
    `harness.stack.chaos` at their times after the measured window opens."""

    @property
    def trace(self) -> bool:
        return self.trace_sampling is not None

    @property
    def master_bind_host(self) -> str:
        """Where the Locust master listens: the target's bind host (`--master-bind-host`
        sets both), since remote workers reach both at the one advertised address."""
        return self.stack.bind_host

    @property
    def profile(self) -> str:
        return self.stack.profile

    def validate(self) -> None:
        if self.scenario not in SCENARIOS:
            raise UsageError(f"unknown scenario {self.scenario!r}; choose from "
                             f"{', '.join(SCENARIOS)}")
        if self.shape is not None and self.shape not in SHAPE_NAMES:
            raise UsageError(f"unknown shape {self.shape!r}; choose from {', '.join(SHAPE_NAMES)}")
        numbers = {"--spawn-rate": self.spawn_rate, "--duration": self.duration_s,
                   "--warmup": self.warmup_s, "--pace-scale": self.pace_scale}
        for flag, value in numbers.items():
            if not math.isfinite(value):
                raise UsageError(f"{flag} must be a finite number, not {value}")
        if self.users < 1 or self.spawn_rate <= 0:
            raise UsageError("--users must be at least 1 and --spawn-rate positive")
        if self.duration_s <= 0 or self.warmup_s < 0:
            raise UsageError("--duration must be positive and --warmup not negative")
        if self.workers < 0 or self.remote_workers < 0:
            raise UsageError("--workers must not be negative")
        if not 0 <= self.master_bind_port <= 65535:
            raise UsageError(f"--master-bind-port must be between 0 and 65535, not "
                             f"{self.master_bind_port}")
        if self.master_bind_port and self.master_bind_port == self.stack.port:
            raise UsageError(f"--master-bind-port and --port are both {self.stack.port}: the "
                             "Locust master and the target need a port each")
        if self.pace_scale < 0:
            raise UsageError("--pace-scale must not be negative")
        if self.trace_sampling is not None and not 0.0 <= self.trace_sampling <= 1.0:
            raise UsageError(f"--trace-sampling must be between 0 and 1, not "
                             f"{self.trace_sampling}")
        if self.trace_interleave_s is not None:
            if self.trace_sampling is None:
                raise UsageError("--trace-interleave needs tracing (--trace or "
                                 "--trace-sampling)")
            if not 0 <= self.trace_guard_s < self.trace_interleave_s - 1:
                raise UsageError(f"--trace-interleave {self.trace_interleave_s}s must be at "
                                 f"least 2 s longer than --trace-guard {self.trace_guard_s}s")
            if self.duration_s < 6 * self.trace_interleave_s:
                raise UsageError(f"--duration {self.duration_s:g}s holds fewer than 3 blocks "
                                 f"of each arm of --trace-interleave "
                                 f"{self.trace_interleave_s}s: run longer")
        for spec in self.abort_on:  # a spec that can never fire is a mistake, said now
            if spec.for_s >= self.duration_s:
                raise UsageError(f"--abort-on {spec.text!r}: 'for' {spec.for_s:g}s is not "
                                 f"shorter than --duration {self.duration_s:g}s, so it "
                                 "could never fire")
        self.validate_chaos()
        self.stack.validate()

    def validate_chaos(self) -> None:
        """Faults that cannot be injected, or whose recovery could not be measured, are
        refused now: each must end inside the measured window, server faults need the
        embedded server, a stub fault a preset the stub has."""
        for f in self.chaos:
            if f.start_s >= self.duration_s or f.end_s > self.duration_s:
                raise UsageError(f"--chaos {f.text!r}: it must start and end within the "
                                 f"measured window (--duration {self.duration_s:g}s)")
            if f.kind in ("db-restart", "db-pause") and self.stack.database_url:
                raise UsageError(f"--chaos {f.text!r}: {f.kind} needs the embedded "
                                 "database; on an external one (--database-url) use "
                                 "db-disconnect")
            if f.kind == "stub" and f.preset not in STUB_PRESETS:
                raise UsageError(f"--chaos {f.text!r}: unknown stub preset {f.preset!r}; "
                                 f"choose from {', '.join(sorted(STUB_PRESETS))}")
        for p in (f for f in self.chaos if f.kind == "db-pause"):
            for r in (f for f in self.chaos if f.kind == "db-restart"):
                if p.start_s <= r.start_s < p.end_s:
                    raise UsageError(f"--chaos: {r.text} falls inside {p.text}: a paused "
                                     "server cannot be restarted")

    def stack_for(self, run_dir: Path) -> StackConfig:
        """The stack of one run in `run_dir` (the scenario may set target options, e.g.
        upstream_faults' short configuration freshness), and traced runs the span exporter."""
        env = {**SCENARIOS[self.scenario].target_env, **self.stack.target_env,
               **self.tracing_env(run_dir)}
        return replace(self.stack, run_dir=run_dir, target_env=env)

    def tracing_env(self, run_dir: Path) -> dict[str, str]:
        """The target's tracing settings: a span spool in the run directory, turned into
        `spans.jsonl` when the target has stopped (`harness.run.spans`: encoding OTLP-JSON
        in the target was about a sixth of what a sampled request cost it; one file
        shared by every uvicorn worker, flushed when the target stops gracefully). The
        batch processor's queue is raised from its default 2048
        spans (a full queue drops spans): a fully sampled run makes ~250 spans a second,
        and its exporter thread competes for the same core as the requests."""
        if self.trace_sampling is None:
            return {}
        env = {"TARGET_TRACING__EXPORTER": "spool",
               "TARGET_TRACING__SPOOL_PATH": str(layout.spans_spool(run_dir).resolve()),
               "TARGET_TRACING__SAMPLING": repr(float(self.trace_sampling)),
               "OTEL_BSP_MAX_QUEUE_SIZE": "65536"}
        if self.trace_interleave_s is not None:
            env["OTEL_BSP_SCHEDULE_DELAY"] = str(INTERLEAVE_EXPORT_DELAY_MS)
        return env


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_duration(text: str) -> float:
    """`90`, `90s`, `2m`, `1h`, `1m30s`, `1.5m` -> seconds; anything else is a usage error."""
    value = text.strip().lower()
    if not value:
        raise UsageError("empty duration")
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    match = _DURATION.fullmatch(value)
    if match is None or not any(match.groups()):
        if re.fullmatch(r"[\dhms.]*\d", value):
            raise UsageError(f"malformed duration {text!r} (a number needs a unit: s, m or h)")
        raise UsageError(f"malformed duration {text!r} (use e.g. 90s, 2m, 1m30s)")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds
