"""What `harness run` is asked to do: durations, CPU lists and RunConfig.validate.

Every bad value is a UsageError (exit 2, one line), never a traceback, and
validation touches nothing on the machine: no socket, no file.
"""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.run.config import RunConfig, parse_duration
from harness.stack import process
from harness.stack.process import parse_cpus
from harness.stack.stack import StackConfig


@pytest.mark.parametrize("text, seconds", [
    ("90", 90.0), ("90s", 90.0), ("2m", 120.0), ("1m30s", 90.0), ("1h", 3600.0),
    ("1h2m3s", 3723.0), ("1.5m", 90.0), (" 45S ", 45.0), ("0.5", 0.5),
])
def test_durations(text: str, seconds: float):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text, message", [
    ("", "empty duration"), ("   ", "empty duration"), ("m", "malformed"), ("5x", "malformed"),
    ("1m30", "needs a unit"), ("1m 30s", "malformed"), ("ten", "malformed"), ("-5s", "malformed"),
])
def test_malformed_durations_are_usage_errors(text: str, message: str):
    with pytest.raises(UsageError, match=message):
        parse_duration(text)


@pytest.mark.parametrize("text", ["1.2.3s", ".s", "1..5m"])
def test_a_number_with_stray_dots_is_a_usage_error(text: str):
    with pytest.raises(UsageError):
        parse_duration(text)


@pytest.mark.parametrize("text", ["nan", "inf", "infinity"])
def test_non_finite_durations_are_usage_errors(text: str):
    with pytest.raises(UsageError):
        RunConfig(duration_s=parse_duration(text)).validate()


@pytest.mark.parametrize("text, cpus", [
    (None, None), ("", None), ("0", {0}), ("0,1", {0, 1}), ("0-1", {0, 1}), (" 1 ", {1}),
    ("1,0-1", {0, 1}),
])
def test_cpu_lists(text, cpus):
    available = os.sched_getaffinity(0)
    if cpus is not None and not cpus <= available:
        pytest.skip(f"needs CPUs {sorted(cpus)}")
    assert parse_cpus(text) == cpus


@pytest.mark.parametrize("text", ["a", "-1", "0,,1", "0-1-2", "x-1", "0;1", "1.5"])
def test_malformed_cpu_lists_are_usage_errors(text: str):
    with pytest.raises(UsageError, match="malformed CPU list"):
        parse_cpus(text)


@pytest.mark.parametrize("text", ["1-0", "3-2", "0-"])
def test_reversed_or_open_cpu_ranges_are_usage_errors(text: str):
    with pytest.raises(UsageError):
        parse_cpus(text)


def test_an_unavailable_cpu_is_a_usage_error():
    missing = max(os.sched_getaffinity(0)) + 1
    with pytest.raises(UsageError, match=rf"CPUs \[{missing}\] are not available"):
        parse_cpus(f"0,{missing}")


def test_cpu_pinning_needs_linux(monkeypatch):
    monkeypatch.delattr(process.os, "sched_setaffinity")
    with pytest.raises(UsageError, match="needs Linux"):
        parse_cpus("0")


def test_the_defaults_validate():
    RunConfig().validate()


@pytest.mark.parametrize("overrides, message", [
    ({"scenario": "nope"}, "unknown scenario 'nope'"),
    ({"shape": "zigzag"}, "unknown shape 'zigzag'"),
    ({"users": 0}, "--users must be at least 1"),
    ({"spawn_rate": 0.0}, "--spawn-rate positive"),
    ({"duration_s": 0.0}, "--duration must be positive"),
    ({"duration_s": -1.0}, "--duration must be positive"),
    ({"warmup_s": -0.5}, "--warmup not negative"),
    ({"workers": -1}, "--workers must not be negative"),
    ({"remote_workers": -2}, "--workers must not be negative"),
    ({"pace_scale": -0.1}, "--pace-scale must not be negative"),
    ({"stack": StackConfig(dataset="huge")}, "unknown dataset 'huge'"),
    ({"stack": StackConfig(profile="turbo")}, "unknown profile 'turbo'"),
    ({"stack": StackConfig(port=70000)}, "--port must be between 0 and 65535, not 70000"),
    ({"stack": StackConfig(port=-1)}, "--port must be between 0 and 65535, not -1"),
    ({"stack": StackConfig(target_workers=0)}, "--target-workers must be at least 1"),
    ({"stack": StackConfig(database_url="mysql://x")}, "--database-url must be a postgresql"),
    ({"stack": StackConfig(faults="gremlins")}, "unknown fault preset 'gremlins'"),
    ({"trace_interleave_s": 30}, "--trace-interleave needs tracing"),
    ({"trace_sampling": 0.1, "trace_interleave_s": 6, "trace_guard_s": 5},
     "at least 2 s longer than --trace-guard"),
    ({"trace_sampling": 0.1, "trace_interleave_s": 30, "duration_s": 120.0},
     "fewer than 3 blocks of each arm"),
])
def test_each_bad_field_is_a_usage_error(overrides: dict, message: str):
    with pytest.raises(UsageError) as info:
        RunConfig(**overrides).validate()
    assert message in str(info.value)


@pytest.mark.parametrize("field", ["spawn_rate", "pace_scale", "warmup_s"])
def test_nan_fields_are_usage_errors(field: str):
    with pytest.raises(UsageError):
        RunConfig(**{field: math.nan}).validate()


def test_validate_opens_no_socket_and_touches_no_file(monkeypatch, tmp_path: Path):
    def refuse(*args, **kwargs):
        raise AssertionError("validate used the network")

    for name in ("bind", "connect", "connect_ex", "listen"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    state, out = tmp_path / "state", tmp_path / "reports"
    config = RunConfig(out=out, stack=StackConfig(port=8080, state_dir=state,
                                                  database_url="postgresql://db:5432/x"))
    config.validate()
    assert not state.exists() and not out.exists()
    with pytest.raises(AssertionError, match="network"):  # the patch is in force
        socket.socket().bind(("127.0.0.1", 0))


def test_the_profile_is_the_stack_profile():
    assert RunConfig(stack=StackConfig(profile="naive")).profile == "naive"


def test_an_interleaved_run_exports_every_second_so_short_blocks_keep_their_spans(tmp_path):
    """The SDK's 5 s export interval would spill a sampled block's spans far into the
    unsampled block after it; an interleaved run exports every second (2 s guard)."""
    from harness.run.config import INTERLEAVE_EXPORT_DELAY_MS
    plain = RunConfig(trace_sampling=0.1).tracing_env(tmp_path)
    interleaved = RunConfig(trace_sampling=0.1, trace_interleave_s=10,
                            duration_s=600).tracing_env(tmp_path)
    assert "OTEL_BSP_SCHEDULE_DELAY" not in plain
    assert interleaved["OTEL_BSP_SCHEDULE_DELAY"] == str(INTERLEAVE_EXPORT_DELAY_MS) == "1000"
    assert RunConfig().trace_guard_s == 2 and INTERLEAVE_EXPORT_DELAY_MS < 2_000
