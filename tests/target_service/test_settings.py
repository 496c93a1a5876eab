"""Settings as the environment builds them: a profile is a toggle set, toggles override alone."""

from __future__ import annotations

import os

import pytest

from target_service.settings import PROFILES, Settings, Toggles


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """No TARGET_* variable of the developer's shell leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("TARGET_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_a_profile_is_its_toggle_set(monkeypatch, profile):
    monkeypatch.setenv("TARGET_PROFILE", profile)
    assert Settings().flags == PROFILES[profile]


def test_one_toggle_from_the_environment_overrides_only_that_toggle(monkeypatch):
    monkeypatch.setenv("TARGET_PROFILE", "naive")
    monkeypatch.setenv("TARGET_TOGGLES__KPI_VIEW", "true")
    flags = Settings().flags
    assert flags == PROFILES["naive"].model_copy(update={"kpi_view": True})


def test_a_toggle_switched_off_in_the_optimized_profile(monkeypatch):
    monkeypatch.setenv("TARGET_TOGGLES__PARALLEL_CHARTS", "false")
    flags = Settings().flags
    assert flags == Toggles(parallel_charts=False)


def test_toggles_passed_as_a_dict_merge_over_the_profile():
    flags = Settings(profile="naive", toggles={"warm_cache": True}).flags
    assert flags.warm_cache is True and flags.response_cache is False


def test_a_complete_toggle_set_is_taken_as_it_is():
    assert Settings(profile="naive", toggles=Toggles()).flags == Toggles()


def test_an_unknown_profile_is_still_refused():
    with pytest.raises(ValueError):
        Settings(profile="fastest", toggles={"kpi_view": True})
