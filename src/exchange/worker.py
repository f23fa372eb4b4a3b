"""Background work of the engine: voids holds whose timeout has passed.

Runs in every API process by default (`EXCHANGE_RUN_WORKER`), or alone as `python -m exchange
worker`; many at once are safe (SKIP LOCKED, and a hold resolves at most once)."""

from __future__ import annotations

import asyncio

import structlog

from exchange.clock import Clock
from exchange.db import Database
from exchange.ledger import service as ledger

log = structlog.get_logger(__name__)
EXPIRY_BATCH_MAX = 500


async def expire_holds_once(db: Database, clock: Clock) -> int:
    return await db.run(lambda s: ledger.expire_due_holds(s, clock.now(), EXPIRY_BATCH_MAX))


async def run(db: Database, clock: Clock, interval_s: float) -> None:
    while True:
        try:
            expired = await expire_holds_once(db, clock)
            if expired:
                log.info("holds_expired", count=expired)
            if expired == EXPIRY_BATCH_MAX:
                continue
        except asyncio.CancelledError:
            raise
        except Exception:  # the loop must outlive a failed round; the error is logged whole
            log.exception("worker_round_failed")
        await asyncio.sleep(interval_s)
