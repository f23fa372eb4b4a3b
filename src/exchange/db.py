"""Database engines, the shared metadata, and the unit of work that retries on contention.

One `AsyncSession` per unit of work: a state row, its ledger transfers and its audit record commit
together or not at all. Services never commit; `Database.run` does, and on a serialization failure,
a deadlock or a lost idempotency race it retries the whole unit, a bounded number of times.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from sqlalchemy import DateTime, MetaData, Select, event, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from exchange.clock import Clock, SystemClock
from exchange.config import Settings

log = structlog.get_logger(__name__)
T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def for_update(
    session: AsyncSession, query: Select[Any], *, skip_locked: bool = False
) -> Select[Any]:
    """`query` taking row locks where the database has them (PostgreSQL). On SQLite the writer
    lock taken at BEGIN IMMEDIATE serialises every unit of work already."""
    if session.get_bind().dialect.name != "postgresql":
        return query
    return query.with_for_update(skip_locked=skip_locked)


async def judged_now(session: AsyncSession, clock: Clock) -> datetime:
    """The instant that judges deadlines (an auction's close, a notice's end): on PostgreSQL
    with the system clock, the database's own clock, so every API process judges by one clock;
    an injected clock (tests) or SQLite (one process writes): the engine's clock."""
    if isinstance(clock, SystemClock) and session.get_bind().dialect.name == "postgresql":
        moment: datetime = (await session.execute(text("SELECT clock_timestamp()"))).scalar_one()
        return moment.astimezone(UTC)
    return clock.now()


class UTCDateTime(TypeDecorator[datetime]):
    """timestamptz on PostgreSQL; on SQLite a naive UTC string, handed back timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert value.tzinfo is not None, "naive datetimes are not stored"
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, settings: Settings) -> AsyncEngine:
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _serialise_sqlite_writers(engine)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=False,
    )


def _serialise_sqlite_writers(engine: AsyncEngine) -> None:
    """SQLite allows one writer: take the write lock at BEGIN, so no two units deadlock."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected
_UNIQUE_VIOLATION = "23505"


def _sqlstate(error: DBAPIError) -> str | None:
    orig = error.orig
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


def retry_reason(error: DBAPIError) -> str | None:
    """Why a failed unit of work may be retried whole, or None when it must not be."""
    state = _sqlstate(error)
    if state in _RETRYABLE_SQLSTATES:
        return "serialization" if state == "40001" else "deadlock"
    if isinstance(error, IntegrityError) and (
        state == _UNIQUE_VIOLATION or "UNIQUE constraint failed" in str(error.orig)
    ):
        # Two units raced to create the same idempotent row; the retry finds the winner's row.
        return "unique_race"
    if isinstance(error, OperationalError) and "database is locked" in str(error.orig):
        return "sqlite_busy"
    return None


class Database:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.database_url
        self.engine = make_engine(settings.database_url, settings)
        self.read_engine = (
            make_engine(settings.database_read_url, settings)
            if settings.database_read_url
            else self.engine
        )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def run(
        self, work: Callable[[AsyncSession], Awaitable[T]], *, attempts_max: int | None = None
    ) -> T:
        """Run `work` in one transaction; commit on return, roll back on any exception.

        Retries the whole unit on serialization failure, deadlock, a unique-key race or a busy
        SQLite, with jittered backoff, at most `attempts_max` times.
        """
        attempts_max = attempts_max or self.settings.db_retry_attempts_max
        unique_races = 0
        for attempt in range(1, attempts_max + 1):
            try:
                async with self.sessions() as session, session.begin():
                    return await work(session)
            except DBAPIError as error:
                reason = retry_reason(error)
                if reason == "unique_race":
                    unique_races += 1
                if reason is None or attempt == attempts_max or unique_races > 2:
                    raise
                log.info("unit_of_work_retry", reason=reason, attempt=attempt)
                await asyncio.sleep(min(0.2, 0.002 * 2**attempt) * random.random())
        raise AssertionError("unreachable")  # pragma: no cover

    async def read(
        self, work: Callable[[AsyncSession], Awaitable[T]], *, snapshot: bool = False
    ) -> T:
        """Run read-only `work`; `snapshot` makes every query in it see one instant (PostgreSQL
        REPEATABLE READ; SQLite's transactions are serialisable already)."""
        async with self.read_sessions() as session, session.begin():
            if snapshot and self.read_engine.dialect.name == "postgresql":
                await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            return await work(session)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
