"""`harness bench`: pytest-benchmark's JSON read strictly, the stored sets of sessions (their
format round-trips, old single-session files still load), the named store, the suite run as a
child (failures exit 3, Ctrl-C stops it with no process left, in or between sessions), and end
to end on a fast benchmark: two sessions saved, compare (0), a stored result made 3x faster
(1), every bad input (2, one line, nothing overwritten), Ctrl-C (3, nothing stored)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import psutil
import pytest
from junitparser import JUnitXml

from harness import bench as suites
from harness import bench_store
from harness.errors import ConfigError, Interrupted, RunFailed
from harness.model.bench import BenchSet, parse, parse_set
from harness.model.gate import json_schema

FAST = "test_cache_get_hit"
FAST_ID = f"scenarios/benchmarks/test_cache_bench.py::{FAST}"


def doc(rounds: int = 20, data: bool = True, **stats) -> dict:
    values = [1e-6 * (1 + i / rounds) for i in range(rounds)]
    s = {"min": values[0], "max": values[-1], "mean": 1.5e-6, "median": 1.5e-6,
         "rounds": rounds, "iterations": 1, "ops": 1e6, **stats}
    if data:
        s["data"] = values
    return {"machine_info": {"cpu": {"brand_raw": "X", "count": 2}},
            "commit_info": {"id": "abc", "dirty": True}, "datetime": "2026-01-01",
            "version": "5.3.1", "speedups_by_median": {},
            "benchmarks": [{"group": None, "name": "t", "fullname": "f.py::t", "params": None,
                            "param": None, "extra_info": {}, "options": {}, "stats": s}]}


# ---------------------------------------------------------------- the model and the store


def test_a_pytest_benchmark_document_reads_and_keeps_what_it_does_not_model():
    run = parse(json.dumps(doc()), "x.json")
    assert run.benchmarks[0].stats.rounds == 20 and run.git_commit == "abc-dirty"
    assert run.model_extra == {"speedups_by_median": {}}
    assert run.machine()["CPU model"] == "X"


def changed(**stats) -> str:
    """A one-benchmark document whose stats are changed."""
    d = doc()
    d["benchmarks"][0]["stats"].update(stats)
    return json.dumps(d)


@pytest.mark.parametrize(("document", "message"), [
    ("{\"benchmarks\": [", "not valid JSON"),
    (json.dumps(doc(data=False)), "no raw timings (stats.data): save with --benchmark-save-data"),
    (changed(rounds=21), "stats.data holds 20 rounds, stats.rounds says 21"),
    (changed(data=[1e-6] * 19 + [-1.0]), "-1.0, not a time in seconds"),
    (changed(rounds="many"), "rounds: Input should be a valid integer"),
    (json.dumps({"benchmarks": [doc()["benchmarks"][0]] * 2}), "appears twice"),
    (json.dumps({"machine_info": {}}), "benchmarks: Field required"),
])
def test_a_malformed_document_is_one_config_error_line(document: str, message: str):
    with pytest.raises(ConfigError, match="x.json") as err:
        parse(document, "x.json")
    assert message in str(err.value) and "\n" not in str(err.value)


def sessions_of(*rounds: int, keep: bool = True) -> BenchSet:
    return BenchSet.of([parse(json.dumps(doc(r)), "x.json") for r in rounds], keep_rounds=keep,
                       created_at="2026-01-01T00:00:00+00:00", k="t")


def test_a_stored_set_round_trips_keeps_rounds_only_when_asked_and_is_small():
    full, slim = sessions_of(20, 30, 40), sessions_of(20, 30, 40, keep=False)
    assert parse_set(full.dump(), "a") == full and parse_set(slim.dump(), "b") == slim
    assert full.dump() == parse_set(full.dump(), "a").dump()  # stable: same bytes again
    text = json.loads(slim.dump())
    assert (text["format"], text["schema_version"], text["raw_rounds"]) == (
        "harness-bench-sessions", 1, False)
    assert [s["benchmarks"][0]["stats"]["rounds"] for s in text["sessions"]] == [20, 30, 40]
    assert all("data" not in s["benchmarks"][0]["stats"] for s in text["sessions"])
    assert text["sessions"][0]["speedups_by_median"] == {}  # pytest-benchmark's keys kept
    assert text["sessions"][0]["benchmarks"][0]["stats"]["ops"] == 1e6
    assert full.sessions[2].benchmarks[0].stats.data == doc(40)["benchmarks"][0]["stats"]["data"]
    assert slim.sessions[0].benchmarks[0].stats.median == 1.5e-6
    assert len(slim.dump()) < 0.6 * len(full.dump())


def test_an_old_single_session_file_loads_as_a_set_of_one(tmp_path: Path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc()))  # what harness bench --save stored before sets
    loaded = bench_store.load(old)
    assert len(loaded.sessions) == 1 and loaded.raw_rounds and loaded.created_at == "2026-01-01"
    assert loaded.sessions[0].benchmarks[0].stats.data == doc()["benchmarks"][0]["stats"]["data"]
    assert loaded.git_commit == "abc-dirty"


def as_doc(s: BenchSet) -> dict:
    return json.loads(s.dump())


@pytest.mark.parametrize(("document", "message"), [
    (json.dumps({**as_doc(sessions_of(5)), "schema_version": 2}),
     "stored benchmark sessions of schema version 2; this harness reads version 1"),
    (json.dumps({k: v for k, v in as_doc(sessions_of(5)).items() if k != "schema_version"}),
     "schema version None"),
    (json.dumps({**as_doc(sessions_of(5)), "format": "other"}), "format is 'other'"),
    (json.dumps({**as_doc(sessions_of(5, keep=False)), "raw_rounds": True}),
     "raw_rounds is true but sessions.0.benchmarks.0 (t) has no stats.data"),
    (json.dumps({**as_doc(sessions_of(5)), "raw_rounds": False}), "raw_rounds is false"),
    (json.dumps({**as_doc(sessions_of(5)), "sessions": []}), "sessions: List should have"),
    (json.dumps({**as_doc(sessions_of(5)), "extra": 1}), "extra: Extra inputs"),
    (sessions_of(5).dump()[:200], "not valid JSON"),
])
def test_a_malformed_stored_set_is_one_config_error_line(document: str, message: str):
    with pytest.raises(ConfigError, match="x.json") as err:
        parse_set(document, "x.json")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_store_saves_atomically_refuses_to_overwrite_and_resolves_names(tmp_path: Path):
    store = tmp_path / "baselines"
    first = sessions_of(20, 20)
    path = bench_store.save(store, "main", first)
    assert path == store / "bench" / "main.json" and path.read_text() == first.dump()
    assert [p.name for p in path.parent.iterdir()] == ["main.json"]  # no temporary left
    with pytest.raises(ConfigError, match="exists .*--force replaces it"):
        bench_store.save(store, "main", first)
    bench_store.save(store, "main", sessions_of(30, 30, 30, keep=False), force=True)
    again = bench_store.load(path)
    assert [s.benchmarks[0].stats.rounds for s in again.sessions] == [30, 30, 30]
    assert not again.raw_rounds
    src = tmp_path / "b.json"
    src.write_text(json.dumps(doc()))
    assert bench_store.resolve("main", store) == path and bench_store.resolve(str(src), store) == src
    with pytest.raises(ConfigError, match=r"no stored benchmark result 'nope' .*have: main"):
        bench_store.resolve("nope", store)
    for name in ("../x", ".hidden", "a/b", "x.json", ""):
        with pytest.raises(ConfigError, match="invalid benchmark result name"):
            bench_store.check_save(store, name, False)
    assert bench_store.list_stored(store) == ["main"]
    assert bench_store.keep_rounds(4, False) and not bench_store.keep_rounds(5, False)
    assert bench_store.keep_rounds(7, True)


def test_junit_keys_are_pytests():
    assert suites._junit_key("scenarios/benchmarks/test_a.py::test_b[x-1]") == (
        "scenarios.benchmarks.test_a", "test_b[x-1]")
    assert suites._junit_key("t/test_a.py::Cls::test_b") == ("t.test_a.Cls", "test_b")


# ---------------------------------------------------------------- running suites (processes)


SUITE = '''
import time
from pathlib import Path
import pytest

@pytest.fixture(scope="session")
def marker():
    yield
    Path({marker!r}).write_text("torn down")

def test_quick(benchmark):
    benchmark.pedantic(lambda: sum(range(100)), rounds=6)

def test_slow(benchmark, marker):
    Path({started!r}).write_text("started")
    benchmark.pedantic(time.sleep, args=(0.5,), rounds=200)

def test_broken(benchmark):
    benchmark(lambda: 1)
    assert False, "this benchmark is broken"
'''


@pytest.fixture()
def own_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    (root / "suite").mkdir(parents=True)
    (root / "suite" / "test_own.py").write_text(SUITE.format(
        marker=str(tmp_path / "torn-down"), started=str(tmp_path / "started")))
    monkeypatch.setattr(suites, "SUITES", root / "suite")
    monkeypatch.setattr(suites, "ROOT", root)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    return run_dir


@pytest.mark.e2e
def test_a_failing_benchmark_is_run_failed_and_what_ran_is_kept(own_suite: Path):
    with pytest.raises(RunFailed, match="a benchmark failed or errored") as err:
        suites.run_suite(own_suite, k="quick or broken", echo=None)
    assert str(own_suite / "pytest.log") in str(err.value)
    assert "this benchmark is broken" in (own_suite / "pytest.log").read_text()
    done = suites.run_suite(own_suite, k="quick", echo=None)
    assert [b.name for b in done.result.benchmarks] == ["test_quick"]
    assert done.selected(["suite/test_own.py::test_quick", "suite/test_own.py::test_slow"]) \
        == {"suite/test_own.py::test_quick"}


@pytest.mark.e2e
@pytest.mark.skipif(threading.current_thread() is not threading.main_thread()
                    or "PYTEST_XDIST_WORKER" in os.environ,
                    reason="sends SIGINT to its own process: an xdist worker runs tests off "
                           "the main thread and would die of it; run with -n 0")
def test_ctrl_c_stops_pytest_after_its_fixtures_tore_down_and_leaves_no_process(
        own_suite: Path, tmp_path: Path):
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    seen: set[int] = set()

    def interrupt() -> None:
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        seen.update(p.pid for p in me.children(recursive=True))
        os.kill(os.getpid(), signal.SIGINT)  # KeyboardInterrupt in the main thread

    threading.Thread(target=interrupt, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(Interrupted, match="interrupted; pytest stopped"):
        suites.run_suite(own_suite, k="slow", echo=None)
    assert time.monotonic() - started < 60  # 200 rounds of 0.5 s were not waited for
    assert seen - before, "pytest was never seen running"
    assert not [p for p in seen - before if psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert (tmp_path / "torn-down").read_text() == "torn down"  # SIGINT first: teardown ran


@pytest.mark.e2e
def test_sessions_run_one_after_another_each_its_own_pytest_and_directory(own_suite: Path):
    said: list[str] = []
    done = suites.run_sessions(own_suite, 2, k="quick", echo=None, say=said.append)
    assert [d.run_dir.name for d in done] == ["session-01", "session-02"]
    assert all((d.run_dir / "benchmarks.json").is_file() for d in done)
    assert said[0] == "session 1 of 2" and said[2] == "session 2 of 2"
    assert said[1].startswith("session 1 of 2: 1 benchmark(s) in ")
    assert done[0].result.datetime != done[1].result.datetime or \
        done[0].result.benchmarks[0].stats.data != done[1].result.benchmarks[0].stats.data
    assert suites.selected(done, ["suite/test_own.py::test_quick"]) == {
        "suite/test_own.py::test_quick"}
    with pytest.raises(RunFailed, match="session 1 of 2: a benchmark failed or errored"):
        suites.run_sessions(own_suite / "again", 2, k="broken", echo=None)
    assert not (own_suite / "again" / "session-02").exists()  # stopped at the first failure


@pytest.mark.e2e
def test_an_interrupt_between_sessions_stops_before_the_next_one(own_suite: Path):
    def say(text: str) -> None:
        if text == "session 2 of 3":
            raise KeyboardInterrupt

    with pytest.raises(Interrupted, match=r"interrupted in session 2 of 3 \(1 complete\); "
                                          r"nothing stored"):
        suites.run_sessions(own_suite, 3, k="quick", echo=None, say=say)
    assert (own_suite / "session-01" / "benchmarks.json").is_file()
    assert not (own_suite / "session-02").exists()


# ---------------------------------------------------------------- end to end: the command


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The command from `cwd`, its store and reports given relative to it (pytest itself
    runs from the repository root)."""
    return subprocess.run([sys.executable, "-m", "harness.cli", "bench", *args, "--store",
                           "store", "--out", "reports"], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def run_dirs(cwd: Path) -> list[Path]:
    folder = cwd / "reports" / "bench"
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`harness bench --sessions 2 --save base -k test_cache_get_hit` once for the module."""
    cwd = tmp_path_factory.mktemp("bench")
    done = harness("--sessions", "2", "--save", "base", "-k", FAST, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "saved benchmark result base (2 session(s), with raw rounds" in done.stdout
    assert "session 1 of 2" in done.stdout and "session 2 of 2" in done.stdout
    assert FAST in done.stdout  # pytest's own output is streamed
    return cwd


@pytest.mark.e2e
def test_two_sessions_are_stored_each_its_own_pytest_session(saved: Path):
    stored = bench_store.load(saved / "store" / "bench" / "base.json")
    assert len(stored.sessions) == 2 and stored.raw_rounds and stored.k == FAST
    assert [[b.fullname for b in s.benchmarks] for s in stored.sessions] == [[FAST_ID]] * 2
    first, second = (s.benchmarks[0].stats.data for s in stored.sessions)
    assert first != second  # two measurements, not one copied
    run = run_dirs(saved)[0]
    assert sorted(p.name for p in run.iterdir()) == ["report.html", "session-01",
                                                    "session-02", "sessions.json"]
    for session in ("session-01", "session-02"):
        assert {p.name for p in (run / session).iterdir()} >= {"benchmarks.json",
                                                               "pytest.log", "pytest-junit.xml"}
    assert (run / "sessions.json").read_bytes() == \
        (saved / "store" / "bench" / "base.json").read_bytes()


@pytest.mark.e2e
def test_save_then_compare_the_same_build_exits_0_with_the_gates_files(saved: Path):
    # Two sessions a side are compared as rounds, which whole sessions moving make
    # overconfident (docs/bench.md: 60% of such A/A gates flag something at +15%):
    # a tolerance no session-to-session move reaches keeps this test about the files.
    wide = saved / "wide.toml"
    wide.write_text(f'[benchmarks."{FAST}"]\nbench = "+1000%"\n')
    done = harness("--sessions", "2", "--compare", "base", "-k", FAST, "--policy", str(wide),
                   cwd=saved)
    assert done.returncode == 0, done.stdout + done.stderr
    out = run_dirs(saved)[-1]
    gate = json.loads((out / "gate.json").read_text())
    jsonschema.validate(gate, json_schema())
    assert gate["verdict"] in ("pass", "inconclusive")
    assert [c["name"] for c in gate["checks"]] == [f"bench {FAST}"]
    check = gate["checks"][0]
    assert check["kind"] == "benchmark" and check["interval"]
    # shown in the unit its median reads best in: a cached get takes about 1 µs, so either
    # side of it as the machine goes (0.98 µs is shown as 980 ns, 1.03 µs as 1.03 µs)
    assert check["unit"] in ("ns", "µs") and 1 <= check["baseline"] < 1000, check
    suite = next(iter(JUnitXml.fromfile(str(out / "junit.xml"))))
    assert suite.tests == 1 and suite.failures == 0
    assert (out / "summary.md").read_text().startswith(("**PASS**", "**INCONCLUSIVE**"))
    assert (out / "session-02" / "benchmarks.json").is_file()
    assert f"gate: {gate['verdict']} (exit 0)" in done.stdout and str(out) in done.stdout
    # two sessions a side: rounds as samples, and it says so
    assert "note: 2 vs 2 session(s), fewer than 5 a side" in done.stdout
    assert "rounds as independent samples" in gate["method"]
    assert "ignores session-to-session variation" in gate["summary"]
    assert "ignores session" in (out / "summary.md").read_text()


@pytest.mark.e2e
def test_a_stored_result_3x_faster_makes_compare_exit_1(saved: Path):
    doc = json.loads((saved / "store" / "bench" / "base.json").read_text())
    for b in (b for session in doc["sessions"] for b in session["benchmarks"]):
        s = b["stats"]
        s["data"] = [v / 3 for v in s["data"]]
        for key in ("min", "max", "mean", "median", "stddev", "q1", "q3", "iqr", "total"):
            s[key] = s[key] / 3
    fast = saved / "fast.json"
    fast.write_text(json.dumps(doc))
    done = harness("--sessions", "1", "--compare", str(fast), "-k", FAST, cwd=saved)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith("gate: regressed: bench test_cache_get_hit")
    gate = json.loads((run_dirs(saved)[-1] / "gate.json").read_text())
    assert gate["verdict"] == "regressed" and gate["exit_code"] == 1
    assert gate["checks"][0]["interval"][0] > 1.15  # no timing figure: only beyond +15%
    assert next(iter(JUnitXml.fromfile(str(run_dirs(saved)[-1] / "junit.xml")))).failures == 1


def bad_input(cwd: Path, *args: str, runs: bool = False) -> str:
    stored = {p: p.read_bytes() for p in (cwd / "store").rglob("*") if p.is_file()}
    before = run_dirs(cwd)
    done = harness(*args, cwd=cwd)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stderr
    assert {p: p.read_bytes() for p in (cwd / "store").rglob("*") if p.is_file()} == stored
    new = [d for d in run_dirs(cwd) if d not in before]
    assert len(new) == (1 if runs else 0)  # refused before running: no run directory at all
    assert not any((d / "gate.json").exists() for d in new)
    return done.stderr


@pytest.mark.e2e
def test_every_bad_input_is_exit_2_with_one_line_and_nothing_overwritten(saved: Path):
    stored = saved / "store" / "bench" / "base.json"
    assert "no stored benchmark result 'nope'" in bad_input(saved, "--compare", "nope")
    assert "a benchmark result named 'base' exists" in bad_input(saved, "--save", "base")
    assert "invalid benchmark result name" in bad_input(saved, "--save", "../up")
    text = stored.read_text()
    cases = {"truncated.json": text[: len(text) // 2],
             "nodata.json": json.dumps(doc(data=False)),
             "rounds.json": changed(rounds=6)}
    for name, content in cases.items():
        (saved / name).write_text(content)
        err = bad_input(saved, "--compare", str(saved / name), "--save", "new")
        assert name in err
    assert "not valid JSON" in bad_input(saved, "--compare", str(saved / "truncated.json"))
    (saved / "v2.json").write_text(json.dumps({**json.loads(text), "schema_version": 2}))
    assert "schema version 2" in bad_input(saved, "--compare", str(saved / "v2.json"))
    slim = BenchSet.of(bench_store.load(stored).sessions * 3, keep_rounds=False)  # 6, no rounds
    (saved / "slim.json").write_text(slim.dump())
    err = bad_input(saved, "--sessions", "2", "--compare", str(saved / "slim.json"))
    assert "holds 6 session(s) without raw rounds" in err and "--sessions 5 or more" in err
    for bad in ("0", "-1", "51"):
        assert f"--sessions must be 1 to 50, not {bad}" in bad_input(
            saved, "--sessions", bad, "--save", "new")
    policy = saved / "policy.toml"
    policy.write_text("[tolerances]\np95 = \"+15%\"\np96 = \"+10%\"\n")
    err = bad_input(saved, "--compare", "base", "--policy", str(policy))
    assert "policy.toml:3" in err and "p96" in err
    err = bad_input(saved, "--sessions", "2", "--save", "new", "-k", "no_such_benchmark",
                    runs=True)
    assert "no benchmark selected by -k 'no_such_benchmark'" in err
    assert not (saved / "store" / "bench" / "new.json").exists()
    assert stored.read_text() == text


@pytest.mark.e2e
def test_force_replaces_a_stored_result(saved: Path, tmp_path: Path):
    store = tmp_path / "store" / "bench"
    store.mkdir(parents=True)
    (store / "base.json").write_text(json.dumps(doc()))
    done = harness("--sessions", "1", "--save", "base", "--force", "-k", FAST, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    stored = json.loads((store / "base.json").read_text())
    assert stored["sessions"][0]["benchmarks"][0]["name"] == FAST


@pytest.mark.e2e
def test_ctrl_c_in_the_second_session_exits_3_stores_nothing_and_leaves_no_process(
        tmp_path: Path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "bench", "--sessions", "3", "--save", "x", "-k",
         FAST, "--store", "store", "--out", "reports"], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    me = psutil.Process(proc.pid)
    seen: set[int] = set()
    assert proc.stdout is not None
    for line in proc.stdout:
        if "session 2 of 3" in line:
            break
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
            "session-02" in " ".join(p.cmdline()) for p in me.children(recursive=True)):
        time.sleep(0.05)  # pytest of the second session has started
    time.sleep(1.0)
    seen.update(p.pid for p in me.children(recursive=True))
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, (rest, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "interrupted in session 2 of 3 (1 complete); nothing stored" \
        in lines[0], err
    assert not (tmp_path / "store" / "bench" / "x.json").exists()
    run = run_dirs(tmp_path)[-1]
    assert not (run / "sessions.json").exists() and not (run / "session-03").exists()
    assert seen, "pytest was never seen running"
    assert not [p for p in seen if psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
