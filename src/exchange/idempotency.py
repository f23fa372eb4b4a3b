"""The Idempotency-Key table: a POST's response, kept so that a retry replays it.

Stored in the unit of work that made the response, so a response is remembered exactly when its
effects committed. The same key with another request body is refused (422).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db import Base, UTCDateTime
from exchange.errors import IdempotencyKeyReused

KEY_LENGTH_MAX = 128


class IdempotencyKey(Base):
    __tablename__ = "idempotency_key"

    principal_key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH_MAX), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


async def replay(
    session: AsyncSession, principal_key_id: str, key: str, fingerprint: str
) -> tuple[int, bytes] | None:
    stored = await session.get(IdempotencyKey, (principal_key_id, key))
    if stored is None:
        return None
    if stored.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with another request",
            errors=[{"field": "Idempotency-Key", "code": "reused"}],
        )
    return stored.status, stored.body


async def remember(
    session: AsyncSession,
    principal_key_id: str,
    key: str,
    fingerprint: str,
    status: int,
    body: bytes,
    now: datetime,
) -> None:
    session.add(
        IdempotencyKey(
            principal_key_id=principal_key_id,
            key=key,
            fingerprint=fingerprint,
            status=status,
            body=body,
            created_at=now,
        )
    )
    await session.flush()
