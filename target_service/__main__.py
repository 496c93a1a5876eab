"""`python -m target_service`: serve the API with uvicorn, configured from TARGET_* env.

With `TARGET_WORKERS>1` uvicorn starts that many worker processes; metrics are
then aggregated through prometheus-client's multiprocess mode, which needs
`PROMETHEUS_MULTIPROC_DIR` set before any worker imports prometheus_client.
"""

from __future__ import annotations

import os
import sys
import tempfile

import uvicorn

from target_service.settings import Settings


def main() -> int:
    settings = Settings()
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="target-metrics-")
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
