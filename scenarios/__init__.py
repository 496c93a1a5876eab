"""Locust scenarios (locustfiles), load shapes and pytest-benchmark suites.

This module is imported by the harness process, so it must never import
Locust (which monkey-patches the interpreter with gevent): it only names the
locustfiles. The user classes live in the locustfiles themselves.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

SCENARIOS: dict[str, dict] = {
    "dashboard": {"locustfile": "scenarios/dashboard.py", "users": {"DashboardUser": 1},
                  "description": "overview, analytics over varied ranges, activity pages"},
    "agents": {"locustfile": "scenarios/agents.py", "users": {"AgentsUser": 1},
               "description": "the agents page (ElevenLabs configurations) and agent details"},
    "writer": {"locustfile": "scenarios/writer.py", "users": {"WriterUser": 1},
               "description": "POST calls, then the overview until it shows them (freshness)"},
    "mixed": {"locustfile": "scenarios/mixed.py",
              "users": {"DashboardUser": 70, "AgentsUser": 25, "WriterUser": 5},
              "description": "dashboard 70 / agents 25 / writer 5, like a real dashboard"},
    "upstream_faults": {"locustfile": "scenarios/upstream_faults.py",
                        "users": {"AgentsUser": 80, "DashboardUser": 20},
                        "needs_stub": True,
                        # configurations stay fresh 60 s by default, which would hide a
                        # short outage entirely; refetch often so degradation shows
                        "target_env": {"TARGET_CONFIG_FRESH_S": "2"},
                        "description": "agents-heavy load while the ElevenLabs stub goes "
                                       "healthy -> flaky -> outage -> healthy"},
    "healthz": {"locustfile": "scenarios/healthz.py", "users": {"HealthzUser": 1},
                "description": "calibration: unpaced GET /healthz, the generator's ceiling"},
}
"""Scenario name -> locustfile (relative to the repository root), user weights, notes."""

SHAPE_NAMES: tuple[str, ...] = ("steady", "ramp", "spike", "soak")
SHAPES_LOCUSTFILE = "scenarios/shapes.py"


def scenario_names() -> list[str]:
    return list(SCENARIOS)


def locustfile(name: str) -> Path:
    """Absolute path of a scenario's locustfile (KeyError for an unknown scenario)."""
    return HERE / Path(SCENARIOS[name]["locustfile"]).name


def locustfiles_arg(name: str, shape: str | None = None) -> str:
    """The value of Locust's `-f`: the scenario, plus the shapes file when a shape is asked.

    Pass the shape name itself with `--harness-shape NAME` (or `HARNESS_SHAPE`)."""
    files = [str(locustfile(name))]
    if shape:
        if shape not in SHAPE_NAMES:
            raise KeyError(f"unknown shape {shape!r}; choose from {', '.join(SHAPE_NAMES)}")
        files.append(str(HERE / Path(SHAPES_LOCUSTFILE).name))
    return ",".join(files)
