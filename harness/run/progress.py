"""What a long command shows while it works: phases, then live load figures.

On a terminal: a rich live panel refreshed every second (phase, elapsed and
remaining time, users, requests per second, and per endpoint the live p95 and
error rate, from the plugin's `live.json`). Elsewhere (CI logs): one plain
line per phase and a status line every 10 seconds, so logs stay readable.
"""

from __future__ import annotations

import time
from typing import Self

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from harness.model.client import LiveStatus


class Progress:
    """Progress reporting for `harness run`; use as a context manager."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.interactive = console.is_terminal
        self._live: Live | None = None
        self._phase = "starting"
        self._last_line = 0.0
        self._last_seed = 0.0

    def __enter__(self) -> Self:
        if self.interactive:
            self._live = Live(Text(self._phase), console=self.console, refresh_per_second=2,
                              transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def phase(self, message: str) -> None:
        self._phase = message
        if self._live is not None:
            self._live.update(Text(f"• {message}"))
        self.console.print(f"[dim]•[/dim] {message}", highlight=False)

    def seed(self, table: str, rows: int) -> None:
        now = time.monotonic()
        if now - self._last_seed >= 1.0:
            self._last_seed = now
            self.phase(f"seeding {table}: {rows:,} rows")

    def live(self, live: LiveStatus | None, elapsed_s: float, total_s: float) -> None:
        if live is None:
            return
        if self._live is not None:
            self._live.update(self.render(live, elapsed_s, total_s))
            return
        now = time.monotonic()
        if now - self._last_line >= 10:
            self._last_line = now
            self.console.print(self.line(live, elapsed_s), highlight=False, markup=False)

    @staticmethod
    def line(live: LiveStatus, elapsed_s: float) -> str:
        worst = max((e.p95_ms or 0 for e in live.endpoints.values()), default=0)
        return (f"[{live.phase}] users={live.users} rps={live.rps:.1f} "
                f"worst p95={worst:.1f} ms elapsed={elapsed_s:.0f}s")

    @staticmethod
    def render(live: LiveStatus, elapsed_s: float, total_s: float) -> Group:
        head = Text.assemble(
            (live.phase, "bold cyan"),
            f"  {elapsed_s:.0f}s / {total_s:.0f}s  (remaining {max(total_s - elapsed_s, 0):.0f}s)"
            f"  users {live.users}  rps {live.rps:.1f}")
        table = Table(box=None, pad_edge=False)
        table.add_column("endpoint")
        table.add_column("rps", justify="right")
        table.add_column("p95 ms", justify="right")
        table.add_column("errors", justify="right")
        for name, e in sorted(live.endpoints.items()):
            table.add_row(name, f"{e.rps:.1f}", f"{e.p95_ms or 0:.1f}",
                          Text(f"{100 * e.error_rate:.1f}%", style="red" if e.error_rate else ""))
        return Group(head, table)
