"""Property tests of the settlement rules: the payout sums to the escrow exactly, has no empty leg,
and agrees with a reference computed with Fractions; the fee stays within its clamps and rises with
the price; instalment plans built by the rules pass them and fail to sum when one amount moves;
forfeited deposits and royalties are exact."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from itertools import pairwise
from math import floor

from hypothesis import given
from hypothesis import strategies as st

from exchange.settlement.rules import (
    BASIS_POINTS,
    FeeBand,
    FeeSchedule,
    Instalment,
    InstalmentRules,
    Inventor,
    LegRole,
    RewardPolicy,
    Split,
    exchange_fee,
    forfeiture_split,
    plan_problems,
    royalty_due,
    settlement_split,
)

PRICE_MAX = 10**12
PRICES = st.integers(1, PRICE_MAX)
RATES_BP = st.one_of(
    st.sampled_from([0, 20, 50, 100, 150, 5_000, 10_000]), st.integers(0, BASIS_POINTS)
)
SELLER = "seller"
FEE_ACCOUNT = "exchange-fees"


@st.composite
def fee_schedules(draw: st.DrawFn) -> FeeSchedule:
    starts = draw(st.lists(st.integers(1, PRICE_MAX), max_size=4, unique=True))
    bands = tuple(FeeBand(start, draw(RATES_BP)) for start in [0, *sorted(starts)])
    minimum = draw(st.one_of(st.just(0), st.integers(0, 10**9)))
    cap = draw(st.one_of(st.none(), st.integers(0, 10**10)))
    return FeeSchedule(bands, minimum, None if cap is None else minimum + cap)


@st.composite
def shares_bp(draw: st.DrawFn, count: int) -> list[int]:
    """`count` positive shares summing to BASIS_POINTS, from distinct cut points."""
    cuts = draw(
        st.lists(
            st.integers(1, BASIS_POINTS - 1), min_size=count - 1, max_size=count - 1, unique=True
        )
    )
    bounds = [0, *sorted(cuts), BASIS_POINTS]
    return [high - low for low, high in pairwise(bounds)]


POOLS_BP = st.one_of(st.sampled_from([0, 5_000, 7_000, 10_000]), st.integers(0, BASIS_POINTS))
# A few accounts, so that inventors meet the seller, the exchange and each other
ANY_ACCOUNT = st.sampled_from([SELLER, FEE_ACCOUNT, "inventor-a", "inventor-b", "office"])


@st.composite
def reward_policies(draw: st.DrawFn, accounts: st.SearchStrategy[str] | None) -> RewardPolicy:
    """1 to 6 inventors; each with an account of its own when `accounts` is None."""
    shares = draw(shares_bp(draw(st.integers(1, 6))))
    inventors = tuple(
        Inventor(f"inventor-{index}" if accounts is None else draw(accounts), share)
        for index, share in enumerate(shares)
    )
    return RewardPolicy(draw(POOLS_BP), inventors)


# --- the reference -------------------------------------------------------------------------------


def reference_fee(price: int, schedule: FeeSchedule) -> int:
    exact = Fraction(0)
    bands = schedule.bands
    for index, band in enumerate(bands):
        upper = bands[index + 1].from_price if index + 1 < len(bands) else price
        part = max(0, min(price, upper) - band.from_price)
        exact += Fraction(part * band.rate_bp, BASIS_POINTS)
    fee = max(round(exact), schedule.minimum)  # round() of a Fraction: half to even
    if schedule.maximum is not None:
        fee = min(fee, schedule.maximum)
    return min(fee, price)


def reference_payouts(
    total: int, schedule: FeeSchedule, policy: RewardPolicy | None, remainder_to: str
) -> dict[str, int]:
    fee = reference_fee(total, schedule)
    net = total - fee
    pool = floor(Fraction(net * policy.pool_bp, BASIS_POINTS)) if policy else 0
    payouts = {SELLER: net - pool}
    payouts[FEE_ACCOUNT] = payouts.get(FEE_ACCOUNT, 0) + fee
    paid = 0
    for inventor in policy.inventors if policy else ():
        amount = floor(Fraction(pool) * Fraction(inventor.share_bp, BASIS_POINTS))
        payouts[inventor.account_id] = payouts.get(inventor.account_id, 0) + amount
        paid += amount
    payouts[remainder_to] = payouts.get(remainder_to, 0) + pool - paid
    return {account: amount for account, amount in payouts.items() if amount > 0}


# --- the fee -------------------------------------------------------------------------------------


@given(PRICES, fee_schedules())
def test_fee_is_within_its_clamps_and_agrees_with_the_reference(
    price: int, schedule: FeeSchedule
) -> None:
    fee = exchange_fee(price, schedule)
    assert fee == reference_fee(price, schedule)
    assert 0 <= fee <= price
    assert fee >= min(schedule.minimum, price)
    assert schedule.maximum is None or fee <= schedule.maximum


@given(PRICES, st.sampled_from([5_000, 2_500, 1_250, 625]))
def test_a_fee_halfway_between_minor_units_rounds_to_even(price: int, rate_bp: int) -> None:
    # Rates whose exact fees often end in half a minor unit.
    flat = FeeSchedule(bands=(FeeBand(0, rate_bp),), minimum=0, maximum=None)
    assert exchange_fee(price, flat) == round(Fraction(price * rate_bp, BASIS_POINTS))


@given(PRICES, st.integers(0, PRICE_MAX), fee_schedules())
def test_fee_never_falls_as_the_price_rises(price: int, rise: int, schedule: FeeSchedule) -> None:
    unclamped = replace(schedule, minimum=0, maximum=None)
    assert exchange_fee(price, unclamped) <= exchange_fee(price + rise, unclamped)
    assert exchange_fee(price, schedule) <= exchange_fee(price + rise, schedule)


# --- the payout ----------------------------------------------------------------------------------


@given(
    PRICES,
    fee_schedules(),
    st.one_of(st.none(), reward_policies(ANY_ACCOUNT)),
    st.one_of(st.none(), ANY_ACCOUNT),
)
def test_split_sums_to_the_escrow_and_agrees_with_the_reference(
    total: int, schedule: FeeSchedule, policy: RewardPolicy | None, remainder_account: str | None
) -> None:
    def run() -> Split:
        return settlement_split(
            total,
            seller_account_id=SELLER,
            fee_account_id=FEE_ACCOUNT,
            schedule=schedule,
            policy=policy,
            remainder_account_id=remainder_account,
        )

    split = run()
    assert split == run()
    legs = split.legs
    assert sum(leg.amount for leg in legs) == total
    assert all(leg.amount > 0 for leg in legs)
    assert len({leg.account_id for leg in legs}) == len(legs)
    remainder_to = SELLER if remainder_account is None else remainder_account
    expected = reference_payouts(total, schedule, policy, remainder_to)
    assert {leg.account_id: leg.amount for leg in legs} == expected
    assert list(expected) == [leg.account_id for leg in legs]  # the fixed order


@given(PRICES, fee_schedules(), reward_policies(None))
def test_each_inventor_gets_a_floor_of_the_exact_share(
    total: int, schedule: FeeSchedule, policy: RewardPolicy
) -> None:
    split = settlement_split(
        total,
        seller_account_id=SELLER,
        fee_account_id=FEE_ACCOUNT,
        schedule=schedule,
        policy=policy,
    )
    assert split.fee == exchange_fee(total, schedule)
    assert split.net == total - split.fee
    assert split.reward_pool == split.net * policy.pool_bp // BASIS_POINTS
    rewards: dict[str, int] = {}
    for leg in split.legs:
        if leg.role is LegRole.REWARD:
            rewards[leg.account_id] = rewards.get(leg.account_id, 0) + leg.amount
    paid = 0
    for inventor in policy.inventors:
        exact = Fraction(split.reward_pool * inventor.share_bp, BASIS_POINTS)
        amount = rewards.pop(inventor.account_id, 0)  # a zero reward has no leg
        assert 0 <= exact - amount < 1
        paid += amount
    assert split.remainder == split.reward_pool - paid
    assert 0 <= split.remainder < len(policy.inventors)
    seller = [leg.amount for leg in split.legs if leg.account_id == SELLER]
    assert sum(seller) == split.net - split.reward_pool + split.remainder


# --- instalments ---------------------------------------------------------------------------------

CONTRACT = date(2026, 3, 2)
RULES = InstalmentRules()


@st.composite
def valid_plans(draw: st.DrawFn) -> tuple[list[Instalment], int, date]:
    """A plan within RULES: (the plan, the price, the first due limit)."""
    count = draw(st.integers(1, 6))
    price = draw(st.integers(10 * count, PRICE_MAX))
    first_due_limit = CONTRACT + timedelta(days=draw(st.integers(0, 9)))
    if count == 1:
        return (
            [Instalment(CONTRACT + timedelta(days=draw(st.integers(0, 1_000))), price)],
            price,
            first_due_limit,
        )
    first_min = -(-price * RULES.first_share_bp_min // BASIS_POINTS)
    first = draw(st.integers(first_min, price - (count - 1)))
    rest = price - first
    cuts = draw(
        st.lists(
            st.integers(1, max(rest - 1, 1)), min_size=count - 2, max_size=count - 2, unique=True
        )
    )
    bounds = [0, *sorted(cuts), rest]
    amounts = [first, *(high - low for low, high in pairwise(bounds))]
    first_day = draw(st.integers(0, (first_due_limit - CONTRACT).days))
    later_days = draw(
        st.lists(
            st.integers(first_day + 1, RULES.last_due_days_max),
            min_size=count - 1,
            max_size=count - 1,
            unique=True,
        )
    )
    days = [first_day, *sorted(later_days)]
    plan = [
        Instalment(CONTRACT + timedelta(days=day), amount)
        for day, amount in zip(days, amounts, strict=True)
    ]
    return plan, price, first_due_limit


@given(valid_plans(), st.data())
def test_a_valid_plan_passes_and_fails_to_sum_when_one_amount_moves(
    generated: tuple[list[Instalment], int, date], data: st.DataObject
) -> None:
    plan, price, first_due_limit = generated

    def codes(candidate: list[Instalment]) -> list[str]:
        found = plan_problems(
            candidate,
            price=price,
            contract_date=CONTRACT,
            rules=RULES,
            first_due_limit=first_due_limit,
        )
        return [problem["code"] for problem in found]

    assert codes(plan) == []
    index = data.draw(st.integers(0, len(plan) - 1))
    delta = data.draw(st.sampled_from([1, -1] if plan[index].amount > 1 else [1]))
    moved = list(plan)
    moved[index] = replace(plan[index], amount=plan[index].amount + delta)
    assert "schedule_does_not_sum" in codes(moved)


# --- royalties and forfeited deposits -------------------------------------------------------------


@given(st.integers(0, PRICE_MAX), st.integers(0, BASIS_POINTS))
def test_a_forfeited_deposit_is_split_whole(deposit: int, exchange_share_bp: int) -> None:
    to_seller, to_exchange = forfeiture_split(deposit, exchange_share_bp=exchange_share_bp)
    assert to_seller + to_exchange == deposit
    assert to_exchange == deposit * exchange_share_bp // BASIS_POINTS
    assert to_seller >= 0


@given(
    st.integers(0, PRICE_MAX),
    st.integers(0, 12).flatmap(
        lambda places: st.decimals(
            min_value=0, max_value=1, places=places, allow_nan=False, allow_infinity=False
        )
    ),
)
def test_royalty_matches_decimal_arithmetic(revenue: int, rate: Decimal) -> None:
    with localcontext() as context:
        context.prec = 60  # enough digits that the product is exact
        expected = int((revenue * rate).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    assert royalty_due(revenue, rate) == expected
