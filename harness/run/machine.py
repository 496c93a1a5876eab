"""What machine a run ran on: CPU, memory, kernel, pinning, PostgreSQL, libraries.

Latencies are only comparable on comparable machines: the gate refuses a
comparison across CPU models or core counts unless told otherwise, and a
report shows the machine beside every figure. Read from `/proc` and psutil
here, at the edge; the record itself is `harness.model.result.Machine`.
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

import psutil

from harness.model.result import Machine

LIBRARIES = ("locust", "fastapi", "uvicorn", "asyncpg", "pydantic", "hdrhistogram",
             "prometheus-client", "httpx", "dashboard-perf-harness")


def cpu_model() -> str | None:
    """The CPU's model name (`/proc/cpuinfo` on Linux, `platform.processor()` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def versions() -> dict[str, str]:
    """Python and the libraries whose behaviour shapes the figures."""
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def describe(pinning: dict[str, set[int] | None] | None = None,
             postgres_version: str | None = None) -> Machine:
    """This machine, with the CPU sets the run pinned its roles to."""
    pinned = {role: sorted(cpus) for role, cpus in (pinning or {}).items() if cpus}
    return Machine(
        cpu_model=cpu_model(), logical_cpus=psutil.cpu_count(logical=True) or 1,
        physical_cpus=psutil.cpu_count(logical=False),
        memory_bytes=psutil.virtual_memory().total, kernel=platform.release(),
        os=platform.platform(), pinning=pinned, postgres_version=postgres_version,
        versions=versions())
