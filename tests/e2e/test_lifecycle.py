"""A run's lifecycle: the stack goes down on every path, whatever interrupts the teardown.

`Run.execute()` tears down Locust, the monitors, the service, the stub and the
database before anything is written; these tests interrupt that teardown and
break the writing, and check that no process survives and what was measured
is kept.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness.run import record
from tests.e2e.test_run import (
    harness_run,
    no_process_left,
    only_result,
    wait_for_load,
    wait_for_measured,
)

pytestmark = pytest.mark.e2e


def test_a_second_signal_during_teardown_still_stops_everything(state_dir: Path,
                                                                tmp_path: Path):
    out = tmp_path / "reports"
    proc = harness_run(state_dir, out, "--users", "5", "--spawn-rate", "5",
                       "--duration", "60s", "--warmup", "1s")
    wait_for_measured(proc, out)
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)  # the harness is now stopping Locust (it takes a few seconds)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 3, stderr
    assert "Traceback" not in stderr
    no_process_left(children)
    _run_dir, result = only_result(out)
    assert result["run"]["status"] == "interrupted"
    assert any("during teardown" in note for note in result["run"]["notes"]), \
        result["run"]["notes"]
    assert result["totals"]["count"] > 0


WRITE_FAILS = """
import sys
from harness.run import record

def broken_write(result, run_dir):
    raise OSError(28, "No space left on device")

record.write = broken_write
from harness.cli import main
sys.argv = ["harness", *sys.argv[1:]]
main()
"""


def test_a_failure_while_writing_results_leaves_no_process(state_dir: Path, tmp_path: Path):
    out = tmp_path / "reports"
    argv = [sys.executable, "-c", WRITE_FAILS, "run", "--dataset", "tiny", "--state-dir",
            str(state_dir), "--out", str(out), "--users", "4", "--spawn-rate", "4",
            "--duration", "3s", "--warmup", "1s"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_load(proc, out)
    children = psutil.Process(proc.pid).children(recursive=True)
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 3, stderr
    assert "No space left on device" in stderr and "Traceback" not in stderr
    no_process_left(children)
    run_dir = next((out / "runs").iterdir())
    # what was measured is still there, and the run record can be built from it again
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"
    assert not (run_dir / "result.json").exists()
    result = record.collect(run_dir)
    assert result.totals.count > 0 and result.run.status == "complete"
