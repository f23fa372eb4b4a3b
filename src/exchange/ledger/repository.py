"""The ledger's journal access for the write path: one set of operations, two implementations.

`PgJournal` runs them on PostgreSQL straight on the asyncpg connection under the caller's session,
inside its transaction: id lists as one array, many rows by one `unnest` UPDATE or one COPY.
`SqlJournal` runs them through SQLAlchemy Core on any database (SQLite; PostgreSQL under another
driver). Both answer with the same plain rows. The service decides; this module reads and writes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import BindParameter, Table, bindparam, delete, exc, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.ledger.models import Account, Hold, Transfer

JOURNAL_LOCK = (0x6C656467, 1)  # pg_advisory_xact_lock(namespace 'ledg', journal head)
BULK_ROWS_MIN = 16  # from this many rows, PostgreSQL writes them in one statement (unnest, COPY)

_accounts = cast(Table, Account.__table__)
_transfers = cast(Table, Transfer.__table__)
_holds = cast(Table, Hold.__table__)

AccountTotals = tuple[str, int, int, int, int]  # account id, then its four totals in Totals order


class AccountRow(NamedTuple):
    """A `ledger_account` row, its columns in table order."""

    id: str
    currency: str
    code: str
    owner_type: str | None
    owner_id: str | None
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    created_at: datetime


class TransferRow(NamedTuple):
    """A `ledger_transfer` row (a journal entry), its columns in table order."""

    seq: int
    id: str
    kind: str
    debit_account_id: str
    credit_account_id: str
    amount: int
    currency: str
    code: str
    reference: str | None
    pending_id: str | None
    timeout_s: int | None
    fx_rate_id: str | None
    created_at: datetime
    dr_debits_pending: int
    dr_debits_posted: int
    dr_credits_pending: int
    dr_credits_posted: int
    cr_debits_pending: int
    cr_debits_posted: int
    cr_credits_pending: int
    cr_credits_posted: int
    hash: str


# Rows are built positionally from either driver's rows: the fields must follow the tables.
assert AccountRow._fields == tuple(c.name for c in _accounts.columns)
assert TransferRow._fields == tuple(c.name for c in _transfers.columns)


class Journal(ABC):
    """The reads and writes of `ledger.create_transfers`, in the caller's transaction."""

    @abstractmethod
    async def transfers(self, ids: Sequence[str]) -> list[TransferRow]:
        """The journal entries with these ids (any order)."""

    @abstractmethod
    async def resolutions(self, pending_ids: Sequence[str]) -> list[TransferRow]:
        """The posts and voids of these holds (at most one each)."""

    @abstractmethod
    async def lock_accounts(self, ids: Sequence[str]) -> list[AccountRow]:
        """The accounts, locked for the rest of the transaction in id order, so two writers
        never wait for each other's accounts in a cycle."""

    @abstractmethod
    async def update_totals(self, totals: Sequence[AccountTotals]) -> None:
        """Store the accounts' new totals (accounts locked already)."""

    @abstractmethod
    async def lock_head(self) -> tuple[int, str, datetime] | None:
        """Take the journal head until the transaction ends, then read the last entry's seq,
        hash and time (None when the journal is empty)."""

    @abstractmethod
    async def append(self, rows: Sequence[TransferRow]) -> None:
        """Insert new journal entries (head held)."""

    @abstractmethod
    async def close_holds(self, transfer_ids: Sequence[str]) -> None:
        """Forget the timeouts of holds that are resolved."""

    @abstractmethod
    async def open_holds(self, holds: Sequence[tuple[str, datetime]]) -> None:
        """Remember when new holds expire: (transfer id, expires_at)."""


async def journal(session: AsyncSession) -> Journal:
    """The journal for this session: asyncpg's connection when there is one, else SQLAlchemy."""
    dialect = session.get_bind().dialect
    postgres = dialect.name == "postgresql"
    if not postgres or dialect.driver != "asyncpg":
        return SqlJournal(session, postgres=postgres)
    if session.new or session.dirty or session.deleted:
        await session.flush()  # what SQLAlchemy's autoflush does before a statement
    raw = await (await session.connection()).get_raw_connection()
    adapted: Any = raw.dbapi_connection
    if adapted._transaction is None:
        # SQLAlchemy's asyncpg adapter begins at its first statement; begin the same way (same
        # isolation level), so these statements are part of the session's transaction.
        await adapted._start_transaction()
    driver = raw.driver_connection
    assert driver is not None and driver.is_in_transaction(), "outside the session's transaction"
    return PgJournal(driver)


# ---------------------------------------------------------------------------------------------
# PostgreSQL through asyncpg. Statements are plain text, so asyncpg prepares each once per
# connection; bench/ledger.py runs these very statements for its raw-SQL baseline.


def _columns(table: Table) -> str:
    return ", ".join(c.name for c in table.columns)


TRANSFER_COLUMNS = _columns(_transfers)
SQL_TRANSFERS = f"SELECT {TRANSFER_COLUMNS} FROM ledger_transfer WHERE id = ANY($1::varchar[])"
SQL_RESOLUTIONS = (
    f"SELECT {TRANSFER_COLUMNS} FROM ledger_transfer WHERE pending_id = ANY($1::varchar[])"
)
SQL_LOCK_ACCOUNTS = (
    f"SELECT {_columns(_accounts)} FROM ledger_account WHERE id = ANY($1::varchar[]) "
    "ORDER BY id FOR UPDATE"
)
SQL_UPDATE_TOTALS = (
    "UPDATE ledger_account SET debits_pending = $2, debits_posted = $3, credits_pending = $4, "
    "credits_posted = $5 WHERE id = $1"
)
SQL_UPDATE_TOTALS_UNNEST = (
    "UPDATE ledger_account AS a SET debits_pending = v.dp, debits_posted = v.dpo, "
    "credits_pending = v.cp, credits_posted = v.cpo "
    "FROM unnest($1::varchar[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) "
    "AS v(id, dp, dpo, cp, cpo) WHERE a.id = v.id"
)
SQL_JOURNAL_LOCK = "SELECT pg_advisory_xact_lock($1, $2)"
SQL_HEAD = "SELECT seq, hash, created_at FROM ledger_transfer ORDER BY seq DESC LIMIT 1"
SQL_APPEND = (
    f"INSERT INTO ledger_transfer ({TRANSFER_COLUMNS}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(_transfers.columns) + 1))})"
)
SQL_CLOSE_HOLDS = "DELETE FROM ledger_hold WHERE transfer_id = ANY($1::varchar[])"
SQL_OPEN_HOLDS = (
    "INSERT INTO ledger_hold (transfer_id, expires_at) "
    "SELECT * FROM unnest($1::varchar[], $2::timestamptz[])"
)


def _as_sqlalchemy_error(sql: str, error: Exception) -> exc.DBAPIError:
    """The error SQLAlchemy would have raised, so the unit of work retries on the same causes
    (unique race, deadlock, serialization failure: `exchange.db.retry_reason`)."""
    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return exc.IntegrityError(sql, None, error)
    return exc.DBAPIError(sql, None, error)


class PgJournal(Journal):
    def __init__(self, driver: Any) -> None:
        self._driver = driver  # asyncpg.Connection, in the session's transaction

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        try:
            rows: list[Any] = await self._driver.fetch(sql, *args)
        except asyncpg.PostgresError as error:
            raise _as_sqlalchemy_error(sql, error) from error
        return rows

    async def _execute(self, sql: str, *args: Any) -> None:
        try:
            await self._driver.execute(sql, *args)
        except asyncpg.PostgresError as error:
            raise _as_sqlalchemy_error(sql, error) from error

    async def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            await self._driver.executemany(sql, rows)
        except asyncpg.PostgresError as error:
            raise _as_sqlalchemy_error(sql, error) from error

    async def transfers(self, ids: Sequence[str]) -> list[TransferRow]:
        if not ids:
            return []
        return [TransferRow._make(r) for r in await self._fetch(SQL_TRANSFERS, ids)]

    async def resolutions(self, pending_ids: Sequence[str]) -> list[TransferRow]:
        if not pending_ids:
            return []
        return [TransferRow._make(r) for r in await self._fetch(SQL_RESOLUTIONS, pending_ids)]

    async def lock_accounts(self, ids: Sequence[str]) -> list[AccountRow]:
        if not ids:
            return []
        return [AccountRow._make(r) for r in await self._fetch(SQL_LOCK_ACCOUNTS, ids)]

    async def update_totals(self, totals: Sequence[AccountTotals]) -> None:
        if len(totals) < BULK_ROWS_MIN:
            await self._executemany(SQL_UPDATE_TOTALS, totals)
        else:
            await self._execute(SQL_UPDATE_TOTALS_UNNEST, *zip(*totals, strict=True))

    async def lock_head(self) -> tuple[int, str, datetime] | None:
        await self._execute(SQL_JOURNAL_LOCK, *JOURNAL_LOCK)
        head = await self._fetch(SQL_HEAD)
        return (head[0][0], head[0][1], head[0][2]) if head else None

    async def append(self, rows: Sequence[TransferRow]) -> None:
        if len(rows) == 1:
            await self._execute(SQL_APPEND, *rows[0])
        elif len(rows) < BULK_ROWS_MIN:
            await self._executemany(SQL_APPEND, rows)
        else:
            # COPY: the cheapest bulk insert on both sides (binary rows; no per-row statement).
            try:
                await self._driver.copy_records_to_table(
                    "ledger_transfer", records=rows, columns=TransferRow._fields
                )
            except asyncpg.PostgresError as error:
                raise _as_sqlalchemy_error("COPY ledger_transfer", error) from error

    async def close_holds(self, transfer_ids: Sequence[str]) -> None:
        await self._execute(SQL_CLOSE_HOLDS, transfer_ids)

    async def open_holds(self, holds: Sequence[tuple[str, datetime]]) -> None:
        await self._execute(SQL_OPEN_HOLDS, *zip(*holds, strict=True))


# ---------------------------------------------------------------------------------------------
# Any database through SQLAlchemy Core. On PostgreSQL (another driver) it locks as above; on
# SQLite the writer lock taken at BEGIN IMMEDIATE serialises every writer already.

_IDS: BindParameter[Any] = bindparam("ids", expanding=True)
_SELECT_TRANSFERS = select(_transfers).where(_transfers.c.id.in_(_IDS))
_SELECT_RESOLUTIONS = select(_transfers).where(_transfers.c.pending_id.in_(_IDS))
_SELECT_ACCOUNTS = select(_accounts).where(_accounts.c.id.in_(_IDS)).order_by(_accounts.c.id)
_LOCK_ACCOUNTS = _SELECT_ACCOUNTS.with_for_update()
_UPDATE_TOTALS = (
    update(_accounts)
    .where(_accounts.c.id == bindparam("account_id"))
    .values(
        debits_pending=bindparam("dp"),
        debits_posted=bindparam("dpo"),
        credits_pending=bindparam("cp"),
        credits_posted=bindparam("cpo"),
    )
)
_JOURNAL_LOCK = text("SELECT pg_advisory_xact_lock(:namespace, :key)").bindparams(
    namespace=JOURNAL_LOCK[0], key=JOURNAL_LOCK[1]
)
_SELECT_HEAD = (
    select(_transfers.c.seq, _transfers.c.hash, _transfers.c.created_at)
    .order_by(_transfers.c.seq.desc())
    .limit(1)
)
_INSERT_TRANSFERS = insert(_transfers)
_DELETE_HOLDS = delete(_holds).where(_holds.c.transfer_id.in_(_IDS))
_INSERT_HOLDS = insert(_holds)


class SqlJournal(Journal):
    def __init__(self, session: AsyncSession, *, postgres: bool) -> None:
        self._session = session
        self._postgres = postgres

    async def transfers(self, ids: Sequence[str]) -> list[TransferRow]:
        if not ids:
            return []
        result = await self._session.execute(_SELECT_TRANSFERS, {"ids": list(ids)})
        return [TransferRow._make(r) for r in result]

    async def resolutions(self, pending_ids: Sequence[str]) -> list[TransferRow]:
        if not pending_ids:
            return []
        result = await self._session.execute(_SELECT_RESOLUTIONS, {"ids": list(pending_ids)})
        return [TransferRow._make(r) for r in result]

    async def lock_accounts(self, ids: Sequence[str]) -> list[AccountRow]:
        if not ids:
            return []
        query = _LOCK_ACCOUNTS if self._postgres else _SELECT_ACCOUNTS
        result = await self._session.execute(query, {"ids": list(ids)})
        return [AccountRow._make(r) for r in result]

    async def update_totals(self, totals: Sequence[AccountTotals]) -> None:
        await self._session.execute(
            _UPDATE_TOTALS,
            [
                {"account_id": account_id, "dp": dp, "dpo": dpo, "cp": cp, "cpo": cpo}
                for account_id, dp, dpo, cp, cpo in totals
            ],
        )

    async def lock_head(self) -> tuple[int, str, datetime] | None:
        if self._postgres:
            await self._session.execute(_JOURNAL_LOCK)
        head = (await self._session.execute(_SELECT_HEAD)).first()
        return (head[0], head[1], head[2]) if head else None

    async def append(self, rows: Sequence[TransferRow]) -> None:
        await self._session.execute(_INSERT_TRANSFERS, [row._asdict() for row in rows])

    async def close_holds(self, transfer_ids: Sequence[str]) -> None:
        await self._session.execute(_DELETE_HOLDS, {"ids": list(transfer_ids)})

    async def open_holds(self, holds: Sequence[tuple[str, datetime]]) -> None:
        await self._session.execute(
            _INSERT_HOLDS,
            [{"transfer_id": transfer_id, "expires_at": at} for transfer_id, at in holds],
        )
