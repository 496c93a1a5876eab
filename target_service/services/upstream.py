"""The ElevenLabs side of the service, built in the lifespan and closed there.

One shared `httpx.AsyncClient`, the retrying client on top of it, the config
cache (optimized profile), and the resolver the agents service uses. With
`TARGET_ELEVENLABS_ENABLED=false` the resolver serves stored snapshots only.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from target_service.cache.memory import CacheMetricFamilies, MemoryCache
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
    config_cache: MemoryCache | None = None

    @classmethod
    def build(cls, settings: Settings, metrics: ServiceMetrics, db: Database,
              jobs: JobQueue) -> UpstreamResources:
        if not settings.elevenlabs_enabled:
            return cls(resolver=SnapshotResolver())
        upstream = settings.upstream
        http = build_http_client(upstream)
        client = ElevenLabsClient(upstream, http, metrics=ElevenLabsMetrics(metrics.registry))
        cache = None
        if settings.flags.config_cache:
            cache = MemoryCache("agent_configs", max_entries=50_000, max_bytes=64 << 20,
                                default_ttl=settings.config_retention_s,
                                default_soft_ttl=settings.config_fresh_s,
                                metrics=metrics.cache_families)
        resolver = UpstreamConfigResolver(client, db, settings, cache, jobs)
        return cls(resolver=resolver, client=client, http=http, config_cache=cache)

    async def close(self) -> None:
        if self.config_cache is not None:
            await self.config_cache.close()
        if self.http is not None:
            await self.http.aclose()
