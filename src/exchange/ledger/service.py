"""Ledger service: accounts, transfers (single, two-phase, linked batches), point-in-time balances,
FX moves and chain verification. Functions take the caller's session and never commit, so a deal's
state change and its money move commit together. The ledger calls no other domain.

Locking, on PostgreSQL: the accounts a batch touches are locked `FOR UPDATE` in id order (so two
batches never deadlock on each other's accounts) and their new totals written; then the journal head
is taken with one transaction-scoped advisory lock, last, so it is held only for the head read, the
chain, the insert and the commit. Holding it is what makes `seq` gapless and the hash chain a single
line. On SQLite the writer lock taken at BEGIN IMMEDIATE serialises everything already. The SQL of
the write path is in `repository` (asyncpg on PostgreSQL, SQLAlchemy Core elsewhere).

Totals are written with plain statements, not through the ORM: an `Account` loaded earlier in the
same session keeps its old totals; read it again (`session.get(Account, id,
populate_existing=True)`) when a caller needs the new ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, NamedTuple, cast

from sqlalchemy import Row, Table, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.db import for_update
from exchange.errors import DomainError
from exchange.ledger import repository
from exchange.ledger.models import Account, FxRate, Hold, Transfer, TransferKind
from exchange.ledger.repository import JOURNAL_LOCK as JOURNAL_LOCK
from exchange.ledger.repository import AccountRow, TransferRow
from exchange.ledger.rules import (
    GENESIS_HASH,
    Entry,
    Limits,
    Totals,
    apply,
    chain_hash,
    limit_breach,
)
from exchange.money import exponent

BATCH_SIZE_MAX = 8190
PLAN_SLICE_TRANSFERS = 256  # transfers planned between two yields to the event loop
EXPIRED_CODE = "hold_expired"

_accounts = cast(Table, Account.__table__)
_transfers = cast(Table, Transfer.__table__)
_holds = cast(Table, Hold.__table__)


# ---------------------------------------------------------------------------------------------
# Inputs and outputs


@dataclass(frozen=True, slots=True)
class AccountSpec:
    id: str
    currency: str
    code: str
    owner_type: str | None = None
    owner_id: str | None = None
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False


@dataclass(frozen=True, slots=True)
class TransferSpec:
    """A new transfer: posted at once, or a hold (`pending`) that may time out."""

    id: str
    debit_account_id: str
    credit_account_id: str
    amount: int
    currency: str
    code: str
    pending: bool = False
    timeout_s: int | None = None
    reference: str | None = None
    fx_rate_id: str | None = None

    @property
    def kind(self) -> TransferKind:
        return TransferKind.pending if self.pending else TransferKind.single


@dataclass(frozen=True, slots=True)
class ResolveSpec:
    """Post (all or `amount` of) or void a hold. Its own id defaults to '<pending_id>.post|void';
    client ids cannot contain '.', so a derived id never collides with one a client chose."""

    pending_id: str
    post: bool
    amount: int | None = None
    id: str | None = None
    code: str | None = None  # default: the hold's code

    @property
    def transfer_id(self) -> str:
        return self.id or f"{self.pending_id}.{'post' if self.post else 'void'}"

    @property
    def kind(self) -> TransferKind:
        return TransferKind.post_pending if self.post else TransferKind.void_pending


AnySpec = TransferSpec | ResolveSpec


class TransferView(NamedTuple):
    """A transfer as read back. (A named tuple: a batch returns one per transfer, and one is
    about five times faster to build than a frozen dataclass.)"""

    id: str
    seq: int
    kind: TransferKind
    status: str  # posted | pending | voided
    debit_account_id: str
    credit_account_id: str
    amount: int
    currency: str
    code: str
    reference: str | None
    pending_id: str | None
    timeout_s: int | None
    fx_rate_id: str | None
    timestamp: datetime
    resolved_by: str | None = None

    @property
    def expires_at(self) -> datetime | None:
        if self.kind is TransferKind.pending and self.timeout_s is not None:
            return self.timestamp + timedelta(seconds=self.timeout_s)
        return None


@dataclass(frozen=True, slots=True)
class BatchResult:
    transfers: list[TransferView]
    created: bool  # False when every transfer already existed (a replay)


@dataclass(frozen=True, slots=True)
class Balance:
    account_id: str
    currency: str
    as_of: datetime
    totals: Totals


@dataclass(frozen=True, slots=True)
class Failure:
    index: int
    transfer_id: str
    code: str
    status: int
    detail: str
    fields: tuple[str, ...] = ()

    def as_error(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "id": self.transfer_id,
            "code": self.code,
            "detail": self.detail,
            "fields": list(self.fields),
        }


class TransfersRefused(DomainError):
    """A batch (or a single transfer) was refused whole: nothing was written."""

    code = "transfers_refused"
    title = "Transfers refused"

    def __init__(self, failures: list[Failure]) -> None:
        assert failures
        first = failures[0]
        super().__init__(
            f"transfer {first.index} ({first.transfer_id}): {first.detail}",
            errors=[f.as_error() for f in failures],
        )
        self.failures = failures
        self.status = first.status

    @classmethod
    def single(cls, failure: Failure) -> TransfersRefused:
        """The refusal of one transfer sent alone: it answers with the failure's own code."""
        refused = cls([replace(failure, index=0)])
        refused.code = failure.code
        refused.title = "Transfer refused"
        refused.detail = failure.detail
        return refused


class AccountExists(DomainError):
    status = 409
    code = "exists_with_different_fields"
    title = "Account exists with different fields"


class AccountNotFound(DomainError):
    status = 404
    code = "account_not_found"
    title = "Account not found"


# ---------------------------------------------------------------------------------------------
# Accounts


async def create_account(
    session: AsyncSession, spec: AccountSpec, now: datetime
) -> tuple[Account, bool]:
    """Create an account, or return the existing one when it has the same fields."""
    assert not (spec.debits_must_not_exceed_credits and spec.credits_must_not_exceed_debits)
    existing = await session.get(Account, spec.id)
    if existing is not None:
        differing = [
            name
            for name in (
                "currency",
                "code",
                "owner_type",
                "owner_id",
                "debits_must_not_exceed_credits",
                "credits_must_not_exceed_debits",
            )
            if getattr(existing, name) != getattr(spec, name)
        ]
        if differing:
            raise AccountExists(
                f"account {spec.id} exists with different {', '.join(differing)}",
                errors=[{"field": name, "code": "differs"} for name in differing],
            )
        return existing, False
    account = Account(
        id=spec.id,
        currency=spec.currency,
        code=spec.code,
        owner_type=spec.owner_type,
        owner_id=spec.owner_id,
        debits_must_not_exceed_credits=spec.debits_must_not_exceed_credits,
        credits_must_not_exceed_debits=spec.credits_must_not_exceed_debits,
        debits_pending=0,
        debits_posted=0,
        credits_pending=0,
        credits_posted=0,
        created_at=now,
    )
    session.add(account)
    await session.flush()
    return account, True


async def get_account(session: AsyncSession, account_id: str) -> Account | None:
    return await session.get(Account, account_id)


async def list_accounts(
    session: AsyncSession,
    *,
    owner_type: str | None,
    owner_id: str | None,
    after_id: str | None,
    limit: int,
) -> list[Account]:
    query = select(Account).order_by(Account.id).limit(limit)
    if owner_type is not None:
        query = query.where(Account.owner_type == owner_type)
    if owner_id is not None:
        query = query.where(Account.owner_id == owner_id)
    if after_id is not None:
        query = query.where(Account.id > after_id)
    return list((await session.scalars(query)).all())


def totals_of(account: Account | AccountRow | Row[Any]) -> Totals:
    return Totals(
        account.debits_pending,
        account.debits_posted,
        account.credits_pending,
        account.credits_posted,
    )


# ---------------------------------------------------------------------------------------------
# Transfers


class _Planned(NamedTuple):
    """A new journal entry as planned: everything but its seq, time, totals after and hash."""

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


_TotalsAfter = tuple[int, int, int, int]
_LIMITS = {(dr, cr): Limits(dr, cr) for dr in (False, True) for cr in (False, True)}

# A planned entry fills an Entry and a TransferRow positionally: their fields must line up.
assert _Planned._fields == TransferRow._fields[1:12]
assert _Planned._fields == Entry._fields[1:12]


@dataclass(slots=True)
class _Plan:
    """What a batch will write, worked out in memory before anything is written."""

    entries: list[tuple[_Planned, _TotalsAfter, _TotalsAfter]] = field(default_factory=list)
    totals: dict[str, Totals] = field(default_factory=dict)
    limits: dict[str, Limits] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)
    holds_opened: list[tuple[str, int]] = field(default_factory=list)
    holds_closed: set[str] = field(default_factory=set)  # the holds `entries` resolve


async def create_transfers(
    session: AsyncSession, specs: Sequence[AnySpec], now: datetime
) -> BatchResult:
    """Apply a linked batch: every transfer applies, or none does and `TransfersRefused` says
    which failed and why. Transfers that already exist with the same fields are returned as they
    are (idempotency by id); if all exist, nothing is written and `created` is False."""
    assert 0 < len(specs) <= BATCH_SIZE_MAX
    assert now.tzinfo is not None, "naive datetimes are not stored"
    ids = [_spec_id(spec) for spec in specs]
    if len(set(ids)) < len(ids):
        raise TransfersRefused(_duplicate_ids(ids))
    state = await _prepare(session, specs, ids)
    failures = await _plan_all(state, specs, range(len(specs)), now)
    if failures:
        raise TransfersRefused(list(failures.values()))
    views = await _finish(state, ids, now)
    return BatchResult(transfers=views, created=bool(state.plan.entries))


async def create_transfer(session: AsyncSession, spec: AnySpec, now: datetime) -> BatchResult:
    """One transfer (or resolution) alone: a refusal answers with its own code and status, as
    `TransfersRefused.single` says."""
    try:
        return await create_transfers(session, [spec], now)
    except TransfersRefused as refused:
        raise TransfersRefused.single(refused.failures[0]) from None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one transfer of an unlinked set: its view and whether it is new, or why
    it was refused."""

    view: TransferView | None
    created: bool
    failure: Failure | None


async def create_transfers_each(
    session: AsyncSession, specs: Sequence[AnySpec], now: datetime
) -> list[Outcome]:
    """Apply independent transfers in one transaction, in order, each as if alone: a refused
    one is left out and the others apply (unlike a linked batch). This is how concurrent single
    transfers share one journal-head lock and one commit. An id sent twice is one transfer:
    the same fields again replay it, other fields are refused."""
    assert 0 < len(specs) <= BATCH_SIZE_MAX
    assert now.tzinfo is not None, "naive datetimes are not stored"
    ids = [_spec_id(spec) for spec in specs]
    first: dict[str, int] = {}
    for index, transfer_id in enumerate(ids):
        first.setdefault(transfer_id, index)
    unique = sorted(first.values())
    state = await _prepare(session, [specs[i] for i in unique], [ids[i] for i in unique])
    failures = await _plan_all(state, specs, unique, now)
    views = {
        v.id: v for v in await _finish(state, [ids[i] for i in unique if i not in failures], now)
    }
    new = {entry[0].id for entry in state.plan.entries}
    outcomes = []
    for index, spec in enumerate(specs):
        origin = first[ids[index]]
        failure = failures.get(origin)
        if origin != index and specs[origin] != spec:
            failure = Failure(
                index,
                ids[index],
                "exists_with_different_fields",
                409,
                f"transfer {ids[index]} was sent at once with other fields",
                ("id",),
            )
        if failure is not None:
            outcomes.append(Outcome(None, False, replace(failure, index=index)))
        else:
            created = origin == index and ids[index] in new
            outcomes.append(Outcome(views[ids[index]], created, None))
    return outcomes


@dataclass(slots=True)
class _State:
    journal: repository.Journal
    pendings: dict[str, TransferRow]
    accounts: dict[str, AccountRow]
    existing: dict[str, TransferRow]
    resolutions: dict[str | None, TransferRow]
    plan: _Plan


async def _prepare(session: AsyncSession, specs: Sequence[AnySpec], ids: list[str]) -> _State:
    journal = await repository.journal(session)
    pending_ids = sorted({spec.pending_id for spec in specs if isinstance(spec, ResolveSpec)})
    pendings = {row.id: row for row in await journal.transfers(pending_ids)}

    locked = await journal.lock_accounts(_account_ids(specs, pendings))
    # Read after the locks: a request with the same ids that committed while this one waited
    # is found here and replayed (each statement sees what committed before it began).
    existing = {row.id: row for row in await journal.transfers(ids)}
    # Also after the locks: every resolution of a hold locks the hold's accounts first.
    resolutions = {row.pending_id: row for row in await journal.resolutions(pending_ids)}
    plan = _Plan(
        totals={account.id: totals_of(account) for account in locked},
        limits={
            account.id: _LIMITS[
                account.debits_must_not_exceed_credits, account.credits_must_not_exceed_debits
            ]
            for account in locked
        },
    )
    accounts = {account.id: account for account in locked}
    return _State(journal, pendings, accounts, existing, resolutions, plan)


async def _plan_all(
    state: _State, specs: Sequence[AnySpec], indexes: Iterable[int], now: datetime
) -> dict[int, Failure]:
    failures = {}
    for count, index in enumerate(indexes):
        if count and not count % PLAN_SLICE_TRANSFERS:
            # Let other tasks of this process run: one may hold the journal head and only wait
            # to send its next statement (or COMMIT); planning a whole batch takes milliseconds.
            await asyncio.sleep(0)
        failure = _plan_one(
            index,
            specs[index],
            state.existing,
            state.pendings,
            state.accounts,
            state.resolutions,
            state.plan,
            now,
        )
        if failure is not None:
            failures[index] = failure
    return failures


async def _finish(state: _State, ids: list[str], now: datetime) -> list[TransferView]:
    """Write what was planned; the views of `ids` (new or existing), in that order."""
    written = await _write(state.journal, state.plan, now) if state.plan.entries else []
    views = [_view(row, None) for row in written]  # a new hold is not resolved yet
    wanted = set(ids)
    existing = [row for row in state.existing.values() if row.id in wanted]
    if existing or len(views) != len(ids):
        views = _ordered(views + await _with_status(state.journal, existing), ids)
    return views


def _spec_id(spec: AnySpec) -> str:
    return spec.transfer_id if isinstance(spec, ResolveSpec) else spec.id


def _duplicate_ids(ids: Sequence[str]) -> list[Failure]:
    seen: dict[str, int] = {}
    failures = []
    for index, transfer_id in enumerate(ids):
        if transfer_id in seen:
            failures.append(
                Failure(
                    index,
                    transfer_id,
                    "id_repeated_in_batch",
                    422,
                    f"id {transfer_id} is already used by transfer {seen[transfer_id]}",
                    ("id",),
                )
            )
        seen.setdefault(transfer_id, index)
    return failures


def _account_ids(specs: Sequence[AnySpec], pendings: dict[str, TransferRow]) -> list[str]:
    ids: set[str] = set()
    for spec in specs:
        if isinstance(spec, TransferSpec):
            ids.add(spec.debit_account_id)
            ids.add(spec.credit_account_id)
        elif spec.pending_id in pendings:
            pending = pendings[spec.pending_id]
            ids.add(pending.debit_account_id)
            ids.add(pending.credit_account_id)
    return sorted(ids)


def _plan_one(
    index: int,
    spec: AnySpec,
    existing: dict[str, TransferRow],
    pendings: dict[str, TransferRow],
    accounts: dict[str, AccountRow],
    resolutions: dict[str | None, TransferRow],
    plan: _Plan,
    now: datetime,
) -> Failure | None:
    transfer_id = _spec_id(spec)

    def fail(code: str, status: int, detail: str, *fields: str) -> Failure:
        return Failure(index, transfer_id, code, status, detail, fields)

    if transfer_id in existing:
        differing = _differing_fields(spec, existing[transfer_id], pendings)
        if differing:
            return fail(
                "exists_with_different_fields",
                409,
                f"transfer {transfer_id} exists with different {', '.join(differing)}",
                *differing,
            )
        return None
    if isinstance(spec, ResolveSpec):
        return _plan_resolve(index, spec, pendings, accounts, resolutions, plan, now)

    debit = accounts.get(spec.debit_account_id)
    credit = accounts.get(spec.credit_account_id)
    if debit is None:
        return fail("debit_account_not_found", 422, "no such debit account", "debit_account_id")
    if credit is None:
        return fail("credit_account_not_found", 422, "no such credit account", "credit_account_id")
    if debit.id == credit.id:
        return fail(
            "accounts_must_differ",
            422,
            "debit and credit are the same account",
            "credit_account_id",
        )
    if not debit.currency == credit.currency == spec.currency:
        return fail(
            "currency_mismatch",
            422,
            f"amount is {spec.currency}; debit account is {debit.currency}, "
            f"credit account is {credit.currency}",
            "amount.currency",
        )
    assert spec.amount > 0
    assert spec.timeout_s is None or (spec.pending and spec.timeout_s > 0)
    return _plan_apply(
        index,
        spec.kind,
        spec.amount,
        0,
        debit,
        credit,
        plan,
        _Planned(
            transfer_id,
            spec.kind.value,
            debit.id,
            credit.id,
            spec.amount,
            debit.currency,
            spec.code,
            spec.reference,
            None,
            spec.timeout_s,
            spec.fx_rate_id,
        ),
    )


def _plan_resolve(
    index: int,
    spec: ResolveSpec,
    pendings: dict[str, TransferRow],
    accounts: dict[str, AccountRow],
    resolutions: dict[str | None, TransferRow],
    plan: _Plan,
    now: datetime,
) -> Failure | None:
    transfer_id = spec.transfer_id

    def fail(code: str, status: int, detail: str, *fields: str) -> Failure:
        return Failure(index, transfer_id, code, status, detail, fields)

    pending = pendings.get(spec.pending_id)
    if pending is None:
        return fail("pending_transfer_not_found", 404, "no such pending transfer", "pending_id")
    if pending.kind != TransferKind.pending:
        return fail(
            "pending_transfer_not_pending",
            422,
            f"transfer {pending.id} is not a hold",
            "pending_id",
        )
    resolution = resolutions.get(pending.id)
    if resolution is None and pending.id in plan.holds_closed:
        return fail(
            "pending_transfer_resolved_in_batch",
            409,
            "this hold is already resolved earlier in the batch",
            "pending_id",
        )
    if resolution is not None:
        if resolution.code == EXPIRED_CODE:
            return fail("pending_transfer_expired", 409, f"hold {pending.id} expired")
        state = "posted" if resolution.kind == TransferKind.post_pending else "voided"
        return fail(
            f"pending_transfer_already_{state}",
            409,
            f"hold {pending.id} is already {state} by {resolution.id}",
        )
    if (
        spec.post
        and pending.timeout_s is not None
        and (now >= pending.created_at + timedelta(seconds=pending.timeout_s))
    ):
        return fail("pending_transfer_expired", 409, f"hold {pending.id} expired")
    amount = pending.amount if (spec.amount is None or not spec.post) else spec.amount
    if spec.amount is not None and spec.amount > pending.amount:
        return fail(
            "exceeds_pending_amount",
            422,
            f"amount is more than the {pending.amount} held",
            "amount",
        )
    assert amount > 0
    debit = accounts[pending.debit_account_id]
    credit = accounts[pending.credit_account_id]
    return _plan_apply(
        index,
        spec.kind,
        amount,
        pending.amount,
        debit,
        credit,
        plan,
        _Planned(
            transfer_id,
            spec.kind.value,
            debit.id,
            credit.id,
            amount,
            debit.currency,
            spec.code or pending.code,
            pending.reference,
            pending.id,
            None,
            pending.fx_rate_id,
        ),
    )


def _plan_apply(
    index: int,
    kind: TransferKind,
    amount: int,
    pending_amount: int,
    debit: AccountRow,
    credit: AccountRow,
    plan: _Plan,
    planned: _Planned,
) -> Failure | None:
    debit_totals = plan.totals[debit.id].copy()
    credit_totals = plan.totals[credit.id].copy()
    apply(kind, amount, pending_amount, debit_totals, credit_totals)
    account, name = debit, "debit_account_id"
    breach = limit_breach(plan.limits[debit.id], debit_totals)
    if breach is None:
        account, name = credit, "credit_account_id"
        breach = limit_breach(plan.limits[credit.id], credit_totals)
    if breach is not None:
        return Failure(
            index,
            planned.id,
            breach,
            409 if breach != "overflow" else 422,
            f"account {account.id} would pass its limit ({breach})",
            (name,),
        )
    plan.totals[debit.id] = debit_totals
    plan.totals[credit.id] = credit_totals
    plan.touched.add(debit.id)
    plan.touched.add(credit.id)
    plan.entries.append((planned, debit_totals.as_tuple(), credit_totals.as_tuple()))
    if kind is TransferKind.pending and planned.timeout_s is not None:
        plan.holds_opened.append((planned.id, planned.timeout_s))
    if planned.pending_id is not None:
        plan.holds_closed.add(planned.pending_id)
    return None


_COMPARED_FIELDS = (
    "debit_account_id",
    "credit_account_id",
    "amount",
    "currency",
    "code",
    "reference",
    "timeout_s",
    "fx_rate_id",
)


def _differing_fields(
    spec: AnySpec, row: TransferRow, pendings: dict[str, TransferRow]
) -> list[str]:
    if isinstance(spec, ResolveSpec):
        differing = []
        if row.kind != spec.kind or row.pending_id != spec.pending_id:
            differing.append("pending_id")
        held = pendings.get(spec.pending_id)
        amount = spec.amount if spec.amount is not None else (held.amount if held else None)
        if spec.post and amount is not None and amount != row.amount:
            differing.append("amount")
        return differing
    differing = [name for name in _COMPARED_FIELDS if getattr(row, name) != getattr(spec, name)]
    if row.kind != spec.kind:
        differing.append("pending")
    return differing


async def _write(journal: repository.Journal, plan: _Plan, now: datetime) -> list[TransferRow]:
    # Write the locked accounts' totals and close the resolved holds before taking the journal
    # head: the head is held until COMMIT and admits one writer at a time, so it should cover
    # only the head read, the chain and the insert.
    await journal.update_totals(
        [(account_id, *plan.totals[account_id].as_tuple()) for account_id in sorted(plan.touched)]
    )
    if plan.holds_closed:
        await journal.close_holds(sorted(plan.holds_closed))
    seq, previous_hash, head_at = await journal.lock_head() or (0, GENESIS_HASH, None)
    # Timestamps never go back along the chain, so "as of" can cut the journal by time.
    created_at = now if head_at is None or now >= head_at else head_at
    rows = []
    for planned, debit_after, credit_after in plan.entries:
        seq += 1
        entry = Entry(seq, *planned, created_at, debit_after, credit_after)
        previous_hash = chain_hash(previous_hash, entry)
        rows.append(
            TransferRow(seq, *planned, created_at, *debit_after, *credit_after, previous_hash)
        )
    await journal.append(rows)
    if plan.holds_opened:
        await journal.open_holds(
            [
                (hold_id, created_at + timedelta(seconds=timeout))
                for hold_id, timeout in plan.holds_opened
            ]
        )
    return rows


def entry_of(row: Row[Any] | TransferRow) -> Entry:
    return Entry(
        seq=row.seq,
        id=row.id,
        kind=row.kind,
        debit_account_id=row.debit_account_id,
        credit_account_id=row.credit_account_id,
        amount=row.amount,
        currency=row.currency,
        code=row.code,
        reference=row.reference,
        pending_id=row.pending_id,
        timeout_s=row.timeout_s,
        fx_rate_id=row.fx_rate_id,
        created_at=row.created_at,
        debit_after=(
            row.dr_debits_pending,
            row.dr_debits_posted,
            row.dr_credits_pending,
            row.dr_credits_posted,
        ),
        credit_after=(
            row.cr_debits_pending,
            row.cr_debits_posted,
            row.cr_credits_pending,
            row.cr_credits_posted,
        ),
    )


# ---------------------------------------------------------------------------------------------
# Reading transfers


def _ordered(views: list[TransferView], ids: Sequence[str]) -> list[TransferView]:
    by_id = {view.id: view for view in views}
    return [by_id[i] for i in ids]


async def _with_status(journal: repository.Journal, rows: list[TransferRow]) -> list[TransferView]:
    held = [row.id for row in rows if row.kind == TransferKind.pending]
    resolutions = {row.pending_id: row for row in await journal.resolutions(held)}
    return [_view(row, resolutions.get(row.id)) for row in rows]


_KINDS = {kind.value: kind for kind in TransferKind}
_STATUS = {  # by kind; a hold's changes when it resolves
    TransferKind.single: "posted",
    TransferKind.pending: "pending",
    TransferKind.post_pending: "posted",
    TransferKind.void_pending: "voided",
}


def _view(row: TransferRow, resolution: TransferRow | None) -> TransferView:
    kind = _KINDS[row.kind]
    if kind is TransferKind.pending and resolution is not None:
        status = "posted" if resolution.kind == TransferKind.post_pending else "voided"
    else:
        status = _STATUS[kind]
    return TransferView(
        id=row.id,
        seq=row.seq,
        kind=kind,
        status=status,
        debit_account_id=row.debit_account_id,
        credit_account_id=row.credit_account_id,
        amount=row.amount,
        currency=row.currency,
        code=row.code,
        reference=row.reference,
        pending_id=row.pending_id,
        timeout_s=row.timeout_s,
        fx_rate_id=row.fx_rate_id,
        timestamp=row.created_at,
        resolved_by=resolution.id if resolution is not None else None,
    )


async def get_transfer(session: AsyncSession, transfer_id: str) -> TransferView | None:
    journal = await repository.journal(session)
    rows = await journal.transfers([transfer_id])
    if not rows:
        return None
    return (await _with_status(journal, rows))[0]


@dataclass(frozen=True, slots=True)
class TransferFilter:
    code: str | None = None
    reference: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    side: str | None = None  # "debit" | "credit" | None for both


async def list_account_transfers(
    session: AsyncSession,
    account_id: str,
    *,
    after_seq: int | None,
    limit: int,
    filters: TransferFilter,
) -> list[TransferView]:
    """The account's journal entries in commit order (keyset pagination on `seq`)."""
    sides = {
        "debit": _transfers.c.debit_account_id == account_id,
        "credit": _transfers.c.credit_account_id == account_id,
    }
    side = sides[filters.side] if filters.side else or_(*sides.values())
    conditions = [side]
    if after_seq is not None:
        conditions.append(_transfers.c.seq > after_seq)
    if filters.code is not None:
        conditions.append(_transfers.c.code == filters.code)
    if filters.reference is not None:
        conditions.append(_transfers.c.reference == filters.reference)
    if filters.since is not None:
        conditions.append(_transfers.c.created_at >= filters.since)
    if filters.until is not None:
        conditions.append(_transfers.c.created_at < filters.until)
    query = select(_transfers).where(and_(*conditions)).order_by(_transfers.c.seq).limit(limit)
    rows = [TransferRow._make(row) for row in await session.execute(query)]
    return await _with_status(await repository.journal(session), rows)


# ---------------------------------------------------------------------------------------------
# Balances


async def balance(
    session: AsyncSession, account: Account, as_of: datetime | None, now: datetime
) -> Balance:
    """The four totals now, or as of any instant, from the running totals the journal stores:
    one index probe to cut the journal at `as_of`, one per side to find the account's last entry."""
    if as_of is None or as_of >= now:
        return Balance(account.id, account.currency, as_of or now, totals_of(account))
    cut = (
        await session.execute(
            select(_transfers.c.seq)
            .where(_transfers.c.created_at <= as_of)
            .order_by(_transfers.c.created_at.desc(), _transfers.c.seq.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if cut is None:
        return Balance(account.id, account.currency, as_of, Totals())
    last: tuple[int, Totals] | None = None
    for side, prefix in (
        (_transfers.c.debit_account_id, "dr_"),
        (_transfers.c.credit_account_id, "cr_"),
    ):
        row = (
            await session.execute(
                select(_transfers)
                .where(side == account.id, _transfers.c.seq <= cut)
                .order_by(_transfers.c.seq.desc())
                .limit(1)
            )
        ).first()
        if row is not None and (last is None or row.seq > last[0]):
            last = (
                row.seq,
                Totals(
                    *(
                        getattr(row, prefix + name)
                        for name in (
                            "debits_pending",
                            "debits_posted",
                            "credits_pending",
                            "credits_posted",
                        )
                    )
                ),
            )
    return Balance(account.id, account.currency, as_of, last[1] if last else Totals())


# ---------------------------------------------------------------------------------------------
# Hold expiry


async def expire_due_holds(session: AsyncSession, now: datetime, limit: int = 100) -> int:
    """Void holds whose timeout has passed. Safe to run in many processes at once: due holds are
    taken with SKIP LOCKED, and a hold resolves at most once (a unique index on pending_id)."""
    query = (
        select(_holds.c.transfer_id)
        .where(_holds.c.expires_at <= now)
        .order_by(_holds.c.expires_at)
        .limit(limit)
    )
    query = for_update(session, query, skip_locked=True)
    due = list((await session.execute(query)).scalars().all())
    if not due:
        return 0
    await create_transfers(
        session, [ResolveSpec(pending_id=hold, post=False, code=EXPIRED_CODE) for hold in due], now
    )
    return len(due)


async def expire_hold_if_due(session: AsyncSession, transfer_id: str, now: datetime) -> bool:
    query = select(_holds.c.transfer_id).where(
        _holds.c.transfer_id == transfer_id, _holds.c.expires_at <= now
    )
    if (await session.execute(query)).first() is None:
        return False
    await create_transfers(
        session, [ResolveSpec(pending_id=transfer_id, post=False, code=EXPIRED_CODE)], now
    )
    return True


async def journal_size(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(_transfers))).scalar_one())


# ---------------------------------------------------------------------------------------------
# Verification


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    entries: int
    head_hash: str
    first_broken: dict[str, Any] | None
    accounts_checked: int | None  # set when the whole journal was replayed


VERIFY_CHUNK_ROWS = 5000


async def verify_chain(
    session: AsyncSession, from_seq: int | None = None, to_seq: int | None = None
) -> Verification:
    """Recompute the hash chain over [from_seq, to_seq] (all by default), in bounded chunks.

    A whole-journal check also replays every entry's effect on its accounts and compares the
    stored running totals and the accounts' current totals with the replay."""
    start = from_seq or 1
    previous_hash = GENESIS_HASH
    if start > 1:
        row = (
            await session.execute(select(_transfers.c.hash).where(_transfers.c.seq == start - 1))
        ).first()
        if row is None:
            return Verification(
                False, 0, GENESIS_HASH, {"seq": start - 1, "reason": "missing"}, None
            )
        previous_hash = row.hash
    replay: _Replay | None = _Replay() if from_seq is None and to_seq is None else None
    expected, entries = start, 0
    while True:
        query = select(_transfers).where(_transfers.c.seq >= expected)
        if to_seq is not None:
            query = query.where(_transfers.c.seq <= to_seq)
        rows = (
            await session.execute(query.order_by(_transfers.c.seq).limit(VERIFY_CHUNK_ROWS))
        ).all()
        for row in rows:
            broken = _check_entry(row, expected, previous_hash, replay)
            if broken is not None:
                return Verification(False, entries, previous_hash, broken, None)
            previous_hash, expected, entries = row.hash, expected + 1, entries + 1
        if len(rows) < VERIFY_CHUNK_ROWS:
            break
    if replay is None:
        return Verification(True, entries, previous_hash, None, None)
    broken_account, checked = await replay.compare_accounts(session)
    return Verification(broken_account is None, entries, previous_hash, broken_account, checked)


def _check_entry(
    row: Row[Any], expected: int, previous_hash: str, replay: _Replay | None
) -> dict[str, Any] | None:
    if row.seq != expected:
        return {"seq": expected, "reason": "missing"}
    entry = entry_of(row)
    if chain_hash(previous_hash, entry) != row.hash:
        return {"seq": row.seq, "id": row.id, "reason": "hash_mismatch"}
    if replay is not None and not replay.step(entry):
        return {"seq": row.seq, "id": row.id, "reason": "totals_mismatch"}
    return None


@dataclass(slots=True)
class _Replay:
    totals: dict[str, Totals] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)

    def step(self, entry: Entry) -> bool:
        kind = TransferKind(entry.kind)
        debit = self.totals.setdefault(entry.debit_account_id, Totals())
        credit = self.totals.setdefault(entry.credit_account_id, Totals())
        pending_amount = 0
        if entry.pending_id is not None:
            if entry.pending_id not in self.held:
                return False
            pending_amount = self.held.pop(entry.pending_id)
            if kind is TransferKind.void_pending and entry.amount != pending_amount:
                return False
            if kind is TransferKind.post_pending and entry.amount > pending_amount:
                return False
        elif kind not in (TransferKind.single, TransferKind.pending):
            return False
        if kind is TransferKind.pending:
            self.held[entry.id] = entry.amount
        apply(kind, entry.amount, pending_amount, debit, credit)
        return debit.as_tuple() == entry.debit_after and credit.as_tuple() == entry.credit_after

    async def compare_accounts(self, session: AsyncSession) -> tuple[dict[str, Any] | None, int]:
        checked = 0
        result = await session.stream(select(_accounts).order_by(_accounts.c.id))
        async for account in result:
            checked += 1
            if totals_of(account) != self.totals.get(account.id, Totals()):
                await result.close()
                return {"account_id": account.id, "reason": "account_totals_mismatch"}, checked
        return None, checked


# ---------------------------------------------------------------------------------------------
# Cross-currency moves


class FxRateNotFound(DomainError):
    status = 422
    code = "fx_rate_not_found"
    title = "No FX rate recorded"


def fx_position_account_id(currency: str) -> str:
    return f"exchange.fx_position.{currency}"


async def record_fx_rate(
    session: AsyncSession,
    *,
    rate_id: str,
    base_currency: str,
    quote_currency: str,
    rate: Decimal,
    recorded_by: str | None,
    now: datetime,
) -> FxRate:
    assert rate > 0 and base_currency != quote_currency
    fx_rate = FxRate(
        id=rate_id,
        base_currency=base_currency,
        quote_currency=quote_currency,
        rate=str(rate),
        recorded_at=now,
        recorded_by=recorded_by,
    )
    session.add(fx_rate)
    await session.flush()
    return fx_rate


async def find_fx_rate(
    session: AsyncSession, base_currency: str, quote_currency: str, rate_id: str | None
) -> FxRate:
    query = select(FxRate).where(
        FxRate.base_currency == base_currency, FxRate.quote_currency == quote_currency
    )
    if rate_id is not None:
        query = query.where(FxRate.id == rate_id)
    fx_rate = (await session.scalars(query.order_by(FxRate.recorded_at.desc()).limit(1))).first()
    if fx_rate is None:
        raise FxRateNotFound(
            f"no {base_currency}/{quote_currency} rate"
            + (f" with id {rate_id}" if rate_id else " has been recorded"),
            errors=[{"field": "rate_id", "code": "fx_rate_not_found"}],
        )
    return fx_rate


async def list_fx_rates(session: AsyncSession, *, after_id: str | None, limit: int) -> list[FxRate]:
    query = select(FxRate).order_by(FxRate.id).limit(limit)
    if after_id is not None:
        query = query.where(FxRate.id > after_id)
    return list((await session.scalars(query)).all())


def convert(amount: int, source: str, target: str, rate: Decimal) -> int:
    """Minor units of `source` to minor units of `target`, rounded half to even."""
    value = Decimal(amount).scaleb(-exponent(source)) * rate
    return int(value.scaleb(exponent(target)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


async def create_fx_transfer(
    session: AsyncSession,
    *,
    transfer_id: str,
    debit_account_id: str,
    credit_account_id: str,
    amount: int,
    currency: str,
    code: str,
    reference: str | None,
    rate_id: str | None,
    now: datetime,
) -> tuple[BatchResult, FxRate]:
    """Move money across currencies as a linked pair through the exchange's FX position
    accounts: debit → position(source) in the source currency, position(target) → credit in the
    target currency, at a recorded rate that both legs keep."""
    out_id, in_id = f"{transfer_id}.out", f"{transfer_id}.in"
    debit = await get_account(session, debit_account_id)
    credit = await get_account(session, credit_account_id)
    refuse = _fx_refusal(transfer_id, debit, credit, currency)
    if refuse is not None:
        raise TransfersRefused([refuse])
    assert debit is not None and credit is not None
    if rate_id is None:
        earlier = await (await repository.journal(session)).transfers([out_id])
        rate_id = earlier[0].fx_rate_id if earlier else None
    fx_rate = await find_fx_rate(session, debit.currency, credit.currency, rate_id)
    converted = convert(amount, debit.currency, credit.currency, Decimal(fx_rate.rate))
    if converted <= 0:
        raise TransfersRefused(
            [
                Failure(
                    1,
                    in_id,
                    "amount_too_small",
                    422,
                    "the converted amount rounds to zero",
                    ("amount",),
                )
            ]
        )
    for position_currency in (debit.currency, credit.currency):
        await create_account(
            session,
            AccountSpec(
                id=fx_position_account_id(position_currency),
                currency=position_currency,
                code="fx_position",
                owner_type="exchange",
            ),
            now,
        )
    legs = [
        TransferSpec(
            out_id,
            debit.id,
            fx_position_account_id(debit.currency),
            amount,
            debit.currency,
            code,
            reference=reference,
            fx_rate_id=fx_rate.id,
        ),
        TransferSpec(
            in_id,
            fx_position_account_id(credit.currency),
            credit.id,
            converted,
            credit.currency,
            code,
            reference=reference,
            fx_rate_id=fx_rate.id,
        ),
    ]
    return await create_transfers(session, legs, now), fx_rate


def _fx_refusal(
    transfer_id: str, debit: Account | None, credit: Account | None, currency: str
) -> Failure | None:
    if debit is None:
        return Failure(
            0,
            transfer_id,
            "debit_account_not_found",
            422,
            "no such debit account",
            ("debit_account_id",),
        )
    if credit is None:
        return Failure(
            0,
            transfer_id,
            "credit_account_not_found",
            422,
            "no such credit account",
            ("credit_account_id",),
        )
    if debit.currency != currency:
        return Failure(
            0,
            transfer_id,
            "currency_mismatch",
            422,
            f"amount is {currency}; the debit account is {debit.currency}",
            ("amount.currency",),
        )
    if debit.currency == credit.currency:
        return Failure(
            0,
            transfer_id,
            "same_currency",
            422,
            "both accounts are in one currency; use a plain transfer",
            ("credit_account_id",),
        )
    return None
