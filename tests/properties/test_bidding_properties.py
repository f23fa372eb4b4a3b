"""Bidding through the API and the ledger, per auction method: the award (winner and price) agrees
with a reference computed from the accepted bids, every deposit stays held until the award and is
then applied (the winner's) or voided (every other), and before the close no endpoint shows a
sealed amount to anyone but its bidder."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st

from exchange.auth.service import Role
from tests.conftest import Key, TestClock, new_key, new_member
from tests.factories import Chain

# Each example moves the session's clock past a public notice (20 working days): few examples,
# and no explain phase, whose many replays would move it years more.
PROPERTY = settings(
    max_examples=8,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FUNDS = 100_000_000  # minor units: each bidder's available balance before it registers
UNIT = 100_000  # 1000.00: the first increment tier, and the step of the strategies' offsets
UPPER_INCREMENT = 250_000  # 2500.00: the increment from three units above the listing price up
DUTCH_STEP = 200_000
DUTCH_INTERVAL_S = 60
DEPOSITS = st.sampled_from([100_000, 250_000, 500_000])
BIDDER_COUNTS = st.integers(2, 4)
CENTS = st.sampled_from([1, 37, 50, 99])  # few values, so sealed amounts tie now and then
CRITERIA_WEIGHTS = st.sampled_from(
    [("60", "40"), ("50", "50"), ("33.33", "66.67"), ("12.5", "87.5")]
)
POINTS = st.one_of(st.sampled_from([0, 60, 80, 100]), st.integers(0, 100))


def text(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def money(minor: int) -> dict[str, str]:
    return {"amount": text(minor), "currency": "CNY"}


def minor_of(amount: dict[str, str]) -> int:
    assert amount["currency"] == "CNY", amount
    return int(Decimal(amount["amount"]) * 100)


def shows(response_text: str, amount: str) -> bool:
    """Whether `amount` appears as a whole number in the text (not inside a longer one)."""
    return re.search(rf"(?<![\d.]){re.escape(amount)}(?!\d)", response_text) is not None


@dataclass
class Outcome:
    """The award a reference expects (None where it expects the listing unsold)."""

    party_id: str
    price: int
    bid_id: str


class Floor:
    """One priced deal, listed, with funded and registered bidders, over the API."""

    def __init__(self, client: httpx.AsyncClient, operator: Key, db: Any, clock: TestClock):
        self.client = client
        self.operator = operator
        self.chain = Chain(client, operator)
        self.db = db
        self.clock = clock

    async def listed(
        self,
        method: str,
        bidder_count: int,
        deposit: int,
        terms: Callable[[int], dict[str, Any]],
    ) -> tuple[str, dict[str, Any], list[Key]]:
        """A deal priced at its appraised value, listed on `terms(appraised value)`, with
        `bidder_count` funded bidders registered: (the deal's id, the listing, the bidders)."""
        deal = await self.chain.priced_deal(method)
        appraised = minor_of({"amount": deal["appraised"], "currency": "CNY"})
        body = {"deal_id": deal["id"], "deposit": money(deposit), **terms(appraised)}
        listing = await self.chain.post("/v1/listings", body)
        bidders = []
        for _ in range(bidder_count):
            key = await new_member(self.db, self.clock)
            assert key.party_id is not None
            await self.chain.fund(key.party_id, text(FUNDS))
            registered = await self.client.post(
                f"/v1/listings/{listing['id']}/intents", headers=key.headers
            )
            assert registered.status_code == 201, registered.text
            bidders.append(key)
        return deal["id"], listing, bidders

    async def end_notice(self, listing: dict[str, Any]) -> dict[str, Any]:
        await self.advance_past(listing["notice_ends_at"])
        opened = await self.listing(listing["id"])
        assert opened["status"] == "bidding", opened
        return opened

    async def close(self, listing_id: str) -> dict[str, Any]:
        view = await self.listing(listing_id)
        await self.advance_past(view["auction"]["closes_at"])
        return await self.listing(listing_id)

    async def advance_past(self, moment: str) -> None:
        gap = datetime.fromisoformat(moment) - self.clock.now()
        if gap >= timedelta(0):
            self.clock.advance(gap + timedelta(seconds=1))

    async def listing(self, listing_id: str, key: Key | None = None) -> dict[str, Any]:
        response = await self.client.get(
            f"/v1/listings/{listing_id}", headers=key.headers if key else {}
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def bid(
        self, listing_id: str, key: Key, amount: int, **extra: Any
    ) -> tuple[int, dict[str, Any]]:
        response = await self.client.post(
            f"/v1/listings/{listing_id}/bids",
            json={"amount": money(amount), **extra},
            headers=key.headers,
        )
        assert response.status_code < 500, response.text
        result: dict[str, Any] = response.json()
        return response.status_code, result

    async def account(self, account_id: str) -> dict[str, int]:
        found = await self.chain.balance(account_id)
        return {
            name: minor_of(found[name]) for name in found if name.endswith(("_pending", "_posted"))
        }

    async def assert_deposits_held(
        self, listing_id: str, bidders: Sequence[Key], deposit: int
    ) -> None:
        pool = await self.account(f"{listing_id}.deposit.CNY")
        assert pool["credits_pending"] == deposit * len(bidders), pool
        assert pool["credits_posted"] == pool["debits_posted"] == 0, pool
        held = 0
        for key in bidders:
            available = await self.account(f"{key.party_id}.available.CNY")
            assert available["debits_pending"] == deposit, available
            assert available["debits_posted"] == 0, available
            held += available["debits_pending"]
        assert held == pool["credits_pending"]

    async def assert_deposits_resolved(
        self,
        deal_id: str,
        listing_id: str,
        bidders: Sequence[Key],
        deposit: int,
        winner: str | None,
    ) -> None:
        """After the award: the winner's deposit posted into the deal's escrow, every other
        voided and its balance whole again; after unsold: every deposit voided."""
        applied = deposit if winner else 0
        pool = await self.account(f"{listing_id}.deposit.CNY")
        assert pool["credits_pending"] == 0, pool
        assert pool["credits_posted"] == pool["debits_posted"] == applied, pool
        for key in bidders:
            available = await self.account(f"{key.party_id}.available.CNY")
            taken = deposit if key.party_id == winner else 0
            assert available["debits_pending"] == 0, available
            assert available["debits_posted"] == taken, available
            assert available["credits_posted"] - available["debits_posted"] == FUNDS - taken
        escrow = await self.client.get(
            f"/v1/ledger/accounts/{deal_id}.escrow.CNY", headers=self.operator.headers
        )
        if winner:
            assert escrow.status_code == 200, escrow.text
            assert minor_of(escrow.json()["credits_posted"]) == deposit
        else:
            assert escrow.status_code == 404 or minor_of(escrow.json()["credits_posted"]) == 0
        intents = await self.client.get(
            f"/v1/listings/{listing_id}/intents", headers=self.operator.headers
        )
        statuses = {i["party_id"]: i["status"] for i in intents.json()}
        assert statuses == {
            k.party_id: "applied" if k.party_id == winner else "released" for k in bidders
        }

    async def assert_award(
        self, deal_id: str, listing: dict[str, Any], expected: Outcome | None
    ) -> None:
        deal = await self.client.get(f"/v1/deals/{deal_id}", headers=self.operator.headers)
        assert deal.status_code == 200, deal.text
        found = deal.json()
        if expected is None:
            event("unsold")
            assert listing["status"] == "unsold" and listing["award_price"] is None, listing
            assert found["state"] == "unsold" and found["buyer_party_id"] is None, found
            assert listing["auction"]["reserve_met"] is False
            return
        event("awarded")
        assert listing["status"] == "awarded", listing
        assert listing["award_price"] == money(expected.price)
        assert listing["auction"]["winning_bid_id"] == expected.bid_id
        assert found["state"] == "awarded", found
        assert found["buyer_party_id"] == expected.party_id
        assert found["award_price"] == money(expected.price)
        assert found["winning_bid_id"] == expected.bid_id


@pytest.fixture
def floor(client: httpx.AsyncClient, operator: Key, db: Any, clock: TestClock) -> Floor:
    return Floor(client, operator, db, clock)


# ---------------------------------------------------------------------------------------------
# English, with proxy maxima


@dataclass(frozen=True)
class EnglishAttempt:
    bidder: int
    half_units: int  # the amount: the reference's minimum next bid plus this many half units
    proxy_units: int | None  # the proxy maximum: the amount plus this many units; None: no proxy


@dataclass(frozen=True)
class EnglishRun:
    bidders: int
    deposit: int
    reserve_units: int  # the reserve: the listing price plus this many units
    attempts: list[EnglishAttempt]


@st.composite
def english_runs(draw: st.DrawFn) -> EnglishRun:
    bidders = draw(BIDDER_COUNTS)
    attempt = st.builds(
        EnglishAttempt,
        st.integers(0, bidders - 1),
        st.integers(-1, 3),
        st.none() | st.integers(-1, 12) | st.integers(2, 12),
    )
    return EnglishRun(
        bidders, draw(DEPOSITS), draw(st.integers(0, 12)), draw(st.lists(attempt, max_size=12))
    )


@dataclass
class EnglishReference:
    """The English book as the accepted bids state it: the standing price, its bidder and each
    bidder's maximum (its proxy maximum, else its amount) as of its last own bid."""

    start: int
    tiers: list[tuple[int, int]]
    price: int | None = None
    leader: str | None = None
    last_bid_id: str | None = None
    maxima: dict[str, int] = field(default_factory=dict)
    numbers: dict[int, str] = field(default_factory=dict)  # public bidder number → party

    def increment(self, price: int) -> int:
        return [increment for start, increment in self.tiers if start <= price][-1]

    def ladder(self, low: int, high: int) -> list[int]:
        """The prices from `low` by minimum raises, up to the first at or above `high`."""
        rungs = [low]
        while rungs[-1] < high:
            rungs.append(rungs[-1] + self.increment(rungs[-1]))
        return rungs

    def minimum(self) -> int:
        return self.start if self.price is None else self.price + self.increment(self.price)

    def refusal(self, party: str, amount: int, maximum: int | None) -> str | None:
        if party == self.leader:
            return "already_leading"
        if maximum is not None and maximum < amount:
            return "max_below_amount"
        if amount < self.minimum():
            return "bid_too_low"
        return None


def check_english_step(
    book: EnglishReference, party: str, amount: int, maximum: int | None, placed: list[Any]
) -> None:
    """One accepted bid with its proxies' answers, against the ladder and the maxima; then the
    reference book moves to the last of them.

    The answers are minimum raises up the ladder from the bid, each within its bidder's maximum,
    no bidder following itself; the duel ends when the loser can raise no more, the winner one
    raise above the loser's last rung (its bid, or a raise its maximum allowed)."""
    own = placed[0]
    assert own["own"] and not own["auto"] and own["amount"] == money(amount), own
    assert own["max_amount"] == (money(maximum) if maximum is not None else None), own
    book.numbers[own["bidder"]] = party
    book.maxima[party] = amount if maximum is None else maximum
    rivals = {party} if book.leader is None else {party, book.leader}
    bidders = [book.numbers[b["bidder"]] for b in placed]
    amounts = [minor_of(b["amount"]) for b in placed]
    price, winner = amounts[-1], bidders[-1]
    rungs = book.ladder(amount, price)
    assert rungs[-1] == price, (placed, rungs)
    for answer, bidder, answered in zip(placed[1:], bidders[1:], amounts[1:], strict=True):
        assert answer["auto"] and bidder in rivals, answer
        assert answered in rungs and answered <= book.maxima[bidder], (answer, book.maxima)
    assert all(a != b for a, b in pairwise(bidders)), placed
    assert amounts == sorted(set(amounts)), placed
    assert book.maxima[winner] >= price
    for loser in rivals - {winner}:
        assert book.maxima[loser] < price + book.increment(price), (placed, book.maxima)
        if len(placed) > 1:
            assert rungs[-2] <= book.maxima[loser], (placed, rungs, book.maxima)
    book.price, book.leader, book.last_bid_id = price, winner, placed[-1]["id"]


@PROPERTY
@given(run=english_runs())
@example(  # a proxy duel across the increment tiers
    run=EnglishRun(2, 100_000, 0, [EnglishAttempt(0, 0, 8), EnglishAttempt(1, 0, 12)])
)
async def test_english_award_matches_the_accepted_bids_and_deposits_follow_it(
    floor: Floor, run: EnglishRun
) -> None:
    def terms(appraised: int) -> dict[str, Any]:
        return {
            "listing_price": money(appraised),
            "reserve": money(appraised + run.reserve_units * UNIT),
            "increments": [
                {"from_price": money(0), "increment": money(UNIT)},
                {"from_price": money(appraised + 3 * UNIT), "increment": money(UPPER_INCREMENT)},
            ],
        }

    deal_id, listing, bidders = await floor.listed("english", run.bidders, run.deposit, terms)
    start = minor_of(listing["listing_price"])
    book = EnglishReference(start, [(0, UNIT), (start + 3 * UNIT, UPPER_INCREMENT)])
    accepted: list[dict[str, Any]] = []
    await floor.end_notice(listing)
    await floor.assert_deposits_held(listing["id"], bidders, run.deposit)
    for attempt in run.attempts:
        key = bidders[attempt.bidder]
        assert key.party_id is not None
        amount = book.minimum() + attempt.half_units * UNIT // 2
        maximum = None if attempt.proxy_units is None else amount + attempt.proxy_units * UNIT
        extra = {} if maximum is None else {"max_amount": money(maximum)}
        status, body = await floor.bid(listing["id"], key, amount, **extra)
        refusal = book.refusal(key.party_id, amount, maximum)
        if refusal is not None:
            event(f"english refusal {refusal}")
            if refusal == "max_below_amount":  # the body contradicts itself: a 422
                assert status == 422 and body["errors"][0]["field"] == "max_amount", body
                continue
            assert status == 409 and body["code"] == refusal, (status, body)
            if refusal == "bid_too_low":
                assert body["minimum"] == book.minimum()
            continue
        assert status == 201, body
        event(f"english step with {len(body['accepted']) - 1} proxy answers")
        check_english_step(book, key.party_id, amount, maximum, body["accepted"])
        accepted += body["accepted"]
        assert book.price is not None and body["auction"]["current_price"] == money(book.price)
        assert book.numbers[body["auction"]["leading_bidder"]] == book.leader
    await floor.assert_deposits_held(listing["id"], bidders, run.deposit)

    closed = await floor.close(listing["id"])
    reserve = start + run.reserve_units * UNIT
    amounts = [minor_of(b["amount"]) for b in accepted]
    expected = None
    if amounts and max(amounts) >= reserve:
        top = accepted[amounts.index(max(amounts))]
        expected = Outcome(book.numbers[top["bidder"]], max(amounts), top["id"])
        assert top["id"] == book.last_bid_id
    await floor.assert_award(deal_id, closed, expected)
    await floor.assert_deposits_resolved(
        deal_id, listing["id"], bidders, run.deposit, expected.party_id if expected else None
    )
    public = (await floor.client.get(f"/v1/listings/{listing['id']}/bids")).json()
    assert [(b["id"], b["seq"], b["amount"], b["auto"]) for b in public["items"]] == [
        (b["id"], seq, b["amount"], b["auto"]) for seq, b in enumerate(accepted, start=1)
    ]


# ---------------------------------------------------------------------------------------------
# Sealed bids (first and second price) and their secrecy


@dataclass(frozen=True)
class SealedAttempt:
    bidder: int
    units: int  # the amount: the listing price plus this many units, plus `cents`
    cents: int


SEALED_ATTEMPT = st.builds(SealedAttempt, st.integers(0, 3), st.integers(-1, 6), CENTS)


@dataclass(frozen=True)
class SealedRun:
    bidders: int
    deposit: int
    reserve_units: int
    attempts: list[SealedAttempt]  # a bidder's later bid is a revision of its earlier one


@st.composite
def sealed_runs(draw: st.DrawFn) -> SealedRun:
    bidders = draw(BIDDER_COUNTS)
    attempts = draw(st.lists(SEALED_ATTEMPT, min_size=1, max_size=8))
    attempts = [SealedAttempt(a.bidder % bidders, a.units, a.cents) for a in attempts]
    return SealedRun(bidders, draw(DEPOSITS), draw(st.integers(0, 5)), attempts)


@dataclass
class SealedBook:
    """The accepted sealed bids: every amount by party, and each party's latest revision."""

    start: int
    seq: int = 0
    amounts: dict[str, set[str]] = field(default_factory=dict)
    latest: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # (amount, seq, id)
    superseded: list[str] = field(default_factory=list)
    responses: dict[str, list[str]] = field(default_factory=dict)

    async def place(
        self, floor: Floor, listing_id: str, key: Key, amount: int, **extra: Any
    ) -> None:
        assert key.party_id is not None
        status, body = await floor.bid(listing_id, key, amount, **extra)
        if amount < self.start:
            assert status == 409 and body["code"] == "bid_too_low", body
            assert body["minimum"] == self.start
            return
        assert status == 201, body
        [own] = body["accepted"]
        self.seq += 1
        assert own["own"] and own["amount"] == money(amount) and own["seq"] == self.seq, own
        assert body["auction"]["current_price"] is None, body
        if key.party_id in self.latest:
            self.superseded.append(self.latest[key.party_id][2])
            event("a revision")
        self.latest[key.party_id] = (amount, self.seq, own["id"])
        self.amounts.setdefault(key.party_id, set()).add(text(amount))
        self.responses.setdefault(key.party_id, []).append(str(body))

    def ranked(self) -> list[tuple[str, int, int, str]]:
        """(party, amount, seq, bid id) of each latest revision: the highest first, the earlier
        on a tie."""
        rows = [(party, *bid) for party, bid in self.latest.items()]
        return sorted(rows, key=lambda row: (-row[1], row[2]))


async def views(floor: Floor, listing_id: str, viewer: Key | None) -> str:
    """Everything the listing's read endpoints answer `viewer` (None: no key)."""
    headers = viewer.headers if viewer else {}
    texts = []
    for path in ("", "/bids", "/bids/stream?wait_s=0"):
        response = await floor.client.get(f"/v1/listings/{listing_id}{path}", headers=headers)
        assert response.status_code == 200, response.text
        texts.append(response.text)
    return "\n".join(texts)


async def assert_sealed(
    floor: Floor, listing_id: str, bidders: Sequence[Key], book: SealedBook, public_before: str
) -> None:
    """No read endpoint shows a viewer another bidder's amount; its own it sees. An amount that
    the public view showed before any bid (a term of the listing) is no secret."""
    for viewer in [None, *bidders]:
        viewer_party = viewer.party_id if viewer else None
        mine = book.amounts.get(viewer_party, set()) if viewer_party else set()
        seen = await views(floor, listing_id, viewer)
        if viewer_party is not None:
            seen += "\n".join(book.responses.get(viewer_party, []))
        for party, amounts in book.amounts.items():
            if party == viewer_party:
                continue
            for amount in amounts - mine:
                if not shows(public_before, amount):
                    assert not shows(seen, amount), f"{amount} of {party} leaks to {viewer}"
        assert all(shows(seen, amount) for amount in mine), (mine, seen)


def sealed_outcome(book: SealedBook, reserve: int, *, second_price: bool) -> Outcome | None:
    ranked = book.ranked()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        event("a tie for the highest bid")
    if not ranked or ranked[0][1] < reserve:
        return None
    party, amount, _, bid_id = ranked[0]
    if second_price:
        amount = max(ranked[1][1], reserve) if len(ranked) > 1 else reserve
    return Outcome(party, amount, bid_id)


@pytest.mark.parametrize("method", ["sealed_first_price", "sealed_second_price"])
@PROPERTY
@given(run=sealed_runs())
@example(run=SealedRun(2, 100_000, 0, [SealedAttempt(0, 2, 50), SealedAttempt(1, 2, 50)]))
@example(  # a tie again after a revision: the latest revision counts, so the other is earlier
    run=SealedRun(
        3,
        250_000,
        1,
        [SealedAttempt(0, 2, 50), SealedAttempt(1, 2, 50), SealedAttempt(0, 2, 50)],
    )
)
async def test_sealed_award_matches_the_latest_revisions_and_no_amount_leaks(
    floor: Floor, method: str, run: SealedRun
) -> None:
    def terms(appraised: int) -> dict[str, Any]:
        return {
            "listing_price": money(appraised),
            "reserve": money(appraised + run.reserve_units * UNIT),
        }

    deal_id, listing, bidders = await floor.listed(method, run.bidders, run.deposit, terms)
    start = minor_of(listing["listing_price"])
    await floor.end_notice(listing)
    await floor.assert_deposits_held(listing["id"], bidders, run.deposit)
    public_before = await views(floor, listing["id"], None)
    book = SealedBook(start)
    for attempt in run.attempts:
        amount = start + attempt.units * UNIT + attempt.cents
        await book.place(floor, listing["id"], bidders[attempt.bidder], amount)
    await assert_sealed(floor, listing["id"], bidders, book, public_before)
    for viewer in [None, *bidders]:
        assert (await floor.listing(listing["id"], viewer))["auction"]["current_price"] is None
    await floor.assert_deposits_held(listing["id"], bidders, run.deposit)

    closed = await floor.close(listing["id"])
    reserve = start + run.reserve_units * UNIT
    second_price = method == "sealed_second_price"
    expected = sealed_outcome(book, reserve, second_price=second_price)
    await floor.assert_award(deal_id, closed, expected)
    await floor.assert_deposits_resolved(
        deal_id, listing["id"], bidders, run.deposit, expected.party_id if expected else None
    )
    revealed = (await floor.client.get(f"/v1/listings/{listing['id']}/bids")).json()
    assert len(revealed["items"]) == book.seq
    assert all(b["amount"] is not None for b in revealed["items"])


# ---------------------------------------------------------------------------------------------
# Dutch: a descending clock, the first acceptance wins


@dataclass(frozen=True)
class DutchAttempt:
    bidder: int
    tick: int  # when: this many intervals after the clock starts, and a few seconds
    quarter_steps: int  # the amount: the clock's price plus this many quarter steps


@dataclass(frozen=True)
class DutchRun:
    bidders: int
    deposit: int
    drop_steps: int  # the listing price is this many steps above the appraised value
    floor_off_step: bool  # the floor (the reserve) is half a step above the appraised value
    attempts: list[DutchAttempt]


@st.composite
def dutch_runs(draw: st.DrawFn) -> DutchRun:
    bidders = draw(BIDDER_COUNTS)
    attempt = st.builds(
        DutchAttempt, st.integers(0, bidders - 1), st.integers(0, 5), st.integers(-1, 1)
    )
    attempts = sorted(draw(st.lists(attempt, min_size=1, max_size=5)), key=lambda a: a.tick)
    return DutchRun(bidders, draw(DEPOSITS), draw(st.integers(1, 4)), draw(st.booleans()), attempts)


@PROPERTY
@given(run=dutch_runs())
@example(  # too low, then an acceptance at the floor, then too late
    run=DutchRun(
        2,
        100_000,
        2,
        True,
        [DutchAttempt(0, 1, -1), DutchAttempt(1, 2, 0), DutchAttempt(0, 3, 1)],
    )
)
@example(run=DutchRun(2, 100_000, 1, False, [DutchAttempt(0, 2, 0)]))  # after the close
async def test_dutch_award_goes_to_the_first_acceptance_at_the_clock_price(
    floor: Floor, run: DutchRun
) -> None:
    def terms(appraised: int) -> dict[str, Any]:
        return {
            "listing_price": money(appraised + run.drop_steps * DUTCH_STEP),
            "reserve": money(appraised + (DUTCH_STEP // 2 if run.floor_off_step else 0)),
            "auction": {"dutch_step": money(DUTCH_STEP), "dutch_interval_s": DUTCH_INTERVAL_S},
        }

    deal_id, listing, bidders = await floor.listed("dutch", run.bidders, run.deposit, terms)
    start = minor_of(listing["listing_price"])
    reserve = minor_of((await floor.listing(listing["id"], floor.operator))["reserve"])
    opened = await floor.end_notice(listing)
    opens_at = datetime.fromisoformat(opened["auction"]["opens_at"])
    ticks_to_floor = -(-(start - reserve) // DUTCH_STEP)
    closes_at = opens_at + timedelta(seconds=DUTCH_INTERVAL_S * (ticks_to_floor + 1))
    assert datetime.fromisoformat(opened["auction"]["closes_at"]) == closes_at
    expected: Outcome | None = None
    for attempt in run.attempts:
        moment = opens_at + timedelta(seconds=DUTCH_INTERVAL_S * attempt.tick + 5)
        await floor.advance_past(moment.isoformat())
        price = max(reserve, start - DUTCH_STEP * attempt.tick)
        is_open = expected is None and floor.clock.now() < closes_at
        if is_open:
            view = await floor.listing(listing["id"])
            assert view["auction"]["current_price"] == money(price), (view, attempt)
            await floor.assert_deposits_held(listing["id"], bidders, run.deposit)
        key = bidders[attempt.bidder]
        assert key.party_id is not None
        amount = price + attempt.quarter_steps * DUTCH_STEP // 4
        status, body = await floor.bid(listing["id"], key, amount)
        if not is_open:
            assert status == 409 and body["code"] == "auction_closed", body
        elif amount < price:
            assert status == 409 and body["code"] == "bid_too_low", body
            assert body["minimum"] == price
        else:
            assert status == 201, body
            [accepted] = body["accepted"]
            assert accepted["amount"] == money(price) and body["auction"]["status"] == "closed"
            expected = Outcome(key.party_id, price, accepted["id"])
            event(f"accepted at tick {attempt.tick}")

    closed = await floor.listing(listing["id"]) if expected else await floor.close(listing["id"])
    await floor.assert_award(deal_id, closed, expected)
    await floor.assert_deposits_resolved(
        deal_id, listing["id"], bidders, run.deposit, expected.party_id if expected else None
    )


# ---------------------------------------------------------------------------------------------
# Tender: scored by a panel


@dataclass(frozen=True)
class TenderRun:
    bidders: int
    deposit: int
    weights_pct: tuple[str, str]  # of the criteria "technical" and "commercial"
    panel_size: int
    attempts: list[SealedAttempt]
    points: list[tuple[int, int]]  # panelist p's points for bidder b: points[p * 4 + b]


@st.composite
def tender_runs(draw: st.DrawFn) -> TenderRun:
    bidders = draw(BIDDER_COUNTS)
    attempts = draw(st.lists(SEALED_ATTEMPT, min_size=1, max_size=6))
    return TenderRun(
        bidders,
        draw(DEPOSITS),
        draw(CRITERIA_WEIGHTS),
        draw(st.integers(1, 2)),
        [SealedAttempt(a.bidder % bidders, a.units, a.cents) for a in attempts],
        draw(st.lists(st.tuples(POINTS, POINTS), min_size=8, max_size=8)),
    )


def four_places(value: Fraction) -> str:
    tenths_of_thousandths = round(value * 10_000)  # a Fraction rounds half to even
    return f"{tenths_of_thousandths // 10_000}.{tenths_of_thousandths % 10_000:04d}"


def tender_ranking(
    run: TenderRun, book: SealedBook, bidders: Sequence[Key]
) -> list[tuple[str, int, int, str, Fraction]]:
    """(party, amount, seq, bid id, weighted score) of each latest revision, the best first, the
    earlier on a tie: the score is the sum of each weight times the panel's mean points."""
    index = {key.party_id: number for number, key in enumerate(bidders)}
    weights = [Fraction(Decimal(pct)) / 100 for pct in run.weights_pct]
    rows = []
    for party, (amount, seq, bid_id) in book.latest.items():
        given = [run.points[p * 4 + index[party]] for p in range(run.panel_size)]
        means = [Fraction(sum(points[c] for points in given), run.panel_size) for c in (0, 1)]
        score = sum((w * m for w, m in zip(weights, means, strict=True)), Fraction(0))
        rows.append((party, amount, seq, bid_id, score))
    return sorted(rows, key=lambda row: (-row[4], row[2]))


@PROPERTY
@given(run=tender_runs())
@example(  # equal scores: the earlier counting bid wins; a revised bid no longer counts
    run=TenderRun(
        2,
        100_000,
        ("50", "50"),
        2,
        [SealedAttempt(0, 1, 1), SealedAttempt(1, 2, 1), SealedAttempt(0, 3, 1)],
        [(80, 70)] * 8,
    )
)
async def test_tender_award_matches_the_panels_weighted_scores(
    floor: Floor, db: Any, clock: TestClock, run: TenderRun
) -> None:
    def terms(appraised: int) -> dict[str, Any]:
        technical, commercial = run.weights_pct
        return {
            "listing_price": money(appraised),
            "reserve": money(appraised),
            "auction": {
                "criteria": [
                    {"name": "technical", "weight_pct": technical},
                    {"name": "commercial", "weight_pct": commercial},
                ]
            },
        }

    deal_id, listing, bidders = await floor.listed("tender", run.bidders, run.deposit, terms)
    start = minor_of(listing["listing_price"])
    await floor.end_notice(listing)
    public_before = await views(floor, listing["id"], None)
    book = SealedBook(start)
    for attempt in run.attempts:
        amount = start + attempt.units * UNIT + attempt.cents
        proposal = await floor.chain.evidence()
        await book.place(
            floor, listing["id"], bidders[attempt.bidder], amount, proposal_sha256=proposal
        )
    await assert_sealed(floor, listing["id"], bidders, book, public_before)
    await floor.assert_deposits_held(listing["id"], bidders, run.deposit)

    deadline = await floor.close(listing["id"])
    if not book.latest:
        await floor.assert_award(deal_id, deadline, None)
        await floor.assert_deposits_resolved(deal_id, listing["id"], bidders, run.deposit, None)
        return
    assert deadline["status"] == "bidding" and deadline["auction"]["status"] == "scoring"
    await assert_sealed(floor, listing["id"], bidders, book, public_before)
    panel = [await new_key(db, clock, Role.operator) for _ in range(run.panel_size)]
    await floor.chain.post(
        f"/v1/listings/{listing['id']}/panel",
        {"key_ids": [k.token.split(".")[1] for k in panel]},
        expect=200,
    )
    ranking = tender_ranking(run, book, bidders)
    index = {key.party_id: number for number, key in enumerate(bidders)}
    for bid_id in book.superseded[:1]:  # a revised bid no longer counts
        response = await floor.client.post(
            f"/v1/listings/{listing['id']}/scores",
            json={"bid_id": bid_id, "points": {"technical": 1, "commercial": 1}},
            headers=panel[0].headers,
        )
        assert response.status_code == 404, response.text
    scored: dict[str, Any] = {}
    sheets = [(p, row) for p in range(run.panel_size) for row in ranking]
    for number, (p, (party, _, _, bid_id, _)) in enumerate(sheets, start=1):
        if number == len(sheets):
            await floor.assert_deposits_held(listing["id"], bidders, run.deposit)
        technical, commercial = run.points[p * 4 + index[party]]
        scored = await floor.chain.post(
            f"/v1/listings/{listing['id']}/scores",
            {"bid_id": bid_id, "points": {"technical": technical, "commercial": commercial}},
            key=panel[p],
            expect=200,
        )
        assert scored["missing"] == 2 * (len(sheets) - number), scored
    assert scored["status"] == "closed", scored
    assert [(r["bid_id"], r["weighted_score"]) for r in scored["ranking"]] == [
        (row[3], four_places(row[4])) for row in ranking
    ]
    if len(ranking) > 1 and ranking[0][4] == ranking[1][4]:
        event("a tie for the best score")
    party, amount, _, bid_id, _ = ranking[0]
    expected = Outcome(party, amount, bid_id)
    await floor.assert_award(deal_id, await floor.listing(listing["id"]), expected)
    await floor.assert_deposits_resolved(deal_id, listing["id"], bidders, run.deposit, party)
