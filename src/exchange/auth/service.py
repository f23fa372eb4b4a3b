"""API key service: create, revoke, list, and authenticate a bearer token.

A token reads `exk.<key id>.<secret>`; the database keeps the SHA-256 of the secret (a 256-bit
random secret needs no slow hash), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth.models import ApiKey
from exchange.errors import NotFound, Unprocessable
from exchange.parties.service import get_party

TOKEN_PREFIX = "exk"


class Role(StrEnum):
    operator = "operator"
    member = "member"
    partner = "partner"
    station = "station"
    auditor = "auditor"
    admin = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    role: Role
    party_id: str | None
    name: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_key(
    session: AsyncSession, *, role: Role, party_id: str | None, name: str, now: datetime
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the token, which is not stored and is shown once."""
    if role is Role.member and party_id is None:
        raise Unprocessable("a member key needs a party", errors=[{"field": "party"}])
    if party_id is not None and await get_party(session, party_id) is None:
        raise NotFound(f"no party {party_id}", errors=[{"field": "party"}])
    key_id = "key_" + secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        id=key_id,
        name=name,
        role=role.value,
        party_id=party_id,
        secret_sha256=_digest(secret),
        created_at=now,
        revoked_at=None,
    )
    session.add(key)
    await session.flush()
    return key, f"{TOKEN_PREFIX}.{key_id}.{secret}"


async def revoke_key(session: AsyncSession, key_id: str, now: datetime) -> ApiKey:
    key = await session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"no API key {key_id}")
    if key.revoked_at is None:
        key.revoked_at = now
        await session.flush()
    return key


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    return list((await session.scalars(select(ApiKey).order_by(ApiKey.created_at))).all())


async def authenticate(session: AsyncSession, token: str) -> Principal | None:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or len(parts[1]) > 40:
        return None
    key = await session.get(ApiKey, parts[1])
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.secret_sha256, _digest(parts[2])):
        return None
    return Principal(key_id=key.id, role=Role(key.role), party_id=key.party_id, name=key.name)
