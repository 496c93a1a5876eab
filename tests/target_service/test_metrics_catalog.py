"""docs/metrics.md and a real scrape agree, and every family follows the conventions.

The documented table is what the alert exporter, the dashboards and the
harness's server checks are written against, so it must be the truth: a
family added, renamed, retyped or relabelled without the table fails here,
as does a counter without `_total`, a duration not in seconds, a size not in
bytes, a label named like an identifier, or a label value outside its set.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.stubs.elevenlabs import StubProcess
from target_service.elevenlabs.settings import ElevenLabsSettings
from tests.conftest import auth, busiest_user, healthy_stub_for, running_app

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "metrics.md"
KEY = "xi_catalog_test_key_5e6f7a8b"
ID_PARTS = {"id", "ids", "uuid", "key", "keys", "tenant", "email", "session", "token", "ip"}
"""Name parts that make a label an identifier (`user_id`, `api_key`, `tenant`...)."""
ID_NAMES = {"user", "users", "agent", "agents", "call", "lead", "customer", "phone"}
"""Whole label names that are an identifier too (`agent="..."`)."""

KINDS = {
    "status": re.compile(r"[1-5]\d\d"),
    "query": re.compile(r"[a-z][a-z0-9_]*"),
    "exception": re.compile(r"[A-Z][A-Za-z0-9]*"),
    "pid": re.compile(r"\d+"),
    "setting": re.compile(r".*"),
}
"""What a value of a `name=<kind>` label looks like (`<route>` is checked against the app)."""


@dataclass(frozen=True)
class Row:
    name: str
    type: str
    labels: dict[str, frozenset[str] | str]
    """Label name -> its value set, or the kind (`route`, `status`...) of an open one."""
    unit: str
    multiprocess: str


def documented() -> dict[str, Row]:
    """The rows of the table under `## The table` in docs/metrics.md."""
    section = DOC.read_text().split("## The table", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, Row] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name, type_, labels, unit, _meaning, multiprocess = cells
        parsed: dict[str, frozenset[str] | str] = {}
        for token in re.findall(r"`([^`]+)`", labels):
            label, _, spec = token.partition("=")
            if spec.startswith("{"):
                parsed[label] = frozenset(spec.strip("{}").split(","))
            else:
                parsed[label] = spec.strip("<>")
        assert name.strip("`") not in rows, f"{name} documented twice"
        rows[name.strip("`")] = Row(name.strip("`"), type_, parsed, unit, multiprocess)
    return rows


def exposed_name(family) -> str:
    """The name a family is queried by: a counter's samples end in `_total`."""
    return f"{family.name}_total" if family.type == "counter" else family.name


@pytest.fixture(scope="module")
def stub(datasets, tmp_path_factory) -> Iterator[StubProcess]:
    with healthy_stub_for(datasets.manifest, tmp_path_factory.mktemp("catalog-stub"), KEY,
                          fault_seed=5) as process:
        yield process


@pytest.fixture(scope="module")
async def scrape(datasets, stub) -> tuple[str, set[str]]:
    """A scrape after every route and a few odd requests, and the app's route templates."""
    dsn = await datasets.clone("optimized")
    user = busiest_user(datasets.manifest)
    h = auth(user["api_key"])
    upstream = ElevenLabsSettings(base_url=stub.url, api_key=KEY, retry_base_delay_s=0.01)
    try:
        async with running_app(dsn, elevenlabs=upstream) as (app, c):
            for path in ("/api/v1/dashboard/overview", "/api/v1/dashboard/analytics",
                         "/api/v1/agents", f"/api/v1/agents/{user['agent_ids'][0]}",
                         "/api/v1/activity", "/api/v1/agents/999999", "/healthz",
                         "/readyz", "/no/such/path"):
                assert (await c.get(path, headers=h)).status_code < 500, path
            posted = await c.post("/api/v1/calls", headers=h, json={
                "agent_id": user["agent_ids"][0], "status": "completed",
                "direction": "inbound", "duration_seconds": 42, "cost": 0.05})
            assert posted.status_code == 201, posted.text
            await c.request("BREW", "/healthz")  # RFC 2324: a method nobody knows
            await c.get("/api/v1/agents")  # unauthenticated: 401
            text = (await c.get("/metrics")).text
            # included routers do not list their routes on app.routes (FastAPI 0.16x)
            routes = ({getattr(r, "path", None) for r in app.routes} | set(app.openapi()["paths"])
                      | {"/metrics", "<unmatched>"}) - {None}
    finally:
        await datasets.drop(dsn)
    return text, routes


def families(text: str) -> dict[str, object]:
    """The scrape's families by exposed name, `_created` companions folded into theirs."""
    found = {exposed_name(f): f for f in text_string_to_metric_families(text)}
    for name in [n for n in found if n.endswith("_created")]:
        base = name.removesuffix("_created")
        if base in found or f"{base}_total" in found:
            del found[name]
    return found


def test_the_table_and_the_scrape_name_the_same_families_with_the_same_types(scrape):
    text, _ = scrape
    table, scraped = documented(), families(text)
    assert len(table) >= 50
    assert sorted(set(scraped) - set(table)) == [], "exposed but not in docs/metrics.md"
    assert sorted(set(table) - set(scraped)) == [], "documented but not exposed"
    for name, family in scraped.items():
        assert family.type == table[name].type, name


def test_names_follow_the_prometheus_conventions(scrape):
    text, _ = scrape
    for name, family in families(text).items():
        row = documented()[name]
        if family.type == "counter":
            assert name.endswith("_total"), name
        else:
            assert not name.endswith("_total"), name
        if row.unit == "seconds":
            assert name.removesuffix("_total").endswith("_seconds"), name
        if row.unit == "bytes":
            assert name.endswith("_bytes"), name
        assert not re.search(r"_(ms|milliseconds|us|microseconds|minutes|kb|mb|percent)(_|$)",
                             name), f"{name}: not a base unit"
        if family.type == "histogram":
            assert name.endswith(("_seconds", "_bytes")), f"{name}: a histogram without a unit"
        assert row.multiprocess in {"sum", "livesum", "livemax", "livemin", "max", "liveall"}


def test_no_label_is_an_identifier_and_observed_values_stay_in_their_sets(scrape):
    text, routes = scrape
    table = documented()
    seen: dict[tuple[str, str], set[str]] = {}
    for name, family in families(text).items():
        row = table[name]
        for sample in family.samples:
            for label, value in sample.labels.items():
                if label == "le" and family.type == "histogram":
                    continue
                parts = set(label.lower().split("_"))
                assert not parts & ID_PARTS and label.lower() not in ID_NAMES, \
                    f"{name}{{{label}}} looks like an identifier"
                spec = row.labels.get(label, row.labels.get("*"))
                assert spec is not None, f"{name}{{{label}}} is not documented"
                seen.setdefault((name, label), set()).add(value)
                if isinstance(spec, frozenset):
                    assert value in spec, f"{name}{{{label}={value!r}}} outside {sorted(spec)}"
                elif spec == "route":
                    assert value in routes, f"{name}{{route={value!r}}} is not a template"
                else:
                    assert KINDS[spec].fullmatch(value), f"{name}{{{label}={value!r}}}"
    methods = seen[("http_request_duration_seconds", "method")]
    assert {"GET", "POST", "_OTHER"} <= methods and "BREW" not in methods
    assert {"/api/v1/agents/{agent_id}", "<unmatched>"} <= \
        seen[("http_request_duration_seconds", "route")]
    assert not any("999999" in v for v in seen[("http_request_duration_seconds", "route")])
    assert len([s for s in families(text)["target_settings_info"].samples]) == 1


def test_every_query_label_is_a_name_the_code_passes(scrape):
    """`<query>` is bounded by the literals in the code, not by what requests send."""
    text, _ = scrape
    sources = "".join(p.read_text() for p in (REPO / "target_service").rglob("*.py"))
    queries = {s.labels["query"] for f in text_string_to_metric_families(text)
               if f.name == "db_query_duration_seconds" for s in f.samples}
    assert "insert_call" in queries and "auth_user_by_key" in queries
    for query in queries:
        assert f'"{query}"' in sources, query
