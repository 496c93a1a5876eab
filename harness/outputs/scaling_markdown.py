"""`scaling.md`: how each endpoint's p95 grows with the dataset, one table per profile.

Runs of one scenario on several dataset presets (`harness run --dataset ...`, each
profile, any number of rounds) are grouped by profile and dataset; a cell is the
mean of the runs' client-side p95 with the range over runs beside it when there
were several (the spread between rounds is the noise a reader should weigh a step
against), and the last column is the growth from the smallest dataset to the
largest. `harness report --scaling RUN...` writes it with `scaling_svg`'s chart;
docs/scaling.md holds the figures it produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.errors import UsageError
from harness.model.endpoint import short_label
from harness.model.result import RunResult
from harness.outputs.numbers import ms
from target_service.db.seed_data import PRESETS

TOTAL = "all"


@dataclass
class Cell:
    """One endpoint on one dataset and profile: each run's p95 (ms) and request count."""

    p95_ms: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    failures: int = 0

    @property
    def mean(self) -> float:
        return sum(self.p95_ms) / len(self.p95_ms)


@dataclass
class Scaling:
    """The runs, grouped: profile -> endpoint -> dataset -> Cell, datasets smallest first."""

    scenario: str
    datasets: list[str]
    cells: dict[str, dict[str, dict[str, Cell]]]
    run_ids: list[str]
    commits: list[str]

    def series(self, profile: str, endpoint: str) -> list[float | None]:
        """The endpoint's mean p95 on each dataset (None where it has no run)."""
        row = self.cells[profile].get(endpoint, {})
        return [row[d].mean if d in row else None for d in self.datasets]


def _order(preset: str) -> tuple[int, str]:
    names = list(PRESETS)
    return (names.index(preset) if preset in names else len(names), preset)


def build(results: Sequence[RunResult]) -> Scaling:
    """Group the runs; a UsageError when they cannot make one scaling table."""
    if len(results) < 2:
        raise UsageError("--scaling needs runs on at least two datasets")
    scenarios = {r.run.scenario for r in results}
    if len(scenarios) != 1:
        raise UsageError(f"--scaling: the runs are of different scenarios "
                         f"({', '.join(sorted(scenarios))}); one scenario's runs scale")
    datasets = sorted({r.run.dataset.preset for r in results}, key=_order)
    if len(datasets) < 2:
        raise UsageError(f"--scaling: every run is on dataset {datasets[0]!r}; "
                         "runs on at least two datasets are needed")
    cells: dict[str, dict[str, dict[str, Cell]]] = {}
    for r in results:
        per_endpoint = cells.setdefault(r.run.profile, {})
        rows = {**r.endpoints, TOTAL: r.totals}
        for key, e in rows.items():
            if e.latency_ms.p95 is None:
                continue
            cell = per_endpoint.setdefault(key, {}).setdefault(r.run.dataset.preset, Cell())
            cell.p95_ms.append(e.latency_ms.p95)
            cell.requests.append(e.count)
            cell.failures += sum(e.failures.values())
    commits = sorted({r.run.git_commit[:12] for r in results if r.run.git_commit})
    return Scaling(scenario=scenarios.pop(), datasets=datasets, cells=cells,
                   run_ids=[r.run.run_id for r in results], commits=commits)


def endpoints(s: Scaling, profile: str) -> list[str]:
    """The profile's endpoints, `all` last."""
    keys = sorted(k for k in s.cells[profile] if k != TOTAL)
    return keys + ([TOTAL] if TOTAL in s.cells[profile] else [])


def _cell(c: Cell | None) -> str:
    if c is None:
        return "–"
    text = ms(c.mean)
    if len(c.p95_ms) > 1:
        text += f" ({ms(min(c.p95_ms))}–{ms(max(c.p95_ms))})"
    if c.failures:
        text += f" ⚠ {c.failures:,} failed"
    return text


def _growth(s: Scaling, profile: str, endpoint: str) -> str:
    row = s.cells[profile].get(endpoint, {})
    first, last = s.datasets[0], s.datasets[-1]
    if first not in row or last not in row:
        return "–"
    return f"×{row[last].mean / row[first].mean:.1f}"


def _heading(preset: str) -> str:
    p = PRESETS.get(preset)
    if p is None:
        return preset
    calls = p.calls
    size = f"{calls / 1e6:g}M" if calls >= 1_000_000 else f"{calls / 1e3:g}k"
    return f"{preset} ({size} calls)"


def render(s: Scaling) -> str:
    """The Markdown: a table per profile, then which runs it came from."""
    out = [f"# p95 by dataset: `{s.scenario}`", ""]
    first, last = s.datasets[0], s.datasets[-1]
    for profile in sorted(s.cells):
        rounds = max((len(c.p95_ms) for row in s.cells[profile].values()
                      for c in row.values()), default=0)
        out += [f"## {profile}", "",
                f"Client-side p95 in ms, the mean of {rounds} run(s) per dataset"
                + (" (the range over runs in brackets)" if rounds > 1 else "") + ".", "",
                "| endpoint | " + " | ".join(_heading(d) for d in s.datasets)
                + f" | {last} / {first} |",
                "|---|" + "---:|" * (len(s.datasets) + 1)]
        for key in endpoints(s, profile):
            row = s.cells[profile][key]
            name = "**all requests**" if key == TOTAL else f"`{short_label(key)}`"
            out.append(f"| {name} | " + " | ".join(_cell(row.get(d)) for d in s.datasets)
                       + f" | {_growth(s, profile, key)} |")
        out.append("")
    out += [(f"Runs: {', '.join(f'`{r}`' for r in s.run_ids)}; commit "
            f"{', '.join(f'`{c}`' for c in s.commits) or 'unknown'}."), ""]
    return "\n".join(out)
