"""The ElevenLabs side of the service, built in the lifespan and closed there.

One shared `httpx.AsyncClient`, the retrying client on top of it, and the
resolver (which uses the AgentCache's configurations in the optimized profile) the agents service uses. With
`TARGET_ELEVENLABS_ENABLED=false` the resolver serves stored snapshots only.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from target_service.cache.agents import AgentCache
from target_service.db.pool import Database
from target_service.elevenlabs.client import ElevenLabsClient, build_http_client
from target_service.elevenlabs.metrics import ElevenLabsMetrics
from target_service.jobs import JobQueue
from target_service.services.agent_configs import UpstreamConfigResolver
from target_service.services.agents import ConfigResolver, SnapshotResolver
from target_service.settings import Settings
from target_service.telemetry import ServiceMetrics


@dataclass
class UpstreamResources:
    """Everything upstream-related the lifespan owns."""

    resolver: ConfigResolver
    client: ElevenLabsClient | None = None
    http: httpx.AsyncClient | None = None

    @classmethod
    def build(cls, settings: Settings, metrics: ServiceMetrics, db: Database,
              jobs: JobQueue, cache: AgentCache | None) -> UpstreamResources:
        if not settings.elevenlabs_enabled:
            return cls(resolver=SnapshotResolver())
        upstream = settings.upstream
        http = build_http_client(upstream)
        client = ElevenLabsClient(upstream, http, metrics=ElevenLabsMetrics(metrics.registry))
        configs = cache if settings.flags.config_cache else None
        resolver = UpstreamConfigResolver(client, db, settings, configs, jobs)
        return cls(resolver=resolver, client=client, http=http)

    async def close(self) -> None:
        if self.http is not None:
            await self.http.aclose()
