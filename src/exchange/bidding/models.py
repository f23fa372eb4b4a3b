"""Bidding tables: one auction row per listing in bidding (the row every bid locks), its
bidders, its bids (written once each) and a tender's panel and scores."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db import Base, UTCDateTime


class Method(StrEnum):
    english = "english"
    sealed_first_price = "sealed_first_price"
    sealed_second_price = "sealed_second_price"
    dutch = "dutch"
    tender = "tender"


SEALED_METHODS = frozenset({Method.sealed_first_price, Method.sealed_second_price, Method.tender})


class AuctionStatus(StrEnum):
    open = "open"
    scoring = "scoring"  # a tender after its deadline, until the panel has scored every bid
    closed = "closed"


class Auction(Base):
    __tablename__ = "auction"
    __table_args__ = (
        CheckConstraint("start_price > 0", name="start_positive"),
        CheckConstraint("reserve_price > 0", name="reserve_positive"),
        CheckConstraint("closes_at <= hard_close_at", name="close_before_hard_close"),
        CheckConstraint("last_seq >= 0", name="seq_non_negative"),
    )

    listing_id: Mapped[str] = mapped_column(ForeignKey("listing.id"), primary_key=True)
    method: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    start_price: Mapped[int] = mapped_column(BigInteger)
    reserve_price: Mapped[int] = mapped_column(BigInteger)
    increments: Mapped[str] = mapped_column(Text)  # JSON [[from_price, increment], ...]
    soft_close_s: Mapped[int] = mapped_column(Integer)
    dutch_step: Mapped[int | None] = mapped_column(BigInteger)
    dutch_interval_s: Mapped[int | None] = mapped_column(Integer)
    criteria: Mapped[str | None] = mapped_column(Text)  # a tender's JSON [[name, weight_bp]]
    opens_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    hard_close_at: Mapped[datetime] = mapped_column(UTCDateTime)
    price: Mapped[int | None] = mapped_column(BigInteger)
    leader_party_id: Mapped[str | None] = mapped_column(String(80))
    leader_max: Mapped[int | None] = mapped_column(BigInteger)  # the leader's proxy maximum
    leader_bid_id: Mapped[str | None] = mapped_column(String(80))
    last_seq: Mapped[int] = mapped_column(Integer)
    winner_bid_id: Mapped[str | None] = mapped_column(String(80))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuctionBidder(Base):
    """A qualified party admitted to bid, under a public number (bidder 1, 2...)."""

    __tablename__ = "auction_bidder"
    __table_args__ = (UniqueConstraint("listing_id", "number", name="uq_auction_bidder_number"),)

    listing_id: Mapped[str] = mapped_column(ForeignKey("auction.listing_id"), primary_key=True)
    party_id: Mapped[str] = mapped_column(ForeignKey("party.id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer)


class Bid(Base):
    """One accepted bid. A sealed bid's revision is a new row; the latest per bidder counts."""

    __tablename__ = "bid"
    __table_args__ = (
        UniqueConstraint("listing_id", "seq", name="uq_bid_listing_seq"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("max_amount IS NULL OR max_amount >= amount", name="max_covers_amount"),
    )

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    listing_id: Mapped[str] = mapped_column(ForeignKey("auction.listing_id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    party_id: Mapped[str] = mapped_column(ForeignKey("party.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    max_amount: Mapped[int | None] = mapped_column(BigInteger)  # a proxy's maximum: private
    auto: Mapped[bool] = mapped_column(Boolean)
    proposal_sha256: Mapped[str | None] = mapped_column(String(64))  # a tender's proposal
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Panelist(Base):
    """A member of a tender's scoring panel, appointed by an operator: an API key."""

    __tablename__ = "tender_panelist"

    listing_id: Mapped[str] = mapped_column(ForeignKey("auction.listing_id"), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    appointed_by_key_id: Mapped[str] = mapped_column(String(40))
    appointed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Score(Base):
    """A panelist's points for one criterion of one bid (the latest per triple counts)."""

    __tablename__ = "tender_score"
    __table_args__ = (CheckConstraint("points BETWEEN 0 AND 100", name="points_in_range"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    listing_id: Mapped[str] = mapped_column(ForeignKey("auction.listing_id"), index=True)
    key_id: Mapped[str] = mapped_column(String(40))
    bid_id: Mapped[str] = mapped_column(ForeignKey("bid.id"))
    criterion: Mapped[str] = mapped_column(String(64))
    points: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
