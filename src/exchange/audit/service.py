"""Audit service: write one record per state-changing request; read them back in order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.audit.models import AuditRecord
from exchange.auth.service import Principal

_records = cast(Table, AuditRecord.__table__)
# Built once: every state-changing request runs it inside its unit of work.
_INSERT = insert(_records)


@dataclass(frozen=True, slots=True)
class Actor:
    principal: Principal | None
    request_id: str | None


def entry(
    actor: Actor,
    *,
    action: str,
    target: str | None,
    outcome: str,
    status: int,
    at: datetime,
    detail: str | None = None,
) -> dict[str, Any]:
    """One audit record's values, for `record_all`."""
    principal = actor.principal
    return {
        "at": at,
        "request_id": actor.request_id,
        "key_id": principal.key_id if principal else None,
        "role": principal.role.value if principal else None,
        "party_id": principal.party_id if principal else None,
        "action": action,
        "target": target,
        "outcome": outcome,
        "status": status,
        "detail": detail,
    }


async def record(
    session: AsyncSession,
    actor: Actor,
    *,
    action: str,
    target: str | None,
    outcome: str,
    status: int,
    at: datetime,
    detail: str | None = None,
) -> None:
    values = entry(
        actor, action=action, target=target, outcome=outcome, status=status, at=at, detail=detail
    )
    await session.execute(_INSERT, values)


async def record_all(session: AsyncSession, entries: list[dict[str, Any]]) -> None:
    """Several records in one statement (the requests of one coalesced transaction)."""
    if len(entries) == 1:
        await session.execute(_INSERT, entries[0])  # a plain execute: cheaper than executemany
    elif entries:
        await session.execute(_INSERT, entries)


async def list_records(
    session: AsyncSession, *, after_id: int | None, limit: int, target: str | None
) -> list[AuditRecord]:
    query = select(AuditRecord).order_by(AuditRecord.id).limit(limit)
    if after_id is not None:
        query = query.where(AuditRecord.id > after_id)
    if target is not None:
        query = query.where(AuditRecord.target == target)
    return list((await session.scalars(query)).all())
