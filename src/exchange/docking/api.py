"""Docking routes: demands (CRUD, member-scoped), ranked matches with their reasons for a demand
or for a supply, the match sets announced in the background, and interests."""

from __future__ import annotations

import secrets
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth.service import Principal, Role
from exchange.deals import service as deals
from exchange.deals.machine import DealState
from exchange.deals.models import Deal
from exchange.deals.rights import RightsOffered
from exchange.docking import service as docking
from exchange.docking.index import Filters, Match
from exchange.docking.models import Demand
from exchange.docking.runtime import match_row
from exchange.docking.schemas import (
    DemandIn,
    DemandOut,
    DemandPage,
    InterestIn,
    InterestOut,
    MatchesOut,
    MatchOut,
    MatchSetOut,
    MatchSetPage,
)
from exchange.errors import Conflict, Forbidden, NotFound, Unprocessable
from exchange.listings.api import registered_intent
from exchange.listings.schemas import IntentOut
from exchange.money import Money
from exchange.schemas import REFERENCE_ID_PATTERN
from exchange.web import (
    Services,
    ServicesDep,
    acting_party,
    decode_cursor,
    encode_cursor,
    etagged,
    execute,
    if_match_version,
    problems,
    require,
)

router = APIRouter(tags=["docking"])

Writer = Annotated[Principal, Depends(require(Role.operator, Role.admin, Role.member))]
Reader = Annotated[
    Principal, Depends(require(Role.operator, Role.admin, Role.auditor, Role.member))
]
IdPath = Annotated[str, Path(pattern=REFERENCE_ID_PATTERN)]
MATCHES_MAX = 50


def demand_out(demand: Demand) -> DemandOut:
    def money(minor: int | None) -> Money | None:
        return None if minor is None else Money.of(minor, demand.currency)

    return DemandOut(
        id=demand.id,
        party_id=demand.party_id,
        title=demand.title,
        description=demand.description,
        ipc=orjson.loads(demand.ipc),
        keywords=orjson.loads(demand.keywords),
        budget_min=money(demand.budget_min),
        budget_max=money(demand.budget_max),
        currency=demand.currency,
        region=demand.region,
        min_trl=demand.min_trl,
        wanted_rights=orjson.loads(demand.wanted_rights),
        domestic_only=demand.domestic_only,
        deadline_date=demand.deadline_date,
        visibility=demand.visibility,
        state=demand.state,
        version=demand.version,
        created_at=demand.created_at,
        updated_at=demand.updated_at,
    )


def _spec(body: DemandIn) -> docking.DemandSpec:
    return docking.DemandSpec(
        title=body.title,
        description=body.description,
        ipc=body.ipc,
        keywords=body.keywords,
        budget_min=body.budget_min.minor() if body.budget_min else None,
        budget_max=body.budget_max.minor() if body.budget_max else None,
        currency=body.currency,
        region=body.region,
        min_trl=body.min_trl,
        wanted_rights=[r.value for r in body.wanted_rights],
        domestic_only=body.domestic_only,
        deadline_date=body.deadline_date,
        visibility=body.visibility,
    )


def _owns(principal: Principal, party_id: str) -> bool:
    return principal.role is not Role.member or principal.party_id == party_id


async def _visible_demand(session: AsyncSession, principal: Principal, demand_id: str) -> Demand:
    """Its own party's demands for a member, and other parties' public ones (read only)."""
    demand = await docking.get_demand(session, demand_id)
    if not _owns(principal, demand.party_id) and demand.visibility != "public":
        raise NotFound(f"no demand {demand_id}")
    return demand


async def _own_demand(session: AsyncSession, principal: Principal, demand_id: str) -> Demand:
    demand = await docking.get_demand(session, demand_id)
    if not _owns(principal, demand.party_id):
        raise NotFound(f"no demand {demand_id}")
    return demand


@router.post(
    "/v1/demands",
    status_code=201,
    response_model=DemandOut,
    responses=problems(422),
    tags=["docking"],
)
async def post_demand(
    body: DemandIn, request: Request, app: ServicesDep, principal: Writer
) -> Response:
    """Post a demand: the problem, its fields (IPC) and keywords, budget, region, minimum TRL,
    the rights wanted. Its top matches are computed in the background and announced."""
    party_id = acting_party(principal, body.party_id, "party_id")
    demand_id = body.id or "dem_" + secrets.token_hex(10)

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        demand = await docking.create_demand(
            session, demand_id, party_id, _spec(body), app.clock.now()
        )
        return 201, demand_out(demand)

    return await execute(
        request, app, principal, action="demand.post", target=demand_id, work=work, etag=True
    )


@router.get("/v1/demands", response_model=DemandPage, responses=problems(422))
async def list_demands(
    app: ServicesDep,
    principal: Reader,
    include_withdrawn: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> DemandPage:
    """Demands in id order: a member's own party's; everyone's for operators and auditors."""
    after = decode_cursor(cursor, str)
    party = principal.party_id if principal.role is Role.member else None
    found = await app.db.read(
        lambda s: docking.list_demands(
            s, party_id=party, after_id=after, limit=limit, include_withdrawn=include_withdrawn
        )
    )
    next_cursor = encode_cursor(found[-1].id) if len(found) == limit else None
    return DemandPage(items=[demand_out(d) for d in found], next_cursor=next_cursor)


@router.get("/v1/demands/{demand_id}", response_model=DemandOut, responses=problems(404))
async def get_demand(demand_id: IdPath, app: ServicesDep, principal: Reader) -> JSONResponse:
    demand = await app.db.read(lambda s: _visible_demand(s, principal, demand_id))
    return etagged(demand_out(demand))


@router.put("/v1/demands/{demand_id}", response_model=DemandOut, responses=problems(404, 409, 412))
async def replace_demand(
    demand_id: IdPath, body: DemandIn, request: Request, app: ServicesDep, principal: Writer
) -> Response:
    """Change a demand (send `If-Match`); its matches are computed and announced again."""
    if_match = if_match_version(request)

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        demand = await _own_demand(session, principal, demand_id)
        if body.party_id not in (None, demand.party_id):
            raise Forbidden("a demand does not change hands")
        updated = await docking.update_demand(
            session, demand_id, _spec(body), if_match, app.clock.now()
        )
        return 200, demand_out(updated)

    return await execute(
        request, app, principal, action="demand.change", target=demand_id, work=work, etag=True
    )


@router.delete("/v1/demands/{demand_id}", response_model=DemandOut, responses=problems(404, 412))
async def withdraw_demand(
    demand_id: IdPath, request: Request, app: ServicesDep, principal: Writer
) -> Response:
    """Withdraw a demand: it leaves the index; its record stays."""
    if_match = if_match_version(request)

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        await _own_demand(session, principal, demand_id)
        demand = await docking.withdraw_demand(session, demand_id, if_match, app.clock.now())
        return 200, demand_out(demand)

    return await execute(
        request, app, principal, action="demand.withdraw", target=demand_id, work=work, etag=True
    )


# ---------------------------------------------------------------------------------------------
# Matching


def _filters(
    region: list[str] | None,
    kind: list[str] | None,
    price_min: str | None,
    price_max: str | None,
    currency: str,
    min_trl: int | None,
    rights: list[RightsOffered] | None,
    domestic_only: bool,
) -> Filters:
    def minor(field: str, amount: str | None) -> int | None:
        if amount is None:
            return None
        try:
            return Money(amount=amount, currency=currency).minor()
        except ValueError as error:
            raise Unprocessable(
                str(error), errors=[{"field": f"query.{field}", "code": "invalid_amount"}]
            ) from None

    return Filters(
        regions=frozenset(region) if region else None,
        kinds=frozenset(kind) if kind else None,
        price_min=minor("price_min", price_min),
        price_max=minor("price_max", price_max),
        currency=currency if (price_min or price_max) else None,
        min_trl=min_trl,
        rights=frozenset(r.value for r in rights) if rights else None,
        domestic_only=domestic_only,
    )


FilterRegion = Annotated[list[Annotated[str, Query(max_length=16)]] | None, Query(max_length=40)]
FilterKind = Annotated[list[str] | None, Query(max_length=10)]
FilterRights = Annotated[list[RightsOffered] | None, Query(max_length=5)]
K = Annotated[int, Query(ge=1, le=MATCHES_MAX)]
Amount = Annotated[str | None, Query(pattern=r"^[0-9]{1,17}(\.[0-9]{1,3})?$")]
TRL = Annotated[int | None, Query(ge=1, le=9)]


async def _ranked(
    app: Services, subject: str, k: int, filters: Filters, principal: Principal
) -> list[MatchOut]:
    runtime = app.docking
    assert runtime is not None
    await runtime.refresh()  # read-your-writes: apply whatever committed before this request
    document = runtime.index.get(subject)
    if document is None:
        return []
    matches: list[Match] = runtime.index.match(document, k=k * 3, filters=filters)
    if principal.role is Role.member:
        private = await app.db.read(lambda s: _private_demands(s, matches, principal))
        matches = [m for m in matches if m.document_id not in private]
    return [MatchOut.model_validate(match_row(m)) for m in matches[:k]]


async def _private_demands(
    session: AsyncSession, matches: list[Match], principal: Principal
) -> set[str]:
    """The matched demands this member may not see: another party's private ones (or gone)."""
    ids = [m.document_id.partition(":")[2] for m in matches if m.document_id.startswith("demand:")]
    if not ids:
        return set()
    rows = await session.execute(
        select(Demand.id, Demand.visibility, Demand.party_id).where(Demand.id.in_(ids))
    )
    visible = {
        row.id for row in rows if row.visibility == "public" or row.party_id == principal.party_id
    }
    return {f"demand:{i}" for i in ids if i not in visible}


@router.get("/v1/demands/{demand_id}/matches", response_model=MatchesOut, responses=problems(404))
async def demand_matches(
    demand_id: IdPath,
    app: ServicesDep,
    principal: Reader,
    k: K = 10,
    region: FilterRegion = None,
    kind: FilterKind = None,
    price_min: Amount = None,
    price_max: Amount = None,
    min_trl: TRL = None,
    rights: FilterRights = None,
    domestic_only: bool = False,
) -> MatchesOut:
    """Supplies ranked for this demand, each with its component scores and matched terms."""
    demand = await app.db.read(lambda s: _own_demand(s, principal, demand_id))
    filters = _filters(
        region, kind, price_min, price_max, demand.currency, min_trl, rights, domestic_only
    )
    subject = f"demand:{demand_id}"
    return MatchesOut(subject=subject, matches=await _ranked(app, subject, k, filters, principal))


@router.get("/v1/supplies/{deal_id}/matches", response_model=MatchesOut, responses=problems(404))
async def supply_matches(
    deal_id: IdPath,
    app: ServicesDep,
    principal: Reader,
    k: K = 10,
    region: FilterRegion = None,
    min_trl: TRL = None,
    domestic_only: bool = False,
) -> MatchesOut:
    """Demands ranked for a supply (a deal on offer), each with its reasons."""

    async def read(session: AsyncSession) -> Deal:
        deal = await deals.get_deal(session, deal_id)
        if not _owns(principal, deal.seller_party_id):
            raise NotFound(f"no deal {deal_id}")
        return deal

    deal = await app.db.read(read)
    filters = _filters(region, None, None, None, deal.currency, min_trl, None, domestic_only)
    subject = f"supply:{deal_id}"
    return MatchesOut(subject=subject, matches=await _ranked(app, subject, k, filters, principal))


@router.get("/v1/docking/match-sets", response_model=MatchSetPage, responses=problems(422))
async def list_match_sets(
    app: ServicesDep,
    principal: Reader,
    subject: Annotated[
        str | None, Query(pattern=r"^(demand|supply):[A-Za-z0-9_.:-]{1,80}$")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> MatchSetPage:
    """Match sets announced in the background (for a member: its own party's subjects)."""
    after = decode_cursor(cursor, int)
    party = principal.party_id if principal.role is Role.member else None
    rows = await app.db.read(
        lambda s: docking.match_sets(
            s, party_id=party, subject=subject, after_id=after, limit=limit
        )
    )
    items = [
        MatchSetOut(
            subject=r.subject_id,
            subject_version=r.subject_version,
            matches=[MatchOut.model_validate(m) for m in orjson.loads(r.matches)],
            computed_at=r.computed_at,
        )
        for r in rows
    ]
    next_cursor = encode_cursor(rows[-1].id) if len(rows) == limit else None
    return MatchSetPage(items=items, next_cursor=next_cursor)


@router.post(
    "/v1/demands/{demand_id}/interests",
    status_code=201,
    response_model=InterestOut,
    responses=problems(404),
)
async def express_interest(
    demand_id: IdPath, body: InterestIn, request: Request, app: ServicesDep, principal: Writer
) -> Response:
    """The demander's interest in a supply: recorded once, and the supplier is told (event)."""

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        demand = await _own_demand(session, principal, demand_id)
        interest = await docking.record_interest(
            session, demand, body.deal_id, body.note, app.clock.now()
        )
        return 201, InterestOut.model_validate(interest, from_attributes=True)

    return await execute(
        request, app, principal, action="demand.interest", target=demand_id, work=work
    )


@router.post(
    "/v1/demands/{demand_id}/interests/{deal_id}/actions/register_intent",
    status_code=201,
    response_model=IntentOut,
    responses=problems(404, 409, 422),
)
async def register_intent_from_interest(
    demand_id: IdPath, deal_id: IdPath, request: Request, app: ServicesDep, principal: Writer
) -> Response:
    """Turn an interest into a negotiation on the exchange: the demander registers its intent
    on the supply's listing, its deposit held (409 when the supply is not in public notice). A
    sole qualified party at the notice's end gets a negotiated transfer (场内协议转让)."""

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        demand = await _own_demand(session, principal, demand_id)
        interest = await docking.get_interest(session, demand.id, deal_id)
        deal = await deals.get_deal(session, interest.deal_id)
        if deal.state != DealState.listed.value or deal.listing_id is None:
            raise Conflict(
                f"deal {deal_id} is {deal.state}: intents are registered during its public notice",
                state=deal.state,
            )
        return await registered_intent(
            session, deal.listing_id, interest.demander_party_id, app.clock
        )

    return await execute(
        request, app, principal, action="demand.register_intent", target=demand_id, work=work
    )
