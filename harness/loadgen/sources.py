"""What the plugin reads besides Locust's events: the dataset manifest and the
service's metrics at the edges of the measured window.

Both are read by the plugin (`harness/loadgen/plugin.py`) inside Locust; neither
needs Locust or gevent, so both are tested in a plain process.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request

log = logging.getLogger("harness.plugin")


class ManifestSource:
    """The dataset manifest a process's users draw their tenants and keys from.

    The local file when it is readable (`--harness-manifest` or `HARNESS_MANIFEST`),
    read once per path; else the copy the master sent (a remote worker has no file)."""

    def __init__(self) -> None:
        self.received: dict | None = None
        self._cache: tuple[str, dict] | None = None

    def get(self, path: str | None) -> dict | None:
        path = path or os.environ.get("HARNESS_MANIFEST")
        if path and os.path.isfile(path):
            if self._cache and self._cache[0] == path:
                return self._cache[1]
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            self._cache = (path, data)
            return data
        return self.received


def metrics_url(host: str | None) -> str | None:
    """Where the service's metrics are scraped: `HARNESS_METRICS_URL` (set by
    `harness run`: the host the workers are given is the advertised address, which need
    not route back to this machine, a NAT address), else `{host}/metrics`."""
    return os.environ.get("HARNESS_METRICS_URL") or (
        host.rstrip("/") + "/metrics" if host else None)


def scrape_metrics(url: str, edge: str) -> str | None:
    """The exposition text at `url`, or None (logged) when it cannot be had: one try,
    because an edge scraped later would not match the clients' window."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode("utf-8", "replace")
    except (OSError, ValueError) as exc:
        log.warning("harness: could not scrape %s at the window %s: %s", url, edge, exc)
        return None
