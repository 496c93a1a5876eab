"""A side of several runs (a run set's rounds) as one: endpoints pooled exactly. Pure.

A compare page's side is often an `harness ab` job's rounds. Its table cells must be
that side's figures, not its first round's: counts and failures add up, throughput
is the mean of the rounds' (each measured over the same window length), and the
latency percentiles come from the rounds' whole-window HdrHistograms merged, which is
exact (never an average of percentiles). One run is returned as it is, so a
single-run page shows exactly its record's figures.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness import hdr
from harness.model.latency import Latency
from harness.model.result import EndpointResult, RunResult

SAMPLES = 3
"""Messages shown per failure kind (what the generator keeps, `result.ERROR_SAMPLES`)."""


def endpoint(results: Sequence[RunResult], key: str) -> EndpointResult | None:
    """`key` over every run of `results` (None: in none of them); "all" is the totals."""
    found = [r.totals if key == "all" else r.endpoints.get(key) for r in results]
    found = [e for e in found if e is not None]
    if len(found) <= 1:
        return found[0] if found else None
    count = sum(e.count for e in found)
    failures: dict[str, int] = {}
    for e in found:
        for kind, n in e.failures.items():
            failures[kind] = failures.get(kind, 0) + n
    raw = hdr.merge(e.histogram for e in found if e.histogram)
    corrected = hdr.merge(e.corrected_histogram for e in found if e.corrected_histogram)
    return found[0].model_copy(update={
        "count": count, "failures": failures,
        "failure_rate": sum(failures.values()) / count if count else 0.0,
        "throughput_rps": sum(e.throughput_rps for e in found) / len(found),
        "latency_ms": Latency.of(raw), "corrected_latency_ms": Latency.of(corrected),
        "histogram": hdr.encode(raw), "corrected_histogram": hdr.encode(corrected),
        "error_samples": samples(found),
        "degraded": sum(e.degraded for e in found), "partial": sum(e.partial for e in found)})


def samples(found: Sequence[EndpointResult]) -> dict[str, list[str]]:
    """Failure kind -> up to `SAMPLES` distinct messages, in the order the runs saw them."""
    out: dict[str, list[str]] = {}
    for e in found:
        for kind, messages in e.error_samples.items():
            kept = out.setdefault(kind, [])
            kept += [m for m in messages if m not in kept][:SAMPLES - len(kept)]
    return out


def keys(results: Sequence[RunResult]) -> list[str]:
    """Every endpoint of any of the runs, in the order they first appear."""
    return list(dict.fromkeys(k for r in results for k in r.endpoints))
