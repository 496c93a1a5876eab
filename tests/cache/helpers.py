"""Test helpers for the cache and job-queue tests: a fake clock and gated loaders."""

from __future__ import annotations

import asyncio
from typing import Any


class FakeClock:
    """A monotonic clock the test moves by hand, so TTL tests never sleep."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class GatedLoader:
    """A loader that counts its calls and blocks until the test opens the gate."""

    def __init__(self, value: Any = "value", error: BaseException | None = None) -> None:
        self.value = value
        self.error = error
        self.calls = 0
        self.gate = asyncio.Event()
        self.started = asyncio.Event()

    async def __call__(self) -> Any:
        self.calls += 1
        self.started.set()
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        return self.value

    def open(self) -> None:
        self.gate.set()


async def settle(cache: Any, rounds: int = 1000) -> None:
    """Let background loads finish (event-loop turns, not wall-clock time)."""
    for _ in range(rounds):
        if cache.in_flight == 0:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"cache still has {cache.in_flight} loads in flight")


async def spin(rounds: int = 20) -> None:
    """Give other tasks a few turns of the event loop."""
    for _ in range(rounds):
        await asyncio.sleep(0)
