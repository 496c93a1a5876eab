"""Traced runs as a user starts them: `harness run --trace`, and the service's exemplars.

Real processes on `tiny`: the generator's trace ids must come back in the service's
spans, the summary must show where the time went, and nothing the clients sent as a
secret (API keys) or in a query string may appear in a span or an exemplar.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from harness.loadgen.traces import TraceparentSource
from harness.run import layout
from harness.run import spans as run_spans
from harness.run.config import RunConfig
from harness.stack.stack import Stack, StackConfig
from tests.e2e.test_run import harness_run, only_result

pytestmark = pytest.mark.e2e
QUERY_VALUES = ("granularity=", "?from=", "&to=", "limit=", "before=", "secret-query-value")


def api_keys(manifest: dict) -> list[str]:
    keys = [u["api_key"] for u in manifest["users"]]
    assert keys and all(len(k) >= 16 for k in keys)
    return keys


def spans_of(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                out.extend(ss["spans"])
    return out


def assert_no_secret(text: str, keys: list[str]) -> None:
    leaked = [k for k in keys if k in text]
    assert not leaked, f"{len(leaked)} API key(s) in the text"
    assert "Bearer" not in text
    for value in QUERY_VALUES:
        assert value not in text, value


def test_a_traced_run_links_the_clients_traces_to_the_services_spans(state_dir: Path,
                                                                     tmp_path: Path,
                                                                     monkeypatch):
    # no start-up warming (the target inherits the environment): each user's first
    # overview misses the cache, so the file holds a miss's lookup, load and queries
    monkeypatch.setenv("TARGET_TOGGLES__WARM_CACHE", "false")
    out = tmp_path / "reports"
    # 12 users: the dashboard user starts 0.5 tasks a second, 3 in 10 of them analytics,
    # so 4 users' ~10 measured tasks had no analytics request 1 run in 35 (CI saw it);
    # 12 users' ~30 leave it out 1 run in 40,000
    proc = harness_run(state_dir, out, "--scenario", "dashboard", "--users", "12",
                       "--spawn-rate", "12", "--duration", "5s", "--warmup", "1s",
                       "--trace", "--trace-sampling", "1.0")
    _, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr
    run_dir, result = only_result(out)
    spans_file = run_dir / "spans.jsonl"
    assert spans_file.exists() and result["artifacts"]["spans"] == "spans.jsonl"
    assert result["run"]["trace_sampling"] == 1.0

    spans = spans_of(spans_file)
    server = [s for s in spans if s["kind"] == 2]
    server_ids = {s["traceId"] for s in server}
    # every server span continues a client trace (its parent is the client's span)
    assert server and all(s.get("parentSpanId") for s in server)
    client = json.loads((run_dir / "client.json").read_text())
    kept = {s["trace_id"] for s in client["traces"]["reservoir"]} | {
        s["trace_id"] for v in client["traces"]["slowest"].values() for s in v}
    assert kept and kept <= server_ids
    # at sampling 1.0 every measured request was sent sampled
    for key, endpoint in client["endpoints"].items():
        assert endpoint["traced"] == endpoint["count"], key

    traces = result["traces"]
    assert traces["sampling"] == 1.0 and traces["unmatched_count"] == 0
    assert traces["client_vs_server"]["p50_ms"] > 0  # the typical request: network, parse
    assert traces["traces"] > 0
    # cache time is a miss's (a hit is an event), so it is there only if a measured
    # request missed: the miss's trace is checked below, from the whole file
    assert traces["shares"]["db"] > 0
    assert traces["shares"]["serialization"] > 0 and "serialization" not in traces["no_spans"]
    assert sum(traces["shares"].values()) == pytest.approx(1.0, abs=1e-3)
    for key in ("GET /api/v1/dashboard/overview", "GET /api/v1/dashboard/analytics"):
        endpoint = traces["endpoints"][key]
        slow = endpoint["slowest"][0]
        assert slow["trace_id"] in server_ids and slow["server_ms"] > 0
        # the client waited for the server, up to the span's tail: it ends after the
        # last write returned (the client may have read the bytes by then) and on the
        # wall clock, where the client times on the monotonic one (CI saw -0.024 ms)
        assert slow["client_ms"] > slow["server_ms"] - 1.0
        assert sum(slow["breakdown_ms"].values()) == pytest.approx(slow["server_ms"], abs=0.01)
    # a request that missed the cache holds the server span, the cache lookup and the
    # queries under it in one trace (a hit is one server span with lookup events)
    by_trace: dict[str, set[str]] = {}
    for span in spans:
        by_trace.setdefault(span["traceId"], set()).add(span["name"])
    missed = [names for trace_id, names in by_trace.items() if trace_id in server_ids
              and "cache.lookup dashboard" in names and "cache.load dashboard" in names]
    assert missed and any(any(n.startswith("SELECT") for n in names) for names in missed)
    hit_events = [e for s in server for e in s.get("events", ())
                  if e["name"].startswith("cache.lookup")]
    assert hit_events
    # a miss (or a background refresh) encodes the body it stores inside the load: a timed
    # `serialize` event on the load's span, which the summary counts as serialization
    encoded_in = [s["name"] for s in spans for e in s.get("events", ())
                  if e["name"] == "serialize Overview"
                  and any(a["key"] == "serialization.duration_ns" for a in e["attributes"])]
    assert encoded_in and set(encoded_in) <= {"cache.load dashboard", "cache.refresh dashboard"}
    assert not [s for s in spans if s["name"].startswith("serialize")]
    assert "Traces" in (run_dir / "summary.md").read_text()
    assert_no_secret(spans_file.read_text(),
                     api_keys(json.loads((run_dir / "dataset.json").read_text())))


def test_exemplars_link_sampled_requests_to_their_traces(state_dir: Path, tmp_path: Path):
    """The service under the harness's tracing settings: sampled requests (and only they)
    are exemplars of the request-duration histogram in OpenMetrics, and their spans are
    in the file once the target has stopped; the plain format has no exemplar."""
    run_dir = tmp_path / "run"
    env = RunConfig(trace_sampling=1.0).tracing_env(run_dir)
    config = StackConfig(dataset="tiny", state_dir=state_dir, run_dir=run_dir, target_env=env)
    source = TraceparentSource(0.5, random.Random(8))
    sampled, unsampled = set(), set()
    with Stack(config) as stack:
        info = stack.info
        manifest = json.loads(Path(info.manifest).read_text())
        user = max(manifest["users"], key=lambda u: u["weight"])
        auth = {"Authorization": f"Bearer {user['api_key']}"}
        with httpx.Client(base_url=info.target_url, timeout=10) as http:
            while len(sampled) < 5 or len(unsampled) < 5:
                header, trace_id, is_sampled = source.next()
                r = http.get("/api/v1/activity", headers={**auth, "traceparent": header},
                             params={"limit": 5, "before": "secret-query-value"})
                assert r.status_code in (200, 422), r.text
                (sampled if is_sampled else unsampled).add(trace_id)
            om = http.get("/metrics", headers={
                "Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"})
            plain = http.get("/metrics")
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert plain.headers["content-type"].startswith("text/plain")
    assert "# {" not in plain.text
    exemplars = [s.exemplar for f in text_string_to_metric_families(om.text)
                 if f.name == "http_request_duration_seconds"
                 for s in f.samples if s.exemplar is not None]
    assert exemplars
    ids = {e.labels["trace_id"] for e in exemplars}
    assert ids <= sampled and not ids & unsampled
    assert all(set(e.labels) == {"trace_id", "span_id"} for e in exemplars)
    keys = api_keys(manifest)
    assert_no_secret(" ".join(json.dumps(e.labels) for e in exemplars), keys)
    # the target stopped gracefully: its spans are flushed (to the spool, which the run's
    # teardown turns into spans.jsonl), only the sampled requests'
    assert_no_secret(layout.spans_spool(run_dir).read_bytes().decode("utf-8", "replace"),
                     keys)
    assert run_spans.write_jsonl(run_dir) is None
    spans = spans_of(run_dir / "spans.jsonl")
    traced = {s["traceId"] for s in spans if s["kind"] == 2}
    assert sampled <= traced and not traced & unsampled
    assert_no_secret((run_dir / "spans.jsonl").read_text(), keys)


def test_an_interleaved_run_measures_tracings_cost_inside_the_run(state_dir: Path,
                                                                  tmp_path: Path):
    """`--trace-interleave`: the clients sample only in the `on` blocks of the epoch, and
    `result.json` compares the arms: every sampled request started in an `on` block,
    the overhead record has kept pairs of blocks, quantiles and CPU per request."""
    from harness.model.overhead import arm_of

    out = tmp_path / "reports"
    proc = harness_run(state_dir, out, "--scenario", "dashboard", "--users", "4",
                       "--spawn-rate", "4", "--duration", "18s", "--warmup", "1s",
                       "--trace-sampling", "1.0", "--trace-interleave", "3s",
                       "--trace-guard", "1s")
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr
    run_dir, result = only_result(out)
    assert (result["run"]["trace_interleave_s"], result["run"]["trace_guard_s"]) == (3, 1)
    client = json.loads((run_dir / "client.json").read_text())
    kept = [*client["traces"]["reservoir"],
            *(s for v in client["traces"]["slowest"].values() for s in v)]
    assert kept and all(arm_of(s["t"], 3) == "on" for s in kept)
    # at sampling 1.0 in the `on` blocks, the requests of those blocks were sent sampled
    # (a request is counted in the second it ended: a few cross a block's edge)
    traced = sum(e["traced"] for e in client["endpoints"].values())
    total = sum(e["count"] for e in client["endpoints"].values())
    windows = [json.loads(line) for line in (run_dir / "windows.jsonl").read_text().splitlines()
               if line.strip()]
    in_on = sum(sum(e["count"] for e in w["endpoints"].values()) for w in windows
                if w["phase"] == "measured" and arm_of(w["t"], 3) == "on")
    assert 0 < traced < total and abs(traced - in_on) <= 2 + in_on // 10, (traced, in_on)
    o = result["trace_overhead"]
    assert o["block_s"] == 3 and o["guard_s"] == 1
    assert o["off"]["sampling"] == 0.0 and o["on"]["sampling"] == 1.0
    assert o["off"]["blocks"] == o["on"]["blocks"] >= 2
    assert o["off"]["requests"] > 0 and o["on"]["requests"] > 0
    if o["off"]["blocks"] >= 3:
        q = o["endpoints"]["GET /api/v1/dashboard/overview"]["p95"]
        assert q["off_ms"] > 0 and q["on_ms"] > 0
        assert q["low"] is None or q["low"] <= q["change"] <= q["high"]
    assert "tracing overhead: sampling 1 vs 0" in stdout
