"""Pure settlement rules (结算): the progressive exchange fee, the escrow's payout to the seller,
the exchange and the inventors (职务科技成果奖励), instalment plans, royalties, forfeited deposits.

Money is int minor units; every result is computed exactly (integers, Fraction, Decimal) and rounded
once. No I/O: the service loads, calls, writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from itertools import pairwise

__all__ = [
    "BASIS_POINTS",
    "DEFAULT_FEE_SCHEDULE",
    "FeeBand",
    "FeeSchedule",
    "Instalment",
    "InstalmentRules",
    "Inventor",
    "Leg",
    "LegRole",
    "RewardPolicy",
    "Split",
    "exchange_fee",
    "forfeiture_split",
    "plan_problems",
    "royalty_due",
    "settlement_split",
]

BASIS_POINTS = 10_000


def _round_half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to an integer, a tie to the even neighbour."""
    assert denominator > 0, denominator
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


# --- the exchange fee ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeeBand:
    """The part of the price from `from_price` up to the next band's `from_price` is charged
    `rate_bp` basis points."""

    from_price: int
    rate_bp: int

    def __post_init__(self) -> None:
        assert self.from_price >= 0, self
        assert 0 <= self.rate_bp <= BASIS_POINTS, self


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """A progressive (累进) fee schedule with a floor and an optional cap."""

    bands: tuple[FeeBand, ...]  # ascending from_price, the first from 0
    minimum: int
    maximum: int | None  # None: no cap

    def __post_init__(self) -> None:
        assert self.bands, "a fee schedule needs at least one band"
        assert self.bands[0].from_price == 0, self.bands
        assert all(low.from_price < high.from_price for low, high in pairwise(self.bands)), self
        assert self.minimum >= 0, self
        assert self.maximum is None or self.maximum >= self.minimum, self


# CNY: 1.5% to 1,000,000.00; 1% to 5,000,000.00; 0.5% to 10,000,000.00; 0.2% above;
# at least 1,000.00 and at most 500,000.00.
DEFAULT_FEE_SCHEDULE = FeeSchedule(
    bands=(
        FeeBand(from_price=0, rate_bp=150),
        FeeBand(from_price=100_000_000, rate_bp=100),
        FeeBand(from_price=500_000_000, rate_bp=50),
        FeeBand(from_price=1_000_000_000, rate_bp=20),
    ),
    minimum=100_000,
    maximum=50_000_000,
)


def _fee_exact_bp(price: int, bands: Sequence[FeeBand]) -> int:
    """Σ over bands of (part of the price in the band) * rate_bp: the fee in 1/10,000 minor unit."""
    uppers: list[int | None] = [band.from_price for band in bands[1:]]
    uppers.append(None)
    total = 0
    for band, upper in zip(bands, uppers, strict=True):
        if price <= band.from_price:
            break
        top = price if upper is None else min(price, upper)
        total += (top - band.from_price) * band.rate_bp
    return total


def exchange_fee(price: int, schedule: FeeSchedule) -> int:
    """The progressive fee, rounded once half-even to a minor unit, clamped to the schedule's
    minimum and maximum, and never more than the price."""
    assert price >= 0, price
    fee = _round_half_even(_fee_exact_bp(price, schedule.bands), BASIS_POINTS)
    fee = max(fee, schedule.minimum)
    if schedule.maximum is not None:
        fee = min(fee, schedule.maximum)
    fee = min(fee, price)
    assert 0 <= fee <= price, (fee, price)
    return fee


# --- the escrow's payout --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Inventor:
    account_id: str
    share_bp: int  # of the reward pool


@dataclass(frozen=True, slots=True)
class RewardPolicy:
    """An institution's reward to its inventors: `pool_bp` of the net proceeds (the national
    default is at least 5,000; many use 7,000), shared among the inventors by `share_bp`."""

    pool_bp: int
    inventors: tuple[Inventor, ...]

    def __post_init__(self) -> None:
        assert 0 <= self.pool_bp <= BASIS_POINTS, self
        assert self.inventors, "a reward policy needs at least one inventor"
        assert all(inventor.share_bp > 0 for inventor in self.inventors), self
        assert sum(inventor.share_bp for inventor in self.inventors) == BASIS_POINTS, self


class LegRole(StrEnum):
    SELLER = "seller"
    FEE = "fee"
    REWARD = "reward"
    REMAINDER = "remainder"  # the inventors' floors' leftover, paid to an account of its own


@dataclass(frozen=True, slots=True)
class Leg:
    account_id: str
    amount: int
    role: LegRole

    def __post_init__(self) -> None:
        assert self.amount > 0, self


@dataclass(frozen=True, slots=True)
class Split:
    """The escrow's payout: seller, fee, rewards by inventor order, then the remainder if its
    account has no leg before; zero amounts left out; an account's payouts merged into one leg,
    at its first place (the remainder to the seller adds to the seller's leg)."""

    legs: tuple[Leg, ...]
    fee: int
    net: int  # total - fee
    reward_pool: int
    remainder: int  # reward_pool - Σ the inventors' floored amounts


def _merged(payouts: Sequence[tuple[str, int, LegRole]]) -> tuple[Leg, ...]:
    """One leg per account, at the place and with the role of the account's first payout (even
    one of zero), holding the sum of its payouts; accounts paid nothing left out."""
    by_account: dict[str, tuple[int, LegRole]] = {}
    for account_id, amount, role in payouts:
        assert amount >= 0, (account_id, amount, role)
        before, first_role = by_account.get(account_id, (0, role))
        by_account[account_id] = (before + amount, first_role)
    return tuple(
        Leg(account_id, amount, role)
        for account_id, (amount, role) in by_account.items()
        if amount > 0
    )


def settlement_split(
    total: int,
    *,
    seller_account_id: str,
    fee_account_id: str,
    schedule: FeeSchedule,
    policy: RewardPolicy | None,
    remainder_account_id: str | None = None,
    fee: int | None = None,
) -> Split:
    """Split everything in escrow for a deal: the fee to the exchange, the reward pool (floored)
    to the inventors (each share floored), the rest of the net to the seller, and the minor units
    the inventors' floors leave over to `remainder_account_id` (default: the seller). `fee`,
    when given, is this part's share of a fee computed on the whole price (a milestone's)."""
    assert total > 0, total
    if fee is None:
        fee = exchange_fee(total, schedule)
    assert 0 <= fee <= total, (fee, total)
    net = total - fee
    inventors = policy.inventors if policy is not None else ()
    pool = net * policy.pool_bp // BASIS_POINTS if policy is not None else 0
    rewards = [(i.account_id, pool * i.share_bp // BASIS_POINTS, LegRole.REWARD) for i in inventors]
    remainder = pool - sum(amount for _, amount, _ in rewards)
    remainder_to = seller_account_id if remainder_account_id is None else remainder_account_id
    legs = _merged(
        [
            (seller_account_id, net - pool, LegRole.SELLER),
            (fee_account_id, fee, LegRole.FEE),
            *rewards,
            (remainder_to, remainder, LegRole.REMAINDER),
        ]
    )
    assert 0 <= pool <= net, (pool, net)
    assert 0 <= remainder < max(len(inventors), 1), (remainder, inventors)
    assert sum(leg.amount for leg in legs) == total, (legs, total)
    assert len({leg.account_id for leg in legs}) == len(legs), legs
    return Split(legs=legs, fee=fee, net=net, reward_pool=pool, remainder=remainder)


# --- instalments ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Instalment:
    due_date: date
    amount: int
    milestone: bool = False  # once paid, what escrow holds up to it is released


@dataclass(frozen=True, slots=True)
class InstalmentRules:
    first_share_bp_min: int = 3_000  # at least 30% of the price ...
    first_due_working_days_max: int = 5  # ... within 5 working days of the contract
    last_due_days_max: int = 365  # the rest within one year

    def __post_init__(self) -> None:
        assert 0 <= self.first_share_bp_min <= BASIS_POINTS, self
        assert self.first_due_working_days_max >= 0, self
        assert self.last_due_days_max >= 0, self


def _problem(field: str, code: str, detail: str) -> dict[str, str]:
    return {"field": field, "code": code, "detail": detail}


def _each_instalment_problems(
    plan: Sequence[Instalment], contract_date: date
) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []
    for index, instalment in enumerate(plan):
        if instalment.amount <= 0:
            problems.append(
                _problem(f"schedule[{index}].amount", "amount_not_positive", "must be above 0")
            )
        if instalment.due_date < contract_date:
            detail = f"is before the contract date {contract_date.isoformat()}"
            problems.append(_problem(f"schedule[{index}].due_date", "due_before_contract", detail))
        if index > 0 and instalment.due_date <= plan[index - 1].due_date:
            detail = "must be later than the due date of the instalment before"
            problems.append(
                _problem(f"schedule[{index}].due_date", "due_dates_not_increasing", detail)
            )
    return problems


def _first_and_last_problems(
    plan: Sequence[Instalment],
    *,
    price: int,
    contract_date: date,
    rules: InstalmentRules,
    first_due_limit: date,
) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []
    first, last = plan[0], plan[-1]
    if first.amount * BASIS_POINTS < rules.first_share_bp_min * price:
        detail = f"must be at least {rules.first_share_bp_min} basis points of the price {price}"
        problems.append(_problem("schedule[0].amount", "first_instalment_too_small", detail))
    if first.due_date > first_due_limit:
        detail = (
            f"must be due within {rules.first_due_working_days_max} working days of the contract, "
            f"by {first_due_limit.isoformat()}"
        )
        problems.append(_problem("schedule[0].due_date", "first_instalment_too_late", detail))
    if (last.due_date - contract_date).days > rules.last_due_days_max:
        detail = f"must be due within {rules.last_due_days_max} days of the contract"
        field = f"schedule[{len(plan) - 1}].due_date"
        problems.append(_problem(field, "last_instalment_too_late", detail))
    return problems


def plan_problems(
    plan: Sequence[Instalment],
    *,
    price: int,
    contract_date: date,
    rules: InstalmentRules,
    first_due_limit: date,
) -> list[dict[str, str]]:
    """What is wrong with an instalment plan (分期付款), as problem entries; empty if nothing.
    A single instalment (a lump sum) has only to equal the price (and not fall before the
    contract); `first_due_limit` is the contract date plus the rules' working days, by the
    caller's working calendar."""
    assert price > 0, price
    assert first_due_limit >= contract_date, (first_due_limit, contract_date)
    if not plan:
        return [_problem("schedule", "schedule_empty", "a plan needs at least one instalment")]
    problems = _each_instalment_problems(plan, contract_date)
    planned = sum(instalment.amount for instalment in plan)
    if planned != price:
        detail = f"the instalments sum to {planned}, not to the price {price}"
        problems.append(_problem("schedule", "schedule_does_not_sum", detail))
    if len(plan) > 1:
        problems += _first_and_last_problems(
            plan,
            price=price,
            contract_date=contract_date,
            rules=rules,
            first_due_limit=first_due_limit,
        )
    return problems


# --- royalties and forfeited deposits -------------------------------------------------------------


def royalty_due(revenue: int, rate: Decimal) -> int:
    """revenue * rate (提成), rounded once half-even to a minor unit."""
    assert isinstance(rate, Decimal) and rate.is_finite(), rate
    assert 0 <= rate <= 1, rate
    assert revenue >= 0, revenue
    exact = Fraction(rate) * revenue
    royalty = _round_half_even(exact.numerator, exact.denominator)
    assert 0 <= royalty <= revenue, (royalty, revenue)
    return royalty


def forfeiture_split(deposit: int, *, exchange_share_bp: int) -> tuple[int, int]:
    """A defaulting buyer's forfeited deposit: (to the seller, to the exchange), the exchange's
    part floored."""
    assert deposit >= 0, deposit
    assert 0 <= exchange_share_bp <= BASIS_POINTS, exchange_share_bp
    to_exchange = deposit * exchange_share_bp // BASIS_POINTS
    to_seller = deposit - to_exchange
    assert to_seller + to_exchange == deposit and min(to_seller, to_exchange) >= 0
    return to_seller, to_exchange


def fee_share(fee_total: int, price: int, released_before: int, released_after: int) -> int:
    """A milestone's share of the fee on the whole price: the fee pro rata to what is released
    by the end of it, less what earlier parts took (floors, so the last part takes the rest and
    the parts sum to `fee_total`)."""
    assert 0 <= fee_total <= price and 0 <= released_before < released_after <= price
    if released_after == price:
        return fee_total - fee_total * released_before // price
    return fee_total * released_after // price - fee_total * released_before // price
