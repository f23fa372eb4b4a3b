"""Pure auction rules: increments, the English ladder with proxies and soft close, sealed-bid,
Dutch (descending clock) and tender (招标) results. No I/O: the service loads, calls, writes."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from fractions import Fraction
from itertools import pairwise

__all__ = [
    "BASIS_POINTS",
    "POINTS_MAX",
    "Award",
    "Criterion",
    "EnglishBook",
    "EnglishOutcome",
    "IncrementTier",
    "PlacedBid",
    "Ranked",
    "Refusal",
    "Score",
    "SealedBid",
    "TenderBid",
    "dutch_closes_at",
    "dutch_price",
    "english_bid",
    "english_result",
    "increment_at",
    "minimum_next",
    "missing_scores",
    "sealed_result",
    "tender_ranking",
    "tender_result",
]

BASIS_POINTS = 10_000  # the weights of a tender's criteria sum to this
POINTS_MAX = 100  # a panelist scores each criterion from 0 to this


# --- increments --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncrementTier:
    """From `from_price` up (until the next tier), a bid must rise by at least `increment`."""

    from_price: int
    increment: int


def _assert_tiers(tiers: Sequence[IncrementTier]) -> None:
    assert tiers, "an increment table needs at least one tier"
    assert tiers[0].from_price == 0, tiers[0]
    assert all(tier.increment > 0 for tier in tiers), tiers
    assert all(low.from_price < high.from_price for low, high in pairwise(tiers)), tiers


def _tier_index(price: int, tiers: Sequence[IncrementTier]) -> int:
    assert price >= 0, price
    return bisect_right(tiers, price, key=lambda tier: tier.from_price) - 1


def increment_at(price: int, tiers: Sequence[IncrementTier]) -> int:
    _assert_tiers(tiers)
    return tiers[_tier_index(price, tiers)].increment


def minimum_next(current: int | None, start_price: int, tiers: Sequence[IncrementTier]) -> int:
    """The lowest acceptable bid: the start price first, then the current price plus its step."""
    if current is None:
        return start_price
    return current + increment_at(current, tiers)


def _steps_in_tier(price: int, index: int, tiers: Sequence[IncrementTier]) -> int | None:
    """Steps of the ladder from `price` until it reaches the next tier; None in the last tier."""
    if index == len(tiers) - 1:
        return None
    gap = tiers[index + 1].from_price - price
    return -(-gap // tiers[index].increment)


def _ladder_price(price: int, steps: int, tiers: Sequence[IncrementTier]) -> int:
    """The price `steps` minimum raises above `price`, a whole tier's run at a time."""
    assert steps >= 0, steps
    for _ in range(len(tiers)):
        index = _tier_index(price, tiers)
        in_tier = _steps_in_tier(price, index, tiers)
        run = steps if in_tier is None else min(steps, in_tier)
        price += run * tiers[index].increment
        steps -= run
        if steps == 0:
            return price
    raise AssertionError("each run but the last moves the ladder up a tier")


def _ladder_steps_within(price: int, cap: int, tiers: Sequence[IncrementTier]) -> int:
    """How many minimum raises above `price` stay at or below `cap`."""
    steps = 0
    for _ in range(len(tiers)):
        index = _tier_index(price, tiers)
        increment = tiers[index].increment
        affordable = (cap - price) // increment
        in_tier = _steps_in_tier(price, index, tiers)
        if affordable <= 0:
            return steps
        if in_tier is None or affordable < in_tier:
            return steps + affordable
        steps += in_tier
        price += in_tier * increment
    raise AssertionError("each run but the last moves the ladder up a tier")


# --- English (ascending, open) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    """A bid the rules refuse: an operating error for the service to raise, not a bug."""

    code: str
    detail: str
    minimum: int | None = None  # for bid_too_low: the lowest acceptable amount


@dataclass(frozen=True, slots=True)
class EnglishBook:
    """The bidding state of one English auction."""

    price: int | None  # None before the first bid
    leader: str | None
    leader_max: int | None  # the leader's proxy maximum; None: no proxy (the price is its max)
    closes_at: datetime
    hard_close_at: datetime  # soft-close extensions never go past it


@dataclass(frozen=True, slots=True)
class PlacedBid:
    bidder: str
    amount: int
    auto: bool  # placed by a proxy on the bidder's behalf


@dataclass(frozen=True, slots=True)
class EnglishOutcome:
    book: EnglishBook
    placed: tuple[PlacedBid, ...]  # what to record, in order


def _assert_book(book: EnglishBook) -> None:
    assert (book.price is None) == (book.leader is None), book
    assert book.leader is not None or book.leader_max is None, book
    assert book.price is None or book.price > 0, book
    assert book.leader_max is None or book.price is None or book.leader_max >= book.price, book
    assert book.closes_at.tzinfo is not None and book.hard_close_at.tzinfo is not None, book
    assert book.closes_at <= book.hard_close_at, book


def _english_refusal(
    book: EnglishBook,
    bidder: str,
    amount: int,
    max_amount: int | None,
    now: datetime,
    minimum: int,
) -> Refusal | None:
    if now >= book.closes_at:
        return Refusal("auction_closed", f"The auction closed at {book.closes_at.isoformat()}.")
    if bidder == book.leader:
        return Refusal("already_leading", "You are leading already; you may not outbid yourself.")
    if max_amount is not None and max_amount < amount:
        return Refusal("max_below_amount", "The proxy maximum is below the amount bid.")
    if amount < minimum:
        return Refusal("bid_too_low", f"The bid must be at least {minimum}.", minimum=minimum)
    return None


def _duel(
    book: EnglishBook, bidder: str, amount: int, new_max: int, tiers: Sequence[IncrementTier]
) -> tuple[PlacedBid, ...]:
    """The proxy answers after a new bid, as recorded: none, the one, or the last two (only the
    last when the one before it is the new bidder's own raise, so no bidder follows itself).

    Whoever moves, the k-th answer is the k-th minimum raise above `amount`; the old leader moves
    on odd k. A bidder can make every raise up to its maximum, so the duel stops at the first odd k
    past the old leader's reach or the first even k past the new bidder's.
    """
    if book.leader is None or book.price is None:
        return ()
    old_max = book.price if book.leader_max is None else book.leader_max
    old_reach = _ladder_steps_within(amount, old_max, tiers)
    new_reach = _ladder_steps_within(amount, new_max, tiers)
    old_stops = old_reach + 1 if old_reach % 2 == 0 else old_reach + 2
    new_stops = new_reach + 1 if new_reach % 2 == 1 else new_reach + 2
    answers = min(old_stops, new_stops) - 1
    if answers == 0:
        return ()

    def answer(k: int, price: int) -> PlacedBid:
        assert book.leader is not None
        return PlacedBid(book.leader if k % 2 == 1 else bidder, price, auto=True)

    before_last = _ladder_price(amount, answers - 1, tiers)
    last = answer(answers, before_last + increment_at(before_last, tiers))
    if answers == 1:
        return (last,)
    loser = answer(answers - 1, before_last)
    if loser.bidder == bidder:
        # The new bidder's own proxy raise would follow its bid: the record shows the old
        # leader's final answer right after the bid instead (still at least one increment up).
        return (last,)
    return (loser, last)


def english_bid(
    book: EnglishBook,
    *,
    bidder: str,
    amount: int,
    max_amount: int | None,
    now: datetime,
    start_price: int,
    tiers: Sequence[IncrementTier],
    soft_close_s: int,
) -> EnglishOutcome | Refusal:
    """A bid (with an optional proxy maximum) on an English auction: refused, or the bids to
    record, the proxies' answers included, and the book after them."""
    _assert_book(book)
    _assert_tiers(tiers)
    assert now.tzinfo is not None, now
    assert start_price > 0, start_price
    assert soft_close_s >= 0, soft_close_s
    minimum = minimum_next(book.price, start_price, tiers)
    refusal = _english_refusal(book, bidder, amount, max_amount, now, minimum)
    if refusal is not None:
        return refusal

    new_max = amount if max_amount is None else max_amount
    placed = (PlacedBid(bidder, amount, auto=False), *_duel(book, bidder, amount, new_max, tiers))
    last = placed[-1]
    closes_at = book.closes_at
    soft_close = timedelta(seconds=soft_close_s)
    if closes_at - now < soft_close:
        closes_at = min(closes_at + soft_close, book.hard_close_at)
    after = replace(
        book,
        price=last.amount,
        leader=last.bidder,
        leader_max=max_amount if last.bidder == bidder else book.leader_max,
        closes_at=closes_at,
    )
    return EnglishOutcome(book=after, placed=placed)


@dataclass(frozen=True, slots=True)
class Award:
    bidder: str
    price: int
    bid_key: str  # the winning bid's key


def english_result(book: EnglishBook, reserve: int, winning_bid_key: str) -> Award | None:
    """The leader wins at the standing price if it meets the reserve; otherwise unsold."""
    _assert_book(book)
    assert reserve > 0, reserve
    if book.leader is None or book.price is None or book.price < reserve:
        return None
    return Award(book.leader, book.price, winning_bid_key)


# --- sealed bids -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SealedBid:
    key: str  # the bid's id
    bidder: str
    amount: int
    seq: int  # sequence number of the bid's effective (latest) revision; lower = earlier


def sealed_result(bids: Sequence[SealedBid], reserve: int, *, second_price: bool) -> Award | None:
    """The highest bid wins (the earlier on a tie) if it meets the reserve. It pays its own amount
    (first price) or the best other amount, raised to the reserve (second price, Vickrey)."""
    assert reserve > 0, reserve
    assert len({bid.bidder for bid in bids}) == len(bids), "one effective bid per bidder"
    assert len({bid.seq for bid in bids}) == len(bids), "sequence numbers are unique"
    ranked = sorted(bids, key=lambda bid: (-bid.amount, bid.seq))
    if not ranked or ranked[0].amount < reserve:
        return None
    winner = ranked[0]
    price = winner.amount
    if second_price:
        price = max(ranked[1].amount, reserve) if len(ranked) > 1 else reserve
    assert reserve <= price <= winner.amount, (price, winner)
    return Award(winner.bidder, price, winner.key)


# --- Dutch (descending clock) ------------------------------------------------------------------


def _assert_dutch(start: int, step: int, floor: int, opens_at: datetime, interval_s: int) -> None:
    assert 0 < floor <= start, (floor, start)
    assert step > 0, step
    assert interval_s > 0, interval_s
    assert opens_at.tzinfo is not None, opens_at


def dutch_price(
    *, start: int, step: int, floor: int, opens_at: datetime, interval_s: int, now: datetime
) -> int:
    """The clock's price: `start` until it opens, then `step` lower every interval, down to
    `floor`."""
    _assert_dutch(start, step, floor, opens_at, interval_s)
    assert now.tzinfo is not None, now
    if now < opens_at:
        return start
    ticks = (now - opens_at) // timedelta(seconds=interval_s)
    return max(floor, start - step * ticks)


def dutch_closes_at(
    *, start: int, step: int, floor: int, opens_at: datetime, interval_s: int
) -> datetime:
    """When a clock nobody stopped closes: one interval after its price reaches the floor."""
    _assert_dutch(start, step, floor, opens_at, interval_s)
    ticks_to_floor = -(-(start - floor) // step)
    return opens_at + timedelta(seconds=interval_s) * (ticks_to_floor + 1)


# --- tender (招标) -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Criterion:
    name: str
    weight_bp: int  # basis points; a tender's criteria sum to BASIS_POINTS


@dataclass(frozen=True, slots=True)
class TenderBid:
    key: str
    bidder: str
    amount: int
    seq: int


@dataclass(frozen=True, slots=True)
class Score:
    scorer: str
    bid_key: str
    criterion: str
    points: int  # 0..POINTS_MAX


@dataclass(frozen=True, slots=True)
class Ranked:
    bid: TenderBid
    weighted: Fraction  # sum over criteria of weight times the panel's mean points, exact


def _assert_tender(
    bids: Sequence[TenderBid], criteria: Sequence[Criterion], panel: Collection[str]
) -> None:
    assert len({bid.key for bid in bids}) == len(bids), "bid keys are unique"
    assert len({bid.seq for bid in bids}) == len(bids), "sequence numbers are unique"
    assert len({criterion.name for criterion in criteria}) == len(criteria), criteria
    assert all(criterion.weight_bp > 0 for criterion in criteria), criteria
    assert sum(criterion.weight_bp for criterion in criteria) == BASIS_POINTS, criteria
    assert len(set(panel)) == len(panel), panel


def _latest_points(
    bids: Sequence[TenderBid],
    criteria: Sequence[Criterion],
    panel: Collection[str],
    scores: Sequence[Score],
) -> dict[tuple[str, str, str], int]:
    """The points that count, by (scorer, bid key, criterion): panel members' latest, on bids and
    criteria of this tender (a score of anyone else, or on a withdrawn bid, is ignored)."""
    _assert_tender(bids, criteria, panel)
    members = set(panel)
    keys = {bid.key for bid in bids}
    names = {criterion.name for criterion in criteria}
    latest: dict[tuple[str, str, str], int] = {}
    for score in scores:
        assert 0 <= score.points <= POINTS_MAX, score
        if score.scorer in members and score.bid_key in keys and score.criterion in names:
            latest[(score.scorer, score.bid_key, score.criterion)] = score.points
    return latest


def _missing(
    latest: dict[tuple[str, str, str], int],
    bids: Sequence[TenderBid],
    criteria: Sequence[Criterion],
    panel: Collection[str],
) -> list[tuple[str, str, str]]:
    return sorted(
        (scorer, bid.key, criterion.name)
        for scorer in panel
        for bid in bids
        for criterion in criteria
        if (scorer, bid.key, criterion.name) not in latest
    )


def _weighted(
    latest: dict[tuple[str, str, str], int],
    bid: TenderBid,
    criteria: Sequence[Criterion],
    panel: Collection[str],
) -> Fraction:
    total = Fraction(0)
    for criterion in criteria:
        points = sum(latest[(scorer, bid.key, criterion.name)] for scorer in panel)
        total += Fraction(criterion.weight_bp, BASIS_POINTS) * Fraction(points, len(panel))
    return total


def missing_scores(
    bids: Sequence[TenderBid],
    criteria: Sequence[Criterion],
    panel: Collection[str],
    scores: Sequence[Score],
) -> list[tuple[str, str, str]]:
    """The (scorer, bid key, criterion) triples the panel has still to score, sorted."""
    return _missing(_latest_points(bids, criteria, panel, scores), bids, criteria, panel)


def tender_ranking(
    bids: Sequence[TenderBid],
    criteria: Sequence[Criterion],
    panel: Collection[str],
    scores: Sequence[Score],
) -> list[Ranked]:
    """Every bid with its weighted score, best first; the earlier bid first on a tie."""
    latest = _latest_points(bids, criteria, panel, scores)
    assert not bids or panel, "a tender with bids needs a panel"
    assert not _missing(latest, bids, criteria, panel), "the panel has not scored every bid"
    ranked = [Ranked(bid, _weighted(latest, bid, criteria, panel)) for bid in bids]
    return sorted(ranked, key=lambda entry: (-entry.weighted, entry.bid.seq))


def tender_result(
    bids: Sequence[TenderBid],
    criteria: Sequence[Criterion],
    panel: Collection[str],
    scores: Sequence[Score],
) -> Award | None:
    """The best-ranked bid wins at its own amount; no bids, no award."""
    ranking = tender_ranking(bids, criteria, panel, scores)
    if not ranking:
        return None
    best = ranking[0].bid
    return Award(best.bidder, best.amount, best.key)
