"""Bidding throughput and latency on PostgreSQL, beside raw-SQL baselines measured in the same run.

    .venv/bin/python bench/bidding.py [--quick] [--duration S] [--phases r,l,h,m]
                                      [--http-workers 2] [--clients 64] [--auctions 1000]

Phases (each: a short warm-up, then a fixed measured window):
  (r) raw ceiling: asyncpg alone, `--concurrency` connections each looping the bid's core
      transaction on one seeded auction: BEGIN; SELECT the auction row FOR UPDATE; validate
      (amount >= price + increment); INSERT the bid; UPDATE the auction's price, leader and
      sequence; COMMIT. Each bids over the price it read under the lock, so each is accepted.
  (l) the ledger's raw single-transfer baseline, phase (a) of bench/ledger.py (the service's
      statements through asyncpg alone), on 1,000 accounts, for the same window.
  (h) HTTP: POST /v1/listings/{id}/bids on one hot English auction, `--clients` keep-alive
      clients, each a registered bidder with its own key, against `python -m exchange serve`
      with `--http-workers` uvicorn workers, once per bidder behaviour (`--hot-strategies`):
        race    each client bids the lowest acceptable amount it knows of (its last 201's price
                or 409's `minimum`) plus 0..jump-1 increments: most bids race and are refused;
        ladder  the clients share one view and each bid outbids the one sent before it: most
                are accepted, unless reordered on the way (between processes, say).
      Accepted bids/s is the target's figure; requests/s, the outcomes and the latency of all
      requests and of the accepted ones are printed too.
  (m) HTTP across `--auctions` auctions (1,000), `--bidders` registered bidders each: every
      request goes to a random auction for a random bidder of it that is not known to lead;
      the clients share what they learn of each auction's price.
Targets (h): >= 800 accepted bids/s and p99 <= 100 ms. (h) is compared with (r), (m) with (l).

It creates a scratch database (BENCH_DATABASE_URL, default the local server; loopback only),
migrates it, seeds the auctions with `exchange.demo.seed_auction` (timed apart) and drops the
database at the end, also on error or Ctrl-C. During each phase it measures the CPU of client,
server and PostgreSQL, and samples pg_stat_activity to show what the backends wait on. Misses
and server errors are reported, never raised: it exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench` as a namespace package

import asyncpg
import orjson
from bench.ledger import (
    REPO,
    WATCH,
    CpuWatch,
    Result,
    Server,
    checkpoint,
    drive,
    dsn_of,
    fmt_ms,
    percentile,
    raw_transfer,
    read_response,
    run_loops,
    run_raw,
    setup_ledger,
    with_scratch_database,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from exchange import logs
from exchange.auth.service import Role, create_key
from exchange.config import Settings
from exchange.db import Database
from exchange.demo import SeededAuction, seed_auction
from exchange.money import to_decimal_string, to_minor

TARGET_HOT_ACCEPTED_RATE = 800  # (h) accepted bids/s
TARGET_HOT_P99_MS = 100.0  # (h) p99 of all requests
AUCTION_DURATION_S = 2 * 3600  # nothing closes mid-run (the seed's soft close is 0)
SEED_CONCURRENCY = 4  # auctions seeded at once
REQUEST_TIMEOUT_S = 10.0
ACTIVITY_INTERVAL_S = 0.02  # pg_stat_activity sampling
LOG_LINES_MAX = 8  # server log lines quoted per phase
NOISE_CORES = 0.25


# ---------------------------------------------------------------------------------------------
# Setup: auctions, bidders and their keys


@dataclass
class Auction:
    """A seeded auction as the load generator knows it; `floor` and `leader` are the lowest
    acceptable amount and the leading party as last seen in a response."""

    seeded: SeededAuction
    tokens: dict[str, str]  # bidder party id -> bearer token
    floor: int = 0
    leader: str | None = None

    @property
    def listing_id(self) -> str:
        return self.seeded.listing_id

    @property
    def increment(self) -> int:
        return self.seeded.increment


async def seed_with_keys(
    db: Database, evidence_root: Path, name: str, bidders: int, keys: bool
) -> Auction:
    """One auction in bidding (open for AUCTION_DURATION_S from now) and a member key for each
    of its bidders, in one unit of work."""

    async def work(session: AsyncSession) -> Auction:
        now = datetime.now(UTC)
        seeded = await seed_auction(
            session, evidence_root, name=name, bidders=bidders, now=now,
            duration_s=AUCTION_DURATION_S,
        )  # fmt: skip
        tokens = {}
        for party_id in seeded.bidder_party_ids if keys else []:
            _, tokens[party_id] = await create_key(
                session, role=Role.member, party_id=party_id, name=f"bench {party_id}", now=now
            )
        return Auction(seeded, tokens, floor=seeded.start_price)

    return await db.run(work)


async def seed_many(
    db: Database, evidence_root: Path, prefix: str, count: int, bidders: int
) -> list[Auction]:
    """`count` auctions, SEED_CONCURRENCY at a time (the first alone: it opens the exchange's
    clearing account that the others then share)."""
    first = await seed_with_keys(db, evidence_root, f"{prefix}-0", bidders, True)
    gate = asyncio.Semaphore(SEED_CONCURRENCY)

    async def one(index: int) -> Auction:
        async with gate:
            return await seed_with_keys(db, evidence_root, f"{prefix}-{index}", bidders, True)

    rest = await asyncio.gather(*(one(i) for i in range(1, count)))
    return [first, *rest]


# ---------------------------------------------------------------------------------------------
# What PostgreSQL's backends are doing


@dataclass
class Activity:
    """Backends of the bench database by state, averaged over samples: waiting for a lock,
    running (on CPU), waiting on something else while active (WAL flush, I/O, LWLock), idle
    inside a transaction (waiting for its client), idle; and the commits and rollbacks."""

    samples: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    waits: Counter[str] = field(default_factory=Counter)  # active non-lock waits, by event
    commits: int = 0
    rollbacks: int = 0

    def mean(self, state: str) -> float:
        return self.counts[state] / self.samples if self.samples else 0.0

    def summary(self, seconds: float) -> str:
        states = ("lock", "running", "waiting", "idle in tx", "idle")
        text = ", ".join(f"{s} {self.mean(s):.1f}" for s in states)
        top = ", ".join(f"{w} {n / max(1, self.samples):.1f}" for w, n in self.waits.most_common(3))
        rates = (
            f"{self.commits / seconds:,.0f} commits/s, {self.rollbacks / seconds:,.0f} rollbacks/s"
        )
        waits = f" (active waits: {top})" if top else ""
        return f"backends on average: {text}{waits}; {rates}"


SQL_ACTIVITY = """
SELECT CASE
         WHEN wait_event_type = 'Lock' THEN 'lock'
         WHEN state = 'active' AND wait_event IS NULL THEN 'running'
         WHEN state = 'active' THEN 'waiting'
         WHEN state LIKE 'idle in transaction%' THEN 'idle in tx'
         ELSE 'idle'
       END AS what,
       CASE WHEN state = 'active' AND wait_event_type IS DISTINCT FROM 'Lock'
            THEN wait_event_type || ':' || wait_event END AS wait
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
"""
SQL_XACTS = "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = $1"


async def watch_activity(dsn: str, activity: Activity, until: float) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        database = await conn.fetchval("SELECT current_database()")
        before = await conn.fetchrow(SQL_XACTS, database)
        while time.perf_counter() < until:
            for row in await conn.fetch(SQL_ACTIVITY):
                activity.counts[row["what"]] += 1
                if row["wait"]:
                    activity.waits[row["wait"]] += 1
            activity.samples += 1
            await asyncio.sleep(ACTIVITY_INTERVAL_S)
        after = await conn.fetchrow(SQL_XACTS, database)
        activity.commits = after["xact_commit"] - before["xact_commit"]
        activity.rollbacks = after["xact_rollback"] - before["xact_rollback"]
    finally:
        await conn.close()


# ---------------------------------------------------------------------------------------------
# Measurement


@dataclass
class BidResult(Result):
    """A bidding phase: `transfers` counts accepted bids (the figure of the target), `requests`
    every answered request; `latencies` are of all requests, `accepted_latencies` of the 201s."""

    requests: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    accepted_latencies: list[float] = field(default_factory=list)
    activity: Activity | None = None
    server_log: list[str] = field(default_factory=list)

    def finish(self) -> BidResult:
        super().finish()
        self.accepted_latencies.sort()
        return self

    @property
    def request_rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def ms_at(ordered: list[float], q: float) -> float | None:
    return percentile(ordered, q) * 1000 if ordered else None


ACCEPTED = "201"


async def drive_bids(
    result: BidResult,
    clients: int,
    make_op: Callable[[int], Callable[[], Awaitable[str]]],
    warmup: float,
    duration: float,
    dsn: str,
) -> BidResult:
    """Run `clients` loops of an op that answers with its outcome ("201", "409 bid_too_low",
    "500"...); the requests answered inside the measured window count. While measuring, the
    CPU and PostgreSQL's backends are watched."""
    activity = result.activity = Activity()

    def record(outcome: str, latency: float) -> None:
        result.requests += 1
        result.outcomes[outcome] += 1
        result.latencies.append(latency)
        if outcome == ACCEPTED:
            result.transfers += 1
            result.accepted_latencies.append(latency)

    async def watcher(measure_from: float, stop_at: float) -> None:
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        WATCH.start()
        await watch_activity(dsn, activity, stop_at)
        result.cpu = WATCH.stop()

    await run_loops(result, clients, make_op, warmup, duration, record, watcher)
    return result.finish()


# ---------------------------------------------------------------------------------------------
# (r): the bid's core transaction through asyncpg alone

SQL_LOCK_AUCTION = (
    "SELECT price, start_price, last_seq, leader_party_id FROM auction "
    "WHERE listing_id = $1 FOR UPDATE"
)
SQL_INSERT_BID = (
    "INSERT INTO bid (id, listing_id, seq, party_id, amount, max_amount, auto, proposal_sha256, "
    "placed_at) VALUES ($1, $2, $3, $4, $5, NULL, false, NULL, now())"
)
SQL_UPDATE_AUCTION = (
    "UPDATE auction SET price = $2, leader_party_id = $3, leader_bid_id = $4, last_seq = $5 "
    "WHERE listing_id = $1"
)


async def raw_bid(
    conn: asyncpg.Connection, auction: SeededAuction, bidders: tuple[str, str], jump: int
) -> int:
    """Lock, validate, insert, update: one accepted bid of the first of `bidders` that is not
    leading, `jump` increments over the minimum read under the lock."""
    async with conn.transaction():
        row = await conn.fetchrow(SQL_LOCK_AUCTION, auction.listing_id)
        minimum = row["start_price"] if row["price"] is None else row["price"] + auction.increment
        amount = minimum + jump * auction.increment
        party_id = bidders[0] if bidders[0] != row["leader_party_id"] else bidders[1]
        if amount < minimum or party_id == row["leader_party_id"]:
            return 0  # refused: the transaction writes nothing
        seq = row["last_seq"] + 1
        bid_id = "bid_" + secrets.token_hex(10)
        await conn.execute(SQL_INSERT_BID, bid_id, auction.listing_id, seq, party_id, amount)
        await conn.execute(SQL_UPDATE_AUCTION, auction.listing_id, amount, party_id, bid_id, seq)
    return 1


async def run_raw_bids(
    result: Result,
    dsn: str,
    auction: SeededAuction,
    concurrency: int,
    jump_max: int,
    warmup: float,
    duration: float,
) -> Result:
    conns = await asyncio.gather(*(asyncpg.connect(dsn) for _ in range(concurrency)))
    parties = auction.bidder_party_ids
    try:

        def make_op(index: int) -> Callable[[], Awaitable[int]]:
            rng = random.Random(f"r-{index}")
            conn = conns[index]
            bidders = (parties[index % len(parties)], parties[(index + 1) % len(parties)])
            return lambda: raw_bid(conn, auction, bidders, rng.randrange(jump_max))

        return await drive(result, concurrency, make_op, warmup, duration)
    finally:
        await asyncio.gather(*(conn.close() for conn in conns), return_exceptions=True)


# ---------------------------------------------------------------------------------------------
# (h) and (m): HTTP


class Client:
    """One keep-alive HTTP/1.1 connection, reopened after an error."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def bid(self, auction: Auction, party_id: str, amount: int) -> tuple[int, bytes]:
        body = orjson.dumps(
            {"amount": {"amount": to_decimal_string(amount, auction.seeded.currency),
                        "currency": auction.seeded.currency}}
        )  # fmt: skip
        head = (
            f"POST /v1/listings/{auction.listing_id}/bids HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {auction.tokens[party_id]}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.streams
        try:
            writer.write(head.encode() + body)
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                return await read_response(reader)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


def learn(auction: Auction, party_id: str, status: int, body: bytes) -> str:
    """Update what is known of `auction` from the answer to `party_id`'s bid; the outcome."""
    if status == 201:
        view = orjson.loads(body)["auction"]
        price = to_minor(view["current_price"]["amount"], auction.seeded.currency)
        auction.floor = max(auction.floor, price + auction.increment)
        auction.leader = party_id
        return ACCEPTED
    if status == 409:
        problem = orjson.loads(body)
        code = problem.get("code", "?")
        if code == "bid_too_low" and isinstance(problem.get("minimum"), int):
            auction.floor = max(auction.floor, problem["minimum"])
        elif code == "already_leading":
            auction.leader = party_id
        return f"409 {code}"
    return str(status)


async def run_hot(
    result: BidResult,
    port: int,
    auction: Auction,
    clients: int,
    jump_max: int,
    strategy: str,
    args: RunArgs,
) -> BidResult:
    """Every client a bidder of one auction. Racing: each knows only what its own answers told
    it. Ladder: the clients share one view and every bid is the increment over the one sent
    before it (as bidders who outbid what they expect to be there by the time theirs lands)."""
    parties = auction.seeded.bidder_party_ids
    shared = Auction(auction.seeded, auction.tokens, floor=auction.floor)
    views = [
        shared if strategy == "ladder" else Auction(auction.seeded, auction.tokens, auction.floor)
        for _ in range(clients)
    ]
    pool = [Client(port) for _ in range(clients)]
    try:

        def make_op(index: int) -> Callable[[], Awaitable[str]]:
            rng = random.Random(f"h-{index}")
            client, party_id, known = pool[index], parties[index % len(parties)], views[index]

            async def op() -> str:
                amount = known.floor + rng.randrange(jump_max) * known.increment
                if strategy == "ladder":
                    known.floor = amount + known.increment
                status, body = await client.bid(known, party_id, amount)
                return learn(known, party_id, status, body)

            return op

        return await drive_bids(result, clients, make_op, args.warmup, args.duration, args.dsn)
    finally:
        auction.floor = max(view.floor for view in views)  # where the next phase starts
        for client in pool:
            client.close()


async def run_many(
    result: BidResult, port: int, auctions: list[Auction], clients: int, jump_max: int,
    args: RunArgs,
) -> BidResult:  # fmt: skip
    """Every request to a random auction, for a random bidder of it not known to lead; the
    clients share what they learn (one market view)."""
    pool = [Client(port) for _ in range(clients)]
    try:

        def make_op(index: int) -> Callable[[], Awaitable[str]]:
            rng = random.Random(f"m-{index}")
            client = pool[index]

            async def op() -> str:
                auction = rng.choice(auctions)
                bidders = [p for p in auction.seeded.bidder_party_ids if p != auction.leader]
                party_id = rng.choice(bidders)
                amount = auction.floor + rng.randrange(jump_max) * auction.increment
                status, body = await client.bid(auction, party_id, amount)
                return learn(auction, party_id, status, body)

            return op

        return await drive_bids(result, clients, make_op, args.warmup, args.duration, args.dsn)
    finally:
        for client in pool:
            client.close()


@dataclass(frozen=True)
class RunArgs:
    warmup: float
    duration: float
    dsn: str


async def run_http(
    result: BidResult,
    url: str,
    workers: int,
    log_path: Path,
    servers: list[Server],
    load: Callable[..., Awaitable[BidResult]],
) -> BidResult:
    """Start a server, run `load(port)` against it, stop it; quote what it logged meanwhile."""
    server = Server(url, workers, log_path)
    servers.append(server)
    log_from = log_size(log_path)
    try:
        await server.start()
        return await load(port=server.port)
    except Exception as error:
        result.failed = f"{type(error).__name__}: {error}"
        return result
    finally:
        server.stop()
        result.server_log = server_log_since(log_path, log_from)


def log_size(log_path: Path) -> int:
    try:
        return log_path.stat().st_size
    except OSError:
        return 0


def server_log_since(log_path: Path, offset: int) -> list[str]:
    with contextlib.suppress(OSError), log_path.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace").splitlines()
    return []


# ---------------------------------------------------------------------------------------------
# The run


@dataclass
class Options:
    quick: bool
    warmup: float
    duration: float
    concurrency: int
    clients: int
    http_workers: list[int]
    auctions: int
    bidders: int
    jump_max: int
    hot_strategies: list[str]
    accounts: int
    phases: set[str]


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 s per phase instead of 20 s")
    parser.add_argument("--duration", type=float, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per phase")
    parser.add_argument("--concurrency", type=int, default=16, help="(r), (l): connections")
    parser.add_argument("--clients", type=int, default=64, help="(h), (m): HTTP clients")
    parser.add_argument("--http-workers", default="2", help="(h), (m): uvicorn worker counts")
    parser.add_argument("--auctions", type=int, default=1000, help="(m)")
    parser.add_argument("--bidders", type=int, default=3, help="(m): bidders per auction")
    parser.add_argument(
        "--jump", type=int, default=4, help="bids are the known minimum + 0..jump-1 increments"
    )
    parser.add_argument(
        "--hot-strategies",
        default="race,ladder",
        help="(h): race (each client knows its own answers), ladder (each bid outbids the last)",
    )
    parser.add_argument("--accounts", type=int, default=1000, help="(l): ledger accounts")
    parser.add_argument("--phases", default="r,l,h,m", help="which phases to run")
    args = parser.parse_args(argv)
    duration = args.duration or (5.0 if args.quick else 20.0)
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0)
    workers = [int(w) for w in args.http_workers.split(",") if w.strip()]
    phases = {phase.strip() for phase in args.phases.split(",") if phase.strip()}
    if not phases <= {"r", "l", "h", "m"}:
        parser.error("--phases: a comma-separated subset of r,l,h,m")
    if not (1 <= args.concurrency <= 64 and 1 <= args.clients <= 256):
        parser.error("--concurrency 1..64, --clients 1..256")
    if not (1 <= args.auctions <= 10_000 and 2 <= args.bidders <= 16 and 1 <= args.jump <= 1000):
        parser.error("--auctions 1..10000, --bidders 2..16, --jump 1..1000")
    strategies = [s.strip() for s in args.hot_strategies.split(",") if s.strip()]
    if not (strategies and set(strategies) <= {"race", "ladder"}):
        parser.error("--hot-strategies: race, ladder or both")
    if not (2 <= args.accounts <= 99_999):
        parser.error("--accounts 2..99999")
    if not (0 < duration <= 600 and 0 <= warmup <= 60 and all(1 <= w <= 8 for w in workers)):
        parser.error("--duration 0..600, --warmup 0..60, --http-workers each 1..8")
    return Options(
        quick=args.quick,
        warmup=warmup,
        duration=duration,
        concurrency=args.concurrency,
        clients=args.clients,
        http_workers=workers or [2],
        auctions=args.auctions,
        bidders=args.bidders,
        jump_max=args.jump,
        hot_strategies=strategies,
        accounts=args.accounts,
        phases=phases,
    )


@dataclass
class Seeded:
    raw: Auction | None = None
    hot: Auction | None = None
    many: list[Auction] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


async def setup(options: Options, db: Database, evidence_root: Path) -> Seeded:
    """The auctions each phase needs, and the ledger's accounts for (l); each step timed."""
    seeded, phases, prefix = Seeded(), options.phases, f"bb{secrets.token_hex(3)}"

    def done(key: str, title: str, t0: float) -> None:
        seeded.seconds[key] = time.perf_counter() - t0
        print(f"setup {title}: {seeded.seconds[key]:.1f} s", flush=True)

    if "r" in phases:
        t0, bidders = time.perf_counter(), max(2, options.concurrency)
        seeded.raw = await seed_with_keys(db, evidence_root, f"{prefix}-r", bidders, False)
        done("r", f"(r) 1 auction, {bidders} bidders", t0)
    if "h" in phases:
        t0 = time.perf_counter()
        seeded.hot = await seed_with_keys(db, evidence_root, f"{prefix}-h", options.clients, True)
        done("h", f"(h) 1 auction, {options.clients} bidders with keys", t0)
    if "m" in phases:
        t0 = time.perf_counter()
        seeded.many = await seed_many(
            db, evidence_root, f"{prefix}-m", options.auctions, options.bidders
        )
        title = f"(m) {options.auctions:,} auctions, {options.bidders} bidders each with keys"
        done("m", title, t0)
    if "l" in phases:
        t0 = time.perf_counter()
        await setup_ledger(db, options.accounts)
        done("l", f"(l) {options.accounts:,} ledger accounts", t0)
    return seeded


def progress(result: Result) -> None:
    if result.failed:
        print(f"  {result.title}: FAILED ({result.failed})", flush=True)
        return
    errors = f", errors {dict(result.errors)}" if result.errors else ""
    if not isinstance(result, BidResult):
        print(
            f"  {result.title}: {result.rate:,.0f} {result.unit}/s, p50 {fmt_ms(result.p50_ms)}, "
            f"p95 {fmt_ms(ms_at(result.latencies, 0.95))}, p99 {fmt_ms(result.p99_ms)}{errors}",
            flush=True,
        )
        return
    outcomes = ", ".join(f"{k}: {v:,}" for k, v in result.outcomes.most_common())
    print(
        f"  {result.title}: {result.rate:,.0f} accepted bids/s of {result.request_rate:,.0f} "
        f"requests/s; all requests p50 {fmt_ms(result.p50_ms)}, "
        f"p95 {fmt_ms(ms_at(result.latencies, 0.95))}, p99 {fmt_ms(result.p99_ms)}; accepted "
        f"p50 {fmt_ms(ms_at(result.accepted_latencies, 0.50))}, "
        f"p99 {fmt_ms(ms_at(result.accepted_latencies, 0.99))}{errors}\n"
        f"    outcomes: {outcomes or '-'}",
        flush=True,
    )
    if result.cpu and result.requests:
        per_request = ", ".join(
            f"{role} {result.cpu[role] / result.requests * 1000:.2f}" for role in CpuWatch.ROLES
        )
        print(f"    CPU ms per request: {per_request}", flush=True)
    if result.activity is not None and result.activity.samples:
        print(f"    PostgreSQL {result.activity.summary(result.seconds)}", flush=True)
    if result.server_log:
        print(f"    the server logged {len(result.server_log):,} lines, first:", flush=True)
        for line in result.server_log[:LOG_LINES_MAX]:
            print(f"      {line[:400]}", flush=True)


async def run_phases(options: Options, url: str, log_path: Path, servers: list[Server]) -> None:
    dsn = dsn_of(url)
    WATCH.database = make_url(url).database or ""
    logs.configure("WARNING", json=True)
    db = Database(Settings(database_url=url, run_worker=False, log_level="WARNING"))
    results: dict[str, Result] = {}
    version = await asyncio.to_thread(code_version)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-evidence-") as evidence_root:
            seeded = await setup(options, db, Path(evidence_root))
        await run_raw_phases(options, dsn, seeded, results)
        await db.dispose()  # the server gets the connections
        await run_http_phases(options, url, dsn, log_path, servers, seeded, results)
        conn = await asyncpg.connect(dsn)
        try:
            server_version = str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()
        if (now := await asyncio.to_thread(code_version)) != version:
            version += f" (changed during the run, now {now})"
        report(options, results, seeded, server_version, version)
    finally:
        await db.dispose()


async def run_raw_phases(
    options: Options, dsn: str, seeded: Seeded, results: dict[str, Result]
) -> None:
    warmup, duration, n = options.warmup, options.duration, options.concurrency
    if seeded.raw is not None:
        await checkpoint(dsn)
        title = "(r) raw SQL: lock, validate, insert bid, update auction (asyncpg, one auction)"
        result = Result("r", title, f"{n} conns", "tx")
        results["r"] = await run_raw_bids(
            result, dsn, seeded.raw.seeded, n, options.jump_max, warmup, duration
        )
        progress(results["r"])
    if "l" in options.phases:
        await checkpoint(dsn)
        title = "(l) ledger raw single transfer, bench/ledger.py (a) (asyncpg)"
        result = Result("l", title, f"{n} conns", "tx")
        results["l"] = await run_raw(
            result, dsn, options.accounts, n, warmup, duration, raw_transfer
        )
        progress(results["l"])


async def run_http_phases(
    options: Options,
    url: str,
    dsn: str,
    log_path: Path,
    servers: list[Server],
    seeded: Seeded,
    results: dict[str, Result],
) -> None:
    args = RunArgs(options.warmup, options.duration, dsn)
    clients, jump = options.clients, options.jump_max
    for workers in options.http_workers:
        suffix = "" if len(options.http_workers) == 1 else str(workers)
        plural = "s" if workers > 1 else ""
        for strategy in options.hot_strategies:
            hot = seeded.hot
            if hot is None:
                break
            await checkpoint(dsn)
            result = BidResult(
                ("h" if strategy == "race" else "hl") + suffix,
                f"(h) HTTP, one hot auction, {strategy} bidders, {workers} worker{plural}",
                f"{clients} clients",
                "req",
            )
            load = functools.partial(
                run_hot, result, auction=hot, clients=clients, jump_max=jump, strategy=strategy,
                args=args,
            )  # fmt: skip
            results[result.key] = await run_http(result, url, workers, log_path, servers, load)
            progress(results[result.key])
        if seeded.many:
            await checkpoint(dsn)
            result = BidResult(
                "m" + suffix, f"(m) HTTP, {len(seeded.many):,} auctions, {workers} worker{plural}",
                f"{clients} clients", "req",
            )  # fmt: skip
            load = functools.partial(
                run_many, result, auctions=seeded.many, clients=clients, jump_max=jump, args=args
            )
            results[result.key] = await run_http(result, url, workers, log_path, servers, load)
            progress(results[result.key])


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def ratio(numerator: Result | None, baseline: Result | None) -> str:
    if numerator is None or baseline is None or numerator.failed or baseline.failed:
        return ""
    return f"{numerator.rate / baseline.rate:.0%} of ({baseline.key})" if baseline.rate else ""


def code_version() -> str:
    """The commit the server ran, and whether src/ differed from it (others edit as we run)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
            timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=REPO, capture_output=True,
            text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "code at an unknown commit"
    return f"code at {head}" + (" with uncommitted changes in src/" if dirty else "")


def report(
    options: Options, results: dict[str, Result], seeded: Seeded, server_version: str, version: str
) -> None:
    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    print()
    print(
        f"Bidding benchmark, {version}: PostgreSQL {server_version.split()[0]}, "
        f"{os.cpu_count()} CPUs shared "
        f"by client, server and database; {options.duration:g} s per phase after "
        f"{options.warmup:g} s warm-up; bids at the known minimum + 0..{options.jump_max - 1} "
        f"increments; {loop} loop."
    )
    print()
    print(
        "| Phase | Concurrency | Accepted/s | Requests/s | p50 | p95 | p99 | p99 accepted "
        "| CPU µs per accepted: client, server, PostgreSQL | Against baseline |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for key in sorted(results, key=lambda k: "rlhm".index(k[0]) * 10 + len(k)):
        r = results[key]
        baseline = results.get("r") if key.startswith("h") else results.get("l")
        against = ratio(r, baseline) if key[0] in "hm" else "baseline"
        if r.failed:
            print(f"| {r.title} | {r.concurrency} | failed | | | | | | | |")
            continue
        bid = r if isinstance(r, BidResult) else None
        requests = f"{bid.request_rate:,.0f}" if bid else f"{r.rate:,.0f}"
        accepted_p99 = fmt_ms(ms_at(bid.accepted_latencies, 0.99)) if bid else "-"
        cpu = ", ".join(
            "-" if (us := r.cpu_us(role)) is None or us < 0.5 else f"{us:,.0f}"
            for role in CpuWatch.ROLES
        )
        errors = f" ({sum(r.errors.values())} errors)" if r.errors else ""
        print(
            f"| {r.title} | {r.concurrency} | {r.rate:,.0f}{errors} | {requests} "
            f"| {fmt_ms(r.p50_ms)} | {fmt_ms(ms_at(r.latencies, 0.95))} | {fmt_ms(r.p99_ms)} "
            f"| {accepted_p99} | {cpu} | {against} |"
        )
    print()
    report_targets(results)
    report_notes(results, seeded)


def report_targets(results: dict[str, Result]) -> None:
    hot = [r for k, r in results.items() if k.startswith("h")]
    if not hot:
        return
    print("Targets, one hot auction through HTTP (measured, not asserted):")
    for r in hot:
        if r.failed:
            print(f"  {r.title}: failed, targets NOT MET")
            continue
        rate_ok = r.rate >= TARGET_HOT_ACCEPTED_RATE
        p99_ok = r.p99_ms is not None and r.p99_ms <= TARGET_HOT_P99_MS
        print(
            f"  {r.title}: accepted bids/s {r.rate:,.0f} vs ≥ {TARGET_HOT_ACCEPTED_RATE:,}: "
            f"{verdict(rate_ok)}; p99 {fmt_ms(r.p99_ms)} vs ≤ {TARGET_HOT_P99_MS:.0f} ms: "
            f"{verdict(p99_ok)}"
        )
    print()


def report_notes(results: dict[str, Result], seeded: Seeded) -> None:
    if seeded.seconds:
        spent = ", ".join(f"{k} {v:.1f} s" for k, v in seeded.seconds.items())
        print(f"Setup (not in any figure): {spent}.")
    print(
        "CPU per accepted bid (per transaction for (r), (l)), from /proc over the measured "
        "window: client = this process; server = uvicorn and its workers; PostgreSQL = the bench "
        "database's backends (not the WAL writer or checkpointer)."
    )
    for key, r in results.items():
        if isinstance(r, BidResult) and r.cpu and r.seconds:
            cores = ", ".join(f"{role} {r.cpu[role] / r.seconds:.2f}" for role in CpuWatch.ROLES)
            print(f"CPU cores used during ({key}): {cores}, others {r.cpu['others']:.2f}.")
    others = {k: r.others for k, r in results.items() if r.others is not None}
    if others and max(others.values()) > NOISE_CORES:
        used = ", ".join(f"{k} {v:.2f}" for k, v in others.items())
        print(f"NOISY: other processes used {used} cores during the phases; rerun on a quiet one.")
    errors = {k: len(r.server_log) for k, r in results.items() if isinstance(r, BidResult)}
    if any(errors.values()):
        print(f"The server logged warnings or errors (lines per phase): {errors}.")
    server_errors = {
        k: sum(n for o, n in r.outcomes.items() if o.startswith("5"))
        for k, r in results.items()
        if isinstance(r, BidResult)
    }
    if any(server_errors.values()):
        print(f"5xx answers per phase: {server_errors}.")


def main(argv: list[str]) -> int:
    options = parse_args(argv)
    return with_scratch_database(
        lambda url, log_path, servers: run_phases(options, url, log_path, servers)
    )


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print("interrupted; the bench database is dropped", file=sys.stderr)
        sys.exit(130)
