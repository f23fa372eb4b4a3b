"""Parties: institutions, enterprises, individuals, service and financial institutions, markets."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db import Base, UTCDateTime


class PartyKind(StrEnum):
    university = "university"
    research_institute = "research_institute"
    hospital = "hospital"
    enterprise = "enterprise"
    individual = "individual"
    transfer_institution = "transfer_institution"
    bank = "bank"
    guarantor = "guarantor"
    insurer = "insurer"
    partner_market = "partner_market"
    service_station = "service_station"


class Party(Base):
    __tablename__ = "party"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    # A Chinese organisation's unified social credit code; a foreign party's country and number.
    uscc: Mapped[str | None] = mapped_column(String(18), unique=True)
    country: Mapped[str] = mapped_column(String(2), default="CN", server_default="CN")
    registration_number: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
