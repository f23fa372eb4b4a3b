"""Deal schemas: the offer, the actions' bodies, the checklist, valuations and the history."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from exchange.assets.schemas import Territory, check_territory
from exchange.deals.rights import LICENCES, Check, RightsOffered
from exchange.money import Currency, Money, MoneyIn
from exchange.pricing.rules import CostInputs, IncomeInputs, MarketInputs
from exchange.schemas import ClientId, Input, Ref, Sha256


class TradeMethod(StrEnum):
    negotiated = "negotiated"
    fixed_price = "fixed_price"
    english = "english"
    sealed_first_price = "sealed_first_price"
    sealed_second_price = "sealed_second_price"
    dutch = "dutch"
    tender = "tender"


class DealIn(Input):
    id: ClientId | None = None
    asset_id: Ref
    seller_party_id: Ref | None = Field(
        default=None, description="Required for operators; a member sells for its own party"
    )
    rights_offered: RightsOffered
    territory: Annotated[Territory, AfterValidator(check_territory)] = Field(
        default_factory=lambda: ["CN"]
    )
    term_start_date: date | None = None
    term_end_date: date | None = None
    trade_method: TradeMethod
    currency: Currency = "CNY"

    @model_validator(mode="after")
    def _term(self) -> DealIn:
        if self.rights_offered in LICENCES and self.term_end_date is None:
            raise ValueError("a licence needs term_end_date")
        if self.rights_offered not in LICENCES and (self.term_start_date or self.term_end_date):
            raise ValueError("a term is for licences only")
        if (
            self.term_start_date
            and self.term_end_date
            and (self.term_end_date <= self.term_start_date)
        ):
            raise ValueError("term_end_date must be after term_start_date")
        return self


class DealOut(BaseModel):
    id: str
    asset_id: str
    seller_party_id: str
    rights_offered: str
    territory: list[str]
    term_start_date: date | None
    term_end_date: date | None
    trade_method: str
    currency: str
    state: str
    version: int
    allowed_actions: list[str]
    valuation_id: str | None
    appraised_value: Money | None
    listing_price: Money | None
    reserve: Money | None
    certificate_id: str | None
    listing_id: str | None = None
    buyer_party_id: str | None = None
    award_price: Money | None = None
    winning_bid_id: str | None = None
    awarded_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class DealPage(BaseModel):
    items: list[DealOut]
    next_cursor: str | None


class ReasonIn(Input):
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class OptionalReasonIn(Input):
    reason: Annotated[str, Field(min_length=1, max_length=2000)] | None = None


class PriceIn(Input):
    valuation_id: Ref
    listing_price: MoneyIn
    reserve: MoneyIn | None = None

    @model_validator(mode="after")
    def _one_currency(self) -> PriceIn:
        if self.reserve is not None and self.reserve.currency != self.listing_price.currency:
            raise ValueError("reserve and listing_price must be in one currency")
        return self


class RightsCheckIn(Input):
    check: Check
    result: Literal["pass", "fail"]
    evidence: Annotated[list[Sha256], Field(max_length=50, default_factory=list)]
    note: Annotated[str, Field(max_length=2000)] | None = None

    @model_validator(mode="after")
    def _evidence_for_a_pass(self) -> RightsCheckIn:
        if self.result == "pass" and not self.evidence:
            raise ValueError("a passed check needs the SHA-256 of its evidence")
        return self


class RightsCheckOut(BaseModel):
    check: str
    result: str | None = Field(description="pass | fail as recorded, or null if not recorded")
    supported_by_records: bool
    reason: str | None = Field(description="why the records do not support the check")
    stale: bool
    passed: bool
    reviewer_key_id: str | None
    at: datetime | None
    evidence: list[str]
    note: str | None


class ChecklistOut(BaseModel):
    deal_id: str
    confirmable: bool
    checks: list[RightsCheckOut]


class ConsentIn(Input):
    party_id: Ref
    role: Literal["co_owner", "pledgee"]
    evidence_sha256: Sha256


class ConsentOut(BaseModel):
    deal_id: str
    party_id: str
    role: str
    evidence_sha256: str
    at: datetime


class CostValuationIn(Input):
    method: Literal["cost"]
    inputs: CostInputs


class IncomeValuationIn(Input):
    method: Literal["income"]
    inputs: IncomeInputs


class MarketValuationIn(Input):
    method: Literal["market"]
    inputs: MarketInputs


ValuationIn = Annotated[
    CostValuationIn | IncomeValuationIn | MarketValuationIn, Field(discriminator="method")
]


class ValuationOut(BaseModel):
    id: str
    deal_id: str
    method: str
    method_version: str
    value: Money
    recomputed_value: Money = Field(description="what the stored inputs give now; equals value")
    inputs: dict[str, Any]
    steps: list[dict[str, Any]]
    at: datetime


class ValuationPage(BaseModel):
    items: list[ValuationOut]


class TransitionOut(BaseModel):
    action: str
    from_state: str | None
    to_state: str
    version: int
    actor_key_id: str | None
    request_id: str | None
    detail: dict[str, Any] | None
    at: datetime


class HistoryOut(BaseModel):
    deal_id: str
    transitions: list[TransitionOut]


class CertificateOut(BaseModel):
    id: str
    deal_id: str
    asset_id: str
    asset_version: int
    sha256: str
    content: dict[str, Any]
    issued_at: datetime


class TransitionRuleOut(BaseModel):
    from_state: str
    action: str
    to_state: str
    actors: list[str]
    guard: str


class StateMachineOut(BaseModel):
    states: list[str]
    actions: list[str]
    transitions: list[TransitionRuleOut]
