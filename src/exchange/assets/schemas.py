"""Asset schemas: identifiers validated where a real format exists; owners' shares sum to 100%."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, model_validator

from exchange.assets.models import PATENT_KINDS, AssetKind, ExportControl, LegalStatus, LicenceKind
from exchange.identifiers import IpcSymbol, PatentApplicationNumber, is_country
from exchange.schemas import ClientId, Input, Ref

FULL_SHARE_BP = 10_000
WORLDWIDE = "*"


def _share_bp(value: str) -> str:
    if not re.fullmatch(r"[0-9]{1,3}(\.[0-9]{1,2})?", value):
        raise ValueError(
            'share is a percentage as a decimal string with at most 2 decimals, such as "33.33"'
        )
    if not Decimal(0) < Decimal(value) <= Decimal(100):
        raise ValueError("share must be more than 0 and at most 100 (percent)")
    return value


def share_to_bp(share: str) -> int:
    return int(Decimal(share) * 100)


def bp_to_share(share_bp: int) -> str:
    return f"{Decimal(share_bp) / 100:.2f}"


Share = Annotated[str, AfterValidator(_share_bp), Field(examples=["50.00"])]
Territory = Annotated[
    list[Annotated[str, Field(pattern=r"^(\*|[A-Z]{2})$")]],
    Field(
        min_length=1, max_length=250, description='ISO 3166 alpha-2 codes, or ["*"] for worldwide'
    ),
]


def check_territory(codes: list[str]) -> list[str]:
    unknown = [c for c in codes if c != WORLDWIDE and not is_country(c)]
    if unknown:
        raise ValueError(f"not ISO 3166 country codes: {', '.join(unknown)}")
    return sorted(set(codes))


class OwnerIn(Input):
    party_id: Ref
    share: Share


class LicenceIn(Input):
    """A licence already granted on the asset (an encumbrance)."""

    kind: LicenceKind
    licensee: Annotated[str, Field(min_length=1, max_length=200)]
    territory: Annotated[Territory, AfterValidator(check_territory)]
    start_date: date
    end_date: date | None = None

    @model_validator(mode="after")
    def _dates(self) -> LicenceIn:
        if self.end_date is not None and self.end_date <= self.start_date:
            raise ValueError("end_date must be after start_date")
        return self


class PledgeIn(Input):
    """A pledge of the asset; it exists in law only once registered (registration_number)."""

    pledgee_party_id: Ref
    registration_number: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class AssetIn(Input):
    id: ClientId | None = None
    kind: AssetKind
    title_zh: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    title_en: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    abstract_zh: Annotated[str, Field(max_length=20_000)] | None = None
    abstract_en: Annotated[str, Field(max_length=20_000)] | None = None
    application_number: PatentApplicationNumber | None = Field(
        default=None, description="Chinese patent application number, e.g. 202310123456.7"
    )
    registration_number: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    ipc: Annotated[list[IpcSymbol], Field(max_length=20, default_factory=list)]
    legal_status: LegalStatus
    filing_date: date | None = None
    expiry_date: date | None = None
    trl: Annotated[int, Field(ge=1, le=9, description="Technology readiness level")]
    public_funded: bool = False
    export_control: ExportControl | None = None
    owners: Annotated[list[OwnerIn], Field(min_length=1, max_length=50)]
    licences: Annotated[list[LicenceIn], Field(max_length=200, default_factory=list)]
    pledges: Annotated[list[PledgeIn], Field(max_length=50, default_factory=list)]

    @model_validator(mode="after")
    def _coherent(self) -> AssetIn:
        if self.title_zh is None and self.title_en is None:
            raise ValueError("give title_zh, title_en or both")
        if self.kind in PATENT_KINDS and self.application_number is None:
            raise ValueError(f"a {self.kind} needs its application_number")
        if self.kind not in PATENT_KINDS and self.application_number is not None:
            raise ValueError("application_number is for patents")
        if self.filing_date and self.expiry_date and self.expiry_date <= self.filing_date:
            raise ValueError("expiry_date must be after filing_date")
        parties = [owner.party_id for owner in self.owners]
        if len(set(parties)) != len(parties):
            raise ValueError("owners: each party appears once")
        total = sum(share_to_bp(owner.share) for owner in self.owners)
        if total != FULL_SHARE_BP:
            raise ValueError(f"owners: shares sum to {bp_to_share(total)}%, not 100%")
        return self


class OwnerOut(BaseModel):
    party_id: str
    share: str


class AssetOut(BaseModel):
    id: str
    kind: str
    title_zh: str | None
    title_en: str | None
    abstract_zh: str | None
    abstract_en: str | None
    application_number: str | None
    registration_number: str | None
    ipc: list[str]
    legal_status: str
    filing_date: date | None
    expiry_date: date | None
    trl: int
    public_funded: bool
    export_control: str | None
    owners: list[OwnerOut]
    licences: list[LicenceIn]
    pledges: list[PledgeIn]
    version: int
    created_at: datetime
    updated_at: datetime


class AssetPage(BaseModel):
    items: list[AssetOut]
    next_cursor: str | None


# Fields whose change alters the rights on offer: any confirmed deal must be reviewed again.
RIGHTS_FIELDS = (
    "kind",
    "application_number",
    "registration_number",
    "legal_status",
    "filing_date",
    "expiry_date",
    "export_control",
    "owners",
    "licences",
    "pledges",
)
