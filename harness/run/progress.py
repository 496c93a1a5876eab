"""What a long command shows while it works: phases, then live load figures.

On a terminal: a rich live panel refreshed every second (phase, elapsed and
remaining time, users, requests per second, and per endpoint the live p95 and
error rate, from the plugin's `live.json`). Elsewhere (CI logs): one plain
line per phase and a status line every 10 seconds, so logs stay readable.
"""

from __future__ import annotations

import time

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text


class Progress:
    """Progress reporting for `harness run`; use as a context manager."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.interactive = console.is_terminal
        self._live: Live | None = None
        self._phase = "starting"
        self._last_line = 0.0
        self._last_seed = 0.0

    def __enter__(self) -> Progress:
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

    def live(self, live: dict | None, total_s: float) -> None:
        if not live:
            return
        if self._live is not None:
            self._live.update(self.render(live, total_s))
            return
        now = time.monotonic()
        if now - self._last_line >= 10:
            self._last_line = now
            self.console.print(self.line(live), highlight=False)

    @staticmethod
    def line(live: dict) -> str:
        worst = max((e.get("p95_ms") or 0 for e in live.get("endpoints", {}).values()),
                    default=0)
        return (f"[{live.get('phase', '?')}] users={live.get('users', 0)} "
                f"rps={live.get('rps', 0):.1f} worst p95={worst:.1f} ms "
                f"elapsed={live.get('elapsed_s', 0):.0f}s")

    @staticmethod
    def render(live: dict, total_s: float) -> Group:
        elapsed = live.get("elapsed_s") or 0.0
        head = Text.assemble(
            (f"{live.get('phase', '?')}", "bold cyan"),
            f"  {elapsed:.0f}s / {total_s:.0f}s  (remaining {max(total_s - elapsed, 0):.0f}s)  "
            f"users {live.get('users', 0)}  rps {live.get('rps', 0):.1f}")
        table = Table(box=None, pad_edge=False)
        table.add_column("endpoint")
        table.add_column("rps", justify="right")
        table.add_column("p95 ms", justify="right")
        table.add_column("errors", justify="right")
        for name, e in sorted(live.get("endpoints", {}).items()):
            err = e.get("error_rate") or 0.0
            table.add_row(name, f"{e.get('rps', 0):.1f}", f"{e.get('p95_ms') or 0:.1f}",
                          Text(f"{100 * err:.1f}%", style="red" if err else ""))
        return Group(head, table)
