"""Worked examples of the pricing rules, computed by hand, with their rounding and refusals."""

from __future__ import annotations

import decimal
import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from exchange.pricing import (
    METHOD_VERSIONS,
    Comparable,
    CostInputs,
    IncomeInputs,
    MarketInputs,
    Valuation,
    recompute,
    value_by_cost,
    value_by_income,
    value_by_market,
)


def income(revenue_forecast: list[int], royalty: str, tax: str, discount: str) -> IncomeInputs:
    return IncomeInputs.model_validate(
        {
            "revenue_forecast": revenue_forecast,
            "royalty_rate": royalty,
            "tax_rate": tax,
            "discount_rate": discount,
            "useful_life_years": len(revenue_forecast),
        }
    )


def cost(replacement_cost: int, obsolescence: str) -> CostInputs:
    return CostInputs.model_validate(
        {"replacement_cost": replacement_cost, "obsolescence_rate": obsolescence}
    )


def market(*comparables: tuple[int, list[str]]) -> MarketInputs:
    return MarketInputs.model_validate(
        {
            "comparables": [
                {"price": price, "adjustment_factors": factors} for price, factors in comparables
            ]
        }
    )


def assert_recomputes(valuation: Valuation) -> None:
    stored = json.loads(json.dumps(valuation.inputs))
    again = recompute(valuation.method, valuation.method_version, stored, valuation.currency)
    assert again == valuation


# --- worked examples ---------------------------------------------------------------------------


def test_cost_approach_takes_obsolescence_off_the_replacement_cost() -> None:
    # 1,000,000.00 CNY * (1 - 0.35) = 1,000,000.00 * 0.65 = 650,000.00 CNY
    valuation = value_by_cost(cost(100_000_000, "0.35"), "CNY")
    assert valuation.value == 65_000_000
    assert (valuation.method, valuation.method_version) == ("cost", "cost/1")
    assert valuation.inputs == {"replacement_cost": 100_000_000, "obsolescence_rate": "0.35"}
    assert [step["value"] for step in valuation.steps] == [
        "1000000.00",
        "0.65",
        "650000.0000",
        "650000.00",
    ]
    assert_recomputes(valuation)


def test_income_approach_discounts_five_years_of_royalty_relief() -> None:
    # net royalty rate = 0.05 * (1 - 0.25) = 0.0375; discount base 1.10
    # year 1: 1,000,000.00 * 0.0375 = 37,500 / 1.1     = 34,090.909090...
    # year 2: 1,200,000.00 * 0.0375 = 45,000 / 1.21    = 37,190.082644...
    # year 3: 1,500,000.00 * 0.0375 = 56,250 / 1.331   = 42,261.457550...
    # year 4: 1,500,000.00 * 0.0375 = 56,250 / 1.4641  = 38,419.506864...
    # year 5: 1,000,000.00 * 0.0375 = 37,500 / 1.61051 = 23,284.549614...
    # sum = 175,246.505765... -> 175,246.51 CNY
    forecast = [100_000_000, 120_000_000, 150_000_000, 150_000_000, 100_000_000]
    valuation = value_by_income(income(forecast, "0.05", "0.25", "0.10"), "CNY")
    assert valuation.value == 17_524_651
    by_step = {step["step"]: step for step in valuation.steps}
    assert by_step["net_royalty_rate"]["value"] == "0.0375"
    assert by_step["present_value_year_3"]["discount_factor"] == "1.331000"
    assert by_step["present_value_year_1"]["value"].startswith("34090.909090")
    assert by_step["value_exact"]["value"].startswith("175246.505765")
    assert by_step["value"]["value"] == "175246.51"
    assert_recomputes(valuation)


def test_market_approach_averages_adjusted_comparables() -> None:
    #   800,000.00 * 1.05 * 0.90        =   756,000.00
    # 1,000,000.00 * 0.95               =   950,000.00
    # 1,200,000.00 * 0.85 * 1.10 * 0.95 = 1,065,900.00  (1,020,000 -> 1,122,000 -> 1,065,900)
    # sum 2,771,900.00 / 3 = 923,966.666... -> 923,966.67 CNY
    inputs = market(
        (80_000_000, ["1.05", "0.90"]),
        (100_000_000, ["0.95"]),
        (120_000_000, ["0.85", "1.10", "0.95"]),
    )
    valuation = value_by_market(inputs, "CNY")
    assert valuation.value == 92_396_667
    by_step = {step["step"]: step for step in valuation.steps}
    assert Decimal(by_step["adjusted_price_1"]["value"]) == Decimal("756000")
    assert Decimal(by_step["adjusted_price_3"]["value"]) == Decimal("1065900")
    assert Decimal(by_step["adjusted_price_sum"]["value"]) == Decimal("2771900")
    assert_recomputes(valuation)


def test_a_comparable_without_factors_counts_at_its_price() -> None:
    # (500.00 + 700.00) / 2 = 600.00
    valuation = value_by_market(market((50_000, []), (70_000, [])), "CNY")
    assert valuation.value == 60_000


# --- rounding: once, half-even, at the minor unit ----------------------------------------------


@pytest.mark.parametrize(
    ("replacement_cost", "expected"),
    [
        (5, 2),  # 0.05 * 0.5 = 0.025 -> 0.02 (down to even; half-up would give 0.03)
        (7, 4),  # 0.07 * 0.5 = 0.035 -> 0.04 (up to even; half-down would give 0.03)
    ],
)
def test_cost_rounds_half_even_at_the_fen(replacement_cost: int, expected: int) -> None:
    assert value_by_cost(cost(replacement_cost, "0.5"), "CNY").value == expected


@pytest.mark.parametrize(
    ("prices", "expected"),
    [
        ((1, 2), 2),  # (0.01 + 0.02) / 2 = 0.015 -> 0.02 (up to even)
        ((2, 3), 2),  # (0.02 + 0.03) / 2 = 0.025 -> 0.02 (down to even)
    ],
)
def test_market_mean_rounds_half_even(prices: tuple[int, int], expected: int) -> None:
    inputs = market(*((price, []) for price in prices))
    assert value_by_market(inputs, "CNY").value == expected


@pytest.mark.parametrize(
    ("revenue", "expected"),
    [
        (10, 2),  # 0.10 * 0.5 * (1 - 0) / 2 = 0.025 -> 0.02
        (30, 8),  # 0.30 * 0.5 * (1 - 0) / 2 = 0.075 -> 0.08
    ],
)
def test_income_rounds_half_even(revenue: int, expected: int) -> None:
    assert value_by_income(income([revenue], "0.5", "0", "1"), "CNY").value == expected


def test_intermediate_figures_are_not_rounded() -> None:
    # adjusted prices 0.01 * 0.4 = 0.004, 0.004 and 0.01 * 0.8 = 0.008;
    # unrounded: (0.004 + 0.004 + 0.008) / 3 = 0.00533... -> 0.01
    # (rounding each first would give (0.00 + 0.00 + 0.01) / 3 = 0.0033... -> 0.00)
    inputs = market((1, ["0.4"]), (1, ["0.4"]), (1, ["0.8"]))
    assert value_by_market(inputs, "CNY").value == 1


def test_the_global_decimal_context_does_not_matter() -> None:
    forecast = [100_000_000, 120_000_000, 150_000_000, 150_000_000, 100_000_000]
    inputs = income(forecast, "0.05", "0.25", "0.10")
    with decimal.localcontext() as hostile:
        hostile.prec = 3
        hostile.rounding = decimal.ROUND_DOWN
        assert value_by_income(inputs, "CNY").value == 17_524_651


# --- currencies with other exponents -----------------------------------------------------------


@pytest.mark.parametrize(
    ("replacement_cost", "expected"),
    [
        (1_000_001, 500_000),  # 1,000,001 * 0.5 = 500,000.5 -> 500,000
        (1_000_003, 500_002),  # 1,000,003 * 0.5 = 500,001.5 -> 500,002
    ],
)
def test_jpy_has_no_decimals(replacement_cost: int, expected: int) -> None:
    assert value_by_cost(cost(replacement_cost, "0.5"), "JPY").value == expected


def test_jpy_income_and_market() -> None:
    # 1,000,000 * 0.05 * (1 - 0) / 1.03 = 50,000 / 1.03 = 48,543.689... -> 48,544
    assert value_by_income(income([1_000_000], "0.05", "0", "0.03"), "JPY").value == 48_544
    # (300,000 * 1.1 + 250,000 * 0.9) / 2 = (330,000 + 225,000) / 2 = 277,500
    inputs = market((300_000, ["1.1"]), (250_000, ["0.9"]))
    assert value_by_market(inputs, "JPY").value == 277_500


def test_kwd_has_three_decimals() -> None:
    # 1,234.567 * (1 - 0.1) = 1,111.1103 -> 1,111.110
    valuation = value_by_cost(cost(1_234_567, "0.1"), "KWD")
    assert valuation.value == 1_111_110
    assert valuation.steps[-1]["value"] == "1111.110"
    assert "0.001 KWD" in valuation.steps[-1]["formula"]
    # 10,000.000 * 0.03 * (1 - 0.15) / 1.08 = 255 / 1.08 = 236.1111... -> 236.111
    assert value_by_income(income([10_000_000], "0.03", "0.15", "0.08"), "KWD").value == 236_111
    # 0.001 * 0.5 = 0.0005 -> 0.000 ; 0.003 * 0.5 = 0.0015 -> 0.002
    assert value_by_cost(cost(1, "0.5"), "KWD").value == 0
    assert value_by_cost(cost(3, "0.5"), "KWD").value == 2


# --- refusals ----------------------------------------------------------------------------------


def test_a_float_rate_is_refused() -> None:
    with pytest.raises(ValidationError, match="not a float"):
        CostInputs.model_validate({"replacement_cost": 100, "obsolescence_rate": 0.35})
    with pytest.raises(ValidationError, match="not a float"):
        Comparable.model_validate({"price": 100, "adjustment_factors": [1.05]})


def test_a_float_amount_is_refused() -> None:
    with pytest.raises(ValidationError):
        CostInputs.model_validate({"replacement_cost": 100.0, "obsolescence_rate": "0.35"})


@pytest.mark.parametrize("field", ["royalty_rate", "tax_rate", "discount_rate"])
def test_a_negative_rate_is_refused(field: str) -> None:
    data: dict[str, Any] = {
        "revenue_forecast": [100],
        "royalty_rate": "0.05",
        "tax_rate": "0.25",
        "discount_rate": "0.1",
        "useful_life_years": 1,
    }
    data[field] = "-0.05"
    with pytest.raises(ValidationError, match=field):
        IncomeInputs.model_validate(data)


def test_a_forecast_shorter_than_the_useful_life_is_refused() -> None:
    with pytest.raises(ValidationError, match="must cover the useful life"):
        IncomeInputs.model_validate(
            {
                "revenue_forecast": [100, 100, 100],
                "royalty_rate": "0.05",
                "tax_rate": "0.25",
                "discount_rate": "0.1",
                "useful_life_years": 5,
            }
        )


@pytest.mark.parametrize("rate", ["1", "1.0", "1.5", "-0.01", "NaN", "Infinity", "abc", "1e-19"])
def test_an_obsolescence_outside_zero_to_one_is_refused(rate: str) -> None:
    with pytest.raises(ValidationError):
        cost(100, rate)


def test_zero_comparables_are_refused() -> None:
    with pytest.raises(ValidationError, match="comparables"):
        MarketInputs.model_validate({"comparables": []})


@pytest.mark.parametrize("factor", ["0", "-1", "NaN"])
def test_a_non_positive_factor_is_refused(factor: str) -> None:
    with pytest.raises(ValidationError):
        Comparable.model_validate({"price": 100, "adjustment_factors": [factor]})


def test_an_adjusted_price_beyond_the_largest_amount_is_refused() -> None:
    with pytest.raises(ValidationError, match="largest amount"):
        Comparable.model_validate({"price": 2**62, "adjustment_factors": ["2", "2"]})


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        CostInputs.model_validate(
            {"replacement_cost": 100, "obsolescence_rate": "0.1", "discount": "0.1"}
        )


def test_an_unknown_currency_is_refused() -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        value_by_cost(cost(100, "0.1"), "XXX")


@pytest.mark.parametrize(
    ("method", "version"),
    [("cost", "cost/2"), ("guess", "guess/1"), ("cost", "income/1"), ("income", "")],
)
def test_recompute_refuses_an_unknown_method_or_version(method: str, version: str) -> None:
    with pytest.raises(ValueError, match="no pricing rule"):
        recompute(method, version, {"replacement_cost": 100, "obsolescence_rate": "0.1"}, "CNY")


def test_every_current_version_recomputes() -> None:
    assert METHOD_VERSIONS == {"cost": "cost/1", "income": "income/1", "market": "market/1"}
    valuations = [
        value_by_cost(cost(12_345, "0.2"), "CNY"),
        value_by_income(income([1_000, 2_000], "0.1", "0.2", "0.3"), "CNY"),
        value_by_market(market((9_999, ["1.01"])), "CNY"),
    ]
    for valuation in valuations:
        assert valuation.method_version == METHOD_VERSIONS[valuation.method]
        assert_recomputes(valuation)
