"""Configuration of the ElevenLabs client.

A plain pydantic model (not ``BaseSettings``): the service's ``Settings``
nests it, so every field is set from the environment as
``TARGET_ELEVENLABS__<FIELD>`` (e.g. ``TARGET_ELEVENLABS__API_KEY``,
``TARGET_ELEVENLABS__RETRY_BASE_DELAY_S=0.01``).

Time budgets nest, outermost first:

* ``page_budget_s`` - everything :meth:`ElevenLabsClient.get_agents` may spend
  for one page, whatever the number of agents;
* ``request_deadline_s`` - one logical request (one agent), all attempts and
  backoff sleeps included;
* ``attempt_timeout_s`` - one HTTP attempt, end to end (httpx's
  ``connect_timeout_s`` / ``read_timeout_s`` apply inside it per phase).

The default retry schedule is 1 s, 2 s, 4 s (``retry_base_delay_s`` *
``retry_multiplier`` ** n) for at most ``max_retries`` = 3 retries, i.e. four
attempts; a retry whose wait would overrun the deadline is not made. Tests
scale it down by setting ``retry_base_delay_s`` to 0.01.

The ``naive`` profile turns ``parallel`` and ``retries`` off (sequential
fetching, one attempt each) to measure what they buy.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class ElevenLabsSettings(BaseModel):
    """Every knob of the upstream client; defaults suit production."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = "https://api.elevenlabs.io"
    api_key: SecretStr = SecretStr("")

    # Timeouts (seconds).
    connect_timeout_s: float = Field(1.0, gt=0)
    read_timeout_s: float = Field(2.5, gt=0)
    attempt_timeout_s: float = Field(3.0, gt=0)
    request_deadline_s: float = Field(10.0, gt=0)
    page_budget_s: float = Field(4.0, gt=0)

    # Retries: wait = base * multiplier ** (retry - 1), capped at max delay.
    retries: bool = True
    max_retries: int = Field(3, ge=0)
    retry_base_delay_s: float = Field(1.0, ge=0)
    retry_multiplier: float = Field(2.0, ge=1)
    retry_max_delay_s: float = Field(30.0, ge=0)
    retry_jitter_s: float = Field(0.0, ge=0, description="uniform extra wait, 0 = exact schedule")
    honour_retry_after: bool = True

    # Concurrency and connection pool.
    parallel: bool = True
    # A page has up to ~20 agents: fetch them in one wave. Lower it to the plan's
    # concurrency limit when the upstream enforces a smaller one (429
    # concurrent_limit_exceeded with maximum-concurrent-requests says so).
    max_concurrency: int = Field(24, ge=1, description="in-flight upstream requests")
    max_connections: int = Field(32, ge=1)
    max_keepalive_connections: int = Field(24, ge=0)
    keepalive_expiry_s: float = Field(30.0, gt=0)

    # Circuit breaker.
    circuit_breaker: bool = True
    breaker_failure_threshold: int = Field(5, ge=1)
    breaker_cooldown_s: float = Field(5.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> ElevenLabsSettings:
        if self.max_connections < self.max_concurrency:
            raise ValueError("max_connections must be >= max_concurrency")
        return self

    @property
    def max_attempts(self) -> int:
        """Attempts per logical request (1 when retries are off)."""
        return 1 + self.max_retries if self.retries else 1

    def backoff_schedule(self) -> list[float]:
        """The nominal waits before retry 1..max_retries (no jitter, no Retry-After)."""
        return [backoff_delay(self, n) for n in range(1, self.max_retries + 1)]


def backoff_delay(settings: ElevenLabsSettings, retry_number: int) -> float:
    """Nominal wait before retry ``retry_number`` (1-based)."""
    delay = settings.retry_base_delay_s * settings.retry_multiplier ** (retry_number - 1)
    return min(delay, settings.retry_max_delay_s)
