"""`harness alerts export|grafana`: the baseline and the policy as monitoring's rules.

Both commands derive one `Thresholds` (`harness.analysis.thresholds.compute`)
from a stored baseline and the policy and render it: Prometheus rules with
their promtool unit tests (and a Sloth spec), or a Grafana dashboard. Bad
input (an unknown baseline, a policy that does not parse, a baseline without
endpoint results) is one line and exit 2, with nothing written.
"""

from __future__ import annotations

import math
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from harness import baselines
from harness.analysis import slo
from harness.analysis import thresholds as th
from harness.cli import app, stdout
from harness.cli.gate import PolicyOpt, StoreOpt, load_policy
from harness.errors import UsageError
from harness.model.files import write_text
from harness.outputs import alerts as rules_out
from harness.outputs import grafana as grafana_out
from harness.outputs import sloth as sloth_out

alerts_app = typer.Typer(no_args_is_help=True,
                         help="Prometheus rules and a Grafana dashboard from a baseline.")
app.add_typer(alerts_app, name="alerts")

BaselineOpt = Annotated[str | None, typer.Option(
    "--baseline", metavar="NAME|PATH",
    help="Baseline name in --store, or its folder (default: the store's only baseline).")]


class Format(StrEnum):
    prometheus = "prometheus"
    sloth = "sloth"


def _baseline_ref(ref: str | None, store: Path) -> str:
    if ref is not None:
        return ref
    names = [name for name, _ in baselines.list_baselines(store)]
    if len(names) == 1:
        return names[0]
    have = f"it has {', '.join(names)}" if names else "it has none"
    raise UsageError(f"name the baseline with --baseline ({store}: {have})")


def derive(ref: str | None, store: Path, policy: Path | None,
           for_scale: float = 1.0) -> tuple[slo.Thresholds, str]:
    """The thresholds of a stored baseline under the policy, and where the policy came from."""
    from target_service.telemetry import LATENCY_BUCKETS  # the service's exported buckets

    loaded = baselines.load(baselines.resolve(_baseline_ref(ref, store), store))
    chosen = load_policy(policy, store)
    source = str(policy) if policy is not None else (
        str(store / "policy.toml") if (store / "policy.toml").exists() else "the default policy")
    found = th.compute(loaded.results, chosen, LATENCY_BUCKETS, baseline=loaded.baseline.name,
                       for_scale=for_scale)
    return found, source


def test_path(output: Path) -> Path:
    """`alerts.yml` -> `alerts_test.yml`, beside it."""
    return output.with_name(f"{output.stem}_test{output.suffix or '.yml'}")


def sloth_path(output: Path) -> Path:
    """`alerts.yml` -> `alerts.sloth.yml`, beside it."""
    return output.with_name(f"{output.stem}.sloth{output.suffix or '.yml'}")


def _notes(found: slo.Thresholds) -> None:
    for note in found.notes:
        print(f"note: {note}", file=sys.stderr)


@alerts_app.command("export")
def export_cmd(
    output: Annotated[Path, typer.Option(
        "-o", "--output", help="The rule file; its promtool tests go beside it "
                               "(NAME_test.yml), and with --format sloth the spec "
                               "(NAME.sloth.yml).")] = Path("alerts.yml"),
    baseline: BaselineOpt = None,
    policy: PolicyOpt = None,
    fmt: Annotated[Format, typer.Option(
        "--format", help="prometheus: rules and promtool tests; sloth: also a Sloth "
                         "prometheus/v1 spec of the SLOs.")] = Format.prometheus,
    for_scale: Annotated[float, typer.Option(
        "--for-scale", metavar="X",
        help="Multiply every alert's `for` (policy \\[alerts]) by X; 0 fires on the first "
             "breaching evaluation. For tests and demos: production keeps 1.")] = 1.0,
    store: StoreOpt = Path("baselines"),
) -> None:
    """Prometheus alerting rules (SLO burn rates, thresholds) and their promtool tests.

    Exit 0 written; 2 bad input (unknown baseline, a policy that does not parse,
    a baseline without endpoint results), nothing written."""
    if not math.isfinite(for_scale) or for_scale < 0:
        raise UsageError(f"--for-scale must be 0 or more, not {for_scale}")
    found, source = derive(baseline, store, policy, for_scale)
    tests = test_path(output)
    files = {output: rules_out.rules(found, source),
             tests: rules_out.unit_tests(found, _relative(output, tests))}
    if fmt is Format.sloth:
        files[sloth_path(output)] = sloth_out.sloth(found, source)
    for path, text in files.items():
        write_text(path, text)
    _notes(found)
    alerts = len(found.windows) * len(found.slos) + len(found.thresholds)
    stdout.print(f"{output}: {len(found.slos)} SLOs ({_endpoints(found)} endpoints), "
                 f"{alerts} alerts from baseline {found.baseline}; "
                 f"check with `promtool check rules {output}` and "
                 f"`promtool test rules {tests}`", highlight=False, soft_wrap=True)
    if fmt is Format.sloth:
        stdout.print(f"{sloth_path(output)}: Sloth {sloth_out.VERSION} spec of the same SLOs",
                     highlight=False, soft_wrap=True)


@alerts_app.command("grafana")
def grafana_cmd(
    output: Annotated[Path, typer.Option(
        "-o", "--output", help="The dashboard JSON (provisionable; uid "
                               f"{grafana_out.UID}).")] = Path("dashboard.json"),
    baseline: BaselineOpt = None,
    policy: PolicyOpt = None,
    store: StoreOpt = Path("baselines"),
) -> None:
    """A Grafana dashboard of the series the alerts watch, with their thresholds drawn.

    Exit 0 written; 2 bad input, nothing written."""
    found, _ = derive(baseline, store, policy)
    write_text(output, grafana_out.grafana(found))
    _notes(found)
    stdout.print(f"{output}: dashboard {grafana_out.UID} with "
                 f"{len(found.slos) + len(found.thresholds)} panels from baseline "
                 f"{found.baseline}", highlight=False, soft_wrap=True)


def _endpoints(found: slo.Thresholds) -> int:
    return len({s.endpoint for s in found.slos})


def _relative(rules: Path, tests: Path) -> str:
    """The rule file as the test file names it (they sit side by side)."""
    return rules.name if rules.parent == tests.parent else str(rules.resolve())
