"""Deal tables: the deal, its transition history, rights checks, consents, certificates and
valuations. Only the deal row changes; every other row here is written once."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
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


class Deal(Base):
    __tablename__ = "deal"
    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("listing_price IS NULL OR listing_price > 0", name="price_positive"),
        CheckConstraint("reserve_price IS NULL OR reserve_price > 0", name="reserve_positive"),
        CheckConstraint("award_price IS NULL OR award_price > 0", name="award_positive"),
    )

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("asset.id"), index=True)
    seller_party_id: Mapped[str] = mapped_column(ForeignKey("party.id"), index=True)
    rights_offered: Mapped[str] = mapped_column(String(32))
    territory: Mapped[str] = mapped_column(Text)  # JSON list of ISO 3166 codes, or ["*"]
    term_start_date: Mapped[date | None] = mapped_column(Date)
    term_end_date: Mapped[date | None] = mapped_column(Date)
    trade_method: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(32), index=True)
    version: Mapped[int] = mapped_column(Integer)
    valuation_id: Mapped[str | None] = mapped_column(String(80))
    appraised_value: Mapped[int | None] = mapped_column(BigInteger)
    listing_price: Mapped[int | None] = mapped_column(BigInteger)
    reserve_price: Mapped[int | None] = mapped_column(BigInteger)
    certificate_id: Mapped[str | None] = mapped_column(String(80))
    listing_id: Mapped[str | None] = mapped_column(String(80))  # the current listing
    buyer_party_id: Mapped[str | None] = mapped_column(ForeignKey("party.id"))
    award_price: Mapped[int | None] = mapped_column(BigInteger)
    winning_bid_id: Mapped[str | None] = mapped_column(String(80))  # None: negotiated award
    awarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DealTransition(Base):
    """The deal's history: every state change, who made it, from which request."""

    __tablename__ = "deal_transition"

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deal.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    actor_key_id: Mapped[str | None] = mapped_column(String(40))
    request_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class RightsCheck(Base):
    """One reviewer's finding on one check of the rights-confirmation checklist (确权)."""

    __tablename__ = "rights_check"

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deal.id"), index=True)
    check: Mapped[str] = mapped_column(String(40))
    result: Mapped[str] = mapped_column(String(8))
    note: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)  # JSON list of SHA-256 hex digests
    asset_version: Mapped[int] = mapped_column(Integer)
    reviewer_key_id: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Consent(Base):
    """A co-owner's or a pledgee's consent to this deal, with its evidence."""

    __tablename__ = "deal_consent"
    __table_args__ = (UniqueConstraint("deal_id", "party_id", "role", name="uq_deal_consent"),)

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deal.id"), index=True)
    party_id: Mapped[str] = mapped_column(ForeignKey("party.id"))
    role: Mapped[str] = mapped_column(String(16))  # co_owner | pledgee
    evidence_sha256: Mapped[str] = mapped_column(ForeignKey("evidence.sha256"))
    recorded_by_key_id: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class RightsCertificate(Base):
    __tablename__ = "rights_certificate"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deal.id"), index=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("asset.id"))
    asset_version: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)  # canonical JSON
    sha256: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Valuation(Base):
    """A valuation with every input and the method version, so it recomputes to the same value."""

    __tablename__ = "valuation"
    __table_args__ = (CheckConstraint("value >= 0", name="value_non_negative"),)

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deal.id"), index=True)
    method: Mapped[str] = mapped_column(String(16))
    method_version: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    value: Mapped[int] = mapped_column(BigInteger)
    inputs: Mapped[str] = mapped_column(Text)
    steps: Mapped[str] = mapped_column(Text)
    recorded_by_key_id: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
