"""The ledger under concurrent HTTP clients, on PostgreSQL: 32 clients against a two-process
server move money among a few hot accounts and many cold ones, race to resolve the same holds,
send linked batches across the hot accounts in random orders and repeat each other's ids.
Afterwards nothing was created or lost, no limit was passed, no 5xx was answered, and every
accepted transfer id is in the journal exactly once."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth.service import Role
from exchange.config import Settings
from exchange.db import Database
from exchange.money import to_decimal_string, to_minor
from tests import conftest
from tests.concurrency.servers import Server, serve
from tests.conftest import Key, new_key, uid

pytestmark = pytest.mark.postgres

WORKERS = 32
OPS_PER_WORKER = 30
HOT_ACCOUNTS = 3
COLD_ACCOUNTS = 40
HOT_SHARE = 0.5  # of the accounts a transfer touches, how many are hot
HOT_FUNDING_MINOR = 20_000_00
COLD_FUNDING_MINOR = 500_00
OVERDRAFT_MINOR = 10**13  # more than all the money the test ever creates
ACCOUNT_RACE_ROUNDS = 3
HTTP_TIMEOUT_S = 60.0
SERVER_POOL_SIZE = 12  # per server process: 2 x (12 + 12 overflow) stays under max_connections
SEED = int(os.environ.get("LEDGER_STORM_SEED", str(time.time_ns() % 2**32)))

ACCOUNTS = "/v1/ledger/accounts"
TRANSFERS = "/v1/ledger/transfers"
BATCH = "/v1/ledger/transfers/batch"


# ---------------------------------------------------------------------------------------------
# The server: uvicorn with two worker processes, on a free loopback port


@pytest.fixture(scope="module")
def server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log_path = tmp_path_factory.mktemp("ledger_server") / "server.log"
    with serve(settings, log_path, workers=2, pool_size=SERVER_POOL_SIZE) as running:
        yield running


# ---------------------------------------------------------------------------------------------
# What the clients saw


def money(minor: int) -> dict[str, str]:
    return {"amount": to_decimal_string(minor, "CNY"), "currency": "CNY"}


def minor_of(transfer: dict[str, Any]) -> int:
    return to_minor(transfer["amount"]["amount"], transfer["amount"]["currency"])


def transfer_body(debit: str, credit: str, amount: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": uid("tr"),
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": money(amount),
        "code": "storm",
        **extra,
    }


@dataclass
class Record:
    """Every answer's status, and each transfer the server accepted (the body of its 201)."""

    statuses: Counter[int] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)
    races: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused_ids: set[str] = field(default_factory=set)
    replays: int = 0

    def saw(self, response: httpx.Response) -> None:
        status = response.status_code
        self.statuses[status] += 1
        if status >= 500:
            request = response.request
            self.server_errors.append(
                f"{request.method} {request.url.path} -> {status}: {response.text[:500]}"
            )
        elif status >= 400:
            self.refusals[str(response.json().get("code"))] += 1
        elif status == 200 and response.request.method == "POST":
            self.replays += 1

    def accept(self, transfer: dict[str, Any]) -> None:
        assert transfer["id"] not in self.accepted, f"{transfer['id']} was accepted twice"
        self.accepted[transfer["id"]] = transfer

    def refuse(self, response: httpx.Response, transfer_id: str, *codes: str) -> None:
        """A transfer refused whole: it must never show up in the journal."""
        assert response.status_code == 409, response.text
        assert response.json()["code"] in codes, response.text
        self.refused_ids.add(transfer_id)


@dataclass
class Client:
    """One concurrent client: its own connection pool and its own API key."""

    http: httpx.AsyncClient
    key: Key
    record: Record

    async def post(
        self,
        path: str,
        body: dict[str, Any],
        *,
        key: Key | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        headers = dict((key or self.key).headers)
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        response = await self.http.post(path, json=body, headers=headers)
        self.record.saw(response)
        return response

    async def get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        response = await self.http.get(path, params=params, headers=self.key.headers)
        self.record.saw(response)
        return response


@dataclass
class Storm:
    clients: list[Client]
    clearing: str
    hot: list[str]
    cold: list[str]
    record: Record

    def flagged(self, rng: random.Random) -> str:
        return rng.choice(self.hot) if rng.random() < HOT_SHARE else rng.choice(self.cold)

    def pair(self, rng: random.Random) -> tuple[str, str]:
        debit = self.flagged(rng)
        credit = self.flagged(rng)
        while credit == debit:
            credit = self.flagged(rng)
        return debit, credit

    def peers(self, rng: random.Random, own: Client, count: int) -> list[Client]:
        return [own, *rng.sample([c for c in self.clients if c is not own], count - 1)]


Sent = tuple[str, dict[str, Any]]


def settle_race(
    sent: list[Sent], answers: list[httpx.Response], loser_code: Callable[[dict[str, Any]], str]
) -> dict[str, Any]:
    """Exactly one request wins (201). A request equal to the winner's replays its answer (200,
    the same body); any other one is refused with 409 and `loser_code(winner)`."""
    seen = [(a.status_code, a.text[:300]) for a in answers]
    winners = [i for i, answer in enumerate(answers) if answer.status_code == 201]
    assert len(winners) == 1, f"not exactly one winner: {sent} -> {seen}"
    won = winners[0]
    winner = answers[won].json()
    for request, answer in zip(sent, answers, strict=True):
        if answer is answers[won]:
            continue
        if request == sent[won]:
            assert answer.status_code == 200, f"a repeat was not a replay: {sent} -> {seen}"
            assert answer.json() == winner, f"a replay differs: {sent} -> {seen}"
        else:
            assert answer.status_code == 409, f"a loser was not refused: {sent} -> {seen}"
            assert answer.json()["code"] == loser_code(winner), f"{sent} -> {seen}"
    return winner


# ---------------------------------------------------------------------------------------------
# What each client does


async def plain_transfer(storm: Storm, client: Client, rng: random.Random) -> None:
    body = transfer_body(*storm.pair(rng), rng.randint(1, 400_00))
    answer = await client.post(TRANSFERS, body)
    if answer.status_code == 201:
        storm.record.accept(answer.json())
    else:
        storm.record.refuse(answer, body["id"], "exceeds_credits")


async def overdraft(storm: Storm, client: Client, rng: random.Random) -> None:
    body = transfer_body(*storm.pair(rng), OVERDRAFT_MINOR)
    storm.record.refuse(await client.post(TRANSFERS, body), body["id"], "exceeds_credits")


def _resolution_loser(winner: dict[str, Any]) -> str:
    return "pending_transfer_already_" + (
        "posted" if winner["kind"] == "post_pending" else "voided"
    )


async def hold_race(storm: Storm, client: Client, rng: random.Random) -> None:
    """A hold, then two or three clients resolve it at once: one wins, the rest replay or lose."""
    body = transfer_body(*storm.pair(rng), rng.randint(2, 200_00), pending=True)
    if rng.random() < 0.5:
        body["timeout_s"] = 3600
    created = await client.post(TRANSFERS, body)
    if created.status_code != 201:
        storm.record.refuse(created, body["id"], "exceeds_credits")
        return
    hold = created.json()
    storm.record.accept(hold)
    path = f"{TRANSFERS}/{hold['id']}"
    post: Sent = (f"{path}/post", {})
    void: Sent = (f"{path}/void", {})
    named: Sent = (f"{path}/post", {"id": uid("rs")})
    partial: Sent = (f"{path}/post", {"id": uid("rs"), "amount": money(minor_of(hold) // 2)})
    variants: dict[str, list[Sent]] = {
        "post_vs_void": [post, void],
        "post_twice": [post, post],
        "void_twice": [void, void],
        "named_post_twice": [named, named],
        "partial_vs_void_vs_post": [partial, void, post],
        "partial_twice": [partial, partial],
        "left_pending": [],
    }
    name = rng.choice(sorted(variants))
    sent = variants[name]
    storm.record.races[name] += 1
    if not sent:
        return
    senders = storm.peers(rng, client, len(sent))
    answers = await asyncio.gather(
        *(sender.post(p, b) for sender, (p, b) in zip(senders, sent, strict=True))
    )
    storm.record.accept(settle_race(sent, list(answers), _resolution_loser))


async def linked_batch(storm: Storm, client: Client, rng: random.Random) -> None:
    """2-10 transfers mostly among the hot accounts, in random orders (deadlock bait); a quarter
    carry an overdraft leg and must be refused whole."""
    legs = []
    for _ in range(rng.randint(2, 10)):
        debit, credit = rng.sample(storm.hot, 2) if rng.random() < 0.8 else storm.pair(rng)
        legs.append(transfer_body(debit, credit, rng.randint(1, 300_00)))
    doomed = rng.random() < 0.25
    if doomed:
        legs[rng.randrange(len(legs))]["amount"] = money(OVERDRAFT_MINOR)
    answer = await client.post(BATCH, {"transfers": legs})
    if answer.status_code == 201:
        assert not doomed, answer.text
        transfers = answer.json()["transfers"]
        assert [t["id"] for t in transfers] == [leg["id"] for leg in legs]
        for transfer in transfers:
            storm.record.accept(transfer)
        return
    problem = answer.json()
    assert answer.status_code == 409 and problem["code"] == "transfers_refused", answer.text
    assert {e["code"] for e in problem["errors"]} == {"exceeds_credits"}, answer.text
    storm.record.refused_ids.update(leg["id"] for leg in legs)


async def same_id_race(storm: Storm, client: Client, rng: random.Random) -> None:
    """One transfer id sent by four clients at once (one of them perhaps with another amount):
    exactly one 201; the same body replays (200), another body is refused (409)."""
    amount = rng.randint(1, 100_00)
    body = transfer_body(storm.clearing, storm.flagged(rng), amount)
    other = {**body, "amount": money(amount + 1)}
    variant = rng.choice(["same_body", "one_differs", "same_idempotency_key"])
    storm.record.races[variant] += 1
    senders = storm.peers(rng, client, 4)
    if variant == "same_idempotency_key":
        await _same_idempotency_key(storm, client, senders, body)
        return
    sent: list[Sent] = [(TRANSFERS, body)] * 3
    sent.append((TRANSFERS, other if variant == "one_differs" else body))
    rng.shuffle(sent)
    answers = await asyncio.gather(
        *(sender.post(p, b) for sender, (p, b) in zip(senders, sent, strict=True))
    )
    storm.record.accept(settle_race(sent, list(answers), lambda _: "exists_with_different_fields"))
    again = await client.post(TRANSFERS, {**body, "amount": money(amount + 2)})
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "exists_with_different_fields", again.text


async def _same_idempotency_key(
    storm: Storm, client: Client, senders: list[Client], body: dict[str, Any]
) -> None:
    """One principal sends one Idempotency-Key from several connections at once: the stored
    answer is replayed verbatim (201 and the same body every time); another body is 422."""
    key = uid("ik")
    answers = await asyncio.gather(
        *(sender.post(TRANSFERS, body, key=client.key, idempotency_key=key) for sender in senders)
    )
    seen = [(a.status_code, a.text[:300]) for a in answers]
    assert all(a.status_code == 201 for a in answers), seen
    assert all(a.json() == answers[0].json() for a in answers), seen
    storm.record.accept(answers[0].json())
    reused = await client.post(
        TRANSFERS, {**body, "amount": money(minor_of(body) + 1)}, idempotency_key=key
    )
    assert reused.status_code == 422, reused.text
    assert reused.json()["code"] == "idempotency_key_reused", reused.text


Operation = Callable[[Storm, Client, random.Random], Awaitable[None]]
OPERATIONS: list[tuple[Operation, int]] = [
    (plain_transfer, 40),
    (overdraft, 8),
    (hold_race, 20),
    (linked_batch, 17),
    (same_id_race, 15),
]


async def worker(storm: Storm, client: Client, rng: random.Random) -> None:
    operations, weights = zip(*OPERATIONS, strict=True)
    for _ in range(OPS_PER_WORKER):
        await rng.choices(operations, weights)[0](storm, client, rng)


async def account_races(storm: Storm, shared: Key, rng: random.Random) -> None:
    """Every client opens the same account at once: by one Idempotency-Key (one principal,
    no id: the server names it) and by one account id without a key."""
    for _ in range(ACCOUNT_RACE_ROUNDS):
        await asyncio.sleep(rng.uniform(0.5, 3.0))
        owner = {"type": "listing", "id": uid("lst")}
        body: dict[str, Any] = {"currency": "CNY", "code": "escrow", "owner": owner}
        key = uid("ik")
        answers = await asyncio.gather(
            *(c.post(ACCOUNTS, body, key=shared, idempotency_key=key) for c in storm.clients)
        )
        seen = sorted({(a.status_code, a.text) for a in answers})
        assert len(seen) == 1 and seen[0][0] == 201, seen
        opened = answers[0].json()["id"]
        listed = await storm.clients[0].get(
            ACCOUNTS, {"owner_type": "listing", "owner_id": owner["id"]}
        )
        assert [a["id"] for a in listed.json()["items"]] == [opened], listed.text
        reused = await storm.clients[0].post(
            ACCOUNTS, {**body, "code": "deposit"}, key=shared, idempotency_key=key
        )
        assert reused.status_code == 422, reused.text
        assert reused.json()["code"] == "idempotency_key_reused", reused.text

        named = {**body, "id": uid("acc")}
        answers = await asyncio.gather(*(c.post(ACCOUNTS, named) for c in storm.clients))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] * (len(answers) - 1) + [201], statuses
        assert all(a.json() == answers[0].json() for a in answers)
        storm.record.races["account_by_key"] += 1
        storm.record.races["account_by_id"] += 1


# ---------------------------------------------------------------------------------------------
# Setting up, and checking afterwards


async def open_accounts(admin: Client) -> tuple[str, list[str], list[str]]:
    async def account(code: str, limit: bool, prefix: str) -> str:
        body: dict[str, Any] = {"id": uid(prefix), "currency": "CNY", "code": code}
        if limit:
            body["flags"] = {"debits_must_not_exceed_credits": True}
        answer = await admin.post(ACCOUNTS, body)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    clearing = await account("external_clearing", False, "clr")
    hot = [await account("available", True, "hot") for _ in range(HOT_ACCOUNTS)]
    cold = await asyncio.gather(*(account("available", True, "cold") for _ in range(COLD_ACCOUNTS)))
    funding = [(a, HOT_FUNDING_MINOR) for a in hot] + [(a, COLD_FUNDING_MINOR) for a in cold]
    answers = await asyncio.gather(
        *(admin.post(TRANSFERS, transfer_body(clearing, a, amount)) for a, amount in funding)
    )
    for answer in answers:
        assert answer.status_code == 201, answer.text
        admin.record.accept(answer.json())
    return clearing, hot, list(cold)


def expected_totals(accepted: dict[str, dict[str, Any]]) -> dict[str, list[int]]:
    """The four totals of each account, from the accepted answers alone."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for transfer in accepted.values():
        amount = minor_of(transfer)
        debit = totals[transfer["debit_account_id"]]
        credit = totals[transfer["credit_account_id"]]
        kind = transfer["kind"]
        if kind == "single":
            debit[1] += amount
            credit[3] += amount
        elif kind == "pending":
            debit[0] += amount
            credit[2] += amount
        else:
            held = minor_of(accepted[transfer["pending_id"]])
            debit[0] -= held
            credit[2] -= held
            if kind == "post_pending":
                debit[1] += amount
                credit[3] += amount
            else:
                assert kind == "void_pending" and amount == held, transfer
    return totals


def totals_of(account: dict[str, Any]) -> list[int]:
    return [
        to_minor(account[name]["amount"], account["currency"])
        for name in ("debits_pending", "debits_posted", "credits_pending", "credits_posted")
    ]


async def all_accounts(client: Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500}
        if cursor is not None:
            params["cursor"] = cursor
        answer = await client.get(ACCOUNTS, params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def journal_head(db: Database) -> int:
    async def read(session: AsyncSession) -> int:
        found = await session.execute(text("SELECT coalesce(max(seq), 0) FROM ledger_transfer"))
        return int(found.scalar_one())

    return await db.read(read)


async def journal_since(db: Database, after_seq: int) -> tuple[dict[str, int], tuple[int, ...]]:
    """The ids written after `after_seq` with their seq; and count, min, max of seq overall."""

    async def read(session: AsyncSession) -> tuple[dict[str, int], tuple[int, ...]]:
        rows = await session.execute(
            text("SELECT id, seq FROM ledger_transfer WHERE seq > :after"), {"after": after_seq}
        )
        written = {row.id: row.seq for row in rows}
        shape = await session.execute(
            text(
                "SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0) FROM ledger_transfer"
            )
        )
        return written, tuple(int(v) for v in shape.one())

    return await db.read(read)


async def check_each_id(storm: Storm) -> None:
    """Every accepted id reads back as accepted; every refused id is not in the journal."""
    gate = asyncio.Semaphore(WORKERS)
    fields = ("id", "seq", "kind", "debit_account_id", "credit_account_id", "amount", "pending_id")

    async def check(index: int, transfer_id: str) -> None:
        async with gate:
            answer = await storm.clients[index % len(storm.clients)].get(
                f"{TRANSFERS}/{transfer_id}"
            )
        accepted = storm.record.accepted.get(transfer_id)
        if accepted is None:
            assert answer.status_code == 404, f"refused {transfer_id} exists: {answer.text}"
            return
        assert answer.status_code == 200, answer.text
        found = answer.json()
        assert {f: found[f] for f in fields} == {f: accepted[f] for f in fields}

    ids = [*storm.record.accepted, *storm.record.refused_ids]
    await asyncio.gather(*(check(i, transfer_id) for i, transfer_id in enumerate(ids)))


def check_conservation(accounts: list[dict[str, Any]]) -> None:
    sums = [0, 0, 0, 0]
    for account in accounts:
        totals = totals_of(account)
        assert min(totals) >= 0, account
        if account["flags"]["debits_must_not_exceed_credits"]:
            assert totals[0] + totals[1] <= totals[3], f"over its limit: {account}"
        if account["currency"] == "CNY":
            sums = [s + t for s, t in zip(sums, totals, strict=True)]
    debits_pending, debits_posted, credits_pending, credits_posted = sums
    assert debits_posted == credits_posted, sums
    assert debits_pending == credits_pending, sums


# ---------------------------------------------------------------------------------------------
# The tests


async def deadlocks_so_far(db: Database) -> int:
    """PostgreSQL's count of deadlocks it detected (and broke) in this database."""

    async def read(session: AsyncSession) -> int:
        found = await session.execute(
            text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        )
        return int(found.scalar_one())

    return await db.read(read)


def summary(record: Record, elapsed_s: float, deadlocks: int) -> str:
    refused = sum(record.refusals.values())
    return (
        f"ledger storm: seed={SEED} clients={WORKERS} elapsed={elapsed_s:.1f}s "
        f"requests={sum(record.statuses.values())} accepted={len(record.accepted)} "
        f"refused={refused} replays={record.replays} deadlocks_detected={deadlocks} "
        f"statuses={dict(sorted(record.statuses.items()))} "
        f"refusals={dict(record.refusals.most_common())} races={dict(record.races)}"
    )


async def check_afterwards(storm: Storm, admin: Client, db: Database, seq_before: int) -> None:
    record = storm.record
    own_accounts = {storm.clearing, *storm.hot, *storm.cold}
    accounts = await all_accounts(admin)
    check_conservation(accounts)
    by_id = {account["id"]: account for account in accounts}
    expected = expected_totals(record.accepted)
    assert set(expected) <= own_accounts
    for account_id in sorted(own_accounts):
        assert totals_of(by_id[account_id]) == expected[account_id], by_id[account_id]

    written, (count, first_seq, last_seq) = await journal_since(db, seq_before)
    assert written == {i: t["seq"] for i, t in record.accepted.items()}
    assert count == last_seq and first_seq == 1, f"journal seq has gaps: {count=} {last_seq=}"
    assert not record.refused_ids & set(record.accepted)
    await check_each_id(storm)

    verified = await admin.get("/v1/ledger/verify")
    assert verified.status_code == 200, verified.text
    assert verified.json()["ok"] is True, verified.text
    assert verified.json()["entries"] == last_seq, verified.text


async def open_clients(
    stack: AsyncExitStack, server: Server, keys: list[Key], record: Record
) -> list[Client]:
    """One client per key, each with a connection pool of its own."""
    clients = []
    for key in keys:
        http = httpx.AsyncClient(base_url=server.base_url, timeout=HTTP_TIMEOUT_S)
        clients.append(Client(await stack.enter_async_context(http), key, record))
    return clients


async def test_many_clients_move_money_without_creating_or_losing_any(
    server: Server, db: Database, clock: conftest.TestClock, operator: Key
) -> None:
    rng = random.Random(SEED)
    record = Record()
    seq_before = await journal_head(db)
    deadlocks_before = await deadlocks_so_far(db)
    keys = [await new_key(db, clock, Role.operator) for _ in range(WORKERS)]
    async with AsyncExitStack() as stack:
        [admin] = await open_clients(stack, server, [operator], record)
        clearing, hot, cold = await open_accounts(admin)
        storm = Storm(await open_clients(stack, server, keys, record), clearing, hot, cold, record)

        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for index, each in enumerate(storm.clients):
                group.create_task(worker(storm, each, random.Random(rng.getrandbits(64) + index)))
            group.create_task(account_races(storm, operator, random.Random(rng.getrandbits(64))))
        elapsed_s = time.perf_counter() - started
        print(summary(record, elapsed_s, await deadlocks_so_far(db) - deadlocks_before))

        assert not record.server_errors, (record.server_errors[:5], server.log_tail())
        assert record.replays > 0 and record.refusals["exceeds_credits"] > 0
        assert any(t["kind"] == "post_pending" for t in record.accepted.values())
        await check_afterwards(storm, admin, db, seq_before)
        assert not record.server_errors, (record.server_errors[:5], server.log_tail())
        assert "unhandled_error" not in server.log_tail(10**7)


@pytest.mark.parametrize("action", ["post", "void"])
async def test_one_resolution_sent_by_many_clients_at_once_applies_once_and_replays(
    server: Server, db: Database, clock: conftest.TestClock, operator: Key, action: str
) -> None:
    """A client that resends its post or void (the same resolution id) while the first is in
    flight gets the first answer replayed (200), not "already posted/voided" (409)."""
    record = Record()
    async with AsyncExitStack() as stack:
        clients = await open_clients(stack, server, [operator] * 8, record)
        _, hot, _ = await open_accounts(clients[0])
        hold = await clients[0].post(TRANSFERS, transfer_body(hot[0], hot[1], 10_00, pending=True))
        assert hold.status_code == 201, hold.text
        path = f"{TRANSFERS}/{hold.json()['id']}/{action}"
        body = {"id": uid("rs")}
        answers = await asyncio.gather(*(c.post(path, body) for c in clients))
        seen = [(a.status_code, a.text[:200]) for a in answers]
        assert sorted(a.status_code for a in answers) == [200] * 7 + [201], seen
        assert all(a.json() == answers[0].json() for a in answers), seen
        assert not record.server_errors, record.server_errors
