"""`python -m target_service`: serve the API with uvicorn, configured from TARGET_* env.

With `TARGET_WORKERS>1` uvicorn starts that many worker processes; metrics are
then aggregated through prometheus-client's multiprocess mode, which needs
`PROMETHEUS_MULTIPROC_DIR` set before any worker imports prometheus_client, and
empty: files left by an earlier run would be merged into this run's counts. So
this process, before any worker starts, makes a temporary directory when none is
given and otherwise deletes the metric files in the one it is given
(`prepare_multiprocess_dir`). See docs/metrics.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import uvicorn

from target_service.settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(workers: int) -> Path | None:
    """The multiprocess directory for `workers` processes, without stale metric files.

    Only prometheus-client's own `*.db` files are deleted, never the directory
    or anything else in it: the variable may point anywhere. A single worker
    with the variable set still uses multiprocess mode, so it is cleaned too.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if not given:
        if workers <= 1:
            return None
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="target-metrics-")
        return Path(os.environ[MULTIPROC_ENV])
    path = Path(given)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    return path


def main() -> int:
    """Serve until stopped; the multiprocess directory is prepared before uvicorn forks."""
    settings = Settings()
    prepare_multiprocess_dir(settings.workers)
    uvicorn.run(
        "target_service.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=False,
        lifespan="on",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
