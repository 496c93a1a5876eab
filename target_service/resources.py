"""Everything a service process owns, built when the lifespan starts, closed when it ends.

The order matters and is written once, here: the pool first; then the job
queue and the caches (which services fill); the invalidation listener before
any request can cache anything (it clears on connect); warming last, as
background jobs. Shutdown runs in reverse and is bounded: jobs are drained or
cancelled within a few seconds, connections closed.

Tracing (`tracing.py`) is started by the lifespan before this and handed in:
every component gets its tracer here (None when tracing is off), and the
ElevenLabs `httpx.AsyncClient` is instrumented as soon as it exists.

The runtime monitor (`runtime.py`: event-loop lag, GC pauses, CPU, memory) starts
once everything else is open, so a failed start leaves no task behind, and stops
first; the last step retires this process's live gauges (multiprocess mode).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass, field

from target_service.cache.caches import Caches
from target_service.cache.invalidation import InvalidationListener
from target_service.db.kpi_refresher import KpiRefresher
from target_service.db.pool import Database
from target_service.job_metrics import JobMetrics
from target_service.jobs import JobQueue
from target_service.runtime import (
    RuntimeMetrics,
    RuntimeMonitor,
    freeze_startup_heap,
    set_young_threshold,
    thaw_heap,
)
from target_service.services.activity import ActivityService
from target_service.services.agents import AgentsService
from target_service.services.dashboard import DashboardService
from target_service.services.upstream import UpstreamResources
from target_service.services.warming import Warmer
from target_service.settings import Settings
from target_service.telemetry import ServiceMetrics
from target_service.tracing import Tracing

log = logging.getLogger("target_service")


@dataclass
class Resources:
    """What routes get injected (see deps.py) and what the lifespan must close."""

    settings: Settings
    metrics: ServiceMetrics
    db: Database
    jobs: JobQueue
    caches: Caches
    upstream: UpstreamResources
    dashboard: DashboardService
    agents: AgentsService
    activity: ActivityService
    refresher: KpiRefresher | None = None
    listener: InvalidationListener | None = None
    warmer: Warmer | None = None
    ready_checks: dict[str, object] = field(default_factory=dict)
    tracing: Tracing = field(default_factory=Tracing.off)
    runtime: RuntimeMonitor | None = None
    gc_before: tuple[int, int, int] | None = None
    """The GC thresholds before `Settings.gc_young_threshold` was applied, restored on close."""

    @classmethod
    async def open(cls, settings: Settings, metrics: ServiceMetrics,
                   tracing: Tracing | None = None) -> Resources:
        flags, dsn = settings.flags, settings.database_url.get_secret_value()
        tracing = tracing or Tracing.off()
        tracer = tracing.tracer
        db = await Database.connect(settings, metrics, tracer=tracer)
        jobs = JobQueue("service", workers=2, max_queued=10_000,
                        metrics=JobMetrics(metrics.registry), tracer=tracer)
        jobs.start()
        caches = Caches.build(settings, metrics.cache_families, tracer=tracer)
        upstream = UpstreamResources.build(settings, metrics, db, jobs, caches.agents)
        if upstream.client is not None:
            upstream.client.tracer = tracer
            tracing.instrument_http(upstream.http)
        dashboard = DashboardService(db, settings, caches.dashboard, tracer=tracer)
        agents = AgentsService(db, settings, upstream.resolver,
                               caches.agents if flags.response_cache else None)
        res = cls(settings=settings, metrics=metrics, db=db, jobs=jobs, caches=caches,
                  upstream=upstream, dashboard=dashboard, agents=agents,
                  activity=ActivityService(db, caches), tracing=tracing)
        if flags.response_cache and flags.warm_cache:
            res.warmer = Warmer(db, jobs, dashboard, agents)
        if caches.enabled:  # the auth cache alone needs the feed too (api_key_changed)
            res.listener = InvalidationListener(
                dsn, caches, metrics, backoff=settings.cache.listener_backoff_s,
                on_overview_evicted=res.warmer.rewarm_overview if res.warmer else None)
            await res.listener.start()
            res.ready_checks["cache_listener"] = lambda: res.listener.connected.is_set()
            try:  # warm only once the feed is up: connecting clears the caches
                await asyncio.wait_for(res.listener.connected.wait(), timeout=10)
            except TimeoutError:
                log.warning("cache invalidation feed not connected yet; /readyz says so")
        if flags.kpi_view and flags.kpi_refresher:
            res.refresher = KpiRefresher(dsn, db, jobs, metrics,
                                         debounce=settings.kpi_debounce_s,
                                         max_delay=settings.kpi_max_delay_s, tracer=tracer)
            await res.refresher.start()
            res.ready_checks["kpi_refresher"] = lambda: (res.refresher.alive
                                                         and res.refresher.connected)
        if res.warmer is not None and flags.kpi_view:
            await res.warmer.warm_top(settings.cache.warm_top_users)
        frozen = freeze_startup_heap() if settings.gc_freeze else 0
        if settings.gc_young_threshold is not None:
            res.gc_before = set_young_threshold(settings.gc_young_threshold)
        res.runtime = RuntimeMonitor(RuntimeMetrics(metrics.registry))
        res.runtime.metrics.frozen.set(frozen)
        res.runtime.start()
        metrics.render_hooks.append(res.runtime.sample)
        log.info("target service ready (profile=%s)", settings.profile)
        return res

    async def close(self) -> None:
        if self.runtime is not None:
            if self.runtime.sample in self.metrics.render_hooks:
                self.metrics.render_hooks.remove(self.runtime.sample)
            await self.runtime.stop()
        for task in (self.refresher, self.listener):
            if task is not None:
                await task.stop()
        await self.jobs.close(timeout=5.0)
        await self.upstream.close()
        await self.caches.close()
        await self.db.close()
        if self.settings.gc_freeze:
            thaw_heap()
        if self.gc_before is not None:
            gc.set_threshold(*self.gc_before)
        self.metrics.retire_process()
