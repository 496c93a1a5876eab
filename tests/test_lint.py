"""The tree passes ruff (the version pinned in pyproject.toml, with its settings there).

A finding then fails the test command, which CI runs, instead of waiting for a
reviewer to notice a blocking call in an async function or a blind `except`;
a deliberate exception says why in its `# noqa` comment.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_finds_nothing():
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
