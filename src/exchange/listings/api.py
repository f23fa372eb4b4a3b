"""Listing routes under /v1/listings: publish and amend, the public listing, intents with their
deposits, bids (and their stream), a tender's panel and scores. Published listings are public:
reading them needs no key, and the public view holds no private field."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth.service import Principal, Role
from exchange.bidding import rules as bidding_rules
from exchange.bidding import service as bidding
from exchange.bidding.models import SEALED_METHODS, Auction, AuctionStatus, Bid, Method
from exchange.clock import Clock
from exchange.coalescer import Coalescer, Result, Submission
from exchange.db import Database, judged_now
from exchange.deals import service as deals
from exchange.deals.api import deal_context
from exchange.deals.machine import Actor
from exchange.deals.models import Deal
from exchange.errors import DomainError, NotFound
from exchange.listings import service as listings
from exchange.listings.models import Listing, ListingStatus
from exchange.listings.schemas import (
    AuctionOut,
    AuctionTermsOut,
    BidIn,
    BidOut,
    BidPage,
    CriterionOut,
    EligibilityOut,
    IncrementTierOut,
    IntentIn,
    IntentOut,
    ListingIn,
    ListingOut,
    ListingPage,
    ListingPrivateOut,
    ListingTermsIn,
    PanelIn,
    PanelOut,
    PlacedOut,
    RankedOut,
    ScoreIn,
    ScoresOut,
)
from exchange.money import Money
from exchange.schemas import REFERENCE_ID_PATTERN
from exchange.web import (
    PROBLEM_MEDIA_TYPE,
    PrefixedRouter,
    Services,
    ServicesDep,
    acting_party,
    actor_of,
    decode_cursor,
    encode_cursor,
    etagged,
    execute,
    fingerprint_of,
    idempotency_key_of,
    if_match_version,
    optional_principal,
    problems,
    require,
)

router = PrefixedRouter(prefix="/v1/listings", tags=["listings"])

Actingparty = Annotated[Principal, Depends(require(Role.operator, Role.admin, Role.member))]
Operator = Annotated[Principal, Depends(require(Role.operator, Role.admin))]
Viewer = Annotated[Principal | None, Depends(optional_principal)]
ListingIdPath = Annotated[str, Path(pattern=REFERENCE_ID_PATTERN)]
STREAM_POLL_S = 0.25
BID_BATCH_MAX = 256
BID_LANES = 8  # transactions at a time per process, each on a different auction
BIDDER_CACHE_AUCTIONS_MAX = 10_000


# ---------------------------------------------------------------------------------------------
# Views


def _money(minor: int | None, currency: str) -> Money | None:
    return None if minor is None else Money.of(minor, currency)


def _private_viewer(principal: Principal | None, deal: Deal) -> bool:
    if principal is None:
        return False
    if principal.role in (Role.operator, Role.admin, Role.auditor):
        return True
    return principal.role is Role.member and principal.party_id == deal.seller_party_id


def auction_out(auction: Auction, now: datetime) -> AuctionOut:
    method = Method(auction.method)
    closed = auction.status == AuctionStatus.closed.value
    price: int | None = None
    if method is Method.english or (closed and auction.winner_bid_id is not None):
        price = auction.price
    elif method is Method.dutch:
        price = bidding.dutch_price_now(auction, now)
    return AuctionOut(
        method=method.value,
        status=auction.status,
        opens_at=auction.opens_at,
        closes_at=auction.closes_at,
        hard_close_at=auction.hard_close_at,
        bids=auction.last_seq,
        current_price=_money(price, auction.currency),
        leading_bidder=None,
        reserve_met=(auction.winner_bid_id is not None) if closed else None,
        winning_bid_id=auction.winner_bid_id if closed else None,
    )


def _listing_view(
    listing: Listing,
    deal: Deal,
    auction: Auction | None,
    numbers: dict[str, int],
    now: datetime,
    private: dict[str, Any] | None,
) -> ListingOut:
    terms = orjson.loads(listing.auction)
    currency = listing.currency
    auction_view = None
    if auction is not None:
        auction_view = auction_out(auction, now)
        if auction.method == Method.english.value and auction.leader_party_id is not None:
            auction_view.leading_bidder = numbers.get(auction.leader_party_id)
    fields: dict[str, Any] = {
        "id": listing.id,
        "deal_id": listing.deal_id,
        "round": listing.round,
        "status": listing.status,
        "version": listing.version,
        "asset_id": deal.asset_id,
        "rights_offered": deal.rights_offered,
        "territory": orjson.loads(deal.territory),
        "trade_method": listing.trade_method,
        "listing_price": Money.of(listing.listing_price, currency),
        "deposit": Money.of(listing.deposit, currency),
        "increments": [
            IncrementTierOut(
                from_price=Money.of(t.from_price, currency),
                increment=Money.of(t.increment, currency),
            )
            for t in bidding.decode_tiers(listing.increments)
        ],
        "eligibility": EligibilityOut.model_validate(orjson.loads(listing.eligibility)),
        "notice_working_days": listing.notice_working_days,
        "published_at": listing.published_at,
        "notice_ends_at": listing.notice_ends_at,
        "extensions_used": listing.extensions_used,
        "extensions_max": listing.extensions_max,
        "auction_terms": AuctionTermsOut(
            duration_s=terms["duration_s"],
            soft_close_s=terms["soft_close_s"],
            hard_close_after_s=terms["hard_close_after_s"],
            dutch_step=_money(terms["dutch_step"], currency),
            dutch_interval_s=terms["dutch_interval_s"],
            criteria=[
                CriterionOut(name=n, weight_pct=f"{w // 100}.{w % 100:02d}")
                for n, w in terms["criteria"]
            ],
        ),
        "auction": auction_view,
        "award_price": _money(deal.award_price, currency)
        if listing.status == ListingStatus.awarded.value
        else None,
        "ended_at": listing.ended_at,
    }
    if private is None:
        return ListingOut(**fields)
    return ListingPrivateOut(**fields, **private)


async def _view(
    session: AsyncSession, listing: Listing, principal: Principal | None, now: datetime
) -> ListingOut:
    deal = await deals.get_deal(session, listing.deal_id)
    private_view = _private_viewer(principal, deal)
    if listing.status == ListingStatus.withdrawn.value and not private_view:
        raise NotFound(f"no listing {listing.id}")
    auction = await bidding.get_auction(session, listing.id)
    numbers = await bidding.bidder_numbers(session, listing.id) if auction else {}
    private = None
    if private_view:
        approval = listing.below_appraisal_approval
        private = {
            "reserve": _money(listing.reserve_price, listing.currency),
            "intents": len(await listings.intents_of(session, listing.id, status=None)),
            "below_appraisal_approval": orjson.loads(approval) if approval else None,
        }
    return _listing_view(listing, deal, auction, numbers, now, private)


def _terms(body: ListingTermsIn, deal_method: str) -> listings.ListingTerms:
    auction = body.auction
    return listings.ListingTerms(
        trade_method=(body.trade_method.value if body.trade_method else deal_method),
        currency=body.listing_price.currency,
        listing_price=body.listing_price.minor(),
        reserve_price=body.reserve.minor() if body.reserve else None,
        deposit=body.deposit.minor(),
        increments=tuple(
            bidding_rules.IncrementTier(t.from_price.minor(), t.increment.minor())
            for t in body.increments
        )
        or (bidding_rules.IncrementTier(0, max(1, body.listing_price.minor() // 100)),),
        eligibility=listings.Eligibility(
            party_kinds=tuple(k.value for k in body.eligibility.party_kinds)
            if body.eligibility.party_kinds
            else None,
            regions=tuple(body.eligibility.regions) if body.eligibility.regions else None,
            domestic_only=body.eligibility.domestic_only,
        ),
        notice_working_days=body.notice_working_days,
        extension_working_days=body.extension_working_days,
        extensions_max=body.extensions_max,
        auction=listings.AuctionTerms(
            duration_s=auction.duration_s,
            soft_close_s=auction.soft_close_s,
            hard_close_after_s=auction.hard_close_after_s,
            dutch_step=auction.dutch_step.minor() if auction.dutch_step else None,
            dutch_interval_s=auction.dutch_interval_s,
            criteria=tuple(bidding_rules.Criterion(c.name, c.weight_bp) for c in auction.criteria),
        ),
        below_appraisal_reason=body.below_appraisal_reason,
    )


def _actor(principal: Principal, deal: Deal) -> Actor:
    """Operators act as the operator; a member only for a deal its party sells (else 404)."""
    if principal.role in (Role.operator, Role.admin):
        return Actor.operator
    if principal.role is Role.member and principal.party_id == deal.seller_party_id:
        return Actor.seller
    raise NotFound(f"no deal {deal.id}")


async def _settled(app: Services, listing_id: str) -> None:
    """Lazily do what is due on the listing (the notice's end, the auction's close) before a
    read, so a reader never sees a listing the worker has not reached yet as still open."""
    now = app.clock.now()
    listing = await app.db.read(lambda s: listings.get_listing(s, listing_id))
    if listing.status == ListingStatus.notice.value and now < listing.notice_ends_at:
        return
    if listing.status not in (ListingStatus.notice.value, ListingStatus.bidding.value):
        return
    market = listings.ListingRules.of(app.settings)
    await app.db.run(
        functools.partial(
            listings.process_due_now, listing_id=listing_id, clock=app.clock, market=market
        )
    )


# ---------------------------------------------------------------------------------------------
# The listing


@router.post(
    "", status_code=201, response_model=ListingPrivateOut, responses=problems(404, 409, 422)
)
async def publish(
    body: ListingIn, request: Request, app: ServicesDep, principal: Actingparty
) -> Response:
    """List a priced deal (or relist an unsold one): the public notice starts now and runs for
    `notice_working_days` working days (weekends and the configured holidays skipped)."""
    market = listings.ListingRules.of(app.settings)

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        deal = await deals.get_deal(session, body.deal_id)
        actor = _actor(principal, deal)
        now = app.clock.now()
        listing = await listings.publish(
            session,
            body.deal_id,
            _terms(body, deal.trade_method),
            market,
            deal_context(principal, actor, now),
        )
        return 201, await _view(session, listing, principal, now)

    return await execute(
        request, app, principal, action="listing.publish", target=body.deal_id, work=work, etag=True
    )


@router.get("", response_model=ListingPage, responses=problems(422))
async def list_listings(
    app: ServicesDep,
    principal: Viewer,
    status: ListingStatus | None = None,
    deal_id: Annotated[str | None, Query(pattern=REFERENCE_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> ListingPage:
    """Published listings, for anyone (no key needed): the public view."""
    after = decode_cursor(cursor, str)
    statuses = (
        [status.value]
        if status is not None and status is not ListingStatus.withdrawn
        else sorted(listings.PUBLISHED_STATUSES)
    )
    now = app.clock.now()

    async def read(session: AsyncSession) -> list[ListingOut]:
        found = await listings.list_listings(
            session, statuses=statuses, deal_id=deal_id, after_id=after, limit=limit
        )
        # The page's deals, auctions and bidders in three queries (not three per listing).
        ids = [listing.id for listing in found]
        deals_of = await deals.deals_by_id(session, (listing.deal_id for listing in found))
        auctions = await bidding.auctions_of(session, ids)
        numbers = await bidding.bidder_numbers_of(session, ids)
        return [
            _listing_view(
                listing,
                deals_of[listing.deal_id],
                auctions.get(listing.id),
                numbers[listing.id],
                now,
                None,
            )
            for listing in found
        ]

    items = await app.db.read(read)
    next_cursor = encode_cursor(items[-1].id) if len(items) == limit else None
    return ListingPage(items=items, next_cursor=next_cursor)


@router.get("/{listing_id}", response_model=ListingPrivateOut | ListingOut, responses=problems(404))
async def get_listing(
    listing_id: ListingIdPath, app: ServicesDep, principal: Viewer
) -> JSONResponse:
    """The listing: public for anyone; the seller, operators and auditors also see the reserve
    and the number of intents. Due notice ends and closes are done first."""
    await _settled(app, listing_id)
    now = app.clock.now()

    async def read(session: AsyncSession) -> ListingOut:
        return await _view(session, await listings.get_listing(session, listing_id), principal, now)

    return etagged(await app.db.read(read))


@router.put(
    "/{listing_id}", response_model=ListingPrivateOut, responses=problems(404, 409, 412, 422)
)
async def amend(
    listing_id: ListingIdPath,
    body: ListingTermsIn,
    request: Request,
    app: ServicesDep,
    principal: Actingparty,
) -> Response:
    """Change the terms during notice (`If-Match` honoured): the notice restarts; a changed
    deposit releases every registered deposit."""
    market = listings.ListingRules.of(app.settings)
    if_match = if_match_version(request)

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        listing = await listings.get_listing(session, listing_id)
        deal = await deals.get_deal(session, listing.deal_id)
        actor = _actor(principal, deal)
        now = app.clock.now()
        amended = await listings.amend(
            session,
            listing_id,
            _terms(body, deal.trade_method),
            market,
            deal_context(principal, actor, now),
            if_match=if_match,
        )
        return 200, await _view(session, amended, principal, now)

    return await execute(
        request, app, principal, action="listing.amend", target=listing_id, work=work, etag=True
    )


# ---------------------------------------------------------------------------------------------
# Intents


@router.post(
    "/{listing_id}/intents",
    status_code=201,
    response_model=IntentOut,
    responses=problems(404, 409, 422),
)
async def register_intent(
    listing_id: ListingIdPath,
    request: Request,
    app: ServicesDep,
    principal: Actingparty,
    body: IntentIn | None = None,
) -> Response:
    """Register an intent during notice (意向登记): the deposit is held from the party's available
    account (409 `insufficient_funds` when it cannot be). Registering again answers 200."""
    party_id = acting_party(principal, body.party_id if body else None, "party_id")

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        return await registered_intent(session, listing_id, party_id, app.clock)

    return await execute(
        request, app, principal, action="listing.register_intent", target=listing_id, work=work
    )


async def registered_intent(
    session: AsyncSession, listing_id: str, party_id: str, clock: Clock
) -> tuple[int, IntentOut]:
    """Register `party_id` on the listing (judged by the database's clock): 201 and the new
    intent, or 200 and the one it already has."""
    now = await judged_now(session, clock)
    intent, created = await listings.register_intent(session, listing_id, party_id, now)
    listing = await listings.get_listing(session, listing_id)
    return (201 if created else 200), IntentOut.of(intent, listing.currency)


@router.get("/{listing_id}/intents", response_model=list[IntentOut], responses=problems(404))
async def list_intents(
    listing_id: ListingIdPath,
    app: ServicesDep,
    principal: Annotated[
        Principal, Depends(require(Role.operator, Role.admin, Role.auditor, Role.member))
    ],
) -> list[IntentOut]:
    """Intents: all of them for the seller, operators and auditors; a member's own otherwise."""

    async def read(session: AsyncSession) -> list[IntentOut]:
        listing = await listings.get_listing(session, listing_id)
        deal = await deals.get_deal(session, listing.deal_id)
        found = await listings.intents_of(session, listing_id, status=None)
        if not _private_viewer(principal, deal):
            found = [i for i in found if i.party_id == principal.party_id]
        return [IntentOut.of(i, listing.currency) for i in found]

    return await app.db.read(read)


# ---------------------------------------------------------------------------------------------
# Bids


def bid_out(bid: Bid, auction: Auction, numbers: dict[str, int], viewer: str | None) -> BidOut:
    """A bid as `viewer` (a party, or nobody) may see it: a sealed amount only to its bidder
    until the auction has closed."""
    own = viewer is not None and bid.party_id == viewer
    sealed = Method(auction.method) in SEALED_METHODS
    shown = own or not sealed or auction.status == AuctionStatus.closed.value
    return BidOut(
        id=bid.id,
        seq=bid.seq,
        bidder=numbers[bid.party_id],
        amount=Money.of(bid.amount, auction.currency) if shown else None,
        auto=bid.auto,
        placed_at=bid.placed_at,
        own=own,
        max_amount=_money(bid.max_amount, auction.currency) if own else None,
    )


def _viewer_party(principal: Principal | None) -> str | None:
    return principal.party_id if principal is not None and principal.role is Role.member else None


@router.post(
    "/{listing_id}/bids",
    status_code=201,
    response_model=PlacedOut,
    responses=problems(403, 404, 409, 422),
)
async def place_bid(
    listing_id: ListingIdPath,
    body: BidIn,
    request: Request,
    app: ServicesDep,
    principal: Actingparty,
) -> Response:
    """Bid (registered bidders with a held deposit only). English: at least the current price
    plus the increment (the first at least the listing price), never over one's own lead, with
    an optional proxy maximum; sealed and tender: one bid per bidder, revisable until close;
    Dutch: accepts the clock's price and wins. After the close (judged by the database's clock)
    every bid is refused with 409 `auction_closed`. Concurrent bids on one auction share one
    transaction of this process (each accepted or refused on its own, in arrival order)."""
    party_id = acting_party(principal, body.party_id, "party_id")
    offer = bidding.Offer(
        party_id=party_id,
        currency=body.amount.currency,
        amount=body.amount.minor(),
        max_amount=body.max_amount.minor() if body.max_amount else None,
        proposal_sha256=body.proposal_sha256,
    )
    key = idempotency_key_of(request)
    fingerprint = await fingerprint_of(request) if key is not None else ""
    request.state.audited = True  # the coalescer writes this request's audit record
    assert app.bids is not None
    status, payload = await app.bids.submit(
        listings.BidSubmission(listing_id, offer),
        target=listing_id,
        group=listing_id,
        marks=frozenset(),
        principal=principal,
        request_id=actor_of(principal).request_id,
        idempotency_key=key,
        fingerprint=fingerprint,
    )
    media_type = "application/json" if status < 400 else PROBLEM_MEDIA_TYPE
    return Response(payload, status_code=status, media_type=media_type)


def bid_coalescer(db: Database, clock: Clock) -> Coalescer[listings.BidSubmission]:
    """Bids on one auction from one process share one transaction: one lock of the auction row
    for all of them, instead of one lock wait each among every waiter of every process."""

    bidders: dict[str, dict[str, int]] = {}  # each auction's bidders and their numbers

    async def apply(
        session: AsyncSession, batch: Sequence[Submission[listings.BidSubmission]], now: datetime
    ) -> list[Result]:
        listing_id = batch[0].item.listing_id
        assert all(s.item.listing_id == listing_id for s in batch), "one auction per batch"
        try:
            auction = await listings.lock_auction(session, listing_id)
        except DomainError as error:
            return [error for _ in batch]
        judged = await judged_now(session, clock)
        numbers = bidders.get(listing_id)
        if numbers is None:  # written once, when the auction opened: safe to keep
            numbers = await bidding.bidder_numbers(session, listing_id)
            if len(bidders) >= BIDDER_CACHE_AUCTIONS_MAX:
                bidders.clear()
            bidders[listing_id] = numbers
        return [await _one_bid(session, auction, numbers, s.item.offer, judged) for s in batch]

    return Coalescer(
        db,
        clock,
        action="bid.place",
        instance=lambda item: f"/v1/listings/{item.listing_id}/bids",
        apply=apply,
        batch_max=BID_BATCH_MAX,
        lanes=BID_LANES,
    )


async def _one_bid(
    session: AsyncSession,
    auction: Auction,
    numbers: dict[str, int],
    offer: bidding.Offer,
    now: datetime,
) -> Result:
    try:
        placed = await listings.bid_on_locked(session, auction, numbers, offer, now)
    except DomainError as error:
        return error
    view = auction_out(auction, auction.closed_at or now)
    if auction.method == Method.english.value and auction.leader_party_id:
        view.leading_bidder = numbers[auction.leader_party_id]
    return 201, PlacedOut(
        listing_id=auction.listing_id,
        accepted=[bid_out(b, auction, numbers, offer.party_id) for b in placed],
        auction=view,
    )


async def _bid_page(
    session: AsyncSession, listing_id: str, viewer: str | None, after: int, limit: int
) -> BidPage:
    listing = await listings.get_listing(session, listing_id)
    if listing.status == ListingStatus.withdrawn.value:  # its sealed bids stay sealed
        raise NotFound(f"no listing {listing_id}")
    auction = await bidding.get_auction(session, listing_id)
    if auction is None:
        raise NotFound(f"listing {listing_id} has no auction (it has not reached bidding)")
    numbers = await bidding.bidder_numbers(session, listing_id)
    found = await bidding.bids_of(session, listing_id, after_seq=after, limit=limit)
    items = [bid_out(b, auction, numbers, viewer) for b in found]
    return BidPage(
        listing_id=listing_id,
        method=auction.method,
        status=auction.status,
        closes_at=auction.closes_at,
        items=items,
        next_after=items[-1].seq if items else after,
    )


@router.get("/{listing_id}/bids", response_model=BidPage, responses=problems(404, 422))
async def list_bids(
    listing_id: ListingIdPath,
    app: ServicesDep,
    principal: Viewer,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=bidding.BIDS_PAGE_MAX)] = 100,
) -> BidPage:
    """The bids after sequence `after`, as the caller may see them: English and Dutch amounts
    are public; a sealed or tender amount only to its own bidder until the close. Bidders are
    shown by number, never by party."""
    await _settled(app, listing_id)
    viewer = _viewer_party(principal)
    return await app.db.read(lambda s: _bid_page(s, listing_id, viewer, after, limit))


@router.get(
    "/{listing_id}/bids/stream",
    responses={200: {"content": {"text/event-stream": {}}}, **problems(404, 422)},
    response_class=StreamingResponse,
)
async def stream_bids(
    listing_id: ListingIdPath,
    app: ServicesDep,
    principal: Viewer,
    after: Annotated[int, Query(ge=0)] = 0,
    wait_s: Annotated[float, Query(ge=0, le=300)] = 30,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-sent events: every new bid (`event: bid`, `id:` its sequence) as the caller may
    see it, then `event: close` with the auction when it closes; the stream ends at the close or
    after `wait_s` seconds (reconnect with `Last-Event-ID`)."""
    viewer = _viewer_party(principal)
    start = int(last_event_id) if last_event_id and last_event_id.isdigit() else after
    await _settled(app, listing_id)
    first = await app.db.read(lambda s: _bid_page(s, listing_id, viewer, start, 500))
    return StreamingResponse(
        _events(app, listing_id, viewer, first, wait_s), media_type="text/event-stream"
    )


async def _events(
    app: Services, listing_id: str, viewer: str | None, page: BidPage, wait_s: float
) -> AsyncIterator[bytes]:
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        for bid in page.items:
            yield f"id: {bid.seq}\nevent: bid\ndata: {bid.model_dump_json()}\n\n".encode()
        if page.status == AuctionStatus.closed.value:
            auction = await app.db.read(lambda s: bidding.get_auction(s, listing_id))
            assert auction is not None
            view = auction_out(auction, app.clock.now())
            yield f"event: close\ndata: {view.model_dump_json()}\n\n".encode()
            return
        if asyncio.get_running_loop().time() >= deadline:
            return
        await asyncio.sleep(STREAM_POLL_S)
        await _settled(app, listing_id)
        page = await app.db.read(
            functools.partial(
                _bid_page, listing_id=listing_id, viewer=viewer, after=page.next_after, limit=500
            )
        )


# ---------------------------------------------------------------------------------------------
# A tender's panel and scores


async def _locked_auction(session: AsyncSession, listing_id: str) -> Auction:
    auction = await bidding.get_auction(session, listing_id, lock=True)
    if auction is None:
        await listings.get_listing(session, listing_id)
        raise NotFound(f"listing {listing_id} has no tender (it has not reached bidding)")
    return auction


@router.post("/{listing_id}/panel", response_model=PanelOut, responses=problems(404, 409, 422))
async def appoint_panel(
    listing_id: ListingIdPath,
    body: PanelIn,
    request: Request,
    app: ServicesDep,
    principal: Operator,
) -> Response:
    """Appoint the tender's scoring panel (API key ids of the experts), before scoring starts."""

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        auction = await _locked_auction(session, listing_id)
        members = await bidding.appoint_panel(
            session, auction, body.key_ids, principal.key_id, app.clock.now()
        )
        return 200, PanelOut(listing_id=listing_id, key_ids=[m.key_id for m in members])

    return await execute(
        request, app, principal, action="tender.appoint_panel", target=listing_id, work=work
    )


@router.post("/{listing_id}/scores", response_model=ScoresOut, responses=problems(404, 409, 422))
async def record_scores(
    listing_id: ListingIdPath,
    body: ScoreIn,
    request: Request,
    app: ServicesDep,
    principal: Operator,
) -> Response:
    """A panelist scores one bid on every published criterion (0 to 100). When the panel has
    scored every bid, the tender is awarded to the highest weighted score."""

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        market = listings.ListingRules.of(app.settings)
        await listings.process_due_now(session, listing_id, app.clock, market)
        auction = await _locked_auction(session, listing_id)
        now = app.clock.now()
        closing = await bidding.record_scores(
            session, auction, principal.key_id, body.bid_id, body.points, now
        )
        if closing is not None:
            listing = await listings.get_listing(session, listing_id)
            await listings.conclude_auction(session, listing, closing.award, now)
        return 200, await _scores(session, auction)

    return await execute(
        request, app, principal, action="tender.score", target=listing_id, work=work
    )


def _four_places(value: Fraction) -> str:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return str(exact.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN))


async def _scores(session: AsyncSession, auction: Auction) -> ScoresOut:
    state = await bidding.scoring(session, auction)
    missing = state.missing()
    ranking = None
    if state.panel and not missing:
        numbers = await bidding.bidder_numbers(session, auction.listing_id)
        ranking = [
            RankedOut(
                bid_id=r.bid.key,
                bidder=numbers[r.bid.bidder],
                amount=Money.of(r.bid.amount, auction.currency),
                weighted_score=_four_places(r.weighted),
            )
            for r in state.ranking()
        ]
    return ScoresOut(
        listing_id=auction.listing_id, status=auction.status, missing=len(missing), ranking=ranking
    )


@router.get("/{listing_id}/scores", response_model=ScoresOut, responses=problems(404))
async def get_scores(
    listing_id: ListingIdPath,
    app: ServicesDep,
    _principal: Annotated[Principal, Depends(require(Role.operator, Role.admin, Role.auditor))],
) -> ScoresOut:
    """The tender's scoring: how many scores are missing and, once all are in, the ranking."""

    async def read(session: AsyncSession) -> ScoresOut:
        auction = await bidding.get_auction(session, listing_id)
        if auction is None:
            raise NotFound(f"listing {listing_id} has no tender")
        return await _scores(session, auction)

    return await app.db.read(read)
