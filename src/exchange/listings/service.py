"""Listing service (挂牌): publish a priced deal with its notice period, register intents with
their deposit holds, end the notice (extend, unsold, a negotiated award or bidding), and award:
the winner's deposit into the deal's escrow and every other deposit released, in the transaction
that awards.

Locks, always in this order: the auction row (bidding), then the deal row. The deal row
serialises everything else a listing does (intents, the notice's end, amendments, withdrawal).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.assets import service as assets
from exchange.bidding import rules as bidding_rules
from exchange.bidding import service as bidding
from exchange.bidding.models import Auction, AuctionStatus, Bid, Method
from exchange.clock import Clock
from exchange.config import Settings
from exchange.db import judged_now
from exchange.deals import service as deals
from exchange.deals.machine import Actor, DealAction, DealState
from exchange.deals.models import Deal
from exchange.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    Unprocessable,
    check_version,
)
from exchange.events import emit
from exchange.ledger import service as ledger
from exchange.ledger.models import AccountCode, OwnerType
from exchange.listings.calendar import WorkingCalendar
from exchange.listings.models import Intent, IntentStatus, Listing, ListingStatus
from exchange.parties.service import get_party, open_accounts, party_account_id

AUCTION_TRADE_METHODS = frozenset(m.value for m in Method)
PUBLISHED_STATUSES = frozenset(s.value for s in ListingStatus if s is not ListingStatus.withdrawn)
DEPOSIT_CODE = "deposit"
DUE_BATCH_MAX = 100


@dataclass(frozen=True, slots=True)
class ListingRules:
    """The market's rules for listings (defaults: state-owned and publicly funded assets)."""

    notice_working_days_min: int = 20
    extension_working_days_min: int = 5
    relist_price_floor_pct: int = 90
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar)

    @classmethod
    def of(cls, settings: Settings) -> ListingRules:
        return cls(
            notice_working_days_min=settings.notice_working_days_min,
            extension_working_days_min=settings.extension_working_days_min,
            relist_price_floor_pct=settings.relist_price_floor_pct,
            calendar=WorkingCalendar(
                holidays=frozenset(settings.holidays),
                working_weekends=frozenset(settings.working_weekends),
            ),
        )


@dataclass(frozen=True, slots=True)
class Eligibility:
    party_kinds: tuple[str, ...] | None = None  # None: any kind
    regions: tuple[str, ...] | None = None  # None: any region
    domestic_only: bool = False


@dataclass(frozen=True, slots=True)
class AuctionTerms:
    duration_s: int = 3600
    soft_close_s: int = 300
    hard_close_after_s: int = 1800
    dutch_step: int | None = None
    dutch_interval_s: int | None = None
    criteria: tuple[bidding_rules.Criterion, ...] = ()


@dataclass(frozen=True, slots=True)
class ListingTerms:
    trade_method: str
    currency: str
    listing_price: int
    reserve_price: int | None
    deposit: int
    increments: tuple[bidding_rules.IncrementTier, ...]
    eligibility: Eligibility
    notice_working_days: int
    extension_working_days: int
    extensions_max: int
    auction: AuctionTerms
    below_appraisal_reason: str | None = None  # an operator's approval of a low relisting


class NoticeEnded(Conflict):
    code = "notice_ended"
    title = "The public notice has ended"


class NotEligible(Forbidden):
    code = "not_eligible"
    title = "The party may not register for this listing"


# ---------------------------------------------------------------------------------------------
# Publishing


def deposit_account_id(listing_id: str, currency: str) -> str:
    return f"{listing_id}.{AccountCode.deposit.value}.{currency}"


def escrow_account_id(deal_id: str, currency: str) -> str:
    return f"{deal_id}.{AccountCode.escrow.value}.{currency}"


async def publish(
    session: AsyncSession,
    deal_id: str,
    terms: ListingTerms,
    market: ListingRules,
    ctx: deals.ActorContext,
) -> Listing:
    """List a priced deal (or relist an unsold one): the listing, its deposit account, and the
    deal's `list` / `relist` transition; the notice starts now."""
    deal = await deals.get_deal(session, deal_id, lock=True)
    relisting = deal.state in (DealState.unsold.value, DealState.defaulted.value)
    action = DealAction.relist if relisting else DealAction.list
    deals.check_allowed(deal, action, ctx)
    approval = _check_terms(deal, terms, market, ctx, relisting=relisting)
    previous = await current_listing(session, deal) if relisting else None
    listing = Listing(
        id="lst_" + secrets.token_hex(10),
        deal_id=deal.id,
        round=previous.round + 1 if previous else 1,
        status=ListingStatus.notice.value,
        version=1,
        published_at=ctx.now,
        notice_ends_at=market.calendar.notice_ends_at(ctx.now, terms.notice_working_days),
        extensions_used=0,
        below_appraisal_approval=orjson.dumps(approval).decode() if approval else None,
        created_at=ctx.now,
        updated_at=ctx.now,
        **_term_columns(terms),
    )
    session.add(listing)
    await session.flush()
    await ledger.create_account(
        session,
        ledger.AccountSpec(
            id=deposit_account_id(listing.id, terms.currency),
            currency=terms.currency,
            code=AccountCode.deposit.value,
            owner_type=OwnerType.listing.value,
            owner_id=listing.id,
            debits_must_not_exceed_credits=True,
        ),
        ctx.now,
    )
    deal.listing_id = listing.id
    deal.trade_method = terms.trade_method
    deal.listing_price = terms.listing_price
    deal.reserve_price = terms.reserve_price
    await deals.perform_delegated(
        session,
        deal,
        action,
        ctx,
        {
            "listing_id": listing.id,
            "notice_ends_at": listing.notice_ends_at,
            "round": listing.round,
        },
    )
    await _emit(session, listing, "listing.published", ctx.now)
    return listing


def _term_columns(terms: ListingTerms) -> dict[str, Any]:
    return {
        "trade_method": terms.trade_method,
        "currency": terms.currency,
        "listing_price": terms.listing_price,
        "reserve_price": terms.reserve_price,
        "deposit": terms.deposit,
        "increments": bidding.encode_tiers(terms.increments),
        "eligibility": orjson.dumps(
            {
                "party_kinds": terms.eligibility.party_kinds,
                "regions": terms.eligibility.regions,
                "domestic_only": terms.eligibility.domestic_only,
            }
        ).decode(),
        "notice_working_days": terms.notice_working_days,
        "extension_working_days": terms.extension_working_days,
        "extensions_max": terms.extensions_max,
        "auction": orjson.dumps(
            {
                "duration_s": terms.auction.duration_s,
                "soft_close_s": terms.auction.soft_close_s,
                "hard_close_after_s": terms.auction.hard_close_after_s,
                "dutch_step": terms.auction.dutch_step,
                "dutch_interval_s": terms.auction.dutch_interval_s,
                "criteria": [[c.name, c.weight_bp] for c in terms.auction.criteria],
            }
        ).decode(),
    }


def _check_terms(
    deal: Deal,
    terms: ListingTerms,
    market: ListingRules,
    ctx: deals.ActorContext,
    *,
    relisting: bool,
) -> dict[str, Any] | None:
    """Refuse terms the rules forbid (422 naming each); the approval record of a relisting
    below the floor, when an operator gives one."""
    errors = _term_errors(deal, terms, market)
    approval = None
    appraised = deal.appraised_value
    assert appraised is not None, "a priced deal has an appraised value"
    floor = -(-appraised * market.relist_price_floor_pct // 100)
    if not relisting and terms.listing_price < appraised:
        errors.append(
            _error(
                "listing_price",
                "below_appraised_value",
                "the first listing price may not be below the appraised value",
            )
        )
    elif relisting and terms.listing_price < floor:
        if ctx.actor is not Actor.operator or not terms.below_appraisal_reason:
            errors.append(
                _error(
                    "listing_price",
                    "approval_required",
                    f"a relisting below {market.relist_price_floor_pct}% of the appraised "
                    "value needs an operator's approval with a reason "
                    "(below_appraisal_reason)",
                )
            )
        else:
            approval = {
                "approved_by_key_id": ctx.key_id,
                "reason": terms.below_appraisal_reason,
                "at": ctx.now.isoformat(),
                "appraised_value": appraised,
                "floor": floor,
            }
    if errors:
        raise Unprocessable(
            "the listing terms break the rules: " + "; ".join(e["detail"] for e in errors),
            errors=errors,
        )
    return approval


def _error(field_name: str, code: str, detail: str) -> dict[str, str]:
    return {"field": field_name, "code": code, "detail": detail}


def _term_errors(deal: Deal, terms: ListingTerms, market: ListingRules) -> list[dict[str, str]]:
    errors = []
    if terms.currency != deal.currency:
        errors.append(_error("currency", "currency_mismatch", f"the deal is in {deal.currency}"))
    if terms.notice_working_days < market.notice_working_days_min:
        errors.append(
            _error(
                "notice_working_days",
                "notice_too_short",
                f"the public notice is at least {market.notice_working_days_min} working days",
            )
        )
    if terms.extensions_max and terms.extension_working_days < market.extension_working_days_min:
        errors.append(
            _error(
                "extension_working_days",
                "extension_too_short",
                f"an extension is at least {market.extension_working_days_min} working days",
            )
        )
    method = terms.trade_method
    if method in AUCTION_TRADE_METHODS and terms.reserve_price is None:
        errors.append(_error("reserve", "reserve_required", f"a {method} listing needs a reserve"))
    if method == Method.dutch.value:
        if terms.auction.dutch_step is None or terms.auction.dutch_interval_s is None:
            errors.append(
                _error(
                    "auction",
                    "dutch_terms_required",
                    "a Dutch auction needs a step and an interval",
                )
            )
        if terms.reserve_price is not None and terms.reserve_price > terms.listing_price:
            errors.append(
                _error(
                    "reserve",
                    "floor_above_start",
                    "a Dutch floor (the reserve) may not be above the starting (listing) price",
                )
            )
    if method == Method.tender.value:
        weights = sum(c.weight_bp for c in terms.auction.criteria)
        names = [c.name for c in terms.auction.criteria]
        positive = all(c.weight_bp > 0 for c in terms.auction.criteria)
        if not names or weights != 10_000 or len(set(names)) != len(names) or not positive:
            errors.append(
                _error(
                    "auction.criteria",
                    "criteria_invalid",
                    "a tender publishes distinct criteria, each weighing more than 0, whose "
                    "weights sum to 100%",
                )
            )
    return errors


async def current_listing(session: AsyncSession, deal: Deal) -> Listing:
    assert deal.listing_id is not None, "a listed deal names its listing"
    listing = await session.get(Listing, deal.listing_id)
    assert listing is not None
    return listing


async def get_listing(session: AsyncSession, listing_id: str) -> Listing:
    listing = await session.get(Listing, listing_id)
    if listing is None:
        raise NotFound(f"no listing {listing_id}")
    return listing


async def list_listings(
    session: AsyncSession,
    *,
    statuses: Sequence[str],
    deal_id: str | None,
    after_id: str | None,
    limit: int,
) -> list[Listing]:
    query = select(Listing).where(Listing.status.in_(statuses)).order_by(Listing.id).limit(limit)
    if deal_id is not None:
        query = query.where(Listing.deal_id == deal_id)
    if after_id is not None:
        query = query.where(Listing.id > after_id)
    return list((await session.scalars(query)).all())


async def amend(
    session: AsyncSession,
    listing_id: str,
    terms: ListingTerms,
    market: ListingRules,
    ctx: deals.ActorContext,
    *,
    if_match: int | None,
) -> Listing:
    """Change the terms during notice: the notice restarts; a changed deposit releases the
    registered deposits (their parties register again)."""
    listing = await get_listing(session, listing_id)
    deal = await deals.get_deal(session, listing.deal_id, lock=True)
    await session.refresh(listing)
    check_version(f"listing {listing_id}", listing.version, if_match)
    deals.check_allowed(deal, DealAction.amend_listing, ctx)
    if listing.status != ListingStatus.notice.value or ctx.now >= listing.notice_ends_at:
        raise NoticeEnded(f"the notice of {listing_id} has ended: its terms are fixed")
    approval = _check_terms(deal, terms, market, ctx, relisting=listing.round > 1)
    listing.below_appraisal_approval = orjson.dumps(approval).decode() if approval else None
    released = []
    if terms.deposit != listing.deposit:
        released = await _release(session, await intents_of(session, listing.id), ctx.now)
    for name, value in _term_columns(terms).items():
        setattr(listing, name, value)
    listing.published_at = ctx.now
    listing.notice_ends_at = market.calendar.notice_ends_at(ctx.now, terms.notice_working_days)
    listing.version += 1
    listing.updated_at = ctx.now
    deal.listing_price = terms.listing_price
    deal.reserve_price = terms.reserve_price
    deal.trade_method = terms.trade_method
    await deals.perform_delegated(
        session,
        deal,
        DealAction.amend_listing,
        ctx,
        {
            "listing_id": listing.id,
            "notice_ends_at": listing.notice_ends_at,
            "deposits_released": [i.party_id for i in released],
        },
    )
    await _emit(session, listing, "listing.amended", ctx.now)
    return listing


# ---------------------------------------------------------------------------------------------
# Intents and deposits


async def intents_of(
    session: AsyncSession, listing_id: str, *, status: IntentStatus | None = IntentStatus.held
) -> list[Intent]:
    query = select(Intent).where(Intent.listing_id == listing_id)
    if status is not None:
        query = query.where(Intent.status == status.value)
    return list((await session.scalars(query.order_by(Intent.registered_at, Intent.id))).all())


async def register_intent(
    session: AsyncSession, listing_id: str, party_id: str, now: datetime
) -> tuple[Intent, bool]:
    """Register `party_id`'s intent during notice: its deposit becomes a hold from its available
    account into the listing's deposit account (no deposit, no registration). Registering again
    returns the held intent (False: not new)."""
    listing = await get_listing(session, listing_id)
    deal = await deals.get_deal(session, listing.deal_id, lock=True)
    await session.refresh(listing)
    if listing.status != ListingStatus.notice.value or now >= listing.notice_ends_at:
        raise NoticeEnded(
            f"the notice of {listing_id} ended at {listing.notice_ends_at.isoformat()}: a "
            "registration or deposit after it counts as a withdrawal",
            notice_ends_at=listing.notice_ends_at.isoformat(),
        )
    existing = (
        await session.scalars(
            select(Intent).where(Intent.listing_id == listing_id, Intent.party_id == party_id)
        )
    ).first()
    if existing is not None and existing.status == IntentStatus.held.value:
        return existing, False
    assert existing is None or existing.status == IntentStatus.released.value, (
        "during notice an intent is held or released (an amendment changed the deposit)"
    )
    await _check_eligible(session, listing, deal, party_id)
    if existing is None:
        intent = Intent(id="int_" + secrets.token_hex(10), listing_id=listing_id, party_id=party_id)
        session.add(intent)
        intent.deposit_hold_id = f"dep.{intent.id}"
    else:  # registering again after an amendment released the deposit: a new hold
        intent = existing
        intent.deposit_hold_id = f"dep.{intent.id}.{secrets.token_hex(4)}"
        intent.resolved_at = None
    intent.deposit = listing.deposit
    intent.status = IntentStatus.held.value
    intent.registered_at = now
    await open_accounts(session, party_id, listing.currency, now)
    await ledger.create_transfer(
        session,
        ledger.TransferSpec(
            id=intent.deposit_hold_id,
            debit_account_id=party_account_id(party_id, AccountCode.available, listing.currency),
            credit_account_id=deposit_account_id(listing_id, listing.currency),
            amount=listing.deposit,
            currency=listing.currency,
            code=DEPOSIT_CODE,
            pending=True,
            reference=listing_id,
        ),
        now,
    )
    await session.flush()
    await emit(
        session,
        type="listing.intent_registered",
        aggregate_type="listing",
        aggregate_id=listing_id,
        version=listing.version,
        payload={"listing_id": listing_id, "intent_id": intent.id, "party_id": party_id},
        now=now,
    )
    return intent, True


async def applied_deposit(session: AsyncSession, deal: Deal) -> int:
    """The winner's deposit that the award moved into the deal's escrow (0 if none)."""
    if deal.listing_id is None:
        return 0
    applied = await intents_of(session, deal.listing_id, status=IntentStatus.applied)
    return sum(intent.deposit for intent in applied)


async def _check_eligible(
    session: AsyncSession, listing: Listing, deal: Deal, party_id: str
) -> None:
    party = await get_party(session, party_id)
    if party is None:
        raise NotFound(f"no party {party_id}")
    rules = orjson.loads(listing.eligibility)
    reasons = []
    if party_id == deal.seller_party_id:
        reasons.append("the seller may not register for its own listing")
    if rules["party_kinds"] is not None and party.kind not in rules["party_kinds"]:
        reasons.append(f"the listing admits {', '.join(rules['party_kinds'])}, not {party.kind}")
    if rules["regions"] is not None and party.region not in rules["regions"]:
        reasons.append(f"the listing admits parties of {', '.join(rules['regions'])}")
    foreign = party.country != "CN"
    if foreign and rules["domestic_only"]:
        reasons.append("the listing admits domestic parties only")
    if foreign:
        asset = (await assets.get_asset(session, deal.asset_id)).asset
        if asset.export_control == "prohibited":
            reasons.append("the technology is prohibited from export: no foreign party")
    if reasons:
        raise NotEligible("; ".join(reasons), reasons=reasons)


async def _release(session: AsyncSession, held: Sequence[Intent], now: datetime) -> list[Intent]:
    """Void the deposit holds of `held` intents (one linked batch) and record the release."""
    if not held:
        return []
    await ledger.create_transfers(
        session, [ledger.ResolveSpec(i.deposit_hold_id, post=False) for i in held], now
    )
    for intent in held:
        intent.status = IntentStatus.released.value
        intent.resolved_at = now
    await session.flush()
    return list(held)


# ---------------------------------------------------------------------------------------------
# The end of the notice, the close of bidding, the award


async def process_due(
    session: AsyncSession, listing_id: str, now: datetime, market: ListingRules
) -> bool:
    """Do what is due on a listing at `now` (the worker, or lazily on read and on bids): end its
    notice, or close its auction and award. True when something was done."""
    listing = await get_listing(session, listing_id)
    if listing.status == ListingStatus.bidding.value:
        auction = await bidding.get_auction(session, listing_id, lock=True)
        assert auction is not None, "a listing in bidding has its auction"
        closing = await bidding.close_if_due(session, auction, now)
        if closing is None or closing.scoring:
            return closing is not None
        await conclude_auction(session, listing, closing.award, now)
        return True
    if listing.status != ListingStatus.notice.value or now < listing.notice_ends_at:
        return False
    deal = await deals.get_deal(session, listing.deal_id, lock=True)
    await session.refresh(listing)
    if listing.status != ListingStatus.notice.value or now < listing.notice_ends_at:
        return False  # another process did it first
    await _end_notice(session, listing, deal, now, market)
    return True


async def process_due_now(
    session: AsyncSession, listing_id: str, clock: Clock, market: ListingRules
) -> bool:
    """`process_due` at the instant that judges deadlines (`db.judged_now`)."""
    return await process_due(session, listing_id, await judged_now(session, clock), market)


async def due_listing_ids(session: AsyncSession, now: datetime, limit: int) -> list[str]:
    """Listings whose notice has ended or whose auction is due to close, oldest first."""
    notices = select(Listing.id).where(
        Listing.status == ListingStatus.notice.value, Listing.notice_ends_at <= now
    )
    auctions = select(Auction.listing_id).where(
        Auction.status == AuctionStatus.open.value,
        Auction.closes_at <= now,
    )
    found = list((await session.scalars(notices.limit(limit))).all())
    found += list((await session.scalars(auctions.limit(limit))).all())
    return sorted(set(found))[:limit]


def _system(now: datetime) -> deals.ActorContext:
    return deals.ActorContext(Actor.system, None, None, now)


async def _end_notice(
    session: AsyncSession, listing: Listing, deal: Deal, now: datetime, market: ListingRules
) -> None:
    qualified = await intents_of(session, listing.id)
    if not qualified and listing.extensions_used < listing.extensions_max:
        listing.notice_ends_at = market.calendar.notice_ends_at(
            listing.notice_ends_at, listing.extension_working_days
        )
        listing.extensions_used += 1
        listing.version += 1
        listing.updated_at = now
        await deals.perform_delegated(
            session,
            deal,
            DealAction.extend_notice,
            _system(now),
            {"listing_id": listing.id, "notice_ends_at": listing.notice_ends_at},
        )
        await _emit(session, listing, "listing.notice_extended", now)
    elif not qualified:
        await _unsold(session, listing, deal, now)
    elif len(qualified) == 1:
        winner = qualified[0].party_id
        await _award(session, listing, deal, winner, listing.listing_price, None, now)
    else:
        await _open_bidding(session, listing, deal, qualified, now)


async def _open_bidding(
    session: AsyncSession, listing: Listing, deal: Deal, qualified: list[Intent], now: datetime
) -> None:
    # A negotiated or fixed-price listing with rivals goes to an English auction.
    method = (
        Method(listing.trade_method)
        if listing.trade_method in AUCTION_TRADE_METHODS
        else Method.english
    )
    terms = orjson.loads(listing.auction)
    spec = bidding.AuctionSpec(
        listing_id=listing.id,
        method=method,
        currency=listing.currency,
        start_price=listing.listing_price,
        reserve_price=listing.reserve_price or listing.listing_price,
        tiers=bidding.decode_tiers(listing.increments),
        soft_close_s=terms["soft_close_s"],
        duration_s=terms["duration_s"],
        hard_close_after_s=terms["hard_close_after_s"],
        dutch_step=terms["dutch_step"],
        dutch_interval_s=terms["dutch_interval_s"],
        criteria=tuple(bidding_rules.Criterion(n, w) for n, w in terms["criteria"]),
    )
    await bidding.open_auction(session, spec, [i.party_id for i in qualified], now)
    listing.status = ListingStatus.bidding.value
    listing.version += 1
    listing.updated_at = now
    await deals.perform_delegated(
        session,
        deal,
        DealAction.open_bidding,
        _system(now),
        {"listing_id": listing.id, "method": method.value, "bidders": len(qualified)},
    )
    await _emit(session, listing, "listing.bidding_opened", now)


async def conclude_auction(
    session: AsyncSession, listing: Listing, award: bidding_rules.Award | None, now: datetime
) -> None:
    """After the auction closed (its row locked by the caller): award, or unsold."""
    deal = await deals.get_deal(session, listing.deal_id, lock=True)
    await session.refresh(listing)
    assert listing.status == ListingStatus.bidding.value
    if award is None:
        await _unsold(session, listing, deal, now)
    else:
        await _award(session, listing, deal, award.bidder, award.price, award.bid_key, now)


async def _award(
    session: AsyncSession,
    listing: Listing,
    deal: Deal,
    winner_party_id: str,
    price: int,
    winning_bid_id: str | None,
    now: datetime,
) -> None:
    """The winner's deposit is posted and moved into the deal's escrow, every other deposit
    voided: one linked batch, in the transaction that awards."""
    held = await intents_of(session, listing.id)
    winner = next(i for i in held if i.party_id == winner_party_id)
    others = [i for i in held if i is not winner]
    escrow = escrow_account_id(deal.id, listing.currency)
    await ledger.create_account(
        session,
        ledger.AccountSpec(
            id=escrow,
            currency=listing.currency,
            code=AccountCode.escrow.value,
            owner_type=OwnerType.deal.value,
            owner_id=deal.id,
            debits_must_not_exceed_credits=True,
        ),
        now,
    )
    await ledger.create_transfers(
        session,
        [
            ledger.ResolveSpec(winner.deposit_hold_id, post=True),
            ledger.TransferSpec(
                id=f"{winner.deposit_hold_id}.escrow",
                debit_account_id=deposit_account_id(listing.id, listing.currency),
                credit_account_id=escrow,
                amount=winner.deposit,
                currency=listing.currency,
                code="deposit_applied",
                reference=deal.id,
            ),
            *(ledger.ResolveSpec(i.deposit_hold_id, post=False) for i in others),
        ],
        now,
    )
    winner.status = IntentStatus.applied.value
    for intent in [winner, *others]:
        intent.resolved_at = now
    for intent in others:
        intent.status = IntentStatus.released.value
    _end(listing, ListingStatus.awarded, now)
    deal.buyer_party_id = winner_party_id
    deal.award_price = price
    deal.winning_bid_id = winning_bid_id
    deal.awarded_at = now
    await deals.perform_delegated(
        session,
        deal,
        DealAction.award,
        _system(now),
        {
            "listing_id": listing.id,
            "buyer_party_id": winner_party_id,
            "price": price,
            "winning_bid_id": winning_bid_id,
            "negotiated": winning_bid_id is None,
            "deposit_applied": winner.deposit,
            "deposits_released": len(others),
        },
    )
    await _emit(session, listing, "listing.awarded", now)


async def _unsold(session: AsyncSession, listing: Listing, deal: Deal, now: datetime) -> None:
    released = await _release(session, await intents_of(session, listing.id), now)
    _end(listing, ListingStatus.unsold, now)
    await deals.perform_delegated(
        session,
        deal,
        DealAction.close_unsold,
        _system(now),
        {"listing_id": listing.id, "deposits_released": len(released)},
    )
    await _emit(session, listing, "listing.unsold", now)


def _end(listing: Listing, status: ListingStatus, now: datetime) -> None:
    listing.status = status.value
    listing.ended_at = now
    listing.version += 1
    listing.updated_at = now


async def withdraw(
    session: AsyncSession, deal_id: str, ctx: deals.ActorContext, reason: str | None
) -> Deal:
    """Withdraw a listed, bidding or unsold deal: its auction closes unsold and every deposit
    still held is released."""
    deal = await deals.get_deal(session, deal_id)
    if deal.listing_id is not None and deal.state == DealState.bidding.value:
        auction = await bidding.get_auction(session, deal.listing_id, lock=True)
        if auction is not None:
            await bidding.abandon(session, auction, ctx.now)
    deal = await deals.get_deal(session, deal_id, lock=True)
    await session.refresh(deal)
    deals.check_allowed(deal, DealAction.withdraw, ctx)
    released: list[Intent] = []
    if deal.listing_id is not None and deal.state in (DealState.listed, DealState.bidding):
        listing = await current_listing(session, deal)
        released = await _release(session, await intents_of(session, listing.id), ctx.now)
        _end(listing, ListingStatus.withdrawn, ctx.now)
        await _emit(session, listing, "listing.withdrawn", ctx.now)
    detail = {"deposits_released": len(released), **({"reason": reason} if reason else {})}
    await deals.perform_delegated(session, deal, DealAction.withdraw, ctx, detail)
    return deal


async def _emit(session: AsyncSession, listing: Listing, type: str, now: datetime) -> None:
    await emit(
        session,
        type=type,
        aggregate_type="listing",
        aggregate_id=listing.id,
        version=listing.version,
        payload={
            "id": listing.id,
            "deal_id": listing.deal_id,
            "status": listing.status,
            "trade_method": listing.trade_method,
            "notice_ends_at": listing.notice_ends_at,
        },
        now=now,
    )


# ---------------------------------------------------------------------------------------------
# Bids, through the listing


@dataclass(frozen=True, slots=True)
class BidSubmission:
    """A bid waiting for its auction's next transaction (see `listings.api.bid_coalescer`)."""

    listing_id: str
    offer: bidding.Offer


async def lock_auction(session: AsyncSession, listing_id: str) -> Auction:
    """The listing's auction, locked for bids: every bid and the close take this one lock."""
    auction = await bidding.get_auction(session, listing_id, lock=True)
    if auction is None:
        raise NotFound(f"listing {listing_id} has no auction (it is not in bidding)")
    return auction


async def bid_on_locked(
    session: AsyncSession,
    auction: Auction,
    bidders: dict[str, int],
    offer: bidding.Offer,
    now: datetime,
) -> list[Bid]:
    """One bid on `auction`, locked by `lock_auction` and judged at `now` (`db.judged_now`,
    taken after the lock, so no bid is taken after a close another process judged): refused
    with nothing written, or recorded with its event; a Dutch acceptance awards at once."""
    if offer.party_id not in bidders:
        raise Forbidden(
            f"party {offer.party_id} is not a registered bidder with a held deposit on "
            f"{auction.listing_id}"
        )
    bids = await bidding.bid_locked(session, auction, offer, now)  # refusals: before any write
    try:
        await _after_bid(session, auction, now)
    except DomainError as error:  # the bid is written: what follows it cannot be refused
        raise AssertionError(f"after a bid on {auction.listing_id}: {error.detail}") from error
    return bids


async def _after_bid(session: AsyncSession, auction: Auction, now: datetime) -> None:
    await emit(
        session,
        type="bid.placed",
        aggregate_type="listing",
        aggregate_id=auction.listing_id,
        version=auction.last_seq,
        payload={
            "listing_id": auction.listing_id,
            "seq": auction.last_seq,
            "method": auction.method,
        },
        now=now,
    )
    if auction.method == Method.dutch.value:
        closing = await bidding.close_if_due(session, auction, now)
        assert closing is not None and closing.award is not None
        listing = await get_listing(session, auction.listing_id)
        await conclude_auction(session, listing, closing.award, now)
