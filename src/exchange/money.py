"""Money: integer minor units inside, `{"amount": "12.50", "currency": "CNY"}` outside.

The only place amounts are converted between the two. ISO 4217 codes and their minor-unit exponents
come from CLDR (babel); decimals are parsed from strings, never from floats.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, InvalidOperation
from functools import lru_cache
from typing import Annotated

from babel.numbers import get_currency_precision, list_currencies
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

AMOUNT_MINOR_MAX = 2**63 - 1  # BIGINT
_AMOUNT_PATTERN = re.compile(r"^[0-9]{1,30}(\.[0-9]{1,30})?$")
_EXACT = Context(prec=80)  # the pattern admits at most 60 digits: scaling must never round
# Funds, precious metals and test codes are not money a party can hold here.
_NOT_TRADABLE = {"XAG", "XAU", "XPD", "XPT", "XTS", "XXX", "XBA", "XBB", "XBC", "XBD", "XDR"}


@lru_cache(maxsize=1)
def _currencies() -> frozenset[str]:
    return frozenset(c for c in list_currencies() if len(c) == 3 and c not in _NOT_TRADABLE)


def is_currency(code: str) -> bool:
    return code in _currencies()


@lru_cache(maxsize=512)
def exponent(currency: str) -> int:
    assert is_currency(currency), currency
    return int(get_currency_precision(currency))


def _check_currency(code: str) -> str:
    if not is_currency(code):
        raise ValueError(f"'{code}' is not an ISO 4217 currency code")
    return code


Currency = Annotated[
    str,
    Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$", examples=["CNY"]),
    AfterValidator(_check_currency),
]


def to_minor(amount: str, currency: str) -> int:
    """Parse a decimal string into minor units; refuse more decimals than the currency has."""
    if not _AMOUNT_PATTERN.match(amount):
        raise ValueError('amount must be a non-negative decimal string such as "12.50"')
    try:
        value = Decimal(amount)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only valid decimals
        raise ValueError("amount is not a decimal number") from exc
    scaled = value.scaleb(exponent(currency), context=_EXACT)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{currency} has {exponent(currency)} decimal places; amount has more")
    minor = int(scaled)
    if minor > AMOUNT_MINOR_MAX:
        raise ValueError("amount is too large")
    return minor


def to_decimal_string(minor: int, currency: str) -> str:
    places = exponent(currency)
    value = Decimal(minor).scaleb(-places)
    return f"{value:.{places}f}"


class Money(BaseModel):
    """An amount of one currency, as a decimal string with the currency's decimals."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: str = Field(examples=["1250000.00"], description="Decimal string, never a number.")
    currency: Currency

    @model_validator(mode="after")
    def _amount_fits_currency(self) -> Money:
        to_minor(self.amount, self.currency)
        return self

    @classmethod
    def of(cls, minor: int, currency: str) -> Money:
        """`minor` units of `currency`, formatted with its decimals (valid by construction: not
        parsed back, as a client's amount is; every amount the API answers is one of these)."""
        return cls.model_construct(amount=to_decimal_string(minor, currency), currency=currency)

    def minor(self) -> int:
        return to_minor(self.amount, self.currency)


class MoneyIn(Money):
    """Money coming in: the amount must be a valid, positive amount of the currency."""

    @model_validator(mode="after")
    def _amount_is_positive(self) -> MoneyIn:
        if to_minor(self.amount, self.currency) <= 0:
            raise ValueError("amount must be greater than zero")
        return self
