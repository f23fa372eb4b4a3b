"""Property tests of the auction rules: the English ladder, jumped a tier at a time, agrees with a
step-by-step reference; soft close stays within the hard close; sealed-bid and tender results agree
with brute-force references; a Dutch clock only falls, to its floor, before it closes."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from itertools import accumulate

from hypothesis import given
from hypothesis import strategies as st

from exchange.bidding.rules import (
    Award,
    Criterion,
    EnglishBook,
    EnglishOutcome,
    IncrementTier,
    PlacedBid,
    Ranked,
    Refusal,
    Score,
    SealedBid,
    TenderBid,
    dutch_closes_at,
    dutch_price,
    english_bid,
    increment_at,
    minimum_next,
    missing_scores,
    sealed_result,
    tender_ranking,
    tender_result,
)

BASE = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
BIDDERS = ("alice", "bob", "carol")


# --- English: a step-by-step reference ---------------------------------------------------------


def naive_minimum(current: int | None, start_price: int, tiers: list[IncrementTier]) -> int:
    if current is None:
        return start_price
    increment = [tier.increment for tier in tiers if tier.from_price <= current][-1]
    return current + increment


def naive_english(
    book: EnglishBook, bid: Bid, now: datetime, start_price: int, tiers: list[IncrementTier]
) -> EnglishOutcome | Refusal:
    """The ladder walked one raise at a time, as the rules state it."""
    minimum = naive_minimum(book.price, start_price, tiers)
    if now >= book.closes_at:
        return Refusal("auction_closed", "")
    if bid.bidder == book.leader:
        return Refusal("already_leading", "")
    if bid.max_amount is not None and bid.max_amount < bid.amount:
        return Refusal("max_below_amount", "")
    if bid.amount < minimum:
        return Refusal("bid_too_low", "", minimum=minimum)
    duel: list[PlacedBid] = []
    if book.leader is not None and book.price is not None:
        old_max = book.price if book.leader_max is None else book.leader_max
        new_max = bid.amount if bid.max_amount is None else bid.max_amount
        maxes = {book.leader: old_max, bid.bidder: new_max}
        price, mover, waiting = bid.amount, book.leader, bid.bidder
        while naive_minimum(price, start_price, tiers) <= maxes[mover]:
            price = naive_minimum(price, start_price, tiers)
            duel.append(PlacedBid(mover, price, auto=True))
            mover, waiting = waiting, mover
    answers = duel[-2:]
    if len(answers) == 2 and answers[0].bidder == bid.bidder:
        answers = answers[1:]  # no bidder follows itself in the record
    placed = (PlacedBid(bid.bidder, bid.amount, auto=False), *answers)
    winner = placed[-1]
    closes_at = book.closes_at
    if book.closes_at - now < timedelta(seconds=bid.soft_close_s):
        closes_at = min(book.closes_at + timedelta(seconds=bid.soft_close_s), book.hard_close_at)
    after = EnglishBook(
        price=winner.amount,
        leader=winner.bidder,
        leader_max=bid.max_amount if winner.bidder == bid.bidder else book.leader_max,
        closes_at=closes_at,
        hard_close_at=book.hard_close_at,
    )
    return EnglishOutcome(after, placed)


@dataclass(frozen=True, slots=True)
class Bid:
    bidder: str
    amount: int
    max_amount: int | None
    soft_close_s: int


@dataclass(frozen=True, slots=True)
class Scenario:
    tiers: list[IncrementTier]
    start_price: int
    book: EnglishBook
    bid: Bid
    now: datetime

    def run(self) -> EnglishOutcome | Refusal:
        return english_bid(
            self.book,
            bidder=self.bid.bidder,
            amount=self.bid.amount,
            max_amount=self.bid.max_amount,
            now=self.now,
            start_price=self.start_price,
            tiers=self.tiers,
            soft_close_s=self.bid.soft_close_s,
        )


@st.composite
def tier_lists(draw: st.DrawFn) -> list[IncrementTier]:
    gaps = draw(st.lists(st.integers(min_value=1, max_value=600), max_size=5))
    increments = draw(
        st.lists(
            st.integers(min_value=1, max_value=60), min_size=len(gaps) + 1, max_size=len(gaps) + 1
        )
    )
    froms = [0, *accumulate(gaps)]
    return [IncrementTier(f, i) for f, i in zip(froms, increments, strict=True)]


@st.composite
def scenarios(draw: st.DrawFn, *, open_only: bool = False, duel: bool = False) -> Scenario:
    """A book and a bid. `open_only`: one the rules accept; `duel`: accepted, against a leader
    with a proxy, by a bidder with a proxy, often close to the leader's."""
    open_only = open_only or duel
    tiers = draw(tier_lists())
    start_price = draw(st.integers(min_value=1, max_value=1_000))
    closes_at = BASE + timedelta(seconds=draw(st.integers(min_value=1, max_value=3_600)))
    hard_close_at = closes_at + timedelta(seconds=draw(st.integers(min_value=0, max_value=3_600)))
    price = leader = leader_max = None
    if duel or draw(st.booleans()):
        price = start_price + draw(st.integers(min_value=0, max_value=3_000))
        leader = draw(st.sampled_from(BIDDERS))
        proxy = st.integers(min_value=price, max_value=price + 4_000)
        leader_max = draw(proxy if duel else st.none() | proxy)
    book = EnglishBook(price, leader, leader_max, closes_at, hard_close_at)
    minimum = minimum_next(price, start_price, tiers)
    above_s = st.integers(min_value=0 if open_only else -30, max_value=300 if duel else 3_000)
    amount = minimum + draw(above_s)
    proxies = st.integers(min_value=amount - (0 if open_only else 5), max_value=amount + 4_000)
    max_amount: int | None
    if duel:
        assert leader_max is not None
        near = st.integers(min_value=-60, max_value=60).map(lambda d: max(amount, leader_max + d))
        max_amount = draw(proxies | near)
    else:
        max_amount = draw(st.none() | proxies)
    bidder = draw(st.sampled_from([b for b in BIDDERS if b != leader or not open_only]))
    bid = Bid(bidder, amount, max_amount, draw(st.integers(min_value=0, max_value=900)))
    latest_s = (closes_at - BASE).total_seconds() - 1 if open_only else 4_000
    now = BASE + timedelta(seconds=draw(st.integers(min_value=0, max_value=int(latest_s))))
    return Scenario(tiers, start_price, book, bid, now)


def assert_agrees_with_the_reference(scenario: Scenario) -> None:
    outcome = scenario.run()
    expected = naive_english(
        scenario.book, scenario.bid, scenario.now, scenario.start_price, scenario.tiers
    )
    if isinstance(expected, Refusal):
        assert isinstance(outcome, Refusal)
        assert (outcome.code, outcome.minimum) == (expected.code, expected.minimum)
        assert outcome.detail
    else:
        assert outcome == expected


@given(scenarios())
def test_english_bid_agrees_with_the_step_by_step_ladder(scenario: Scenario) -> None:
    assert_agrees_with_the_reference(scenario)


@given(scenarios(duel=True))
def test_proxy_duels_agree_with_the_step_by_step_ladder(scenario: Scenario) -> None:
    assert_agrees_with_the_reference(scenario)


@given(scenarios(open_only=True))
def test_recorded_bids_rise_by_at_least_the_increment(scenario: Scenario) -> None:
    outcome = scenario.run()
    assert isinstance(outcome, EnglishOutcome)
    placed = outcome.placed
    assert placed[0] == PlacedBid(scenario.bid.bidder, scenario.bid.amount, auto=False)
    assert all(bid.auto for bid in placed[1:])
    assert len(placed) <= 3
    previous = scenario.book.price
    for bid in placed:
        assert bid.amount >= minimum_next(previous, scenario.start_price, scenario.tiers)
        previous = bid.amount
    for earlier, later in itertools.pairwise(placed):  # no bidder follows itself
        assert earlier.bidder != later.bidder
    assert (outcome.book.price, outcome.book.leader) == (placed[-1].amount, placed[-1].bidder)
    if outcome.book.leader_max is not None:
        assert outcome.book.leader_max >= placed[-1].amount


@given(scenarios(), st.data())
def test_a_bid_is_refused_for_the_first_rule_it_breaks(
    scenario: Scenario, data: st.DataObject
) -> None:
    book = scenario.book
    if book.leader is not None and data.draw(st.booleans()):
        scenario = Scenario(
            scenario.tiers,
            scenario.start_price,
            book,
            Bid(book.leader, scenario.bid.amount, scenario.bid.max_amount, 0),
            scenario.now,
        )
    bid = scenario.bid
    minimum = minimum_next(book.price, scenario.start_price, scenario.tiers)
    broken = [
        code
        for code, breaks in (
            ("auction_closed", scenario.now >= book.closes_at),
            ("already_leading", bid.bidder == book.leader),
            ("max_below_amount", bid.max_amount is not None and bid.max_amount < bid.amount),
            ("bid_too_low", bid.amount < minimum),
        )
        if breaks
    ]
    outcome = scenario.run()
    if broken:
        assert isinstance(outcome, Refusal)
        assert outcome.code == broken[0]
        assert outcome.minimum == (minimum if broken[0] == "bid_too_low" else None)
    else:
        assert isinstance(outcome, EnglishOutcome)


@given(scenarios(open_only=True))
def test_soft_close_extends_only_inside_the_window_and_never_past_the_hard_close(
    scenario: Scenario,
) -> None:
    outcome = scenario.run()
    assert isinstance(outcome, EnglishOutcome)
    before, after = scenario.book, outcome.book
    assert before.closes_at <= after.closes_at <= before.hard_close_at
    assert after.hard_close_at == before.hard_close_at
    window = timedelta(seconds=scenario.bid.soft_close_s)
    if before.closes_at - scenario.now >= window:
        assert after.closes_at == before.closes_at
    else:
        extended = before.closes_at + window
        assert after.closes_at == min(extended, before.hard_close_at)


def test_a_ladder_of_a_billion_steps_is_jumped() -> None:
    tiers = [IncrementTier(0, 1), IncrementTier(1_000, 1), IncrementTier(10**6, 1)]
    book = EnglishBook(
        100, "alice", 10**9 + 100, BASE + timedelta(hours=1), BASE + timedelta(hours=2)
    )
    outcome = english_bid(
        book,
        bidder="bob",
        amount=101,
        max_amount=2 * 10**9,
        now=BASE,
        start_price=1,
        tiers=tiers,
        soft_close_s=60,
    )
    assert isinstance(outcome, EnglishOutcome)
    assert outcome.placed == (
        PlacedBid("bob", 101, auto=False),
        PlacedBid("alice", 10**9 + 100, auto=True),
        PlacedBid("bob", 10**9 + 101, auto=True),
    )
    assert (outcome.book.leader, outcome.book.leader_max) == ("bob", 2 * 10**9)


@given(tier_lists(), st.integers(min_value=0, max_value=5_000))
def test_the_increment_is_the_tiers_at_or_below_the_price(
    tiers: list[IncrementTier], price: int
) -> None:
    assert increment_at(price, tiers) == naive_minimum(price, 1, tiers) - price
    assert minimum_next(None, 7, tiers) == 7


# --- sealed bids -------------------------------------------------------------------------------


@st.composite
def sealed_bids(draw: st.DrawFn) -> list[SealedBid]:
    amounts = draw(st.lists(st.integers(min_value=1, max_value=60), max_size=8))
    seqs = draw(st.permutations(range(len(amounts))))
    return [
        SealedBid(f"bid-{i}", f"bidder-{i}", amount, seq)
        for i, (amount, seq) in enumerate(zip(amounts, seqs, strict=True))
    ]


def brute_force_sealed(bids: list[SealedBid], reserve: int, second_price: bool) -> Award | None:
    for winner in bids:
        others = [bid for bid in bids if bid is not winner]
        beaten = all((winner.amount, -winner.seq) > (bid.amount, -bid.seq) for bid in others)
        if not beaten:
            continue
        if winner.amount < reserve:
            return None
        price = winner.amount
        if second_price:
            price = max([reserve] + [bid.amount for bid in others])
        return Award(winner.bidder, price, winner.key)
    return None


@given(sealed_bids(), st.integers(min_value=1, max_value=70), st.booleans())
def test_sealed_result_matches_a_brute_force_reference(
    bids: list[SealedBid], reserve: int, second_price: bool
) -> None:
    award = sealed_result(bids, reserve, second_price=second_price)
    assert award == brute_force_sealed(bids, reserve, second_price)
    if award is None:
        assert all(bid.amount < reserve for bid in bids)
        return
    winner = next(bid for bid in bids if bid.key == award.bid_key)
    assert reserve <= award.price <= winner.amount
    assert winner.amount == max(bid.amount for bid in bids)
    if not second_price:
        assert award.price == winner.amount


@given(sealed_bids(), st.integers(min_value=1, max_value=70))
def test_second_price_never_pays_more_than_first_price(bids: list[SealedBid], reserve: int) -> None:
    first = sealed_result(bids, reserve, second_price=False)
    second = sealed_result(bids, reserve, second_price=True)
    assert (first is None) == (second is None)
    if first is not None and second is not None:
        assert (first.bidder, first.bid_key) == (second.bidder, second.bid_key)
        assert second.price <= first.price


# --- Dutch -------------------------------------------------------------------------------------


@st.composite
def dutch_clocks(draw: st.DrawFn) -> dict[str, int]:
    start = draw(st.integers(min_value=1, max_value=10**6))
    return {
        "start": start,
        "floor": draw(st.integers(min_value=1, max_value=start)),
        "step": draw(st.integers(min_value=1, max_value=10**5)),
        "interval_s": draw(st.integers(min_value=1, max_value=3_600)),
    }


SECONDS = st.integers(min_value=-(10**5), max_value=10**8)


@given(dutch_clocks(), SECONDS, SECONDS)
def test_a_dutch_clock_only_falls_and_stops_at_its_floor(
    clock: dict[str, int], earlier_s: int, later_s: int
) -> None:
    earlier_s, later_s = sorted((earlier_s, later_s))
    early = dutch_price(**clock, opens_at=BASE, now=BASE + timedelta(seconds=earlier_s))
    late = dutch_price(**clock, opens_at=BASE, now=BASE + timedelta(seconds=later_s))
    assert clock["start"] >= early >= late >= clock["floor"]


@given(dutch_clocks())
def test_a_dutch_clock_reaches_its_floor_one_interval_before_it_closes(
    clock: dict[str, int],
) -> None:
    closes_at = dutch_closes_at(**clock, opens_at=BASE)
    at_floor = closes_at - timedelta(seconds=clock["interval_s"])
    assert at_floor >= BASE
    assert dutch_price(**clock, opens_at=BASE, now=at_floor) == clock["floor"]
    if clock["start"] > clock["floor"]:
        just_before = at_floor - timedelta(microseconds=1)
        assert dutch_price(**clock, opens_at=BASE, now=just_before) > clock["floor"]


# --- tender ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tender:
    bids: list[TenderBid]
    criteria: list[Criterion]
    panel: list[str]
    scores: list[Score]

    def triples(self) -> list[tuple[str, str, str]]:
        return [
            (scorer, bid.key, criterion.name)
            for scorer in self.panel
            for bid in self.bids
            for criterion in self.criteria
        ]


@st.composite
def tenders(draw: st.DrawFn) -> Tender:
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=9_999), max_size=3)))
    weights = [b - a for a, b in zip([0, *cuts], [*cuts, 10_000], strict=True)]
    criteria = [Criterion(f"criterion-{i}", weight) for i, weight in enumerate(weights)]
    count = draw(st.integers(min_value=0, max_value=5))
    seqs = draw(st.permutations(range(count)))
    amounts = draw(st.lists(st.integers(1, 10**6), min_size=count, max_size=count))
    bids = [
        TenderBid(f"bid-{i}", f"bidder-{i}", amount, seq)
        for i, (amount, seq) in enumerate(zip(amounts, seqs, strict=True))
    ]
    panel = [f"panelist-{i}" for i in range(draw(st.integers(min_value=1, max_value=4)))]
    points = st.integers(min_value=0, max_value=100)
    tender = Tender(bids, criteria, panel, [])
    full = [Score(*triple, draw(points)) for triple in tender.triples()]
    scorers = st.sampled_from([*panel, "outsider"])
    extras: list[Score] = []
    if bids:
        extra = st.builds(
            Score,
            scorers,
            st.sampled_from([bid.key for bid in bids]),
            st.sampled_from([criterion.name for criterion in criteria]),
            points,
        )
        extras = draw(st.lists(extra, max_size=10))
    scores = draw(st.permutations(full + extras))
    return Tender(bids, criteria, panel, list(scores))


def reference_ranking(tender: Tender) -> list[Ranked]:
    latest = {
        (score.scorer, score.bid_key, score.criterion): score.points for score in tender.scores
    }
    ranked = []
    for bid in tender.bids:
        weighted = Fraction(0)
        for criterion in tender.criteria:
            mean = Fraction(
                sum(latest[(scorer, bid.key, criterion.name)] for scorer in tender.panel),
                len(tender.panel),
            )
            weighted += Fraction(criterion.weight_bp, 10_000) * mean
        ranked.append(Ranked(bid, weighted))
    return sorted(ranked, key=lambda entry: (-entry.weighted, entry.bid.seq))


@given(tenders(), st.data())
def test_tender_ranking_matches_a_reference_in_fractions_whatever_the_panel_order(
    tender: Tender, data: st.DataObject
) -> None:
    expected = reference_ranking(tender)
    assert tender_ranking(tender.bids, tender.criteria, tender.panel, tender.scores) == expected
    shuffled = data.draw(st.permutations(tender.panel))
    assert tender_ranking(tender.bids, tender.criteria, shuffled, tender.scores) == expected
    award = tender_result(tender.bids, tender.criteria, shuffled, tender.scores)
    if not expected:
        assert award is None
    else:
        best = expected[0].bid
        assert award == Award(best.bidder, best.amount, best.key)
    assert all(0 <= entry.weighted <= 100 for entry in expected)


@given(tenders(), st.data())
def test_missing_scores_are_the_panels_unscored_triples(
    tender: Tender, data: st.DataObject
) -> None:
    kept = [score for score in tender.scores if data.draw(st.booleans())]
    given_by_panel = {
        (score.scorer, score.bid_key, score.criterion)
        for score in kept
        if score.scorer in tender.panel
    }
    expected = sorted(set(tender.triples()) - given_by_panel)
    assert missing_scores(tender.bids, tender.criteria, tender.panel, kept) == expected
    assert not missing_scores(tender.bids, tender.criteria, tender.panel, tender.scores)
