"""Locust scenarios (locustfiles), load shapes and pytest-benchmark suites.

This module is imported by the harness process, so it must never import
Locust (which monkey-patches the interpreter with gevent): it only names the
locustfiles. The user classes live in the locustfiles themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Scenario:
    """One scenario the harness can run: what Locust loads and what the target needs."""

    name: str
    locustfile: str
    """Relative to the repository root, e.g. `scenarios/mixed.py`."""
    users: Mapping[str, int]
    """Locust user class -> weight (read-only)."""
    description: str
    needs_stub: bool = False
    """The scenario steers the ElevenLabs stub's faults while it runs."""
    target_env: Mapping[str, str] = field(default_factory=dict)
    """Environment the target service needs for this scenario (read-only)."""

    def __post_init__(self) -> None:  # read-only copies, even of a dict passed in
        object.__setattr__(self, "users", MappingProxyType(dict(self.users)))
        object.__setattr__(self, "target_env", MappingProxyType(dict(self.target_env)))

    def __hash__(self) -> int:  # the mappings are not hashable; the name identifies it
        return hash(self.name)


def _registry(*scenarios: Scenario) -> Mapping[str, Scenario]:
    return MappingProxyType({s.name: s for s in scenarios})


SCENARIOS: Mapping[str, Scenario] = _registry(
    Scenario("dashboard", "scenarios/dashboard.py", {"DashboardUser": 1},
             "overview, analytics over varied ranges, activity pages"),
    Scenario("agents", "scenarios/agents.py", {"AgentsUser": 1},
             "the agents page (ElevenLabs configurations) and agent details"),
    Scenario("writer", "scenarios/writer.py", {"WriterUser": 1},
             "POST calls, then the overview until it shows them (freshness)"),
    Scenario("mixed", "scenarios/mixed.py",
             {"DashboardUser": 70, "AgentsUser": 25, "WriterUser": 5},
             "dashboard 70 / agents 25 / writer 5, like a real dashboard"),
    Scenario("upstream_faults", "scenarios/upstream_faults.py",
             {"AgentsUser": 80, "DashboardUser": 20},
             "agents-heavy load while the ElevenLabs stub goes "
             "healthy -> flaky -> outage -> healthy",
             needs_stub=True,
             # configurations stay fresh 60 s by default, which would hide a
             # short outage entirely; refetch often so degradation shows
             target_env={"TARGET_CONFIG_FRESH_S": "2"}),
    Scenario("healthz", "scenarios/healthz.py", {"HealthzUser": 1},
             "calibration: unpaced GET /healthz, the generator's ceiling"),
)
"""Scenario name -> `Scenario` (read-only)."""

SHAPE_NAMES: tuple[str, ...] = ("steady", "ramp", "spike", "soak")
SHAPES_LOCUSTFILE = "scenarios/shapes.py"


def locustfile(name: str) -> Path:
    """Absolute path of a scenario's locustfile (KeyError for an unknown scenario)."""
    return HERE / Path(SCENARIOS[name].locustfile).name


def locustfiles_arg(name: str, shape: str | None = None) -> str:
    """The value of Locust's `-f`: the scenario, plus the shapes file when a shape is asked.

    Pass the shape name itself with `--harness-shape NAME` (or `HARNESS_SHAPE`)."""
    files = [str(locustfile(name))]
    if shape:
        if shape not in SHAPE_NAMES:
            raise KeyError(f"unknown shape {shape!r}; choose from {', '.join(SHAPE_NAMES)}")
        files.append(str(HERE / Path(SHAPES_LOCUSTFILE).name))
    return ",".join(files)
