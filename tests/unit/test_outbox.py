"""The outbox writes a transaction's events as it commits: all of them, in order, once; none
when the transaction rolls back, and once when a retried unit of work commits."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.db import Database
from exchange.events import emit, events_of
from tests.conftest import uid

if TYPE_CHECKING:
    from tests.conftest import TestClock


async def _emit(session: AsyncSession, aggregate_id: str, version: int, now: object) -> None:
    await emit(
        session,
        type="test.happened",
        aggregate_type="test",
        aggregate_id=aggregate_id,
        version=version,
        payload={"version": version, "b": 1, "a": 2},
        now=now,  # type: ignore[arg-type]
    )


async def test_a_transactions_events_are_written_as_it_commits_in_order(
    db: Database, clock: TestClock
) -> None:
    aggregate = uid("agg")
    at = clock.now()

    async def work(session: AsyncSession) -> list[str]:
        for version in (1, 2, 3):
            await _emit(session, aggregate, version, at)
        # Not written before the commit: a read in the same transaction does not see them.
        return [e.type for e in await events_of(session, aggregate)]

    assert await db.run(work) == []
    events = await db.read(lambda s: events_of(s, aggregate))
    assert [e.version for e in events] == [1, 2, 3]
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert events[0].payload == '{"a":2,"b":1,"version":1}'  # canonical: sorted keys
    assert all(e.occurred_at == at and e.feed_seq is None for e in events)


async def test_a_rolled_back_transaction_writes_no_event(db: Database, clock: TestClock) -> None:
    aggregate = uid("agg")

    async def work(session: AsyncSession) -> None:
        await _emit(session, aggregate, 1, clock.now())
        raise ValueError("refused after the event")

    with pytest.raises(ValueError, match="refused after the event"):
        await db.run(work)
    assert await db.read(lambda s: events_of(s, aggregate)) == []


async def test_a_retried_unit_of_work_writes_its_events_once(
    db: Database, clock: TestClock
) -> None:
    aggregate = uid("agg")
    attempts = 0

    async def work(session: AsyncSession) -> None:
        nonlocal attempts
        attempts += 1
        await _emit(session, aggregate, 1, clock.now())
        if attempts == 1:  # a retryable failure after the event: the unit runs again
            raise OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked"))

    await db.run(work)
    assert attempts == 2
    assert [e.version for e in await db.read(lambda s: events_of(s, aggregate))] == [1]
