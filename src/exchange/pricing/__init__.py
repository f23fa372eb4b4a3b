"""Technology pricing (定价): valuations by the cost, income and market approaches, kept with their
inputs so that each can be computed again."""

from exchange.pricing.rules import (
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

__all__ = [
    "METHOD_VERSIONS",
    "Comparable",
    "CostInputs",
    "IncomeInputs",
    "MarketInputs",
    "Valuation",
    "recompute",
    "value_by_cost",
    "value_by_income",
    "value_by_market",
]
