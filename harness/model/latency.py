"""Latency percentiles of one exact histogram: the one shape every record uses.

A latency in a run record (an endpoint's, the ElevenLabs attempts', the freshness
probe's) is always these percentiles in milliseconds, computed by `hdr.summary`
from an exact HdrHistogram, so that two records, or the client and the server
side of one, compare the same numbers.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from harness import hdr


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Latency(_Model):
    """Percentiles in milliseconds, computed from the exact (HDR) histogram."""

    count: int
    min: float | None = None
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    p999: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, histogram: hdr.HdrHistogram | str | None) -> Latency:
        """The one way a histogram (or its encoding) becomes percentiles."""
        if histogram is None or histogram == "":
            return cls(count=0)
        if isinstance(histogram, str):
            histogram = hdr.decode(histogram)
        return cls(**hdr.summary(histogram))
