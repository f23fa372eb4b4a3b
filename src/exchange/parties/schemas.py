"""Party schemas: a Chinese organisation by its unified social credit code, a foreign party by
country (ISO 3166) and its own registration number."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from exchange.identifiers import CountryCode, Uscc
from exchange.ledger.schemas import AccountOut
from exchange.money import Currency
from exchange.parties.models import PartyKind
from exchange.schemas import ClientId, Input

Name = Annotated[str, Field(min_length=1, max_length=200)]


class PartyIn(Input):
    id: ClientId | None = None
    name: Name
    kind: PartyKind
    country: CountryCode = "CN"
    uscc: Uscc | None = Field(
        default=None, description="Unified social credit code: required for a Chinese organisation"
    )
    registration_number: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="A foreign party's own registration number: required abroad"
    )
    region: Annotated[str, Field(min_length=1, max_length=64)] | None = None

    @model_validator(mode="after")
    def _identified(self) -> PartyIn:
        organisation = self.kind is not PartyKind.individual
        if self.country == "CN":
            if organisation and self.uscc is None:
                raise ValueError("a Chinese organisation needs its uscc (social credit code)")
            if self.registration_number is not None:
                raise ValueError("registration_number is for a foreign party; use uscc")
        else:
            if self.uscc is not None:
                raise ValueError(
                    "uscc is for a Chinese organisation; a foreign party gives registration_number"
                )
            if organisation and self.registration_number is None:
                raise ValueError("a foreign organisation needs its registration_number")
        return self


class PartyOut(BaseModel):
    id: str
    name: str
    kind: str
    country: str
    uscc: str | None
    registration_number: str | None
    region: str | None
    version: int
    created_at: datetime


class PartyPage(BaseModel):
    items: list[PartyOut]
    next_cursor: str | None


class PartyAccountsIn(Input):
    currency: Currency


class PartyAccountsOut(BaseModel):
    party_id: str
    accounts: list[AccountOut]
