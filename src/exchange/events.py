"""The transactional outbox: every state change writes one event in its own transaction.

The change feed, webhooks and the docking index read these rows; the sync issue's worker numbers
them into the feed after commit (a number given at insert could be passed by a later commit).

A transaction's events are written together as it commits, by one INSERT of all of them: a
coalesced transaction of 32 bids wrote 32 ORM objects (an id read back for each), which cost
more than the bids did. They are therefore seen by reads after the commit, not before."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import BigInteger, Integer, String, Table, Text, event, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, mapped_column

from exchange.db import Base, UTCDateTime


class OutboxEvent(Base):
    __tablename__ = "outbox_event"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    type: Mapped[str] = mapped_column(String(64))
    aggregate_type: Mapped[str] = mapped_column(String(32))
    aggregate_id: Mapped[str] = mapped_column(String(80), index=True)
    version: Mapped[int] = mapped_column(Integer)
    payload: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    feed_seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)


_PENDING = "exchange.outbox.pending"  # the session's events not yet written (Session.info)


async def emit(
    session: AsyncSession,
    *,
    type: str,
    aggregate_type: str,
    aggregate_id: str,
    version: int,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """Record an event of this transaction: written as it commits, or never if it rolls back."""
    session.info.setdefault(_PENDING, []).append(
        {
            "type": type,
            "aggregate_type": aggregate_type,
            "aggregate_id": aggregate_id,
            "version": version,
            "payload": orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode(),
            "occurred_at": now,
            "feed_seq": None,
        }
    )


_INSERT = insert(cast(Table, OutboxEvent.__table__))


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        session.execute(_INSERT, pending)  # in the commit's greenlet: this may do I/O


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


async def events_of(session: AsyncSession, aggregate_id: str) -> list[OutboxEvent]:
    query = select(OutboxEvent).where(OutboxEvent.aggregate_id == aggregate_id)
    return list((await session.scalars(query.order_by(OutboxEvent.id))).all())
