"""Error samples: what failed requests said, scrubbed of secrets, bounded per process and
merged across workers (pure, no Locust)."""

from __future__ import annotations

import json

import pytest

from harness.loadgen import samples as sm
from harness.loadgen.aggregate import RunAggregate
from harness.loadgen.recorder import (
    SAMPLE_TRIES,
    ConnectionFailure,
    InvalidBody,
    Recorder,
    UnexpectedStatus,
)
from harness.model.client import Delta
from harness.model.result import ERROR_SAMPLES

T0 = 1_700_000_000
KEY = "GET /api/v1/agents"
USER_KEY = "dk_fe68ddd4dbe1388810e82de91780105d41c79195"


class Response:
    """What the plugin gets from Locust: a status and a body."""

    def __init__(self, status: int, text: str) -> None:
        self.status_code = status
        self.text = text


def service_error(status: int, code: str, message: str) -> Response:
    return Response(status, json.dumps({"error": {"code": code, "message": message}}))


# ---------------------------------------------------------------- what a failure said


def test_an_http_error_is_its_status_and_the_services_json_message():
    exc = UnexpectedStatus(503, (200,), KEY)
    said = sm.describe(exc, service_error(503, "database_unavailable",
                                          "timed out waiting for a database connection"), KEY)
    assert said == "HTTP 503 database_unavailable: timed out waiting for a database connection"
    assert sm.describe(exc, Response(503, '{"detail": "Service Unavailable"}'), KEY) == \
        "HTTP 503 Service Unavailable"
    assert sm.describe(UnexpectedStatus(500, (200,), KEY),
                       Response(500, "Internal Server Error\ntrace..."), KEY) == \
        "HTTP 500 Internal Server Error"
    assert sm.describe(UnexpectedStatus(502, (200,), KEY), Response(502, ""), KEY) == "HTTP 502"
    # a JSON body that is no error document is the body's first line
    assert sm.describe(UnexpectedStatus(400, (200,), KEY), Response(400, "[1, 2]"), KEY) == \
        "HTTP 400 [1, 2]"


def test_other_failures_are_the_exceptions_text_without_the_endpoint():
    refused = ConnectionFailure(f"{KEY}: ConnectionRefusedError(111, 'Connection refused')")
    assert sm.describe(refused, Response(0, ""), KEY) == \
        "ConnectionRefusedError(111, 'Connection refused')"
    assert sm.describe(InvalidBody(f"{KEY}: not JSON: Expecting value"), None, KEY) == \
        "not JSON: Expecting value"
    # an exception Locust raised itself (no check of ours): its type says what it was
    assert sm.describe(ConnectionResetError(104, "Connection reset by peer"), None, KEY) == \
        "ConnectionResetError: [Errno 104] Connection reset by peer"


def test_messages_are_one_line_of_at_most_200_characters():
    long = sm.clip("word " * 100)
    assert len(long) == sm.MAX_MESSAGE == 200 and long.endswith("…") and "\n" not in long
    assert sm.clip("a\n  b\tc") == "a b c"


# ---------------------------------------------------------------- secrets


@pytest.mark.parametrize("text, kept", [
    (f"Authorization: Bearer {USER_KEY} refused", "refused"),
    ("upstream said: xi-api-key: Zq3kd93KdkdjeUw83jdkeKd2 is invalid", "is invalid"),
    ("xi-api-key abc123 rejected", "rejected"),
    ('{"api_key": "s3cr3t", "ok": false}', '"ok": false'),
    ("GET /x?api-key=hunter2&page=2", "page=2"),
    ("token=abc.def.ghi expired", "expired"),
    ("could not connect to postgresql://app:pw0rd@127.0.0.1:5432/db", "127.0.0.1:5432/db"),
    ("ElevenLabs key sk_0123456789abcdef0123 revoked", "revoked"),
    ("stub key Zq3_kd93KdkdjeUw83jdkeKd in use", "in use"),
])
def test_anything_that_looks_like_a_key_is_scrubbed(text: str, kept: str):
    out = sm.Scrubber()(text)
    assert sm.REDACTED in out and kept in out
    for secret in (USER_KEY, "Zq3kd93KdkdjeUw83jdkeKd2", "abc123", "s3cr3t", "hunter2",
                   "abc.def.ghi", "pw0rd", "sk_0123456789abcdef0123", "Zq3_kd93KdkdjeUw83jdkeKd"):
        assert secret not in out


def test_the_datasets_keys_are_scrubbed_wherever_they_appear():
    odd_key = "plainkey42"  # too plain for any pattern: only knowing it scrubs it
    scrub = sm.Scrubber(sm.manifest_keys({"users": [{"user_id": 1, "api_key": USER_KEY},
                                                    {"nested": {"api_key": odd_key}}]}))
    out = scrub(f"user {odd_key} / {USER_KEY.upper()} / {USER_KEY}")
    assert odd_key not in out and USER_KEY not in out


def test_ordinary_words_and_ids_are_left_alone():
    text = ("GET /api/v1/agents/agent_ra3xe3ohqa3ffv4yttffjif6roqy: invalid token given, "
            "trace 4bf92f3577b34da6a3ce929d0e0e4736")
    assert sm.Scrubber()(text) == text


def test_a_key_cut_by_the_length_limit_is_scrubbed_first():
    rec = Recorder()
    rec.enabled = True
    rec.set_secrets(["k" * 60])
    rec.request(KEY, T0 + 0.5, 5.0, 0, "connection",
                describe=lambda: "x" * 180 + " key " + "k" * 60)
    (cell,) = rec.take_delta().windows[0].endpoints.values()
    (message,) = cell.error_samples["connection"]
    assert "kkkk" not in message and len(message) <= sm.MAX_MESSAGE


# ---------------------------------------------------------------- the master's merge


def test_the_first_seen_distinct_messages_win_whatever_order_pieces_arrive_in():
    fs = sm.FirstSeen()
    fs.add(T0 + 5, ["late", "b"])       # a worker that reported later seconds first
    fs.add(T0 + 1, ["a", "b"])          # then earlier seconds of another
    fs.add(T0 + 9, ["c", "d", "a"])
    fs.add(T0 + 1, ["b"])               # first in a third worker's cell: a tie, text decides
    assert fs.messages() == ["a", "b", "late"]
    assert len(fs._held) == ERROR_SAMPLES  # never more than that held
    again = sm.FirstSeen()
    for t, msgs in ((T0 + 9, ["c", "d", "a"]), (T0 + 1, ["b"]), (T0 + 1, ["a", "b"]),
                    (T0 + 5, ["late", "b"])):
        again.add(t, msgs)
    assert again.messages() == fs.messages()


# ---------------------------------------------------------------- recorder -> master


def fail(rec: Recorder, t: float, kind: str, message: str, key: str = KEY) -> list[int]:
    """One failed request; returns a list that grows each time its message was made."""
    calls: list[int] = []

    def said() -> str:
        calls.append(1)
        return message

    rec.request(key, t, 3.0, 0, kind, describe=said)
    return calls


def test_a_process_keeps_at_most_three_distinct_messages_per_endpoint_and_kind():
    rec = Recorder()
    made = 0
    for i in range(200):
        made += len(fail(rec, T0 + 0.1, "http_503", f"HTTP 503 busy #{i % 5}"))
    for _ in range(50):
        fail(rec, T0 + 0.2, "http_503", "HTTP 503 busy #0", key="GET /api/v1/activity")
    fail(rec, T0 + 0.3, "timeout", "TimeoutFailure: timed out")
    assert made == ERROR_SAMPLES  # no message is even made once three are held
    cells = rec.take_delta().windows[0].endpoints
    assert cells[KEY].failures == {"http_503": 200, "timeout": 1}
    assert cells[KEY].error_samples == {"http_503": ["HTTP 503 busy #0", "HTTP 503 busy #1",
                                                     "HTTP 503 busy #2"],
                                        "timeout": ["TimeoutFailure: timed out"]}
    assert cells["GET /api/v1/activity"].error_samples == {"http_503": ["HTTP 503 busy #0"]}
    assert rec.take_delta().windows == []  # sent once, then forgotten


def test_a_burst_of_one_message_is_described_a_bounded_number_of_times():
    rec = Recorder()
    made = sum(len(fail(rec, T0 + 0.5, "http_503", "HTTP 503 busy")) for _ in range(1000))
    assert made == SAMPLE_TRIES  # not 1000: the second's cell stops asking
    made += len(fail(rec, T0 + 1.5, "http_503", "HTTP 503 busy"))
    assert made == SAMPLE_TRIES + 1  # the next second asks again
    windows = rec.take_delta().windows
    assert [w.endpoints[KEY].error_samples for w in windows] == [{"http_503": ["HTTP 503 busy"]}] * 2


def test_a_message_that_cannot_be_made_keeps_the_count():
    rec = Recorder()
    rec.request(KEY, T0, 3.0, 0, "http_500", describe=lambda: 1 / 0)
    cell = rec.take_delta().windows[0].endpoints[KEY]
    assert cell.failures == {"http_500": 1}
    assert cell.error_samples == {"http_500": ["(no message: ZeroDivisionError)"]}


def test_workers_samples_merge_on_the_master_first_seen_from_the_measured_windows_only():
    agg = RunAggregate(warmup_s=2.0)
    agg.start(T0)
    agg.spawn_complete(T0)
    w1, w2 = Recorder(), Recorder()
    for rec in (w1, w2):
        rec.set_secrets([USER_KEY])
    fail(w1, T0 + 0.5, "http_503", "HTTP 503 warming up")  # warm-up: not in the record
    fail(w1, T0 + 4.5, "http_503", "HTTP 503 late one")
    fail(w2, T0 + 2.5, "http_503", "HTTP 503 first")
    fail(w2, T0 + 3.5, "http_503", f"HTTP 503 Bearer {USER_KEY} refused")
    fail(w1, T0 + 3.2, "http_503", "HTTP 503 first")
    fail(w1, T0 + 3.7, "connection", f"ConnectionRefusedError for {USER_KEY}")
    for source, rec in (("w1", w1), ("w2", w2)):  # w1 reports first, its later seconds too
        wire = rec.take_delta(final=True).model_dump()  # as it travels (msgpack: plain data)
        agg.merge(Delta.model_validate(wire), source)
    agg.stopping(T0 + 6)
    agg.take_closed(float("inf"))
    doc = agg.client_doc("2.x", role="master", workers=2)
    samples = doc.endpoints[KEY].error_samples
    assert samples == {"http_503": ["HTTP 503 first", f"HTTP 503 Bearer {sm.REDACTED} refused",
                                    "HTTP 503 late one"],
                       "connection": [f"ConnectionRefusedError for {sm.REDACTED}"]}
    assert doc.endpoints[KEY].failures == {"connection": 1, "http_503": 4}
    assert USER_KEY not in doc.model_dump_json()
