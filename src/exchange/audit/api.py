"""Audit routes: the audit trail, for auditors, operators and admins. Read-only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query
from pydantic import BaseModel

from exchange.audit.service import list_records
from exchange.auth.service import Principal, Role
from exchange.web import (
    PrefixedRouter,
    ServicesDep,
    decode_cursor,
    encode_cursor,
    problems,
    require,
)

router = PrefixedRouter(prefix="/v1/audit", tags=["audit"])


class AuditRecordOut(BaseModel):
    id: int
    at: datetime
    request_id: str | None
    key_id: str | None
    role: str | None
    party_id: str | None
    action: str
    target: str | None
    outcome: str
    status: int
    detail: str | None


class AuditRecordPage(BaseModel):
    items: list[AuditRecordOut]
    next_cursor: str | None


@router.get("/records", response_model=AuditRecordPage, responses=problems(422))
async def get_records(
    app: ServicesDep,
    _principal: Annotated[Principal, Depends(require(Role.auditor, Role.operator, Role.admin))],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
    target: Annotated[str | None, Query(max_length=128)] = None,
) -> AuditRecordPage:
    """Every state-changing request, in the order it was recorded."""
    after = decode_cursor(cursor, int)
    records = await app.db.read(
        lambda s: list_records(s, after_id=after, limit=limit, target=target)
    )
    items = [AuditRecordOut.model_validate(r, from_attributes=True) for r in records]
    next_cursor = encode_cursor(records[-1].id) if len(records) == limit else None
    return AuditRecordPage(items=items, next_cursor=next_cursor)
