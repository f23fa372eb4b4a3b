"""Party service: register and look up parties; open their ledger accounts per currency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.errors import Conflict
from exchange.events import emit
from exchange.ledger import service as ledger
from exchange.ledger.models import Account, AccountCode, OwnerType
from exchange.parties.models import Party, PartyKind

PARTY_ACCOUNT_CODES = (AccountCode.available, AccountCode.deposit)


@dataclass(frozen=True, slots=True)
class PartySpec:
    id: str
    name: str
    kind: PartyKind
    country: str = "CN"
    uscc: str | None = None
    registration_number: str | None = None
    region: str | None = None


class PartyExists(Conflict):
    code = "party_exists"
    title = "Party exists"


async def create_party(
    session: AsyncSession,
    *,
    party_id: str,
    name: str,
    kind: str,
    now: datetime,
    country: str = "CN",
    uscc: str | None = None,
    registration_number: str | None = None,
    region: str | None = None,
) -> Party:
    if await session.get(Party, party_id) is not None:
        raise PartyExists(f"party {party_id} exists", errors=[{"field": "id", "code": "taken"}])
    if uscc is not None:
        holder = (await session.scalars(select(Party.id).where(Party.uscc == uscc))).first()
        if holder is not None:
            raise PartyExists(
                f"unified social credit code {uscc} is registered to party {holder}",
                errors=[{"field": "uscc", "code": "taken"}],
            )
    party = Party(
        id=party_id,
        name=name,
        kind=kind,
        country=country,
        uscc=uscc,
        registration_number=registration_number,
        region=region,
        version=1,
        created_at=now,
    )
    session.add(party)
    await session.flush()
    await emit(
        session,
        type="party.registered",
        aggregate_type="party",
        aggregate_id=party_id,
        version=1,
        payload={"id": party_id, "kind": kind, "country": country, "name": name},
        now=now,
    )
    return party


async def get_party(session: AsyncSession, party_id: str) -> Party | None:
    return await session.get(Party, party_id)


async def list_parties(
    session: AsyncSession, *, after_id: str | None, limit: int, kind: str | None
) -> list[Party]:
    query = select(Party).order_by(Party.id).limit(limit)
    if after_id is not None:
        query = query.where(Party.id > after_id)
    if kind is not None:
        query = query.where(Party.kind == kind)
    return list((await session.scalars(query)).all())


def party_account_id(party_id: str, code: AccountCode, currency: str) -> str:
    return f"{party_id}.{code.value}.{currency}"


async def open_accounts(
    session: AsyncSession, party_id: str, currency: str, now: datetime
) -> list[Account]:
    """The party's available and deposit accounts in `currency`, opened on first use. Both may
    not go below zero: debits must not exceed credits."""
    accounts = []
    for code in PARTY_ACCOUNT_CODES:
        account, _ = await ledger.create_account(
            session,
            ledger.AccountSpec(
                id=party_account_id(party_id, code, currency),
                currency=currency,
                code=code.value,
                owner_type=OwnerType.party.value,
                owner_id=party_id,
                debits_must_not_exceed_credits=True,
            ),
            now,
        )
        accounts.append(account)
    return accounts
