"""Deal routes under /v1/deals: the offer, its state actions, rights checklist, consents,
valuations, certificate and history. A member sees only its own party's deals (others: 404)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated

import orjson
from fastapi import Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.assets.service import get_asset
from exchange.auth.service import Principal, Role
from exchange.deals import service as deals
from exchange.deals.machine import TRANSITIONS, Actor, DealAction, DealState, allowed_actions
from exchange.deals.models import Deal, Valuation
from exchange.deals.schemas import (
    CertificateOut,
    ChecklistOut,
    ConsentIn,
    ConsentOut,
    CostValuationIn,
    DealIn,
    DealOut,
    DealPage,
    HistoryOut,
    IncomeValuationIn,
    OptionalReasonIn,
    PriceIn,
    ReasonIn,
    RightsCheckIn,
    RightsCheckOut,
    StateMachineOut,
    TransitionOut,
    TransitionRuleOut,
    ValuationIn,
    ValuationOut,
    ValuationPage,
)
from exchange.errors import Forbidden, NotFound, check_version
from exchange.listings import service as listings
from exchange.money import Money
from exchange.pricing import rules as pricing
from exchange.schemas import REFERENCE_ID_PATTERN
from exchange.web import (
    PrefixedRouter,
    ServicesDep,
    acting_party,
    actor_of,
    decode_cursor,
    encode_cursor,
    etagged,
    execute,
    if_match_version,
    problems,
    require,
)

router = PrefixedRouter(prefix="/v1/deals", tags=["deals"])

Actingparty = Annotated[Principal, Depends(require(Role.operator, Role.admin, Role.member))]
Operator = Annotated[Principal, Depends(require(Role.operator, Role.admin))]
Reader = Annotated[
    Principal, Depends(require(Role.operator, Role.admin, Role.auditor, Role.member))
]
DealIdPath = Annotated[str, Path(pattern=REFERENCE_ID_PATTERN)]
ACTION_PROBLEMS = problems(404, 409, 412)


def _money(minor: int | None, currency: str) -> Money | None:
    return None if minor is None else Money.of(minor, currency)


def deal_out(deal: Deal, actors: frozenset[Actor] | None = None) -> DealOut:
    state = DealState(deal.state)
    return DealOut(
        id=deal.id,
        asset_id=deal.asset_id,
        seller_party_id=deal.seller_party_id,
        rights_offered=deal.rights_offered,
        territory=orjson.loads(deal.territory),
        term_start_date=deal.term_start_date,
        term_end_date=deal.term_end_date,
        trade_method=deal.trade_method,
        currency=deal.currency,
        state=state.value,
        version=deal.version,
        allowed_actions=allowed_actions(state, actors),
        valuation_id=deal.valuation_id,
        appraised_value=_money(deal.appraised_value, deal.currency),
        listing_price=_money(deal.listing_price, deal.currency),
        reserve=_money(deal.reserve_price, deal.currency),
        certificate_id=deal.certificate_id,
        listing_id=deal.listing_id,
        buyer_party_id=deal.buyer_party_id,
        award_price=_money(deal.award_price, deal.currency),
        winning_bid_id=deal.winning_bid_id,
        awarded_at=deal.awarded_at,
        created_at=deal.created_at,
        updated_at=deal.updated_at,
    )


def _actors(principal: Principal, deal: Deal) -> frozenset[Actor]:
    """Who the principal is to this deal (an auditor: nobody who acts); a member of another
    party does not see the deal at all."""
    if principal.role in (Role.operator, Role.admin):
        return frozenset({Actor.operator})
    if principal.role is Role.member and principal.party_id == deal.seller_party_id:
        return frozenset({Actor.seller})
    if principal.role is Role.auditor:
        return frozenset()
    if principal.role is Role.member and principal.party_id == deal.buyer_party_id:
        return frozenset()  # the buyer reads its deal; it acts through settlement routes
    raise NotFound(f"no deal {deal.id}")


def _actor(principal: Principal, deal: Deal) -> Actor:
    actors = _actors(principal, deal)
    if not actors:  # an auditor never reaches these routes; a buyer may
        raise Forbidden("the buyer acts on its deal through the contract and payment routes")
    assert len(actors) == 1
    return next(iter(actors))


async def _visible(session: AsyncSession, principal: Principal, deal_id: str) -> Deal:
    deal = await deals.get_deal(session, deal_id)
    _actors(principal, deal)
    return deal


def deal_context(principal: Principal, actor: Actor, now: datetime) -> deals.ActorContext:
    """Who acts on a deal, from which request, when (for every domain's routes that do)."""
    return deals.ActorContext(actor, principal.key_id, actor_of(principal).request_id, now)


# ---------------------------------------------------------------------------------------------
# The deal


@router.get("/state-machine", response_model=StateMachineOut, responses=problems())
async def state_machine(_principal: Reader) -> StateMachineOut:
    """The transition table every action obeys (the same table the service enforces)."""
    return StateMachineOut(
        states=[s.value for s in DealState],
        actions=[a.value for a in DealAction],
        transitions=[
            TransitionRuleOut(
                from_state=t.source.value,
                action=t.action.value,
                to_state=t.target.value,
                actors=sorted(a.value for a in t.actors),
                guard=t.guard,
            )
            for t in TRANSITIONS
        ],
    )


@router.post("", status_code=201, response_model=DealOut, responses=problems(404, 422))
async def create_deal(
    body: DealIn, request: Request, app: ServicesDep, principal: Actingparty
) -> Response:
    """Open a deal (in `draft`) offering rights in an asset the seller owns a share of."""
    seller = acting_party(principal, body.seller_party_id, "seller_party_id")
    deal_id = body.id or "deal_" + secrets.token_hex(10)
    spec = deals.DealSpec(
        asset_id=body.asset_id,
        seller_party_id=seller,
        rights_offered=body.rights_offered,
        territory=body.territory,
        term_start_date=body.term_start_date,
        term_end_date=body.term_end_date,
        trade_method=body.trade_method.value,
        currency=body.currency,
    )
    actor = Actor.operator if principal.role is not Role.member else Actor.seller

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        if principal.role is Role.member:
            record = await get_asset(session, body.asset_id)
            if principal.party_id not in record.owners:
                raise NotFound(f"no asset {body.asset_id}")
        deal = await deals.create_deal(
            session, deal_id, spec, deal_context(principal, actor, app.clock.now())
        )
        return 201, deal_out(deal, frozenset({actor}))

    return await execute(
        request, app, principal, action="deal.create", target=deal_id, work=work, etag=True
    )


@router.get("", response_model=DealPage, responses=problems(422))
async def list_deals(
    app: ServicesDep,
    principal: Reader,
    state: DealState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> DealPage:
    after = decode_cursor(cursor, str)
    seller = principal.party_id if principal.role is Role.member else None
    found = await app.db.read(
        lambda s: deals.list_deals(
            s,
            seller_party_id=seller,
            state=state.value if state else None,
            after_id=after,
            limit=limit,
        )
    )
    next_cursor = encode_cursor(found[-1].id) if len(found) == limit else None
    return DealPage(items=[deal_out(d) for d in found], next_cursor=next_cursor)


@router.get("/{deal_id}", response_model=DealOut, responses=problems(404))
async def get_deal(deal_id: DealIdPath, app: ServicesDep, principal: Reader) -> JSONResponse:
    """The deal; its `ETag` is its version, for `If-Match` on the actions."""
    deal = await app.db.read(lambda s: _visible(s, principal, deal_id))
    return etagged(deal_out(deal, _actors(principal, deal)))


async def _act(
    request: Request,
    app: ServicesDep,
    principal: Principal,
    deal_id: str,
    action: DealAction,
    *,
    reason: str | None = None,
    price: deals.PriceSpec | None = None,
) -> Response:
    if_match = if_match_version(request)

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        deal = await _visible(session, principal, deal_id)
        actor = _actor(principal, deal)
        ctx = deal_context(principal, actor, app.clock.now())
        if action is DealAction.withdraw and DealState(deal.state) in deals.LISTING_STATES:
            # Deposits are held: the listing releases them as the deal is withdrawn.
            check_version(f"deal {deal_id}", deal.version, if_match)
            withdrawn = await listings.withdraw(session, deal_id, ctx, reason)
            return 200, deal_out(withdrawn, frozenset({actor}))
        done = await deals.perform(
            session,
            deal_id,
            action,
            ctx,
            if_match=if_match,
            reason=reason,
            price=price,
        )
        return 200, deal_out(done, frozenset({actor}))

    return await execute(
        request, app, principal, action=f"deal.{action}", target=deal_id, work=work, etag=True
    )


def _doc(action: DealAction) -> str:
    rules = [t for t in TRANSITIONS if t.action is action]
    lines = [
        f"- from `{t.source}` to `{t.target}` by {', '.join(sorted(t.actors))}; guard: {t.guard}"
        for t in rules
    ]
    return (
        "Answers 409 with `state` and `allowed_actions` when the action is not allowed, "
        "412 when `If-Match` names another version.\n\n" + "\n".join(lines)
    )


@router.post(
    "/{deal_id}/actions/submit",
    response_model=DealOut,
    responses=ACTION_PROBLEMS,
    description=_doc(DealAction.submit),
)
async def submit(
    deal_id: DealIdPath, request: Request, app: ServicesDep, principal: Actingparty
) -> Response:
    """Submit the deal for rights review."""
    return await _act(request, app, principal, deal_id, DealAction.submit)


@router.post(
    "/{deal_id}/actions/confirm",
    response_model=DealOut,
    responses=ACTION_PROBLEMS,
    description=_doc(DealAction.confirm),
)
async def confirm(
    deal_id: DealIdPath, request: Request, app: ServicesDep, principal: Operator
) -> Response:
    """Confirm the rights (确权) and issue the rights certificate."""
    return await _act(request, app, principal, deal_id, DealAction.confirm)


@router.post(
    "/{deal_id}/actions/reject",
    response_model=DealOut,
    responses=ACTION_PROBLEMS,
    description=_doc(DealAction.reject),
)
async def reject(
    deal_id: DealIdPath, body: ReasonIn, request: Request, app: ServicesDep, principal: Operator
) -> Response:
    """Reject the rights: the deal ends."""
    return await _act(request, app, principal, deal_id, DealAction.reject, reason=body.reason)


@router.post(
    "/{deal_id}/actions/price",
    response_model=DealOut,
    responses=ACTION_PROBLEMS,
    description=_doc(DealAction.price),
)
async def price(
    deal_id: DealIdPath, body: PriceIn, request: Request, app: ServicesDep, principal: Actingparty
) -> Response:
    """Price the deal from one of its valuations: listing price and (for auctions) reserve."""
    spec = deals.PriceSpec(
        valuation_id=body.valuation_id,
        listing_price=body.listing_price.minor(),
        reserve_price=body.reserve.minor() if body.reserve else None,
        currency=body.listing_price.currency,
    )
    return await _act(request, app, principal, deal_id, DealAction.price, price=spec)


@router.post(
    "/{deal_id}/actions/withdraw",
    response_model=DealOut,
    responses=ACTION_PROBLEMS,
    description=_doc(DealAction.withdraw),
)
async def withdraw(
    deal_id: DealIdPath,
    request: Request,
    app: ServicesDep,
    principal: Actingparty,
    body: Annotated[OptionalReasonIn | None, Body()] = None,
) -> Response:
    """Withdraw the deal before it is awarded."""
    return await _act(
        request, app, principal, deal_id, DealAction.withdraw, reason=body.reason if body else None
    )


@router.get("/{deal_id}/history", response_model=HistoryOut, responses=problems(404))
async def get_history(deal_id: DealIdPath, app: ServicesDep, principal: Reader) -> HistoryOut:
    """Every state the deal went through, who moved it and from which request."""

    async def read(session: AsyncSession) -> HistoryOut:
        await _visible(session, principal, deal_id)
        rows = await deals.history(session, deal_id)
        return HistoryOut(
            deal_id=deal_id,
            transitions=[
                TransitionOut(
                    action=r.action,
                    from_state=r.from_state,
                    to_state=r.to_state,
                    version=r.version,
                    actor_key_id=r.actor_key_id,
                    request_id=r.request_id,
                    detail=orjson.loads(r.detail) if r.detail else None,
                    at=r.at,
                )
                for r in rows
            ],
        )

    return await app.db.read(read)


# ---------------------------------------------------------------------------------------------
# Rights confirmation


async def _checklist(session: AsyncSession, deal: Deal, app: ServicesDep) -> ChecklistOut:
    statuses = await deals.checklist(session, deal, app.clock.now().date())
    return ChecklistOut(
        deal_id=deal.id,
        confirmable=deal.state == DealState.rights_review and all(s.passed for s in statuses),
        checks=[
            RightsCheckOut(
                check=s.check.value,
                result=s.latest.result if s.latest else None,
                supported_by_records=s.supported_by_records,
                reason=s.reason,
                stale=s.stale,
                passed=s.passed,
                reviewer_key_id=s.latest.reviewer_key_id if s.latest else None,
                at=s.latest.at if s.latest else None,
                evidence=orjson.loads(s.latest.evidence) if s.latest else [],
                note=s.latest.note if s.latest else None,
            )
            for s in statuses
        ],
    )


@router.get("/{deal_id}/rights-checks", response_model=ChecklistOut, responses=problems(404))
async def get_checklist(deal_id: DealIdPath, app: ServicesDep, principal: Reader) -> ChecklistOut:
    """The rights checklist: each check as recorded and as the records support it."""

    async def read(session: AsyncSession) -> ChecklistOut:
        return await _checklist(session, await _visible(session, principal, deal_id), app)

    return await app.db.read(read)


@router.post(
    "/{deal_id}/rights-checks",
    status_code=201,
    response_model=ChecklistOut,
    responses=problems(404, 409),
)
async def record_check(
    deal_id: DealIdPath,
    body: RightsCheckIn,
    request: Request,
    app: ServicesDep,
    principal: Operator,
) -> Response:
    """Record an operator's finding on one check, with the SHA-256 of its evidence documents
    (uploaded to /v1/evidence). A pass the records contradict is refused (409)."""

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        await deals.record_check(
            session,
            deal_id,
            check=body.check,
            result=body.result,
            evidence_hashes=body.evidence,
            note=body.note,
            ctx=deal_context(principal, Actor.operator, app.clock.now()),
        )
        return 201, await _checklist(session, await deals.get_deal(session, deal_id), app)

    return await execute(
        request, app, principal, action="deal.rights_check", target=deal_id, work=work
    )


@router.post(
    "/{deal_id}/consents", status_code=201, response_model=ConsentOut, responses=problems(404, 409)
)
async def record_consent(
    deal_id: DealIdPath, body: ConsentIn, request: Request, app: ServicesDep, principal: Operator
) -> Response:
    """Record a co-owner's or a registered pledgee's consent to this deal, with its evidence."""

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        consent = await deals.record_consent(
            session,
            deal_id,
            party_id=body.party_id,
            role=body.role,
            evidence_sha256=body.evidence_sha256,
            ctx=deal_context(principal, Actor.operator, app.clock.now()),
        )
        return 201, ConsentOut(
            deal_id=deal_id,
            party_id=consent.party_id,
            role=consent.role,
            evidence_sha256=consent.evidence_sha256,
            at=consent.at,
        )

    return await execute(request, app, principal, action="deal.consent", target=deal_id, work=work)


@router.get("/{deal_id}/certificate", response_model=CertificateOut, responses=problems(404))
async def get_certificate(
    deal_id: DealIdPath, app: ServicesDep, principal: Reader
) -> CertificateOut:
    """The rights certificate issued at confirmation; `sha256` is the hash of `content` in
    canonical JSON (sorted keys, no spaces)."""

    async def read(session: AsyncSession) -> CertificateOut:
        deal = await _visible(session, principal, deal_id)
        found = await deals.certificate(session, deal)
        if found is None:
            raise NotFound(f"deal {deal_id} has no rights certificate")
        return CertificateOut(
            id=found.id,
            deal_id=found.deal_id,
            asset_id=found.asset_id,
            asset_version=found.asset_version,
            sha256=found.sha256,
            content=orjson.loads(found.content),
            issued_at=found.issued_at,
        )

    return await app.db.read(read)


# ---------------------------------------------------------------------------------------------
# Valuations


def valuation_out(row: Valuation) -> ValuationOut:
    return ValuationOut(
        id=row.id,
        deal_id=row.deal_id,
        method=row.method,
        method_version=row.method_version,
        value=Money.of(row.value, row.currency),
        recomputed_value=Money.of(deals.recompute(row), row.currency),
        inputs=orjson.loads(row.inputs),
        steps=orjson.loads(row.steps),
        at=row.at,
    )


@router.post(
    "/{deal_id}/valuations",
    status_code=201,
    response_model=ValuationOut,
    responses=problems(404, 409),
)
async def record_valuation(
    deal_id: DealIdPath,
    body: Annotated[ValuationIn, Body()],
    request: Request,
    app: ServicesDep,
    principal: Actingparty,
) -> Response:
    """Value the technology by the cost, income (relief-from-royalty) or market approach, in
    the deal's currency. Inputs and method version are stored; the value recomputes exactly."""

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        deal = await _visible(session, principal, deal_id)
        actor = _actor(principal, deal)
        if isinstance(body, CostValuationIn):
            valuation = pricing.value_by_cost(body.inputs, deal.currency)
        elif isinstance(body, IncomeValuationIn):
            valuation = pricing.value_by_income(body.inputs, deal.currency)
        else:
            valuation = pricing.value_by_market(body.inputs, deal.currency)
        row = await deals.record_valuation(
            session, deal_id, valuation, deal_context(principal, actor, app.clock.now())
        )
        return 201, valuation_out(row)

    return await execute(
        request, app, principal, action="deal.valuation", target=deal_id, work=work
    )


@router.get("/{deal_id}/valuations", response_model=ValuationPage, responses=problems(404))
async def list_valuations(
    deal_id: DealIdPath, app: ServicesDep, principal: Reader
) -> ValuationPage:
    async def read(session: AsyncSession) -> ValuationPage:
        await _visible(session, principal, deal_id)
        return ValuationPage(
            items=[valuation_out(r) for r in await deals.valuations(session, deal_id)]
        )

    return await app.db.read(read)
