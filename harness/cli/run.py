"""`harness run` and `harness runs`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from harness.cli import (
    DatasetOpt,
    DbUrlOpt,
    FaultsOpt,
    PaceScaleOpt,
    SeedOpt,
    SpawnRateOpt,
    StateOpt,
    TargetWorkersOpt,
    UsersOpt,
    WarmupOpt,
    WorkersOpt,
    app,
    err,
    stdout,
)
from harness.cli.gate import AllowOpt, PolicyOpt, StoreOpt
from harness.errors import HarnessError, RunFailed, UsageError
from harness.model.result import RunResult
from harness.run.progress import Progress
from harness.stack.stack import StackConfig

DEFAULT_TRACE_SAMPLING = 0.1
"""`--trace` without `--trace-sampling`: the sampling whose overhead docs/tracing-notes.md
measures (a fully sampled run writes tens of MB of spans a minute)."""

ABORT_ON_HELP = (
    "Stop the run early when a threshold stays breached (repeatable; the first to fire "
    "wins), as k6's abortOnFail: METRIC[:ENDPOINT]>THRESHOLD (or <), then optionally "
    "'for DURATION' (none: the first breach fires), e.g. "
    "'p95:/api/v1/dashboard/overview>500ms for 30s' or 'errors>5% for 10s'. Metrics: "
    "p50, p90, p95, p99, max (ms or s), errors (% of requests failed), rps; ENDPOINT is "
    "'GET /route' or a bare route, none means all requests. Judged every second on the "
    "last 5 s of requests, in the measured phase only (never during --warmup); a span "
    "with no requests to the endpoint neither breaches nor clears. A fired threshold "
    "stops Locust as a normal end does, records the run as aborted with the reason in "
    "result.json (run.aborted), skips the gate and exits 1.")


CHAOS_HELP = (
    "Inject faults during the measured window, comma-separated KIND@START[:DURATION] "
    "(times from the window's start): db-disconnect@30s (terminate the service's "
    "database sessions), db-restart@30s (restart the embedded server), db-pause@30s:5s "
    "(freeze it), target-kill@40s (SIGKILL a uvicorn worker; a single-worker target is "
    "started again), stub:PRESET@10s:20s (an ElevenLabs stub preset for a window). Each "
    "fault is an event in result.json (chaos) with its recovery figures; a fault is "
    "never a harness failure.")


class RunAborted(HarnessError):
    """A run stopped by an `--abort-on` threshold: exit 1 (DESIGN.md), like a failed
    gate, because the service under load broke a limit the user set."""

    exit_code = 1
    label = "aborted"


@app.command("run")
def run(
    scenario: Annotated[str, typer.Option(help="dashboard | agents | writer | mixed | "
                                                "upstream_faults | healthz")] = "mixed",
    profile: Annotated[str, typer.Option(
        help="optimized | naive, or both as 'optimized,naive': one run each, then a "
             "side-by-side table")] = "optimized",
    users: UsersOpt = 50,
    spawn_rate: SpawnRateOpt = 10.0,
    duration: Annotated[str, typer.Option(help="Measured time, e.g. 60s, 2m.")] = "60s",
    warmup: WarmupOpt = "10s",
    dataset: DatasetOpt = "small",
    seed: SeedOpt = 42,
    workers: WorkersOpt = 1,
    remote_workers: Annotated[int, typer.Option(
        help="Extra workers expected from other machines (harness worker).")] = 0,
    master_bind_host: Annotated[str, typer.Option(
        help="Where the Locust master and the target service listen: 0.0.0.0 (every "
             "interface) or this machine's address for remote workers.")] = "127.0.0.1",
    master_bind_port: Annotated[int, typer.Option(
        help="The Locust master's port (0: a free one); fix it to open a firewall for "
             "remote workers.")] = 0,
    advertise_host: Annotated[str | None, typer.Option(
        metavar="ADDRESS",
        help="The address other machines reach this one at: remote workers are told to "
             "connect to the master and send requests to the target there. Default: "
             "--master-bind-host, or with 0.0.0.0 this machine's primary IPv4 address.")] = None,
    target_workers: TargetWorkersOpt = 1,
    port: Annotated[int, typer.Option(help="Target port (0: a free one).")] = 0,
    target_cpus: Annotated[str | None, typer.Option(
        help="Pin target and stub to these CPUs (e.g. 0 or 0-1).")] = None,
    locust_cpus: Annotated[str | None, typer.Option(
        help="Pin the Locust processes to these CPUs.")] = None,
    pace_scale: PaceScaleOpt = 1.0,
    faults: FaultsOpt = "healthy",
    shape: Annotated[str | None, typer.Option(help="steady | ramp | spike | soak")] = None,
    database_url: DbUrlOpt = None,
    out: Annotated[Path, typer.Option(help="Reports directory (runs/<id>/ inside).")] = Path(
        "reports"),
    state_dir: StateOpt = Path(".harness"),
    baseline: Annotated[str | None, typer.Option(
        help="Gate the run against this baseline (name in --store, or a directory).")] = None,
    policy: PolicyOpt = None,
    allow_mismatch: AllowOpt = False,
    store: StoreOpt = Path("baselines"),
    trace: Annotated[bool, typer.Option(
        "--trace", help="Trace the run: the target exports spans into the run directory "
                        "(spans.jsonl), every request carries a client-made W3C traceparent, "
                        "and result.json gets the slowest traces' breakdown.")] = False,
    trace_sampling: Annotated[float | None, typer.Option(
        help="Share of requests traced (0..1; implies --trace). Default with --trace: "
             "0.1.")] = None,
    trace_interleave: Annotated[str | None, typer.Option(
        metavar="DURATION",
        help="Measure tracing's own cost in this run: the clients sample only in every "
             "other block of this length (e.g. 10s) and nothing between; result.json's "
             "trace_overhead compares the two arms' latency quantiles (with intervals) "
             "and the target's CPU per request. Implies --trace.")] = None,
    trace_guard: Annotated[str, typer.Option(
        metavar="DURATION", help="The first seconds of each interleave block left out of "
                                 "that comparison (the exporter's spill; an "
                                 "interleaved run exports every second).")] = "2s",
    rounds: Annotated[int, typer.Option(
        help="Repeat the run this many times as one run set (a baseline of rounds; "
             "5+ rounds a side compare run-level values).")] = 1,
    abort_on: Annotated[list[str] | None, typer.Option(
        "--abort-on", metavar="SPEC", help=ABORT_ON_HELP)] = None,
    chaos: Annotated[str | None, typer.Option(
        "--chaos", metavar="SPEC", help=CHAOS_HELP)] = None,
    results_store: Annotated[str | None, typer.Option(
        "--results-store", envvar="HARNESS_STORE", metavar="URL|DIR",
        help="Push every finished run into this results store after its report "
             "(postgresql://user@host:port/db[?schema=NAME] or a directory; the run's own "
             "directory under --out is a folder store already). Checked before the run "
             "starts; a push that fails afterwards is one line and keeps the exit code.")] = None,
) -> list[Path]:
    """Run a measured load test end to end and write the run directory (and gate it).

    Returns the run directories (for `harness calibrate`, which calls it)."""
    from dataclasses import replace

    from harness import baselines
    from harness.analysis.abort import parse_specs
    from harness.cli.gate import GateFailed, load_policy
    from harness.model.chaos import parse_chaos
    from harness.outputs.gate_table import gate_table
    from harness.outputs.tables import run_table, side_by_side
    from harness.run import gate
    from harness.run.config import RunConfig, parse_duration
    from harness.run.runner import Run
    from harness.stack.process import parse_cpus

    stack = StackConfig(dataset=dataset, seed=seed, database_url=database_url,
                        state_dir=state_dir, port=port, target_workers=target_workers,
                        faults=faults, target_cpus=parse_cpus(target_cpus),
                        bind_host=master_bind_host, advertise_host=advertise_host)
    if trace_sampling is None and (trace or trace_interleave is not None):
        trace_sampling = DEFAULT_TRACE_SAMPLING
    interleave_s = _whole_seconds("--trace-interleave", trace_interleave)
    guard_s = _whole_seconds("--trace-guard", trace_guard)
    thresholds = parse_specs(abort_on or [])  # a bad spec is exit 2 before anything starts
    faults_of_run = tuple(parse_chaos(chaos)) if chaos is not None else ()
    configs = []
    for name in [p.strip() for p in profile.split(",")]:
        config = RunConfig(scenario=scenario, shape=shape, users=users, spawn_rate=spawn_rate,
                           duration_s=parse_duration(duration), warmup_s=parse_duration(warmup),
                           workers=workers, remote_workers=remote_workers,
                           master_bind_port=master_bind_port, pace_scale=pace_scale,
                           locust_cpus=parse_cpus(locust_cpus), out=out,
                           stack=replace(stack, profile=name), trace_sampling=trace_sampling,
                           trace_interleave_s=interleave_s, trace_guard_s=guard_s or 0,
                           abort_on=thresholds, chaos=faults_of_run)
        config.validate()  # every profile before the first run starts
        configs.append(config)
    # a baseline or policy that cannot be used is exit 2 now, not after the run
    against = baselines.load(baselines.resolve(baseline, store)) if baseline else None
    rules = load_policy(policy, store) if baseline else None
    if rounds < 1:
        raise UsageError("--rounds must be at least 1")
    results = _results_store(results_store, out)  # unreachable: exit 2 before the run
    finished, failed, directories = [], None, []
    for config in configs:  # one after another: never two stacks on one machine at once
        run_set = []
        for n in range(rounds):
            with Progress(err) as progress:
                if rounds > 1:
                    progress.phase(f"round {n + 1} of {rounds} ({config.profile})")
                outcome = Run(config, progress).execute()
                progress.phase("writing the run record")
                result = _record(outcome)
            stdout.print(run_table(result))
            stdout.print(f"run directory: {outcome.run_dir}")
            if outcome.error is not None:
                raise outcome.error
            if outcome.aborted is not None:  # cut short: neither gated nor run again
                _report(outcome.run_dir, store)
                _push(results, outcome.run_dir)
                raise RunAborted(f"{outcome.aborted.message()} (record: {outcome.run_dir})")
            finished.append(result)
            run_set.append(outcome.run_dir)
            directories.append(outcome.run_dir)
        if against is not None:  # the rounds of one configuration are one side
            verdict = gate.judge(gate.read_runs(run_set), against, rules, allow_mismatch)
            gate.write(verdict, run_set[-1], result)
            stdout.print(gate_table(verdict))
            failed = failed if verdict.exit_code == 0 else verdict
        for run_dir in run_set:  # after the gate, so the page shows its verdict
            _report(run_dir, store)
            _push(results, run_dir)
        if rounds > 1:
            stdout.print(f"run set of {rounds} rounds: " + " ".join(d.name for d in run_set)
                         + f" (save it: harness baseline save {' '.join(d.name for d in run_set)}"
                         " --name NAME)")
    if len(configs) > 1:
        stdout.print(side_by_side(finished))
    if failed is not None:
        raise GateFailed(failed)
    return directories


def _report(run_dir: Path, store: Path) -> None:
    """`report.html` in the run directory (against the baseline its gate.json judged, when
    there is one). A page that cannot be rendered is one line: the run and its record stand."""
    from harness.outputs.report import write_report

    try:
        path = write_report(run_dir, store=store)
    except Exception as exc:  # noqa: BLE001 - the measurements are written; say so, go on
        err.print(f"no report: {exc} (render it later: harness report {run_dir})",
                  highlight=False, soft_wrap=True)
        return
    err.print(f"[dim]•[/dim] report: {path} ({path.stat().st_size / 1e6:.2f} MB)",
              highlight=False)


def _results_store(location: str | None, out: Path):
    """The results store to push into, checked now (None: no push asked, or the store is
    the run directory's own folder, where the run already is)."""
    if not location:
        return None
    from harness.store import open_store
    from harness.store.folder import FolderStore

    target = open_store(location)
    if isinstance(target, FolderStore) and target.root.resolve() == (out / "runs").resolve():
        return None
    target.check()
    return target


def _push(results, run_dir: Path) -> None:
    """Push a finished run into the results store. A failure is one line on stderr and
    does not change the exit code (as k6 treats a failing output): the gate's verdict is
    what CI acts on, and the run is complete on disk; the line says how to push it later."""
    if results is None:
        return
    try:
        meta = results.push(run_dir)
    except Exception as exc:  # noqa: BLE001 - the run and its record stand; say so, go on
        err.print(f"not pushed to the results store: {exc} (the run is complete in "
                  f"{run_dir}; push it later: harness store push {run_dir} --store "
                  f"{results.location})", highlight=False, soft_wrap=True)
        return
    err.print(f"[dim]•[/dim] pushed {meta.run_id} to the results store {results.location}",
              highlight=False)


def _record(outcome) -> RunResult:
    """Build and write the run record; any failure is one line (the run's own error first)."""
    from harness.run import record

    try:
        started = time.perf_counter()
        result = record.collect(outcome.run_dir)
        written = record.write(result, outcome.run_dir)
        err.print(f"[dim]•[/dim] run record written in {time.perf_counter() - started:.2f}s: "
                  + ", ".join(f"{p.name} {p.stat().st_size / 1e6:.2f} MB" for p in written),
                  highlight=False)
        return result
    except Exception as exc:  # any failure here is one line, exit 3
        if outcome.error is not None:  # what ended the run matters more
            err.print(f"no run record: {exc}", highlight=False, soft_wrap=True)
            raise outcome.error from None
        raise RunFailed(f"the run record could not be written: {exc} "
                        f"(measurements kept in {outcome.run_dir})") from exc


@app.command("runs")
def runs(out: Annotated[Path, typer.Option(help="Reports directory.")] = Path("reports")) -> None:
    """List past runs, newest first."""
    from harness.outputs.tables import runs_table
    from harness.run.layout import list_runs

    stdout.print(runs_table(list_runs(out / "runs"), str(out / "runs")))



def _whole_seconds(flag: str, text: str | None) -> int | None:
    """A duration option that must be whole seconds (interleave blocks align to the epoch's
    seconds, as the per-second histograms do)."""
    from harness.run.config import parse_duration

    if text is None:
        return None
    seconds = parse_duration(text)
    if seconds != int(seconds):
        raise UsageError(f"{flag} must be whole seconds, not {text!r}")
    return int(seconds)
