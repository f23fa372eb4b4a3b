"""Docking schemas: demands in and out, match results with their explanations, interests."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from exchange.deals.rights import RightsOffered
from exchange.identifiers import IpcSymbol
from exchange.money import Currency, Money, MoneyIn
from exchange.schemas import ClientId, Input, Ref

Region = Annotated[
    str,
    Field(
        pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$",
        examples=["CN-SH"],
        description="ISO 3166-2 subdivision (CN-SH) or ISO 3166 country",
    ),
]


class DemandIn(Input):
    id: ClientId | None = None
    party_id: Ref | None = Field(default=None, description="Operators post for a party")
    title: Annotated[str, Field(min_length=1, max_length=300)]
    description: Annotated[str, Field(min_length=1, max_length=20_000)]
    ipc: Annotated[list[IpcSymbol], Field(max_length=20, default_factory=list)]
    keywords: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=50)]],
        Field(max_length=30, default_factory=list),
    ]
    budget_min: MoneyIn | None = None
    budget_max: MoneyIn | None = None
    currency: Currency = "CNY"
    region: Region | None = None
    min_trl: Annotated[int, Field(ge=1, le=9)] | None = None
    wanted_rights: Annotated[list[RightsOffered], Field(max_length=5, default_factory=list)]
    domestic_only: bool = False
    deadline_date: date | None = None
    visibility: Literal["public", "private"] = "public"

    @model_validator(mode="after")
    def _budget(self) -> DemandIn:
        for name in ("budget_min", "budget_max"):
            money = getattr(self, name)
            if money is not None and money.currency != self.currency:
                raise ValueError(f"{name} must be in the demand's currency {self.currency}")
        if (
            self.budget_min
            and self.budget_max
            and (self.budget_min.minor() > self.budget_max.minor())
        ):
            raise ValueError("budget_min is more than budget_max")
        return self


class DemandOut(BaseModel):
    id: str
    party_id: str
    title: str
    description: str
    ipc: list[str]
    keywords: list[str]
    budget_min: Money | None
    budget_max: Money | None
    currency: str
    region: str | None
    min_trl: int | None
    wanted_rights: list[str]
    domestic_only: bool
    deadline_date: date | None
    visibility: str
    state: str
    version: int
    created_at: datetime
    updated_at: datetime


class DemandPage(BaseModel):
    items: list[DemandOut]
    next_cursor: str | None


class MatchOut(BaseModel):
    id: str = Field(description="The matched demand's or deal's id")
    kind: Literal["supply", "demand"]
    score: float
    components: dict[str, float]
    matched_terms: list[str]
    ipc_depth: int


class MatchesOut(BaseModel):
    subject: str
    matches: list[MatchOut]


class MatchSetOut(BaseModel):
    subject: str
    subject_version: int
    matches: list[MatchOut]
    computed_at: datetime


class MatchSetPage(BaseModel):
    items: list[MatchSetOut]
    next_cursor: str | None


class InterestIn(Input):
    deal_id: Ref
    note: Annotated[str, Field(max_length=2000)] | None = None


class InterestOut(BaseModel):
    demand_id: str
    deal_id: str
    demander_party_id: str
    supplier_party_id: str
    note: str | None
    at: datetime
