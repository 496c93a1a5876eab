"""The README's two commands are the ones CI and newcomers really run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.DOTALL)
    assert block, "README opens with a bash block holding the two commands"
    return [line for line in block[1].splitlines() if line and not line.startswith("#")]


def test_readme_has_the_main_job_and_the_test_command():
    main_job, tests = readme_commands()
    assert "pip install -e ." in main_job and "harness " in main_job
    assert "pip install -e '.[test]'" in tests and tests.endswith("pytest")


def test_ci_runs_the_readme_test_command():
    _, tests = readme_commands()
    assert tests in (ROOT / ".ci" / "run").read_text()
