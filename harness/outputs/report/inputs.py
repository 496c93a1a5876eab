"""The report's edge: read a run directory (and a baseline) into `ReportInputs`, write the page.

Everything the page shows comes from files `harness run` and the gate already wrote:
`result.json` and its interval log (`windows.hlog`), `gate.json` when the run was
gated, and `dataset.json`, read only for the API keys that must never reach a report
(they are test keys, but a report is shared: attached to CI runs, pasted in chats).
The preparation (`prepare`, `series`, `distribution`) and the rendering (`render`) are
pure functions of `ReportInputs`, so `--compare`, `--history` and the `harness ab`
page can reuse them with inputs read from elsewhere (a results store, two run sets).

Bad input is a `ConfigError` (exit 2 through the CLI), raised before anything is
written; the page is written atomically, so a reader never sees half a report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from harness import baselines
from harness.errors import ConfigError
from harness.model import intervals
from harness.model import result as results
from harness.model.files import load_json, write_text
from harness.model.gate import GateResult
from harness.model.intervals import IntervalLog
from harness.model.result import RunResult
from harness.outputs.report import sparse
from harness.run import layout

REPORT_FILE = "report.html"


@dataclass
class Side:
    """One side of the page: a run's record and its interval log (None: a v1 record)."""

    result: RunResult
    log: IntervalLog | None
    label: str = "current"
    log_text: str | None = None
    """The interval log file's text, embedded in the page as it is (None: not read)."""
    spans: dict[str, list] = field(default_factory=dict, repr=False)
    """Trace id -> its spans (`harness.analysis.traces.Span`), for the slowest traces of a
    traced run (read from `spans.jsonl`; empty when untraced or the file is gone)."""
    cache: dict = field(default_factory=dict, repr=False, compare=False)
    """Decoded windows per endpoint, shared by the sections that read them (each
    histogram of the log is decoded once per page)."""


@dataclass
class Comparison:
    """What a `--compare` page (and `harness ab`'s) adds to the sections: who A and B
    are, whether the verdicts are paired by round, and each round's own changes."""

    a_label: str
    """A's name on the page, e.g. `A: profile:optimized` (what the side is)."""
    b_label: str
    a_detail: str = ""
    """What else identifies a side: runs, profile, commit."""
    b_detail: str = ""
    paired: bool = False
    """The verdicts come from paired rounds (an ab job's gate), not one run set against
    another."""
    job: str | None = None
    """The ab job's id, when the page is one job's."""
    rounds: list[dict] = field(default_factory=list)
    """Per complete round: `{"round", "a", "b"}` (run ids) and `"changes"` (check name ->
    B against A in that round alone, `AbRecord.round_changes`)."""


@dataclass
class ReportInputs:
    """What one page is made of; every field already loaded and validated.

    The single-run page: `current` against `baseline`. The compare page: B's runs
    (`current`, then `current_rounds`) against A's (`baseline`), `comparison` set."""

    current: Side
    baseline: list[Side] = field(default_factory=list)
    """The baseline's runs (rounds), empty when there is none."""
    current_rounds: list[Side] = field(default_factory=list)
    """More runs of the current side (a run set's rounds after the first); the sections
    pool them with `current` (`currents`)."""
    comparison: Comparison | None = None
    baseline_name: str | None = None
    gate: GateResult | None = None
    """The gate's decision: the run's `gate.json`, or one made for the page."""
    secrets: frozenset[str] = frozenset()
    """Strings that must not appear in the page (the dataset manifest's API keys)."""
    notes: list[str] = field(default_factory=list)
    """What the reader should know about how the page was made (a refused comparison...)."""

    @property
    def currents(self) -> list[Side]:
        """Every run of the current side, first the one `current` names."""
        return [self.current, *self.current_rounds]

    @property
    def labels(self) -> tuple[str, str]:
        """(baseline, current) as the charts' legends name them: ("baseline", "") on a
        single-run page (its own series are plain "p95"), ("A", "B") on a compare page."""
        return ("A", "B") if self.comparison else ("baseline", "")


def secrets_of(path: Path) -> set[str]:
    """The `api_key` values of a dataset manifest (any depth); none when it is absent."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    found: set[str] = set()
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if "key" in str(key).lower() and isinstance(value, str) and len(value) >= 8:
                    found.add(value)
                else:
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return found


def slow_spans(run_dir: Path, result: RunResult) -> dict[str, list]:
    """The spans of the record's slowest traces (trace id -> spans), from `spans.jsonl`."""
    wanted = {t.trace_id for e in (result.traces.endpoints.values() if result.traces else ())
              for t in e.slowest}
    name = result.traces.spans_file if result.traces else layout.SPANS
    path = run_dir / name
    if not wanted or "/" in name or name in (".", "..") or not path.is_file():
        return {}  # nothing to show, a name outside the run directory, or the file is gone
    from harness.run.record import read_spans

    out: dict[str, list] = {}
    for span in read_spans(path)[0]:
        if span.trace_id in wanted:
            out.setdefault(span.trace_id, []).append(span)
    return out


def read_side(run_dir: Path, label: str, traces: bool | None = None) -> Side:
    """A run directory's record and interval log, validated as `baselines.load` does
    (ConfigError naming the file), the log's text kept for the page's data and its raw
    histograms decoded once, fast (`sparse.parse_log`), for the charts; `traces`: read
    the slowest traces' spans too (default: for the "current" side)."""
    result = results.load(run_dir / layout.RESULT)
    spans = slow_spans(run_dir, result) if (label == "current" if traces is None
                                            else traces) else {}
    if result.windows is None or not result.windows.interval_log:
        return Side(result, None, label, None, spans)
    rel = PurePosixPath(result.windows.interval_log)
    if rel.is_absolute() or ".." in rel.parts:
        raise ConfigError(f"{run_dir / layout.RESULT}: interval log {str(rel)!r} is outside "
                          "the run directory")
    path = run_dir / rel
    text = intervals.read_text(path)
    log, decoded = sparse.parse_log(text, str(path))
    side = Side(result, log, label, text, spans)
    side.cache["decoded"] = decoded
    return side


def read_baseline(path: Path) -> tuple[str, list[Path]]:
    """A baseline folder's name and run directories (a run directory: itself)."""
    if not (path / baselines.BASELINE_JSON).is_file():
        return path.name, [path]
    described = baselines.read_baseline(path)
    dirs = []
    for run_id in described.runs:
        if "/" in run_id or run_id in ("", ".", "..") or \
                not (path / run_id / layout.RESULT).is_file():
            raise ConfigError(f"{path}: run {run_id!r} is listed in "
                              f"{baselines.BASELINE_JSON} but has no {run_id}/{layout.RESULT}")
        dirs.append(path / run_id)
    if not dirs:
        raise ConfigError(f"{path / baselines.BASELINE_JSON}: a baseline without runs")
    return described.name, dirs


def _read_gate(run_dir: Path, notes: list[str]) -> GateResult | None:
    gate_path = run_dir / layout.GATE
    if not gate_path.exists():
        return None
    try:
        return load_json(gate_path, GateResult, f"no gate at {gate_path}")
    except ConfigError as exc:
        notes.append(f"{layout.GATE} is unreadable and was ignored: {exc}")
        return None


def _gated_baseline(gate: GateResult | None, store: Path, notes: list[str]) -> Path | None:
    """The baseline the run's gate judged against, when it is in the store: shown beside
    the run without `--baseline` (`harness run --baseline NAME` then `harness report`)."""
    if gate is None or not gate.baseline.label.startswith("baseline "):
        return None
    name = gate.baseline.label.removeprefix("baseline ")
    try:
        path = baselines.resolve(name, store)
        _, dirs = read_baseline(path)
    except ConfigError:
        notes.append(f"the gate compared with baseline {name!r}, which is not in {store}: "
                     "its figures are not shown beside this run's (give --baseline)")
        return None
    if [d.name for d in dirs] != gate.baseline.run_ids and \
            [results.load(d / layout.RESULT).run.run_id for d in dirs] != gate.baseline.run_ids:
        notes.append(f"baseline {name!r} in {store} is not the one the gate used (other runs): "
                     "its figures are not shown beside this run's")
        return None
    return path


def store_policy(store: Path):
    """The store's `policy.toml`, else the defaults (as `harness compare` does)."""
    from harness.model import policy as pol

    default = store / "policy.toml"
    return pol.load_policy(default) if default.exists() else pol.Policy()


def _judge(current: Side, baseline_path: Path, store: Path, notes: list[str]) -> GateResult:
    """The gate run now, with the store's policy, so `--baseline` alone shows a verdict."""
    from harness.run import gate as run_gate

    policy = store_policy(store)
    pair = [(current.result, current.log)]
    loaded = baselines.load(baseline_path)
    try:
        return run_gate.judge(pair, loaded, policy)
    except ConfigError as exc:
        notes.append(f"the gate refuses this comparison ({exc}); the figures below compare "
                     "anyway and the verdict is only indicative")
        return run_gate.judge(pair, loaded, policy, allow_mismatch=True)


def load_inputs(run_dir: Path, baseline: str | Path | None = None,
                store: Path = baselines.STORE) -> ReportInputs:
    """A run directory (and a baseline: a name in `store`, or a folder) as report inputs.

    The verdict is the run's `gate.json` when it judged this baseline (or no baseline was
    given: then the baseline it judged is shown when the store has it); otherwise, with a
    baseline, the gate is run for the page."""
    if not (run_dir / layout.RESULT).is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no {layout.RESULT})")
    current = read_side(run_dir, "current")
    notes: list[str] = []
    gate = _read_gate(run_dir, notes)
    path = baselines.resolve(baseline, store) if baseline is not None \
        else _gated_baseline(gate, store, notes)
    name, sides = None, []
    secrets = secrets_of(layout.dataset_json(run_dir))
    if path is not None:
        name, dirs = read_baseline(path)
        sides = [read_side(d, f"baseline {name}") for d in dirs]
        for d in {path, *dirs}:
            secrets |= secrets_of(layout.dataset_json(d))
        if gate is None or gate.baseline.run_ids != [s.result.run.run_id for s in sides]:
            gate = _judge(current, path, store, notes)
    return ReportInputs(current=current, baseline=sides, baseline_name=name, gate=gate,
                        secrets=frozenset(secrets), notes=notes)


def write_report(run_dir: Path, baseline: str | Path | None = None, out: Path | None = None,
                 store: Path = baselines.STORE) -> Path:
    """Render `run_dir`'s report (against `baseline` when given) to `out`
    (default `RUN/report.html`) and return its path: what `harness report` and the end
    of every `harness run` call. ConfigError on bad input, and then nothing is written."""
    from harness.outputs.report.render import render_report

    inputs = load_inputs(Path(run_dir), baseline, store)
    html = render_report(inputs)
    target = Path(out) if out is not None else Path(run_dir) / REPORT_FILE
    write_text(target, html)
    return target
