"""Asset tables: the asset, its owners with shares (basis points), and its encumbrances."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db import Base, UTCDateTime


class AssetKind(StrEnum):
    invention_patent = "invention_patent"
    utility_model = "utility_model"
    design_patent = "design_patent"
    software_copyright = "software_copyright"
    ic_layout = "ic_layout"
    know_how = "know_how"
    plant_variety = "plant_variety"


PATENT_KINDS = frozenset(
    {AssetKind.invention_patent, AssetKind.utility_model, AssetKind.design_patent}
)


class LegalStatus(StrEnum):
    pending = "pending"  # applied for, not yet granted: the application right can be traded
    granted = "granted"
    registered = "registered"  # software copyright, IC layout, plant variety
    unregistered = "unregistered"  # know-how: protected as a secret
    lapsed = "lapsed"
    invalidated = "invalidated"
    expired = "expired"
    withdrawn = "withdrawn"


VALID_STATUSES = frozenset(
    {LegalStatus.pending, LegalStatus.granted, LegalStatus.registered, LegalStatus.unregistered}
)


class ExportControl(StrEnum):
    free = "free"
    restricted = "restricted"
    prohibited = "prohibited"


class LicenceKind(StrEnum):
    exclusive = "exclusive"  # only the licensee, not even the owner, may use
    sole = "sole"  # the licensee and the owner, nobody else
    non_exclusive = "non_exclusive"


class Asset(Base):
    __tablename__ = "asset"
    __table_args__ = (
        CheckConstraint("trl BETWEEN 1 AND 9", name="trl_range"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    title_zh: Mapped[str | None] = mapped_column(String(300))
    title_en: Mapped[str | None] = mapped_column(String(300))
    abstract_zh: Mapped[str | None] = mapped_column(Text)
    abstract_en: Mapped[str | None] = mapped_column(Text)
    application_number: Mapped[str | None] = mapped_column(String(32), unique=True)
    registration_number: Mapped[str | None] = mapped_column(String(64))
    ipc: Mapped[str] = mapped_column(Text)  # JSON list of canonical IPC symbols
    legal_status: Mapped[str] = mapped_column(String(16))
    filing_date: Mapped[date | None] = mapped_column(Date)
    expiry_date: Mapped[date | None] = mapped_column(Date)
    trl: Mapped[int] = mapped_column(Integer)
    public_funded: Mapped[bool] = mapped_column(Boolean)
    export_control: Mapped[str | None] = mapped_column(String(16))
    licences: Mapped[str] = mapped_column(Text)  # JSON list of licences granted
    pledges: Mapped[str] = mapped_column(Text)  # JSON list of pledges
    created_by_party_id: Mapped[str | None] = mapped_column(ForeignKey("party.id"))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AssetOwner(Base):
    __tablename__ = "asset_owner"
    __table_args__ = (CheckConstraint("share_bp BETWEEN 1 AND 10000", name="share_range"),)

    asset_id: Mapped[str] = mapped_column(ForeignKey("asset.id"), primary_key=True)
    party_id: Mapped[str] = mapped_column(ForeignKey("party.id"), primary_key=True, index=True)
    share_bp: Mapped[int] = mapped_column(Integer)  # basis points: 10000 = 100%
