"""The application factory. Nothing is built at import time.

`create_app(settings)` returns an app whose lifespan opens the pool, starts
the background tasks and closes both on shutdown; run it with
`uvicorn --factory target_service.app:create_app` or `python -m target_service`.
Tests build apps with their own settings and drive them through
`httpx.ASGITransport` inside `LifespanManager`-style `app.router.lifespan_context`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware

from target_service.api import activity, agents, dashboard, health
from target_service.db.kpi_refresher import KpiRefresher
from target_service.db.pool import Database
from target_service.deps import Resources
from target_service.errors import ApiError, DatabaseUnavailable
from target_service.services.activity import ActivityService
from target_service.jobs import JobMetrics, JobQueue
from target_service.services.agents import AgentsService
from target_service.services.upstream import UpstreamResources
from target_service.services.dashboard import DashboardService
from target_service.settings import Settings
from target_service.telemetry import RequestMetricsMiddleware, ServiceMetrics

log = logging.getLogger("target_service")


def _error(status: int, code: str, message: str, details: object | None = None) -> JSONResponse:
    body: dict = {"error": {"code": code, "message": message}}
    if details is not None:
        body["error"]["details"] = details
    return JSONResponse(body, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    """Every error becomes `{"error": {code, message}}`; bad input is always a 4xx."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status_code, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")}
                   for e in exc.errors()]
        return _error(422, "validation_error", "request validation failed", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(DatabaseUnavailable)
    async def db_unavailable(_: Request, exc: DatabaseUnavailable) -> JSONResponse:
        return _error(503, "database_unavailable", str(exc))

    @app.exception_handler(asyncpg.QueryCanceledError)
    async def query_canceled(_: Request, exc: asyncpg.QueryCanceledError) -> JSONResponse:
        return _error(503, "query_timeout", "a database query exceeded its time limit")


def create_app(settings: Settings | None = None,
               registry: CollectorRegistry | None = None) -> FastAPI:
    """Build the app; resources are created when the lifespan starts, not here."""
    settings = settings or Settings()
    metrics = ServiceMetrics(registry or CollectorRegistry())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = await Database.connect(settings, metrics)
        jobs = JobQueue("service", workers=2, max_queued=10_000,
                        metrics=JobMetrics(metrics.registry))
        jobs.start()
        upstream = UpstreamResources.build(settings, metrics, db, jobs)
        refresher: KpiRefresher | None = None
        ready: dict[str, object] = {}
        if settings.flags.kpi_view and settings.flags.kpi_refresher:
            refresher = KpiRefresher(settings.database_url.get_secret_value(), metrics,
                                     debounce=settings.kpi_debounce_s,
                                     max_delay=settings.kpi_max_delay_s)
            await refresher.start()
            ready["kpi_refresher"] = lambda: refresher.alive
        app.state.resources = Resources(
            settings=settings, db=db,
            dashboard=DashboardService(db, settings),
            agents=AgentsService(db, settings, upstream.resolver),
            activity=ActivityService(db),
            ready_checks=ready,
        )
        app.state.kpi_refresher = refresher
        app.state.jobs = jobs
        app.state.upstream = upstream
        log.info("target service ready (profile=%s)", settings.profile)
        try:
            yield
        finally:
            if refresher is not None:
                await refresher.stop()
            await upstream.close()
            await jobs.close(timeout=5.0)
            await db.close()

    app = FastAPI(title="Voice-agent dashboard API", version="1.0.0", lifespan=lifespan)
    app.state.metrics = metrics
    app.state.settings = settings
    install_error_handlers(app)
    for module in (dashboard, agents, activity, health):
        app.include_router(module.router)
    app.add_middleware(GZipMiddleware, minimum_size=settings.gzip_minimum_size,
                       compresslevel=settings.gzip_level)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    return app
