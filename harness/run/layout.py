"""The run directory: where each file of a run lives, and the `latest` link."""

from __future__ import annotations

import os
from pathlib import Path


def point_latest(runs_dir: Path, run_dir: Path) -> None:
    """`reports/latest` -> the newest run (a relative symlink, replaced atomically)."""
    link = runs_dir.parent / "latest"
    tmp = runs_dir.parent / ".latest.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.relpath(run_dir, link.parent), tmp)
    os.replace(tmp, link)
