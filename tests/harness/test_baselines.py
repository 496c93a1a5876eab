"""The baseline store: save one or several runs, list/show/rm, --force, all-or-nothing saves."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from harness import baselines
from harness.errors import ConfigError
from harness.model import result as results
from harness.model.intervals import IntervalLog
from tests.builders import EndpointSpec, LogNormal, build_run

ROOT = Path(__file__).resolve().parents[2]
V1 = ROOT / "tests" / "fixtures" / "result_v1.json"
OVERVIEW = "GET /api/v1/dashboard/overview"
AGENTS = "GET /api/v1/agents"


def make_run(runs_dir: Path, seed: int = 1, **run_updates: object) -> Path:
    """A run directory `runs_dir/<run id>` (result.json + windows.hlog, and a stray file
    a baseline must not copy); `run_updates` change fields of the record's `run`."""
    built = build_run({OVERVIEW: EndpointSpec(rps=4, latency_ms=LogNormal(30)),
                       AGENTS: EndpointSpec(rps=2)}, seconds=12, warmup_s=2, seed=seed)
    if run_updates:
        run = built.result.run.model_copy(update=run_updates)
        built.result = built.result.model_copy(update={"run": run})
    path = built.write(runs_dir / built.result.run.run_id)
    (path / "live.json").write_text("{}")
    (path / "logs").mkdir()
    (path / "logs" / "target.log").write_text("hello\n")
    return path


def v1_run(runs_dir: Path) -> Path:
    path = runs_dir / json.loads(V1.read_text())["run"]["run_id"]
    path.mkdir(parents=True)
    shutil.copyfile(V1, path / "result.json")
    return path


def tree(path: Path) -> dict[str, bytes]:
    """Every file under `path` (hidden ones too) -> its bytes."""
    return {p.relative_to(path).as_posix(): p.read_bytes()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "reports" / "runs"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "baselines"


# ---------------------------------------------------------------- save and load


def test_save_one_run_copies_the_record_and_its_log_and_nothing_else(runs_dir, store):
    run = make_run(runs_dir)
    saved = baselines.save(store, "main", [run], note="before the cache change")
    rid = "20270115T080000Z-mixed-optimized-1"
    assert sorted(tree(store)) == [f"main/{rid}/result.json", f"main/{rid}/windows.hlog",
                                   "main/baseline.json"]
    assert (store / "main" / rid / "result.json").read_bytes() == \
        (run / "result.json").read_bytes()
    assert (store / "main" / rid / "windows.hlog").read_bytes() == \
        (run / "windows.hlog").read_bytes()
    assert saved.name == "main" and saved.runs == [rid]
    assert (saved.scenario, saved.shape, saved.users, saved.profile, saved.faults) == \
        ("mixed", "steady", 10, "optimized", "healthy")
    assert saved.dataset == results.DatasetInfo(preset="small", seed=42, generator_version=1,
                                                anchor_date="2027-01-15")
    assert saved.note == "before the cache change"
    assert saved.created_at.endswith("+00:00")


def test_baseline_json_is_stable_text(runs_dir, store):
    saved = baselines.save(store, "main", [make_run(runs_dir)])
    old = os.umask(0o022)
    os.umask(old)
    assert (store / "main").stat().st_mode & 0o777 == 0o777 & ~old  # the umask, not 0700
    text = (store / "main" / "baseline.json").read_text()
    assert text == saved.model_dump_json(indent=2) + "\n"
    assert text.startswith('{\n  "schema_version": 1,\n  "name": "main",\n')
    assert baselines.read_baseline(store / "main") == saved


def test_load_gives_each_run_with_its_interval_log(runs_dir, store):
    run = make_run(runs_dir)
    baselines.save(store, "main", [run])
    loaded = baselines.load(store, "main")
    assert loaded.path == store / "main"
    assert loaded.baseline.runs == ["20270115T080000Z-mixed-optimized-1"]
    ((result, log),) = loaded.runs
    assert result == results.load(run / "result.json")
    assert isinstance(log, IntervalLog)
    assert log.entries and log.entries == \
        baselines.intervals.load(run / "windows.hlog").entries
    assert loaded.results == [result]


def test_save_several_runs_in_their_order(runs_dir, store):
    runs = [make_run(runs_dir, seed=s) for s in (3, 1, 2)]
    saved = baselines.save(store, "rounds", runs)
    ids = [f"20270115T080000Z-mixed-optimized-{s}" for s in (3, 1, 2)]
    assert saved.runs == ids
    assert sorted(p.name for p in (store / "rounds").iterdir()) == sorted(
        [*ids, "baseline.json"])
    loaded = baselines.load(store, "rounds")
    assert [r.run.run_id for r in loaded.results] == ids
    assert all(log is not None and log.entries for _, log in loaded.runs)


def test_profiles_may_differ_and_are_recorded(runs_dir, store):
    a = make_run(runs_dir, seed=1)
    b = make_run(runs_dir, seed=2, profile="naive", run_id="b-naive")
    assert baselines.save(store, "both", [a, b]).profile == "optimized,naive"


def test_a_v1_result_is_saved_and_loaded_without_an_interval_log(runs_dir, store):
    run = v1_run(runs_dir)
    saved = baselines.save(store, "old", [run])
    rid = "20261201T212115Z-mixed-optimized-7185"
    assert saved.runs == [rid]
    assert (saved.users, saved.dataset.preset) == (4, "tiny")
    assert sorted(tree(store / "old")) == [f"{rid}/result.json", "baseline.json"]
    assert (store / "old" / rid / "result.json").read_bytes() == V1.read_bytes()
    ((result, log),) = baselines.load(store, "old").runs
    assert log is None
    assert result.windows is None and result.run.run_id == rid
    assert result.totals.count == json.loads(V1.read_text())["totals"]["count"]


def test_load_a_baseline_folder_or_a_run_directory_by_path(runs_dir, store):
    run = make_run(runs_dir)
    baselines.save(store, "main", [run])
    assert baselines.load(store / "main").baseline.name == "main"
    as_baseline = baselines.load(run)
    assert as_baseline.baseline.runs == [run.name]
    assert as_baseline.baseline.name == run.name
    assert as_baseline.runs[0][0] == results.load(run / "result.json")
    assert as_baseline.runs[0][1] is not None


# ---------------------------------------------------------------- list, show, rm


def test_list_show_and_remove(runs_dir, store):
    assert baselines.list_baselines(store) == []  # no store yet
    a = make_run(runs_dir, seed=1)
    b = make_run(runs_dir, seed=2)
    main = baselines.save(store, "main", [a, b])
    old = baselines.save(store, "old", [v1_run(runs_dir)])
    (store / "bench").mkdir()  # not a baseline: not listed
    (store / "policy.toml").write_text("")
    assert baselines.list_baselines(store) == [("main", main), ("old", old)]

    shown = baselines.show(store, "main")
    assert shown.baseline == main and shown.path == store / "main"
    assert [r.run_id for r in shown.runs] == main.runs
    first = shown.runs[0]
    built = results.load(a / "result.json")
    assert (first.schema_version, first.status, first.profile, first.duration_s) == \
        (2, "complete", "optimized", 12.0)
    assert first.requests == built.totals.count == 72  # (4 + 2) rps x 12 s
    assert first.p95_ms == built.totals.latency_ms.p95
    assert first.files == {"result.json": (a / "result.json").stat().st_size,
                           "windows.hlog": (a / "windows.hlog").stat().st_size}
    (v1,) = baselines.show(store, "old").runs
    assert (v1.schema_version, v1.files) == (1, {"result.json": V1.stat().st_size})

    assert baselines.remove(store, "main") == store / "main"
    assert not (store / "main").exists()
    assert baselines.list_baselines(store) == [("old", old)]
    assert sorted(p.name for p in store.iterdir()) == ["bench", "old", "policy.toml"]


def test_a_damaged_baseline_json_is_listed_as_unreadable(runs_dir, store):
    baselines.save(store, "main", [make_run(runs_dir)])
    (store / "main" / "baseline.json").write_text("{")
    assert baselines.list_baselines(store) == [("main", None)]
    with pytest.raises(ConfigError, match="baseline.json: invalid at top level"):
        baselines.load(store, "main")


def test_unknown_names_are_config_errors(runs_dir, store):
    baselines.save(store, "main", [make_run(runs_dir)])
    with pytest.raises(ConfigError, match=r"^no baseline 'nope' in .*baselines \(have: main\)$"):
        baselines.load(store, "nope")
    with pytest.raises(ConfigError, match=r"^no baseline 'nope'"):
        baselines.show(store, "nope")
    with pytest.raises(ConfigError, match=r"^no baseline 'nope'"):
        baselines.remove(store, "nope")


def test_remove_never_deletes_a_folder_that_is_not_a_baseline(store):
    (store / "bench" / "x").mkdir(parents=True)
    (store / "notes").mkdir()
    with pytest.raises(ConfigError, match="is reserved"):
        baselines.remove(store, "bench")
    with pytest.raises(ConfigError, match=r"notes is not a baseline \(no baseline.json\); "
                                          r"not removing it$"):
        baselines.remove(store, "notes")
    assert (store / "bench" / "x").is_dir() and (store / "notes").is_dir()


# ---------------------------------------------------------------- --force


def test_saving_over_a_name_needs_force_and_keeps_the_old_one(runs_dir, store):
    first = baselines.save(store, "main", [make_run(runs_dir, seed=1)])
    before = tree(store)
    with pytest.raises(ConfigError) as info:
        baselines.save(store, "main", [make_run(runs_dir, seed=2)])
    assert str(info.value) == "baseline main exists; --force replaces it"
    assert info.value.exit_code == 2
    assert tree(store) == before
    assert baselines.read_baseline(store / "main") == first


def test_force_replaces_the_whole_baseline(runs_dir, store):
    baselines.save(store, "main", [make_run(runs_dir, seed=1), make_run(runs_dir, seed=2)])
    new = baselines.save(store, "main", [make_run(runs_dir, seed=3)], force=True)
    assert new.runs == ["20270115T080000Z-mixed-optimized-3"]
    assert sorted(p.name for p in (store / "main").iterdir()) == [
        "20270115T080000Z-mixed-optimized-3", "baseline.json"]
    assert baselines.load(store, "main").baseline == new
    assert sorted(p.name for p in store.iterdir()) == ["main"]  # no temporary folder left


def test_force_with_a_failing_save_keeps_the_old_one(runs_dir, store):
    baselines.save(store, "main", [make_run(runs_dir, seed=1)])
    before = tree(store)
    bad = make_run(runs_dir, seed=2)
    (bad / "windows.hlog").write_text("Tag=raw:GET:/x,1,1,2,not-a-histogram\n")
    with pytest.raises(ConfigError, match="windows.hlog:1: "):
        baselines.save(store, "main", [bad], force=True)
    assert tree(store) == before


def test_force_when_the_final_rename_fails_puts_the_old_one_back(runs_dir, store, monkeypatch):
    baselines.save(store, "main", [make_run(runs_dir, seed=1)])
    before = tree(store)
    real = os.rename
    calls = []

    def rename(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if Path(dst).name == "main" and Path(src).name.startswith(".main.tmp-"):
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(baselines.os, "rename", rename)
    with pytest.raises(ConfigError, match=r"^could not write baseline main in .*: \[Errno 28\] "
                                          r"No space left on device \(nothing changed\)$"):
        baselines.save(store, "main", [make_run(runs_dir, seed=2)], force=True)
    assert len(calls) == 3  # old away, new in (failed), old back
    assert tree(store) == before


def test_a_folder_that_is_not_a_baseline_is_never_replaced(runs_dir, store):
    (store / "main").mkdir(parents=True)
    (store / "main" / "mine.txt").write_text("keep")
    with pytest.raises(ConfigError, match=r"main exists and is not a baseline; not replacing"):
        baselines.save(store, "main", [make_run(runs_dir)], force=True)
    assert tree(store) == {"main/mine.txt": b"keep"}


# ---------------------------------------------------------------- nothing half written


def test_a_run_without_a_readable_result_writes_nothing(runs_dir, store):
    good = make_run(runs_dir, seed=1)
    empty = runs_dir / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"^no result at .*empty/result.json$"):
        baselines.save(store, "main", [good, empty])
    assert not store.exists()
    cut = make_run(runs_dir, seed=2)
    text = (cut / "result.json").read_text()
    (cut / "result.json").write_text(text[: len(text) // 2])
    with pytest.raises(ConfigError, match=r"result.json is not valid JSON"):
        baselines.save(store, "main", [good, cut])
    assert not store.exists()


def test_a_run_whose_interval_log_does_not_decode_writes_nothing(runs_dir, store):
    store.mkdir()
    good = make_run(runs_dir, seed=1)
    bad = make_run(runs_dir, seed=2)
    lines = (bad / "windows.hlog").read_text().splitlines(keepends=True)
    n = next(i for i, line in enumerate(lines) if line.startswith("Tag="))
    lines[n] = lines[n].rsplit(",", 1)[0] + ",AAAA\n"
    (bad / "windows.hlog").write_text("".join(lines))
    with pytest.raises(ConfigError, match=rf"windows.hlog:{n + 1}: "):
        baselines.save(store, "main", [good, bad])
    assert list(store.iterdir()) == []


def test_a_run_whose_interval_log_is_missing_writes_nothing(runs_dir, store):
    run = make_run(runs_dir)
    (run / "windows.hlog").unlink()
    with pytest.raises(ConfigError, match=r"^no interval log at .*windows.hlog$"):
        baselines.save(store, "main", [run])
    assert not store.exists()


def test_an_interval_log_outside_the_run_directory_is_refused(runs_dir, store):
    run = make_run(runs_dir)
    result = results.load(run / "result.json")
    windows = result.windows.model_copy(update={"interval_log": "../../secret.hlog"})
    results.save(result.model_copy(update={"windows": windows}), run / "result.json")
    with pytest.raises(ConfigError, match=r"interval log '../../secret.hlog' is outside the "
                                          r"run directory$"):
        baselines.save(store, "main", [run])
    assert not store.exists()


def test_a_failed_write_leaves_no_half_folder(runs_dir, store, monkeypatch):
    runs = [make_run(runs_dir, seed=1), make_run(runs_dir, seed=2)]
    real = baselines.shutil.copyfile
    copies = []

    def copyfile(src, dst):
        copies.append(dst)
        if len(copies) == 3:  # the second run's record
            raise OSError(5, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(baselines.shutil, "copyfile", copyfile)
    with pytest.raises(ConfigError, match=r"^could not write baseline main .*Input/output error "
                                          r"\(nothing changed\)$"):
        baselines.save(store, "main", runs)
    assert list(store.iterdir()) == []  # neither main/ nor a hidden temporary folder


def test_an_interrupted_or_failed_run_is_refused(runs_dir, store):
    run = make_run(runs_dir, status="interrupted")
    with pytest.raises(ConfigError, match=r"is interrupted; a baseline is made of complete runs$"):
        baselines.save(store, "main", [run])
    assert not store.exists()


def test_the_same_run_twice_is_refused(runs_dir, store):
    run = make_run(runs_dir)
    with pytest.raises(ConfigError, match=r"^run 20270115T080000Z-mixed-optimized-1 is given "
                                          r"more than once$"):
        baselines.save(store, "main", [run, run])
    with pytest.raises(ConfigError, match="at least one run"):
        baselines.save(store, "main", [])
    assert not store.exists()


# ---------------------------------------------------------------- mismatched runs


@pytest.mark.parametrize(("update", "difference"), [
    ({"scenario": "dashboard"}, "scenario dashboard (not mixed)"),
    ({"shape": "spike"}, "shape spike (not steady)"),
    ({"users": 20}, "users 20 (not 10)"),
    ({"faults": "slow"}, "faults slow (not healthy)"),
    ({"dataset": results.DatasetInfo(preset="medium", seed=42, generator_version=1,
                                     anchor_date="2027-01-15")},
     "dataset medium seed 42 generator 1 (not small seed 42 generator 1)"),
    ({"dataset": results.DatasetInfo(preset="small", seed=7, generator_version=1,
                                     anchor_date="2027-01-15")},
     "dataset small seed 7 generator 1 (not small seed 42 generator 1)"),
    ({"dataset": results.DatasetInfo(preset="small", seed=42, generator_version=2,
                                     anchor_date="2027-01-15")},
     "dataset small seed 42 generator 2 (not small seed 42 generator 1)"),
])
def test_runs_that_differ_are_refused_naming_the_difference(runs_dir, store, update,
                                                             difference):
    a = make_run(runs_dir, seed=1)
    b = make_run(runs_dir, seed=2, **update)
    with pytest.raises(ConfigError) as info:
        baselines.save(store, "main", [a, b])
    assert str(info.value) == (
        "runs of one baseline must share scenario, shape, users, dataset, faults: run "
        f"20270115T080000Z-mixed-optimized-2 differs from 20270115T080000Z-mixed-optimized-1 "
        f"in {difference}")
    assert not store.exists()


def test_every_difference_is_named(runs_dir, store):
    a = make_run(runs_dir, seed=1)
    b = make_run(runs_dir, seed=2, users=5, faults="flaky")
    with pytest.raises(ConfigError, match=r"in users 5 \(not 10\); faults flaky \(not healthy\)$"):
        baselines.save(store, "main", [a, b])


def test_what_may_differ_between_rounds(runs_dir, store):
    """The dataset's anchor date, commit, profile and duration are not refused."""
    a = make_run(runs_dir, seed=1)
    b = make_run(runs_dir, seed=2, git_commit="1" * 40, duration_s=30.0,
                 dataset=results.DatasetInfo(preset="small", seed=42, generator_version=1,
                                             anchor_date="2027-02-01"))
    assert len(baselines.save(store, "main", [a, b]).runs) == 2


# ---------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["", "a/b", "../x", ".hidden", "..", ".", "a b", "a\\b",
                                  "-rf", "é", "x" * 101, "bench", "policy.toml", "a\nb", "main\n"])
def test_bad_names_are_refused(runs_dir, store, name):
    run = make_run(runs_dir)
    with pytest.raises(ConfigError, match="^invalid baseline name "):
        baselines.save(store, name, [run])
    assert not store.exists()
    with pytest.raises(ConfigError, match="^invalid baseline name "):
        baselines.load(store, name)
    with pytest.raises(ConfigError, match="^invalid baseline name "):
        baselines.remove(store, name)


@pytest.mark.parametrize("name", ["main", "v1.2", "pre_cache-2027.01", "A", "x" * 100])
def test_good_names(runs_dir, store, name):
    assert baselines.save(store, name, [make_run(runs_dir)]).name == name
    assert (store / name / "baseline.json").is_file()


# ---------------------------------------------------------------- run references


def test_resolve_run_by_id_path_and_latest(runs_dir, tmp_path):
    a = make_run(runs_dir, seed=1)
    b = make_run(runs_dir, seed=2)
    assert baselines.resolve_run(a.name, runs_dir) == runs_dir / a.name
    assert baselines.resolve_run(str(b), runs_dir) == b
    elsewhere = make_run(tmp_path / "elsewhere")
    assert baselines.resolve_run(str(elsewhere), runs_dir) == elsewhere
    os.symlink(os.path.relpath(b, runs_dir.parent), runs_dir.parent / "latest")
    assert baselines.resolve_run("latest", runs_dir) == b.resolve()


def test_resolve_run_failures(runs_dir, tmp_path):
    runs_dir.mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"^no latest run \(.*reports/latest does not exist\)$"):
        baselines.resolve_run("latest", runs_dir)
    os.symlink("runs/gone", runs_dir.parent / "latest")
    with pytest.raises(ConfigError, match=r"^no latest run \(.*reports/latest points to a run "
                                          r"that is gone\)$"):
        baselines.resolve_run("latest", runs_dir)
    with pytest.raises(ConfigError, match=r"^no run 'nope': neither a run id in .* nor a "
                                          r"directory$"):
        baselines.resolve_run("nope", runs_dir)
    (tmp_path / "plain").mkdir()
    with pytest.raises(ConfigError, match=r"plain is not a run directory \(no result.json\)$"):
        baselines.resolve_run(str(tmp_path / "plain"), runs_dir)
    (runs_dir / "half").mkdir()
    with pytest.raises(ConfigError, match=r"half is not a run directory \(no result.json\)$"):
        baselines.resolve_run("half", runs_dir)


def test_resolve_a_baseline_by_name_or_path(runs_dir, store, tmp_path):
    run = make_run(runs_dir)
    baselines.save(store, "main", [run])
    assert baselines.resolve("main", store) == store / "main"
    assert baselines.resolve(str(store / "main"), store) == store / "main"
    assert baselines.resolve(str(run), store) == run  # a run directory as a baseline
    with pytest.raises(ConfigError, match=r"^no baseline 'other' in .* \(have: main\)$"):
        baselines.resolve("other", store)
    with pytest.raises(ConfigError, match=r"is neither a baseline nor a run directory$"):
        baselines.resolve(str(tmp_path / "nowhere" / "x"), store)


def test_the_saved_baseline_compares_like_the_run(runs_dir, store):
    """What the gate reads from a baseline is what it would read from the run itself."""
    run = make_run(runs_dir)
    baselines.save(store, "main", [run])
    from_store = baselines.load(store, "main").runs[0]
    from_run = baselines.load(run).runs[0]
    assert from_store[0] == from_run[0]
    assert from_store[1].entries == from_run[1].entries
