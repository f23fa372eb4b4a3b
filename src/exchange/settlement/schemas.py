"""Settlement schemas: the contract and its schedule, bank confirmations, payments, the payout,
reward policies, the rights transfer."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator

from exchange.money import Currency, Money, MoneyIn
from exchange.schemas import Input, Ref, Sha256
from exchange.settlement.models import ContractType, EnhancementKind, PaymentShape

BANK_REFERENCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_:-]{0,63}$"


class InstalmentIn(Input):
    due_date: date
    amount: MoneyIn
    milestone: bool = Field(
        default=False,
        description="Once this instalment is in, escrow is released up to it (a partial "
        "settlement).",
    )


class ContractIn(Input):
    contract_type: ContractType
    payment_shape: PaymentShape = PaymentShape.lump_sum
    schedule: list[InstalmentIn] = Field(
        min_length=1, max_length=60, description="Due dates and amounts summing to the price."
    )
    royalty_rate: Annotated[Decimal, Field(ge=0, le=1, max_digits=8)] | None = Field(
        default=None, description="Royalty and use-first-pay-later licences: revenue share."
    )
    royalty_trigger_date: date | None = None
    registration_number: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="Technology-contract registration, when known."
    )
    settlement_currency: Currency | None = Field(
        default=None, description="The seller is paid in this currency (FX locked at signature)."
    )
    fx_rate_id: Ref | None = Field(default=None, description="Default: the latest recorded rate.")

    @model_validator(mode="after")
    def _royalty_terms(self) -> ContractIn:
        royalty = self.payment_shape in (PaymentShape.royalty, PaymentShape.use_first_pay_later)
        if royalty and (self.royalty_rate is None or self.royalty_trigger_date is None):
            raise ValueError("a royalty licence needs royalty_rate and royalty_trigger_date")
        if not royalty and (self.royalty_rate is not None or self.royalty_trigger_date):
            raise ValueError("royalty terms are for royalty and use-first-pay-later licences")
        if len({i.amount.currency for i in self.schedule}) > 1:
            raise ValueError("every instalment is in one currency")
        return self


class InstalmentOut(BaseModel):
    number: int
    due_date: date
    amount: Money
    milestone: bool


class ContractOut(BaseModel):
    id: str
    deal_id: str
    contract_type: str
    payment_shape: str
    seller_party_id: str
    buyer_party_id: str
    price: Money
    settlement_currency: str
    fx_rate_id: str | None
    royalty_rate: str | None
    royalty_trigger_date: date | None
    registration_number: str | None
    schedule: list[InstalmentOut]
    in_escrow: Money
    due_now: Money
    outstanding: Money
    signed_at: datetime


class BankConfirmationIn(Input):
    bank_reference: str = Field(pattern=BANK_REFERENCE_PATTERN)
    amount: MoneyIn


class BankConfirmationOut(BaseModel):
    bank_reference: str
    deal_id: str
    party_id: str
    amount: Money
    transfer_id: str
    at: datetime
    created: bool = Field(
        description="False: this reference was confirmed before; nothing changed."
    )


class PaymentIn(Input):
    amount: MoneyIn


class PaymentOut(BaseModel):
    transfer_id: str
    deal_id: str
    amount: Money
    outstanding: Money
    at: datetime


class SettlementPartOut(BaseModel):
    part: int
    total: Money
    fee: Money
    reward_pool: Money
    legs: list[dict[str, Any]]
    at: datetime


class SettlementOut(BaseModel):
    """What has been paid out of escrow: one part, or one per milestone; `complete` once the
    whole price is paid out."""

    deal_id: str
    complete: bool
    total: Money
    fee: Money
    reward_pool: Money
    legs: list[dict[str, Any]]
    fx_rate_id: str | None
    parts: list[SettlementPartOut]


class InventorIn(Input):
    party_id: Ref
    share_pct: Annotated[Decimal, Field(gt=0, le=100, decimal_places=2)]


class RewardPolicyIn(Input):
    pool_pct: Annotated[Decimal, Field(ge=0, le=100, decimal_places=2)] = Field(
        description="The inventors' share of net proceeds (national default at least 50)."
    )
    inventors: list[InventorIn] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _shares(self) -> RewardPolicyIn:
        if sum(i.share_pct for i in self.inventors) != 100:
            raise ValueError("the inventors' shares sum to 100")
        if len({i.party_id for i in self.inventors}) != len(self.inventors):
            raise ValueError("each inventor once")
        return self


class RewardPolicyOut(BaseModel):
    party_id: str
    pool_pct: str
    inventors: list[dict[str, str]]
    version: int


class DefaultIn(Input):
    reason: str = Field(min_length=1, max_length=1000)


class RightsTransferIn(Input):
    registration_number: str = Field(min_length=1, max_length=64)
    registered_on: date
    evidence_sha256: Sha256


class CreditEnhancementIn(Input):
    kind: EnhancementKind
    provider_party_id: Ref = Field(description="The guarantor, lender or insurer.")
    amount: MoneyIn = Field(description="Guaranteed, lent or insured.")
    premium: MoneyIn | None = Field(default=None, description="Insurance only.")


class CreditActionIn(Input):
    pledge_registration_number: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="Activating a pledge loan: its pledge's registration."
    )


class RepaymentIn(Input):
    amount: MoneyIn


class CreditEnhancementOut(BaseModel):
    id: str
    deal_id: str
    kind: str
    state: str
    version: int
    allowed_actions: list[str]
    provider_party_id: str
    amount: Money
    premium: Money | None
    repaid: Money | None = Field(description="A pledge loan's repayments so far.")
    created_at: datetime
    updated_at: datetime


class RoyaltyReportIn(Input):
    period_start: date
    period_end: date
    revenue: Money = Field(description="The licensee's revenue in the period (0 or more).")

    @model_validator(mode="after")
    def _period(self) -> RoyaltyReportIn:
        if self.period_end < self.period_start:
            raise ValueError("period_end is on or after period_start")
        if self.revenue.minor() < 0:
            raise ValueError("revenue is 0 or more")
        return self


class RoyaltyReportOut(BaseModel):
    deal_id: str
    period_start: date
    period_end: date
    revenue: Money
    royalty: Money
    legs: list[dict[str, Any]]
    at: datetime
