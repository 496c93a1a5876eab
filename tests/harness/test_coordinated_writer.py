"""A writer whose freshness polling takes seconds, in real Locust, against a fake API.

The fake shows a write in the overview only 2 s after it was posted, and the
writer aims at one task a second: every task overruns its slot by about a second,
all of it spent waiting on purpose between polls. Declared as intentional waits
(what `scenarios/writer.py` does), the corrected latency of the next task's
requests stays their raw latency; the same waits undeclared (plain sleeps, as
before the fix) are charged to the service as seconds of lateness. The same run
shows every acknowledged `call_id` arriving in `client.json`, a duplicate
acknowledgement counted.

Locust runs as a child process (it monkey-patches the interpreter with gevent).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

import pytest

from harness import hdr
from harness.model.client import ClientDoc
from tests.harness.conftest import assert_plugin_output, locust_cmd, run_locust, write_manifest

pytestmark = pytest.mark.e2e

LAG_S = 2.0
OVERVIEW, CALLS = "GET /api/v1/dashboard/overview", "POST /api/v1/calls"
USERS = [{"user_id": 1, "api_key": "key-one", "agent_ids": [11], "weight": 1.0}]
"""One seeded user and one Locust user: no other writer can make a write show early."""
LOCUSTFILE = '''
import gevent
from scenarios import writer


class SlowFreshnessWriter(writer.WriterUser):
    pace = 1.0  # one task a second; each lasts ~2 s, most of it polling
    freshness_timeout_s = 5.0
{override}
'''
UNDECLARED = '''
    def intentional_wait(self, seconds):  # the waits as they were: plain sleeps
        gevent.sleep(seconds)
        return True
'''


class LaggingApi:
    """Overview totals count a user's calls posted at least `LAG_S` ago; the second and
    third calls are acknowledged with the same id (a duplicate acknowledgement)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.posted: dict[int, list[float]] = {u["user_id"]: [] for u in USERS}
        self.handed: list[int] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self):
        api, keys = self, {u["api_key"]: u["user_id"] for u in USERS}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _user(self) -> int | None:
                return keys.get(self.headers.get("Authorization", "").removeprefix("Bearer "))

            def do_GET(self) -> None:
                uid = self._user()
                if uid is None or not self.path.startswith("/api/v1/dashboard/overview"):
                    return self._send(404, {"error": {"code": "not_found"}})
                with api.lock:
                    visible = sum(1 for t in api.posted[uid] if t <= time.time() - LAG_S)
                self._send(200, {"user_id": uid, "kpis": {"total_calls": visible}})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                uid = self._user()
                if uid is None or self.path != "/api/v1/calls":
                    return self._send(404, {"error": {"code": "not_found"}})
                with api.lock:
                    api.posted[uid].append(time.time())
                    n = len(api.handed) + 1
                    call_id = n - 1 if n == 3 else n
                    api.handed.append(call_id)
                self._send(201, {"user_id": uid, "call_id": call_id})

        return Handler

    def __enter__(self) -> Self:
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def run_writer(tmp_path: Path, name: str, override: str = "") -> tuple[ClientDoc, list[int]]:
    """A 7 s run of one slow-freshness writer; (client.json, the ids the fake handed out)."""
    locustfile = tmp_path / f"{name}.py"
    locustfile.write_text(LOCUSTFILE.format(override=override))
    manifest = write_manifest(tmp_path / f"{name}-manifest.json", USERS)
    out = tmp_path / name
    with LaggingApi() as api:
        proc = run_locust(locust_cmd(str(locustfile), api.url, out, manifest, users=1,
                                     run_time="7s", extra=["--harness-seed", "3"]), timeout=60)
        handed = list(api.handed)
    assert proc.returncode == 0, proc.output
    return assert_plugin_output(out), handed


def p99_ms(encoded: str) -> float:
    return hdr.decode(encoded).get_value_at_percentile(99) / 1000.0


def test_freshness_polling_is_not_charged_to_the_next_task(tmp_path):
    doc, handed = run_writer(tmp_path, "declared")
    fresh = doc.checks.freshness
    assert fresh.samples >= 2 and fresh.timeouts == 0, fresh
    assert hdr.decode(fresh.histogram).get_min_value() >= LAG_S * 1e6 * 0.95  # seconds
    for key in (OVERVIEW, CALLS):
        ep = doc.endpoints[key]
        raw, corrected = p99_ms(ep.histogram), p99_ms(ep.corrected_histogram)
        assert ep.count > 0 and ep.failures == {}, key
        assert corrected - raw < 200, (key, raw, corrected)  # not seconds
    # the moved schedule is the one counted: at most the task due as the test stopped is
    # missing (of ~4 intended, one short is a ratio of 0.25; the undeclared waits below
    # leave more than 0.3 short)
    assert doc.pacing.shortfall_ratio is not None, doc.pacing
    assert doc.pacing.intended_tasks - doc.pacing.started_tasks <= 1, doc.pacing
    # every acknowledgement arrived, the repeated id once, counted as a duplicate
    assert len(handed) >= 3
    assert doc.writes.ids == sorted(set(handed))
    assert doc.writes.duplicates == len(handed) - len(set(handed)) == 1


def test_the_same_waits_undeclared_are_charged_as_seconds_of_lateness(tmp_path):
    """The control: without the fix the corrected p99 of the next tasks' requests is
    seconds above their raw p99, and the users look like they fell behind."""
    doc, _ = run_writer(tmp_path, "undeclared", UNDECLARED)
    for key in (OVERVIEW, CALLS):
        ep = doc.endpoints[key]
        raw, corrected = p99_ms(ep.histogram), p99_ms(ep.corrected_histogram)
        assert corrected - raw > 800, (key, raw, corrected)
    assert doc.pacing.shortfall_ratio > 0.3, doc.pacing
