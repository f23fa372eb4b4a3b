"""Ledger schemas in and out of the API. Inputs forbid unknown fields; money is a decimal string."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, model_validator

from exchange.ledger.models import AccountCode, OwnerType
from exchange.ledger.service import BATCH_SIZE_MAX
from exchange.money import Currency, Money, MoneyIn
from exchange.schemas import ClientId, Input, Ref

TIMEOUT_S_MAX = 366 * 24 * 3600

AccountRef = Ref
TransferCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", examples=["deposit"])]
Reference = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]


class AccountOwner(Input):
    type: OwnerType
    id: AccountRef | None = None

    @model_validator(mode="after")
    def _id_unless_exchange(self) -> AccountOwner:
        if self.type is not OwnerType.exchange and self.id is None:
            raise ValueError(f"an owner of type {self.type} needs an id")
        return self


class AccountFlags(Input):
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False

    @model_validator(mode="after")
    def _one_limit(self) -> AccountFlags:
        if self.debits_must_not_exceed_credits and self.credits_must_not_exceed_debits:
            raise ValueError("an account takes at most one of the two limit flags")
        return self


class AccountIn(Input):
    id: ClientId | None = None
    currency: Currency
    code: AccountCode
    owner: AccountOwner | None = None
    flags: AccountFlags = AccountFlags()


class AccountOut(BaseModel):
    id: str
    currency: str
    code: str
    owner: dict[str, str | None] | None
    flags: dict[str, bool]
    debits_pending: Money
    debits_posted: Money
    credits_pending: Money
    credits_posted: Money
    created_at: datetime


class AccountPage(BaseModel):
    items: list[AccountOut]
    next_cursor: str | None


class TransferIn(Input):
    id: ClientId
    debit_account_id: AccountRef
    credit_account_id: AccountRef
    amount: MoneyIn
    code: TransferCode
    pending: bool = False
    timeout_s: Annotated[int, Field(ge=1, le=TIMEOUT_S_MAX)] | None = None
    reference: Reference | None = None

    @model_validator(mode="after")
    def _coherent(self) -> TransferIn:
        if self.timeout_s is not None and not self.pending:
            raise ValueError("timeout_s is only for a pending transfer")
        if self.debit_account_id == self.credit_account_id:
            raise ValueError("debit_account_id and credit_account_id must differ")
        return self


class TransferBatchIn(Input):
    transfers: Annotated[list[TransferIn], Field(min_length=1, max_length=BATCH_SIZE_MAX)]


class ResolveIn(Input):
    """Post (all or part of) or void a hold; `id` names the resolving transfer."""

    id: ClientId | None = None
    amount: MoneyIn | None = None


class VoidIn(Input):
    id: ClientId | None = None


class TransferOut(BaseModel):
    id: str
    seq: int
    status: str = Field(description="posted | pending | voided")
    kind: str
    debit_account_id: str
    credit_account_id: str
    amount: Money
    code: str
    pending: bool
    pending_id: str | None
    timeout_s: int | None
    expires_at: datetime | None
    resolved_by: str | None
    reference: str | None
    fx_rate_id: str | None
    timestamp: datetime


class TransferBatchOut(BaseModel):
    transfers: list[TransferOut]


class TransferPage(BaseModel):
    items: list[TransferOut]
    next_cursor: str | None


class BalanceOut(BaseModel):
    account_id: str
    as_of: datetime
    debits_pending: Money
    debits_posted: Money
    credits_pending: Money
    credits_posted: Money


class VerifyOut(BaseModel):
    ok: bool
    entries: int
    head_hash: str
    first_broken: dict[str, Any] | None
    accounts_checked: int | None


def _positive_rate(value: str) -> str:
    if not re.fullmatch(r"[0-9]{1,12}(\.[0-9]{1,12})?", value) or Decimal(value) <= 0:
        raise ValueError('rate must be a positive decimal string such as "7.1234"')
    return value


class FxRateIn(Input):
    id: ClientId | None = None
    base_currency: Currency
    quote_currency: Currency
    rate: Annotated[str, AfterValidator(_positive_rate), Field(examples=["0.1389"])]

    @model_validator(mode="after")
    def _two_currencies(self) -> FxRateIn:
        if self.base_currency == self.quote_currency:
            raise ValueError("base_currency and quote_currency must differ")
        return self


class FxRateOut(BaseModel):
    id: str
    base_currency: str
    quote_currency: str
    rate: str
    recorded_at: datetime


class FxRatePage(BaseModel):
    items: list[FxRateOut]
    next_cursor: str | None


class FxTransferIn(Input):
    id: ClientId
    debit_account_id: AccountRef
    credit_account_id: AccountRef
    amount: MoneyIn
    code: TransferCode
    reference: Reference | None = None
    rate_id: ClientId | None = None


class FxTransferOut(BaseModel):
    rate: FxRateOut
    transfers: list[TransferOut]
