"""Start, stop and steer the ElevenLabs stub process from Python (harness and tests).

Usage::

    with start_stub("dataset.json", api_key="k", faults="flaky", fault_seed=7,
                    log_path=tmp / "stub.log", error_rate=0.3) as stub:
        stub.url                      # "http://127.0.0.1:PORT"
        stub.admin.set_faults(preset="outage")
        stub.admin.stats().total
        await stub.admin.astats()     # async flavour of every admin call

``start_stub`` runs ``python -m harness.stubs.elevenlabs`` in a child process,
waits (with a timeout) for its single ready line on stdout and raises
:class:`StubStartError` with the tail of the stub's log when the process dies
or never becomes ready. Keyword overrides are :class:`FaultConfig` field
names (``error_rate=0.2``, ``latency={"kind": "fixed", "fixed_ms": 100}``,
``per_agent={...}``) plus the shortcut ``latency_ms=100``; they are validated
here first, so a typo fails in the caller rather than in the child.

This module imports neither FastAPI nor uvicorn, so a process that only
drives the stub (a Locust worker, the harness CLI) stays light.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Self

import httpx
from pydantic import BaseModel

from harness.stubs.elevenlabs.faults import FaultConfig, build_config


class StubStartError(RuntimeError):
    """The stub process exited or did not print its ready line in time."""


class StatsSnapshot(BaseModel):
    """What ``GET /__admin/stats`` returns."""

    total: int = 0
    by_agent: dict[str, int] = {}
    by_status: dict[str, int] = {}
    by_fault: dict[str, int] = {}
    by_agent_status: dict[str, dict[str, int]] = {}
    by_endpoint: dict[str, int] = {}
    in_flight: int = 0
    max_in_flight: int = 0

    def requests_for(self, agent_id: str) -> int:
        return self.by_agent.get(agent_id, 0)


def _fault_body(config: FaultConfig | dict[str, Any] | None, preset: str | None,
                fields: dict[str, Any]) -> dict[str, Any]:
    if isinstance(config, FaultConfig):
        body: dict[str, Any] = config.model_dump(mode="json")
    else:
        body = dict(config or {})
    body.update(fields)
    if preset is not None:
        body["preset"] = preset
    return body


class StubAdmin:
    """Thin sync + async client of the stub's ``/__admin`` API.

    ``set_faults`` replaces the whole configuration: pass a
    :class:`FaultConfig`/dict, a ``preset``, fields, or a preset plus fields.
    """

    def __init__(self, base_url: str, *, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _url(self, path: str) -> str:
        return f"{self.base_url}/__admin/{path}"

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        response.raise_for_status()
        return response.json()

    # -- sync -------------------------------------------------------------
    def faults(self) -> FaultConfig:
        return FaultConfig.model_validate(self._json(httpx.get(self._url("faults"),
                                                               timeout=self.timeout)))

    def set_faults(self, config: FaultConfig | dict[str, Any] | None = None, *,
                   preset: str | None = None, **fields: Any) -> FaultConfig:
        body = _fault_body(config, preset, fields)
        r = httpx.post(self._url("faults"), json=body, timeout=self.timeout)
        return FaultConfig.model_validate(self._json(r))

    def stats(self) -> StatsSnapshot:
        r = httpx.get(self._url("stats"), timeout=self.timeout)
        return StatsSnapshot.model_validate(self._json(r))

    def reset_stats(self) -> StatsSnapshot:
        r = httpx.post(self._url("stats/reset"), timeout=self.timeout)
        return StatsSnapshot.model_validate(self._json(r))

    # -- async ------------------------------------------------------------
    async def afaults(self) -> FaultConfig:
        async with httpx.AsyncClient(timeout=self.timeout) as c:
            return FaultConfig.model_validate(self._json(await c.get(self._url("faults"))))

    async def aset_faults(self, config: FaultConfig | dict[str, Any] | None = None, *,
                          preset: str | None = None, **fields: Any) -> FaultConfig:
        body = _fault_body(config, preset, fields)
        async with httpx.AsyncClient(timeout=self.timeout) as c:
            r = await c.post(self._url("faults"), json=body)
            return FaultConfig.model_validate(self._json(r))

    async def astats(self) -> StatsSnapshot:
        async with httpx.AsyncClient(timeout=self.timeout) as c:
            return StatsSnapshot.model_validate(self._json(await c.get(self._url("stats"))))

    async def areset_stats(self) -> StatsSnapshot:
        async with httpx.AsyncClient(timeout=self.timeout) as c:
            r = await c.post(self._url("stats/reset"))
            return StatsSnapshot.model_validate(self._json(r))


class StubProcess:
    """A running stub child process. Stop it with :meth:`stop` or ``with``."""

    def __init__(self, process: subprocess.Popen[str], url: str, log_path: Path,
                 reader: threading.Thread) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path
        self.admin = StubAdmin(url)
        self._reader = reader

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL. Idempotent."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._reader.join(timeout=2)
        return self.process.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"StubProcess(pid={self.pid}, url={self.url!r})"


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


def _stub_command(manifest_path: str | os.PathLike[str], api_key: str, faults: str,
                  host: str, port: int, fault_seed: int,
                  overrides: dict[str, Any]) -> list[str]:
    cmd = [sys.executable, "-m", "harness.stubs.elevenlabs", "--manifest",
           str(manifest_path), "--host", host, "--port", str(port), "--api-key", api_key,
           "--faults", faults, "--fault-seed", str(fault_seed)]
    if overrides:
        cmd += ["--faults-json", json.dumps(overrides)]
    return cmd


def start_stub(manifest_path: str | os.PathLike[str], api_key: str, faults: str = "healthy",
               log_path: str | os.PathLike[str] | None = None, *, host: str = "127.0.0.1",
               port: int = 0, fault_seed: int = 0, ready_timeout: float = 20.0,
               env: dict[str, str] | None = None, **overrides: Any) -> StubProcess:
    """Start the stub and return once it accepts connections (see module doc)."""
    if "latency_ms" in overrides:
        overrides["latency"] = {"kind": "fixed", "fixed_ms": overrides.pop("latency_ms")}
    build_config(faults, overrides)  # validate before spawning: raises KeyError/ValidationError
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="elevenlabs-stub-", suffix=".log")
        os.close(fd)
        log_path = name
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = _stub_command(manifest_path, api_key, faults, host, port, fault_seed, overrides)
    child_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log_file,
                                   stdin=subprocess.DEVNULL, env=child_env, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:  # keeps draining stdout so the child never blocks on it
        assert process.stdout is not None
        try:
            for line in process.stdout:
                lines.put(line)
        except (OSError, ValueError):
            pass
        lines.put(None)

    reader = threading.Thread(target=pump, name="elevenlabs-stub-stdout", daemon=True)
    reader.start()
    deadline = time.monotonic() + ready_timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            StubProcess(process, "", log_path, reader).stop()
            raise StubStartError(f"ElevenLabs stub not ready after {ready_timeout:.0f}s; "
                                 f"log {log_path}:\n{_tail(log_path, 40)}")
        try:
            line = lines.get(timeout=min(remaining, 0.2))
        except queue.Empty:
            continue
        if line is None:
            code = process.wait(5)
            raise StubStartError(f"ElevenLabs stub exited with code {code} before it was "
                                 f"ready; log {log_path}:\n{_tail(log_path, 40)}")
        try:
            url = json.loads(line)["stub_url"]
        except (ValueError, KeyError, TypeError):
            continue  # not the ready line
        return StubProcess(process, url, log_path, reader)
