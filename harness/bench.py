"""pytest-benchmark suites run as `harness bench`: the sessions, their run directory, the page.

```
baselines/bench/NAME.json        a stored result: N sessions (harness.model.bench.BenchSet)
reports/bench/<stamp>/           one `harness bench` (a run-like directory)
  session-01/ ... session-NN/    one pytest session each:
    benchmarks.json              pytest-benchmark's JSON (--benchmark-save-data: raw rounds)
    pytest.log                   pytest's output, as streamed to the terminal
    pytest-junit.xml             what pytest selected and how each test ended
  sessions.json                  the sessions as --save stores them
  gate.json, junit.xml, summary.md   the gate, with --compare (harness.run.gate.write)
  report.html                    the benchmark page (harness.outputs.report.bench_page)
```

* **Running** (`run_suite`, one session): `python -m pytest
  scenarios/benchmarks --benchmark-only --benchmark-json=...
  --benchmark-save-data` as a child that never outlives the harness
  (`harness.stack.process.ManagedProcess`: its own session,
  `PR_SET_PDEATHSIG`), from the repository root (the suites' conftest keeps
  the embedded PostgreSQL under `.harness/pg` there, or uses
  `HARNESS_DATABASE_URL`). Its output goes to `pytest.log` and is echoed as it
  comes. On Ctrl-C or SIGTERM pytest gets SIGINT first, so its fixtures tear
  down (clones dropped, the embedded server released), then SIGTERM/SIGKILL
  after a grace period: no process is left. `run_sessions` runs N such
  sessions one after another, each a separate pytest process (a fresh
  interpreter, caches and allocator: what makes sessions independent), and
  says "session i of N" before each; an interrupt in or between sessions is
  `Interrupted` (exit 3) and nothing is stored.
* **Storing and loading** named results: `harness/bench_store.py`.
* **The page** (`write_page`, `page_inputs`): `report.html` in the run directory at
  the end of every `harness bench`, and again from what the directory holds
  (`harness bench --report DIR`: its `sessions.json`, its `gate.json` when it was
  compared, and the baseline that gate names when the store still has it).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

import scenarios
from harness.bench_store import load, load_session, resolve
from harness.errors import ConfigError, HarnessError, Interrupted, RunFailed, UsageError
from harness.model.bench import BenchmarkRun
from harness.model.files import load_json
from harness.model.gate import GateResult
from harness.run import layout
from harness.stack.process import ManagedProcess

if TYPE_CHECKING:
    from harness.outputs.report.bench_page import BenchInputs

SUITES = Path(scenarios.__file__).resolve().parent / "benchmarks"
ROOT = SUITES.parent.parent
"""The repository root: pytest runs from here (pyproject.toml, `.harness/`)."""
RESULT_JSON, LOG, PYTEST_JUNIT = "benchmarks.json", "pytest.log", "pytest-junit.xml"
SESSIONS_JSON = "sessions.json"
"""The run's sessions as `--save` stores them (a `BenchSet`)."""
REPORT_HTML = "report.html"
MAX_SESSIONS = 50
"""`--sessions` at most (session directories are numbered with two digits)."""
INTERRUPT_GRACE_S = 20.0
"""After a Ctrl-C, how long pytest may take to tear its fixtures down before SIGTERM."""

_hookimpl = pluggy.HookimplMarker("pytest")  # `pytest.hookimpl`, without importing pytest


# ---------------------------------------------------------------- running


def new_run_dir(out: Path) -> Path:
    """`OUT/bench/<UTC stamp>` (a suffix when two start within one second)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = out / "bench"
    base.mkdir(parents=True, exist_ok=True)
    for n in range(100):
        path = base / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RunFailed(f"cannot make a run directory under {base}")


@dataclass(frozen=True)
class SuiteRun:
    """One pytest session's results."""

    run_dir: Path
    result: BenchmarkRun
    json_path: Path
    seconds: float

    def selected(self, nodeids: list[str]) -> set[str] | None:
        """Which of `nodeids` pytest selected (ran or skipped), from its JUnit report;
        None when it wrote none (then nothing counts as deselected)."""
        return selected_nodeids(self.run_dir / PYTEST_JUNIT, nodeids)


def suite_argv(run_dir: Path, k: str | None, color: bool) -> list[str]:
    argv = [sys.executable, "-m", "pytest", str(SUITES), "--benchmark-only",
            f"--benchmark-json={run_dir / RESULT_JSON}", "--benchmark-save-data",
            f"--junitxml={run_dir / PYTEST_JUNIT}", "-p", "no:cacheprovider", "-p", __name__,
            # not the project's test options (two xdist workers would disable timing)
            "-o", "addopts=", f"--color={'yes' if color else 'no'}"]
    if k:
        argv += ["-k", k]
    return argv


@_hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    """A pytest hook (`-p harness.bench`): drop benchmarks that never finished a round.

    A benchmark stopped by Ctrl-C or pytest-timeout (exceptions pytest-benchmark does
    not catch) is left with no data, and pytest-benchmark's JSON writer (and the suites'
    conftest) then fail on it before pytest tears the session's fixtures down: the
    embedded PostgreSQL's clones and handle would be left behind. Runs before
    pytest-benchmark's own `pytest_sessionfinish`."""
    bench_session = getattr(session.config, "_benchmarksession", None)
    if bench_session is not None:
        bench_session.benchmarks[:] = [
            b for b in bench_session.benchmarks
            if getattr(getattr(b, "stats", None), "data", None)]
    return (yield)


def _junit_key(nodeid: str) -> tuple[str, str]:
    """(classname, name) pytest's JUnit report gives a node id (its `mangle_test_address`)."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def selected_nodeids(junit: Path, candidates: list[str]) -> set[str] | None:
    """Which of `candidates` (node ids) pytest selected, read from its JUnit report."""
    try:
        tree = ET.parse(junit)
    except (OSError, ET.ParseError):
        return None
    cases = {(c.get("classname", ""), c.get("name", "")) for c in tree.iter("testcase")}
    return {n for n in candidates if _junit_key(n) in cases}


def _echo_new(log: Path, pos: int, echo: Callable[[bytes], None]) -> int:
    try:
        with log.open("rb") as f:
            f.seek(pos)
            chunk = f.read()
    except FileNotFoundError:
        return pos
    if chunk:
        echo(chunk)
    return pos + len(chunk)


def _stdout_echo(chunk: bytes) -> None:
    sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()


def _last_error(log: Path) -> str:
    try:
        lines = [ln.strip() for ln in log.read_text(encoding="utf-8", errors="replace")
                 .splitlines() if ln.strip()]
    except OSError:
        return ""
    errors = [ln for ln in lines if ln.startswith(("ERROR", "E "))]
    return re.sub(r"\x1b\[[0-9;]*m", "", (errors or lines or [""])[-1])


def _stop(proc: ManagedProcess) -> None:
    """SIGINT to pytest alone (its fixtures tear down), then the group, escalating."""
    if proc.alive:
        with contextlib.suppress(OSError):
            os.kill(proc.pid, signal.SIGINT)
        deadline = time.monotonic() + INTERRUPT_GRACE_S
        while proc.alive and time.monotonic() < deadline:
            try:
                time.sleep(0.1)
            except (Interrupted, KeyboardInterrupt):
                break  # a second Ctrl-C: stop at once
    proc.stop(timeout=5)


def run_suite(run_dir: Path, k: str | None = None, database_url: str | None = None,
              echo: Callable[[bytes], None] | None = _stdout_echo,
              color: bool = False, poll_s: float = 0.2) -> SuiteRun:
    """Run the benchmark suites into `run_dir`; the validated result.

    UsageError (exit 2): `-k` selected nothing, or pytest refused its command
    line. RunFailed (exit 3): a benchmark failed or errored, pytest crashed,
    or it wrote no result; what it did write stays in `run_dir`. Interrupted
    (exit 3): Ctrl-C or SIGTERM, pytest stopped."""
    run_dir = run_dir.resolve()  # pytest runs from the repository root
    env: dict[str, str | None] = {"HARNESS_DATABASE_URL": database_url} if database_url else {}
    # run from inside an xdist worker (the project's tests), pytest-benchmark would see
    # xdist in the environment and disable timing: the suite is not a worker's
    env |= {k: None for k in os.environ if k.startswith("PYTEST_XDIST_")}
    log = run_dir / LOG
    proc = ManagedProcess("pytest", suite_argv(run_dir, k, color), log, env=env, cwd=ROOT)
    started = time.monotonic()
    pos = 0
    proc.start()
    try:
        while proc.alive:
            time.sleep(poll_s)
            if echo:
                pos = _echo_new(log, pos, echo)
    except BaseException as exc:
        _stop(proc)
        if echo:
            _echo_new(log, pos, echo)
        if isinstance(exc, (Interrupted, KeyboardInterrupt)):
            raise Interrupted(f"interrupted; pytest stopped; its output is in {log}") from exc
        raise
    code = proc.stop(timeout=5)
    if echo:
        _echo_new(log, pos, echo)
    seconds = time.monotonic() - started
    json_path = run_dir / RESULT_JSON
    where = f"pytest's output: {log}"
    if code == 5:
        raise UsageError(f"no benchmark selected{f' by -k {k!r}' if k else ''} ({where})")
    if code == 4:
        raise UsageError(f"pytest refused the command line: {_last_error(log)} ({where})")
    if code == 2:
        raise Interrupted(f"pytest was interrupted ({where})")
    if code != 0:
        kept = f"; partial results in {json_path}" if json_path.exists() else ""
        what = "a benchmark failed or errored" if code == 1 else f"pytest exited with {code}"
        raise RunFailed(f"{what}: {_last_error(log)} ({where}{kept})")
    if not json_path.exists():
        raise RunFailed(f"pytest wrote no benchmark result ({where})")
    try:
        result = load_session(json_path)
    except HarnessError as exc:
        raise RunFailed(f"pytest-benchmark's result does not read back: {exc}") from exc
    return SuiteRun(run_dir, result, json_path, seconds)


def session_dir(run_dir: Path, i: int) -> Path:
    """`RUN/session-01` ...: session i's own directory."""
    return run_dir / f"session-{i:02d}"


def run_sessions(run_dir: Path, sessions: int, k: str | None = None,
                 database_url: str | None = None,
                 echo: Callable[[bytes], None] | None = _stdout_echo,
                 say: Callable[[str], None] | None = None, color: bool = False,
                 poll_s: float = 0.2) -> list[SuiteRun]:
    """`sessions` pytest sessions one after another, each a separate process in its own
    `session-NN/` directory; "session i of N" through `say` before each.

    Errors as `run_suite`'s, naming the session. An interrupt (Ctrl-C, SIGTERM) inside
    or between sessions is `Interrupted`: what ran stays in `run_dir`, nothing is stored
    (storing is the caller's, after every session succeeded)."""
    done: list[SuiteRun] = []
    for i in range(1, sessions + 1):
        try:
            if say:
                say(f"session {i} of {sessions}")
            path = session_dir(run_dir, i)
            path.mkdir(parents=True, exist_ok=True)
            done.append(run_suite(path, k, database_url, echo, color, poll_s))
            if say:
                last = done[-1]
                say(f"session {i} of {sessions}: {len(last.result.benchmarks)} benchmark(s) "
                    f"in {last.seconds:.1f} s")
        except (Interrupted, KeyboardInterrupt) as exc:
            raise Interrupted(f"interrupted in session {i} of {sessions} ({len(done)} "
                              f"complete); nothing stored; what ran is in {run_dir}") from exc
        except HarnessError as exc:
            if sessions == 1:
                raise
            again = UsageError if isinstance(exc, UsageError) else RunFailed
            raise again(f"session {i} of {sessions}: {exc}") from exc
    return done


def selected(done: list[SuiteRun], nodeids: list[str]) -> set[str] | None:
    """Which of `nodeids` any session selected (None: no session wrote a JUnit report)."""
    every = [s.selected(nodeids) for s in done]
    found = [x for x in every if x is not None]
    return set().union(*found) if found else None


# ---------------------------------------------------------------- the page


def page_inputs(run_dir: Path, store: Path) -> BenchInputs:
    """What a bench run directory's page shows: its sessions, its gate when it was compared,
    and that gate's baseline when `store` (or the path it names) still has it. (The page's
    module is imported here, not at the top: it brings pandas and jinja2, which the
    commands that only run or store benchmarks do not need.)

    ConfigError (exit 2): not a bench run directory, or a file in it does not read."""
    from harness.outputs.report.bench_page import BenchInputs

    sessions = run_dir / SESSIONS_JSON
    if not sessions.is_file():
        raise ConfigError(f"{run_dir}: not a harness bench run directory (no {SESSIONS_JSON})")
    current = load(sessions)
    gate_path = run_dir / layout.GATE  # what `harness.run.gate.write` wrote
    gate = load_json(gate_path, GateResult, f"no {gate_path}") if gate_path.is_file() else None
    inputs = BenchInputs(current=current, run_id=run_dir.resolve().name, gate=gate)
    if gate is not None and gate.baseline.run_ids:
        ref = gate.baseline.run_ids[0]
        inputs.baseline_name = ref
        try:
            inputs.baseline = load(resolve(ref, store))
        except ConfigError as exc:
            inputs.notes.append(f"the baseline's sessions are not drawn: {exc}")
    return inputs


def write_page(run_dir: Path, inputs: BenchInputs) -> Path:
    """`report.html` in the run directory."""
    from harness.outputs.report.bench_page import write_bench

    return write_bench(inputs, run_dir / REPORT_HTML)
