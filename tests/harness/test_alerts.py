"""`harness alerts export|grafana`: thresholds from a baseline and the policy, rendered as
Prometheus rules (checked and unit-tested by promtool), a Sloth spec and a Grafana
dashboard that agree, with every `le` one the running service really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from harness import baselines
from harness.analysis import thresholds as th
from harness.analysis.slo import LATENCY_ALERT, WORKBOOK, Thresholds, duration, le_label, number
from harness.errors import ConfigError
from harness.model import result as results
from harness.model.policy import Policy, load_policy, parse_policy
from harness.model.server import CacheStats, UpstreamStats
from harness.outputs import alerts, grafana, sloth
from target_service.telemetry import LATENCY_BUCKETS
from tests.builders import EndpointSpec, LogNormal, build_run
from tests.conftest import auth, running_app

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "baselines" / "policy.toml"
RUNBOOK = ROOT / "docs" / "runbook.md"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian: apt-get install prometheus; "
                             ".ci/run installs it)")

OVERVIEW = "GET /api/v1/dashboard/overview"
AGENTS = "GET /api/v1/agents"
AGENT = "GET /api/v1/agents/{agent_id}"
CALLS = "POST /api/v1/calls"


def built_result(**server_updates: object) -> results.RunResult:
    """A run of four endpoints with caches, ElevenLabs and a KPI view in its server side."""
    built = build_run({OVERVIEW: EndpointSpec(rps=20, latency_ms=LogNormal(8)),
                       AGENTS: EndpointSpec(rps=5, latency_ms=LogNormal(40)),
                       AGENT: EndpointSpec(rps=5, latency_ms=LogNormal(30),
                                           failures={"http_503": 0.02}),
                       CALLS: EndpointSpec(rps=1, latency_ms=LogNormal(12))},
                      seconds=20, warmup_s=2)
    server = built.result.server.model_copy(update={
        "caches": {
            "dashboard": CacheStats(hits=90, misses=10, stale_hits=0, evictions={},
                                            hit_ratio=0.9),
            "agents": CacheStats(hits=70, misses=20, stale_hits=10, evictions={},
                                         hit_ratio=0.8),
            "idle": CacheStats(hits=0, misses=0, stale_hits=0, evictions={},
                                       hit_ratio=None)},
        "upstream": UpstreamStats(
            logical_requests=100, attempts=110, retries={"server_error": 10},
            retry_rate=10 / 110, retry_amplification=1.1, failures={"timeout": 1},
            failure_rate=0.01, timeouts=1, fallbacks={}, latency_ms=None, circuit_open_max=0),
        "kpi_view": {"refreshes": 3.0, "staleness_max_s": 80.0, "change_to_visible_p95_s": 0.5},
        **server_updates})
    built.result = built.result.model_copy(update={"server": server})
    return built.result


@pytest.fixture(scope="module")
def result() -> results.RunResult:
    return built_result()


@pytest.fixture(scope="module")
def found(result) -> Thresholds:
    return th.compute([result], load_policy(POLICY), LATENCY_BUCKETS, baseline="main")


def save_baseline(store: Path, result: results.RunResult, name: str = "main") -> None:
    built = build_run({OVERVIEW: EndpointSpec(rps=2)}, seconds=4, warmup_s=1)
    built.result = result
    run = built.write(store.parent / "runs" / result.run.run_id)
    baselines.save(store, name, [run])


# ---------------------------------------------------------------- the thresholds


def test_le_labels_are_written_as_the_exporter_writes_them():
    assert [le_label(b) for b in LATENCY_BUCKETS] == \
        [floatToGoString(b) for b in LATENCY_BUCKETS]
    assert le_label(1.0) == "1.0" and le_label(0.5) == "0.5" and le_label(10) == "10.0"


def test_latency_threshold_is_the_percentile_with_its_tolerance_rounded_up_to_a_bucket(
        result, found):
    by = {(s.kind, s.endpoint): s for s in found.slos}
    for key in (OVERVIEW, AGENTS, AGENT, CALLS):
        slo = by[("latency", key)]
        p99 = result.endpoints[key].latency_ms.p99
        target = p99 * 1.25 / 1000
        assert slo.threshold_s == min(b for b in LATENCY_BUCKETS if b >= target), key
        assert slo.le == floatToGoString(slo.threshold_s)
        assert slo.objective == 0.99 and slo.budget == pytest.approx(0.01)
        assert f"p99 {p99:.3g} ms" in slo.baseline_text
        assert by[("errors", key)].objective == 0.999
    assert by[("errors", AGENT)].baseline == pytest.approx(0.02, abs=0.005)
    assert any("5xx share" in n and AGENT in n for n in found.notes)  # 2% > the 0.1% budget
    count = result.endpoints[OVERVIEW].count
    assert f"{OVERVIEW}: its p99 rests on {count} requests (10 beyond a p99 take 1000)" in \
        " ".join(found.notes)


def test_a_threshold_on_a_bucket_bound_stays_on_it_and_one_past_the_last_is_left_out():
    r = built_result()
    eps = {k: e.model_copy(update={"latency_ms": e.latency_ms.model_copy(update={"p99": ms})})
           for (k, e), ms in zip(sorted(r.endpoints.items()), (200.0, 9000.0, 80.0, 1.0),
                                 strict=True)}
    r = r.model_copy(update={"endpoints": eps})
    got = th.compute([r], Policy(), LATENCY_BUCKETS)
    les = {s.endpoint: s.le for s in got.slos if s.kind == "latency"}
    keys = sorted(r.endpoints)
    assert les[keys[0]] == "0.25"            # 200 ms x 1.25 = 0.25 exactly: that bucket
    assert keys[1] not in les                # 11.25 s: past the 10 s bucket
    assert any(keys[1] in n and "largest bucket" in n for n in got.notes)
    assert les[keys[2]] == "0.1" and les[keys[3]] == "0.0025"
    assert {s.endpoint for s in got.slos if s.kind == "errors"} == set(keys)


def test_tolerance_overrides_and_the_percentile_come_from_the_policy(result):
    policy = parse_policy(f'[alerts]\nlatency_percentile = "p95"\nlatency_objective = 0.95\n'
                          f'[endpoints."{OVERVIEW}"]\np95 = "+100%"\n'
                          '[caches.agents]\nhit_ratio = "-50%"\n')
    got = th.compute([result], policy, LATENCY_BUCKETS)
    slo = next(s for s in got.slos if s.kind == "latency" and s.endpoint == OVERVIEW)
    target = result.endpoints[OVERVIEW].latency_ms.p95 * 2 / 1000
    assert slo.threshold_s == min(b for b in LATENCY_BUCKETS if b >= target)
    assert slo.objective == 0.95
    agents = next(t for t in got.thresholds if t.labels == {"cache": "agents"})
    assert agents.value == pytest.approx(0.4)  # 0.8 x (1 - 50%)


def test_threshold_alerts_from_the_baseline_and_the_policy(found):
    by = {(t.alert, tuple(t.labels.values())): t for t in found.thresholds}
    assert by[("CacheHitRatioLow", ("dashboard",))].value == pytest.approx(0.87)  # -3pt override
    assert by[("CacheHitRatioLow", ("agents",))].value == pytest.approx(0.75)     # -5pt
    assert ("CacheHitRatioLow", ("idle",)) not in by                           # never looked up
    assert by[("ElevenLabsRetryAmplificationHigh", ())].value == pytest.approx(1.32)
    assert by[("ElevenLabsFailureRatioHigh", ())].value == pytest.approx(0.03)
    assert by[("ElevenLabsCircuitBreakerOpen", ())].value == 2
    assert by[("DbPoolSaturated", ())].value == 0.9
    assert by[("DbPoolWaiters", ())].value == 0
    assert by[("KpiViewStale", ())].value == pytest.approx(100.0)  # 80 s x (1 + 25%) > 60 s
    assert all(t.severity == "ticket" and t.for_s == 600 and t.window_s == 300
               for t in found.thresholds)
    assert "80 s" in by[("KpiViewStale", ())].baseline_text


def test_without_elevenlabs_requests_the_alerts_start_from_the_healthy_ideal():
    r = built_result(upstream=None, kpi_view={})
    got = th.compute([r], Policy(), LATENCY_BUCKETS)
    by = {t.alert: t for t in got.thresholds}
    assert by["ElevenLabsRetryAmplificationHigh"].value == pytest.approx(1.2)
    assert by["ElevenLabsFailureRatioHigh"].value == pytest.approx(0.02)
    assert "not measured" in by["ElevenLabsFailureRatioHigh"].baseline_text
    assert by["KpiViewStale"].value == 60
    assert any("no ElevenLabs request" in n for n in got.notes)


def test_several_runs_give_the_median(result):
    slower = result.model_copy(update={"endpoints": {
        k: e.model_copy(update={"latency_ms": e.latency_ms.model_copy(
            update={"p99": e.latency_ms.p99 * f})})
        for k, e in result.endpoints.items() for f in [3.0]}})
    got = th.compute([result, slower, slower], Policy(), LATENCY_BUCKETS)
    slo = next(s for s in got.slos if s.kind == "latency" and s.endpoint == OVERVIEW)
    assert slo.baseline == pytest.approx(result.endpoints[OVERVIEW].latency_ms.p99 * 3)
    assert "median of 3 runs" in slo.baseline_text


def test_for_scale_scales_every_for(result):
    got = th.compute([result], Policy(), LATENCY_BUCKETS, for_scale=0.5)
    assert {(s.page_for_s, s.ticket_for_s) for s in got.slos} == {(60, 450)}
    assert {t.for_s for t in got.thresholds} == {300}
    zero = th.compute([result], Policy(), LATENCY_BUCKETS, for_scale=0)
    assert {t.for_s for t in zero.thresholds} == {0}
    assert "for: 0s" in alerts.rules(zero) and "for: 2m" not in alerts.rules(zero)


def test_a_baseline_without_endpoint_results_is_a_config_error(result):
    with pytest.raises(ConfigError, match="no endpoint has a p99 latency"):
        th.compute([result.model_copy(update={"endpoints": {}})], Policy(), LATENCY_BUCKETS)


def test_the_workbook_windows():
    assert [(w.severity, w.long, w.short, w.factor) for w in WORKBOOK] == [
        ("page", "1h", "5m", 14.4), ("page", "6h", "30m", 6.0),
        ("ticket", "1d", "2h", 3.0), ("ticket", "3d", "6h", 1.0)]
    assert [round(w.budget_spent, 4) for w in WORKBOOK] == [0.02, 0.05, 0.1, 0.1]
    assert [duration(s) for s in (0, 45, 300, 5400, 86400, 93784)] == \
        ["0s", "45s", "5m", "1h30m", "1d", "1d2h3m4s"]


# ---------------------------------------------------------------- the outputs agree


def _rules_view(text: str) -> dict:
    """Thresholds as the rule file states them."""
    groups = {g["name"]: g["rules"] for g in yaml.safe_load(text)["groups"]}
    view: dict = {}
    for rule in groups[alerts.RECORDINGS]:
        labels = rule["labels"]
        key = (labels["slo"], f"{labels['method']} {labels['route']}")
        if rule["record"] == "slo:objective:ratio":
            view[(*key, "objective")] = float(re.fullmatch(r"vector\((.+)\)", rule["expr"])[1])
        elif labels["slo"] == "latency" and rule["record"].startswith("slo:sli_error:"):
            (le,) = set(re.findall(r'le="([^"]+)"', rule["expr"]))
            assert view.setdefault((*key, "le"), le) == le, rule  # one le in every window
    for rule in groups[alerts.SLO_ALERTS]:
        labels = rule["labels"]
        limits = set(re.findall(r"> ([0-9.e+-]+)\)", rule["expr"]))
        assert len(limits) == 1 and rule["annotations"]["threshold"] in limits, rule
        key = (labels["slo"], f"{labels['method']} {labels['route']}", labels["long_window"])
        view[key] = float(limits.pop())
        assert rule["for"] and labels["severity"] in ("page", "ticket")
    for rule in groups[alerts.THRESHOLD_ALERTS]:
        labels = {k: v for k, v in rule["labels"].items() if k != "severity"}
        m = re.search(r" (>=|>|<) ([0-9.e+-]+)$", rule["expr"])
        assert m and rule["annotations"]["threshold"] == m[2], rule
        view[(rule["alert"], tuple(labels.values()))] = float(m[2])
    return view


def _sloth_view(text: str) -> dict:
    view: dict = {}
    for slo in yaml.safe_load(text)["slos"]:
        labels = slo["labels"]
        key = (labels["slo"], f"{labels['method']} {labels['route']}")
        view[(*key, "objective")] = round(slo["objective"] / 100, 12)
        if labels["slo"] == "latency":
            (le,) = set(re.findall(r'le="([^"]+)"', slo["sli"]["events"]["error_query"]))
            view[(*key, "le")] = le
    return view


def _grafana_view(text: str, found: Thresholds) -> dict:
    view: dict = {}
    panels = [p for p in json.loads(text)["panels"] if p["type"] == "timeseries"]
    by_title = {p["title"]: p for p in panels}
    for slo in found.slos:  # the panel of each SLO, found by its endpoint and kind
        (panel,) = [p for t, p in by_title.items() if t.startswith(slo.endpoint + ":")
                    and ("5xx" in t) == (slo.kind == "errors")]
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        value = steps[1]["value"]
        key = (slo.kind, slo.endpoint)
        if slo.kind == "latency":
            (le,) = set(re.findall(r'le="([^"]+)"', panel["targets"][0]["expr"]))
            view[(*key, "le")] = le
            view[(*key, "objective")] = value
        else:
            view[(*key, "objective")] = round(1 - value, 12)
    for t in found.thresholds:
        (panel,) = [p for p in panels if p["description"].startswith(t.alert + ":")
                    and p["title"].endswith("".join(f" {v}" for v in t.labels.values()))]
        assert panel["targets"][0]["expr"] == t.query
        view[(t.alert, tuple(t.labels.values()))] = \
            panel["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"]
    return view


def test_rules_sloth_and_grafana_state_the_same_thresholds(found):
    rules_view = _rules_view(alerts.rules(found))
    sloth_view = _sloth_view(sloth.sloth(found))
    grafana_view = _grafana_view(grafana.grafana(found), found)
    expected: dict = {}
    for s in found.slos:
        expected[(s.kind, s.endpoint, "objective")] = s.objective
        if s.kind == "latency":
            expected[(s.kind, s.endpoint, "le")] = s.le
        for w in WORKBOOK:
            expected[(s.kind, s.endpoint, w.long)] = s.burn_threshold(w)
    for t in found.thresholds:
        expected[(t.alert, tuple(t.labels.values()))] = t.value
    assert rules_view == expected
    slo_keys = {k for k in expected if len(k) == 3 and k[2] in ("objective", "le")}
    assert sloth_view == {k: expected[k] for k in slo_keys}
    assert grafana_view == {k: v for k, v in expected.items()
                            if k in slo_keys or len(k) == 2}
    # and they are the gate's tolerances applied to the gate's baseline figures
    assert expected[("CacheHitRatioLow", ("dashboard",))] == pytest.approx(0.9 - 0.03)


def test_every_alert_has_for_severity_baseline_threshold_and_a_runbook_section(found):
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#{2,3} (.+)$", RUNBOOK.read_text(), re.MULTILINE)}
    doc = yaml.safe_load(alerts.rules(found))
    rules = [r for g in doc["groups"] for r in g["rules"] if "alert" in r]
    assert {r["alert"] for r in rules} == set(found.alerts) == {
        "EndpointLatencyBudgetBurn", "EndpointErrorBudgetBurn", "CacheHitRatioLow",
        "ElevenLabsRetryAmplificationHigh", "ElevenLabsFailureRatioHigh",
        "ElevenLabsCircuitBreakerOpen", "DbPoolSaturated", "DbPoolWaiters", "KpiViewStale"}
    for r in rules:
        assert re.fullmatch(r"\d+[smhd]", r["for"]), r
        assert r["labels"]["severity"] in ("page", "ticket")
        notes = r["annotations"]
        assert notes["baseline"] and notes["threshold"] and notes["summary"]
        assert notes["runbook_url"] == f"docs/runbook.md#{r['alert'].lower()}"
        assert r["alert"].lower() in anchors, f"docs/runbook.md has no section {r['alert']}"
    pages = {r["labels"]["severity"] for r in rules if r["alert"] == LATENCY_ALERT
             and r["labels"]["long_window"] in ("1h", "6h")}
    assert pages == {"page"}


def test_the_runbook_base_and_the_job_come_from_the_policy(result):
    policy = parse_policy('[alerts]\njob = ""\nrunbook = "https://git.example/docs/runbook.md"\n')
    got = th.compute([result], policy, LATENCY_BUCKETS)
    text = alerts.rules(got)
    assert "job=" not in text
    assert "runbook_url: https://git.example/docs/runbook.md#kpiviewstale" in text
    assert 'job="dashboard-api"' in alerts.rules(th.compute([result], Policy(), LATENCY_BUCKETS))


def test_grafana_dashboard_is_provisionable(found):
    doc = json.loads(grafana.grafana(found))
    assert doc["uid"] == grafana.UID and len(doc["uid"]) <= 40
    (var,) = doc["templating"]["list"]
    assert (var["name"], var["type"], var["query"]) == ("DS_PROMETHEUS", "datasource",
                                                        "prometheus")
    panels = [p for p in doc["panels"] if p["type"] != "row"]
    assert len(panels) == len(found.slos) + len(found.thresholds)
    assert len({p["id"] for p in doc["panels"]}) == len(doc["panels"])
    for p in panels:
        assert p["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        assert all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" for t in p["targets"])
        assert p["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] != "off"
    assert grafana.grafana(found) == grafana.grafana(found)  # stable output


def test_sloth_spec_shape(found):
    doc = yaml.safe_load(sloth.sloth(found))
    assert doc["version"] == "prometheus/v1" and doc["service"] == "dashboard-api"
    assert len(doc["slos"]) == len(found.slos)
    for slo in doc["slos"]:
        assert re.fullmatch(r"[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]", slo["name"])
        events = slo["sli"]["events"]
        assert "{{.window}}" in events["error_query"] and "{{.window}}" in events["total_query"]
        assert 0 < slo["objective"] <= 100
        alerting = slo["alerting"]
        assert alerting["page_alert"]["labels"]["severity"] == "page"
        assert alerting["ticket_alert"]["labels"]["severity"] == "ticket"
        assert all(v for v in alerting["annotations"].values())
    # a window filled in, Sloth's queries are our recording rules' (same series, same le)
    spec = next(s for s in doc["slos"] if s["labels"]["slo"] == "latency")
    slo = next(s for s in found.slos if s.name == spec["name"])
    events = spec["sli"]["events"]
    assert f'({events["error_query"]}) / ({events["total_query"]})'.replace(
        "{{.window}}", "5m") == f"({slo.error_query('5m')}) / ({slo.total_query('5m')})"


# ---------------------------------------------------------------- promtool


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, check=False,
                          timeout=300)


@needs_promtool
def test_promtool_checks_the_rules_and_runs_their_unit_tests(found, tmp_path):
    (tmp_path / "alerts.yml").write_text(alerts.rules(found))
    (tmp_path / "alerts_test.yml").write_text(alerts.unit_tests(found, "alerts.yml"))
    checked = promtool("check", "rules", "alerts.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout and "lint" not in checked.stdout + checked.stderr
    tested = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout[-5000:] + tested.stderr[-5000:]
    # every alert is probed both ways
    doc = yaml.safe_load((tmp_path / "alerts_test.yml").read_text())
    fired = {(e["exp_labels"].get("route") or e["exp_labels"].get("cache") or "", t["alertname"])
             for test in doc["tests"] for t in test["alert_rule_test"] for e in t["exp_alerts"]}
    assert {a for _, a in fired} == set(found.alerts)
    burn_tests = 0
    for test in doc["tests"]:
        m = re.match(r"(\w+) (\w+)/(\w+) at ", test["name"])
        if m is None:
            continue
        burn_tests += 1
        (check,) = test["alert_rule_test"]
        slos = {s.endpoint for s in found.slos if s.alert == m[1]}
        firing = {f"{e['exp_labels']['method']} {e['exp_labels']['route']}"
                  for e in check["exp_alerts"] if e["exp_labels"]["long_window"] == m[2]}
        # the pair under test fires for every endpoint just past it, for none just inside
        assert firing == (slos if "just past" in test["name"] else set()), test["name"]
    assert burn_tests == 2 * 2 * len(WORKBOOK)
    thresholds = [t for test in doc["tests"] if test["name"].startswith("threshold alerts")
                  for t in test["alert_rule_test"]]
    assert len(thresholds) == 2 * len({t.alert for t in found.thresholds})
    assert sum(len(t["exp_alerts"]) for t in thresholds) == len(found.thresholds)


@needs_promtool
def test_promtool_fails_a_rule_file_whose_threshold_was_changed(found, tmp_path):
    """The unit tests are real: move one threshold and they fail."""
    text = alerts.rules(found)
    t = next(t for t in found.thresholds if t.alert == "KpiViewStale")
    (tmp_path / "alerts.yml").write_text(text.replace(f"> {number(t.value)}\n",
                                                      f"> {number(t.value * 2)}\n"))
    doc = yaml.safe_load(alerts.unit_tests(found, "alerts.yml"))
    doc["tests"] = [t for t in doc["tests"] if t["name"].startswith("threshold alerts")]
    (tmp_path / "alerts_test.yml").write_text(alerts.dump(doc))
    tested = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert tested.returncode == 1 and "KpiViewStale" in tested.stdout + tested.stderr


@needs_promtool
def test_sloth_queries_are_valid_promql(found, tmp_path):
    doc = yaml.safe_load(sloth.sloth(found))
    rules = [{"record": f"check:{i}:{part}", "expr": slo["sli"]["events"][q].replace(
        "{{.window}}", "5m")} for i, slo in enumerate(doc["slos"])
        for part, q in (("error", "error_query"), ("total", "total_query"))]
    (tmp_path / "sloth_check.yml").write_text(yaml.safe_dump(
        {"groups": [{"name": "sloth-check", "rules": rules}]}))
    checked = promtool("check", "rules", "sloth_check.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


# ---------------------------------------------------------------- a real scrape


async def test_every_le_in_the_rules_is_in_a_real_scrape_of_the_service(shared_dbs, datasets):
    """The running service's /metrics, after a request to every route the rules name,
    has each rule's `le` on that route's http_request_duration_seconds series."""
    user = max(datasets.manifest["users"], key=lambda u: u["weight"])
    agent_id = user["agent_ids"][0]
    async with running_app(shared_dbs["optimized"]) as (_, client):
        for path in ("/api/v1/dashboard/overview", "/api/v1/agents", f"/api/v1/agents/{agent_id}",
                     "/api/v1/dashboard/analytics", "/api/v1/activity"):
            assert (await client.get(path, headers=auth(user["api_key"]))).status_code == 200
        text = (await client.get("/metrics")).text
    exported: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "http_request_duration_seconds":
            continue
        for s in family.samples:
            if s.name.endswith("_bucket"):
                key = f"{s.labels['method']} {s.labels['route']}"
                exported.setdefault(key, set()).add(s.labels["le"])
    assert len(exported) == 5 and {le_label(b) for b in LATENCY_BUCKETS} | {"+Inf"} == \
        exported[OVERVIEW]
    # rules whose thresholds land on every bucket in turn, for every route the service served
    r = built_result()
    template = r.endpoints[OVERVIEW]
    seen: set[str] = set()
    for bound in LATENCY_BUCKETS:
        p99 = bound * 1000 / 1.25 * (1 - 1e-6)  # x (1 + 25%): just under the bound
        latency = template.latency_ms.model_copy(update={"p99": p99})
        eps = {k: template.model_copy(update={"latency_ms": latency}) for k in exported}
        got = th.compute([r.model_copy(update={"endpoints": eps})], Policy(), LATENCY_BUCKETS)
        for rule in yaml.safe_load(alerts.rules(got))["groups"][0]["rules"]:
            key = f"{rule['labels']['method']} {rule['labels']['route']}"
            for le in re.findall(r'le="([^"]+)"', rule["expr"]):
                assert le in exported[key], (key, le, sorted(exported[key]))
                seen.add(le)
    assert seen == {le_label(b) for b in LATENCY_BUCKETS}


# ---------------------------------------------------------------- the command


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", "alerts", *args], cwd=cwd,
                          capture_output=True, text=True, check=False, timeout=120)


def test_export_writes_rules_tests_and_sloth_spec(tmp_path, result):
    store = tmp_path / "baselines"
    save_baseline(store, result)
    shutil.copyfile(POLICY, store / "policy.toml")
    done = harness("export", "--store", str(store), "-o", "out/alerts.yml", "--format", "sloth",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["alerts.sloth.yml", "alerts.yml",
                                                      "alerts_test.yml"]
    found = th.compute([result], load_policy(POLICY), LATENCY_BUCKETS, baseline="main")
    assert _rules_view((out / "alerts.yml").read_text()) == _rules_view(alerts.rules(found))
    assert yaml.safe_load((out / "alerts_test.yml").read_text())["rule_files"] == ["alerts.yml"]
    assert "8 SLOs (4 endpoints)" in done.stdout
    made = harness("grafana", "--store", str(store), "--baseline", "main", "-o", "dash.json",
                   cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert json.loads((tmp_path / "dash.json").read_text())["uid"] == grafana.UID


@pytest.mark.parametrize(("args", "message"), [
    (("export", "--baseline", "nope"), "no baseline 'nope' in baselines (have: empty, main)"),
    (("export", "--baseline", "main", "--policy", "bad.toml"),
     "bad.toml:2: unknown key 'page_fr' in "),
    (("export", "--baseline", "empty"), "no endpoint has a p99 latency"),
    (("grafana", "--baseline", "empty"), "no endpoint has a p99 latency"),
    (("export", "--baseline", "main", "--for-scale", "-1"), "--for-scale must be 0 or more"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, result, args, message):
    store = tmp_path / "baselines"
    save_baseline(store, result)
    save_baseline(store, result.model_copy(update={"endpoints": {}}), "empty")
    (tmp_path / "bad.toml").write_text('[alerts]\npage_fr = "2m"\n')
    before = sorted(p.name for p in tmp_path.iterdir())
    done = harness(*args, "-o", "alerts.yml", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_policy_error_names_its_table_on_the_terminal(tmp_path, result):
    store = tmp_path / "baselines"
    save_baseline(store, result)
    (tmp_path / "bad.toml").write_text('[alerts]\npage_fr = "2m"\n')
    done = harness("export", "--policy", "bad.toml", cwd=tmp_path)
    assert "bad.toml:2: unknown key 'page_fr' in [alerts] (did you mean 'page_for'?)" \
        in done.stderr


def test_without_baseline_and_several_in_the_store_it_asks_for_one(tmp_path, result):
    store = tmp_path / "baselines"
    save_baseline(store, result, "a")
    save_baseline(store, result, "b")
    done = harness("export", cwd=tmp_path)
    assert done.returncode == 2
    assert "name the baseline with --baseline (baselines: it has a, b)" in done.stderr
