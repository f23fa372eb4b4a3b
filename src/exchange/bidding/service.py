"""Bidding service (竞价): open an auction for a listing, take bids under the auction's row lock,
close it when due, and score a tender. Decisions are `rules`'; this module loads, calls them and
writes. Deposits and the deal are the listing service's: this one never moves money.

Every bid and every close takes the auction row `FOR UPDATE` first, so bids on one auction are
serial whatever the number of API processes, and none lands after the close that another process
judged (the close is judged by `db.judged_now`, one clock for all).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.bidding import rules
from exchange.bidding.models import (
    SEALED_METHODS,
    Auction,
    AuctionBidder,
    AuctionStatus,
    Bid,
    Method,
    Panelist,
    Score,
)
from exchange.db import for_update
from exchange.errors import Conflict, Forbidden, NotFound, Unprocessable
from exchange.events import emit
from exchange.evidence import service as evidence

BIDS_PAGE_MAX = 500


class BidRefused(Conflict):
    code = "bid_refused"
    title = "Bid refused"

    def __init__(self, refusal: rules.Refusal, **extra: Any) -> None:
        super().__init__(refusal.detail, **extra)
        self.code = refusal.code


class AuctionClosed(Conflict):
    code = "auction_closed"
    title = "The auction is closed"


@dataclass(frozen=True, slots=True)
class AuctionSpec:
    listing_id: str
    method: Method
    currency: str
    start_price: int
    reserve_price: int
    tiers: tuple[rules.IncrementTier, ...]
    soft_close_s: int
    duration_s: int
    hard_close_after_s: int  # how far past the planned close soft-close extensions may go
    dutch_step: int | None
    dutch_interval_s: int | None
    criteria: tuple[rules.Criterion, ...]


@dataclass(frozen=True, slots=True)
class Offer:
    party_id: str
    currency: str
    amount: int
    max_amount: int | None
    proposal_sha256: str | None


@dataclass(frozen=True, slots=True)
class Closing:
    """What a close decided: the award (None: unsold), or that a tender awaits its panel."""

    award: rules.Award | None
    scoring: bool = False


def encode_tiers(tiers: Sequence[rules.IncrementTier]) -> str:
    """Increment tiers as stored by listings and auctions: JSON [[from_price, increment]]."""
    return orjson.dumps([[t.from_price, t.increment] for t in tiers]).decode()


def decode_tiers(stored: str) -> tuple[rules.IncrementTier, ...]:
    return tuple(rules.IncrementTier(f, i) for f, i in orjson.loads(stored))


def criteria_of(auction: Auction) -> tuple[rules.Criterion, ...]:
    return tuple(rules.Criterion(n, w) for n, w in orjson.loads(auction.criteria or "[]"))


# ---------------------------------------------------------------------------------------------
# Opening and reading


async def open_auction(
    session: AsyncSession, spec: AuctionSpec, bidders: Sequence[str], now: datetime
) -> Auction:
    assert len(bidders) >= 2, "an auction needs two qualified parties"
    assert len(set(bidders)) == len(bidders)
    closes_at = now + timedelta(seconds=spec.duration_s)
    if spec.method is Method.dutch:
        assert spec.dutch_step is not None and spec.dutch_interval_s is not None
        closes_at = rules.dutch_closes_at(
            start=spec.start_price,
            step=spec.dutch_step,
            floor=spec.reserve_price,
            opens_at=now,
            interval_s=spec.dutch_interval_s,
        )
    hard_close_at = closes_at + timedelta(seconds=spec.hard_close_after_s)
    if spec.method is not Method.english:
        hard_close_at = closes_at  # only English closes move
    auction = Auction(
        listing_id=spec.listing_id,
        method=spec.method.value,
        status=AuctionStatus.open.value,
        currency=spec.currency,
        start_price=spec.start_price,
        reserve_price=spec.reserve_price,
        increments=encode_tiers(spec.tiers),
        soft_close_s=spec.soft_close_s,
        dutch_step=spec.dutch_step,
        dutch_interval_s=spec.dutch_interval_s,
        criteria=orjson.dumps([[c.name, c.weight_bp] for c in spec.criteria]).decode()
        if spec.criteria
        else None,
        opens_at=now,
        closes_at=closes_at,
        hard_close_at=hard_close_at,
        last_seq=0,
    )
    session.add(auction)
    await session.flush()
    for number, party_id in enumerate(bidders, start=1):
        session.add(AuctionBidder(listing_id=spec.listing_id, party_id=party_id, number=number))
    await session.flush()
    await emit(
        session,
        type="auction.opened",
        aggregate_type="listing",
        aggregate_id=spec.listing_id,
        version=0,
        payload={
            "listing_id": spec.listing_id,
            "method": spec.method.value,
            "opens_at": now,
            "closes_at": closes_at,
            "bidders": len(bidders),
        },
        now=now,
    )
    return auction


async def get_auction(
    session: AsyncSession, listing_id: str, *, lock: bool = False
) -> Auction | None:
    query = select(Auction).where(Auction.listing_id == listing_id)
    if lock:
        # The auction row is the one lock every bid and the close take (see the module doc).
        query = for_update(session, query)
    return (await session.scalars(query)).first()


async def auctions_of(session: AsyncSession, listing_ids: Sequence[str]) -> dict[str, Auction]:
    """The auctions of these listings (those that have one), by listing id: a page's in one
    query."""
    query = select(Auction).where(Auction.listing_id.in_(listing_ids))
    return {auction.listing_id: auction for auction in await session.scalars(query)}


async def bidder_numbers_of(
    session: AsyncSession, listing_ids: Sequence[str]
) -> dict[str, dict[str, int]]:
    """`bidder_numbers` of each of these listings, in one query."""
    rows = await session.execute(
        select(AuctionBidder.listing_id, AuctionBidder.party_id, AuctionBidder.number).where(
            AuctionBidder.listing_id.in_(listing_ids)
        )
    )
    numbers: dict[str, dict[str, int]] = {listing_id: {} for listing_id in listing_ids}
    for listing_id, party, number in rows:
        numbers[listing_id][party] = number
    return numbers


async def bidder_numbers(session: AsyncSession, listing_id: str) -> dict[str, int]:
    return (await bidder_numbers_of(session, [listing_id]))[listing_id]


async def bids_of(
    session: AsyncSession,
    listing_id: str,
    *,
    after_seq: int = 0,
    party_id: str | None = None,
    limit: int = BIDS_PAGE_MAX,
) -> list[Bid]:
    query = select(Bid).where(Bid.listing_id == listing_id, Bid.seq > after_seq)
    if party_id is not None:
        query = query.where(Bid.party_id == party_id)
    return list((await session.scalars(query.order_by(Bid.seq).limit(limit))).all())


async def effective_bids(session: AsyncSession, listing_id: str) -> list[Bid]:
    """A sealed auction's or a tender's counting bids: each bidder's latest revision."""
    latest = (
        select(Bid.party_id, func.max(Bid.seq).label("seq"))
        .where(Bid.listing_id == listing_id)
        .group_by(Bid.party_id)
        .subquery()
    )
    query = select(Bid).join(
        latest, (Bid.party_id == latest.c.party_id) & (Bid.seq == latest.c.seq)
    )
    return list((await session.scalars(query.where(Bid.listing_id == listing_id))).all())


def dutch_price_now(auction: Auction, now: datetime) -> int:
    assert auction.dutch_step is not None and auction.dutch_interval_s is not None
    return rules.dutch_price(
        start=auction.start_price,
        step=auction.dutch_step,
        floor=auction.reserve_price,
        opens_at=auction.opens_at,
        interval_s=auction.dutch_interval_s,
        now=now,
    )


# ---------------------------------------------------------------------------------------------
# Bidding


async def bid_locked(
    session: AsyncSession, auction: Auction, offer: Offer, now: datetime
) -> list[Bid]:
    """Record one bid on `auction`, locked, judged at `now`: refused with a
    409 naming why (nothing written), or recorded with any proxy answers and the auction's new
    state. A Dutch acceptance closes the auction."""
    if auction.status != AuctionStatus.open.value or now >= auction.closes_at:
        raise AuctionClosed(
            f"the auction of {auction.listing_id} closed at {auction.closes_at.isoformat()}",
            closes_at=auction.closes_at.isoformat(),
        )
    if offer.currency != auction.currency:
        raise Unprocessable(
            f"the auction is in {auction.currency}, not {offer.currency}",
            errors=[{"field": "amount.currency", "code": "currency_mismatch"}],
        )
    method = Method(auction.method)
    if method is Method.english:
        return await _english(session, auction, offer, now)
    if method is Method.dutch:
        return await _dutch(session, auction, offer, now)
    return await _sealed(session, auction, offer, now)


async def _english(
    session: AsyncSession, auction: Auction, offer: Offer, now: datetime
) -> list[Bid]:
    book = rules.EnglishBook(
        price=auction.price,
        leader=auction.leader_party_id,
        leader_max=auction.leader_max,
        closes_at=auction.closes_at,
        hard_close_at=auction.hard_close_at,
    )
    outcome = rules.english_bid(
        book,
        bidder=offer.party_id,
        amount=offer.amount,
        max_amount=offer.max_amount,
        now=now,
        start_price=auction.start_price,
        tiers=decode_tiers(auction.increments),
        soft_close_s=auction.soft_close_s,
    )
    if isinstance(outcome, rules.Refusal):
        if outcome.code == "max_below_amount":  # the body contradicts itself: not a state
            raise Unprocessable(
                outcome.detail, errors=[{"field": "max_amount", "code": "below_amount"}]
            )
        extra = {} if outcome.minimum is None else {"minimum": outcome.minimum}
        raise BidRefused(outcome, **extra)
    bids = []
    for placed in outcome.placed:
        own = placed.bidder == offer.party_id and not placed.auto
        bids.append(
            _new_bid(
                auction,
                placed.bidder,
                placed.amount,
                now,
                auto=placed.auto,
                max_amount=offer.max_amount if own else None,
            )
        )
    session.add_all(bids)
    auction.price = outcome.book.price
    auction.leader_party_id = outcome.book.leader
    auction.leader_max = outcome.book.leader_max
    auction.leader_bid_id = bids[-1].id
    auction.closes_at = outcome.book.closes_at
    return bids  # written at the next flush: one statement for a batch's bids


async def _dutch(session: AsyncSession, auction: Auction, offer: Offer, now: datetime) -> list[Bid]:
    price = dutch_price_now(auction, now)
    if offer.amount < price:
        raise BidRefused(
            rules.Refusal(
                "bid_too_low",
                f"the Dutch clock stands at {price}: an acceptance must offer at least that",
                minimum=price,
            ),
            minimum=price,
        )
    bid = _new_bid(auction, offer.party_id, price, now)
    session.add(bid)
    auction.price = price
    auction.leader_party_id = offer.party_id
    auction.leader_bid_id = bid.id
    return [bid]


async def _sealed(
    session: AsyncSession, auction: Auction, offer: Offer, now: datetime
) -> list[Bid]:
    if offer.max_amount is not None:
        raise Unprocessable(
            "a proxy maximum is for English auctions only",
            errors=[{"field": "max_amount", "code": "not_for_method"}],
        )
    if offer.amount < auction.start_price:
        raise BidRefused(
            rules.Refusal(
                "bid_too_low",
                "a bid may not be below the listing price",
                minimum=auction.start_price,
            ),
            minimum=auction.start_price,
        )
    tender = auction.method == Method.tender.value
    if tender:
        if offer.proposal_sha256 is None:
            raise Unprocessable(
                "a tender needs its technical proposal's SHA-256 (upload it to /v1/evidence)",
                errors=[{"field": "proposal_sha256", "code": "missing"}],
            )
        await evidence.require_known(session, [offer.proposal_sha256], "proposal_sha256")
    elif offer.proposal_sha256 is not None:
        raise Unprocessable(
            "a proposal is for tenders only",
            errors=[{"field": "proposal_sha256", "code": "not_for_method"}],
        )
    bid = _new_bid(auction, offer.party_id, offer.amount, now)
    bid.proposal_sha256 = offer.proposal_sha256
    session.add(bid)
    return [bid]


def _new_bid(
    auction: Auction,
    party_id: str,
    amount: int,
    now: datetime,
    *,
    auto: bool = False,
    max_amount: int | None = None,
) -> Bid:
    auction.last_seq += 1
    return Bid(
        id="bid_" + secrets.token_hex(10),
        listing_id=auction.listing_id,
        seq=auction.last_seq,
        party_id=party_id,
        amount=amount,
        max_amount=max_amount,
        auto=auto,
        proposal_sha256=None,
        placed_at=now,
    )


# ---------------------------------------------------------------------------------------------
# Closing


async def close_if_due(session: AsyncSession, auction: Auction, now: datetime) -> Closing | None:
    """Close `auction` (locked by the caller) if its time has come, or a Dutch acceptance
    ended it: the award per the method's rules, or None when it is not due."""
    if auction.status != AuctionStatus.open.value:
        return None
    method = Method(auction.method)
    accepted = method is Method.dutch and auction.leader_bid_id is not None
    if not accepted and now < auction.closes_at:
        return None
    if method is Method.tender:
        if auction.last_seq > 0:
            auction.status = AuctionStatus.scoring.value
            await session.flush()
            await _emit_closed(session, auction, now, None, scoring=True)
            return Closing(None, scoring=True)
        return await _finish(session, auction, now, None)
    return await _finish(session, auction, now, await _result(session, auction, method))


async def _result(session: AsyncSession, auction: Auction, method: Method) -> rules.Award | None:
    if method is Method.english:
        book = rules.EnglishBook(
            auction.price,
            auction.leader_party_id,
            auction.leader_max,
            auction.closes_at,
            auction.hard_close_at,
        )
        return rules.english_result(book, auction.reserve_price, auction.leader_bid_id or "")
    if method is Method.dutch:
        if auction.leader_bid_id is None or auction.leader_party_id is None:
            return None
        assert auction.price is not None and auction.price >= auction.reserve_price
        return rules.Award(auction.leader_party_id, auction.price, auction.leader_bid_id)
    assert method in SEALED_METHODS
    sealed = [
        rules.SealedBid(b.id, b.party_id, b.amount, b.seq)
        for b in await effective_bids(session, auction.listing_id)
    ]
    return rules.sealed_result(
        sealed, auction.reserve_price, second_price=method is Method.sealed_second_price
    )


async def _finish(
    session: AsyncSession, auction: Auction, now: datetime, award: rules.Award | None
) -> Closing:
    auction.status = AuctionStatus.closed.value
    auction.closed_at = now
    auction.winner_bid_id = award.bid_key if award else None
    await session.flush()
    await _emit_closed(session, auction, now, award)
    return Closing(award)


async def _emit_closed(
    session: AsyncSession,
    auction: Auction,
    now: datetime,
    award: rules.Award | None,
    *,
    scoring: bool = False,
) -> None:
    await emit(
        session,
        type="auction.scoring" if scoring else "auction.closed",
        aggregate_type="listing",
        aggregate_id=auction.listing_id,
        version=auction.last_seq,
        payload={
            "listing_id": auction.listing_id,
            "method": auction.method,
            "bids": auction.last_seq,
            "sold": award is not None,
            **({"price": award.price, "winning_bid_id": award.bid_key} if award else {}),
        },
        now=now,
    )


async def abandon(session: AsyncSession, auction: Auction, now: datetime) -> None:
    """Close `auction` (locked) without a winner: its listing was withdrawn."""
    if auction.status != AuctionStatus.closed.value:
        await _finish(session, auction, now, None)


# ---------------------------------------------------------------------------------------------
# Tender: the panel and its scores


async def appoint_panel(
    session: AsyncSession, auction: Auction, key_ids: Sequence[str], by_key_id: str, now: datetime
) -> list[Panelist]:
    """Appoint the scoring panel (locked auction) before any score is recorded."""
    if auction.method != Method.tender.value:
        raise Conflict(f"{auction.listing_id} is a {auction.method} auction, not a tender")
    if await session.scalar(select(Score.id).where(Score.listing_id == auction.listing_id)):
        raise Conflict("the panel has started scoring: it can no longer change")
    existing = {p.key_id for p in await panel(session, auction.listing_id)}
    for key_id in sorted(set(key_ids) - existing):
        session.add(
            Panelist(
                listing_id=auction.listing_id,
                key_id=key_id,
                appointed_by_key_id=by_key_id,
                appointed_at=now,
            )
        )
    await session.flush()
    return await panel(session, auction.listing_id)


async def panel(session: AsyncSession, listing_id: str) -> list[Panelist]:
    query = select(Panelist).where(Panelist.listing_id == listing_id).order_by(Panelist.key_id)
    return list((await session.scalars(query)).all())


async def scores(session: AsyncSession, listing_id: str) -> list[Score]:
    query = select(Score).where(Score.listing_id == listing_id).order_by(Score.id)
    return list((await session.scalars(query)).all())


async def record_scores(
    session: AsyncSession,
    auction: Auction,
    key_id: str,
    bid_id: str,
    points: dict[str, int],
    now: datetime,
) -> Closing | None:
    """A panelist's points for one bid (locked auction, in `scoring`). When the panel has
    scored every counting bid on every criterion, the tender closes: the award, or None."""
    if auction.status != AuctionStatus.scoring.value:
        raise Conflict(
            f"the tender of {auction.listing_id} is {auction.status}: scores are taken after "
            "its deadline and before its award",
            status_now=auction.status,
        )
    members = {p.key_id for p in await panel(session, auction.listing_id)}
    if key_id not in members:
        raise Forbidden("only a member of the tender's panel may score it")
    counting = {b.id: b for b in await effective_bids(session, auction.listing_id)}
    if bid_id not in counting:
        raise NotFound(f"no counting bid {bid_id} in this tender")
    names = {c.name for c in criteria_of(auction)}
    unknown = sorted(set(points) - names)
    missing = sorted(names - set(points))
    if unknown or missing:
        raise Unprocessable(
            "score every published criterion, and only those",
            errors=[{"field": f"points.{n}", "code": "unknown_criterion"} for n in unknown]
            + [{"field": f"points.{n}", "code": "missing"} for n in missing],
        )
    for criterion, value in sorted(points.items()):
        session.add(
            Score(
                listing_id=auction.listing_id,
                key_id=key_id,
                bid_id=bid_id,
                criterion=criterion,
                points=value,
                at=now,
            )
        )
    await session.flush()
    return await _close_tender_if_scored(session, auction, members, list(counting.values()), now)


@dataclass(frozen=True, slots=True)
class Scoring:
    """A tender's scoring as the rules take it: counting bids, criteria, panel, scores."""

    bids: list[rules.TenderBid]
    criteria: tuple[rules.Criterion, ...]
    panel: set[str]
    scores: list[rules.Score]

    def missing(self) -> list[tuple[str, str, str]]:
        return rules.missing_scores(self.bids, self.criteria, self.panel, self.scores)

    def ranking(self) -> list[rules.Ranked]:
        return rules.tender_ranking(self.bids, self.criteria, self.panel, self.scores)


async def scoring(
    session: AsyncSession,
    auction: Auction,
    members: set[str] | None = None,
    counting: list[Bid] | None = None,
) -> Scoring:
    """The tender's scoring (its panel and counting bids, when the caller has loaded them)."""
    if members is None:
        members = {p.key_id for p in await panel(session, auction.listing_id)}
    if counting is None:
        counting = await effective_bids(session, auction.listing_id)
    return Scoring(
        bids=[rules.TenderBid(b.id, b.party_id, b.amount, b.seq) for b in counting],
        criteria=criteria_of(auction),
        panel=members,
        scores=[
            rules.Score(s.key_id, s.bid_id, s.criterion, s.points)
            for s in await scores(session, auction.listing_id)
        ],
    )


async def _close_tender_if_scored(
    session: AsyncSession,
    auction: Auction,
    members: set[str],
    counting: list[Bid],
    now: datetime,
) -> Closing | None:
    state = await scoring(session, auction, members, counting)
    if state.missing():
        return None
    # Every bid is scored; the best-scored bid that meets the (hidden) reserve wins.
    meeting = [b for b in state.bids if b.amount >= auction.reserve_price]
    award = (
        rules.tender_result(meeting, state.criteria, state.panel, state.scores) if meeting else None
    )
    return await _finish(session, auction, now, award)
