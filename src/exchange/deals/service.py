"""Deal service: create a deal, walk it through the state machine under its row lock, and keep
its rights checklist, consents, certificate and valuations. Every transition writes the deal row,
its history row and one outbox event in the caller's transaction."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.assets import service as assets
from exchange.assets.models import VALID_STATUSES, LegalStatus
from exchange.db import for_update
from exchange.deals import rights
from exchange.deals.machine import (
    Actor,
    DealAction,
    DealState,
    Transition,
    allowed_actions,
    transition,
)
from exchange.deals.models import (
    Consent,
    Deal,
    DealTransition,
    RightsCertificate,
    RightsCheck,
    Valuation,
)
from exchange.errors import Conflict, Forbidden, NotFound, Unprocessable, check_version
from exchange.events import emit
from exchange.evidence import service as evidence
from exchange.parties.service import get_party
from exchange.pricing import rules as pricing

AUCTION_METHODS = frozenset({"english", "sealed_first_price", "sealed_second_price", "dutch"})
# Actions other services take, because they hold or move money with the transition: the
# listing service (deposits) and the settlement service (contract, escrow, payouts).
DELEGATED_ACTIONS = frozenset(
    {
        DealAction.list,
        DealAction.amend_listing,
        DealAction.extend_notice,
        DealAction.open_bidding,
        DealAction.award,
        DealAction.close_unsold,
        DealAction.relist,
        DealAction.sign_contract,
        DealAction.pay,
        DealAction.settle,
        DealAction.record_transfer,
        DealAction.default,
    }
)
LISTING_STATES = frozenset({DealState.listed, DealState.bidding, DealState.unsold})


class TransitionNotAllowed(Conflict):
    code = "transition_not_allowed"
    title = "Action not allowed in this state"


class GuardFailed(Conflict):
    code = "guard_failed"
    title = "The action's conditions are not met"


@dataclass(frozen=True, slots=True)
class ActorContext:
    actor: Actor
    key_id: str | None
    request_id: str | None
    now: datetime


@dataclass(frozen=True, slots=True)
class DealSpec:
    asset_id: str
    seller_party_id: str
    rights_offered: rights.RightsOffered
    territory: list[str]
    term_start_date: date | None
    term_end_date: date | None
    trade_method: str
    currency: str


@dataclass(frozen=True, slots=True)
class PriceSpec:
    valuation_id: str
    listing_price: int
    reserve_price: int | None
    currency: str


# ---------------------------------------------------------------------------------------------
# Creating and reading


async def create_deal(
    session: AsyncSession, deal_id: str, spec: DealSpec, ctx: ActorContext
) -> Deal:
    if await session.get(Deal, deal_id) is not None:
        raise Unprocessable(f"deal {deal_id} exists", errors=[{"field": "id", "code": "taken"}])
    record = await assets.get_asset(session, spec.asset_id)
    if await get_party(session, spec.seller_party_id) is None:
        raise Unprocessable(
            f"no party {spec.seller_party_id}",
            errors=[{"field": "seller_party_id", "code": "party_not_found"}],
        )
    if spec.seller_party_id not in record.owners:
        raise Unprocessable(
            f"party {spec.seller_party_id} is not an owner of asset {spec.asset_id}",
            errors=[{"field": "seller_party_id", "code": "not_an_owner"}],
        )
    deal = Deal(
        id=deal_id,
        asset_id=spec.asset_id,
        seller_party_id=spec.seller_party_id,
        rights_offered=spec.rights_offered.value,
        territory=orjson.dumps(spec.territory).decode(),
        term_start_date=spec.term_start_date,
        term_end_date=spec.term_end_date,
        trade_method=spec.trade_method,
        currency=spec.currency,
        state=DealState.draft.value,
        version=1,
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    session.add(deal)
    await session.flush()
    await _record_transition(session, deal, "create", None, ctx, None)
    return deal


async def deals_by_id(session: AsyncSession, deal_ids: Iterable[str]) -> dict[str, Deal]:
    """These deals (those that exist), by id, in one query."""
    query = select(Deal).where(Deal.id.in_(set(deal_ids)))
    return {deal.id: deal for deal in await session.scalars(query)}


async def get_deal(session: AsyncSession, deal_id: str, *, lock: bool = False) -> Deal:
    query = select(Deal).where(Deal.id == deal_id)
    if lock:
        # The deal row serialises every change to the deal, whichever process makes it.
        query = for_update(session, query)
    deal = (await session.scalars(query)).first()
    if deal is None:
        raise NotFound(f"no deal {deal_id}")
    return deal


async def list_deals(
    session: AsyncSession,
    *,
    seller_party_id: str | None,
    state: str | None,
    after_id: str | None,
    limit: int,
) -> list[Deal]:
    query = select(Deal).order_by(Deal.id).limit(limit)
    if seller_party_id is not None:
        query = query.where(Deal.seller_party_id == seller_party_id)
    if state is not None:
        query = query.where(Deal.state == state)
    if after_id is not None:
        query = query.where(Deal.id > after_id)
    return list((await session.scalars(query)).all())


async def history(session: AsyncSession, deal_id: str) -> list[DealTransition]:
    query = select(DealTransition).where(DealTransition.deal_id == deal_id)
    return list((await session.scalars(query.order_by(DealTransition.id))).all())


# ---------------------------------------------------------------------------------------------
# The state machine


async def perform(
    session: AsyncSession,
    deal_id: str,
    action: DealAction,
    ctx: ActorContext,
    *,
    if_match: int | None = None,
    reason: str | None = None,
    price: PriceSpec | None = None,
) -> Deal:
    """Apply one action: refuse it (409, nothing written) unless the table allows it from the
    current state for this actor and its guard holds."""
    deal = await get_deal(session, deal_id, lock=True)
    check_version(f"deal {deal_id}", deal.version, if_match)
    state = DealState(deal.state)
    found = check_allowed(deal, action, ctx)
    if action in DELEGATED_ACTIONS or (action is DealAction.withdraw and state in LISTING_STATES):
        raise GuardFailed(
            f"{action} from {state} moves money: it is taken through the deal's listing or "
            "settlement routes",
            state=state.value,
        )
    detail: dict[str, Any] | None = {"reason": reason} if reason else None
    if action is DealAction.confirm:
        detail = await _confirm(session, deal, ctx)
    elif action is DealAction.price:
        assert price is not None
        detail = await _price(session, deal, price)
    elif action is DealAction.reopen_review:
        deal.certificate_id = None
        deal.valuation_id = deal.appraised_value = None
        deal.listing_price = deal.reserve_price = None
    await _apply(session, deal, found, ctx, detail)
    return deal


def check_allowed(deal: Deal, action: DealAction, ctx: ActorContext) -> Transition:
    """The table's row for `action` from the deal's state, for this actor; else 409 (403)."""
    state = DealState(deal.state)
    found = transition(state, action)
    if found is None:
        raise TransitionNotAllowed(
            f"{action} is not allowed from {state}",
            state=state.value,
            allowed_actions=allowed_actions(state, frozenset({ctx.actor})),
        )
    if ctx.actor not in found.actors:
        raise Forbidden(f"{action} is for {', '.join(sorted(found.actors))}, not {ctx.actor}")
    return found


async def _apply(
    session: AsyncSession,
    deal: Deal,
    found: Transition,
    ctx: ActorContext,
    detail: dict[str, Any] | None,
) -> None:
    source = DealState(deal.state)
    assert found.source is source
    deal.state = found.target.value
    deal.version += 1
    deal.updated_at = ctx.now
    await session.flush()
    await _record_transition(session, deal, found.action.value, source, ctx, detail)


async def perform_delegated(
    session: AsyncSession,
    deal: Deal,
    action: DealAction,
    ctx: ActorContext,
    detail: dict[str, Any] | None = None,
) -> None:
    """Apply an action another service takes (listing, settlement) to the deal, locked by the
    caller (`get_deal(lock=True)`), after that service has checked its guard and written its
    own rows and transfers."""
    await _apply(session, deal, check_allowed(deal, action, ctx), ctx, detail)


async def _record_transition(
    session: AsyncSession,
    deal: Deal,
    action: str,
    source: DealState | None,
    ctx: ActorContext,
    detail: dict[str, Any] | None,
) -> None:
    session.add(
        DealTransition(
            deal_id=deal.id,
            action=action,
            from_state=source.value if source else None,
            to_state=deal.state,
            version=deal.version,
            actor_key_id=ctx.key_id,
            request_id=ctx.request_id,
            detail=orjson.dumps(detail).decode() if detail else None,
            at=ctx.now,
        )
    )
    await emit(
        session,
        type=f"deal.{action}",
        aggregate_type="deal",
        aggregate_id=deal.id,
        version=deal.version,
        payload={
            "id": deal.id,
            "asset_id": deal.asset_id,
            "seller_party_id": deal.seller_party_id,
            "action": action,
            "from": source.value if source else None,
            "to": deal.state,
            **({"detail": detail} if detail else {}),
        },
        now=ctx.now,
    )


async def _locked_in(
    session: AsyncSession,
    deal_id: str,
    states: tuple[DealState, ...],
    records: str,
    ctx: ActorContext,
) -> Deal:
    """The deal, locked, if it is in one of `states` (where `records` may be written); else 409
    with its state and the actions allowed."""
    deal = await get_deal(session, deal_id, lock=True)
    if deal.state not in states:
        raise TransitionNotAllowed(
            f"{records} are recorded in {' or '.join(states)}, not {deal.state}",
            state=deal.state,
            allowed_actions=allowed_actions(DealState(deal.state), frozenset({ctx.actor})),
        )
    return deal


async def reopen_for_asset(session: AsyncSession, asset_id: str, ctx: ActorContext) -> list[str]:
    """The asset's rights changed: every deal confirmed on the old rights goes back to review."""
    query = select(Deal.id).where(
        Deal.asset_id == asset_id,
        Deal.state.in_([DealState.rights_confirmed.value, DealState.priced.value]),
    )
    reopened = list((await session.scalars(query.order_by(Deal.id))).all())
    system = ActorContext(Actor.system, ctx.key_id, ctx.request_id, ctx.now)
    for deal_id in reopened:
        await perform(session, deal_id, DealAction.reopen_review, system)
    return reopened


# ---------------------------------------------------------------------------------------------
# Rights confirmation


async def facts(
    session: AsyncSession, deal: Deal, record: assets.AssetRecord, today: date
) -> rights.Facts:
    """What the records say about the deal's asset (`record`, loaded by the caller) and its
    consents."""
    consents = await session.scalars(select(Consent).where(Consent.deal_id == deal.id))
    asset = record.asset
    return rights.Facts(
        seller_party_id=deal.seller_party_id,
        owners=record.owners,
        legal_status_valid=LegalStatus(asset.legal_status) in VALID_STATUSES,
        expiry_date=asset.expiry_date,
        licences=[
            rights.GrantedLicence(
                kind=item["kind"],
                territory=tuple(item["territory"]),
                start_date=date.fromisoformat(item["start_date"]),
                end_date=date.fromisoformat(item["end_date"]) if item.get("end_date") else None,
            )
            for item in record.licences
        ],
        pledges=[
            rights.Pledge(item["pledgee_party_id"], item.get("registration_number") is not None)
            for item in record.pledges
        ],
        export_control=asset.export_control,
        rights_offered=rights.RightsOffered(deal.rights_offered),
        territory=tuple(orjson.loads(deal.territory)),
        term_start_date=deal.term_start_date,
        term_end_date=deal.term_end_date,
        today=today,
        consents=frozenset((c.party_id, c.role) for c in consents.all()),
    )


@dataclass(frozen=True, slots=True)
class CheckStatus:
    check: rights.Check
    supported_by_records: bool
    reason: str | None
    latest: RightsCheck | None
    stale: bool  # recorded against an older version of the asset

    @property
    def passed(self) -> bool:
        return (
            self.latest is not None
            and self.latest.result == "pass"
            and not self.stale
            and self.supported_by_records
        )

    def problem(self) -> str | None:
        if self.latest is None:
            return "not recorded"
        if self.stale:
            return "recorded before the asset last changed"
        if self.latest.result != "pass":
            return "recorded as failed"
        if not self.supported_by_records:
            return self.reason
        return None


async def checklist(session: AsyncSession, deal: Deal, today: date) -> list[CheckStatus]:
    return await _statuses(session, deal, await assets.get_asset(session, deal.asset_id), today)


async def _statuses(
    session: AsyncSession, deal: Deal, record: assets.AssetRecord, today: date
) -> list[CheckStatus]:
    evaluated = rights.evaluate(await facts(session, deal, record, today))
    rows = await session.scalars(
        select(RightsCheck).where(RightsCheck.deal_id == deal.id).order_by(RightsCheck.id)
    )
    latest: dict[str, RightsCheck] = {}
    for row in rows.all():
        latest[row.check] = row
    return [
        CheckStatus(
            check=check,
            supported_by_records=evaluated[check] is None,
            reason=evaluated[check],
            latest=latest.get(check.value),
            stale=check.value in latest
            and latest[check.value].asset_version != record.asset.version,
        )
        for check in rights.Check
    ]


async def record_check(
    session: AsyncSession,
    deal_id: str,
    *,
    check: rights.Check,
    result: str,
    evidence_hashes: list[str],
    note: str | None,
    ctx: ActorContext,
) -> RightsCheck:
    """An operator's finding on one check, with the SHA-256 of its evidence. A pass that the
    records contradict (say, a co-owner without a recorded consent) is refused."""
    deal = await _locked_in(session, deal_id, (DealState.rights_review,), "rights checks", ctx)
    await evidence.require_known(session, evidence_hashes, "evidence")
    record = await assets.get_asset(session, deal.asset_id)
    evaluated = rights.evaluate(await facts(session, deal, record, ctx.now.date()))
    if result == "pass" and evaluated[check] is not None:
        raise GuardFailed(
            f"{check} cannot pass: {evaluated[check]}",
            errors=[
                {
                    "check": check.value,
                    "code": "contradicted_by_records",
                    "detail": evaluated[check],
                }
            ],
        )
    row = RightsCheck(
        deal_id=deal_id,
        check=check.value,
        result=result,
        note=note,
        evidence=orjson.dumps(sorted(set(evidence_hashes))).decode(),
        asset_version=record.asset.version,
        reviewer_key_id=ctx.key_id or "system",
        at=ctx.now,
    )
    session.add(row)
    await session.flush()
    return row


async def record_consent(
    session: AsyncSession,
    deal_id: str,
    *,
    party_id: str,
    role: str,
    evidence_sha256: str,
    ctx: ActorContext,
) -> Consent:
    deal = await _locked_in(
        session, deal_id, (DealState.draft, DealState.rights_review), "consents", ctx
    )
    await evidence.require_known(session, [evidence_sha256], "evidence_sha256")
    record = await assets.get_asset(session, deal.asset_id)
    deal_facts = await facts(session, deal, record, ctx.now.date())
    eligible = (
        {p for p in deal_facts.owners if p != deal.seller_party_id}
        if role == "co_owner"
        else {p.pledgee_party_id for p in deal_facts.pledges}
    )
    if party_id not in eligible:
        raise Unprocessable(
            f"party {party_id} is not a {role.replace('_', '-')} of the asset",
            errors=[{"field": "party_id", "code": f"not_a_{role}"}],
        )
    existing = (
        await session.scalars(
            select(Consent).where(
                Consent.deal_id == deal_id, Consent.party_id == party_id, Consent.role == role
            )
        )
    ).first()
    if existing is not None:
        return existing
    consent = Consent(
        deal_id=deal_id,
        party_id=party_id,
        role=role,
        evidence_sha256=evidence_sha256,
        recorded_by_key_id=ctx.key_id or "system",
        at=ctx.now,
    )
    session.add(consent)
    await session.flush()
    return consent


async def _confirm(session: AsyncSession, deal: Deal, ctx: ActorContext) -> dict[str, Any]:
    record = await assets.get_asset(session, deal.asset_id)
    statuses = await _statuses(session, deal, record, ctx.now.date())
    failing = [s for s in statuses if not s.passed]
    if failing:
        raise GuardFailed(
            f"rights cannot be confirmed: {len(failing)} check(s) fail or are missing",
            errors=[
                {"check": s.check.value, "code": "check_not_passed", "detail": s.problem()}
                for s in failing
            ],
        )
    content = {
        "deal_id": deal.id,
        "asset_id": deal.asset_id,
        "asset_version": record.asset.version,
        "application_number": record.asset.application_number,
        "seller_party_id": deal.seller_party_id,
        "owners": {party: bp for party, bp in sorted(record.owners.items())},
        "rights_offered": deal.rights_offered,
        "territory": orjson.loads(deal.territory),
        "term_start_date": deal.term_start_date,
        "term_end_date": deal.term_end_date,
        "checks": [
            {
                "check": s.check.value,
                "reviewer_key_id": s.latest.reviewer_key_id,
                "at": s.latest.at,
                "evidence": orjson.loads(s.latest.evidence),
            }
            for s in statuses
            if s.latest is not None
        ],
        "confirmed_by_key_id": ctx.key_id,
        "confirmed_at": ctx.now,
    }
    canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z)
    certificate = RightsCertificate(
        id="cert_" + secrets.token_hex(10),
        deal_id=deal.id,
        asset_id=deal.asset_id,
        asset_version=record.asset.version,
        content=canonical.decode(),
        sha256=hashlib.sha256(canonical).hexdigest(),
        issued_at=ctx.now,
    )
    session.add(certificate)
    await session.flush()
    deal.certificate_id = certificate.id
    return {"certificate_id": certificate.id, "certificate_sha256": certificate.sha256}


async def certificate(session: AsyncSession, deal: Deal) -> RightsCertificate | None:
    if deal.certificate_id is None:
        return None
    return await session.get(RightsCertificate, deal.certificate_id)


# ---------------------------------------------------------------------------------------------
# Pricing


async def record_valuation(
    session: AsyncSession,
    deal_id: str,
    valuation: pricing.Valuation,
    ctx: ActorContext,
) -> Valuation:
    deal = await _locked_in(
        session, deal_id, (DealState.rights_review, DealState.rights_confirmed), "valuations", ctx
    )
    assert valuation.currency == deal.currency
    row = Valuation(
        id="val_" + secrets.token_hex(10),
        deal_id=deal_id,
        method=valuation.method,
        method_version=valuation.method_version,
        currency=valuation.currency,
        value=valuation.value,
        inputs=orjson.dumps(valuation.inputs, option=orjson.OPT_SORT_KEYS).decode(),
        steps=orjson.dumps(valuation.steps).decode(),
        recorded_by_key_id=ctx.key_id or "system",
        at=ctx.now,
    )
    session.add(row)
    await session.flush()
    return row


async def valuations(session: AsyncSession, deal_id: str) -> list[Valuation]:
    query = select(Valuation).where(Valuation.deal_id == deal_id).order_by(Valuation.at)
    return list((await session.scalars(query)).all())


def recompute(row: Valuation) -> int:
    """The value the stored inputs give today: equal to `row.value`, or the rules changed."""
    return pricing.recompute(
        row.method, row.method_version, orjson.loads(row.inputs), row.currency
    ).value


async def _price(session: AsyncSession, deal: Deal, spec: PriceSpec) -> dict[str, Any]:
    chosen = await session.get(Valuation, spec.valuation_id)
    if chosen is None or chosen.deal_id != deal.id:
        raise GuardFailed(
            f"no valuation {spec.valuation_id} of this deal",
            errors=[{"field": "valuation_id", "code": "valuation_not_found"}],
        )
    errors = []
    if spec.currency != deal.currency:
        errors.append(
            {
                "field": "listing_price.currency",
                "code": "currency_mismatch",
                "detail": f"the deal is in {deal.currency}",
            }
        )
    if spec.listing_price < chosen.value:
        errors.append(
            {
                "field": "listing_price",
                "code": "below_appraised_value",
                "detail": "the listing price may not be below the appraised value",
            }
        )
    if deal.trade_method in AUCTION_METHODS and spec.reserve_price is None:
        errors.append(
            {
                "field": "reserve",
                "code": "reserve_required",
                "detail": f"a {deal.trade_method} auction needs a reserve",
            }
        )
    if errors:
        raise GuardFailed(
            "the deal cannot be priced: " + "; ".join(e["detail"] for e in errors), errors=errors
        )
    deal.valuation_id = chosen.id
    deal.appraised_value = chosen.value
    deal.listing_price = spec.listing_price
    deal.reserve_price = spec.reserve_price
    return {
        "valuation_id": chosen.id,
        "appraised_value": chosen.value,
        "listing_price": spec.listing_price,
        "reserve_price": spec.reserve_price,
    }
