"""Listing tables: the listing (the public offer of a priced deal, with its notice period and
bidding terms) and the intents registered during notice, each backed by a deposit hold."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db import Base, UTCDateTime


class ListingStatus(StrEnum):
    notice = "notice"  # public notice: intents may be registered
    bidding = "bidding"
    awarded = "awarded"
    unsold = "unsold"
    withdrawn = "withdrawn"


class IntentStatus(StrEnum):
    held = "held"  # the deposit is a pending transfer
    applied = "applied"  # the winner's deposit, posted into the deal's escrow
    released = "released"  # voided: not qualified, not the winner, or withdrawn


class Listing(Base):
    __tablename__ = "listing"
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("listing_price > 0", name="price_positive"),
        CheckConstraint("reserve_price IS NULL OR reserve_price > 0", name="reserve_positive"),
        CheckConstraint("deposit > 0", name="deposit_positive"),
        CheckConstraint("notice_working_days >= 1", name="notice_positive"),
        UniqueConstraint("deal_id", "round", name="uq_listing_deal_round"),
    )

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deal.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)  # 1 for the first listing, 2 for a relisting...
    status: Mapped[str] = mapped_column(String(16), index=True)
    version: Mapped[int] = mapped_column(Integer)
    trade_method: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    listing_price: Mapped[int] = mapped_column(BigInteger)
    reserve_price: Mapped[int | None] = mapped_column(BigInteger)  # never shown before close
    deposit: Mapped[int] = mapped_column(BigInteger)
    increments: Mapped[str] = mapped_column(Text)  # JSON [[from_price, increment], ...]
    eligibility: Mapped[str] = mapped_column(Text)  # JSON {party_kinds, regions, domestic_only}
    notice_working_days: Mapped[int] = mapped_column(Integer)
    extension_working_days: Mapped[int] = mapped_column(Integer)
    extensions_max: Mapped[int] = mapped_column(Integer)
    extensions_used: Mapped[int] = mapped_column(Integer)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    notice_ends_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    auction: Mapped[str] = mapped_column(Text)  # JSON of the method's terms (durations, steps)
    below_appraisal_approval: Mapped[str | None] = mapped_column(Text)  # JSON, when needed
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Intent(Base):
    """An eligible party's registration during notice (意向登记), with its deposit hold."""

    __tablename__ = "listing_intent"
    __table_args__ = (
        UniqueConstraint("listing_id", "party_id", name="uq_listing_intent_party"),
        CheckConstraint("deposit > 0", name="deposit_positive"),
    )

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    listing_id: Mapped[str] = mapped_column(ForeignKey("listing.id"), index=True)
    party_id: Mapped[str] = mapped_column(ForeignKey("party.id"), index=True)
    deposit: Mapped[int] = mapped_column(BigInteger)
    deposit_hold_id: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
