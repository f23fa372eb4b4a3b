"""Settlement under faults, on PostgreSQL: `python -m exchange settle` is killed (SIGKILL) at
random points of a run over many fully paid deals and started again. After every kill each deal
is settled once (its legs in the journal once, its escrow empty) or not at all (its escrow
untouched); a run to the end settles the rest, one more settles nothing, every account received
exactly its share, and the ledger verifies. Replay with SETTLEMENT_FAULT_SEED=<seed>."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.config import Settings
from exchange.db import Database
from exchange.money import to_decimal_string, to_minor
from exchange.settlement.rules import (
    DEFAULT_FEE_SCHEDULE,
    Inventor,
    RewardPolicy,
    Split,
    settlement_split,
)
from tests import conftest
from tests.api.test_settlement_api import individual, schedule
from tests.conftest import Key, uid
from tests.factories import DEPOSIT, Chain, Market, cny

pytestmark = pytest.mark.postgres

SEED = int(os.environ.get("SETTLEMENT_FAULT_SEED") or time.time_ns() % 2**32)
DEALS = 36
KILL_ROUNDS = 8
INVENTORS = 6
FEE_ACCOUNT = "exchange.fee_revenue.CNY"
# A round is killed once `k` more deals have settled (k drawn from 0..remaining // this; 0: once
# the process is busy in the database), plus a random delay of up to KILL_DELAY_MAX_S, so the
# kill lands inside the next few transactions.
KILL_AFTER_SHARE_DIVISOR = 5
KILL_DELAY_MAX_S = 0.030
POLL_S = 0.002
QUIET_WAIT_S = 10.0
RUN_TIMEOUT_S = 60.0
# (pool_pct, inventors' share_pct) of the reward policies given to some sellers; None: no policy.
POLICIES: list[tuple[str, tuple[str, ...]] | None] = [
    None,
    None,
    ("70", ("60", "40")),
    ("50", ("100",)),
    ("66.67", ("33.33", "33.33", "33.34")),
    ("85.5", ("12.5", "37.5", "50")),
]


@pytest.fixture
def market(
    client: httpx.AsyncClient, operator: Key, db: Database, clock: conftest.TestClock
) -> Market:
    return Market(client, Chain(client, operator), db, clock)


# ---------------------------------------------------------------------------------------------
# The deals: fully paid, each with the payout the rules give it


@dataclass(frozen=True)
class PaidDeal:
    id: str
    price: int  # minor units
    split: Split

    @property
    def escrow(self) -> str:
        return f"{self.id}.escrow.CNY"

    def legs(self) -> list[tuple[str, str, str, int]]:
        """(transfer id, debit, credit, amount) of each leg of its settlement."""
        return [
            (f"settle.{self.id}.{index}", self.escrow, leg.account_id, leg.amount)
            for index, leg in enumerate(self.split.legs)
        ]


def money(minor: int) -> dict[str, str]:
    return cny(to_decimal_string(minor, "CNY"))


def fee_by_hand(price: int) -> int:
    """The default schedule written out: 1.5% to 1,000,000.00, 1% to 5,000,000.00, 0.5% to
    10,000,000.00, 0.2% above; rounded half-even once; at least 1,000.00, at most 500,000.00."""
    bands = [(0, "0.015"), (100_000_000, "0.01"), (500_000_000, "0.005"), (1_000_000_000, "0.002")]
    uppers = [low for low, _ in bands[1:]] + [price]
    exact = sum(
        (Decimal(min(price, upper) - low) * Decimal(rate))
        for (low, rate), upper in zip(bands, uppers, strict=True)
        if price > low
    )
    fee = int(Decimal(exact).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    return min(max(fee, 100_000), 50_000_000, price)


def draw_price(rng: random.Random, appraised: str) -> int:
    """At or above the appraised value (the first listing may not be below it), some prices in
    the fee schedule's higher bands; odd cents, so roundings differ."""
    extra = rng.randint(0, 60_000_000) if rng.random() < 0.8 else rng.randint(90_000_000, 6 * 10**8)
    return to_minor(appraised, "CNY") + extra


async def awarded_at(market: Market, rng: random.Random) -> tuple[dict[str, Any], Key, int]:
    """As test_settlement_api.awarded, at a drawn price: a negotiated deal awarded to one
    funded buyer, its deposit in escrow."""
    deal = await market.chain.priced_deal("negotiated")
    price = draw_price(rng, deal["appraised"])
    listing = await market.chain.post(
        "/v1/listings",
        {"deal_id": deal["id"], "listing_price": money(price), "deposit": cny(DEPOSIT)},
    )
    buyer = await market.bidder()
    await market.register(listing["id"], buyer)
    await market.end_notice(listing)
    done = await market.deal(deal["id"])
    assert done["state"] == "awarded" and done["award_price"] == money(price), done
    return done, buyer, price


async def give_policy(
    market: Market, seller: str, policy: tuple[str, tuple[str, ...]], chosen: list[str]
) -> RewardPolicy:
    """The seller's reward policy set through the API, and the same in the rules' terms."""
    pool_pct, shares = policy
    body = {
        "pool_pct": pool_pct,
        "inventors": [{"party_id": p, "share_pct": s} for p, s in zip(chosen, shares, strict=True)],
    }
    answer = await market.client.put(
        f"/v1/parties/{seller}/reward-policy", json=body, headers=market.chain.operator.headers
    )
    assert answer.status_code == 200, answer.text
    return RewardPolicy(
        pool_bp=int(Decimal(pool_pct) * 100),
        inventors=tuple(
            Inventor(f"{p}.reward.CNY", int(Decimal(s) * 100))
            for p, s in zip(chosen, shares, strict=True)
        ),
    )


async def fully_paid(market: Market, rng: random.Random, inventors: list[str]) -> PaidDeal:
    """A deal walked to `settling` with its full price in escrow (lump sum, paid after the
    bank's confirmation), its seller given a reward policy or none."""
    deal, buyer, price = await awarded_at(market, rng)
    seller = deal["seller_party_id"]
    drawn = rng.choice(POLICIES)
    policy = None
    if drawn is not None:
        chosen = rng.sample(inventors, len(drawn[1]))
        policy = await give_policy(market, seller, drawn, chosen)
    await market.chain.post(
        f"/v1/deals/{deal['id']}/contract",
        {"contract_type": "transfer", "schedule": schedule(market, money(price)["amount"])},
    )
    rest = money(price - to_minor(DEPOSIT, "CNY"))
    await market.chain.post(
        f"/v1/deals/{deal['id']}/bank-confirmations", {"bank_reference": uid("BOC"), "amount": rest}
    )
    await market.chain.post(f"/v1/deals/{deal['id']}/payments", {"amount": rest}, key=buyer)
    assert (await market.deal(deal["id"]))["state"] == "settling"
    split = settlement_split(
        price,
        seller_account_id=f"{seller}.available.CNY",
        fee_account_id=FEE_ACCOUNT,
        schedule=DEFAULT_FEE_SCHEDULE,
        policy=policy,
    )
    assert split.fee == fee_by_hand(price), (price, split)
    return PaidDeal(deal["id"], price, split)


# ---------------------------------------------------------------------------------------------
# What the database holds, read at one instant, and the checks on it


@dataclass(frozen=True)
class Snapshot:
    states: dict[str, str]
    settlements: dict[str, tuple[int, int, int]]  # deal -> (total, fee, reward_pool)
    legs: dict[str, list[tuple[str, str, str, int]]]  # deal -> its `settle.<deal>.*` transfers
    history: dict[str, tuple[int, int]]  # deal -> (its `settle` transitions, its events)
    balances: dict[str, int]  # account -> credits_posted - debits_posted
    journal: tuple[int, int]  # the journal's count of entries and its last seq
    sums: dict[str, tuple[int, int, int, int]]  # currency -> Σ of the four totals, all accounts


async def snapshot(db: Database, deals: list[PaidDeal], accounts: list[str]) -> Snapshot:
    ids = [deal.id for deal in deals]

    async def read(session: AsyncSession) -> Snapshot:
        async def rows(sql: str, **params: Any) -> list[Any]:
            return list((await session.execute(text(sql), params)).all())

        states = await rows("SELECT id, state FROM deal WHERE id = ANY(:ids)", ids=ids)
        settlements = await rows(
            "SELECT deal_id, total, fee, reward_pool FROM settlement WHERE deal_id = ANY(:ids)",
            ids=ids,
        )
        transfers = await rows(
            "SELECT id, debit_account_id, credit_account_id, amount FROM ledger_transfer"
            " WHERE id LIKE 'settle.%'"
        )
        history = await rows(
            "SELECT d.id,"
            " (SELECT count(*) FROM deal_transition t WHERE t.deal_id = d.id"
            "  AND t.action = 'settle'),"
            " (SELECT count(*) FROM outbox_event e WHERE e.aggregate_id = d.id"
            "  AND e.type = 'deal.settle')"
            " FROM deal d WHERE d.id = ANY(:ids)",
            ids=ids,
        )
        balances = await rows(
            "SELECT id, credits_posted - debits_posted FROM ledger_account WHERE id = ANY(:ids)",
            ids=accounts,
        )
        sums = await rows(
            "SELECT currency, sum(debits_pending), sum(debits_posted), sum(credits_pending),"
            " sum(credits_posted) FROM ledger_account GROUP BY currency"
        )
        journal = await rows("SELECT count(*), coalesce(max(seq), 0) FROM ledger_transfer")
        legs: dict[str, list[tuple[str, str, str, int]]] = {}
        for transfer in transfers:
            deal_id = transfer[0].removeprefix("settle.").rsplit(".", 1)[0]
            legs.setdefault(deal_id, []).append(tuple(transfer))
        return Snapshot(
            states=dict(states),
            settlements={row[0]: tuple(row[1:]) for row in settlements},
            legs=legs,
            history={row[0]: (row[1], row[2]) for row in history},
            balances=dict(balances),
            journal=tuple(journal[0]),
            sums={currency: (int(a), int(b), int(c), int(d)) for currency, a, b, c, d in sums},
        )

    return await db.read(read, snapshot=True)


def check_each_deal(now: Snapshot, deals: list[PaidDeal]) -> set[str]:
    """Each deal is settled once, whole (its row, its legs once, its escrow empty, one `settle`
    in its history and in the outbox), or not at all (none of these, its escrow holding the
    price); the settled deals' ids."""
    settled = set()
    for deal in deals:
        state, legs = now.states[deal.id], sorted(now.legs.get(deal.id, []))
        row, history = now.settlements.get(deal.id), now.history[deal.id]
        seen = (state, row, legs, now.balances.get(deal.escrow), history)
        if state == "settling":
            assert seen == (state, None, [], deal.price, (0, 0)), f"{deal.id} half settled: {seen}"
            continue
        expected = (deal.price, deal.split.fee, deal.split.reward_pool)
        assert seen == ("settled", expected, sorted(deal.legs()), 0, (1, 1)), (deal, seen)
        settled.add(deal.id)
    return settled


def check_accounts(
    now: Snapshot, before: Snapshot, deals: list[PaidDeal], settled: set[str]
) -> None:
    """Every account paid by a settlement received exactly the legs of the settled deals;
    across all accounts, debits equal credits; the journal's seq has no gap."""
    due: Counter[str] = Counter()
    for deal in deals:
        if deal.id in settled:
            for _, _, credit, amount in deal.legs():
                due[credit] += amount
    for account in payees(deals):
        received = now.balances.get(account, 0) - before.balances.get(account, 0)
        assert received == due[account], (account, received, due[account])
    for totals in now.sums.values():
        debits_pending, debits_posted, credits_pending, credits_posted = totals
        assert debits_posted == credits_posted, now.sums
        assert debits_pending == credits_pending, now.sums
    entries, last_seq = now.journal
    assert entries == last_seq, f"the journal's seq has gaps: {entries=} {last_seq=}"


async def check_ledger_verifies(market: Market, now: Snapshot) -> None:
    """The journal's hash chain recomputes and every account's totals replay from it."""
    verified = await market.client.get("/v1/ledger/verify", headers=market.chain.operator.headers)
    assert verified.status_code == 200, verified.text
    assert verified.json()["ok"] is True, verified.text
    assert verified.json()["entries"] == now.journal[0], verified.text


def payees(deals: list[PaidDeal]) -> list[str]:
    return sorted({leg.account_id for deal in deals for leg in deal.split.legs})


async def busy_sessions(db: Database) -> int:
    """Sessions of this database, other than this one, inside a transaction or a statement (the
    test's own pool is idle between its reads)."""
    sql = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND state <> 'idle'"
    )
    return await db.read(lambda s: scalar(s, sql))


async def wait_until_quiet(db: Database) -> None:
    """Until no other session of this database is busy: the killed process's backends have
    seen their client gone, rolled back and let go of their locks."""
    deadline = time.monotonic() + QUIET_WAIT_S
    while await busy_sessions(db) > 0:
        assert time.monotonic() < deadline, "a killed process's transaction is still open"
        await asyncio.sleep(POLL_S)


async def scalar(session: AsyncSession, sql: str, **params: Any) -> int:
    return int((await session.execute(text(sql), params)).scalar_one())


async def settled_count(db: Database, deals: list[PaidDeal]) -> int:
    sql = "SELECT count(*) FROM settlement WHERE deal_id = ANY(:ids)"
    return await db.read(lambda s: scalar(s, sql, ids=[deal.id for deal in deals]))


# ---------------------------------------------------------------------------------------------
# The settlement process: run to the end, or killed


def settle_env(settings: Settings) -> dict[str, str]:
    own = ("EXCHANGE_DATABASE_URL", "DATABASE_READ_URL", "EXCHANGE_DATABASE_READ_URL")
    env = {k: v for k, v in os.environ.items() if k not in own}
    env.update(DATABASE_URL=settings.database_url, EXCHANGE_LOG_LEVEL="WARNING")
    return env


async def start_settle(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exchange",
        "settle",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def settled_by(process: asyncio.subprocess.Process) -> int:
    """The count a finished `settle` printed."""
    out, err = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
    assert process.returncode == 0, (process.returncode, err.decode()[-4000:])
    last = out.decode().strip().splitlines()[-1]
    assert last.startswith("settled "), out
    return int(last.removeprefix("settled "))


async def settle_to_the_end(env: dict[str, str]) -> int:
    return await settled_by(await start_settle(env))


@dataclass(frozen=True)
class Kill:
    after_settled: int  # kill once this many more deals settled; 0: once it is busy in the db
    delay_s: float  # after that


@dataclass(frozen=True)
class Outcome:
    printed: int | None  # what the run printed if it finished before the kill; None: killed
    busy_at_kill: int  # sessions inside a transaction or statement just before the kill

    def describe(self) -> str:
        if self.printed is not None:
            return f"finished first (printed settled {self.printed})"
        where = "inside a transaction" if self.busy_at_kill else "no transaction open"
        return f"SIGKILL, {where}"


async def run_and_kill(
    db: Database, env: dict[str, str], deals: list[PaidDeal], kill: Kill
) -> Outcome:
    """Start `settle` and SIGKILL it as `kill` says, unless it finishes first."""
    target = await settled_count(db, deals) + kill.after_settled

    async def due() -> bool:
        if kill.after_settled == 0:
            return await busy_sessions(db) > 0
        return await settled_count(db, deals) >= target

    process = await start_settle(env)
    exited = asyncio.ensure_future(process.wait())
    while not exited.done() and not await due():
        await asyncio.wait({exited}, timeout=POLL_S)
    await asyncio.wait({exited}, timeout=kill.delay_s)
    if exited.done():
        return Outcome(await settled_by(process), 0)
    busy = await busy_sessions(db)
    process.send_signal(signal.SIGKILL)
    await process.communicate()
    assert process.returncode == -signal.SIGKILL, process.returncode
    return Outcome(None, busy)


def draw_kill(rng: random.Random, remaining: int) -> Kill:
    """The process starts (imports, connects) for a second or more and then settles a deal in
    some milliseconds, so a clock from its start cannot aim into the run: the kill waits for
    the run's own progress in the database, then a few milliseconds more."""
    after = rng.randint(0, remaining // KILL_AFTER_SHARE_DIVISOR)
    return Kill(after, rng.uniform(0.001, KILL_DELAY_MAX_S))


# ---------------------------------------------------------------------------------------------
# The test


async def test_settlement_killed_at_random_points_pays_each_deal_once_or_not_at_all(
    market: Market, settings: Settings, db: Database
) -> None:
    rng = random.Random(SEED)
    print(f"\nsettlement faults: seed={SEED} (replay: SETTLEMENT_FAULT_SEED={SEED})")
    env = settle_env(settings)
    started = time.monotonic()
    await settle_to_the_end(env)  # what an earlier test left due is settled now, not counted
    startup_s = time.monotonic() - started
    inventors = [await individual(market) for _ in range(INVENTORS)]
    deals = [await fully_paid(market, rng, inventors) for _ in range(DEALS)]
    accounts = payees(deals) + [deal.escrow for deal in deals]
    before = await snapshot(db, deals, accounts)
    assert check_each_deal(before, deals) == set()
    print(f"{DEALS} deals fully paid; an empty run of `settle` took {startup_s:.2f} s")

    settled: set[str] = set()
    mid_run_kills = 0
    for number in range(1, KILL_ROUNDS + 1):
        kill = draw_kill(rng, DEALS - len(settled))
        outcome = await run_and_kill(db, env, deals, kill)
        await wait_until_quiet(db)
        now = await snapshot(db, deals, accounts)
        now_settled = check_each_deal(now, deals)
        check_accounts(now, before, deals, now_settled)
        await check_ledger_verifies(market, now)
        assert settled <= now_settled
        this_round = len(now_settled - settled)
        settled = now_settled
        assert outcome.printed in (None, this_round), (outcome, this_round)
        mid_run_kills += outcome.busy_at_kill > 0 and this_round > 0 and len(settled) < DEALS
        when = f"{kill.after_settled} more settled" if kill.after_settled else "it got busy"
        how = f"{kill.delay_s * 1000:.0f} ms after {when}"
        print(
            f"round {number}: {outcome.describe()} ({how}): "
            f"settled {this_round}, {len(settled)}/{DEALS} in all"
        )

    rest = DEALS - len(settled)
    assert await settle_to_the_end(env) == rest
    assert await settle_to_the_end(env) == 0
    print(f"run to the end: settled {rest}; once more: settled 0")
    after = await snapshot(db, deals, accounts)
    assert check_each_deal(after, deals) == {deal.id for deal in deals}
    check_accounts(after, before, deals, {deal.id for deal in deals})
    await check_ledger_verifies(market, after)
    assert mid_run_kills > 0, "no kill landed inside a transaction in the middle of a run"
