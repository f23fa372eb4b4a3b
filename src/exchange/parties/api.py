"""Party routes under /v1/parties. A member sees only its own party (others are 404)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth.service import Principal, Role
from exchange.errors import NotFound
from exchange.ledger.api import account_out
from exchange.parties import service as parties
from exchange.parties.models import Party, PartyKind
from exchange.parties.schemas import (
    PartyAccountsIn,
    PartyAccountsOut,
    PartyIn,
    PartyOut,
    PartyPage,
)
from exchange.schemas import REFERENCE_ID_PATTERN
from exchange.web import (
    PrefixedRouter,
    ServicesDep,
    decode_cursor,
    encode_cursor,
    execute,
    problems,
    require,
)

router = PrefixedRouter(prefix="/v1/parties", tags=["parties"])

Registrar = Annotated[Principal, Depends(require(Role.operator, Role.admin))]
Reader = Annotated[
    Principal, Depends(require(Role.operator, Role.admin, Role.auditor, Role.member))
]
Opener = Annotated[Principal, Depends(require(Role.operator, Role.admin, Role.member))]
PartyIdPath = Annotated[str, Path(pattern=REFERENCE_ID_PATTERN)]


def party_out(party: Party) -> PartyOut:
    return PartyOut.model_validate(party, from_attributes=True)


async def visible_party(session: AsyncSession, principal: Principal, party_id: str) -> Party:
    party = await parties.get_party(session, party_id)
    if party is None or (principal.role is Role.member and principal.party_id != party_id):
        raise NotFound(f"no party {party_id}")
    return party


@router.post("", status_code=201, response_model=PartyOut, responses=problems(409, 422))
async def register_party(
    body: PartyIn, request: Request, app: ServicesDep, principal: Registrar
) -> Response:
    """Register a party: a Chinese organisation by its unified social credit code (check
    character verified), a foreign one by country and registration number."""
    party_id = body.id or "pty_" + secrets.token_hex(10)

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        party = await parties.create_party(
            session,
            party_id=party_id,
            name=body.name,
            kind=body.kind.value,
            now=app.clock.now(),
            country=body.country,
            uscc=body.uscc,
            registration_number=body.registration_number,
            region=body.region,
        )
        return 201, party_out(party)

    return await execute(
        request, app, principal, action="party.register", target=party_id, work=work
    )


@router.get("", response_model=PartyPage, responses=problems(422))
async def list_parties(
    app: ServicesDep,
    principal: Annotated[Principal, Depends(require(Role.operator, Role.admin, Role.auditor))],
    kind: PartyKind | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> PartyPage:
    after = decode_cursor(cursor, str)
    found = await app.db.read(
        lambda s: parties.list_parties(
            s, after_id=after, limit=limit, kind=kind.value if kind else None
        )
    )
    next_cursor = encode_cursor(found[-1].id) if len(found) == limit else None
    return PartyPage(items=[party_out(p) for p in found], next_cursor=next_cursor)


@router.get("/{party_id}", response_model=PartyOut, responses=problems(404))
async def get_party(party_id: PartyIdPath, app: ServicesDep, principal: Reader) -> PartyOut:
    return party_out(await app.db.read(lambda s: visible_party(s, principal, party_id)))


@router.post(
    "/{party_id}/accounts",
    response_model=PartyAccountsOut,
    responses=problems(404),
)
async def open_party_accounts(
    party_id: PartyIdPath,
    body: PartyAccountsIn,
    request: Request,
    app: ServicesDep,
    principal: Opener,
) -> Response:
    """The party's available and deposit accounts in a currency, opened on first use."""

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        await visible_party(session, principal, party_id)
        accounts = await parties.open_accounts(session, party_id, body.currency, app.clock.now())
        return 200, PartyAccountsOut(party_id=party_id, accounts=[account_out(a) for a in accounts])

    return await execute(
        request, app, principal, action="party.open_accounts", target=party_id, work=work
    )
