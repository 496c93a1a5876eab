"""One exception tree for the harness, each class carrying its exit code.

The CLI catches `HarnessError` once and turns it into one clear line and the
documented exit code (DESIGN.md): 2 for what the user typed or configured,
3 for what failed while carrying out the run. Library errors are translated
into these where they happen, with `raise ... from`.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every error the harness reports to its user."""

    exit_code = 3


class UsageError(HarnessError):
    """Bad flag, unknown scenario/preset/profile, malformed duration or file."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration value or file cannot be used (baseline, policy, URL)."""


class RunFailed(HarnessError):
    """The run could not be carried out (a component failed to start or died)."""

    exit_code = 3


class DatabaseError(RunFailed):
    """PostgreSQL could not be started, reached, seeded or cloned."""


class ComponentFailed(RunFailed):
    """A process the harness started (target, stub, Locust) failed; `log` says where to look."""

    def __init__(self, component: str, message: str, log: str | None = None) -> None:
        where = f" (log: {log})" if log else ""
        super().__init__(f"{component}: {message}{where}")
        self.component = component
        self.log = log


class Interrupted(HarnessError):
    """Ctrl-C or SIGTERM: stop cleanly, keep what was measured, exit 3."""

    exit_code = 3
