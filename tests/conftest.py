"""Test fixtures: one fresh database per test run (PostgreSQL from EXCHANGE_TEST_DATABASE_URL,
else a SQLite file), built by the migrations and dropped at the end; the app over ASGI; keys."""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from exchange.app import create_app
from exchange.auth.service import Role, create_key
from exchange.config import Settings
from exchange.db import Database
from exchange.health import alembic_config
from exchange.parties.service import create_party

TEST_DATABASE_URL = os.environ.get("EXCHANGE_TEST_DATABASE_URL")
ON_POSTGRES = bool(TEST_DATABASE_URL)
SKIP_REASON = "needs PostgreSQL: set EXCHANGE_TEST_DATABASE_URL (CI does)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ON_POSTGRES:
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config: pytest.Config) -> str:
    where = "PostgreSQL (a fresh database)" if ON_POSTGRES else "SQLite (a fresh file)"
    return f"exchange tests run on {where}"


class TestClock:
    """Real time plus an offset that tests can move forward."""

    __test__ = False  # a fixture's class, not a test class

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        assert delta >= timedelta(0)
        self.offset += delta


def _migrate(url: str) -> None:
    # Alembic's env runs its own event loop; give it a thread of its own.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(command.upgrade, alembic_config(url), "head").result()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    if not ON_POSTGRES:
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{Path(folder) / 'test.db'}"
            _migrate(url)
            yield url
        return
    assert TEST_DATABASE_URL is not None
    base = make_url(TEST_DATABASE_URL)
    name = f"exchange_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin_dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(admin_dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        _migrate(url)
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=database_url,
        evidence_dir=str(tmp_path_factory.mktemp("evidence")),
        run_worker=False,
        log_level="WARNING",
        auth_cache_ttl_s=0,
        db_pool_size=10,
    )


@pytest.fixture(scope="session")
def clock() -> TestClock:
    return TestClock()


@pytest.fixture(scope="session")
async def app(settings: Settings, clock: TestClock) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock)
    async with LifespanManager(application):
        yield application


@pytest.fixture(scope="session")
def db(app: FastAPI) -> Database:
    database: Database = app.state.services.db
    return database


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def uid(prefix: str = "t") -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


@dataclass(frozen=True)
class Key:
    role: str
    token: str
    party_id: str | None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def new_key(db: Database, clock: TestClock, role: Role, party_id: str | None = None) -> Key:
    async def unit(session: Any) -> str:
        _, token = await create_key(
            session, role=role, party_id=party_id, name="test", now=clock.now()
        )
        return token

    return Key(role.value, await db.run(unit), party_id)


async def new_member(db: Database, clock: TestClock) -> Key:
    party_id = uid("party")

    async def unit(session: Any) -> None:
        await create_party(
            session, party_id=party_id, name="Test party", kind="enterprise", now=clock.now()
        )

    await db.run(unit)
    return await new_key(db, clock, Role.member, party_id)


@pytest.fixture(scope="session")
async def operator(db: Database, clock: TestClock) -> Key:
    return await new_key(db, clock, Role.operator)


@pytest.fixture(scope="session")
async def auditor(db: Database, clock: TestClock) -> Key:
    return await new_key(db, clock, Role.auditor)


@pytest.fixture
async def member(db: Database, clock: TestClock) -> Key:
    return await new_member(db, clock)


def cny(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "CNY"}


class Ledger:
    """Factories that go through the API, so a test states only what matters to it."""

    def __init__(self, client: httpx.AsyncClient, key: Key) -> None:
        self.client = client
        self.key = key

    async def account(
        self,
        currency: str = "CNY",
        code: str = "available",
        *,
        limit: bool = False,
        owner: dict[str, Any] | None = None,
        key: Key | None = None,
    ) -> str:
        body: dict[str, Any] = {"id": uid("acc"), "currency": currency, "code": code}
        if limit:
            body["flags"] = {"debits_must_not_exceed_credits": True}
        if owner is not None:
            body["owner"] = owner
        response = await self.client.post(
            "/v1/ledger/accounts", json=body, headers=(key or self.key).headers
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def transfer(
        self,
        debit: str,
        credit: str,
        amount: str,
        currency: str = "CNY",
        *,
        expect: int = 201,
        key: Key | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        body = {
            "id": uid("tr"),
            "debit_account_id": debit,
            "credit_account_id": credit,
            "amount": {"amount": amount, "currency": currency},
            "code": "test",
            **extra,
        }
        response = await self.client.post(
            "/v1/ledger/transfers", json=body, headers=(key or self.key).headers
        )
        assert response.status_code == expect, response.text
        result: dict[str, Any] = response.json()
        return result

    async def funded(
        self, amount: str, currency: str = "CNY", *, owner: dict[str, Any] | None = None
    ) -> str:
        """A limit-flagged account holding `amount`, funded from a clearing account."""
        source = await self.account(currency, "external_clearing")
        target = await self.account(currency, limit=True, owner=owner)
        await self.transfer(source, target, amount, currency)
        return target

    async def get_account(self, account_id: str) -> dict[str, Any]:
        response = await self.client.get(
            f"/v1/ledger/accounts/{account_id}", headers=self.key.headers
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture
def ledger(client: httpx.AsyncClient, operator: Key) -> Ledger:
    return Ledger(client, operator)
