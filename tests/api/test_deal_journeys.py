"""Whole deals through the API, one per trade method and one across currencies: priced, listed,
registered, bid, awarded, contracted, paid, settled and closed, then every account the deal
touched checked against figures worked out by hand in the test."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from exchange.auth.service import Role
from exchange.listings.calendar import EXCHANGE_TZ
from tests.conftest import Key, new_key, new_member
from tests.factories import Market, uid

D = Decimal
OBSOLESCENCE = "0.2"  # every deal is appraised by cost: 80% of its replacement cost
EXCHANGE_ACCOUNTS = (
    "exchange.fee_revenue.{currency}",
    "exchange.external_clearing.{currency}",
    "exchange.fx_position.{currency}",
)


def money(amount: Decimal | str | int, currency: str = "CNY") -> dict[str, str]:
    return {"amount": f"{Decimal(amount):.2f}", "currency": currency}


def currency_of(account_id: str) -> str:
    return account_id[-3:]  # every account id here ends with its currency


class Journey:
    """One deal's walk: a clearing account that funds its bidders, the exchange's accounts as
    they stood before it, and the ledger read back at the end."""

    def __init__(self, market: Market, currency: str = "CNY") -> None:
        self.market = market
        self.chain = market.chain
        self.currency = currency
        self.clearing = f"{uid('clr')}-{currency}"
        self.before: dict[str, Decimal] = {}

    async def start(self, *currencies: str) -> Journey:
        await self.chain.post(
            "/v1/ledger/accounts",
            {"id": self.clearing, "currency": self.currency, "code": "external_clearing"},
        )
        for currency in currencies or (self.currency,):
            for template in EXCHANGE_ACCOUNTS:
                account_id = template.format(currency=currency)
                self.before[account_id] = await self.net(account_id)
        return self

    async def net(self, account_id: str) -> Decimal:
        """Posted credits less posted debits; no hold left pending; 0 if never opened."""
        response = await self.market.client.get(
            f"/v1/ledger/accounts/{account_id}", headers=self.chain.operator.headers
        )
        if response.status_code == 404:
            return D(0)
        assert response.status_code == 200, response.text
        account = response.json()
        assert D(account["debits_pending"]["amount"]) == 0, account
        assert D(account["credits_pending"]["amount"]) == 0, account
        return D(account["credits_posted"]["amount"]) - D(account["debits_posted"]["amount"])

    async def check(self, expected: dict[str, Decimal]) -> None:
        """Every account's change over the journey is the figure worked out by hand, and the
        figures themselves sum to zero in each currency (no account left out)."""
        by_currency: dict[str, Decimal] = defaultdict(D)
        for account_id, change in expected.items():
            by_currency[currency_of(account_id)] += change
        assert all(total == 0 for total in by_currency.values()), dict(by_currency)
        actual = {
            account_id: await self.net(account_id) - self.before.get(account_id, D(0))
            for account_id in expected
        }
        assert actual == expected

    async def bidder(self, funds: Decimal) -> Key:
        key = await new_member(self.market.db, self.market.clock)
        assert key.party_id is not None
        await self.chain.post(
            f"/v1/parties/{key.party_id}/accounts", {"currency": self.currency}, expect=200
        )
        await self.chain.post(
            "/v1/ledger/transfers",
            {
                "id": uid("fund"),
                "debit_account_id": self.clearing,
                "credit_account_id": available(key.party_id, self.currency),
                "amount": money(funds, self.currency),
                "code": "funding",
            },
        )
        return key

    async def priced(self, trade_method: str, replacement_cost: Decimal) -> dict[str, Any]:
        """A deal walked to `priced`, appraised by cost at 80% of `replacement_cost`."""
        seller = await self.chain.party()
        asset = await self.chain.asset({seller: "100"})
        deal = await self.chain.deal(
            asset["id"], seller, trade_method=trade_method, currency=self.currency
        )
        await self.chain.act(deal["id"], "submit")
        await self.chain.check_all(deal["id"])
        await self.chain.act(deal["id"], "confirm")
        valuation = await self.chain.post(
            f"/v1/deals/{deal['id']}/valuations",
            {
                "method": "cost",
                "inputs": {
                    "replacement_cost": int(replacement_cost * 100),
                    "obsolescence_rate": OBSOLESCENCE,
                },
            },
        )
        appraised = money(replacement_cost * (1 - D(OBSOLESCENCE)), self.currency)
        assert valuation["value"] == appraised
        priced = await self.chain.act(
            deal["id"],
            "price",
            {"valuation_id": valuation["id"], "listing_price": appraised, "reserve": appraised},
        )
        assert priced["state"] == "priced" and priced["appraised_value"] == appraised
        return priced

    async def listed(
        self,
        deal: dict[str, Any],
        price: Decimal,
        deposit: Decimal,
        reserve: Decimal | None = None,
        **terms: Any,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "deal_id": deal["id"],
            "listing_price": money(price, self.currency),
            "deposit": money(deposit, self.currency),
            **terms,
        }
        if reserve is not None:
            body["reserve"] = money(reserve, self.currency)
        listing = await self.chain.post("/v1/listings", body)
        assert listing["status"] == "notice"
        assert (await self.market.deal(deal["id"]))["state"] == "listed"
        return listing

    async def register(self, listing: dict[str, Any], *keys: Key) -> None:
        """Each party's intent, its deposit held from its available account."""
        deposit = D(listing["deposit"]["amount"])
        for key in keys:
            intent = await self.market.register(listing["id"], key)
            assert intent["status"] == "held" and intent["deposit"] == listing["deposit"]
        held = await self.chain.balance(deposit_account(listing["id"], self.currency))
        assert D(held["credits_pending"]["amount"]) == len(keys) * deposit

    async def bid(self, listing_id: str, key: Key, amount: Decimal, **extra: Any) -> dict[str, Any]:
        return await self.chain.post(
            f"/v1/listings/{listing_id}/bids",
            {"amount": money(amount, self.currency), **extra},
            key=key,
        )

    async def close(self, listing_id: str) -> dict[str, Any]:
        """The auction's clock run past its close; the listing as it then reads."""
        view = await self.market.get(listing_id)
        closes_at = datetime.fromisoformat(view["auction"]["closes_at"])
        self.market.clock.advance(closes_at - self.market.clock.now() + timedelta(seconds=1))
        return await self.market.get(listing_id)

    async def awarded(
        self, deal: dict[str, Any], listing: dict[str, Any], buyer: Key, price: Decimal
    ) -> None:
        """The award: the buyer and price on the deal, the winner's deposit in escrow and the
        listing's deposit account emptied (the winner's hold posted in and moved out)."""
        done = await self.market.deal(deal["id"])
        assert done["state"] == "awarded" and done["buyer_party_id"] == buyer.party_id
        assert done["award_price"] == money(price, self.currency)
        deposit = listing["deposit"]
        escrow = await self.chain.balance(escrow_account(deal["id"], self.currency))
        assert escrow["credits_posted"] == deposit
        held = await self.chain.balance(deposit_account(listing["id"], self.currency))
        assert held["credits_posted"] == held["debits_posted"] == deposit

    async def contract(self, deal_id: str, *amounts: Decimal, **terms: Any) -> dict[str, Any]:
        """A transfer contract: a lump sum due tomorrow, or instalments due tomorrow and in 180
        days."""
        today = self.market.clock.now().astimezone(EXCHANGE_TZ).date()
        due = [today + timedelta(days=1), today + timedelta(days=180)]
        contract = await self.chain.post(
            f"/v1/deals/{deal_id}/contract",
            {
                "contract_type": "transfer",
                "payment_shape": "lump_sum" if len(amounts) == 1 else "instalments",
                "schedule": [
                    {"due_date": day.isoformat(), "amount": money(amount, self.currency)}
                    for day, amount in zip(due, amounts, strict=False)
                ],
                **terms,
            },
        )
        assert contract["price"] == money(sum(amounts, D(0)), self.currency)
        assert (await self.market.deal(deal_id))["state"] == "contracted"
        return contract

    async def confirm(self, deal_id: str, amount: Decimal) -> None:
        """The bank confirms the buyer's funds arrived."""
        confirmed = await self.chain.post(
            f"/v1/deals/{deal_id}/bank-confirmations",
            {"bank_reference": uid("BANK"), "amount": money(amount, self.currency)},
        )
        assert confirmed["created"] is True

    async def pay(self, deal_id: str, buyer: Key, amount: Decimal, outstanding: Decimal) -> None:
        paid = await self.chain.post(
            f"/v1/deals/{deal_id}/payments", {"amount": money(amount, self.currency)}, key=buyer
        )
        assert paid["outstanding"] == money(outstanding, self.currency)
        assert (await self.market.deal(deal_id))["state"] == "settling"

    async def settle(self, deal_id: str, fee: Decimal, reward_pool: Decimal) -> dict[str, Any]:
        settled = await self.chain.post(f"/v1/deals/{deal_id}/settlement", None)
        assert settled["fee"] == money(fee, self.currency)
        assert settled["reward_pool"] == money(reward_pool, self.currency)
        assert (await self.market.deal(deal_id))["state"] == "settled"
        return settled

    async def closed(self, deal_id: str) -> None:
        """The patent office's registration recorded: the deal is closed."""
        closed = await self.chain.post(
            f"/v1/deals/{deal_id}/actions/record_transfer",
            {
                "registration_number": uid("ZL-TR"),
                "registered_on": self.market.clock.now().date().isoformat(),
                "evidence_sha256": await self.chain.evidence(),
            },
            expect=200,
        )
        assert closed["state"] == "closed"

    async def reward_policy(self, seller: str, pool_pct: str, *share_pcts: str) -> list[str]:
        """The seller's inventors, sharing `pool_pct` of the net by `share_pcts`."""
        inventors = []
        for _ in share_pcts:
            body = {"name": uid("Inventor"), "kind": "individual"}
            inventors.append(str((await self.chain.post("/v1/parties", body))["id"]))
        response = await self.chain.client.put(
            f"/v1/parties/{seller}/reward-policy",
            json={
                "pool_pct": pool_pct,
                "inventors": [
                    {"party_id": p, "share_pct": s}
                    for p, s in zip(inventors, share_pcts, strict=True)
                ],
            },
            headers=self.chain.operator.headers,
        )
        assert response.status_code == 200, response.text
        return inventors


def available(party_id: str, currency: str = "CNY") -> str:
    return f"{party_id}.available.{currency}"


def reward(party_id: str, currency: str = "CNY") -> str:
    return f"{party_id}.reward.{currency}"


def escrow_account(deal_id: str, currency: str = "CNY") -> str:
    return f"{deal_id}.escrow.{currency}"


def deposit_account(listing_id: str, currency: str = "CNY") -> str:
    return f"{listing_id}.deposit.{currency}"


FEE = "exchange.fee_revenue.CNY"
BANK = "exchange.external_clearing.CNY"
INCREMENTS_10000 = [{"from_price": money(0), "increment": money(10000)}]


async def test_a_negotiated_deal_with_one_party_from_listing_to_closed(market: Market):
    journey = await Journey(market).start()
    deal = await journey.priced("negotiated", D("100000"))  # appraised 80,000.00
    seller = deal["seller_party_id"]
    (inventor,) = await journey.reward_policy(seller, "50", "100")
    listing = await journey.listed(deal, price=D("100000"), deposit=D("10000"))
    buyer = await journey.bidder(D("100000"))
    await journey.register(listing, buyer)
    assert (await market.end_notice(listing))["status"] == "awarded"  # one party: negotiated
    await journey.awarded(deal, listing, buyer, D("100000"))

    contract = await journey.contract(deal["id"], D("100000"))
    assert contract["outstanding"] == money("90000")  # 100,000 - the 10,000 deposit
    await journey.confirm(deal["id"], D("50000"))
    await journey.pay(deal["id"], buyer, D("90000"), outstanding=D("0"))
    # Fee 1.5% of 100,000 = 1,500; net 98,500; the inventor's 50% pool is 49,250 (all of it,
    # one inventor at 100%); the seller keeps 98,500 - 49,250 = 49,250.
    await journey.settle(deal["id"], fee=D("1500"), reward_pool=D("49250"))
    await journey.closed(deal["id"])

    await journey.check(
        {
            journey.clearing: -D("100000"),  # funded the buyer
            available(buyer.party_id): D("50000"),  # 100,000 - price 100,000 + bank 50,000
            BANK: -D("50000"),  # the bank's confirmation
            available(seller): D("49250"),
            reward(inventor): D("49250"),
            FEE: D("1500"),
            escrow_account(deal["id"]): D(0),  # 10,000 deposit + 90,000 paid - 100,000 out
            deposit_account(listing["id"]): D(0),  # 10,000 posted in, 10,000 to escrow
        }
    )


async def test_a_tiny_fixed_price_deal_pays_the_minimum_fee(market: Market):
    journey = await Journey(market).start()
    deal = await journey.priced("fixed_price", D("50000"))  # appraised 40,000.00
    seller = deal["seller_party_id"]
    listing = await journey.listed(deal, price=D("50000"), deposit=D("5000"))
    buyer = await journey.bidder(D("60000"))
    await journey.register(listing, buyer)
    assert (await market.end_notice(listing))["status"] == "awarded"
    await journey.awarded(deal, listing, buyer, D("50000"))

    await journey.contract(deal["id"], D("50000"))
    await journey.confirm(deal["id"], D("20000"))
    await journey.pay(deal["id"], buyer, D("45000"), outstanding=D("0"))
    # Fee 1.5% of 50,000 = 750, below the 1,000 minimum: 1,000; the seller keeps 49,000.
    await journey.settle(deal["id"], fee=D("1000"), reward_pool=D("0"))
    await journey.closed(deal["id"])

    await journey.check(
        {
            journey.clearing: -D("60000"),
            available(buyer.party_id): D("30000"),  # 60,000 - price 50,000 + bank 20,000
            BANK: -D("20000"),
            available(seller): D("49000"),  # 50,000 - fee 1,000
            FEE: D("1000"),
            escrow_account(deal["id"]): D(0),  # 5,000 deposit + 45,000 paid - 50,000 out
            deposit_account(listing["id"]): D(0),
        }
    )


async def test_an_english_auction_with_a_proxy_above_a_million_in_instalments(market: Market):
    journey = await Journey(market).start()
    deal = await journey.priced("english", D("1250000"))  # appraised 1,000,000.00
    seller = deal["seller_party_id"]
    inventor_a, inventor_b = await journey.reward_policy(seller, "70", "60", "40")
    listing = await journey.listed(
        deal,
        price=D("1000000"),
        reserve=D("1000000"),
        deposit=D("100000"),
        increments=INCREMENTS_10000,
    )
    a, b, c = [await journey.bidder(D("2000000")) for _ in range(3)]
    await journey.register(listing, a, b, c)
    assert (await market.end_notice(listing))["status"] == "bidding"

    await journey.bid(listing["id"], a, D("1000000"))
    # B leaves a proxy up to 1,100,000; C's 1,050,000 is answered by B's proxy at 1,060,000.
    await journey.bid(listing["id"], b, D("1010000"), max_amount=money("1100000"))
    answered = await journey.bid(listing["id"], c, D("1050000"))
    assert [x["amount"] for x in answered["accepted"]] == [money("1050000"), money("1060000")]
    assert answered["accepted"][1]["auto"] is True
    top = await journey.bid(listing["id"], c, D("1200000"))  # past B's maximum
    assert top["auction"]["current_price"] == money("1200000")
    assert (await journey.close(listing["id"]))["status"] == "awarded"
    await journey.awarded(deal, listing, c, D("1200000"))

    contract = await journey.contract(deal["id"], D("400000"), D("800000"))
    assert contract["outstanding"] == money("1100000")  # 1,200,000 - the 100,000 deposit
    await journey.confirm(deal["id"], D("300000"))
    await journey.pay(deal["id"], c, D("300000"), outstanding=D("800000"))
    await journey.confirm(deal["id"], D("800000"))
    await journey.pay(deal["id"], c, D("800000"), outstanding=D("0"))
    # Fee: 1.5% of the first 1,000,000 = 15,000, plus 1% of the 200,000 above = 2,000: 17,000.
    # Net 1,183,000; the inventors' 70% is 828,100, split 60/40 as 496,860 and 331,240; the
    # seller keeps 1,183,000 - 828,100 = 354,900.
    await journey.settle(deal["id"], fee=D("17000"), reward_pool=D("828100"))
    await journey.closed(deal["id"])

    await journey.check(
        {
            journey.clearing: -D("6000000"),  # 3 x 2,000,000
            available(a.party_id): D("2000000"),  # lost: its deposit hold voided
            available(b.party_id): D("2000000"),  # lost, its proxy outbid
            available(c.party_id): D("1900000"),  # 2,000,000 - 1,200,000 + bank 1,100,000
            BANK: -D("1100000"),  # 300,000 + 800,000
            available(seller): D("354900"),
            reward(inventor_a): D("496860"),
            reward(inventor_b): D("331240"),
            FEE: D("17000"),
            escrow_account(deal["id"]): D(0),  # 100,000 + 300,000 + 800,000 - 1,200,000
            deposit_account(listing["id"]): D(0),
        }
    )


async def test_a_sealed_first_price_auction_is_won_at_the_highest_bid(market: Market):
    journey = await Journey(market).start()
    deal = await journey.priced("sealed_first_price", D("250000"))  # appraised 200,000.00
    seller = deal["seller_party_id"]
    listing = await journey.listed(deal, price=D("200000"), reserve=D("220000"), deposit=D("20000"))
    a, b, c = [await journey.bidder(D("300000")) for _ in range(3)]
    await journey.register(listing, a, b, c)
    assert (await market.end_notice(listing))["status"] == "bidding"
    await journey.bid(listing["id"], a, D("230000"))
    await journey.bid(listing["id"], b, D("260000"))
    await journey.bid(listing["id"], c, D("250000"))
    await journey.bid(listing["id"], a, D("255000"))  # a revision, still below B
    assert (await journey.close(listing["id"]))["status"] == "awarded"
    await journey.awarded(deal, listing, b, D("260000"))  # B pays its own bid

    await journey.contract(deal["id"], D("260000"))
    await journey.confirm(deal["id"], D("240000"))
    await journey.pay(deal["id"], b, D("240000"), outstanding=D("0"))
    # Fee 1.5% of 260,000 = 3,900; the seller keeps 256,100.
    await journey.settle(deal["id"], fee=D("3900"), reward_pool=D("0"))
    await journey.closed(deal["id"])

    await journey.check(
        {
            journey.clearing: -D("900000"),  # 3 x 300,000
            available(a.party_id): D("300000"),
            available(b.party_id): D("280000"),  # 300,000 - 260,000 + bank 240,000
            available(c.party_id): D("300000"),
            BANK: -D("240000"),
            available(seller): D("256100"),
            FEE: D("3900"),
            escrow_account(deal["id"]): D(0),  # 20,000 + 240,000 - 260,000
            deposit_account(listing["id"]): D(0),
        }
    )


async def test_a_sealed_second_price_auction_pays_the_reserve_and_floors_the_rewards(
    market: Market,
):
    journey = await Journey(market).start()
    deal = await journey.priced("sealed_second_price", D("375000"))  # appraised 300,000.00
    seller = deal["seller_party_id"]
    inventors = await journey.reward_policy(seller, "55.55", "33.34", "33.33", "33.33")
    listing = await journey.listed(deal, price=D("300000"), reserve=D("320000"), deposit=D("30000"))
    a, b, c = [await journey.bidder(D("500000")) for _ in range(3)]
    await journey.register(listing, a, b, c)
    assert (await market.end_notice(listing))["status"] == "bidding"
    await journey.bid(listing["id"], a, D("305000"))
    await journey.bid(listing["id"], b, D("400000"))
    await journey.bid(listing["id"], c, D("315000"))
    assert (await journey.close(listing["id"]))["status"] == "awarded"
    # B wins; the second bid (315,000) is below the 320,000 reserve: B pays the reserve.
    await journey.awarded(deal, listing, b, D("320000"))

    await journey.contract(deal["id"], D("100000"), D("220000"))  # 100,000 >= 30% (96,000)
    await journey.confirm(deal["id"], D("70000"))
    await journey.pay(deal["id"], b, D("70000"), outstanding=D("220000"))
    await journey.confirm(deal["id"], D("220000"))
    await journey.pay(deal["id"], b, D("220000"), outstanding=D("0"))
    # Fee 1.5% of 320,000 = 4,800; net 315,200.00. Pool 55.55% = 175,093.60. Each share
    # floored to a fen: 33.34% = 58,376.2062 -> 58,376.20; 33.33% = 58,358.69688 -> 58,358.69
    # (twice); the 0.02 the floors leave goes to the seller: 315,200.00 - 175,093.60 + 0.02 =
    # 140,106.42.
    await journey.settle(deal["id"], fee=D("4800"), reward_pool=D("175093.60"))
    await journey.closed(deal["id"])

    await journey.check(
        {
            journey.clearing: -D("1500000"),  # 3 x 500,000
            available(a.party_id): D("500000"),
            available(b.party_id): D("470000"),  # 500,000 - 320,000 + bank 290,000
            available(c.party_id): D("500000"),
            BANK: -D("290000"),  # 70,000 + 220,000
            available(seller): D("140106.42"),
            reward(inventors[0]): D("58376.20"),
            reward(inventors[1]): D("58358.69"),
            reward(inventors[2]): D("58358.69"),
            FEE: D("4800"),
            escrow_account(deal["id"]): D(0),  # 30,000 + 70,000 + 220,000 - 320,000
            deposit_account(listing["id"]): D(0),
        }
    )


async def test_a_dutch_clock_is_stopped_two_steps_down(market: Market):
    journey = await Journey(market).start()
    deal = await journey.priced("dutch", D("500000"))  # appraised 400,000.00
    seller = deal["seller_party_id"]
    listing = await journey.listed(
        deal,
        price=D("500000"),
        reserve=D("440000"),  # the clock's floor
        deposit=D("50000"),
        auction={"dutch_step": money("20000"), "dutch_interval_s": 60},
    )
    a, b = [await journey.bidder(D("600000")) for _ in range(2)]
    await journey.register(listing, a, b)
    assert (await market.end_notice(listing))["status"] == "bidding"
    market.clock.advance(timedelta(seconds=125))  # two steps: 500,000 - 2 x 20,000 = 460,000
    assert (await market.get(listing["id"]))["auction"]["current_price"] == money("460000")
    accepted = await journey.bid(listing["id"], b, D("460000"))
    assert accepted["auction"]["status"] == "closed"
    await journey.awarded(deal, listing, b, D("460000"))

    await journey.contract(deal["id"], D("160000"), D("300000"))  # 160,000 >= 30% (138,000)
    await journey.confirm(deal["id"], D("110000"))
    await journey.pay(deal["id"], b, D("110000"), outstanding=D("300000"))
    await journey.confirm(deal["id"], D("300000"))
    await journey.pay(deal["id"], b, D("300000"), outstanding=D("0"))
    # Fee 1.5% of 460,000 = 6,900; the seller keeps 453,100.
    await journey.settle(deal["id"], fee=D("6900"), reward_pool=D("0"))
    await journey.closed(deal["id"])

    await journey.check(
        {
            journey.clearing: -D("1200000"),  # 2 x 600,000
            available(a.party_id): D("600000"),
            available(b.party_id): D("550000"),  # 600,000 - 460,000 + bank 410,000
            BANK: -D("410000"),  # 110,000 + 300,000
            available(seller): D("453100"),
            FEE: D("6900"),
            escrow_account(deal["id"]): D(0),  # 50,000 + 110,000 + 300,000 - 460,000
            deposit_account(listing["id"]): D(0),
        }
    )


async def test_a_tender_is_won_by_the_best_score_not_the_best_price(market: Market, db, clock):
    journey = await Journey(market).start()
    deal = await journey.priced("tender", D("875000"))  # appraised 700,000.00
    seller = deal["seller_party_id"]
    inventors = await journey.reward_policy(seller, "60", "50", "30", "20")
    listing = await journey.listed(
        deal,
        price=D("700000"),
        reserve=D("700000"),
        deposit=D("70000"),
        auction={
            "criteria": [
                {"name": "technical", "weight_pct": "70"},
                {"name": "price", "weight_pct": "30"},
            ]
        },
    )
    a, b = [await journey.bidder(D("1000000")) for _ in range(2)]
    await journey.register(listing, a, b)
    assert (await market.end_notice(listing))["status"] == "bidding"
    bid_a = await journey.bid(
        listing["id"], a, D("720000"), proposal_sha256=await journey.chain.evidence()
    )
    bid_b = await journey.bid(
        listing["id"], b, D("760000"), proposal_sha256=await journey.chain.evidence()
    )
    assert (await journey.close(listing["id"]))["auction"]["status"] == "scoring"
    experts = [await new_key(db, clock, Role.operator) for _ in range(2)]
    await journey.chain.post(
        f"/v1/listings/{listing['id']}/panel",
        {"key_ids": [k.token.split(".")[1] for k in experts]},
        expect=200,
    )
    # A: technical (90 + 80) / 2 = 85, price 60: 0.7 x 85 + 0.3 x 60 = 59.5 + 18 = 77.5.
    # B: technical 70, price 90: 0.7 x 70 + 0.3 x 90 = 49 + 27 = 76.
    scores = [
        (0, bid_a, {"technical": 90, "price": 60}),
        (1, bid_a, {"technical": 80, "price": 60}),
        (0, bid_b, {"technical": 70, "price": 90}),
        (1, bid_b, {"technical": 70, "price": 90}),
    ]
    result: dict[str, Any] = {}
    for expert, placed, points in scores:
        result = await journey.chain.post(
            f"/v1/listings/{listing['id']}/scores",
            {"bid_id": placed["accepted"][0]["id"], "points": points},
            key=experts[expert],
            expect=200,
        )
    assert [r["weighted_score"] for r in result["ranking"]] == ["77.5000", "76.0000"]
    await journey.awarded(deal, listing, a, D("720000"))  # A at its own amount

    await journey.contract(deal["id"], D("720000"))
    await journey.confirm(deal["id"], D("650000"))
    await journey.pay(deal["id"], a, D("650000"), outstanding=D("0"))
    # Fee 1.5% of 720,000 = 10,800; net 709,200; the inventors' 60% is 425,520, split 50/30/20
    # as 212,760, 127,656 and 85,104; the seller keeps 709,200 - 425,520 = 283,680.
    await journey.settle(deal["id"], fee=D("10800"), reward_pool=D("425520"))
    await journey.closed(deal["id"])

    await journey.check(
        {
            journey.clearing: -D("2000000"),  # 2 x 1,000,000
            available(a.party_id): D("930000"),  # 1,000,000 - 720,000 + bank 650,000
            available(b.party_id): D("1000000"),
            BANK: -D("650000"),
            available(seller): D("283680"),
            reward(inventors[0]): D("212760"),
            reward(inventors[1]): D("127656"),
            reward(inventors[2]): D("85104"),
            FEE: D("10800"),
            escrow_account(deal["id"]): D(0),  # 70,000 + 650,000 - 720,000
            deposit_account(listing["id"]): D(0),
        }
    )


async def test_a_usd_deal_pays_its_seller_in_cny_at_the_rate_locked_at_contract(market: Market):
    journey = await Journey(market, "USD").start("USD", "CNY")
    deal = await journey.priced("negotiated", D("100000"))  # appraised USD 80,000.00
    seller = deal["seller_party_id"]
    listing = await journey.listed(deal, price=D("100000"), deposit=D("10000"))
    buyer = await journey.bidder(D("100000"))
    await journey.register(listing, buyer)
    assert (await market.end_notice(listing))["status"] == "awarded"
    await journey.awarded(deal, listing, buyer, D("100000"))

    locked = await journey.chain.post(
        "/v1/ledger/fx-rates", {"base_currency": "USD", "quote_currency": "CNY", "rate": "7.12345"}
    )
    contract = await journey.contract(deal["id"], D("100000"), settlement_currency="CNY")
    assert contract["settlement_currency"] == "CNY" and contract["fx_rate_id"] == locked["id"]
    # A later rate does not move the locked one.
    await journey.chain.post(
        "/v1/ledger/fx-rates", {"base_currency": "USD", "quote_currency": "CNY", "rate": "7.5"}
    )
    await journey.confirm(deal["id"], D("90000"))
    await journey.pay(deal["id"], buyer, D("90000"), outstanding=D("0"))
    # Fee 1.5% of USD 100,000 = USD 1,500; net USD 98,500.00 to the seller, converted at the
    # locked 7.12345: 98,500.00 x 7.12345 = 689,500 + 12,159.825 = CNY 701,659.825, a tie at
    # half a fen rounded half-even to 701,659.82 (half-up would give .83).
    settled = await journey.settle(deal["id"], fee=D("1500"), reward_pool=D("0"))
    assert settled["fx_rate_id"] == locked["id"]
    (seller_leg,) = [leg for leg in settled["legs"] if leg["role"] == "seller"]
    assert seller_leg["account_id"] == available(seller, "CNY")
    assert seller_leg["fx_rate_id"] == locked["id"] and seller_leg["fx_rate"] == "7.12345"
    await journey.closed(deal["id"])

    await journey.check(
        {
            journey.clearing: -D("100000"),  # funded the buyer, USD
            available(buyer.party_id, "USD"): D("90000"),  # 100,000 - 100,000 + bank 90,000
            "exchange.external_clearing.USD": -D("90000"),
            "exchange.fee_revenue.USD": D("1500"),
            escrow_account(deal["id"], "USD"): D(0),  # 10,000 + 90,000 - 1,500 - 98,500
            deposit_account(listing["id"], "USD"): D(0),
            available(seller, "USD"): D(0),  # the seller is paid in CNY only
            "exchange.fx_position.USD": D("98500"),  # takes the seller's USD net
            "exchange.fx_position.CNY": -D("701659.82"),  # pays out its CNY value
            available(seller, "CNY"): D("701659.82"),
        }
    )


async def test_a_settled_contract_has_nothing_outstanding(market: Market):
    journey = await Journey(market).start()
    deal = await journey.priced("negotiated", D("50000"))
    listing = await journey.listed(deal, price=D("50000"), deposit=D("5000"))
    buyer = await journey.bidder(D("50000"))
    await journey.register(listing, buyer)
    await market.end_notice(listing)
    await journey.contract(deal["id"], D("50000"))
    await journey.pay(deal["id"], buyer, D("45000"), outstanding=D("0"))
    path = f"/v1/deals/{deal['id']}/contract"
    paid = (await market.client.get(path, headers=buyer.headers)).json()
    assert paid["in_escrow"] == money("50000") and paid["outstanding"] == money("0")
    await journey.settle(deal["id"], fee=D("1000"), reward_pool=D("0"))
    await journey.closed(deal["id"])
    market.clock.advance(timedelta(days=2))  # the lump sum's due date has passed
    settled = (await market.client.get(path, headers=buyer.headers)).json()
    assert settled["in_escrow"] == money("0")  # paid out
    assert (settled["outstanding"], settled["due_now"]) == (money("0"), money("0"))
