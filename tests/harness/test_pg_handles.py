"""Harness processes starting together share one embedded server and keep every handle.

pgserver stops the server when the last pid leaves its handle list. Each start first
prunes the pids of dead users from that list (a SIGKILLed harness leaves its pid behind);
done outside pgserver's lock, a start racing another could write the list back without the
other's pid, and the first to exit would stop the server under the other. Four processes
start at once over a list holding a dead pid, one of them pruning slowly (a sleep in
its pid check) while the others start, so the race is not left to chance: all four must be listed, the server must
survive three of them leaving, and stop with the last.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.e2e

USERS = 4
CHILD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    import psutil
    from harness.stack import database
    from harness.stack.database import EmbeddedPostgres
    real = psutil.pid_exists
    def slow(pid):                    # widen the prune's read-to-write window, so a
        time.sleep(2.0)               # start racing it lands inside unless locked out
        return real(pid)
    if sys.argv[2:] == ["slow"]:
        database.psutil = type("P", (), {"pid_exists": staticmethod(slow)})
    server = EmbeddedPostgres(Path(sys.argv[1]))
    sys.stdin.readline()              # every child starts at the same moment
    if sys.argv[2:] != ["slow"]:
        time.sleep(0.1)               # the others start inside the slow one's prune
    server.start()
    print(os.getpid(), flush=True)
    sys.stdin.readline()              # leave when told
    server.stop()
""")


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def postmaster_running(data: Path) -> bool:
    pid_file = data / "postmaster.pid"
    if not pid_file.exists():
        return False
    return psutil.pid_exists(int(pid_file.read_text().split()[0]))


def test_concurrent_starts_keep_every_handle_and_the_last_stops_the_server():
    root = Path(tempfile.mkdtemp(prefix="harness-handles-pg-"))
    data = root / "data"
    children: list[subprocess.Popen] = []
    try:
        first = subprocess.run([sys.executable, "-c", CHILD, str(data)], input="\n\n",
                               text=True, capture_output=True, timeout=120, check=False)
        assert first.returncode == 0, first.stderr[-2000:]  # initialised, then stopped
        (data / ".handle_pids.json").write_text(json.dumps([dead_pid()]))
        children = [subprocess.Popen([sys.executable, "-c", CHILD, str(data),
                                      *(["slow"] if i == 0 else [])],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
                    for i in range(USERS)]
        for child in children:
            child.stdin.write("\n")
            child.stdin.flush()
        pids = [int(child.stdout.readline()) for child in children]
        listed = json.loads((data / ".handle_pids.json").read_text())
        assert sorted(listed) == sorted(pids), "a concurrent start dropped another's handle"
        for child in children[:-1]:
            child.stdin.write("\n")
            child.stdin.flush()
            assert child.wait(timeout=60) == 0, child.stderr.read()[-2000:]
            assert postmaster_running(data), "the server stopped under a live user"
        children[-1].stdin.write("\n")
        children[-1].stdin.flush()
        assert children[-1].wait(timeout=60) == 0
        assert not postmaster_running(data), "the last user's exit left the server running"
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        stop_leftover(data)
        shutil.rmtree(root, ignore_errors=True)


def stop_leftover(data: Path) -> None:
    """Stop a server a failed test left running: one more user attaches (pruning the dead
    ones) and leaves last, which stops it the way pgserver does."""
    if postmaster_running(data):
        subprocess.run([sys.executable, "-c", CHILD, str(data)], input="\n\n",
                       text=True, capture_output=True, timeout=120, check=False)


TWICE = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from harness.stack.database import EmbeddedPostgres
    server = EmbeddedPostgres(Path(sys.argv[1]))
    first = server.start()
    again = server.start()            # the test suite's fixture did this, and leaked
    other = EmbeddedPostgres(Path(sys.argv[1]))  # a second object, the same server
    other.start()
    listed = json.loads((Path(sys.argv[1]) / ".handle_pids.json").read_text())
    print(json.dumps({"same": first == again, "listed": listed, "pid": os.getpid()}))
    server.stop()
    other.stop()
""")


def test_starting_twice_keeps_the_handle_and_stop_stops_the_server():
    """A second `start()` in the same process used to prune the process's own pid (as
    if a dead user's) while pgserver kept its one instance and never added it back: the
    last `stop()` then found itself unlisted and left the server running, orphaned. A
    second object on the same directory in the same process attaches to that instance and
    must not prune the pid either."""
    root = Path(tempfile.mkdtemp(prefix="harness-twice-pg-"))
    data = root / "data"
    try:
        done = subprocess.run([sys.executable, "-c", TWICE, str(data)], text=True,
                              capture_output=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        seen = json.loads(done.stdout.strip().splitlines()[-1])
        assert seen["same"] and seen["listed"] == [seen["pid"]]
        assert not postmaster_running(data), "stop() after two starts left the server running"
    finally:
        stop_leftover(data)
        shutil.rmtree(root, ignore_errors=True)
