"""The application factory. Nothing is built at import time.

`create_app(settings)` returns an app whose lifespan opens the pool, starts
the background tasks and closes both on shutdown; run it with
`uvicorn --factory target_service.app:create_app` or `python -m target_service`.
Tests build apps with their own settings and drive them through
`httpx.ASGITransport` inside `LifespanManager`-style `app.router.lifespan_context`.

Tracing starts first in the lifespan and stops last (`tracing.py`): the app is
instrumented there, not here, and uninstrumented on shutdown. Tests pass a
`span_exporter` (e.g. the SDK's `InMemorySpanExporter`) to trace whatever the
settings say, exporting synchronously.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware

from target_service.api import activity, agents, dashboard, health
from target_service.errors import RETRY_AFTER_S, ApiError, DatabaseUnavailable
from target_service.resources import Resources
from target_service.settings import Settings, effective_settings
from target_service.shedding import LoadSheddingMiddleware, shed_counter
from target_service.telemetry import RequestMetricsMiddleware, ServiceMetrics
from target_service.tracing import Tracing

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger("target_service")


def _error(status: int, code: str, message: str, details: object | None = None) -> JSONResponse:
    body: dict = {"error": {"code": code, "message": message}}
    if details is not None:
        body["error"]["details"] = details
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return JSONResponse(body, status_code=status, headers=headers)


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
               registry: CollectorRegistry | None = None, *,
               span_exporter: SpanExporter | None = None) -> FastAPI:
    """Build the app; resources (and tracing) are created when the lifespan starts, not here."""
    settings = settings or Settings()
    metrics = ServiceMetrics(registry or CollectorRegistry())
    metrics.publish_settings(effective_settings(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tracing = Tracing.start(settings, span_exporter)
        app.state.tracing = tracing
        try:
            tracing.instrument_app(app)
            resources = await Resources.open(settings, metrics, tracing)
            app.state.resources = resources
            try:
                yield
            finally:
                await resources.close()
        finally:
            await tracing.shutdown()

    app = FastAPI(title="Voice-agent dashboard API", version="1.0.0", lifespan=lifespan)
    app.state.metrics = metrics
    app.state.settings = settings
    install_error_handlers(app)
    for module in (dashboard, agents, activity, health):
        app.include_router(module.router)
    app.add_middleware(GZipMiddleware, minimum_size=settings.gzip_minimum_size,
                       compresslevel=settings.gzip_level)
    # outermost last: metrics time everything, shed 503s included, then shedding, then gzip
    app.add_middleware(LoadSheddingMiddleware, shed=shed_counter(metrics.registry),
                       limit=settings.max_in_flight if settings.flags.load_shedding else None,
                       floor_ms=settings.service_floor_ms)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    return app
