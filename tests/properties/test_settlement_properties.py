"""Settlement through the API for random prices, reward policies and instalment plans: the
payout moves exactly what escrow holds, to the accounts and amounts an independent split gives,
nothing negative, rounding conserved, and settling again pays nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from exchange.money import to_decimal_string, to_minor
from exchange.settlement import rules
from tests.api.test_settlement_api import balance, individual
from tests.factories import Chain, Market, cny, uid

PRICES = st.integers(min_value=100_000, max_value=2_000_000_000)  # 1,000.00 to 20,000,000.00
POLICIES = st.one_of(
    st.none(),
    st.tuples(
        st.integers(min_value=0, max_value=100),  # pool %
        st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=4),  # raw weights
    ),
)
PLANS = st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=3)


def shares_pct(weights: list[int]) -> list[Decimal]:
    """Weights as percentages with two decimals summing to exactly 100."""
    total = sum(weights)
    shares = [Decimal(w * 10_000 // total) / 100 for w in weights]
    shares[0] += 100 - sum(shares)
    return shares


def plan(price: int, weights: list[int]) -> list[int]:
    """Instalments summing to the price, the first at least 30% of it."""
    if len(weights) == 1:
        return [price]
    first = max(-(-price * 3 // 10), price * weights[0] // sum(weights))
    rest = price - first
    tail_weights = weights[1:]
    tail = [rest * w // sum(tail_weights) for w in tail_weights]
    tail[-1] += rest - sum(tail)
    return [first, *[t for t in tail if t > 0]] if all(t > 0 for t in tail) else [first + rest]


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(price=PRICES, policy=POLICIES, weights=PLANS)
@example(price=100_000, policy=(100, [1]), weights=[1])  # all the net to the inventor
async def test_settlement_pays_out_exactly_the_escrow_by_the_split(
    client: Any, operator: Any, db: Any, clock: Any, price: int, policy: Any, weights: list[int]
) -> None:
    chain = Chain(client, operator)
    market = Market(client, chain, db, clock)
    deal = await chain.priced_deal("negotiated")
    appraised = to_minor(deal["appraised"], "CNY")
    price = max(price, appraised)
    deposit = max(1, price // 20)
    money = lambda minor: cny(to_decimal_string(minor, "CNY"))  # noqa: E731
    listing = await chain.post(
        "/v1/listings",
        {"deal_id": deal["id"], "listing_price": money(price), "deposit": money(deposit)},
    )
    buyer = await market.bidder(funds=to_decimal_string(price, "CNY"))
    await market.register(listing["id"], buyer)
    await market.end_notice(listing)
    seller = deal["seller_party_id"]
    inventors: list[tuple[str, Decimal]] = []
    pool = None
    if policy is not None:
        pool, raw = policy
        inventors = [(await individual(market), share) for share in shares_pct(raw)]
        await chain.client.put(
            f"/v1/parties/{seller}/reward-policy",
            json={
                "pool_pct": str(pool),
                "inventors": [{"party_id": p, "share_pct": str(s)} for p, s in inventors],
            },
            headers=operator.headers,
        )
    amounts = plan(price, weights)
    today = clock.now().date()
    schedule = [
        {"due_date": (today + timedelta(days=1 + 60 * i)).isoformat(), "amount": money(a)}
        for i, a in enumerate(amounts)
    ]
    await chain.post(
        f"/v1/deals/{deal['id']}/contract",
        {
            "contract_type": "transfer",
            "payment_shape": "instalments" if len(amounts) > 1 else "lump_sum",
            "schedule": schedule,
        },
    )
    await chain.post(
        f"/v1/deals/{deal['id']}/bank-confirmations",
        {"bank_reference": uid("B"), "amount": money(price)},
    )
    await chain.post(
        f"/v1/deals/{deal['id']}/payments", {"amount": money(price - deposit)}, key=buyer
    )
    fee_before = await balance(market, "exchange.fee_revenue.CNY")
    settled = await chain.post(f"/v1/deals/{deal['id']}/settlement", None)

    reference = rules.settlement_split(
        price,
        seller_account_id=f"{seller}.available.CNY",
        fee_account_id="exchange.fee_revenue.CNY",
        schedule=rules.DEFAULT_FEE_SCHEDULE,
        policy=rules.RewardPolicy(
            pool_bp=pool * 100,
            inventors=tuple(rules.Inventor(f"{p}.reward.CNY", int(s * 100)) for p, s in inventors),
        )
        if pool is not None
        else None,
    )
    paid = {leg["account_id"]: leg["amount"] for leg in settled["legs"]}
    assert paid == {leg.account_id: leg.amount for leg in reference.legs}
    assert sum(paid.values()) == price and all(a > 0 for a in paid.values())
    assert settled["fee"] == money(reference.fee)
    assert await balance(market, f"{deal['id']}.escrow.CNY") == 0
    seller_account = f"{seller}.available.CNY"
    if seller_account in paid:
        assert await balance(market, seller_account) == Decimal(
            to_decimal_string(paid[seller_account], "CNY")
        )
    else:  # a pool of 100%: the whole net goes to the inventors and no leg pays the seller
        assert pool == 100
    fee_after = await balance(market, "exchange.fee_revenue.CNY")
    assert to_minor(str(fee_after - fee_before), "CNY") == reference.fee
    again = await chain.post(f"/v1/deals/{deal['id']}/settlement", None, expect=200)
    assert again["legs"] == settled["legs"]
    assert await balance(market, "exchange.fee_revenue.CNY") == fee_after
