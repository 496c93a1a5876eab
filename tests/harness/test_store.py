"""The results store, folder and PostgreSQL: push, list, load, report, idempotence, errors.

The PostgreSQL tests use the machine's server (127.0.0.1:5432, trust auth, database
`test`, user postgres or root; `HARNESS_TEST_STORE_URL` to point elsewhere) in a schema
of their own, unique to this test session and dropped at its end, and skip with the
reason when it cannot be reached. Runs are built with `tests.builders` (no Locust).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.model import result as results
from harness.model.files import save_json
from harness.model.gate import GateResult, Side
from harness.store import ENV, open_store, resolve
from harness.store.folder import FolderStore
from harness.store.postgres import PostgresStore, split_url
from tests.builders import EndpointSpec, LogNormal
from tests.conftest import harness_cli
from tests.e2e.conftest import state_dir  # noqa: F401 - the e2e state directory fixture
from tests.report.conftest import ENDPOINTS, make_run

PG_URLS = ([os.environ["HARNESS_TEST_STORE_URL"]] if os.environ.get("HARNESS_TEST_STORE_URL")
           else [f"postgresql://{user}@127.0.0.1:5432/test" for user in ("postgres", "root")])


def stored_run(root: Path, n: int, *, scenario: str = "mixed", overview_ms: float = 30,
               verdict: str | None = None, report: bool = True, seed: int | None = None) -> Path:
    """Run number `n` (started on day n of January 2027) in `root/r<n>`: the overview's
    median `overview_ms`, a gate.json with `verdict` when given, a stand-in report.html."""
    endpoints = dict(ENDPOINTS)
    endpoints["GET /api/v1/dashboard/overview"] = EndpointSpec(rps=20,
                                                               latency_ms=LogNormal(overview_ms))
    run_id = f"202701{n + 1:02d}T080000Z-{scenario}-r{n:02d}"
    d = make_run(root / f"r{n:02d}", endpoints, seed=seed or n + 1, run_id=run_id,
                 scenario=scenario)
    record = results.load(d / "result.json")
    run = record.run.model_copy(update={"started_at": f"2027-01-{n + 1:02d}T08:00:00+00:00",
                                        "git_commit": f"{n:02d}" + "c" * 38})
    results.save(record.model_copy(update={"run": run}), d / "result.json")
    if verdict is not None:
        save_json(GateResult(verdict=verdict, exit_code=1 if verdict == "regressed" else 0,
                             summary=f"{verdict}: test", baseline=Side(label="baseline b",
                                                                       run_ids=["b-1"]),
                             current=Side(label="current", run_ids=[run_id]), method="test",
                             misrate=0.01, block_s=5, resamples=100, seed=1), d / "gate.json")
    if report:
        (d / "report.html").write_text(f"<html><title>{run_id}</title></html>")
    return d


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> list[Path]:
    """Four runs made elsewhere (three `mixed`, one `dashboard`), out of order on disk."""
    root = tmp_path_factory.mktemp("made")
    return [stored_run(root, 2, verdict="regressed"), stored_run(root, 0),
            stored_run(root, 1, scenario="dashboard", report=False),
            stored_run(root, 3, verdict="pass")]


def ids(runs) -> list[str]:
    return [r.run_id[-3:] for r in runs]


# --- resolving a store -------------------------------------------------------------

def test_the_location_is_the_flag_then_the_environment_then_reports_runs(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert resolve(None) == str(Path("reports/runs"))
    monkeypatch.setenv(ENV, "postgresql://ci@db/perf")
    assert resolve(None) == "postgresql://ci@db/perf"
    assert resolve("elsewhere") == "elsewhere"
    assert isinstance(open_store(None), PostgresStore)
    assert isinstance(open_store("some/dir"), FolderStore)


def test_an_unsupported_url_or_a_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unsupported results store mysql://"):
        open_store("mysql://root@db/perf")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is not a directory"):
        open_store(tmp_path / "file")


def test_the_printed_url_has_no_password_and_the_schema_is_checked():
    dsn, schema, shown = split_url("postgresql://ci:s3cret@db:5433/perf?schema=hist&sslmode=off")
    assert (schema, shown) == ("hist", "postgresql://ci@db:5433/perf?schema=hist")
    assert "schema" not in dsn and "sslmode=off" in dsn and "s3cret" in dsn
    with pytest.raises(ConfigError, match="plain identifier"):
        split_url("postgresql://db/perf?schema=a;drop")


# --- the folder store --------------------------------------------------------------

def test_a_folder_store_lists_oldest_first_filters_and_keeps_the_last(tmp_path, built):
    store = FolderStore(tmp_path / "runs")
    assert store.list() == [] and not (tmp_path / "runs").exists()  # reading creates nothing
    for d in built:
        store.push(d)
    assert ids(store.list()) == ["r00", "r01", "r02", "r03"]
    assert ids(store.list(scenario="mixed")) == ["r00", "r02", "r03"]
    assert ids(store.list(scenario="mixed", last=2)) == ["r02", "r03"]
    assert [m.verdict for m in store.list()] == [None, None, "regressed", "pass"]
    meta = store.list()[0]
    assert meta.git_commit == "00" + "c" * 38 and meta.commit == "00cccccccc"
    assert meta.machine and "CPUs" in meta.machine and meta.schema_version == 2


def test_pushing_into_a_folder_copies_the_directory_once(tmp_path, built):
    store = FolderStore(tmp_path / "runs")
    first = store.push(built[0])
    (built[0] / "extra.txt").write_text("later")
    try:
        again = store.push(built[0])  # replaced whole, not merged or duplicated
    finally:
        (built[0] / "extra.txt").unlink()
    assert first == again
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [first.run_id]
    copy = tmp_path / "runs" / first.run_id
    assert (copy / "extra.txt").read_text() == "later"
    assert (copy / "windows.hlog").read_bytes() == (built[0] / "windows.hlog").read_bytes()
    assert store.report(first.run_id) == copy / "report.html"
    assert store.push(copy) == first  # a run already in the store: nothing to copy


def test_a_folder_store_loads_records_and_gates_and_skips_what_is_not_a_run(tmp_path, built):
    root = tmp_path / "runs"
    shutil.copytree(built[1], root / "a")
    shutil.copytree(built[3], root / "b")
    (root / "broken").mkdir()
    (root / "broken" / "result.json").write_text("{not json")
    (root / "empty").mkdir()
    loaded = FolderStore(root).load()
    assert ids(r.meta for r in loaded) == ["r00", "r03"]
    assert loaded[0].gate is None and loaded[1].gate.verdict == "pass"
    assert loaded[1].result.endpoints.keys() == results.load(built[3] / "result.json"
                                                              ).endpoints.keys()
    assert FolderStore(root).report(loaded[0].meta.run_id) == root / "a" / "report.html"
    assert FolderStore(root).report("nope") is None


def test_pushing_a_directory_without_a_record_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no result at"):
        FolderStore(tmp_path / "runs").push(tmp_path)


# --- PostgreSQL ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def pg_url() -> str:
    """A schema of this session's own on the machine's PostgreSQL, dropped afterwards
    (the first of `PG_URLS` that answers)."""
    schema = f"harness_test_{uuid.uuid4().hex[:12]}"
    why = []
    for base in PG_URLS:  # trust auth as postgres, or as root
        url = f"{base}?schema={schema}"
        store = PostgresStore(url)
        try:
            store.check()
            break
        except ConfigError as exc:
            why.append(str(exc))
    else:
        pytest.skip(f"no PostgreSQL for the results store tests: {'; '.join(why)}")
    try:
        yield url
    finally:
        store.drop()


def test_postgres_push_is_an_upsert_and_list_filters_like_the_folder(pg_url, built):
    store = PostgresStore(pg_url)
    for d in built + built[:2]:  # two pushed twice
        store.push(d)
    assert ids(store.list()) == ["r00", "r01", "r02", "r03"]
    assert ids(store.list(scenario="mixed", last=2)) == ["r02", "r03"]
    assert store.list() == FolderStore(built[0].parent).list()  # the same metadata


def test_postgres_gives_back_the_record_the_gate_and_the_page(pg_url, built):
    store = PostgresStore(pg_url)
    store.push(built[3])
    (loaded,) = store.load(scenario="mixed", last=1)
    original = results.load(built[3] / "result.json")
    assert loaded.result == original
    assert loaded.gate.verdict == "pass"
    assert store.report(original.run.run_id) == (built[3] / "report.html").read_bytes()
    no_page = results.load(built[2] / "result.json").run.run_id
    store.push(built[2])
    assert store.report(no_page) is None


def test_postgres_keeps_one_row_per_run_when_pushed_again_changed(pg_url, built, tmp_path):
    store = PostgresStore(pg_url)
    changed = Path(shutil.copytree(built[2], tmp_path / "r01"))
    store.push(changed)
    (changed / "report.html").write_text("<html>second</html>")
    store.push(changed)
    assert ids(store.list(scenario="dashboard")) == ["r01"]
    run_id = store.list(scenario="dashboard")[0].run_id
    assert store.report(run_id) == b"<html>second</html>"


def test_an_unreachable_postgres_is_one_config_error_without_the_password():
    store = PostgresStore("postgresql://ci:s3cret@127.0.0.1:1/perf")
    with pytest.raises(ConfigError) as caught:
        store.list()
    message = str(caught.value)
    assert message.startswith("results store postgresql://ci@127.0.0.1:1/perf cannot be "
                              "reached") and "s3cret" not in message and "\n" not in message


# --- the commands --------------------------------------------------------------------

harness = harness_cli


def test_store_push_then_list(monkeypatch, capsys, tmp_path, built):
    monkeypatch.setenv(ENV, str(tmp_path / "store"))
    assert harness(monkeypatch, "store", "push", str(built[0]), str(built[3])) == 0
    out = capsys.readouterr().out
    assert out.count("pushed ") == 2 and "(mixed/optimized, pass)" in out
    assert harness(monkeypatch, "store", "list", "--last", "1") == 0
    listed = capsys.readouterr().out
    assert "1 runs in" in listed and "-r03" in listed and "-r00" not in listed


def test_store_push_of_a_missing_run_pushes_nothing_and_exits_2(monkeypatch, capsys, tmp_path,
                                                                built):
    code = harness(monkeypatch, "store", "push", str(built[0]), "no-such-run",
                   "--store", str(tmp_path / "store"))
    err = capsys.readouterr().err
    assert code == 2 and "no run 'no-such-run'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "store").exists()


def test_an_unreachable_store_exits_2_in_one_line(monkeypatch, capsys):
    code = harness(monkeypatch, "store", "list", "--store", "postgresql://ci:pw@127.0.0.1:1/x")
    err = capsys.readouterr().err
    assert code == 2 and "cannot be reached" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and ":pw@" not in err


def test_harness_run_checks_the_store_before_running_and_a_late_push_failure_is_one_line(
        capsys, tmp_path, built):
    """`harness run --results-store`: unusable now is exit 2 before any load; a push that
    fails after the run is a line that says where the run is (the exit code stays)."""
    from harness.cli import run as run_cli

    with pytest.raises(ConfigError, match="cannot be reached"):
        run_cli._results_store("postgresql://ci@127.0.0.1:1/x", tmp_path / "reports")
    assert run_cli._results_store(str(tmp_path / "reports" / "runs"),
                                  tmp_path / "reports") is None  # already there
    assert run_cli._results_store(None, tmp_path / "reports") is None
    run_cli._push(PostgresStore("postgresql://ci@127.0.0.1:1/x"), built[0])
    err = capsys.readouterr().err
    assert "not pushed to the results store" in err and f"harness store push {built[0]}" in err
    target = run_cli._results_store(str(tmp_path / "elsewhere"), tmp_path / "reports")
    run_cli._push(target, built[0])
    assert "pushed" in capsys.readouterr().err and ids(target.list()) == ["r02"]


# --- end to end ----------------------------------------------------------------------

@pytest.mark.e2e
def test_a_real_run_pushes_itself_into_postgres(state_dir, pg_url, tmp_path):  # noqa: F811
    """`harness run --results-store URL` on `tiny`: the run, its record and its page are
    in the table when the command returns."""
    from tests.e2e.test_run import harness_run, only_result

    out = tmp_path / "reports"
    proc = harness_run(state_dir, out, "--users", "4", "--spawn-rate", "4", "--duration", "4s",
                       "--warmup", "1s", "--results-store", pg_url)
    try:
        _, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    run_dir, result = only_result(out)
    assert f"pushed {result['run']['run_id']} to the results store" in err
    store = PostgresStore(pg_url)
    (meta,) = [m for m in store.list() if m.run_id == result["run"]["run_id"]]
    assert meta.scenario == "mixed" and meta.git_commit == result["run"]["git_commit"]
    assert store.report(meta.run_id) == (run_dir / "report.html").read_bytes()
