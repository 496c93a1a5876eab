"""Fixtures of the end-to-end tests."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def state_dir() -> Path:
    """A harness state directory (embedded PostgreSQL, seeded templates) per module.

    Outside pytest's tmp_path: pytest re-privatizes its base directory on every
    start, which would lock out the embedded server's own OS user when the tests
    run as root. Shared by a module's tests so the dataset is seeded once.
    """
    path = Path(tempfile.mkdtemp(prefix="harness-e2e-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
