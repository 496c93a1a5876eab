"""The harness plugin's command-line options, added to Locust's own.

``--harness-out DIR``        write `client.json`, `windows.jsonl`, `windows.hlog`,
                             `live.json` and the window-edge scrapes there (see `output`)
                             (absent: nothing is recorded, plain Locust use)
``--harness-warmup S``       seconds from the first spawn excluded from the measured window
``--harness-manifest PATH``  the dataset manifest (env `HARNESS_MANIFEST`)
``--harness-stub-url URL``   the ElevenLabs stub (env `HARNESS_STUB_URL`), for upstream_faults
``--harness-shape NAME``     load shape when `scenarios/shapes.py` is loaded (env `HARNESS_SHAPE`)
``--harness-pace-scale X``   multiply every user's pacing rate (0 = unpaced, closed loop)
``--harness-seed N``         seed of the per-user random generators (env `HARNESS_SEED`)
``--harness-trace-sampling P`` every request carries a W3C `traceparent`, sampled with
                             probability P (0..1); the slowest sampled requests per endpoint
                             and a reservoir of them go into `client.json` (absent: no header)

Locust forwards them from the master to its workers; `option` reads one back,
also when Locust is used as a library without options.
"""

from __future__ import annotations

from locust import events


@events.init_command_line_parser.add_listener
def _add_arguments(parser, **_kw) -> None:
    group = parser.add_argument_group("harness", "options of the dashboard-perf harness plugin")
    group.add_argument("--harness-out", type=str, default="",
                       help="Directory for client.json, windows.jsonl/.hlog and live.json "
                            "(absent: nothing is recorded)")
    group.add_argument("--harness-warmup", type=float, default=0.0,
                       help="Seconds from the first spawn excluded from the measured window")
    group.add_argument("--harness-manifest", type=str, default="", env_var="HARNESS_MANIFEST",
                       help="Dataset manifest (dataset.json) with the seeded users and API keys")
    group.add_argument("--harness-stub-url", type=str, default="", env_var="HARNESS_STUB_URL",
                       help="Base URL of the ElevenLabs stub (upstream_faults switches it)")
    group.add_argument("--harness-shape", type=str, default="", env_var="HARNESS_SHAPE",
                       help="Load shape (steady, ramp, spike, soak) when scenarios/shapes.py "
                            "is one of the locustfiles")
    group.add_argument("--harness-pace-scale", type=float, default=1.0,
                       env_var="HARNESS_PACE_SCALE",
                       help="Multiply every user's paced task rate; 0 disables pacing")
    group.add_argument("--harness-seed", type=str, default="", env_var="HARNESS_SEED",
                       help="Seed of the per-user random generators (default: random)")
    group.add_argument("--harness-trace-sampling", type=str, default="",
                       env_var="HARNESS_TRACE_SAMPLING",
                       help="Send a W3C traceparent with every request, sampled with this "
                            "probability (0..1); absent: no traceparent")
    group.add_argument("--harness-trace-interleave", type=str, default="",
                       env_var="HARNESS_TRACE_INTERLEAVE",
                       help="Sample only in every other block of this many seconds of the "
                            "epoch (and nothing in the blocks between): tracing's overhead "
                            "measured inside one run")


def option(environment, name: str, default=None):
    """A parsed option (also when Locust is used as a library without options)."""
    opts = getattr(environment, "parsed_options", None)
    value = getattr(opts, name, None) if opts is not None else None
    return default if value in (None, "") else value
