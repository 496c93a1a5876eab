"""ElevenLabs Conversational AI client of the target service.

Modules: :mod:`.settings` (``ElevenLabsSettings``), :mod:`.client`
(``build_http_client``, ``ElevenLabsClient``), :mod:`.retry` (retry policy),
:mod:`.breaker` (``CircuitBreaker``), :mod:`.errors` (exception tree),
:mod:`.models` (``AgentConfig``, ``FetchResult``), :mod:`.metrics`
(``ElevenLabsMetrics``). The most used names are re-exported here.
"""

from target_service.elevenlabs.breaker import BreakerState, CircuitBreaker
from target_service.elevenlabs.client import ElevenLabsClient, build_http_client
from target_service.elevenlabs.errors import (
    AgentNotFound,
    AuthenticationFailed,
    CircuitOpen,
    ElevenLabsError,
    InvalidRequest,
    InvalidResponse,
    RateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from target_service.elevenlabs.metrics import ElevenLabsMetrics
from target_service.elevenlabs.models import AgentConfig, FetchResult
from target_service.elevenlabs.settings import ElevenLabsSettings

__all__ = [
    "AgentConfig",
    "AgentNotFound",
    "AuthenticationFailed",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpen",
    "ElevenLabsClient",
    "ElevenLabsError",
    "ElevenLabsMetrics",
    "ElevenLabsSettings",
    "FetchResult",
    "InvalidRequest",
    "InvalidResponse",
    "RateLimited",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "build_http_client",
]
