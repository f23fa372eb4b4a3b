"""Settlement tables: the technology contract and its payment schedule, the records of bank
confirmations and of the settlement itself (each names its ledger transfers; no balance is kept
here: payments into escrow are ledger transfers only), institutions' reward policies, and credit
enhancements."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db import Base, UTCDateTime

_SERIAL = BigInteger().with_variant(Integer, "sqlite")


class ContractType(StrEnum):
    development = "development"
    transfer = "transfer"
    licence = "licence"
    consulting = "consulting"
    service = "service"


class PaymentShape(StrEnum):
    lump_sum = "lump_sum"
    instalments = "instalments"
    royalty = "royalty"  # payments follow the licensee's reported revenue times the rate
    use_first_pay_later = "use_first_pay_later"  # 先使用后付费: royalties from a trigger date


class Contract(Base):
    __tablename__ = "contract"
    __table_args__ = (
        CheckConstraint("price > 0", name="price_positive"),
        UniqueConstraint("deal_id", name="uq_contract_deal"),
    )

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deal.id"))
    contract_type: Mapped[str] = mapped_column(String(16))
    payment_shape: Mapped[str] = mapped_column(String(24))
    seller_party_id: Mapped[str] = mapped_column(ForeignKey("party.id"))
    buyer_party_id: Mapped[str] = mapped_column(ForeignKey("party.id"))
    price: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    settlement_currency: Mapped[str] = mapped_column(String(3))  # what the seller is paid in
    fx_rate_id: Mapped[str | None] = mapped_column(String(80))  # locked at signature
    royalty_rate: Mapped[str | None] = mapped_column(String(16))  # exact decimal text
    royalty_trigger_date: Mapped[date | None] = mapped_column(Date)
    registration_number: Mapped[str | None] = mapped_column(String(64))
    signed_by_key_id: Mapped[str | None] = mapped_column(String(40))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Instalment(Base):
    """One due payment of the schedule (written at signature, never changed)."""

    __tablename__ = "contract_instalment"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        UniqueConstraint("contract_id", "number", name="uq_contract_instalment_number"),
    )

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    contract_id: Mapped[str] = mapped_column(ForeignKey("contract.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[int] = mapped_column(BigInteger)
    milestone: Mapped[bool] = mapped_column(Boolean)  # once in, the paid part is released


class BankConfirmation(Base):
    """A bank's confirmation that buyer funds arrived, credited from external clearing; the
    bank's reference is unique, so a second confirmation changes nothing."""

    __tablename__ = "bank_confirmation"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    bank_reference: Mapped[str] = mapped_column(String(64), primary_key=True)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deal.id"), index=True)
    party_id: Mapped[str] = mapped_column(ForeignKey("party.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    transfer_id: Mapped[str] = mapped_column(String(80))
    confirmed_by_key_id: Mapped[str | None] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Settlement(Base):
    """A payout of a deal's escrow, written with its linked batch: one per deal, or one per
    milestone where the schedule says so (the last completes the price)."""

    __tablename__ = "settlement"

    deal_id: Mapped[str] = mapped_column(ForeignKey("deal.id"), primary_key=True)
    part: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    total: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[int] = mapped_column(BigInteger)
    reward_pool: Mapped[int] = mapped_column(BigInteger)
    legs: Mapped[str] = mapped_column(Text)  # JSON [{account_id, amount, role, transfer_id}]
    fx_rate_id: Mapped[str | None] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class RewardPolicy(Base):
    """An institution's inventor reward policy: its share of net proceeds and the inventors'
    shares of it (basis points)."""

    __tablename__ = "reward_policy"

    party_id: Mapped[str] = mapped_column(ForeignKey("party.id"), primary_key=True)
    pool_bp: Mapped[int] = mapped_column(Integer)
    inventors: Mapped[str] = mapped_column(Text)  # JSON [[party_id, share_bp], ...]
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EnhancementKind(StrEnum):
    guarantee = "guarantee"
    pledge_loan = "pledge_loan"
    insurance = "insurance"


class EnhancementState(StrEnum):
    applied = "applied"
    approved = "approved"
    active = "active"
    released = "released"
    claimed = "claimed"


class CreditEnhancement(Base):
    """A guarantee, an IP-pledge loan or an insurance attached to a deal (增信)."""

    __tablename__ = "credit_enhancement"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("premium IS NULL OR premium > 0", name="premium_positive"),
    )

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deal.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    provider_party_id: Mapped[str] = mapped_column(ForeignKey("party.id"))
    amount: Mapped[int] = mapped_column(BigInteger)  # guaranteed / lent / insured
    premium: Mapped[int | None] = mapped_column(BigInteger)  # insurance
    currency: Mapped[str] = mapped_column(String(3))
    pledge_registration_number: Mapped[str | None] = mapped_column(String(64))  # a loan's
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RoyaltyReport(Base):
    """A licensee's reported revenue for a period of a royalty or use-first-pay-later licence,
    the royalty it owed (revenue times the contract's rate) and the transfers that paid it."""

    __tablename__ = "royalty_report"
    __table_args__ = (
        UniqueConstraint("deal_id", "period_end_date", name="uq_royalty_report_period"),
        CheckConstraint("revenue >= 0", name="revenue_non_negative"),
        CheckConstraint("royalty >= 0", name="royalty_non_negative"),
        CheckConstraint("period_start_date <= period_end_date", name="period_ordered"),
    )

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deal.id"), index=True)
    period_start_date: Mapped[date] = mapped_column(Date)
    period_end_date: Mapped[date] = mapped_column(Date)
    revenue: Mapped[int] = mapped_column(BigInteger)
    royalty: Mapped[int] = mapped_column(BigInteger)
    legs: Mapped[str] = mapped_column(Text)  # JSON, as a settlement's
    reported_by_key_id: Mapped[str | None] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
