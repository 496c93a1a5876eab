"""Faults injected into a running stack (`harness run --chaos SPEC`), and what they did.

A SPEC is a comma-separated schedule, each fault `KIND@START[:DURATION]`, times in
seconds from the start of the measured window (`30s`, `1.5s`, `2m`):

* `db-disconnect@30s`: terminate every backend of the service (`pg_terminate_backend`),
  on the embedded or an external database; instantaneous (no duration);
* `db-restart@30s`: restart the embedded server (an external one is refused);
* `db-pause@30s:5s`: freeze the embedded server's processes (SIGSTOP, then SIGCONT),
  a database that hangs instead of failing; the duration is required;
* `target-kill@40s`: kill one uvicorn worker (SIGKILL);
* `stub:PRESET@10s:20s`: the ElevenLabs stub runs fault preset PRESET for a window
  (a duration is required), then `healthy` again.

Parsing is here, pure, so a malformed SPEC is a `UsageError` (exit 2) before anything
starts; the injection is `harness.stack.chaos`, the recovery figures
`harness.analysis.recovery`. `FaultRecord` is one fault in `result.json` (`chaos`),
`WriteCheck` the end-of-run check that no acknowledged write was lost (`writes`).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

from harness.errors import UsageError

FaultKind = Literal["db-disconnect", "db-restart", "db-pause", "target-kill", "stub"]
KINDS: tuple[str, ...] = ("db-disconnect", "db-restart", "db-pause", "target-kill", "stub")
NEEDS_DURATION = frozenset({"db-pause", "stub"})
NO_DURATION = frozenset({"db-disconnect", "db-restart", "target-kill"})
RECOVERED_P95_RATIO = 1.2
"""p95 counts as recovered when back within 20% of its pre-fault level."""

_TIME = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")
_FAULT = re.compile(r"^(?P<kind>[a-z-]+)(?::(?P<preset>[A-Za-z0-9_-]+))?"
                    r"@(?P<start>[^:@]+)(?::(?P<duration>[^:@]+))?$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FaultSpec(_Model):
    """One scheduled fault, as parsed."""

    kind: FaultKind
    start_s: float
    """Seconds after the measured window starts."""
    duration_s: float | None = None
    """How long it lasts (db-pause, stub); None for instantaneous faults."""
    preset: str | None = None
    """The stub's fault preset (kind `stub` only)."""
    text: str
    """The fault as written, e.g. `db-pause@30s:5s`."""

    @property
    def end_s(self) -> float:
        return self.start_s + (self.duration_s or 0.0)


def _seconds(text: str, fault: str) -> float:
    m = _TIME.match(text.strip())
    if m is None:
        raise UsageError(f"--chaos {fault!r}: {text!r} is not a time (e.g. 30s, 1.5s, 2m, 500ms)")
    value = float(m.group(1))
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[m.group(2)]


def parse_fault(text: str) -> FaultSpec:
    """One `KIND[:PRESET]@START[:DURATION]`; anything else is a UsageError naming it."""
    fault = text.strip()
    m = _FAULT.match(fault)
    if m is None:
        raise UsageError(f"--chaos {fault!r}: expected KIND@START[:DURATION], e.g. "
                         f"db-restart@30s or stub:outage@10s:20s (kinds: {', '.join(KINDS)})")
    kind, preset = m.group("kind"), m.group("preset")
    if kind not in KINDS:
        raise UsageError(f"--chaos {fault!r}: unknown fault {kind!r} (kinds: {', '.join(KINDS)})")
    if (kind == "stub") != (preset is not None):
        raise UsageError(f"--chaos {fault!r}: " + (
            "a stub fault names its preset: stub:PRESET@START:DURATION" if kind == "stub"
            else f"only stub faults take a :PRESET ({kind} does not)"))
    start = _seconds(m.group("start"), fault)
    duration = None if m.group("duration") is None else _seconds(m.group("duration"), fault)
    if kind in NEEDS_DURATION and duration is None:
        raise UsageError(f"--chaos {fault!r}: {kind} needs a duration, e.g. {kind}"
                         f"{':' + preset if preset else ''}@{m.group('start')}:5s")
    if kind in NO_DURATION and duration is not None:
        raise UsageError(f"--chaos {fault!r}: {kind} is instantaneous; it takes no duration")
    if duration is not None and duration <= 0:
        raise UsageError(f"--chaos {fault!r}: the duration must be positive")
    return FaultSpec(kind=kind, start_s=start, duration_s=duration, preset=preset, text=fault)


def parse_chaos(spec: str) -> list[FaultSpec]:
    """A whole schedule, in start order. Two faults of the same kind may not overlap
    (a database cannot be paused twice at once); different kinds may."""
    parts = [p for p in (spec or "").split(",") if p.strip()]
    if not parts:
        raise UsageError("--chaos: no fault given (e.g. --chaos db-restart@30s)")
    faults = sorted((parse_fault(p) for p in parts), key=lambda f: f.start_s)
    for i, a in enumerate(faults):
        for b in faults[i + 1:]:
            if a.kind == b.kind and b.start_s < max(a.end_s, a.start_s + 1e-9):
                raise UsageError(f"--chaos: {a.text} and {b.text} overlap")
    return faults


class Recovery(_Model):
    """What one fault did to the clients, and how long the service took to recover.

    Times are seconds after the fault ended (its start for an instantaneous fault); None
    means it did not happen before the measured window ended."""

    failures: dict[str, int] = {}
    """Requests that failed, by kind, from the fault's start until the first second with
    no failure after its end."""
    requests_during: int = 0
    degraded_during: int = 0
    """Responses served degraded or partial (fallbacks) in the same span."""
    first_success_s: float | None = None
    """From the fault's end to the first request that succeeded after it."""
    pre_fault_p95_ms: float | None = None
    """p95 of all requests in the measured seconds before the fault (up to 10 s)."""
    p95_recovered_s: float | None = None
    """From the fault's end to the first second whose rolling 3-second p95 is within
    `RECOVERED_P95_RATIO` of the pre-fault p95 (and stays so for 3 s)."""
    freshness_timeouts_during: int | None = None
    """Writes not visible in the overview within the freshness bound, from the fault's
    start to its recovery (None: the run did not record freshness per second)."""
    write_visible_again_s: float | None = None
    """From the fault's end to the first write seen in the overview within the bound."""


class FaultRecord(_Model):
    """One injected fault in `result.json`: when it really happened, and what it did."""

    spec: FaultSpec
    started_at: float | None = None
    """Epoch seconds the injection began (None: never injected, e.g. the run ended)."""
    ended_at: float | None = None
    """Epoch seconds it was undone or completed."""
    ok: bool = True
    error: str | None = None
    """Why the injection failed (the run goes on: a fault is never a harness failure)."""
    detail: str | None = None
    """What was done, e.g. `terminated 12 backends`, `killed worker 4242`."""
    recovery: Recovery | None = None


class WriteCheck(_Model):
    """The end-of-run check that every call the service acknowledged (201) is stored."""

    acknowledged: int
    """Distinct call ids the clients got a 201 for."""
    found: int
    lost: int
    """Acknowledged ids missing from the database: a hard failure of the gate."""
    duplicates: int
    """Ids acknowledged more than once (two 201s naming the same row)."""
    lost_ids: list[int] = []
    """Up to 20 of the lost ids, for the report."""
    checked: bool = True
    """False when the database could not be read at the end (then lost/found are 0)."""
    error: str | None = None
