"""Listing and bidding schemas: the listing's terms in, the public listing out (no reserve
before close, no other bidder's sealed amount, no party ids of bidders), intents and bids."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from exchange.deals.schemas import TradeMethod
from exchange.listings.models import Intent
from exchange.money import Money, MoneyIn
from exchange.parties.models import PartyKind
from exchange.schemas import Input, Ref, Sha256

DURATION_S_MAX = 30 * 24 * 3600


class IncrementTierIn(Input):
    from_price: Money = Field(description="The tier applies from this current price up.")
    increment: MoneyIn


class EligibilityIn(Input):
    party_kinds: list[PartyKind] | None = Field(
        default=None, min_length=1, description="Admitted kinds of party; omitted: any."
    )
    regions: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, min_length=1, max_length=100, description="Admitted regions; omitted: any."
    )
    domestic_only: bool = False


class CriterionIn(Input):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    weight_pct: Annotated[str, Field(pattern=r"^\d{1,3}(\.\d{1,2})?$")] = Field(
        description="Percent with up to two decimals; the weights sum to 100."
    )

    @property
    def weight_bp(self) -> int:
        whole, _, cents = self.weight_pct.partition(".")
        return int(whole) * 100 + int((cents + "00")[:2])


class AuctionTermsIn(Input):
    duration_s: int = Field(default=3600, ge=60, le=DURATION_S_MAX)
    soft_close_s: int = Field(
        default=300, ge=0, le=3600, description="English: a bid in the last N s extends by N s."
    )
    hard_close_after_s: int = Field(
        default=1800, ge=0, le=DURATION_S_MAX, description="English: extensions stop here."
    )
    dutch_step: MoneyIn | None = None
    dutch_interval_s: int | None = Field(default=None, ge=1, le=24 * 3600)
    criteria: list[CriterionIn] = Field(default_factory=list, max_length=20)


class ListingTermsIn(Input):
    """A listing's terms (the body of an amendment)."""

    trade_method: TradeMethod | None = Field(default=None, description="Default: the deal's.")
    listing_price: MoneyIn = Field(description="The starting price of an auction.")
    reserve: MoneyIn | None = Field(
        default=None, description="Hidden until close; a Dutch auction's floor."
    )
    deposit: MoneyIn
    increments: list[IncrementTierIn] = Field(default_factory=list, max_length=20)
    eligibility: EligibilityIn = Field(default_factory=EligibilityIn)
    notice_working_days: int = Field(default=20, ge=1, le=250)
    extension_working_days: int = Field(default=5, ge=1, le=250)
    extensions_max: int = Field(default=0, ge=0, le=10)
    auction: AuctionTermsIn = Field(default_factory=AuctionTermsIn)
    below_appraisal_reason: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="An operator's approval of a relisting below the floor, with its reason.",
    )

    @model_validator(mode="after")
    def _one_currency(self) -> ListingTermsIn:
        currency = self.listing_price.currency
        amounts = [self.deposit, self.reserve, self.auction.dutch_step] + [
            m for t in self.increments for m in (t.from_price, t.increment)
        ]
        if any(m is not None and m.currency != currency for m in amounts):
            raise ValueError("every amount of a listing is in the listing price's currency")
        starts = [t.from_price.minor() for t in self.increments]
        if self.increments and (starts[0] != 0 or starts != sorted(set(starts))):
            raise ValueError("increment tiers start from 0 and rise strictly")
        return self


class ListingIn(ListingTermsIn):
    deal_id: Ref


class EligibilityOut(BaseModel):
    party_kinds: list[str] | None
    regions: list[str] | None
    domestic_only: bool


class CriterionOut(BaseModel):
    name: str
    weight_pct: str


class AuctionTermsOut(BaseModel):
    """The stored terms as they are (an input's limits may have changed since)."""

    duration_s: int
    soft_close_s: int
    hard_close_after_s: int
    dutch_step: Money | None
    dutch_interval_s: int | None
    criteria: list[CriterionOut]


class IncrementTierOut(BaseModel):
    from_price: Money
    increment: Money


class AuctionOut(BaseModel):
    """The public state of the auction; `reserve_met` and the winner only after close."""

    method: str
    status: str
    opens_at: datetime
    closes_at: datetime
    hard_close_at: datetime
    bids: int
    current_price: Money | None = Field(
        description="English: the standing bid; Dutch: the clock's price now; sealed: null."
    )
    leading_bidder: int | None = Field(description="English: the leader's public number.")
    reserve_met: bool | None = None
    winning_bid_id: str | None = None


class ListingOut(BaseModel):
    id: str
    deal_id: str
    round: int
    status: str
    version: int
    asset_id: str
    rights_offered: str
    territory: list[str]
    trade_method: str
    listing_price: Money
    deposit: Money
    increments: list[IncrementTierOut]
    eligibility: EligibilityOut
    notice_working_days: int
    published_at: datetime
    notice_ends_at: datetime
    extensions_used: int
    extensions_max: int
    auction_terms: AuctionTermsOut
    auction: AuctionOut | None
    award_price: Money | None = None
    ended_at: datetime | None = None


class ListingPrivateOut(ListingOut):
    """What the seller, operators and auditors see besides the public view."""

    reserve: Money | None
    intents: int
    below_appraisal_approval: dict[str, object] | None


class ListingPage(BaseModel):
    items: list[ListingOut]
    next_cursor: str | None


class IntentIn(Input):
    party_id: Ref | None = Field(
        default=None, description="Required for operators; a member registers its own party."
    )


class IntentOut(BaseModel):
    id: str
    listing_id: str
    party_id: str
    deposit: Money
    deposit_hold_id: str
    status: str
    registered_at: datetime
    resolved_at: datetime | None

    @classmethod
    def of(cls, intent: Intent, currency: str) -> IntentOut:
        return cls(
            id=intent.id,
            listing_id=intent.listing_id,
            party_id=intent.party_id,
            deposit=Money.of(intent.deposit, currency),
            deposit_hold_id=intent.deposit_hold_id,
            status=intent.status,
            registered_at=intent.registered_at,
            resolved_at=intent.resolved_at,
        )


class BidIn(Input):
    party_id: Ref | None = Field(
        default=None, description="Required for operators; a member bids for its own party."
    )
    amount: MoneyIn = Field(description="English: the bid; Dutch: at least the clock's price.")
    max_amount: MoneyIn | None = Field(
        default=None, description="English only: a proxy maximum, bid up by the increment."
    )
    proposal_sha256: Sha256 | None = Field(
        default=None, description="Tender only: the technical proposal's hash (in /v1/evidence)."
    )

    @model_validator(mode="after")
    def _same_currency(self) -> BidIn:
        if self.max_amount is not None and self.max_amount.currency != self.amount.currency:
            raise ValueError("max_amount is in the amount's currency")
        return self


class BidOut(BaseModel):
    """A bid as its viewer may see it: the amount is null for another bidder's sealed bid."""

    id: str
    seq: int
    bidder: int = Field(description="The bidder's public number in this auction.")
    amount: Money | None
    auto: bool
    placed_at: datetime
    own: bool = False
    max_amount: Money | None = None  # only the bidder's own proxy maximum


class BidPage(BaseModel):
    listing_id: str
    method: str
    status: str
    closes_at: datetime
    items: list[BidOut]
    next_after: int = Field(description="Pass as `after` to read on.")


class PlacedOut(BaseModel):
    listing_id: str
    accepted: list[BidOut]
    auction: AuctionOut


class PanelIn(Input):
    key_ids: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(
        min_length=1, max_length=25
    )


class PanelOut(BaseModel):
    listing_id: str
    key_ids: list[str]


class ScoreIn(Input):
    bid_id: Ref
    points: dict[
        Annotated[str, Field(min_length=1, max_length=64)], Annotated[int, Field(ge=0, le=100)]
    ] = Field(min_length=1, max_length=20)


class RankedOut(BaseModel):
    bid_id: str
    bidder: int
    amount: Money
    weighted_score: str = Field(
        description="the sum of weight times the panel's mean points, 4 decimals."
    )


class ScoresOut(BaseModel):
    listing_id: str
    status: str
    missing: int
    ranking: list[RankedOut] | None = Field(description="Once every score is in.")
