"""The scenario registry is a typed, read-only record (imported by the harness, never Locust)."""

from __future__ import annotations

import dataclasses
import sys

import pytest

import scenarios
from scenarios import SCENARIOS, Scenario


def test_every_entry_is_a_scenario_named_by_its_key():
    assert list(SCENARIOS) == ["dashboard", "agents", "writer", "mixed", "upstream_faults",
                               "healthz"]
    for name, scenario in SCENARIOS.items():
        assert isinstance(scenario, Scenario) and scenario.name == name
        assert scenario.locustfile == f"scenarios/{name}.py"
        assert scenario.users and all(w > 0 for w in scenario.users.values())
    assert dict(SCENARIOS["mixed"].users) == {"DashboardUser": 70, "AgentsUser": 25,
                                              "WriterUser": 5}
    assert SCENARIOS["upstream_faults"].needs_stub is True
    assert dict(SCENARIOS["upstream_faults"].target_env) == {"TARGET_CONFIG_FRESH_S": "2"}
    assert SCENARIOS["dashboard"].needs_stub is False
    assert dict(SCENARIOS["dashboard"].target_env) == {}
    assert "locust" not in sys.modules and "gevent" not in sys.modules


def test_registry_and_scenarios_are_frozen():
    mixed = SCENARIOS["mixed"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        mixed.locustfile = "elsewhere.py"  # type: ignore[misc]
    with pytest.raises(TypeError):
        mixed.users["DashboardUser"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        SCENARIOS["upstream_faults"].target_env["X"] = "60"  # type: ignore[index]
    with pytest.raises(TypeError):
        SCENARIOS["mine"] = mixed  # type: ignore[index]
    with pytest.raises(TypeError):
        del SCENARIOS["mixed"]  # type: ignore[attr-defined]
    assert dict(SCENARIOS["mixed"].users)["DashboardUser"] == 70


def test_a_scenario_copies_what_it_is_given():
    users = {"U": 1}
    scenario = Scenario("s", "scenarios/s.py", users, "d")
    users["U"] = 2
    assert scenario.users["U"] == 1
    assert hash(scenario) == hash(Scenario("s", "scenarios/s.py", {"U": 1}, "d"))


def test_scenario_names_is_gone():
    assert not hasattr(scenarios, "scenario_names")
