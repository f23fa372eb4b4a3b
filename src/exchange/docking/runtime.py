"""The docking index of one API process: built from the database at start, kept fresh from the
outbox, and announcing the top matches of every new or changed demand and supply.

Each process keeps its own index the same way. The outbox is read by id; an event committed late
with a lower id than ones already seen is still caught, because each read looks back over a
window of ids below the newest seen and skips the ones already applied."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.clock import Clock
from exchange.db import Database
from exchange.docking import service as docking
from exchange.docking.index import DockingIndex, Document, Match
from exchange.events import OutboxEvent

log = structlog.get_logger(__name__)
LOOKBACK_IDS = 512  # how far below the newest event id a late commit is still looked for
EVENTS_PER_READ_MAX = 1000
ANNOUNCED_MATCHES = 10
REBUILD_EVENT = "docking.rebuild_requested"


@dataclass
class DockingRuntime:
    db: Database
    clock: Clock
    index: DockingIndex = field(default_factory=DockingIndex)
    newest_id: int = 0
    applied: set[int] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def rebuild(self) -> int:
        """A fresh index from the database. The outbox position is read first, so an event
        committed during the load is applied again by the next refresh (upserts are idempotent)."""
        async with self.lock:
            newest = await self.db.read(_newest_event_id)
            supplies = await self.db.read(lambda s: docking.supply_documents(s))
            demands = await self.db.read(lambda s: docking.demand_documents(s))
            documents = [d for d in (*supplies.values(), *demands.values()) if d is not None]
            # Tokenising a large corpus is CPU work: build the new index off the event loop,
            # then swap it in. The index is private to that thread until the swap.
            index = await asyncio.to_thread(DockingIndex, documents)
            self.index, self.newest_id, self.applied = index, newest, set()
            log.info("docking_index_built", documents=len(index), outbox_id=newest)
            return len(index)

    async def refresh(self) -> list[str]:
        """Apply outbox events not yet seen; returns the documents upserted."""
        async with self.lock:
            events = await self.db.read(lambda s: _events_after(s, self.newest_id))
            fresh = [e for e in events if e.id not in self.applied]
            if not fresh:
                return []
            if any(e.type == REBUILD_EVENT for e in fresh):
                rebuild_needed = True
            else:
                rebuild_needed = False
                changed = await self.db.read(lambda s: _documents_for(s, fresh))
                for doc_id, document in changed.items():
                    if document is None:
                        self.index.remove(doc_id)
                    else:
                        self.index.upsert(document)
            self.newest_id = max(self.newest_id, *(e.id for e in fresh))
            self.applied.update(e.id for e in fresh)
            self.applied = {i for i in self.applied if i > self.newest_id - 2 * LOOKBACK_IDS}
        if rebuild_needed:
            await self.rebuild()
            return []
        return [doc_id for doc_id, document in changed.items() if document is not None]

    async def announce(self, subjects: Iterable[str]) -> int:
        """Compute, keep and announce the top matches of each new or changed subject."""
        announced = 0
        for subject in subjects:
            announced += await self._announce(subject)
        return announced

    async def _announce(self, subject: str) -> int:
        document = self.index.get(subject)
        if document is None:
            return 0
        rows = [match_row(m) for m in self.index.match(document, k=ANNOUNCED_MATCHES)]
        owner = await self.db.read(lambda s: docking.subject_owner_and_version(s, subject))
        if owner is None:
            return 0
        party_id, version = owner
        try:
            await self.db.run(
                lambda s: docking.record_match_set(
                    s, subject, version, party_id, rows, self.clock.now()
                ),
                attempts_max=1,
            )
        except IntegrityError:
            return 0  # another process announced this version first
        return 1

    async def run(self, interval_s: float) -> None:
        while True:
            try:
                await self.announce(await self.refresh())
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must outlive a failed round; the error is logged whole
                log.exception("docking_refresh_failed")
            await asyncio.sleep(interval_s)


def match_row(match: Match) -> dict[str, object]:
    kind, _, identifier = match.document_id.partition(":")
    return {
        "id": identifier,
        "kind": kind,
        "score": match.score,
        "components": dict(match.components),
        "matched_terms": list(match.matched_terms),
        "ipc_depth": match.ipc_depth,
    }


async def _newest_event_id(session: AsyncSession) -> int:
    return int(
        (await session.execute(select(func.coalesce(func.max(OutboxEvent.id), 0)))).scalar_one()
    )


async def _events_after(session: AsyncSession, newest_id: int) -> list[OutboxEvent]:
    query = (
        select(OutboxEvent)
        .where(OutboxEvent.id > newest_id - LOOKBACK_IDS)
        .order_by(OutboxEvent.id)
        .limit(EVENTS_PER_READ_MAX)
    )
    return list((await session.scalars(query)).all())


async def _documents_for(
    session: AsyncSession, events: list[OutboxEvent]
) -> dict[str, Document | None]:
    deal_ids: set[str] = set()
    demand_ids: set[str] = set()
    for event in events:
        if event.aggregate_type == "deal" and event.type.startswith("deal."):
            deal_ids.add(event.aggregate_id)
        elif event.aggregate_type == "asset":
            deal_ids.update(await docking.deals_of_asset(session, event.aggregate_id))
        elif event.aggregate_type == "demand":
            demand_ids.add(event.aggregate_id)
    documents: dict[str, Document | None] = {}
    if deal_ids:
        documents.update(await docking.supply_documents(session, sorted(deal_ids)))
    if demand_ids:
        documents.update(await docking.demand_documents(session, sorted(demand_ids)))
    return documents
