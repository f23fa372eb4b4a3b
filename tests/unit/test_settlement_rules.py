"""Worked examples of the settlement rules, computed by hand: the progressive fee and its clamps,
the escrow's payout to seller, exchange and inventors with the remainder rule, instalment plans,
royalties and forfeited deposits. Amounts are CNY minor units (fen): 100 = 1.00 CNY."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from exchange.settlement.rules import (
    DEFAULT_FEE_SCHEDULE,
    FeeBand,
    FeeSchedule,
    Instalment,
    InstalmentRules,
    Inventor,
    Leg,
    LegRole,
    RewardPolicy,
    Split,
    exchange_fee,
    forfeiture_split,
    plan_problems,
    royalty_due,
    settlement_split,
)

FLAT_ONE_PERCENT = FeeSchedule(bands=(FeeBand(0, 100),), minimum=0, maximum=None)
SIXTY_FORTY = RewardPolicy(
    pool_bp=7_000, inventors=(Inventor("inv-a", 6_000), Inventor("inv-b", 4_000))
)
THIRDS = RewardPolicy(
    pool_bp=7_000,
    inventors=(Inventor("inv-a", 3_334), Inventor("inv-b", 3_333), Inventor("inv-c", 3_333)),
)


def split(
    total: int,
    policy: RewardPolicy | None,
    *,
    schedule: FeeSchedule = DEFAULT_FEE_SCHEDULE,
    remainder_account_id: str | None = None,
) -> Split:
    return settlement_split(
        total,
        seller_account_id="seller",
        fee_account_id="exchange-fees",
        schedule=schedule,
        policy=policy,
        remainder_account_id=remainder_account_id,
    )


# --- the fee ------------------------------------------------------------------------------------


def test_default_fee_on_two_million_is_progressive() -> None:
    # 1,000,000.00 * 1.5% + 1,000,000.00 * 1% = 15,000.00 + 10,000.00 = 25,000.00
    assert exchange_fee(200_000_000, DEFAULT_FEE_SCHEDULE) == 2_500_000


def test_default_fee_on_twenty_million_crosses_every_band() -> None:
    # 15,000.00 + 4,000,000.00 * 1% + 5,000,000.00 * 0.5% + 10,000,000.00 * 0.2%
    # = 15,000.00 + 40,000.00 + 25,000.00 + 20,000.00 = 100,000.00, inside the clamps
    assert exchange_fee(2_000_000_000, DEFAULT_FEE_SCHEDULE) == 10_000_000


def test_fee_below_the_minimum_is_raised_to_it() -> None:
    # 50,000.00 * 1.5% = 750.00 < 1,000.00
    assert exchange_fee(5_000_000, DEFAULT_FEE_SCHEDULE) == 100_000


def test_fee_is_never_more_than_the_price() -> None:
    # 500.00: the minimum of 1,000.00 would exceed the price, so the fee is the whole price
    assert exchange_fee(50_000, DEFAULT_FEE_SCHEDULE) == 50_000
    assert split(50_000, SIXTY_FORTY) == Split(
        legs=(Leg("exchange-fees", 50_000, LegRole.FEE),),
        fee=50_000,
        net=0,
        reward_pool=0,
        remainder=0,
    )


def test_fee_above_the_maximum_is_capped() -> None:
    # 300,000,000.00: 15,000.00 + 40,000.00 + 25,000.00 + 290,000,000.00 * 0.2% (580,000.00)
    # = 660,000.00 > 500,000.00
    assert exchange_fee(30_000_000_000, DEFAULT_FEE_SCHEDULE) == 50_000_000


def test_fee_is_rounded_once_half_to_even() -> None:
    assert exchange_fee(150, FLAT_ONE_PERCENT) == 2  # 1.5 -> 2
    assert exchange_fee(250, FLAT_ONE_PERCENT) == 2  # 2.5 -> 2
    assert exchange_fee(350, FLAT_ONE_PERCENT) == 4  # 3.5 -> 4
    assert exchange_fee(251, FLAT_ONE_PERCENT) == 3  # 2.51 -> 3
    # Rounded once over the bands, not per band: 0.5 + 0.5 = 1 (per band it would be 0 + 0)
    two_bands = FeeSchedule(bands=(FeeBand(0, 100), FeeBand(50, 100)), minimum=0, maximum=None)
    assert exchange_fee(100, two_bands) == 1


# --- the payout ---------------------------------------------------------------------------------


def test_two_million_with_a_seventy_percent_policy() -> None:
    # fee 25,000.00; net 1,975,000.00; pool 70% = 1,382,500.00;
    # 60% = 829,500.00 and 40% = 553,000.00; seller 1,975,000.00 - 1,382,500.00 = 592,500.00
    assert split(200_000_000, SIXTY_FORTY) == Split(
        legs=(
            Leg("seller", 59_250_000, LegRole.SELLER),
            Leg("exchange-fees", 2_500_000, LegRole.FEE),
            Leg("inv-a", 82_950_000, LegRole.REWARD),
            Leg("inv-b", 55_300_000, LegRole.REWARD),
        ),
        fee=2_500_000,
        net=197_500_000,
        reward_pool=138_250_000,
        remainder=0,
    )


def test_without_a_policy_the_seller_gets_the_net() -> None:
    assert split(200_000_000, None).legs == (
        Leg("seller", 197_500_000, LegRole.SELLER),
        Leg("exchange-fees", 2_500_000, LegRole.FEE),
    )


def test_minor_units_the_floors_leave_go_to_the_seller() -> None:
    # 1,000.01 at a flat 1%: fee 10.0001 -> 10.00; net 990.01; pool 70% = 693.007 -> 693.00;
    # 33.34% = 231.0462 -> 231.04; 33.33% = 230.9769 -> 230.97 twice; the floors leave
    # 693.00 - 231.04 - 2 * 230.97 = 0.02, added to the seller's 990.01 - 693.00 = 297.01
    assert split(100_001, THIRDS, schedule=FLAT_ONE_PERCENT) == Split(
        legs=(
            Leg("seller", 29_703, LegRole.SELLER),
            Leg("exchange-fees", 1_000, LegRole.FEE),
            Leg("inv-a", 23_104, LegRole.REWARD),
            Leg("inv-b", 23_097, LegRole.REWARD),
            Leg("inv-c", 23_097, LegRole.REWARD),
        ),
        fee=1_000,
        net=99_001,
        reward_pool=69_300,
        remainder=2,
    )


def test_the_remainder_may_go_to_an_account_of_its_own() -> None:
    result = split(
        100_001, THIRDS, schedule=FLAT_ONE_PERCENT, remainder_account_id="tech-transfer-office"
    )
    assert result.legs == (
        Leg("seller", 29_701, LegRole.SELLER),
        Leg("exchange-fees", 1_000, LegRole.FEE),
        Leg("inv-a", 23_104, LegRole.REWARD),
        Leg("inv-b", 23_097, LegRole.REWARD),
        Leg("inv-c", 23_097, LegRole.REWARD),
        Leg("tech-transfer-office", 2, LegRole.REMAINDER),
    )


def test_an_inventor_who_is_the_seller_gets_one_merged_leg() -> None:
    policy = RewardPolicy(
        pool_bp=7_000, inventors=(Inventor("seller", 6_000), Inventor("inv-b", 4_000))
    )
    # 592,500.00 as seller + 829,500.00 as inventor = 1,422,000.00
    assert split(200_000_000, policy).legs == (
        Leg("seller", 142_200_000, LegRole.SELLER),
        Leg("exchange-fees", 2_500_000, LegRole.FEE),
        Leg("inv-b", 55_300_000, LegRole.REWARD),
    )


def test_a_whole_pool_leaves_the_seller_only_the_remainder() -> None:
    policy = RewardPolicy(pool_bp=10_000, inventors=THIRDS.inventors)
    # net 990.01 all in the pool: 330.0693 -> 330.06; 329.9703 -> 329.97 twice; left 0.01
    assert split(100_001, policy, schedule=FLAT_ONE_PERCENT).legs == (
        Leg("seller", 1, LegRole.SELLER),
        Leg("exchange-fees", 1_000, LegRole.FEE),
        Leg("inv-a", 33_006, LegRole.REWARD),
        Leg("inv-b", 32_997, LegRole.REWARD),
        Leg("inv-c", 32_997, LegRole.REWARD),
    )


def test_malformed_schedules_and_policies_are_bugs() -> None:
    with pytest.raises(AssertionError):
        FeeSchedule(bands=(FeeBand(100, 150),), minimum=0, maximum=None)  # not from 0
    with pytest.raises(AssertionError):
        FeeSchedule(bands=(FeeBand(0, 150), FeeBand(0, 100)), minimum=0, maximum=None)
    with pytest.raises(AssertionError):
        FeeSchedule(bands=(FeeBand(0, 150),), minimum=200, maximum=100)
    with pytest.raises(AssertionError):
        FeeBand(0, 10_001)
    with pytest.raises(AssertionError):
        RewardPolicy(pool_bp=7_000, inventors=(Inventor("a", 6_000), Inventor("b", 3_999)))
    with pytest.raises(AssertionError):
        Leg("seller", 0, LegRole.SELLER)


# --- instalments --------------------------------------------------------------------------------

CONTRACT = date(2026, 3, 2)  # a Monday
FIRST_DUE_LIMIT = date(2026, 3, 9)  # 5 working days on
PRICE = 1_000_000
RULES = InstalmentRules()


def problems(plan: list[tuple[date, int]]) -> list[tuple[str, str]]:
    found = plan_problems(
        [Instalment(due_date, amount) for due_date, amount in plan],
        price=PRICE,
        contract_date=CONTRACT,
        rules=RULES,
        first_due_limit=FIRST_DUE_LIMIT,
    )
    assert all(problem["detail"] for problem in found), found
    return [(problem["field"], problem["code"]) for problem in found]


def test_a_plan_within_the_rules_has_no_problem() -> None:
    # 30% on the 5th working day, the last exactly 365 days after the contract
    plan = [(date(2026, 3, 9), 300_000), (date(2026, 6, 1), 400_000), (date(2027, 3, 2), 300_000)]
    assert problems(plan) == []


def test_a_lump_sum_has_only_to_equal_the_price() -> None:
    assert problems([(date(2028, 1, 3), PRICE)]) == []
    assert problems([(date(2028, 1, 3), PRICE - 1)]) == [("schedule", "schedule_does_not_sum")]


def test_an_empty_plan() -> None:
    assert problems([]) == [("schedule", "schedule_empty")]


def test_instalments_not_summing_to_the_price() -> None:
    plan = [(date(2026, 3, 6), 300_000), (date(2026, 9, 1), 700_001)]
    assert problems(plan) == [("schedule", "schedule_does_not_sum")]


def test_due_dates_not_strictly_increasing() -> None:
    plan = [(date(2026, 3, 6), 300_000), (date(2026, 3, 6), 700_000)]
    assert problems(plan) == [("schedule[1].due_date", "due_dates_not_increasing")]


def test_a_due_date_before_the_contract() -> None:
    plan = [(date(2026, 2, 27), 300_000), (date(2026, 9, 1), 700_000)]
    assert problems(plan) == [("schedule[0].due_date", "due_before_contract")]


def test_an_amount_not_above_zero() -> None:
    plan = [(date(2026, 3, 6), PRICE), (date(2026, 9, 1), 0)]
    assert problems(plan) == [("schedule[1].amount", "amount_not_positive")]


def test_a_first_instalment_below_thirty_percent() -> None:
    plan = [(date(2026, 3, 6), 299_999), (date(2026, 9, 1), 700_001)]
    assert problems(plan) == [("schedule[0].amount", "first_instalment_too_small")]


def test_a_first_instalment_after_the_fifth_working_day() -> None:
    plan = [(date(2026, 3, 10), 300_000), (date(2026, 9, 1), 700_000)]
    assert problems(plan) == [("schedule[0].due_date", "first_instalment_too_late")]


def test_a_last_instalment_more_than_a_year_on() -> None:
    plan = [(date(2026, 3, 6), 300_000), (date(2027, 3, 3), 700_000)]  # 366 days
    assert problems(plan) == [("schedule[1].due_date", "last_instalment_too_late")]


# --- royalties and forfeited deposits ------------------------------------------------------------


def test_royalty_is_rounded_once_half_to_even() -> None:
    assert royalty_due(12_345, Decimal("0.05")) == 617  # 617.25
    assert royalty_due(12_350, Decimal("0.05")) == 618  # 617.5 -> even 618
    assert royalty_due(12_370, Decimal("0.05")) == 618  # 618.5 -> even 618
    assert royalty_due(1_000_001, Decimal("0.035")) == 35_000  # 35,000.035
    assert royalty_due(1_000_001, Decimal(0)) == 0
    assert royalty_due(1_000_001, Decimal(1)) == 1_000_001


def test_a_forfeited_deposit_is_split_with_the_exchange_part_floored() -> None:
    assert forfeiture_split(100_001, exchange_share_bp=2_000) == (80_001, 20_000)  # 20,000.2
    assert forfeiture_split(100_001, exchange_share_bp=0) == (100_001, 0)
    assert forfeiture_split(100_001, exchange_share_bp=10_000) == (0, 100_001)
