"""Load shapes: steady, ramp, spike, soak - selectable by name.

Locust uses a `LoadTestShape` only when one is defined in a loaded locustfile,
and takes the *first* it finds. So the four shapes here are declared abstract
(Locust ignores them) and this file exposes exactly one concrete shape,
`HarnessShape`, which runs the shape named by `--harness-shape` or
`HARNESS_SHAPE` (default `steady`). A shape is therefore used when, and only
when, this file is one of the locustfiles:

    locust -f scenarios/mixed.py,scenarios/shapes.py --harness-shape spike ...   # shaped
    locust -f scenarios/mixed.py -u 20 -r 5 -t 60s ...                            # no shape

Parameters: `HARNESS_USERS`, `HARNESS_SPAWN_RATE`, `HARNESS_DURATION_S` from the
environment, else Locust's own `-u`, `-r`, `-t`; a shape stops the test at the
end of its duration. An unknown name stops Locust at start-up with exit code 2.

To use one shape directly in your own locustfile, subclass it
(`class MyShape(SpikeShape): pass`; a subclass is not abstract).
"""

from __future__ import annotations

import logging
import math
import os
import sys
from dataclasses import dataclass

from locust import LoadTestShape, events
from locust.runners import WorkerRunner

from scenarios import SHAPE_NAMES

log = logging.getLogger("scenarios.shapes")
DEFAULT_USERS = 10


class ShapeError(ValueError):
    """An unknown shape or a bad shape parameter (one clear line)."""


@dataclass(frozen=True)
class ShapeParams:
    users: int
    spawn_rate: float
    duration_s: float | None


def _env_number(name: str, kind: type, minimum: float):
    raw = os.environ.get(name)
    if raw in (None, ""):
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise ShapeError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
    if value < minimum:
        raise ShapeError(f"{name} must be at least {minimum}, got {raw}")
    return value


def shape_params(options=None) -> ShapeParams:
    """Users, spawn rate and duration from HARNESS_* variables, else Locust's options."""
    users = _env_number("HARNESS_USERS", int, 1)
    rate = _env_number("HARNESS_SPAWN_RATE", float, 0.001)
    duration = _env_number("HARNESS_DURATION_S", float, 1)
    if users is None:
        users = int(getattr(options, "num_users", None) or DEFAULT_USERS)
    if rate is None:
        rate = float(getattr(options, "spawn_rate", None) or max(1.0, users / 5))
    if duration is None and getattr(options, "run_time", None):
        duration = float(options.run_time)
    return ShapeParams(users, rate, duration)


class _Shape(LoadTestShape):
    """A shape as a pure function of run time; stops at the end of the duration."""

    abstract = True
    use_common_options = True
    name = ""
    default_duration_s: float | None = None

    def params(self) -> ShapeParams:
        opts = getattr(getattr(self.runner, "environment", None), "parsed_options", None)
        p = shape_params(opts)
        if p.duration_s is None and self.default_duration_s is not None:
            p = ShapeParams(p.users, p.spawn_rate, self.default_duration_s)
        return p

    def tick(self):
        p = self.params()
        t = self.get_run_time()
        if p.duration_s is not None and t >= p.duration_s:
            return None
        return self.at(t, p)

    def at(self, t: float, p: ShapeParams) -> tuple[int, float]:
        raise NotImplementedError


class SteadyShape(_Shape):
    """All users (at the spawn rate), then hold; until the duration, or forever."""

    abstract = True
    name = "steady"

    def at(self, t, p):
        return p.users, p.spawn_rate


class RampShape(_Shape):
    """Linear growth to all users over the first 80% of the run, then hold (find the knee)."""

    abstract = True
    name = "ramp"
    default_duration_s = 60.0

    def at(self, t, p):
        ramp_s = 0.8 * (p.duration_s or self.default_duration_s)
        users = max(1, math.ceil(p.users * min(1.0, (t + 1) / ramp_s)))
        return users, max(p.spawn_rate, p.users / ramp_s)


class SpikeShape(_Shape):
    """20% of the users, a sudden spike to all of them for the middle 20% of the run,
    then back (does the service recover?)."""

    abstract = True
    name = "spike"
    default_duration_s = 60.0

    def at(self, t, p):
        d = p.duration_s or self.default_duration_s
        base = max(1, round(p.users * 0.2))
        if 0.4 * d <= t < 0.6 * d:
            return p.users, max(p.spawn_rate, float(p.users))
        return base, max(p.spawn_rate, float(p.users))


class SoakShape(SteadyShape):
    """Steady load for a long time (default 10 minutes): leaks, growth, drift."""

    abstract = True
    name = "soak"
    default_duration_s = 600.0


SHAPES: dict[str, type[_Shape]] = {
    cls.name: cls for cls in (SteadyShape, RampShape, SpikeShape, SoakShape)}
assert tuple(SHAPES) == SHAPE_NAMES, "keep scenarios.SHAPE_NAMES in sync"


def shape_names() -> list[str]:
    return list(SHAPES)


def resolve(name: str | None) -> type[_Shape]:
    """The shape class of a name (default `steady`); `ShapeError` for an unknown one."""
    key = (name or "steady").strip().lower()
    if key not in SHAPES:
        raise ShapeError(f"unknown shape {name!r}; choose from {', '.join(SHAPES)}")
    return SHAPES[key]


def selected_name(options=None) -> str:
    return (getattr(options, "harness_shape", None) or os.environ.get("HARNESS_SHAPE")
            or "steady")


class HarnessShape(LoadTestShape):
    """The shape Locust runs: the one named by --harness-shape / HARNESS_SHAPE."""

    use_common_options = True

    def __init__(self) -> None:
        super().__init__()
        self._impl: _Shape | None = None

    def _shape(self) -> _Shape:
        if self._impl is None:
            opts = getattr(getattr(self.runner, "environment", None), "parsed_options", None)
            self._impl = resolve(selected_name(opts))()
        self._impl.runner = self.runner
        return self._impl

    def tick(self):
        shape = self._shape()
        shape.start_time = self.start_time
        return shape.tick()


@events.init.add_listener
def _validate(environment, runner=None, **_kw) -> None:
    """Unknown shape names and bad parameters stop Locust before the test (exit code 2)."""
    if isinstance(runner, WorkerRunner):
        return
    opts = environment.parsed_options
    try:
        resolve(selected_name(opts))
        shape_params(opts)
    except ShapeError as exc:
        log.error("%s", exc)
        sys.exit(2)
