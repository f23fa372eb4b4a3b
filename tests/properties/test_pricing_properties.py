"""Property tests of the pricing rules: each value moves the right way with each input, all else
equal; every valuation recomputes to the same value from its inputs after a JSON round trip; and a
value is always a non-negative integer of minor units."""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.money import AMOUNT_MINOR_MAX
from exchange.pricing import (
    CostInputs,
    IncomeInputs,
    MarketInputs,
    Valuation,
    recompute,
    value_by_cost,
    value_by_income,
    value_by_market,
)

CURRENCIES = st.sampled_from(["CNY", "USD", "JPY", "KWD", "EUR"])
AMOUNT = st.integers(min_value=1, max_value=10**15)
FACTOR_PLACES = 6


def rate(low: int, high: int, places: int = 6) -> st.SearchStrategy[Decimal]:
    """Decimals k / 10**places for low <= k <= high."""
    return st.integers(min_value=low, max_value=high).map(lambda k: Decimal(k).scaleb(-places))


UNIT = 10**6
OBSOLESCENCE = rate(0, UNIT - 1)  # [0, 1)
ROYALTY = rate(1, UNIT)  # (0, 1]
TAX = rate(0, UNIT - 1)  # [0, 1)
DISCOUNT = rate(1, UNIT)  # (0, 1]
FACTOR = rate(1, 3 * UNIT, FACTOR_PLACES)  # (0, 3]
FORECAST = st.lists(st.integers(min_value=0, max_value=10**15), min_size=1, max_size=50)


def income_inputs(
    forecast: list[int], royalty: Decimal, tax: Decimal, discount: Decimal
) -> IncomeInputs:
    return IncomeInputs.model_validate(
        {
            "revenue_forecast": forecast,
            "royalty_rate": str(royalty),
            "tax_rate": str(tax),
            "discount_rate": str(discount),
            "useful_life_years": len(forecast),
        }
    )


def cost_inputs(replacement_cost: int, obsolescence: Decimal) -> CostInputs:
    return CostInputs.model_validate(
        {"replacement_cost": replacement_cost, "obsolescence_rate": str(obsolescence)}
    )


COMPARABLES = st.lists(st.tuples(AMOUNT, st.lists(FACTOR, max_size=10)), min_size=1, max_size=50)


def market_inputs(comparables: list[tuple[int, list[Decimal]]]) -> MarketInputs:
    return MarketInputs.model_validate(
        {
            "comparables": [
                {"price": price, "adjustment_factors": [str(f) for f in factors]}
                for price, factors in comparables
            ]
        }
    )


def ordered(strategy: st.SearchStrategy[Decimal]) -> st.SearchStrategy[tuple[Decimal, Decimal]]:
    return st.tuples(strategy, strategy).map(lambda pair: (min(pair), max(pair)))


def assert_sound(valuation: Valuation) -> None:
    assert type(valuation.value) is int
    assert 0 <= valuation.value <= AMOUNT_MINOR_MAX
    assert_plain_json(valuation.inputs)
    assert_plain_json(valuation.steps)
    stored = json.loads(json.dumps(valuation.inputs))
    again = recompute(valuation.method, valuation.method_version, stored, valuation.currency)
    assert again.value == valuation.value
    assert again == valuation


def assert_plain_json(value: object) -> None:
    if isinstance(value, dict):
        assert all(isinstance(key, str) for key in value)
        for item in value.values():
            assert_plain_json(item)
    elif isinstance(value, list):
        for item in value:
            assert_plain_json(item)
    else:
        assert type(value) in (str, int), value


# --- income ------------------------------------------------------------------------------------


@given(FORECAST, ROYALTY, TAX, ordered(DISCOUNT), CURRENCIES)
def test_income_falls_as_the_discount_rate_rises(
    forecast: list[int],
    royalty: Decimal,
    tax: Decimal,
    discounts: tuple[Decimal, Decimal],
    currency: str,
) -> None:
    low, high = discounts
    at_low = value_by_income(income_inputs(forecast, royalty, tax, low), currency)
    at_high = value_by_income(income_inputs(forecast, royalty, tax, high), currency)
    assert at_low.value >= at_high.value


@given(FORECAST, ordered(ROYALTY), TAX, DISCOUNT, CURRENCIES)
def test_income_rises_with_the_royalty_rate(
    forecast: list[int],
    royalties: tuple[Decimal, Decimal],
    tax: Decimal,
    discount: Decimal,
    currency: str,
) -> None:
    low, high = royalties
    at_low = value_by_income(income_inputs(forecast, low, tax, discount), currency)
    at_high = value_by_income(income_inputs(forecast, high, tax, discount), currency)
    assert at_low.value <= at_high.value


@given(FORECAST, ROYALTY, ordered(TAX), DISCOUNT, CURRENCIES)
def test_income_falls_as_the_tax_rate_rises(
    forecast: list[int],
    royalty: Decimal,
    taxes: tuple[Decimal, Decimal],
    discount: Decimal,
    currency: str,
) -> None:
    low, high = taxes
    at_low = value_by_income(income_inputs(forecast, royalty, low, discount), currency)
    at_high = value_by_income(income_inputs(forecast, royalty, high, discount), currency)
    assert at_low.value >= at_high.value


@given(FORECAST, ROYALTY, TAX, DISCOUNT, CURRENCIES)
def test_an_income_valuation_recomputes_from_its_stored_inputs(
    forecast: list[int], royalty: Decimal, tax: Decimal, discount: Decimal, currency: str
) -> None:
    valuation = value_by_income(income_inputs(forecast, royalty, tax, discount), currency)
    assert_sound(valuation)
    assert valuation.value <= sum(forecast)


# --- cost --------------------------------------------------------------------------------------


@given(AMOUNT, ordered(OBSOLESCENCE), CURRENCIES)
def test_cost_falls_as_obsolescence_rises(
    replacement_cost: int, rates: tuple[Decimal, Decimal], currency: str
) -> None:
    low, high = rates
    at_low = value_by_cost(cost_inputs(replacement_cost, low), currency)
    at_high = value_by_cost(cost_inputs(replacement_cost, high), currency)
    assert at_low.value >= at_high.value


@given(AMOUNT, OBSOLESCENCE, CURRENCIES)
def test_a_cost_valuation_recomputes_from_its_stored_inputs(
    replacement_cost: int, obsolescence: Decimal, currency: str
) -> None:
    valuation = value_by_cost(cost_inputs(replacement_cost, obsolescence), currency)
    assert_sound(valuation)
    assert valuation.value <= replacement_cost


# --- market ------------------------------------------------------------------------------------


@given(COMPARABLES, st.data(), st.integers(min_value=0, max_value=10**12), CURRENCIES)
def test_market_value_rises_with_any_comparables_price(
    comparables: list[tuple[int, list[Decimal]]],
    data: st.DataObject,
    increase: int,
    currency: str,
) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(comparables) - 1))
    price, factors = comparables[index]
    raised = [*comparables]
    raised[index] = (price + increase, factors)
    before = value_by_market(market_inputs(comparables), currency)
    after = value_by_market(market_inputs(raised), currency)
    assert before.value <= after.value


@given(COMPARABLES, CURRENCIES)
def test_a_market_valuation_recomputes_from_its_stored_inputs(
    comparables: list[tuple[int, list[Decimal]]], currency: str
) -> None:
    assert_sound(value_by_market(market_inputs(comparables), currency))


@settings(max_examples=50)
@given(
    st.lists(st.tuples(AMOUNT, st.just([])), min_size=1, max_size=50),
    CURRENCIES,
)
def test_market_value_without_factors_lies_within_the_prices(
    comparables: list[tuple[int, list[Decimal]]], currency: str
) -> None:
    value = value_by_market(market_inputs(comparables), currency).value
    prices = [price for price, _ in comparables]
    assert min(prices) <= value <= max(prices)
