"""Background work of the engine: voids holds whose timeout has passed, ends due notices,
closes due auctions and settles fully paid deals (each in a transaction of its own).

Runs in every API process by default (`EXCHANGE_RUN_WORKER`), or alone as `python -m exchange
worker`; many at once are safe (SKIP LOCKED, and a hold resolves at most once)."""

from __future__ import annotations

import asyncio
import functools

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.clock import Clock
from exchange.db import Database
from exchange.ledger import service as ledger
from exchange.listings import service as listings
from exchange.listings.service import DUE_BATCH_MAX, ListingRules
from exchange.settlement import service as settlement
from exchange.settlement.service import SETTLE_BATCH_MAX, SettlementRules

log = structlog.get_logger(__name__)
EXPIRY_BATCH_MAX = 500


async def expire_holds_once(db: Database, clock: Clock) -> int:
    return await db.run(lambda s: ledger.expire_due_holds(s, clock.now(), EXPIRY_BATCH_MAX))


async def process_due_listings_once(db: Database, clock: Clock, market: ListingRules) -> int:
    """End every due notice and close every due auction; another process doing the same at
    once is harmless (each takes the row locks and re-checks)."""
    due = await db.read(lambda s: listings.due_listing_ids(s, clock.now(), DUE_BATCH_MAX))
    done = 0
    for listing_id in due:
        done += await db.run(
            functools.partial(
                listings.process_due_now, listing_id=listing_id, clock=clock, market=market
            )
        )
    return done


async def settle_due_once(db: Database, clock: Clock, market: SettlementRules) -> int:
    """Settle every fully paid deal, each in its own transaction; a deal settles once however
    many processes try (the deal's row lock, and `settle` re-checks the state under it)."""
    due = await db.read(lambda s: settlement.due_settlements(s, SETTLE_BATCH_MAX))
    done = 0
    for deal_id in due:

        async def unit(session: AsyncSession, deal_id: str = deal_id) -> bool:
            return await settlement.settle(session, deal_id, market, clock.now()) is not None

        done += await db.run(unit)
    return done


async def run(
    db: Database,
    clock: Clock,
    interval_s: float,
    market: ListingRules,
    settlement_market: SettlementRules,
) -> None:
    while True:
        try:
            expired = await expire_holds_once(db, clock)
            if expired:
                log.info("holds_expired", count=expired)
            processed = await process_due_listings_once(db, clock, market)
            if processed:
                log.info("listings_processed", count=processed)
            settled = await settle_due_once(db, clock, settlement_market)
            if settled:
                log.info("deals_settled", count=settled)
            if expired == EXPIRY_BATCH_MAX:
                continue
        except asyncio.CancelledError:
            raise
        except Exception:  # the loop must outlive a failed round; the error is logged whole
            log.exception("worker_round_failed")
        await asyncio.sleep(interval_s)
