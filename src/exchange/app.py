"""The app factory: settings, database, clock, middleware, problem handlers and routers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator

import structlog
from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exchange import __version__, logs, metrics, problems, worker
from exchange.assets.api import router as assets_router
from exchange.audit.api import router as audit_router
from exchange.clock import Clock, SystemClock
from exchange.config import Settings, get_settings
from exchange.db import Database
from exchange.deals.api import router as deals_router
from exchange.docking.api import router as docking_router
from exchange.docking.runtime import DockingRuntime
from exchange.evidence.api import router as evidence_router
from exchange.health import router as health_router
from exchange.ledger.api import router as ledger_router
from exchange.ledger.api import transfer_out
from exchange.ledger.coalescer import transfer_coalescer
from exchange.listings.api import bid_coalescer
from exchange.listings.api import router as listings_router
from exchange.listings.service import ListingRules
from exchange.parties.api import router as parties_router
from exchange.settlement.api import router as settlement_router
from exchange.settlement.service import SettlementRules
from exchange.web import AuthCache, Services

access_log = structlog.get_logger("exchange.access")


class AccessLog:
    """One JSON line per request: method, path, status, duration (and the request id)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            access_log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or get_settings()
    logs.configure(settings.log_level, settings.log_json)
    db = Database(settings)
    clock = clock or SystemClock()
    services = Services(
        settings=settings,
        db=db,
        clock=clock,
        auth_cache=AuthCache(ttl_s=settings.auth_cache_ttl_s),
        docking=DockingRuntime(db, clock),
        transfers=transfer_coalescer(db, clock, transfer_out),
        bids=bid_coalescer(db, clock),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        docking = services.docking
        assert docking is not None
        await docking.rebuild()
        # What start-up built lives as long as the process: keep the collector off it, so a
        # full collection never walks it inside a ledger write.
        gc.freeze()
        tasks = (
            [
                asyncio.create_task(
                    worker.run(
                        db,
                        clock,
                        settings.worker_interval_s,
                        ListingRules.of(settings),
                        SettlementRules.of(settings),
                    )
                ),
                asyncio.create_task(docking.run(settings.docking_refresh_interval_s)),
            ]
            if settings.run_worker
            else []
        )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await db.dispose()

    app = FastAPI(
        title="Technology exchange transaction engine",
        version=__version__,
        description="Rights confirmation, pricing, bidding, settlement and credit enhancement "
        "of technology transactions, over a double-entry ledger. Errors are RFC 9457 "
        'problem+json; money is `{"amount": "12.50", "currency": "CNY"}`.',
        lifespan=lifespan,
    )
    app.state.services = services
    problems.install(app)
    # Routes are matched one by one in this order: the hot ones (transfers, bids) come first.
    app.include_router(ledger_router)
    app.include_router(listings_router)
    app.include_router(health_router)
    app.include_router(parties_router)
    app.include_router(assets_router)
    app.include_router(evidence_router)
    app.include_router(deals_router)
    app.include_router(settlement_router)
    app.include_router(docking_router)
    app.include_router(audit_router)
    metrics.install(app)
    app.add_middleware(
        problems.BodyGuard,
        body_bytes_max=settings.body_bytes_max,
        raw_bodies={"/v1/evidence": settings.evidence_bytes_max},
    )
    app.add_middleware(AccessLog)
    app.add_middleware(CorrelationIdMiddleware, header_name="X-Request-ID")
    return app
