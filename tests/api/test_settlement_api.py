"""Contract, escrow, settlement and default through the API: a deal walked from its award to
`closed`, every account checked against figures computed by hand in the test."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from tests.conftest import Key
from tests.factories import DEPOSIT, PROBLEM, Market, cny, uid

PRICE = "200000.00"


async def awarded(market: Market) -> tuple[dict[str, Any], Key]:
    """A negotiated deal awarded at PRICE to one funded buyer (its deposit in escrow)."""
    deal = await market.chain.priced_deal("negotiated")
    listing = await market.chain.post(
        "/v1/listings",
        {"deal_id": deal["id"], "listing_price": cny(PRICE), "deposit": cny(DEPOSIT)},
    )
    buyer = await market.bidder()
    await market.register(listing["id"], buyer)
    await market.end_notice(listing)
    done = await market.deal(deal["id"])
    assert done["state"] == "awarded" and done["award_price"] == cny(PRICE)
    return done, buyer


def schedule(market: Market, *amounts: str) -> list[dict[str, Any]]:
    today = market.clock.now().date()
    due = [today + timedelta(days=1), today + timedelta(days=180)]
    return [
        {"due_date": d.isoformat(), "amount": cny(a)} for d, a in zip(due, amounts, strict=False)
    ]


async def balance(market: Market, account_id: str) -> Decimal:
    account = await market.chain.balance(account_id)
    return Decimal(account["credits_posted"]["amount"]) - Decimal(
        account["debits_posted"]["amount"]
    )


async def individual(market: Market) -> str:
    created = await market.chain.post(
        "/v1/parties", {"name": uid("Inventor"), "kind": "individual"}
    )
    return str(created["id"])


async def test_a_deal_from_award_to_closed_with_instalments_fee_and_inventor_rewards(
    market: Market, client
):
    deal, buyer = await awarded(market)
    seller = deal["seller_party_id"]
    inventor_a, inventor_b = await individual(market), await individual(market)
    policy = await client.put(
        f"/v1/parties/{seller}/reward-policy",
        json={
            "pool_pct": "70",
            "inventors": [
                {"party_id": inventor_a, "share_pct": "60"},
                {"party_id": inventor_b, "share_pct": "40"},
            ],
        },
        headers=market.chain.operator.headers,
    )
    assert policy.status_code == 200, policy.text

    too_small = await client.post(
        f"/v1/deals/{deal['id']}/contract",
        json={
            "contract_type": "transfer",
            "payment_shape": "instalments",
            "schedule": schedule(market, "50000.00", "150000.00"),
        },
        headers=market.chain.operator.headers,
    )
    assert too_small.status_code == 422
    assert too_small.json()["errors"][0]["code"] == "first_instalment_too_small"
    contract = await market.chain.post(
        f"/v1/deals/{deal['id']}/contract",
        {
            "contract_type": "transfer",
            "payment_shape": "instalments",
            "schedule": schedule(market, "60000.00", "140000.00"),
        },
    )
    assert contract["price"] == cny(PRICE) and contract["in_escrow"] == cny(DEPOSIT)
    assert contract["outstanding"] == cny("195000.00")
    assert (await market.deal(deal["id"]))["state"] == "contracted"

    fee_before = await balance(market, "exchange.fee_revenue.CNY")
    confirmations = f"/v1/deals/{deal['id']}/bank-confirmations"
    first = await market.chain.post(
        confirmations, {"bank_reference": uid("BOC"), "amount": cny("60000.00")}
    )
    assert first["created"] is True
    again = await market.chain.post(
        confirmations,
        {"bank_reference": first["bank_reference"], "amount": cny("60000.00")},
        expect=200,
    )
    assert again["created"] is False and again["transfer_id"] == first["transfer_id"]
    other = await client.post(
        confirmations,
        json={"bank_reference": first["bank_reference"], "amount": cny("1.00")},
        headers=market.chain.operator.headers,
    )
    assert other.status_code == 409 and other.headers["content-type"] == PROBLEM
    assert await market.available(buyer.party_id) == Decimal("1000000") - Decimal(DEPOSIT) + 60000

    payments = f"/v1/deals/{deal['id']}/payments"
    paid = await market.chain.post(payments, {"amount": cny("55000.00")}, key=buyer)
    assert paid["outstanding"] == cny("140000.00")
    assert (await market.deal(deal["id"]))["state"] == "settling"
    over = await client.post(payments, json={"amount": cny("140000.01")}, headers=buyer.headers)
    assert over.status_code == 409 and over.json()["code"] == "more_than_due"
    await market.chain.post(
        confirmations, {"bank_reference": uid("BOC"), "amount": cny("140000.00")}
    )
    await market.chain.post(payments, {"amount": cny("140000.00")}, key=buyer)
    nothing = await client.post(payments, json={"amount": cny("1.00")}, headers=buyer.headers)
    assert nothing.status_code == 409 and nothing.json()["code"] == "nothing_due"

    settled = await market.chain.post(f"/v1/deals/{deal['id']}/settlement", None)
    # By hand: fee 1.5% of 200,000.00 = 3,000.00; net 197,000.00; the inventors' 70% is
    # 137,900.00, split 60/40 as 82,740.00 and 55,160.00; the seller keeps 59,100.00.
    assert settled["total"] == cny(PRICE) and settled["fee"] == cny("3000.00")
    assert settled["reward_pool"] == cny("137900.00")
    assert await balance(market, f"{seller}.available.CNY") == Decimal("59100.00")
    assert await balance(market, f"{inventor_a}.reward.CNY") == Decimal("82740.00")
    assert await balance(market, f"{inventor_b}.reward.CNY") == Decimal("55160.00")
    assert await balance(market, "exchange.fee_revenue.CNY") - fee_before == Decimal("3000.00")
    assert await balance(market, f"{deal['id']}.escrow.CNY") == 0
    assert await market.available(buyer.party_id) == Decimal("1000000.00")
    assert (await market.deal(deal["id"]))["state"] == "settled"
    replay = await market.chain.post(f"/v1/deals/{deal['id']}/settlement", None, expect=200)
    assert replay["legs"] == settled["legs"]
    assert await balance(market, f"{seller}.available.CNY") == Decimal("59100.00")

    closed = await market.chain.post(
        f"/v1/deals/{deal['id']}/actions/record_transfer",
        {
            "registration_number": "ZL-TR-2026-001",
            "registered_on": market.clock.now().date().isoformat(),
            "evidence_sha256": await market.chain.evidence(),
        },
        expect=200,
    )
    assert closed["state"] == "closed"


async def test_a_defaulting_buyer_forfeits_its_deposit_and_gets_the_rest_back(
    market: Market, client
):
    deal, buyer = await awarded(market)
    seller = deal["seller_party_id"]
    await market.chain.post(
        f"/v1/deals/{deal['id']}/contract",
        {"contract_type": "licence", "schedule": schedule(market, PRICE)},
    )
    await market.chain.post(
        f"/v1/deals/{deal['id']}/bank-confirmations",
        {"bank_reference": uid("ICBC"), "amount": cny("20000.00")},
    )
    await market.chain.post(
        f"/v1/deals/{deal['id']}/payments", {"amount": cny("20000.00")}, key=buyer
    )
    fee_before = await balance(market, "exchange.fee_revenue.CNY")
    defaulted = await market.chain.post(
        f"/v1/deals/{deal['id']}/actions/default", {"reason": "missed the payment"}, expect=200
    )
    assert defaulted["state"] == "defaulted"
    # By hand: the 5,000.00 deposit is forfeited, 20% (1,000.00) to the exchange and 4,000.00 to
    # the seller; the 20,000.00 paid goes back to the buyer.
    assert await balance(market, f"{seller}.available.CNY") == Decimal("4000.00")
    assert await balance(market, "exchange.fee_revenue.CNY") - fee_before == Decimal("1000.00")
    assert (
        await market.available(buyer.party_id) == Decimal("1000000.00") - Decimal(DEPOSIT) + 20000
    )
    assert await balance(market, f"{deal['id']}.escrow.CNY") == 0
    relisted = await market.chain.post(
        "/v1/listings",
        {"deal_id": deal["id"], "listing_price": cny(PRICE), "deposit": cny(DEPOSIT)},
    )
    assert relisted["round"] == 2


async def test_the_contract_deadline_and_who_may_see_the_deal(market: Market, client):
    deal, buyer = await awarded(market)
    stranger = await market.bidder()
    hidden = await client.get(f"/v1/deals/{deal['id']}/contract", headers=stranger.headers)
    assert hidden.status_code == 404
    own = await client.get(f"/v1/deals/{deal['id']}", headers=buyer.headers)
    assert own.status_code == 200 and own.json()["buyer_party_id"] == buyer.party_id
    cannot = await client.post(f"/v1/deals/{deal['id']}/actions/withdraw", headers=buyer.headers)
    assert cannot.status_code == 403
    market.clock.advance(timedelta(days=20))  # past 10 working days
    late = await client.post(
        f"/v1/deals/{deal['id']}/contract",
        json={"contract_type": "transfer", "schedule": schedule(market, PRICE)},
        headers=market.chain.operator.headers,
    )
    assert late.status_code == 409 and late.json()["code"] == "contract_deadline_passed"
    defaulted = await market.chain.post(
        f"/v1/deals/{deal['id']}/actions/default", {"reason": "no contract"}, expect=200
    )
    assert defaulted["state"] == "defaulted"


async def provider(market: Market, kind: str, funds: str = "500000.00") -> str:
    party = await market.chain.party(kind)
    await market.chain.fund(party, funds)
    return party


async def test_guarantee_pledge_loan_and_insurance_each_move_money_by_their_machine(
    market: Market, client
):
    deal, buyer = await awarded(market)
    deal_id = deal["id"]
    await market.chain.post(
        f"/v1/deals/{deal_id}/contract",
        {
            "contract_type": "transfer",
            "payment_shape": "instalments",
            "schedule": schedule(market, "60000.00", "140000.00"),
        },
    )
    guarantor, lender, insurer = (
        await provider(market, "guarantor"),
        await provider(market, "bank"),
        await provider(market, "insurer"),
    )
    apply = f"/v1/deals/{deal_id}/credit-enhancements"
    guarantee = await market.chain.post(
        apply,
        {"kind": "guarantee", "provider_party_id": guarantor, "amount": cny("140000.00")},
        key=buyer,
    )
    loan = await market.chain.post(
        apply, {"kind": "pledge_loan", "provider_party_id": lender, "amount": cny("55000.00")}
    )
    insurance = await market.chain.post(
        apply,
        {
            "kind": "insurance",
            "provider_party_id": insurer,
            "amount": cny("10000.00"),
            "premium": cny("800.00"),
        },
    )
    act = "/v1/credit-enhancements/{}/actions/{}"
    early = await client.post(
        act.format(guarantee["id"], "claim"), headers=market.chain.operator.headers
    )
    assert early.status_code == 409 and early.json()["allowed_actions"] == ["approve"]
    for enhancement in (guarantee, loan, insurance):
        await market.chain.post(act.format(enhancement["id"], "approve"), None, expect=200)
    await market.chain.post(act.format(guarantee["id"], "activate"), None, expect=200)
    # The guarantor's 140,000.00 is held (pending), not yet in escrow.
    held = await market.chain.balance(f"{guarantor}.available.CNY")
    assert held["debits_pending"] == cny("140000.00")
    missing = await client.post(
        act.format(loan["id"], "activate"), json={}, headers=market.chain.operator.headers
    )
    assert missing.status_code == 422
    await market.chain.post(
        act.format(loan["id"], "activate"),
        {"pledge_registration_number": "ZX-2026-77"},
        expect=200,
    )
    asset = (
        await client.get(f"/v1/assets/{deal['asset_id']}", headers=market.chain.operator.headers)
    ).json()
    assert {"pledgee_party_id": lender, "registration_number": "ZX-2026-77"} in asset["pledges"]
    await market.chain.post(act.format(insurance["id"], "activate"), None, expect=200)
    # Escrow: deposit 5,000.00 + loan 55,000.00 = 60,000.00, the first instalment.
    contract = (await client.get(f"/v1/deals/{deal_id}/contract", headers=buyer.headers)).json()
    assert contract["in_escrow"] == cny("60000.00") and contract["outstanding"] == cny("140000.00")
    # The buyer misses the second instalment: the guarantee is claimed into escrow.
    claimed = await market.chain.post(act.format(guarantee["id"], "claim"), None, expect=200)
    assert claimed["state"] == "claimed"
    nothing_left = await client.post(
        act.format(insurance["id"], "claim"), headers=market.chain.operator.headers
    )
    assert nothing_left.status_code == 409
    # The escrow holds the price: the deal moves to settling on the next payment... it is all in,
    # so settle (the deal is still `contracted`: no buyer payment was made).
    await market.chain.post(
        f"/v1/deals/{deal_id}/bank-confirmations",
        {"bank_reference": uid("ABC"), "amount": cny("55000.00")},
    )
    repaid = await market.chain.post(
        f"/v1/credit-enhancements/{loan['id']}/repayments",
        {"amount": cny("55000.00")},
        key=buyer,
        expect=200,
    )
    assert repaid["state"] == "released" and repaid["repaid"] == cny("55000.00")
    asset = (
        await client.get(f"/v1/assets/{deal['asset_id']}", headers=market.chain.operator.headers)
    ).json()
    assert asset["pledges"] == []
    # By hand: guarantor 500,000.00 - 140,000.00 claimed; lender 500,000.00 - 55,000.00 lent +
    # 55,000.00 repaid; insurer 500,000.00 + 800.00 premium; buyer 1,000,000.00 - 5,000.00
    # deposit - 800.00 premium + 55,000.00 confirmed - 55,000.00 repaid.
    assert await balance(market, f"{guarantor}.available.CNY") == Decimal("360000.00")
    assert await balance(market, f"{lender}.available.CNY") == Decimal("500000.00")
    assert await balance(market, f"{insurer}.available.CNY") == Decimal("500800.00")
    assert await market.available(buyer.party_id) == Decimal("994200.00")
    assert await balance(market, f"{deal_id}.escrow.CNY") == Decimal(PRICE)


async def test_a_royalty_licence_pays_revenue_times_the_rate_after_its_trigger_date(
    market: Market, client
):
    deal, buyer = await awarded(market)
    seller = deal["seller_party_id"]
    trigger = market.clock.now().date() + timedelta(days=30)
    await market.chain.post(
        f"/v1/deals/{deal['id']}/contract",
        {
            "contract_type": "licence",
            "payment_shape": "royalty",
            "royalty_rate": "0.05",
            "royalty_trigger_date": trigger.isoformat(),
            "schedule": schedule(market, PRICE),
        },
    )
    reports = f"/v1/deals/{deal['id']}/royalty-reports"
    early = await client.post(
        reports,
        json={
            "period_start": trigger.isoformat(),
            "period_end": trigger.isoformat(),
            "revenue": cny("1.00"),
        },
        headers=buyer.headers,
    )
    assert early.status_code == 409 and early.json()["code"] == "royalty_not_due"  # not settled
    await market.chain.post(
        f"/v1/deals/{deal['id']}/bank-confirmations",
        {"bank_reference": uid("CCB"), "amount": cny("1195000.00")},
    )
    await market.chain.post(
        f"/v1/deals/{deal['id']}/payments", {"amount": cny("195000.00")}, key=buyer
    )
    await market.chain.post(f"/v1/deals/{deal['id']}/settlement", None)
    seller_after_price = await balance(market, f"{seller}.available.CNY")
    before = {
        "period_start": (trigger - timedelta(days=40)).isoformat(),
        "period_end": (trigger - timedelta(days=1)).isoformat(),
        "revenue": cny("100.00"),
    }
    refused = await client.post(reports, json=before, headers=buyer.headers)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "before_trigger_date"
    quarter = {
        "period_start": trigger.isoformat(),
        "period_end": (trigger + timedelta(days=90)).isoformat(),
        "revenue": cny("1000000.00"),
    }
    paid = await market.chain.post(reports, quarter, key=buyer)
    # By hand: royalty 5% of 1,000,000.00 = 50,000.00; the fee (1.5% = 750.00) is raised to the
    # minimum of 1,000.00; no reward policy, so the seller gets 49,000.00.
    assert paid["royalty"] == cny("50000.00")
    assert await balance(market, f"{seller}.available.CNY") - seller_after_price == Decimal(
        "49000.00"
    )
    assert await balance(market, f"{deal['id']}.escrow.CNY") == 0
    overlap = await client.post(reports, json=quarter, headers=buyer.headers)
    assert overlap.status_code == 422
    listed = (await client.get(reports, headers=buyer.headers)).json()
    assert [r["royalty"] for r in listed] == [cny("50000.00")]


async def test_a_milestone_releases_its_part_of_escrow_and_the_fee_adds_up_to_the_whole(
    market: Market, client
):
    deal, buyer = await awarded(market)
    seller = deal["seller_party_id"]
    plan = schedule(market, "60000.00", "140000.00")
    plan[0]["milestone"] = True
    contract = await market.chain.post(
        f"/v1/deals/{deal['id']}/contract",
        {"contract_type": "development", "payment_shape": "instalments", "schedule": plan},
    )
    assert [i["milestone"] for i in contract["schedule"]] == [True, False]
    await market.chain.post(
        f"/v1/deals/{deal['id']}/bank-confirmations",
        {"bank_reference": uid("SPDB"), "amount": cny("195000.00")},
    )
    settlement = f"/v1/deals/{deal['id']}/settlement"
    await market.chain.post(
        f"/v1/deals/{deal['id']}/payments", {"amount": cny("50000.00")}, key=buyer
    )
    not_yet = await client.post(settlement, headers=market.chain.operator.headers)
    assert not_yet.status_code == 409  # 55,000.00 in escrow: the milestone is not reached
    await market.chain.post(
        f"/v1/deals/{deal['id']}/payments", {"amount": cny("5000.00")}, key=buyer
    )
    first = await market.chain.post(settlement, None)
    # By hand: the fee on the whole 200,000.00 is 3,000.00; the milestone releases 60,000.00,
    # which carries 60/200 of the fee, 900.00; the seller gets 59,100.00.
    assert first["complete"] is False and first["total"] == cny("60000.00")
    assert first["fee"] == cny("900.00")
    assert await balance(market, f"{seller}.available.CNY") == Decimal("59100.00")
    assert (await market.deal(deal["id"]))["state"] == "settling"
    again = await market.chain.post(settlement, None, expect=200)  # nothing more is due yet
    assert again["total"] == cny("60000.00")
    await market.chain.post(
        f"/v1/deals/{deal['id']}/payments", {"amount": cny("140000.00")}, key=buyer
    )
    done = await market.chain.post(settlement, None)
    # The second part: 140,000.00 with the rest of the fee, 2,100.00; the seller 137,900.00.
    assert done["complete"] is True and [p["fee"] for p in done["parts"]] == [
        cny("900.00"),
        cny("2100.00"),
    ]
    assert done["total"] == cny(PRICE) and done["fee"] == cny("3000.00")
    assert await balance(market, f"{seller}.available.CNY") == Decimal("197000.00")
    assert await balance(market, f"{deal['id']}.escrow.CNY") == 0
    assert (await market.deal(deal["id"]))["state"] == "settled"
