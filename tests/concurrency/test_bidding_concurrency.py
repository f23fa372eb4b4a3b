"""One English auction under 64 concurrent bidders on PostgreSQL, served by four uvicorn worker
processes: the accepted bids rise strictly, each by at least the increment; none is accepted
after the close; the highest accepted bid wins, its deposit applied and every other released."""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth.service import Role
from exchange.config import Settings
from exchange.db import Database
from exchange.demo import SeededAuction, seed_auction
from exchange.money import to_decimal_string, to_minor
from tests import conftest
from tests.concurrency.servers import Server, serve
from tests.conftest import Key, new_key, uid

pytestmark = pytest.mark.postgres

BIDDERS = 64
SERVER_WORKERS = 4
SERVER_POOL_SIZE = 5  # per process, and as many overflow: 4 x 10 connections in all
CONNECTIONS_SPARE = 10  # psql, autovacuum, the admin connection that drops the database
AUCTION_DURATION_S = 20  # from the seed's `now`: the seed takes some, the bidders the rest
BIDDING_S_MIN = 5.0  # the bidders must have at least this long before the close
CLOSE_GRACE_S = 20.0  # a bidder still running this long after the close has failed
PROXY_SHARE = 0.4  # of the bids, how many carry a proxy maximum
PROXY_STEPS_MAX = 30  # a proxy maximum is up to this many increments above the amount
RAISE_STEPS_MAX = 3  # a bid is the standing price plus 1 to this many increments
FEED_READ_SHARE = 0.05  # of the rounds, how many catch up on the public bid feed first
LEADING_PAUSE_S = (0.01, 0.05)  # a leader waits this long before trying again
CLOCK_SKEW_S = 0.01  # the client's and the database's clocks are the host's one clock
HTTP_TIMEOUT_S = 60.0
SEED = int(os.environ.get("BIDDING_STORM_SEED", str(time.time_ns() % 2**32)))

REFUSALS = {"bid_too_low", "already_leading", "auction_closed"}


# ---------------------------------------------------------------------------------------------
# The server: uvicorn with four worker processes, on a free loopback port


@pytest.fixture(scope="module")
def server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log_path = tmp_path_factory.mktemp("bidding_server") / "server.log"
    with serve(settings, log_path, workers=SERVER_WORKERS, pool_size=SERVER_POOL_SIZE) as running:
        yield running


# ---------------------------------------------------------------------------------------------
# What the bidders saw


def money(minor: int) -> dict[str, str]:
    return {"amount": to_decimal_string(minor, "CNY"), "currency": "CNY"}


def minor_of(value: dict[str, str]) -> int:
    return to_minor(value["amount"], value["currency"])


@dataclass(frozen=True)
class Answer:
    """One request a bidder sent and what came back, with the client's wall times. Status 0:
    no answer (the connection dropped)."""

    bidder: int  # the bidder task's index; -1 for the operator's reads afterwards
    method: str
    path: str
    sent: dict[str, Any] | None
    status: int
    body: dict[str, Any]
    sent_at: datetime
    received_at: datetime

    @property
    def code(self) -> str | None:
        return self.body.get("code") if self.status >= 400 else None

    def describe(self) -> str:
        return (
            f"{self.method} {self.path} {self.sent} sent {self.sent_at.isoformat()} -> "
            f"{self.status} at {self.received_at.isoformat()}: {str(self.body)[:600]}"
        )


@dataclass
class Record:
    answers: list[Answer] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)  # bidders that stopped without the close

    def bids(self) -> list[Answer]:
        return [a for a in self.answers if a.method == "POST"]

    def accepted(self) -> list[dict[str, Any]]:
        return [bid for a in self.bids() if a.status == 201 for bid in a.body["accepted"]]


@dataclass
class Bidder:
    index: int
    http: httpx.AsyncClient
    key: Key
    record: Record
    seen_seq: int = 0  # the last bid of the public feed this bidder has read
    price: int | None = None  # the standing price as this bidder last saw it

    async def send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Answer:
        sent_at = datetime.now(UTC)
        try:
            response = await self.http.request(
                method, path, json=body, params=params, headers=self.key.headers
            )
            status, parsed = response.status_code, _parsed(response)
        except httpx.TransportError as error:
            status, parsed = 0, {"transport_error": repr(error)}
        answer = Answer(self.index, method, path, body, status, parsed, sent_at, datetime.now(UTC))
        self.record.answers.append(answer)
        return answer

    def saw(self, bids: list[dict[str, Any]]) -> None:
        if bids and bids[-1]["seq"] > self.seen_seq:
            self.seen_seq = bids[-1]["seq"]
            self.price = minor_of(bids[-1]["amount"])


def _parsed(response: httpx.Response) -> dict[str, Any]:
    try:
        parsed = response.json()
    except ValueError:
        return {"text": response.text[:600]}
    return parsed if isinstance(parsed, dict) else {"items": parsed}


async def read_feed(bidder: Bidder, listing_id: str) -> None:
    """Catch up on the public bid feed (a read that also closes a due auction)."""
    answer = await bidder.send(
        "GET", f"/v1/listings/{listing_id}/bids", params={"after": bidder.seen_seq, "limit": 500}
    )
    if answer.status == 200:
        bidder.saw(answer.body["items"])


def next_bid(seeded: SeededAuction, price: int | None, rng: random.Random) -> dict[str, Any]:
    steps = rng.randint(1, RAISE_STEPS_MAX)
    amount = seeded.start_price + seeded.increment * (steps - 1)
    if price is not None:
        amount = price + seeded.increment * steps
    body: dict[str, Any] = {"amount": money(amount)}
    if rng.random() < PROXY_SHARE:
        body["max_amount"] = money(amount + seeded.increment * rng.randint(1, PROXY_STEPS_MAX))
    return body


async def bid_until_closed(
    bidder: Bidder, seeded: SeededAuction, closes_at: datetime, rng: random.Random
) -> None:
    """Outbid the standing price until the auction answers `auction_closed`; pause while
    leading. Stops on anything unexpected (a 5xx, an unknown refusal): the checks report it."""
    path = f"/v1/listings/{seeded.listing_id}/bids"
    give_up_at = closes_at + timedelta(seconds=CLOSE_GRACE_S)
    while datetime.now(UTC) < give_up_at:
        if rng.random() < FEED_READ_SHARE:
            await read_feed(bidder, seeded.listing_id)
        answer = await bidder.send("POST", path, next_bid(seeded, bidder.price, rng))
        if answer.status == 201:
            bidder.saw(answer.body["accepted"])
            if answer.body["accepted"][-1]["own"]:
                await asyncio.sleep(rng.uniform(*LEADING_PAUSE_S))
        elif answer.code == "auction_closed":
            return
        elif answer.code == "bid_too_low":
            bidder.price = int(answer.body["minimum"]) - seeded.increment
        elif answer.code == "already_leading":
            await asyncio.sleep(rng.uniform(*LEADING_PAUSE_S))
        else:
            bidder.record.unfinished.append(f"bidder {bidder.index}: {answer.describe()}")
            return
    bidder.record.unfinished.append(f"bidder {bidder.index}: no auction_closed by {give_up_at}")


# ---------------------------------------------------------------------------------------------
# The database's account of the auction


@dataclass(frozen=True)
class StoredBid:
    id: str
    seq: int
    party_id: str
    amount: int
    max_amount: int | None
    auto: bool
    placed_at: datetime


@dataclass(frozen=True)
class Stored:
    bids: list[StoredBid]
    auction: dict[str, Any]
    numbers: dict[int, str]  # public bidder number -> party
    intents: dict[str, str]  # party -> intent status


async def database_now(db: Database) -> datetime:
    async def read(session: AsyncSession) -> datetime:
        moment: datetime = (await session.execute(text("SELECT clock_timestamp()"))).scalar_one()
        return moment.astimezone(UTC)

    return await db.read(read)


async def connection_budget(db: Database) -> tuple[int, int]:
    """max_connections, and the connections open now (every database of the cluster)."""

    async def read(session: AsyncSession) -> tuple[int, int]:
        allowed = int((await session.execute(text("SHOW max_connections"))).scalar_one())
        used = int(
            (await session.execute(text("SELECT count(*) FROM pg_stat_activity"))).scalar_one()
        )
        return allowed, used

    return await db.read(read)


async def stored(db: Database, listing_id: str) -> Stored:
    async def read(session: AsyncSession) -> Stored:
        where = {"listing": listing_id}
        bids = await session.execute(
            text(
                "SELECT id, seq, party_id, amount, max_amount, auto, placed_at FROM bid "
                "WHERE listing_id = :listing ORDER BY seq"
            ),
            where,
        )
        auction = await session.execute(
            text(
                "SELECT status, closes_at, hard_close_at, closed_at, price, leader_party_id, "
                "leader_bid_id, winner_bid_id, last_seq FROM auction WHERE listing_id = :listing"
            ),
            where,
        )
        numbers = await session.execute(
            text("SELECT number, party_id FROM auction_bidder WHERE listing_id = :listing"), where
        )
        intents = await session.execute(
            text("SELECT party_id, status FROM listing_intent WHERE listing_id = :listing"), where
        )
        return Stored(
            bids=[
                StoredBid(
                    r.id,
                    r.seq,
                    r.party_id,
                    r.amount,
                    r.max_amount,
                    r.auto,
                    r.placed_at.astimezone(UTC),
                )
                for r in bids
            ],
            auction=dict(auction.one()._mapping),
            numbers={r.number: r.party_id for r in numbers},
            intents={r.party_id: r.status for r in intents},
        )

    return await db.read(read)


# ---------------------------------------------------------------------------------------------
# The checks: each a function that asserts; all are run, and every failure is reported


def server_errors(server: Server) -> list[str]:
    """The unhandled errors in the server's log: path and the exception's last lines."""
    found = []
    for line in server.log_tail(10**7).splitlines():
        if '"unhandled_error"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            found.append(line[:600])
            continue
        cause = " | ".join(entry.get("exception", "").strip().splitlines()[-3:])
        found.append(f"{entry.get('path')}: {cause}")
    return found


def check_answers(record: Record, server: Server) -> None:
    """Every request answered; no 5xx; a refused bid is one of the expected 409s; every read
    answered 200."""
    failed = [a.describe() for a in record.answers if a.status == 0 or a.status >= 500]
    assert not failed, (
        f"{len(failed)} requests failed, e.g. {failed[:3]}; "
        f"the server logged {Counter(server_errors(server)).most_common(3)}"
    )
    for answer in record.answers:
        if answer.method == "GET":
            assert answer.status == 200, answer.describe()
        elif answer.status != 201:
            assert answer.status == 409 and answer.code in REFUSALS, answer.describe()
    assert not record.unfinished, record.unfinished[:5]
    assert not server_errors(server), Counter(server_errors(server)).most_common(3)


def check_ladder(bids: list[StoredBid], seeded: SeededAuction) -> None:
    """seq 1..n without a gap; the first at least the start price; each at least the increment
    above the one before (so strictly rising)."""
    assert bids, "no bid was accepted"
    assert [b.seq for b in bids] == list(range(1, len(bids) + 1))
    assert bids[0].amount >= seeded.start_price, bids[0]
    for before, after in pairwise(bids):
        assert after.amount >= before.amount + seeded.increment, (before, after)


def check_accepted_are_stored(record: Record, data: Stored) -> None:
    """Each stored bid was answered as accepted exactly once, and as it is stored."""
    accepted = record.accepted()
    ids = [bid["id"] for bid in accepted]
    assert len(ids) == len(set(ids)), Counter(ids).most_common(3)
    by_id = {b.id: b for b in data.bids}
    assert set(ids) == set(by_id), set(ids) ^ set(by_id)
    for bid in accepted:
        row = by_id[bid["id"]]
        seen = (bid["seq"], data.numbers[bid["bidder"]], minor_of(bid["amount"]), bid["auto"])
        assert seen == (row.seq, row.party_id, row.amount, row.auto), (bid, row)
        assert datetime.fromisoformat(bid["placed_at"]) == row.placed_at, (bid, row)


def check_none_after_close(record: Record, data: Stored, planned_close: datetime) -> None:
    """Every bid placed before the close; every bid accepted was sent before it, every
    `auction_closed` received after it (one host, one clock); every bidder was told."""
    closes_at: datetime = data.auction["closes_at"].astimezone(UTC)
    assert closes_at == planned_close, ("no soft close: the close never moves", closes_at)
    late = [b for b in data.bids if b.placed_at >= closes_at]
    assert not late, (closes_at, late[:5])
    skew = timedelta(seconds=CLOCK_SKEW_S)
    bids = record.bids()
    sent_late = [a.describe() for a in bids if a.status == 201 and a.sent_at > closes_at + skew]
    assert not sent_late, (closes_at, sent_late[:5])
    closed_early = [
        a.describe()
        for a in bids
        if a.code == "auction_closed" and a.received_at < closes_at - skew
    ]
    assert not closed_early, (closes_at, closed_early[:5])
    told = {a.bidder for a in bids if a.code == "auction_closed"}
    assert told == set(range(BIDDERS)), sorted(set(range(BIDDERS)) - told)


def check_auction_closed_on_the_last_bid(data: Stored) -> None:
    last = data.bids[-1]
    auction = data.auction
    assert last.amount == max(b.amount for b in data.bids)
    assert auction["status"] == "closed", auction
    assert auction["last_seq"] == last.seq, auction
    assert (auction["winner_bid_id"], auction["leader_bid_id"]) == (last.id, last.id), auction
    assert (auction["leader_party_id"], auction["price"]) == (last.party_id, last.amount), auction


def check_listing(answer: Answer, data: Stored) -> None:
    assert answer.status == 200, answer.describe()
    listing, last = answer.body, data.bids[-1]
    assert listing["status"] == "awarded", listing
    view = listing["auction"]
    seen = (view["status"], view["winning_bid_id"], view["reserve_met"])
    assert seen == ("closed", last.id, True), view
    assert minor_of(view["current_price"]) == last.amount, view
    assert data.numbers[view["leading_bidder"]] == last.party_id, view


def check_deal(answer: Answer, data: Stored) -> None:
    assert answer.status == 200, answer.describe()
    deal, last = answer.body, data.bids[-1]
    assert deal["state"] == "awarded", deal
    assert deal["buyer_party_id"] == last.party_id, deal
    assert minor_of(deal["award_price"]) == last.amount, deal
    assert deal["winning_bid_id"] == last.id, deal


def check_deposits(answer: Answer, data: Stored, seeded: SeededAuction) -> None:
    """The winner's deposit applied, every other released; the API says as the table does."""
    winner = data.bids[-1].party_id
    assert set(data.intents) == set(seeded.bidder_party_ids), data.intents
    assert data.intents[winner] == "applied", data.intents[winner]
    others = Counter(s for p, s in data.intents.items() if p != winner)
    assert others == {"released": BIDDERS - 1}, others
    assert answer.status == 200, answer.describe()
    assert {i["party_id"]: i["status"] for i in answer.body["items"]} == data.intents


def check_alternation(bids: list[StoredBid]) -> None:
    """Nobody outbids itself: no two consecutive bids by one party, proxy answers included."""
    repeats = [(a, b) for a, b in pairwise(bids) if a.party_id == b.party_id]
    assert not repeats, (
        f"{len(repeats)} of {len(bids)} bids follow a bid of the same party, e.g. "
        + "; ".join(
            f"seq {a.seq} {a.party_id} {a.amount} auto={a.auto} max={a.max_amount} -> "
            f"seq {b.seq} {b.party_id} {b.amount} auto={b.auto}"
            for a, b in repeats[:3]
        )
    )


def failures_of(checks: dict[str, Callable[[], None]]) -> list[str]:
    failures = []
    for name, check in checks.items():
        try:
            check()
        except AssertionError as error:
            failures.append(f"{name}: {error}")
    return failures


def summary(record: Record, data: Stored, elapsed_s: float, bidding_s: float) -> str:
    bids = record.bids()
    refusals = Counter(a.code or str(a.status) for a in bids if a.status != 201)
    latencies = sorted((a.received_at - a.sent_at).total_seconds() * 1000 for a in bids) or [0.0]
    auto = sum(b.auto for b in data.bids)
    proxies = sum("max_amount" in (a.sent or {}) for a in bids)
    duels = Counter(len(a.body["accepted"]) - 1 for a in bids if a.status == 201)
    final = to_decimal_string(data.bids[-1].amount, "CNY") if data.bids else None
    return (
        f"bidding storm: seed={SEED} bidders={BIDDERS} workers={SERVER_WORKERS} "
        f"open_for={bidding_s:.1f}s elapsed={elapsed_s:.1f}s posts={len(bids)} "
        f"accepted={len(data.bids)} (auto={auto}) proxies_sent={proxies} "
        f"proxy_answers={dict(sorted(duels.items()))} "
        f"refused={dict(refusals.most_common())} reads={len(record.answers) - len(bids)} "
        f"bids/s={len(data.bids) / bidding_s:.0f} posts/s={len(bids) / elapsed_s:.0f} "
        f"post_ms p50={statistics.median(latencies):.0f} "
        f"p99={latencies[int(len(latencies) * 0.99)]:.0f} final={final}"
    )


# ---------------------------------------------------------------------------------------------
# The test


async def seed(db: Database, settings: Settings) -> tuple[SeededAuction, datetime]:
    """The auction, open from the database's now; and its planned close."""
    seed_now = await database_now(db)
    seeded = await db.run(
        lambda s: seed_auction(
            s,
            Path(settings.evidence_dir),
            name=uid("conc"),
            bidders=BIDDERS,
            now=seed_now,
            duration_s=AUCTION_DURATION_S,
        )
    )
    return seeded, seed_now + timedelta(seconds=AUCTION_DURATION_S)


async def test_64_bidders_on_4_processes_keep_the_english_ladder_and_the_close(
    server: Server, db: Database, clock: conftest.TestClock, operator: Key, settings: Settings
) -> None:
    assert len(server.worker_pids) == SERVER_WORKERS, server.worker_pids
    allowed, used = await connection_budget(db)
    needed = SERVER_WORKERS * 2 * SERVER_POOL_SIZE + 2 * settings.db_pool_size + CONNECTIONS_SPARE
    assert needed <= allowed, f"{needed} connections needed, max_connections is {allowed}"
    assert used + needed <= allowed, f"{used} of {allowed} connections are in use already"

    rng = random.Random(SEED)
    seeded, planned_close = await seed(db, settings)
    keys = [await new_key(db, clock, Role.member, p) for p in seeded.bidder_party_ids]

    record = Record()
    listing_path = f"/v1/listings/{seeded.listing_id}"
    async with AsyncExitStack() as stack:
        bidders = []
        for index, key in enumerate(keys):
            http = httpx.AsyncClient(base_url=server.base_url, timeout=HTTP_TIMEOUT_S)
            bidders.append(Bidder(index, await stack.enter_async_context(http), key, record))
        # A connection per request: a 5xx (the server drops that connection) spoils no other read.
        fresh = httpx.Limits(max_keepalive_connections=0)
        http = httpx.AsyncClient(base_url=server.base_url, timeout=HTTP_TIMEOUT_S, limits=fresh)
        admin = Bidder(-1, await stack.enter_async_context(http), operator, record)

        bidding_s = (planned_close - datetime.now(UTC)).total_seconds()
        assert bidding_s >= BIDDING_S_MIN, f"the seed left only {bidding_s:.1f} s of bidding"
        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for bidder in bidders:
                each = random.Random(rng.getrandbits(64))
                group.create_task(bid_until_closed(bidder, seeded, planned_close, each))
        elapsed_s = time.perf_counter() - started
        feed = await admin.send("GET", f"{listing_path}/bids", params={"limit": 1})
        listing = await admin.send("GET", listing_path)
        deal = await admin.send("GET", f"/v1/deals/{seeded.deal_id}")
        intents = await admin.send("GET", f"{listing_path}/intents")

    data = await stored(db, seeded.listing_id)
    print("\n" + summary(record, data, elapsed_s, bidding_s))
    assert data.bids, "no bid was accepted"
    assert feed.status == 200 and feed.body["status"] == "closed", feed.describe()
    failures = failures_of(
        {
            "answers": lambda: check_answers(record, server),
            "ladder": lambda: check_ladder(data.bids, seeded),
            "accepted_are_stored": lambda: check_accepted_are_stored(record, data),
            "none_after_close": lambda: check_none_after_close(record, data, planned_close),
            "auction_row": lambda: check_auction_closed_on_the_last_bid(data),
            "listing": lambda: check_listing(listing, data),
            "deal": lambda: check_deal(deal, data),
            "deposits": lambda: check_deposits(intents, data, seeded),
            "alternation": lambda: check_alternation(data.bids),
        }
    )
    assert not failures, "\n".join(failures)
