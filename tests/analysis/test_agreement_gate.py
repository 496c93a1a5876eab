"""The client/server agreement limit applies beyond what the window's opening explains.

The clients count a request by when it started, the service when it completed, and the
service is scraped as the window opens: a request in flight then is on one side only, at
most one per user (the end edge is scraped after the last request). A 4 s A/A job of 5
users counted 9 and 10 (11% apart) and failed the gate hard with nothing wrong."""

from __future__ import annotations

from harness.analysis.collect import users_at_opening
from harness.analysis.compare import hard_failures
from harness.model.client import ClientWindow
from tests.analysis.test_compare import settings
from tests.builders import EndpointSpec, build_run

OVERVIEW = "GET /api/v1/dashboard/overview"


def missing(n: int, users: int = 10):
    """A built run (110 requests counted by the clients) whose service missed `n`."""
    return build_run({OVERVIEW: EndpointSpec(rps=10, server_missing=n)}, seconds=10,
                     warmup_s=2, cooldown_s=1, seed=5, users=users).result


def test_the_users_at_the_opening_are_recorded():
    a = missing(0).agreement
    assert (a.client_count, a.server_count, a.edge_users) == (110, 110, 10)
    assert a.unexplained_ratio == 0


def test_a_gap_of_up_to_one_request_per_user_is_no_failure():
    a = missing(10).agreement
    assert a.diff_ratio == round(10 / 110, 6) and a.diff_ratio > settings().agreement_max
    assert a.unexplained_ratio == 0
    assert hard_failures([missing(10)], settings()) == []


def test_a_gap_beyond_the_users_fails_and_says_by_how_much():
    (failure,) = hard_failures([missing(12)], settings())
    assert failure.kind == "agreement"
    assert "clients counted 110, the service 98 (10.91% apart, 1.82% beyond the 10" in (
        failure.detail)
    assert hard_failures([missing(12, users=12)], settings()) == []


def test_a_result_from_before_the_users_were_recorded_gets_no_allowance():
    result = missing(10)
    old = result.model_copy(update={"agreement": result.agreement.model_copy(
        update={"edge_users": None})})
    (failure,) = hard_failures([old], settings())
    rid = result.run.run_id
    assert failure.detail == f"clients counted 110, the service 100 (9.09% apart) in {rid}"


def test_the_opening_s_users_are_the_larger_of_the_seconds_around_it():
    seconds = [ClientWindow(t=t, phase="ramp" if t < 100 else "measured", users=u)
               for t, u in ((98, 3), (99, 7), (100, 10), (101, 4))]
    assert users_at_opening(seconds, 100.0) == 10
    assert users_at_opening(seconds, 100.4) == 10
    assert users_at_opening(seconds[:2], 100.0) == 7  # the window's first second not in yet
    assert users_at_opening(seconds, None) is None
    assert users_at_opening([], 100.0) is None
