"""Docking service: demands (CRUD, member-scoped), the documents the matcher indexes — open
demands and supplies (deals offered for sale, with their asset and seller) — the match sets
announced in the background, and interests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.assets.models import Asset
from exchange.db import for_update
from exchange.deals.machine import DealState
from exchange.deals.models import Deal
from exchange.docking.index import Document
from exchange.docking.models import Demand, Interest, MatchSet
from exchange.errors import Conflict, NotFound, Unprocessable, check_version
from exchange.events import emit
from exchange.parties.models import Party

# A deal is a supply while it is offered: priced now; the listing issue adds `listed`.
SUPPLY_STATES = frozenset({DealState.priced.value, DealState.listed.value, DealState.bidding.value})
OPEN = "open"
WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class DemandSpec:
    title: str
    description: str
    ipc: list[str]
    keywords: list[str]
    budget_min: int | None
    budget_max: int | None
    currency: str
    region: str | None
    min_trl: int | None
    wanted_rights: list[str]
    domestic_only: bool
    deadline_date: date | None
    visibility: str


def _apply(demand: Demand, spec: DemandSpec) -> None:
    demand.title = spec.title
    demand.description = spec.description
    demand.ipc = orjson.dumps(spec.ipc).decode()
    demand.keywords = orjson.dumps(spec.keywords).decode()
    demand.budget_min = spec.budget_min
    demand.budget_max = spec.budget_max
    demand.currency = spec.currency
    demand.region = spec.region
    demand.min_trl = spec.min_trl
    demand.wanted_rights = orjson.dumps(spec.wanted_rights).decode()
    demand.domestic_only = spec.domestic_only
    demand.deadline_date = spec.deadline_date
    demand.visibility = spec.visibility


async def _event(session: AsyncSession, demand: Demand, kind: str, now: datetime) -> None:
    await emit(
        session,
        type=f"demand.{kind}",
        aggregate_type="demand",
        aggregate_id=demand.id,
        version=demand.version,
        payload={"id": demand.id, "party_id": demand.party_id, "state": demand.state},
        now=now,
    )


async def create_demand(
    session: AsyncSession, demand_id: str, party_id: str, spec: DemandSpec, now: datetime
) -> Demand:
    if await session.get(Demand, demand_id) is not None:
        raise Unprocessable(f"demand {demand_id} exists", errors=[{"field": "id", "code": "taken"}])
    if await session.get(Party, party_id) is None:
        raise Unprocessable(
            f"no party {party_id}", errors=[{"field": "party_id", "code": "party_not_found"}]
        )
    demand = Demand(
        id=demand_id, party_id=party_id, state=OPEN, version=1, created_at=now, updated_at=now
    )
    _apply(demand, spec)
    session.add(demand)
    await session.flush()
    await _event(session, demand, "posted", now)
    return demand


async def get_demand(session: AsyncSession, demand_id: str, *, lock: bool = False) -> Demand:
    query = select(Demand).where(Demand.id == demand_id)
    if lock:
        query = for_update(session, query)
    demand = (await session.scalars(query)).first()
    if demand is None:
        raise NotFound(f"no demand {demand_id}")
    return demand


async def list_demands(
    session: AsyncSession,
    *,
    party_id: str | None,
    after_id: str | None,
    limit: int,
    include_withdrawn: bool,
) -> list[Demand]:
    query = select(Demand).order_by(Demand.id).limit(limit)
    if party_id is not None:
        query = query.where(Demand.party_id == party_id)
    if not include_withdrawn:
        query = query.where(Demand.state == OPEN)
    if after_id is not None:
        query = query.where(Demand.id > after_id)
    return list((await session.scalars(query)).all())


async def update_demand(
    session: AsyncSession, demand_id: str, spec: DemandSpec, if_match: int | None, now: datetime
) -> Demand:
    demand = await get_demand(session, demand_id, lock=True)
    check_version(f"demand {demand_id}", demand.version, if_match)
    if demand.state != OPEN:
        raise Conflict(f"demand {demand_id} is {demand.state}", state=demand.state)
    _apply(demand, spec)
    demand.version += 1
    demand.updated_at = now
    await session.flush()
    await _event(session, demand, "changed", now)
    return demand


async def withdraw_demand(
    session: AsyncSession, demand_id: str, if_match: int | None, now: datetime
) -> Demand:
    demand = await get_demand(session, demand_id, lock=True)
    check_version(f"demand {demand_id}", demand.version, if_match)
    if demand.state == WITHDRAWN:
        return demand
    demand.state = WITHDRAWN
    demand.version += 1
    demand.updated_at = now
    await session.flush()
    await _event(session, demand, "withdrawn", now)
    return demand


# ---------------------------------------------------------------------------------------------
# Documents for the matcher


def demand_document(demand: Demand, party: Party) -> Document:
    return Document(
        id=f"demand:{demand.id}",
        side="demand",
        text=f"{demand.title}\n{demand.description}",
        keywords=tuple(orjson.loads(demand.keywords)),
        ipc=tuple(orjson.loads(demand.ipc)),
        trl=demand.min_trl,
        budget_min=demand.budget_min,
        budget_max=demand.budget_max,
        budget_currency=demand.currency,
        region=demand.region,
        country=party.country,
        rights=tuple(orjson.loads(demand.wanted_rights)),
        domestic_only=demand.domestic_only,
    )


def supply_document(deal: Deal, asset: Asset, seller: Party) -> Document:
    text = "\n".join(
        part
        for part in (asset.title_zh, asset.title_en, asset.abstract_zh, asset.abstract_en)
        if part
    )
    return Document(
        id=f"supply:{deal.id}",
        side="supply",
        text=text,
        ipc=tuple(orjson.loads(asset.ipc)),
        trl=asset.trl,
        price_minor=deal.listing_price,
        price_currency=deal.currency,
        region=seller.region,
        country=seller.country,
        kind=asset.kind,
        rights=(deal.rights_offered,),
        export_control=asset.export_control,
    )


async def supply_documents(
    session: AsyncSession, deal_ids: Sequence[str] | None = None
) -> dict[str, Document | None]:
    """Documents for the given deals (all supplies when None); None for a deal that is not
    (or no longer) a supply, so the caller removes it from the index."""
    query = (
        select(Deal, Asset, Party)
        .join(Asset, Asset.id == Deal.asset_id)
        .join(Party, Party.id == Deal.seller_party_id)
    )
    if deal_ids is None:
        query = query.where(Deal.state.in_(SUPPLY_STATES))
    else:
        query = query.where(Deal.id.in_(list(deal_ids)))
    found: dict[str, Document | None] = {f"supply:{i}": None for i in deal_ids or ()}
    for deal, asset, seller in (await session.execute(query)).all():
        found[f"supply:{deal.id}"] = (
            supply_document(deal, asset, seller) if deal.state in SUPPLY_STATES else None
        )
    return found


async def demand_documents(
    session: AsyncSession, demand_ids: Sequence[str] | None = None
) -> dict[str, Document | None]:
    query = select(Demand, Party).join(Party, Party.id == Demand.party_id)
    if demand_ids is None:
        query = query.where(Demand.state == OPEN)
    else:
        query = query.where(Demand.id.in_(list(demand_ids)))
    found: dict[str, Document | None] = {f"demand:{i}": None for i in demand_ids or ()}
    for demand, party in (await session.execute(query)).all():
        found[f"demand:{demand.id}"] = (
            demand_document(demand, party) if demand.state == OPEN else None
        )
    return found


async def deals_of_asset(session: AsyncSession, asset_id: str) -> list[str]:
    return list((await session.scalars(select(Deal.id).where(Deal.asset_id == asset_id))).all())


# ---------------------------------------------------------------------------------------------
# Match sets and interests


async def subject_owner_and_version(session: AsyncSession, subject: str) -> tuple[str, int] | None:
    kind, _, subject_id = subject.partition(":")
    if kind == "demand":
        demand = await session.get(Demand, subject_id)
        return (demand.party_id, demand.version) if demand else None
    deal = await session.get(Deal, subject_id)
    return (deal.seller_party_id, deal.version) if deal else None


async def record_match_set(
    session: AsyncSession,
    subject: str,
    version: int,
    party_id: str,
    matches: list[dict[str, Any]],
    now: datetime,
) -> None:
    """Keep and announce the top matches of one version of a subject. Each version is written
    once (a unique key): the first process to compute it announces it."""
    session.add(
        MatchSet(
            subject_id=subject,
            subject_version=version,
            party_id=party_id,
            matches=orjson.dumps(matches).decode(),
            computed_at=now,
        )
    )
    await session.flush()
    await emit(
        session,
        type="docking.matches_found",
        aggregate_type="docking",
        aggregate_id=subject,
        version=version,
        payload={"subject": subject, "party_id": party_id, "matches": [m["id"] for m in matches]},
        now=now,
    )


async def match_sets(
    session: AsyncSession,
    *,
    party_id: str | None,
    subject: str | None,
    after_id: int | None,
    limit: int,
) -> list[MatchSet]:
    query = select(MatchSet).order_by(MatchSet.id).limit(limit)
    if party_id is not None:
        query = query.where(MatchSet.party_id == party_id)
    if subject is not None:
        query = query.where(MatchSet.subject_id == subject)
    if after_id is not None:
        query = query.where(MatchSet.id > after_id)
    return list((await session.scalars(query)).all())


async def get_interest(session: AsyncSession, demand_id: str, deal_id: str) -> Interest:
    query = select(Interest).where(Interest.demand_id == demand_id, Interest.deal_id == deal_id)
    interest = (await session.scalars(query)).first()
    if interest is None:
        raise NotFound(f"demand {demand_id} has expressed no interest in deal {deal_id}")
    return interest


async def record_interest(
    session: AsyncSession, demand: Demand, deal_id: str, note: str | None, now: datetime
) -> Interest:
    deal = await session.get(Deal, deal_id)
    if deal is None or deal.state not in SUPPLY_STATES:
        raise Unprocessable(
            f"deal {deal_id} is not on offer", errors=[{"field": "deal_id", "code": "not_a_supply"}]
        )
    existing = (
        await session.scalars(
            select(Interest).where(Interest.demand_id == demand.id, Interest.deal_id == deal_id)
        )
    ).first()
    if existing is not None:
        return existing
    interest = Interest(
        demand_id=demand.id,
        deal_id=deal_id,
        demander_party_id=demand.party_id,
        supplier_party_id=deal.seller_party_id,
        note=note,
        at=now,
    )
    session.add(interest)
    await session.flush()
    await emit(
        session,
        type="docking.interest",
        aggregate_type="deal",
        aggregate_id=deal_id,
        version=deal.version,
        payload={
            "deal_id": deal_id,
            "demand_id": demand.id,
            "demander_party_id": demand.party_id,
            "supplier_party_id": deal.seller_party_id,
        },
        now=now,
    )
    return interest
