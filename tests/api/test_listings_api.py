"""Listing, public notice and bidding through the API: deals walked from `priced` to `awarded`
or `unsold` by each method, with every deposit checked in the ledger."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from exchange.auth.service import Role
from tests.conftest import new_key
from tests.factories import DEPOSIT, FUNDS, PROBLEM, Market, cny


async def test_english_auction_from_listing_to_award(market: Market, client):
    deal, listing = await market.listed(
        "english", auction={"duration_s": 3600, "soft_close_s": 300, "hard_close_after_s": 600}
    )
    assert listing["status"] == "notice" and listing["reserve"] == cny(deal["appraised"])
    assert (await market.deal(deal["id"]))["state"] == "listed"
    # The public view (no key) holds no reserve.
    public = (await client.get(f"/v1/listings/{listing['id']}")).json()
    assert "reserve" not in public and public["listing_price"] == cny(deal["appraised"])

    a, b, c = [await market.bidder() for _ in range(3)]
    for key in (a, b, c):
        intent = await market.register(listing["id"], key)
        assert intent["status"] == "held" and intent["deposit"] == cny(DEPOSIT)
        assert await market.available(key.party_id) == Decimal(FUNDS) - Decimal(DEPOSIT)
    again = await market.register(listing["id"], a, expect=200)
    assert again["status"] == "held"
    deposit_account = await market.chain.balance(f"{listing['id']}.deposit.CNY")
    assert Decimal(deposit_account["credits_pending"]["amount"]) == 3 * Decimal(DEPOSIT)

    opened = await market.end_notice(listing)
    assert opened["status"] == "bidding" and opened["auction"]["method"] == "english"
    assert (await market.deal(deal["id"]))["state"] == "bidding"
    start = Decimal(deal["appraised"])

    low = await market.bid(listing["id"], a, str(start - 1), expect=409)
    assert low["code"] == "bid_too_low" and low["minimum"] == int(start * 100)
    first = await market.bid(listing["id"], a, str(start))
    assert first["accepted"][0]["bidder"] == 1 and first["auction"]["leading_bidder"] == 1
    self_outbid = await market.bid(listing["id"], a, str(start + 2000), expect=409)
    assert self_outbid["code"] == "already_leading"
    # B leaves a proxy maximum; C's bid is answered by B's proxy inside the same step.
    await market.bid(listing["id"], b, str(start + 1000), max_amount=cny(start + 5000))
    answered = await market.bid(listing["id"], c, str(start + 2000))
    amounts = [Decimal(x["amount"]["amount"]) for x in answered["accepted"]]
    assert amounts == [start + 2000, start + 3000]
    assert answered["accepted"][1]["auto"] is True and answered["auction"]["leading_bidder"] == 2
    # C bids past B's maximum and leads.
    top = await market.bid(listing["id"], c, str(start + 6000))
    assert top["auction"]["leading_bidder"] == 3

    # Soft close: a bid in the last 300 s moves the close by 300 s, never past the hard close.
    closes_at = datetime.fromisoformat(top["auction"]["closes_at"])
    market.clock.advance(closes_at - market.clock.now() - timedelta(seconds=100))
    late = await market.bid(listing["id"], a, str(start + 7000))
    assert datetime.fromisoformat(late["auction"]["closes_at"]) == closes_at + timedelta(
        seconds=300
    )
    hard = datetime.fromisoformat(late["auction"]["hard_close_at"])
    assert hard == closes_at + timedelta(seconds=600)
    extended = datetime.fromisoformat(late["auction"]["closes_at"])
    market.clock.advance(extended - market.clock.now() - timedelta(seconds=10))
    sniper = await market.bid(listing["id"], b, str(start + 20000))
    assert datetime.fromisoformat(sniper["auction"]["closes_at"]) == hard
    public_bids = (await client.get(f"/v1/listings/{listing['id']}/bids")).json()
    assert [x["seq"] for x in public_bids["items"]] == list(range(1, 8))
    assert all("party" not in str(x) for x in public_bids["items"])
    assert "reserve" not in str(public_bids) and "reserve_met': None" not in str(public_bids)

    market.clock.advance(hard - market.clock.now() + timedelta(seconds=1))
    closed = await market.bid(listing["id"], c, str(start + 30000), expect=409)
    assert closed["code"] == "auction_closed"

    done = await market.get(listing["id"])
    assert done["status"] == "awarded" and done["auction"]["reserve_met"] is True
    assert done["award_price"] == cny(start + 20000)
    awarded = await market.deal(deal["id"])
    assert awarded["state"] == "awarded" and awarded["buyer_party_id"] == b.party_id
    assert awarded["award_price"] == cny(start + 20000) and awarded["winning_bid_id"]
    escrow = await market.chain.balance(f"{deal['id']}.escrow.CNY")
    assert escrow["credits_posted"] == cny(DEPOSIT)
    assert await market.available(b.party_id) == Decimal(FUNDS) - Decimal(DEPOSIT)
    for loser in (a, c):
        assert await market.available(loser.party_id) == Decimal(FUNDS)
    intents = (
        await client.get(
            f"/v1/listings/{listing['id']}/intents", headers=market.chain.operator.headers
        )
    ).json()
    assert sorted(i["status"] for i in intents) == ["applied", "released", "released"]
    assert all(i["resolved_at"] for i in intents)


async def test_one_qualified_party_gets_a_negotiated_award_at_the_listing_price(market: Market):
    deal, listing = await market.listed("negotiated", reserve=None)
    buyer = await market.bidder()
    await market.register(listing["id"], buyer)
    done = await market.end_notice(listing)
    assert done["status"] == "awarded" and done["auction"] is None
    awarded = await market.deal(deal["id"])
    assert awarded["state"] == "awarded" and awarded["buyer_party_id"] == buyer.party_id
    assert awarded["award_price"] == cny(deal["appraised"]) and awarded["winning_bid_id"] is None
    escrow = await market.chain.balance(f"{deal['id']}.escrow.CNY")
    assert escrow["credits_posted"] == cny(DEPOSIT)


async def test_no_party_extends_then_goes_unsold_and_a_low_relisting_needs_approval(
    market: Market, operator
):
    deal, listing = await market.listed(extensions_max=1, extension_working_days=5)
    extended = await market.end_notice(listing)
    assert extended["status"] == "notice" and extended["extensions_used"] == 1
    assert extended["notice_ends_at"] > listing["notice_ends_at"]
    unsold = await market.end_notice(extended)
    assert unsold["status"] == "unsold"
    assert (await market.deal(deal["id"]))["state"] == "unsold"

    low = Decimal(deal["appraised"]) * Decimal("0.8")
    body = {
        "deal_id": deal["id"],
        "listing_price": cny(low),
        "reserve": cny(low),
        "deposit": cny(DEPOSIT),
    }
    seller_key = await market.chain.client.post("/v1/listings", json=body, headers=operator.headers)
    assert seller_key.status_code == 422
    assert seller_key.json()["errors"][0]["code"] == "approval_required"
    relisted = await market.chain.post(
        "/v1/listings", {**body, "below_appraisal_reason": "no interest at the appraised value"}
    )
    assert relisted["round"] == 2 and relisted["status"] == "notice"
    assert relisted["below_appraisal_approval"]["reason"] == "no interest at the appraised value"
    assert (await market.deal(deal["id"]))["listing_id"] == relisted["id"]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"notice_working_days": 19}, "notice_too_short"),
        ({"reserve": None}, "reserve_required"),
        ({"extensions_max": 1, "extension_working_days": 4}, "extension_too_short"),
    ],
)
async def test_listing_terms_against_the_rules(market: Market, change, code):
    deal = await market.chain.priced_deal("english")
    body = {
        "deal_id": deal["id"],
        "listing_price": cny(deal["appraised"]),
        "reserve": cny(deal["appraised"]),
        "deposit": cny(DEPOSIT),
        **change,
    }
    response = await market.client.post(
        "/v1/listings", json=body, headers=market.chain.operator.headers
    )
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    assert code in [e["code"] for e in response.json()["errors"]]
    below = {**body, **change, "listing_price": cny(Decimal(deal["appraised"]) - 1)}
    response = await market.client.post(
        "/v1/listings", json=below, headers=market.chain.operator.headers
    )
    assert "below_appraised_value" in [e["code"] for e in response.json()["errors"]]
    assert (await market.deal(deal["id"]))["state"] == "priced"


async def test_registration_needs_funds_eligibility_and_an_open_notice(market: Market):
    _, listing = await market.listed(eligibility={"party_kinds": ["university"]})
    poor = await market.bidder(funds="100.00")
    refused = await market.client.post(
        f"/v1/listings/{listing['id']}/intents", headers=poor.headers
    )
    assert refused.status_code == 403 and refused.json()["code"] == "not_eligible"
    _, open_listing = await market.listed()
    refused = await market.client.post(
        f"/v1/listings/{open_listing['id']}/intents", headers=poor.headers
    )
    assert refused.status_code == 409 and refused.json()["code"] == "exceeds_credits"
    assert await market.available(poor.party_id) == Decimal("100.00")
    await market.end_notice(open_listing)
    late = await market.bidder()
    refused = await market.client.post(
        f"/v1/listings/{open_listing['id']}/intents", headers=late.headers
    )
    assert refused.status_code == 409 and refused.json()["code"] == "notice_ended"


async def test_sealed_second_price_bids_stay_hidden_until_close(market: Market, client):
    deal, listing = await market.listed("sealed_second_price")
    a, b, c = [await market.bidder() for _ in range(3)]
    for key in (a, b, c):
        await market.register(listing["id"], key)
    await market.end_notice(listing)
    start = Decimal(deal["appraised"])
    await market.bid(listing["id"], a, str(start + 5000))
    await market.bid(listing["id"], b, str(start + 9000))
    await market.bid(listing["id"], a, str(start + 12000))  # a revision
    await market.bid(listing["id"], c, str(start + 7000))
    for viewer in (None, c):
        headers = viewer.headers if viewer else {}
        page = (await client.get(f"/v1/listings/{listing['id']}/bids", headers=headers)).json()
        others = [x for x in page["items"] if not x["own"]]
        assert others and all(x["amount"] is None for x in others)
        view = (await client.get(f"/v1/listings/{listing['id']}", headers=headers)).json()
        assert view["auction"]["current_price"] is None
        for amount in (start + 5000, start + 9000, start + 12000):
            assert f"{amount:.2f}" not in str(page) + str(view)
    own = (await client.get(f"/v1/listings/{listing['id']}/bids", headers=a.headers)).json()
    assert [x["amount"] for x in own["items"] if x["own"]] == [
        cny(start + 5000),
        cny(start + 12000),
    ]

    market.clock.advance(timedelta(hours=1, seconds=1))
    done = await market.get(listing["id"])
    assert done["status"] == "awarded" and done["award_price"] == cny(start + 9000)
    awarded = await market.deal(deal["id"])
    assert awarded["buyer_party_id"] == a.party_id
    after = (await client.get(f"/v1/listings/{listing['id']}/bids")).json()
    assert all(x["amount"] is not None for x in after["items"])


async def test_dutch_clock_steps_down_and_the_first_acceptance_wins(market: Market):
    deal, listing = await _dutch(market)
    a, b = [await market.bidder() for _ in range(2)]
    for key in (a, b):
        await market.register(listing["id"], key)
    opened = await market.end_notice(listing)
    start = Decimal(deal["appraised"]) + 10000
    assert opened["auction"]["current_price"] == cny(start)
    market.clock.advance(timedelta(seconds=125))  # two steps down
    view = await market.get(listing["id"])
    assert view["auction"]["current_price"] == cny(start - 4000)
    refused = await market.bid(listing["id"], a, str(start - 5000), expect=409)
    assert refused["code"] == "bid_too_low"
    accepted = await market.bid(listing["id"], b, str(start - 4000))
    assert accepted["auction"]["status"] == "closed"
    awarded = await market.deal(deal["id"])
    assert awarded["state"] == "awarded" and awarded["award_price"] == cny(start - 4000)
    assert awarded["buyer_party_id"] == b.party_id
    late = await market.bid(listing["id"], a, str(start), expect=409)
    assert late["code"] == "auction_closed"


async def _dutch(market: Market) -> tuple[dict[str, Any], dict[str, Any]]:
    deal = await market.chain.priced_deal("dutch")
    start = Decimal(deal["appraised"]) + 10000
    listing = await market.chain.post(
        "/v1/listings",
        {
            "deal_id": deal["id"],
            "listing_price": cny(start),
            "reserve": cny(deal["appraised"]),
            "deposit": cny(DEPOSIT),
            "auction": {"dutch_step": cny("2000"), "dutch_interval_s": 60},
        },
    )
    return deal, listing


async def test_tender_is_scored_by_its_panel_and_awarded_to_the_best_score(
    market: Market, operator, db, clock
):
    deal, listing = await market.listed(
        "tender",
        auction={
            "criteria": [
                {"name": "technical", "weight_pct": "60"},
                {"name": "price", "weight_pct": "40"},
            ]
        },
    )
    a, b = [await market.bidder() for _ in range(2)]
    for key in (a, b):
        await market.register(listing["id"], key)
    await market.end_notice(listing)
    start = Decimal(deal["appraised"])
    no_proposal = await market.bid(listing["id"], a, str(start), expect=422)
    assert no_proposal["errors"][0]["field"] == "proposal_sha256"
    bid_a = await market.bid(
        listing["id"], a, str(start + 1000), proposal_sha256=await market.chain.evidence()
    )
    bid_b = await market.bid(
        listing["id"], b, str(start + 9000), proposal_sha256=await market.chain.evidence()
    )
    experts = [await new_key(db, clock, Role.operator) for _ in range(2)]
    market.clock.advance(timedelta(hours=1, seconds=1))
    assert (await market.get(listing["id"]))["auction"]["status"] == "scoring"
    panel = await market.chain.post(
        f"/v1/listings/{listing['id']}/panel",
        {"key_ids": [k.token.split(".")[1] for k in experts]},
        expect=200,
    )
    assert len(panel["key_ids"]) == 2
    outsider = await market.client.post(
        f"/v1/listings/{listing['id']}/scores",
        json={"bid_id": bid_a["accepted"][0]["id"], "points": {"technical": 90, "price": 50}},
        headers=operator.headers,
    )
    assert outsider.status_code == 403
    # a: technical 90/80, price 50/60 → 0.6*85 + 0.4*55 = 73; b: 70/70, 90/90 → 42 + 36 = 78.
    scores = {
        (0, "a"): {"technical": 90, "price": 50},
        (1, "a"): {"technical": 80, "price": 60},
        (0, "b"): {"technical": 70, "price": 90},
        (1, "b"): {"technical": 70, "price": 90},
    }
    ids = {"a": bid_a["accepted"][0]["id"], "b": bid_b["accepted"][0]["id"]}
    result: dict[str, Any] = {}
    for (expert, bidder), points in scores.items():
        result = await market.chain.post(
            f"/v1/listings/{listing['id']}/scores",
            {"bid_id": ids[bidder], "points": points},
            key=experts[expert],
            expect=200,
        )
    assert result["missing"] == 0 and result["status"] == "closed"
    assert [(r["bid_id"], r["weighted_score"]) for r in result["ranking"]] == [
        (ids["b"], "78.0000"),
        (ids["a"], "73.0000"),
    ]
    awarded = await market.deal(deal["id"])
    assert awarded["state"] == "awarded" and awarded["buyer_party_id"] == b.party_id
    assert awarded["award_price"] == cny(start + 9000)


async def test_withdrawing_a_listed_deal_releases_every_deposit(market: Market):
    deal, listing = await market.listed()
    a, b = [await market.bidder() for _ in range(2)]
    for key in (a, b):
        await market.register(listing["id"], key)
    withdrawn = await market.chain.act(deal["id"], "withdraw", {"reason": "seller changed mind"})
    assert withdrawn["state"] == "withdrawn"
    for key in (a, b):
        assert await market.available(key.party_id) == Decimal(FUNDS)
    hidden = await market.client.get(f"/v1/listings/{listing['id']}")
    assert hidden.status_code == 404


async def test_bid_stream_pushes_bids_then_the_close(market: Market, client):
    deal, listing = await market.listed("english")
    a, b = [await market.bidder() for _ in range(2)]
    for key in (a, b):
        await market.register(listing["id"], key)
    await market.end_notice(listing)
    start = Decimal(deal["appraised"])
    await market.bid(listing["id"], a, str(start))
    await market.bid(listing["id"], b, str(start + 1000))
    market.clock.advance(timedelta(hours=2))
    response = await client.get(f"/v1/listings/{listing['id']}/bids/stream?wait_s=2")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [block for block in response.text.split("\n\n") if block.strip()]
    assert [e.splitlines()[0] for e in events[:2]] == ["id: 1", "id: 2"]
    assert events[-1].startswith("event: close") and '"reserve_met":true' in events[-1]


async def test_unknown_listing_and_bad_bids_are_problems(market: Market, client):
    missing = await client.get("/v1/listings/lst_missing")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    key = await market.bidder()
    bad = await client.post(
        "/v1/listings/lst_missing/bids",
        json={"amount": {"amount": "1.001", "currency": "CNY"}},
        headers=key.headers,
    )
    assert bad.status_code == 422 and bad.json()["errors"]
    not_registered = await client.post(
        "/v1/listings/lst_missing/bids", json={"amount": cny("100")}, headers=key.headers
    )
    assert not_registered.status_code == 404


async def test_a_docking_interest_opens_a_negotiated_deal(market: Market, client):
    deal = await market.chain.priced_deal("negotiated")
    demander = await market.bidder()
    demand = await market.chain.post(
        "/v1/demands",
        {"title": "固态电解质", "description": "solid electrolyte for batteries"},
        key=demander,
    )
    await market.chain.post(
        f"/v1/demands/{demand['id']}/interests", {"deal_id": deal["id"]}, key=demander
    )
    path = f"/v1/demands/{demand['id']}/interests/{deal['id']}/actions/register_intent"
    not_listed = await client.post(path, headers=demander.headers)
    assert not_listed.status_code == 409 and not_listed.json()["state"] == "priced"
    listing = await market.chain.post(
        "/v1/listings",
        {"deal_id": deal["id"], "listing_price": cny(deal["appraised"]), "deposit": cny(DEPOSIT)},
    )
    intent = await market.chain.post(path, None, key=demander)
    assert intent["listing_id"] == listing["id"] and intent["status"] == "held"
    stranger = await market.bidder()
    hidden = await client.post(path, headers=stranger.headers)
    assert hidden.status_code == 404
    await market.end_notice(listing)
    awarded = await market.deal(deal["id"])
    assert awarded["state"] == "awarded" and awarded["buyer_party_id"] == demander.party_id
    assert awarded["award_price"] == cny(deal["appraised"])


async def test_a_tender_bid_below_the_reserve_does_not_win_whatever_its_score(
    market: Market, db, clock
):
    deal = await market.chain.priced_deal("tender")
    start = Decimal(deal["appraised"])
    listing = await market.chain.post(
        "/v1/listings",
        {
            "deal_id": deal["id"],
            "listing_price": cny(start),
            "reserve": cny(start + 5000),
            "deposit": cny(DEPOSIT),
            "auction": {"criteria": [{"name": "technical", "weight_pct": "100"}]},
        },
    )
    a, b = [await market.bidder() for _ in range(2)]
    for key in (a, b):
        await market.register(listing["id"], key)
    await market.end_notice(listing)
    cheap = await market.bid(
        listing["id"], a, str(start + 1000), proposal_sha256=await market.chain.evidence()
    )
    dear = await market.bid(
        listing["id"], b, str(start + 6000), proposal_sha256=await market.chain.evidence()
    )
    market.clock.advance(timedelta(hours=1, seconds=1))
    expert = await new_key(db, clock, Role.operator)
    await market.chain.post(
        f"/v1/listings/{listing['id']}/panel", {"key_ids": [expert.token.split(".")[1]]}, expect=200
    )
    for placed, points in ((cheap, 95), (dear, 60)):
        result = await market.chain.post(
            f"/v1/listings/{listing['id']}/scores",
            {"bid_id": placed["accepted"][0]["id"], "points": {"technical": points}},
            key=expert,
            expect=200,
        )
    assert result["ranking"][0]["bid_id"] == cheap["accepted"][0]["id"]  # best scored...
    awarded = await market.deal(deal["id"])  # ...but below the reserve
    assert awarded["buyer_party_id"] == b.party_id and awarded["award_price"] == cny(start + 6000)


async def test_amending_the_deposit_restarts_the_notice_and_parties_register_again(
    market: Market, client
):
    deal, listing = await market.listed()
    bidder = await market.bidder()
    first = await market.register(listing["id"], bidder)
    market.clock.advance(timedelta(days=3))
    body = {
        "listing_price": cny(deal["appraised"]),
        "reserve": cny(deal["appraised"]),
        "deposit": cny("8000.00"),
    }
    stale = await client.put(
        f"/v1/listings/{listing['id']}",
        json=body,
        headers={**market.chain.operator.headers, "If-Match": '"0"'},
    )
    assert stale.status_code == 412
    amended = await client.put(
        f"/v1/listings/{listing['id']}",
        json=body,
        headers={**market.chain.operator.headers, "If-Match": f'"{listing["version"]}"'},
    )
    assert amended.status_code == 200, amended.text
    assert amended.json()["notice_ends_at"] > listing["notice_ends_at"]
    assert amended.json()["deposit"] == cny("8000.00")
    assert await market.available(bidder.party_id) == Decimal(FUNDS)  # released
    again = await market.register(listing["id"], bidder)
    assert again["id"] == first["id"] and again["deposit"] == cny("8000.00")
    assert again["deposit_hold_id"] != first["deposit_hold_id"] and again["status"] == "held"
    assert await market.available(bidder.party_id) == Decimal(FUNDS) - Decimal("8000.00")


async def test_a_sealed_auction_withdrawn_mid_bidding_keeps_its_bids_sealed(market: Market, client):
    deal, listing = await market.listed("sealed_first_price")
    a, b = [await market.bidder() for _ in range(2)]
    for key in (a, b):
        await market.register(listing["id"], key)
    await market.end_notice(listing)
    await market.bid(listing["id"], a, str(Decimal(deal["appraised"]) + 3000))
    withdrawn = await market.chain.act(deal["id"], "withdraw", {"reason": "seller withdrew"})
    assert withdrawn["state"] == "withdrawn"
    for path in ("bids", "bids/stream?wait_s=0"):
        hidden = await client.get(f"/v1/listings/{listing['id']}/{path}", headers=b.headers)
        assert hidden.status_code == 404
    for key in (a, b):
        assert await market.available(key.party_id) == Decimal(FUNDS)


async def test_a_proxy_maximum_below_the_bid_and_a_zero_weight_criterion_are_422(
    market: Market, client
):
    deal, listing = await market.listed("english")
    a, b = [await market.bidder() for _ in range(2)]
    for key in (a, b):
        await market.register(listing["id"], key)
    await market.end_notice(listing)
    start = Decimal(deal["appraised"])
    bad = await market.bid(listing["id"], a, str(start + 2000), expect=422, max_amount=cny(start))
    assert bad["errors"][0]["field"] == "max_amount"
    tender = await market.chain.priced_deal("tender")
    zero = await client.post(
        "/v1/listings",
        json={
            "deal_id": tender["id"],
            "listing_price": cny(tender["appraised"]),
            "reserve": cny(tender["appraised"]),
            "deposit": cny(DEPOSIT),
            "auction": {
                "criteria": [
                    {"name": "technical", "weight_pct": "100"},
                    {"name": "price", "weight_pct": "0"},
                ]
            },
        },
        headers=market.chain.operator.headers,
    )
    assert zero.status_code == 422 and zero.json()["errors"][0]["code"] == "criteria_invalid"


async def test_the_public_page_shows_each_listing_as_its_own_view_does(market: Market, client):
    """The page loads its listings' deals, auctions and bidders together: what it shows of each
    is what the listing's own public view shows, in notice and in bidding with a leader."""
    deal, in_bidding = await market.listed("english")
    a, b = await market.bidder(), await market.bidder()
    for key in (a, b):
        await market.register(in_bidding["id"], key)
    await market.end_notice(in_bidding)
    await market.bid(in_bidding["id"], a, deal["appraised"])
    await market.bid(in_bidding["id"], b, str(Decimal(deal["appraised"]) + 1000))
    _, in_notice = await market.listed("english")  # published after the clock moved on

    shown = {}
    for status in ("notice", "bidding"):
        cursor = None
        while True:  # the page holds every published listing of the run: walk it all
            params = {"status": status, "limit": 200} | ({"cursor": cursor} if cursor else {})
            page = (await client.get("/v1/listings", params=params)).json()
            shown |= {item["id"]: item for item in page["items"]}
            if (cursor := page["next_cursor"]) is None:
                break
    for listing in (in_notice, in_bidding):
        alone = (await client.get(f"/v1/listings/{listing['id']}")).json()
        assert shown[listing["id"]] == alone
    assert shown[in_bidding["id"]]["auction"]["leading_bidder"] == 2
    assert shown[in_notice["id"]]["auction"] is None
