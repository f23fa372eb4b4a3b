"""A small demo: two parties, their accounts, the exchange's accounts, a few transfers and keys."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth.models import ApiKey
from exchange.auth.service import Role, create_key, revoke_key
from exchange.clock import Clock
from exchange.db import Database
from exchange.identifiers import uscc_check_character
from exchange.ledger import service as ledger
from exchange.parties.service import create_party, get_party

DEMO_KEY_PREFIX = "demo "
PARTIES = (
    (
        "demo-university",
        "Demo University Technology Transfer Centre",
        "university",
        "12310000425006117",
    ),
    ("demo-enterprise", "Demo Advanced Materials Co., Ltd.", "enterprise", "91310115MA1K4D6X5"),
)


@dataclass(frozen=True)
class DemoKey:
    role: str
    party_id: str | None
    token: str


async def seed(db: Database, clock: Clock) -> list[DemoKey]:
    """Create the demo data once; each run revokes the previous demo keys and prints new ones."""
    await db.run(lambda session: _seed_ledger(session, clock))
    return await db.run(lambda session: _fresh_keys(session, clock))


async def _seed_ledger(session: AsyncSession, clock: Clock) -> None:
    now = clock.now()
    for party_id, name, kind, uscc_body in PARTIES:
        if await get_party(session, party_id) is None:
            await create_party(
                session,
                party_id=party_id,
                name=name,
                kind=kind,
                now=now,
                uscc=uscc_body + uscc_check_character(uscc_body),
            )
        await ledger.create_account(
            session,
            ledger.AccountSpec(
                id=f"{party_id}-available-cny",
                currency="CNY",
                code="available",
                owner_type="party",
                owner_id=party_id,
                debits_must_not_exceed_credits=True,
            ),
            now,
        )
    for account_id, code in (
        ("exchange-clearing-cny", "external_clearing"),
        ("exchange-deposit-cny", "deposit"),
        ("exchange-fee-revenue-cny", "fee_revenue"),
    ):
        await ledger.create_account(
            session,
            ledger.AccountSpec(id=account_id, currency="CNY", code=code, owner_type="exchange"),
            now,
        )
    await ledger.create_transfers(
        session,
        [
            ledger.TransferSpec(
                "demo-fund-enterprise",
                "exchange-clearing-cny",
                "demo-enterprise-available-cny",
                500_000_000,
                "CNY",
                "funding",
            ),
            ledger.TransferSpec(
                "demo-deposit-hold",
                "demo-enterprise-available-cny",
                "exchange-deposit-cny",
                5_000_000,
                "CNY",
                "deposit",
                pending=True,
            ),
            ledger.TransferSpec(
                "demo-listing-fee",
                "demo-enterprise-available-cny",
                "exchange-fee-revenue-cny",
                80_000,
                "CNY",
                "fee",
            ),
        ],
        now,
    )


async def _fresh_keys(session: AsyncSession, clock: Clock) -> list[DemoKey]:
    now = clock.now()
    old = await session.scalars(
        select(ApiKey).where(ApiKey.name.startswith(DEMO_KEY_PREFIX), ApiKey.revoked_at.is_(None))
    )
    for key in old.all():
        await revoke_key(session, key.id, now)
    wanted = [
        (Role.admin, None),
        (Role.operator, None),
        (Role.auditor, None),
        *((Role.member, party_id) for party_id, *_ in PARTIES),
    ]
    keys = []
    for role, party_id in wanted:
        _, token = await create_key(
            session,
            role=role,
            party_id=party_id,
            name=f"{DEMO_KEY_PREFIX}{role}" + (f" {party_id}" if party_id else ""),
            now=now,
        )
        keys.append(DemoKey(role.value, party_id, token))
    return keys
