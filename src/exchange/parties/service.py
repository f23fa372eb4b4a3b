"""Party service: create and look up parties."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from exchange.parties.models import Party


async def create_party(
    session: AsyncSession, *, party_id: str, name: str, kind: str, now: datetime
) -> Party:
    party = Party(id=party_id, name=name, kind=kind, created_at=now)
    session.add(party)
    await session.flush()
    return party


async def get_party(session: AsyncSession, party_id: str) -> Party | None:
    return await session.get(Party, party_id)
