"""Pure valuation rules of technology pricing (定价): the cost, income (relief-from-royalty) and
market approaches, each reproducible from the inputs its valuation stores. No I/O.

Rounding: all arithmetic runs in a local decimal context (`decimal.localcontext`, never the global
context) of 34 significant digits, rounding ROUND_HALF_EVEN, trapping invalid operations, division
by zero and overflow. Money inputs are converted exactly from integer minor units to Decimal units
of the currency (`exchange.money.exponent`); rates and factors are exact decimals given as strings
(floats, NaN and infinities are refused). Intermediate results are not rounded to any number of
decimal places (each operation keeps the context's 34 significant digits). The final value is
rounded once, to the currency's minor unit with ROUND_HALF_EVEN, and returned in minor units.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import Annotated, Any, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from exchange.money import AMOUNT_MINOR_MAX, exponent, is_currency

METHOD_VERSIONS: dict[str, str] = {"cost": "cost/1", "income": "income/1", "market": "market/1"}

PRECISION_DIGITS: Final = 34
RATE_DECIMAL_PLACES_MAX: Final = 18  # of any rate or adjustment factor
FACTOR_WHOLE_DIGITS_MAX: Final = 6  # an adjustment factor is below 1,000,000
FORECAST_YEARS_MAX: Final = 50
ADJUSTMENT_FACTORS_MAX: Final = 10
COMPARABLES_MAX: Final = 50
DESCRIPTION_LENGTH_MAX: Final = 500

_CONTEXT: Final = Context(
    prec=PRECISION_DIGITS,
    rounding=ROUND_HALF_EVEN,
    Emin=-999_999,
    Emax=999_999,
    capitals=1,
    clamp=0,
    flags=[],
    traps=[InvalidOperation, DivisionByZero, Overflow],
)


def _refuse_float(value: object) -> object:
    if isinstance(value, float):
        raise ValueError(
            'must be a decimal string such as "0.05", not a float (floats are inexact)'
        )
    return value


# A rate or factor: an exact decimal from a string (or int or Decimal), never from a float.
ExactDecimal = Annotated[
    Decimal,
    BeforeValidator(_refuse_float),
    Field(
        max_digits=RATE_DECIMAL_PLACES_MAX + FACTOR_WHOLE_DIGITS_MAX,
        decimal_places=RATE_DECIMAL_PLACES_MAX,
        allow_inf_nan=False,
    ),
]
MinorUnits = Annotated[int, Field(strict=True, ge=0, le=AMOUNT_MINOR_MAX)]
PositiveMinorUnits = Annotated[int, Field(strict=True, gt=0, le=AMOUNT_MINOR_MAX)]


class CostInputs(BaseModel):
    """Cost approach: what it would cost to reproduce the technology today, less obsolescence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    replacement_cost: PositiveMinorUnits
    obsolescence_rate: Annotated[ExactDecimal, Field(ge=0, lt=1)] = Field(
        description='Technical, functional and economic obsolescence combined, e.g. "0.35".'
    )


class IncomeInputs(BaseModel):
    """Income approach by relief from royalty: the royalties the owner is spared paying."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    revenue_forecast: list[MinorUnits] = Field(
        min_length=1,
        max_length=FORECAST_YEARS_MAX,
        description="Revenue in minor units for years t = 1..n of the useful life.",
    )
    royalty_rate: Annotated[ExactDecimal, Field(gt=0, le=1)]
    tax_rate: Annotated[ExactDecimal, Field(ge=0, lt=1)]
    discount_rate: Annotated[ExactDecimal, Field(gt=0, le=1)]
    useful_life_years: Annotated[int, Field(strict=True, ge=1, le=FORECAST_YEARS_MAX)]

    @model_validator(mode="after")
    def _forecast_covers_life(self) -> IncomeInputs:
        if len(self.revenue_forecast) != self.useful_life_years:
            raise ValueError(
                f"revenue_forecast has {len(self.revenue_forecast)} years but useful_life_years is "
                f"{self.useful_life_years}; the forecast must cover the useful life exactly"
            )
        if sum(self.revenue_forecast) > AMOUNT_MINOR_MAX:
            raise ValueError("the revenue forecast sums to more than the largest amount")
        return self


class Comparable(BaseModel):
    """A comparable transaction: its price and the factors that adjust it to the subject."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    price: PositiveMinorUnits
    adjustment_factors: list[Annotated[ExactDecimal, Field(gt=0)]] = Field(
        default_factory=list,
        max_length=ADJUSTMENT_FACTORS_MAX,
        description="Time, technology, rights-scope and market factors multiplied onto the price.",
    )
    description: str | None = Field(default=None, max_length=DESCRIPTION_LENGTH_MAX)

    @model_validator(mode="after")
    def _adjusted_price_fits(self) -> Comparable:
        with localcontext(_CONTEXT):
            adjusted_minor = self.price * _product(self.adjustment_factors)
        if adjusted_minor > AMOUNT_MINOR_MAX:
            raise ValueError("the adjusted price is more than the largest amount")
        return self


class MarketInputs(BaseModel):
    """Market approach: the mean adjusted price of comparable transactions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    comparables: list[Comparable] = Field(min_length=1, max_length=COMPARABLES_MAX)


@dataclass(frozen=True, slots=True)
class Valuation:
    """A valuation with what it was computed from (JSON-safe) and its intermediate figures."""

    method: str
    method_version: str
    value: int  # minor units of `currency`
    currency: str
    inputs: dict[str, Any]
    steps: list[dict[str, str]]


def value_by_cost(inputs: CostInputs, currency: str) -> Valuation:
    """replacement_cost * (1 - obsolescence_rate)."""
    places = _places(currency)
    with localcontext(_CONTEXT):
        cost = _units(inputs.replacement_cost, places)
        remaining = 1 - inputs.obsolescence_rate
        exact = cost * remaining
        value = _rounded_minor(exact, places)
        steps = [
            _step("replacement_cost", f"replacement_cost / 10^{places}", cost),
            _step("remaining_fraction", "1 - obsolescence_rate", remaining),
            _step("value_exact", "replacement_cost * remaining_fraction", exact),
            _final_step(value, places, currency),
        ]
    assert 0 <= value <= inputs.replacement_cost
    return _valuation("cost", inputs, value, currency, steps)


def value_by_income(inputs: IncomeInputs, currency: str) -> Valuation:
    """Σ_t revenue_t * royalty_rate * (1 - tax_rate) / (1 + discount_rate)^t, t = 1..n."""
    places = _places(currency)
    with localcontext(_CONTEXT):
        net_rate = inputs.royalty_rate * (1 - inputs.tax_rate)
        growth = 1 + inputs.discount_rate
        steps = [
            _step("net_royalty_rate", "royalty_rate * (1 - tax_rate)", net_rate),
            _step("discount_base", "1 + discount_rate", growth),
        ]
        total = Decimal(0)
        for year, revenue_minor in enumerate(inputs.revenue_forecast, start=1):
            revenue = _units(revenue_minor, places)
            royalty = revenue * net_rate
            discount_factor = growth**year
            present_value = royalty / discount_factor
            total += present_value
            steps.append(
                {
                    "step": f"present_value_year_{year}",
                    "formula": f"revenue * net_royalty_rate / discount_base^{year}",
                    "revenue": _figure(revenue),
                    "royalty_after_tax": _figure(royalty),
                    "discount_factor": _figure(discount_factor),
                    "value": _figure(present_value),
                }
            )
        value = _rounded_minor(total, places)
        steps.append(_step("value_exact", "Σ present_value_year_t", total))
        steps.append(_final_step(value, places, currency))
    assert 0 <= value <= sum(inputs.revenue_forecast)
    return _valuation("income", inputs, value, currency, steps)


def value_by_market(inputs: MarketInputs, currency: str) -> Valuation:
    """Mean over the comparables of price * Π adjustment_factors."""
    places = _places(currency)
    steps: list[dict[str, str]] = []
    with localcontext(_CONTEXT):
        total = Decimal(0)
        for index, comparable in enumerate(inputs.comparables, start=1):
            price = _units(comparable.price, places)
            factor = _product(comparable.adjustment_factors)
            adjusted = price * factor
            total += adjusted
            steps.append(
                {
                    "step": f"adjusted_price_{index}",
                    "formula": "price * Π adjustment_factors",
                    "price": _figure(price),
                    "factor_product": _figure(factor),
                    "value": _figure(adjusted),
                }
            )
        count = len(inputs.comparables)
        mean = total / count
        value = _rounded_minor(mean, places)
        steps.append(_step("adjusted_price_sum", "Σ adjusted_price_i", total))
        steps.append(_step("value_exact", f"adjusted_price_sum / {count}", mean))
        steps.append(_final_step(value, places, currency))
    assert value >= 0
    return _valuation("market", inputs, value, currency, steps)


def recompute(method: str, method_version: str, inputs: dict[str, Any], currency: str) -> Valuation:
    """Compute a valuation again from what was stored, by the rules of the stored version."""
    match (method, method_version):
        case ("cost", "cost/1"):
            return value_by_cost(CostInputs.model_validate(inputs), currency)
        case ("income", "income/1"):
            return value_by_income(IncomeInputs.model_validate(inputs), currency)
        case ("market", "market/1"):
            return value_by_market(MarketInputs.model_validate(inputs), currency)
        case _:
            raise ValueError(f"no pricing rule {method!r} of version {method_version!r}")


def _places(currency: str) -> int:
    if not is_currency(currency):
        raise ValueError(f"'{currency}' is not an ISO 4217 currency code")
    return exponent(currency)


def _units(minor: int, places: int) -> Decimal:
    # Exact: a minor amount has at most 19 digits, within the 34 of the context.
    return Decimal(minor).scaleb(-places)


def _product(factors: list[Decimal]) -> Decimal:
    product = Decimal(1)
    for factor in factors:
        product *= factor
    return product


def _rounded_minor(exact: Decimal, places: int) -> int:
    minor = int(exact.scaleb(places).to_integral_value(rounding=ROUND_HALF_EVEN))
    assert 0 <= minor <= AMOUNT_MINOR_MAX, minor
    return minor


def _figure(number: Decimal) -> str:
    return f"{number:f}"


def _step(name: str, formula: str, number: Decimal) -> dict[str, str]:
    return {"step": name, "formula": formula, "value": _figure(number)}


def _final_step(value: int, places: int, currency: str) -> dict[str, str]:
    minor_unit = _figure(Decimal(1).scaleb(-places))
    formula = f"value_exact rounded ROUND_HALF_EVEN to {minor_unit} {currency}"
    return _step("value", formula, _units(value, places))


def _valuation(
    method: str, inputs: BaseModel, value: int, currency: str, steps: list[dict[str, str]]
) -> Valuation:
    return Valuation(
        method=method,
        method_version=METHOD_VERSIONS[method],
        value=value,
        currency=currency,
        inputs=inputs.model_dump(mode="json", exclude_none=True),
        steps=steps,
    )
