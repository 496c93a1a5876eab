"""`baselines/policy.toml`: defaults, overrides, tolerance spellings, strict errors with lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.model.gate import Tolerance
from harness.model.policy import Policy, is_advisory, load_policy, parse_policy, tolerance_for
from harness.model.tolerances import KINDS, parse_tolerance
from harness.model.toml_errors import key_lines

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FILE = ROOT / "baselines" / "policy.toml"
OVERVIEW = "GET /api/v1/dashboard/overview"


def error(text: str, source: str = "policy.toml") -> str:
    with pytest.raises(ConfigError) as info:
        parse_policy(text, source)
    return str(info.value)


# ---------------------------------------------------------------- defaults


def test_defaults():
    p = Policy()
    g = p.gate
    assert (g.misrate, g.block_s, g.resamples, g.seed, g.min_blocks, g.inconclusive) == \
        (0.01, 5, 2000, 0, 8, "pass")
    assert not p.inconclusive_fails
    t = p.tolerances
    assert t.p50 == Tolerance(limit=0.15, relative=True, higher_is_worse=True, text="+15%")
    assert t.p95 == Tolerance(limit=0.15, relative=True, higher_is_worse=True, text="+15%")
    assert t.p99 == Tolerance(limit=0.25, relative=True, higher_is_worse=True, text="+25%")
    assert t.throughput_shortfall == Tolerance(limit=10.0, relative=False, text="+10pt")
    assert t.error_rate == Tolerance(limit=1.0, relative=False, text="+1pt")
    assert t.hit_ratio == Tolerance(limit=5.0, relative=False, higher_is_worse=False,
                                    text="-5pt")
    assert t.retry_amplification == Tolerance(limit=0.2, text="+20%")
    assert t.retry_rate == Tolerance(limit=5.0, relative=False, text="+5pt")
    assert t.failure_rate == Tolerance(limit=2.0, relative=False, text="+2pt")
    assert t.fallback_rate == Tolerance(limit=5.0, relative=False, text="+5pt")
    assert t.upstream_p95 == Tolerance(limit=0.2, text="+20%")
    assert t.query_p95 == Tolerance(limit=0.2, text="+20%")
    assert t.pool_wait_p95 == Tolerance(limit=0.5, text="+50%")
    assert t.freshness_p95 == Tolerance(limit=0.25, text="+25%")
    h = p.hard
    assert (h.error_rate_max, h.agreement_max, h.tenant_leaks_max) == (0.05, 0.01, 0)
    assert (p.endpoints, p.caches, p.queries, p.benchmarks) == ({}, {}, {}, {})
    assert t.bench == Tolerance(limit=0.15, text="+15%")


def test_every_kind_has_a_default_and_an_advisory_flag():
    t = Policy().tolerances
    for kind in KINDS:
        assert isinstance(getattr(t, kind), Tolerance), kind
        assert getattr(t, f"{kind}_advisory") is (kind in ("p99", "query_p95",
                                                           "pool_wait_p95")), kind


def test_an_empty_file_is_the_defaults():
    assert parse_policy("") == Policy()
    assert parse_policy("# nothing\n\n[gate]\n[tolerances]\n") == Policy()


def test_the_committed_default_file_parses_to_the_defaults_plus_its_overrides():
    p = load_policy(DEFAULT_FILE)
    assert p.gate == Policy().gate
    assert p.tolerances == Policy().tolerances
    assert p.hard == Policy().hard
    assert p.model_dump(exclude={"endpoints", "caches", "queries"}) == \
        Policy().model_dump(exclude={"endpoints", "caches", "queries"})
    assert set(p.endpoints) == {OVERVIEW}
    assert p.endpoints[OVERVIEW].p95 == Tolerance(limit=0.10, text="+10%")
    assert p.caches["dashboard"].hit_ratio == Tolerance(limit=3.0, relative=False,
                                                        higher_is_worse=False, text="-3pt")
    assert p.queries["insert_call"].query_p95 == Tolerance(limit=0.30, text="+30%")


def test_the_default_file_sets_every_default_explicitly():
    """Each key the code defaults is written (and so documented) in the file."""
    lines = key_lines(DEFAULT_FILE.read_text())
    p = Policy()
    for table in ("gate", "hard"):
        for key in type(getattr(p, table)).model_fields:
            assert (table, key) in lines, (table, key)
    for kind in KINDS:
        assert ("tolerances", kind) in lines, kind
    assert ("tolerances", "p99_advisory") in lines


# ---------------------------------------------------------------- the values of a file


def test_gate_settings_are_read():
    p = parse_policy('[gate]\nmisrate = 0.05\nblock_s = 10\nresamples = 500\nseed = 7\n'
                     'min_blocks = 4\ninconclusive = "fail"\n')
    g = p.gate
    assert (g.misrate, g.block_s, g.resamples, g.seed, g.min_blocks, g.inconclusive) == \
        (0.05, 10, 500, 7, 4, "fail")
    assert p.inconclusive_fails


def test_an_integer_is_a_number_where_a_number_is_expected():
    assert parse_policy("[hard]\nerror_rate_max = 1\n").hard.error_rate_max == 1.0


def test_hard_limits_are_read():
    h = parse_policy("[hard]\nerror_rate_max = 0.02\nagreement_max = 0.005\n"
                     "tenant_leaks_max = 3\n").hard
    assert (h.error_rate_max, h.agreement_max, h.tenant_leaks_max) == (0.02, 0.005, 3)


def test_dotted_keys_and_inline_tables_work_as_toml_says():
    p = parse_policy('gate.misrate = 0.02\n[endpoints]\n"GET /a" = { p95 = "+5%" }\n')
    assert p.gate.misrate == 0.02
    assert p.endpoints["GET /a"].p95 == Tolerance(limit=0.05, text="+5%")


# ---------------------------------------------------------------- tolerance spellings


@pytest.mark.parametrize(("kind", "text", "expected"), [
    ("p95", "+15%", Tolerance(limit=0.15, relative=True, higher_is_worse=True, text="+15%")),
    ("p95", "15%", Tolerance(limit=0.15, relative=True, higher_is_worse=True, text="15%")),
    ("p95", "+2.5%", Tolerance(limit=0.025, relative=True, higher_is_worse=True, text="+2.5%")),
    ("p95", "+0%", Tolerance(limit=0.0, relative=True, higher_is_worse=True, text="+0%")),
    ("pool_wait_p95", "+100%", Tolerance(limit=1.0, text="+100%")),
    ("p95", " +15% ", Tolerance(limit=0.15, text=" +15% ")),
    ("error_rate", "+1pt", Tolerance(limit=1.0, relative=False, higher_is_worse=True,
                                     text="+1pt")),
    ("error_rate", "+0.5pt", Tolerance(limit=0.5, relative=False, text="+0.5pt")),
    ("error_rate", "+50%", Tolerance(limit=0.5, relative=True, text="+50%")),
    ("error_rate", 0.01, Tolerance(limit=1.0, relative=False, text="0.01")),
    ("throughput_shortfall", 0.1, Tolerance(limit=10.0, relative=False, text="0.1")),
    ("throughput_shortfall", 0, Tolerance(limit=0.0, relative=False, text="0")),
    ("hit_ratio", "-5pt", Tolerance(limit=5.0, relative=False, higher_is_worse=False,
                                    text="-5pt")),
    ("hit_ratio", "5pt", Tolerance(limit=5.0, relative=False, higher_is_worse=False,
                                   text="5pt")),
    ("hit_ratio", "-10%", Tolerance(limit=0.1, relative=True, higher_is_worse=False,
                                    text="-10%")),
    ("hit_ratio", 0.03, Tolerance(limit=3.0, relative=False, higher_is_worse=False,
                                  text="0.03")),
    ("retry_amplification", "+20%", Tolerance(limit=0.2, text="+20%")),
    ("failure_rate", "+2pt", Tolerance(limit=2.0, relative=False, text="+2pt")),
])
def test_tolerance_spellings(kind, text, expected):
    assert parse_tolerance(kind, text) == expected


@pytest.mark.parametrize(("kind", "value", "message"), [
    ("hit_ratio", "+5pt", ("a lower hit_ratio is worse, so its tolerance is written -5pt, "
                           "not '+5pt'")),
    ("p95", "-15%", "a higher p95 is worse, so its tolerance is written +15%, not '-15%'"),
    ("p95", "+5pt", "'+5pt' does not fit p95 (measured as ms, not a share); write '+15%'"),
    ("p95", "+5ms", ("'+5ms': a tolerance in milliseconds is not supported (times are "
                     "compared relatively); write '+15%'")),
    ("error_rate", "+5ms", ("'+5ms': a tolerance in milliseconds is not supported (times are "
                            "compared relatively); write '+15%', '+1pt' or a share such as "
                            "0.01")),
    ("retry_amplification", "+1pt", ("'+1pt' does not fit retry_amplification (measured "
                                     "as ratio, not a share); write '+15%'")),
    ("retry_amplification", 0.2, "a bare number is a share; write '+15%'"),
    ("p95", 15, "a bare number is a share; write '+15%'"),
    ("error_rate", 1.5, "a share is between 0 and 1, not 1.5"),
    ("p95", "15", "'15' is not a tolerance; write '+15%'"),
    ("p95", "+15 %%", "'+15 %%' is not a tolerance; write '+15%'"),
    ("p95", "fast", "'fast' is not a tolerance; write '+15%'"),
    ("p95", True, "must be a tolerance such as '+15%', not true/false"),
    ("hit_ratio", "-100%", ("'-100%': a drop of 100% or more cannot be tolerated "
                            "relatively; write points instead")),
])
def test_tolerances_that_do_not_parse(kind, value, message):
    with pytest.raises(ValueError) as info:
        parse_tolerance(kind, value)
    assert str(info.value) == message


def test_a_bad_tolerance_in_a_file_names_its_key_and_line():
    assert error('[gate]\nseed = 1\n\n[tolerances]\np95 = "+15"\n') == \
        "policy.toml:5: 'p95' in [tolerances]: '+15' is not a tolerance; write '+15%'"
    assert error('[caches.dashboard]\nhit_ratio = "+3pt"\n') == \
        "policy.toml:2: 'hit_ratio' in [caches.dashboard]: a lower hit_ratio is worse, " \
        "so its tolerance is written -3pt, not '+3pt'"


# ---------------------------------------------------------------- overrides


POLICY = '''
[tolerances]
p95 = "+12%"
p99_advisory = true
hit_ratio = "-4pt"

[endpoints."GET /api/v1/dashboard/overview"]
p95 = "+10%"
p99 = "+40%"
p99_advisory = false
error_rate = "+0.5pt"

[endpoints."GET /api/v1/agents/{agent_id}"]
p50_advisory = true

[caches.dashboard]
hit_ratio = "-3pt"

[queries.insert_call]
query_p95 = "+30%"
query_p95_advisory = true
'''


def test_an_override_wins_over_the_default():
    p = parse_policy(POLICY)
    assert tolerance_for(p, "p95", OVERVIEW) == Tolerance(limit=0.10, text="+10%")
    assert tolerance_for(p, "p99", OVERVIEW) == Tolerance(limit=0.40, text="+40%")
    assert tolerance_for(p, "error_rate", OVERVIEW) == \
        Tolerance(limit=0.5, relative=False, text="+0.5pt")
    assert tolerance_for(p, "hit_ratio", "dashboard") == \
        Tolerance(limit=3.0, relative=False, higher_is_worse=False, text="-3pt")
    assert tolerance_for(p, "query_p95", "insert_call") == Tolerance(limit=0.30, text="+30%")


def test_without_an_override_the_default_applies():
    p = parse_policy(POLICY)
    assert tolerance_for(p, "p95", "GET /api/v1/agents") == Tolerance(limit=0.12, text="+12%")
    assert tolerance_for(p, "p95") == Tolerance(limit=0.12, text="+12%")
    assert tolerance_for(p, "p50", OVERVIEW) == Tolerance(limit=0.15, text="+15%")  # not set
    assert tolerance_for(p, "hit_ratio", "agents") == \
        Tolerance(limit=4.0, relative=False, higher_is_worse=False, text="-4pt")
    assert tolerance_for(p, "query_p95", "kpi_overview") == Tolerance(limit=0.2, text="+20%")
    assert tolerance_for(p, "retry_amplification", "elevenlabs") == \
        Tolerance(limit=0.2, text="+20%")


def test_overrides_apply_only_to_their_own_kind_of_subject():
    p = parse_policy(POLICY)  # a cache named like an endpoint is no endpoint
    assert tolerance_for(p, "hit_ratio", OVERVIEW).text == "-4pt"
    assert tolerance_for(p, "query_p95", "dashboard").text == "+20%"


def test_a_benchmark_override_wins_and_can_make_it_advisory():
    p = parse_policy('[tolerances]\nbench = "+20%"\n\n[benchmarks."test_cache_get_hit"]\n'
                     'bench = "+40%"\nbench_advisory = true\n')
    assert tolerance_for(p, "bench", "test_cache_get_hit").text == "+40%"
    assert tolerance_for(p, "bench", "test_overview_cached").text == "+20%"
    assert is_advisory(p, "bench", "test_cache_get_hit")
    assert not is_advisory(p, "bench", "test_overview_cached")
    assert "did you mean" in error('[benchmarks."x"]\nbnech = "+1%"\n')


def test_check_kind_names_of_the_gate_record_are_understood():
    p = parse_policy(POLICY)
    assert tolerance_for(p, "cache_hit_ratio", "dashboard").text == "-3pt"
    assert tolerance_for(p, "pool_wait").text == "+50%"
    assert tolerance_for(p, "upstream_retry_amplification").text == "+20%"
    assert tolerance_for(p, "upstream_failure_rate").text == "+2pt"
    with pytest.raises(ValueError, match="no tolerance for check kind 'latency'"):
        tolerance_for(p, "latency", OVERVIEW)


def test_advisory_p99_by_default_and_overridable():
    d = Policy()
    assert is_advisory(d, "p99", OVERVIEW) is True
    assert is_advisory(d, "p95", OVERVIEW) is False
    assert is_advisory(d, "hit_ratio", "dashboard") is False
    p = parse_policy(POLICY)
    assert is_advisory(p, "p99", OVERVIEW) is False  # the override says so
    assert is_advisory(p, "p99", "GET /api/v1/agents") is True
    assert is_advisory(p, "p50", "GET /api/v1/agents/{agent_id}") is True
    assert is_advisory(p, "p50", OVERVIEW) is False
    assert is_advisory(p, "query_p95", "insert_call") is True
    assert is_advisory(d, "query_p95", "list_calls") is True  # why, not whether: advisory
    assert is_advisory(d, "pool_wait_p95") is True
    gating = parse_policy('[queries.list_calls]\nquery_p95_advisory = false\n')
    assert is_advisory(gating, "query_p95", "list_calls") is False
    assert is_advisory(gating, "query_p95", "insert_call") is True
    q = parse_policy("[tolerances]\np99_advisory = false\np50_advisory = true\n")
    assert is_advisory(q, "p99", OVERVIEW) is False
    assert is_advisory(q, "p50", OVERVIEW) is True


# ---------------------------------------------------------------- strictness


def test_unknown_key_names_it_and_its_line():
    text = ('# policy\n\n[gate]\nmisrate = 0.01\n\n[tolerances]\np50 = "+15%"\n'
            'p95 = "+15%"\n\n\n\np96 = "+20%"\n')  # p96 on line 12
    assert error(text) == \
        "policy.toml:12: unknown key 'p96' in [tolerances] (did you mean 'p95' or 'p99'?)"


def test_unknown_key_in_gate_and_hard():
    assert error("[gate]\nmisrate = 0.01\nmisrat = 0.02\n") == \
        "policy.toml:3: unknown key 'misrat' in [gate] (did you mean 'misrate'?)"
    assert error("[hard]\n\nzzz = 1\n") == "policy.toml:3: unknown key 'zzz' in [hard]"


def test_unknown_key_in_an_override_names_its_table():
    text = '[endpoints."GET /api/v1/dashboard/overview"]\np95 = "+10%"\nhit_ratio = "-3pt"\n'
    assert error(text) == ("policy.toml:3: unknown key 'hit_ratio' in "
                           '[endpoints."GET /api/v1/dashboard/overview"]')
    assert error('[caches.dashboard]\np95 = "+1%"\n') == \
        "policy.toml:2: unknown key 'p95' in [caches.dashboard]"


def test_unknown_table_and_unknown_top_level_key():
    assert error("[gate]\nseed = 1\n[gates]\nseed = 2\n") == \
        "policy.toml:3: unknown table [gates] (did you mean 'gate'?)"
    assert error("misrate = 0.01\n") == "policy.toml:1: unknown key 'misrate'"


def test_the_same_key_under_another_table_is_not_confused():
    """`seed` is a key of [gate]; the line is the one under [tolerances]."""
    assert error('[gate]\nseed = 1\n[tolerances]\nseed = 2\n') == \
        "policy.toml:4: unknown key 'seed' in [tolerances]"


def test_a_key_in_an_inline_table_gets_the_line_of_its_table():
    assert error('[endpoints]\n\n"GET /a" = { p96 = "+1%" }\n') == \
        "policy.toml:3: unknown key 'p96' in [endpoints.\"GET /a\"] (did you mean 'p95' or " \
        "'p99'?)"


@pytest.mark.parametrize(("text", "message"), [
    ('[gate]\nmisrate = "0.01"\n',
     "policy.toml:2: 'misrate' in [gate] must be a number, not a string ('0.01')"),
    ("[gate]\n\nblock_s = 2.5\n",
     "policy.toml:3: 'block_s' in [gate] must be an integer, not a number (2.5)"),
    ("[gate]\nresamples = true\n",
     "policy.toml:2: 'resamples' in [gate] must be an integer, not true/false (True)"),
    ('[gate]\ninconclusive = "maybe"\n',
     "policy.toml:2: 'inconclusive' in [gate] must be 'pass' or 'fail', not 'maybe'"),
    ('[tolerances]\np99_advisory = "yes"\n',
     ("policy.toml:2: 'p99_advisory' in [tolerances] must be true or false, "
      "not a string ('yes')")),
    ("[hard]\ntenant_leaks_max = 0.5\n",
     "policy.toml:2: 'tenant_leaks_max' in [hard] must be an integer, not a number (0.5)"),
    ("gate = 5\n", "policy.toml:1: 'gate' must be a table, not an integer (5)"),
    ("[caches]\ndashboard = 1\n",
     "policy.toml:2: 'dashboard' in [caches] must be a table, not an integer (1)"),
    ("[gate]\nmisrate = 0.7\n", "policy.toml:2: 'misrate' in [gate] must be less than 0.5"),
    ("[gate]\nmisrate = 0\n", "policy.toml:2: 'misrate' in [gate] must be greater than 0"),
    ("[gate]\nblock_s = 0\n",
     "policy.toml:2: 'block_s' in [gate] must be greater than or equal to 1"),
    ("[hard]\nagreement_max = 2.0\n",
     "policy.toml:2: 'agreement_max' in [hard] must be less than or equal to 1"),
])
def test_wrong_type_or_value_names_the_key_and_its_line(text, message):
    assert error(text) == message


def test_an_endpoint_override_must_name_an_endpoint():
    assert error('[gate]\n[endpoints."GET/api/v1/agents"]\np95 = "+1%"\n') == (
        "policy.toml:2: [endpoints.\"GET/api/v1/agents\"]: 'GET/api/v1/agents' is not an "
        "endpoint; write \"METHOD /route\" as in the results, e.g. "
        "\"GET /api/v1/dashboard/overview\"")


def test_several_errors_report_the_first_in_the_file_and_count_the_rest():
    text = '[tolerances]\np95 = "x"\n[gate]\nbogus = 1\n'
    assert error(text, "b/policy.toml").startswith("b/policy.toml:2: 'p95' in [tolerances]: ")
    assert error(text).endswith(" (and 1 more)")
    text = '[gate]\nbogus = 1\n[tolerances]\np95 = "x"\n'  # file order, not the model's
    assert error(text) == "policy.toml:2: unknown key 'bogus' in [gate] (and 1 more)"


def test_toml_syntax_error_keeps_tomllib_position():
    assert error("[gate]\nmisrate = = 0.01\n") == \
        "policy.toml:2: invalid TOML: Invalid value (at line 2, column 11)"
    assert error('[gate]\nseed = 1\n[gate]\n', "x.toml") == \
        "x.toml:3: invalid TOML: Cannot declare ('gate',) twice (at line 3, column 6)"


def test_load_policy_names_the_file_and_writes_nothing(tmp_path: Path):
    path = tmp_path / "policy.toml"
    text = "[gate]\nmisrate = 0.01\n\n[tolerances]\np96 = '+1%'\n"
    path.write_text(text)
    before = sorted(tmp_path.iterdir())
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    assert str(info.value) == f"{path}:5: unknown key 'p96' in [tolerances] " \
                              "(did you mean 'p95' or 'p99'?)"
    assert info.value.exit_code == 2
    assert sorted(tmp_path.iterdir()) == before
    assert path.read_text() == text


def test_a_missing_policy_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match=f"^no policy at {tmp_path / 'nope.toml'}$"):
        load_policy(tmp_path / "nope.toml")


def test_key_lines_finds_headers_and_keys():
    text = ('# c\n[gate]\nmisrate = 0.01 # x = 1\n  seed=3\n\n[endpoints."GET /a = b"]\n'
            "p95 = '+1%'\n'quoted key' = 1\na.b = 2\n")
    lines = key_lines(text)
    assert lines[("gate",)] == 2
    assert lines[("gate", "misrate")] == 3
    assert lines[("gate", "seed")] == 4
    assert lines[("endpoints",)] == 6
    assert lines[("endpoints", "GET /a = b")] == 6
    assert lines[("endpoints", "GET /a = b", "p95")] == 7
    assert lines[("endpoints", "GET /a = b", "quoted key")] == 8
    assert lines[("endpoints", "GET /a = b", "a", "b")] == 9


@pytest.mark.parametrize("key", ["GET", "get /a", "GET  /a", "GET /a b", "GET /a\\n", " GET /a"])
def test_malformed_endpoint_keys(key):
    assert error(f'[endpoints."{key}"]\np95 = "+1%"\n').startswith(
        "policy.toml:1: [endpoints.")
    assert "is not an endpoint" in error(f'[endpoints."{key}"]\np95 = "+1%"\n')


# ---------------------------------------------------------------- [alerts]


def test_alert_settings_defaults():
    a = Policy().alerts
    assert (a.latency_percentile, a.latency_objective, a.error_objective) == ("p99", 0.99, 0.999)
    assert (a.page_for, a.ticket_for, a.threshold_for, a.threshold_window) == \
        (120, 900, 600, 300)
    assert (a.pool_saturation_max, a.pool_waiting_max, a.kpi_staleness_min) == (0.9, 0, 60)
    assert (a.job, a.runbook) == ("dashboard-api", "docs/runbook.md")


def test_the_default_file_writes_every_alert_setting_and_equals_the_defaults():
    lines = key_lines(DEFAULT_FILE.read_text())
    for key in type(Policy().alerts).model_fields:
        assert ("alerts", key) in lines, key
    assert load_policy(DEFAULT_FILE).alerts == Policy().alerts


def test_alert_settings_are_read():
    a = parse_policy('[alerts]\nlatency_percentile = "p95"\nlatency_objective = 0.95\n'
                     'error_objective = 0.99\npage_for = "0s"\nticket_for = "1h30m"\n'
                     'threshold_for = "90s"\nthreshold_window = "2m"\n'
                     'pool_saturation_max = 0.8\npool_waiting_max = 3\n'
                     'kpi_staleness_min = "1d"\njob = ""\n'
                     'runbook = "https://example.com/runbook.md"\n').alerts
    assert (a.latency_percentile, a.latency_objective, a.error_objective) == ("p95", 0.95, 0.99)
    assert (a.page_for, a.ticket_for, a.threshold_for, a.threshold_window) == (0, 5400, 90, 120)
    assert (a.pool_saturation_max, a.pool_waiting_max, a.kpi_staleness_min) == (0.8, 3, 86400)
    assert (a.job, a.runbook) == ("", "https://example.com/runbook.md")


@pytest.mark.parametrize(("text", "message"), [
    ('[alerts]\npage_for = 120\n',
     "policy.toml:2: 'page_for' in [alerts] must be a duration such as '5m', not an integer"),
    ('[alerts]\n\nticket_for = "15 minutes"\n',
     ("policy.toml:3: 'ticket_for' in [alerts]: '15 minutes' is not a duration; write e.g. "
      "'30s', '5m', '1h30m' or '3d'")),
    ('[alerts]\nthreshold_for = "5m1h"\n',
     ("policy.toml:2: 'threshold_for' in [alerts]: '5m1h' is not a duration; write e.g. "
      "'30s', '5m', '1h30m' or '3d'")),
    ('[alerts]\nthreshold_window = "0s"\n',
     "policy.toml:2: 'threshold_window' in [alerts] must be greater than or equal to 1"),
    ('[alerts]\nlatency_objective = 1\n',
     "policy.toml:2: 'latency_objective' in [alerts] must be less than 1"),
    ('[alerts]\njob = 1\n',
     "policy.toml:2: 'job' in [alerts] must be a string, not an integer (1)"),
    ('[alerts]\nerror_objective = 1.5\n',
     "policy.toml:2: 'error_objective' in [alerts] must be less than 1"),
    ('[alerts]\nlatency_percentile = "p90"\n',
     ("policy.toml:2: 'latency_percentile' in [alerts] must be 'p50', 'p95' or 'p99', "
      "not 'p90'")),
    ('[alerts]\nlatency_percentile = "p95"\nlatency_objective = 0.99\n',
     ("policy.toml:3: 'latency_objective' in [alerts]: 0.99 is above the share the p95 "
      "threshold starts from (0.95): the baseline itself would burn the budget; lower it "
      "or raise latency_percentile")),
    ('[alerts]\nlatency_percentile = "p95"\n',
     ("policy.toml:1: 'latency_objective' in [alerts]: 0.99 is above the share the p95 "
      "threshold starts from (0.95): the baseline itself would burn the budget; lower it "
      "or raise latency_percentile")),
    ('[alerts]\nrunbook = ""\n',
     ("policy.toml:2: 'runbook' in [alerts]: is empty; write a repository path such as "
      "'docs/runbook.md' or a URL")),
    ('[alerts]\npage_fr = "2m"\n',
     "policy.toml:2: unknown key 'page_fr' in [alerts] (did you mean 'page_for'?)"),
])
def test_bad_alert_settings_name_the_key_and_its_line(text, message):
    assert error(text) == message


def test_parse_duration():
    from harness.model.policy import parse_duration
    assert [parse_duration(s) for s in ("0s", "45s", "5m", "2h", "3d", "1d2h3m4s")] == \
        [0, 45, 300, 7200, 259200, 93784]
    for bad in ("", "5", "1.5m", "-1m", "5ms", "m", 5):
        with pytest.raises(ValueError):
            parse_duration(bad)
