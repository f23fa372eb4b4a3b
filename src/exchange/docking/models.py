"""Docking tables: enterprises' demands, the match sets announced for a demand or a supply, and
the interest a demander expresses in a match."""

from __future__ import annotations

from datetime import date, datetime

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


class Demand(Base):
    __tablename__ = "demand"
    __table_args__ = (
        CheckConstraint("min_trl IS NULL OR min_trl BETWEEN 1 AND 9", name="trl_range"),
        CheckConstraint(
            "budget_min IS NULL OR budget_max IS NULL OR budget_min <= budget_max",
            name="budget_order",
        ),
    )

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    party_id: Mapped[str] = mapped_column(ForeignKey("party.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    ipc: Mapped[str] = mapped_column(Text)  # JSON list of canonical IPC symbols
    keywords: Mapped[str] = mapped_column(Text)  # JSON list
    budget_min: Mapped[int | None] = mapped_column(BigInteger)
    budget_max: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    region: Mapped[str | None] = mapped_column(String(16))
    min_trl: Mapped[int | None] = mapped_column(Integer)
    wanted_rights: Mapped[str] = mapped_column(Text)  # JSON list
    domestic_only: Mapped[bool] = mapped_column(Boolean)
    deadline_date: Mapped[date | None] = mapped_column(Date)
    visibility: Mapped[str] = mapped_column(String(16))  # public | private
    state: Mapped[str] = mapped_column(String(16), index=True)  # open | withdrawn
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MatchSet(Base):
    """The top matches computed in the background for one version of a demand or a supply;
    written once per version (the unique key lets exactly one process announce it)."""

    __tablename__ = "docking_match_set"
    __table_args__ = (
        UniqueConstraint("subject_id", "subject_version", name="uq_docking_match_set_subject"),
    )

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(String(100))  # "demand:<id>" | "supply:<deal id>"
    subject_version: Mapped[int] = mapped_column(Integer)
    party_id: Mapped[str] = mapped_column(String(80), index=True)  # whose subject it is
    matches: Mapped[str] = mapped_column(Text)  # JSON: [{document_id, score, components, ...}]
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Interest(Base):
    """A demander's interest in a supply matched to its demand; the supplier is told."""

    __tablename__ = "docking_interest"
    __table_args__ = (UniqueConstraint("demand_id", "deal_id", name="uq_docking_interest"),)

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    demand_id: Mapped[str] = mapped_column(ForeignKey("demand.id"), index=True)
    deal_id: Mapped[str] = mapped_column(ForeignKey("deal.id"), index=True)
    demander_party_id: Mapped[str] = mapped_column(ForeignKey("party.id"))
    supplier_party_id: Mapped[str] = mapped_column(ForeignKey("party.id"))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
