"""Ledger service: accounts, transfers (single, two-phase, linked batches), point-in-time balances,
FX moves and chain verification. Functions take the caller's session and never commit, so a deal's
state change and its money move commit together. The ledger calls no other domain.

Locking, on PostgreSQL: the accounts a batch touches are locked `FOR UPDATE` in id order (so two
batches never deadlock on each other's accounts), then the journal head is taken with one
transaction-scoped advisory lock, last, so it is held only for the insert and the commit. Holding it
is what makes `seq` gapless and the hash chain a single line. On SQLite the writer lock taken at
BEGIN IMMEDIATE serialises everything already.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, cast

from sqlalchemy import Row, Table, and_, bindparam, delete, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.errors import DomainError
from exchange.ledger.models import Account, FxRate, Hold, Transfer, TransferKind
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
JOURNAL_LOCK = (0x6C656467, 1)  # pg_advisory_xact_lock(namespace 'ledg', journal head)
EXPIRED_CODE = "hold_expired"

_accounts = cast(Table, Account.__table__)
_transfers = cast(Table, Transfer.__table__)
_holds = cast(Table, Hold.__table__)


def _on_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


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


@dataclass(frozen=True, slots=True)
class TransferView:
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


def totals_of(account: Account | Row[Any]) -> Totals:
    return Totals(
        account.debits_pending,
        account.debits_posted,
        account.credits_pending,
        account.credits_posted,
    )


# ---------------------------------------------------------------------------------------------
# Transfers


@dataclass(slots=True)
class _Plan:
    """What a batch will write, worked out in memory before anything is written."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, Totals] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)
    holds_opened: list[tuple[str, int]] = field(default_factory=list)
    holds_closed: list[str] = field(default_factory=list)


async def create_transfers(
    session: AsyncSession, specs: Sequence[AnySpec], now: datetime
) -> BatchResult:
    """Apply a linked batch: every transfer applies, or none does and `TransfersRefused` says
    which failed and why. Transfers that already exist with the same fields are returned as they
    are (idempotency by id); if all exist, nothing is written and `created` is False."""
    assert 0 < len(specs) <= BATCH_SIZE_MAX
    failures = _duplicate_ids(specs)
    if failures:
        raise TransfersRefused(failures)
    ids = [_spec_id(spec) for spec in specs]
    pending_ids = sorted({spec.pending_id for spec in specs if isinstance(spec, ResolveSpec)})
    pendings = {row.id: row for row in await _load_transfers(session, pending_ids)}

    account_ids = _account_ids(specs, pendings)
    accounts = await _lock_accounts(session, account_ids)
    # Read after the locks: a request with the same ids that committed while this one waited
    # is found here and replayed (each statement sees what committed before it began).
    existing = {row.id: row for row in await _load_transfers(session, ids)}
    resolutions = await _load_resolutions(session, pending_ids)

    plan = _Plan(totals={a.id: totals_of(a) for a in accounts.values()})
    failures = []
    for index, spec in enumerate(specs):
        failure = _plan_one(index, spec, existing, pendings, accounts, resolutions, plan, now)
        if failure is not None:
            failures.append(failure)
    if failures:
        raise TransfersRefused(failures)
    written = await _write(session, plan, now) if plan.rows else []
    views = [_view(row, None) for row in written]
    if existing:
        views += await _with_status(session, await _load_transfers(session, list(existing)))
    return BatchResult(transfers=_ordered(views, ids), created=bool(written))


def _spec_id(spec: AnySpec) -> str:
    return spec.transfer_id if isinstance(spec, ResolveSpec) else spec.id


def _duplicate_ids(specs: Sequence[AnySpec]) -> list[Failure]:
    seen: dict[str, int] = {}
    failures = []
    for index, spec in enumerate(specs):
        transfer_id = _spec_id(spec)
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


def _account_ids(specs: Sequence[AnySpec], pendings: dict[str, Row[Any]]) -> list[str]:
    ids: set[str] = set()
    for spec in specs:
        if isinstance(spec, TransferSpec):
            ids.update((spec.debit_account_id, spec.credit_account_id))
        elif spec.pending_id in pendings:
            pending = pendings[spec.pending_id]
            ids.update((pending.debit_account_id, pending.credit_account_id))
    return sorted(ids)


async def _load_transfers(session: AsyncSession, ids: Sequence[str]) -> list[Row[Any]]:
    if not ids:
        return []
    result = await session.execute(select(_transfers).where(_transfers.c.id.in_(ids)))
    return list(result.all())


async def _lock_accounts(session: AsyncSession, ids: list[str]) -> dict[str, Row[Any]]:
    """Lock the accounts in id order: a fixed order means two batches cannot deadlock here."""
    if not ids:
        return {}
    query = select(_accounts).where(_accounts.c.id.in_(ids)).order_by(_accounts.c.id)
    if _on_postgres(session):
        query = query.with_for_update()
    return {row.id: row for row in (await session.execute(query)).all()}


async def _load_resolutions(session: AsyncSession, pending_ids: list[str]) -> dict[str, Row[Any]]:
    """The post or void that resolved each hold; read after the accounts are locked, because
    every resolution of a hold locks the hold's accounts first."""
    if not pending_ids:
        return {}
    query = select(_transfers).where(_transfers.c.pending_id.in_(pending_ids))
    return {row.pending_id: row for row in (await session.execute(query)).all()}


def _plan_one(
    index: int,
    spec: AnySpec,
    existing: dict[str, Row[Any]],
    pendings: dict[str, Row[Any]],
    accounts: dict[str, Row[Any]],
    resolutions: dict[str, Row[Any]],
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
        transfer_id,
        spec.kind,
        spec.amount,
        0,
        debit,
        credit,
        plan,
        {
            "pending_id": None,
            "code": spec.code,
            "reference": spec.reference,
            "timeout_s": spec.timeout_s,
            "fx_rate_id": spec.fx_rate_id,
        },
        now,
    )


def _plan_resolve(
    index: int,
    spec: ResolveSpec,
    pendings: dict[str, Row[Any]],
    accounts: dict[str, Row[Any]],
    resolutions: dict[str, Row[Any]],
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
    if resolution is None and any(r.get("pending_id") == pending.id for r in plan.rows):
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
    return _plan_apply(
        index,
        transfer_id,
        spec.kind,
        amount,
        pending.amount,
        accounts[pending.debit_account_id],
        accounts[pending.credit_account_id],
        plan,
        {
            "pending_id": pending.id,
            "code": spec.code or pending.code,
            "reference": pending.reference,
            "timeout_s": None,
            "fx_rate_id": pending.fx_rate_id,
        },
        now,
    )


def _plan_apply(
    index: int,
    transfer_id: str,
    kind: TransferKind,
    amount: int,
    pending_amount: int,
    debit: Row[Any],
    credit: Row[Any],
    plan: _Plan,
    extra: dict[str, Any],
    now: datetime,
) -> Failure | None:
    debit_totals = plan.totals[debit.id].copy()
    credit_totals = plan.totals[credit.id].copy()
    apply(kind, amount, pending_amount, debit_totals, credit_totals)
    for account, totals, name in (
        (debit, debit_totals, "debit_account_id"),
        (credit, credit_totals, "credit_account_id"),
    ):
        limits = Limits(
            account.debits_must_not_exceed_credits, account.credits_must_not_exceed_debits
        )
        breach = limit_breach(limits, totals)
        if breach is not None:
            return Failure(
                index,
                transfer_id,
                breach,
                409 if breach != "overflow" else 422,
                f"account {account.id} would pass its limit ({breach})",
                (name,),
            )
    plan.totals[debit.id] = debit_totals
    plan.totals[credit.id] = credit_totals
    plan.touched.update((debit.id, credit.id))
    plan.rows.append(
        {
            "id": transfer_id,
            "kind": kind.value,
            "debit_account_id": debit.id,
            "credit_account_id": credit.id,
            "amount": amount,
            "currency": debit.currency,
            "debit_after": debit_totals.as_tuple(),
            "credit_after": credit_totals.as_tuple(),
            **extra,
        }
    )
    if kind is TransferKind.pending and extra["timeout_s"] is not None:
        plan.holds_opened.append((transfer_id, extra["timeout_s"]))
    if extra["pending_id"] is not None:
        plan.holds_closed.append(extra["pending_id"])
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


def _differing_fields(spec: AnySpec, row: Row[Any], pendings: dict[str, Row[Any]]) -> list[str]:
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


async def _journal_head(session: AsyncSession) -> tuple[int, str, datetime | None]:
    """Take the journal head (PostgreSQL: the advisory lock) and read the last entry."""
    if _on_postgres(session):
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, :key)"),
            {"namespace": JOURNAL_LOCK[0], "key": JOURNAL_LOCK[1]},
        )
    query = (
        select(_transfers.c.seq, _transfers.c.hash, _transfers.c.created_at)
        .order_by(_transfers.c.seq.desc())
        .limit(1)
    )
    head = (await session.execute(query)).first()
    if head is None:
        return 0, GENESIS_HASH, None
    return head.seq, head.hash, head.created_at


async def _write(session: AsyncSession, plan: _Plan, now: datetime) -> list[dict[str, Any]]:
    seq, previous_hash, head_at = await _journal_head(session)
    # Timestamps never go back along the chain, so "as of" can cut the journal by time.
    created_at = now if head_at is None or now >= head_at else head_at
    rows = []
    for planned in plan.rows:
        seq += 1
        debit_after = planned.pop("debit_after")
        credit_after = planned.pop("credit_after")
        entry = Entry(
            seq=seq,
            id=planned["id"],
            kind=planned["kind"],
            debit_account_id=planned["debit_account_id"],
            credit_account_id=planned["credit_account_id"],
            amount=planned["amount"],
            currency=planned["currency"],
            code=planned["code"],
            reference=planned["reference"],
            pending_id=planned["pending_id"],
            timeout_s=planned["timeout_s"],
            fx_rate_id=planned["fx_rate_id"],
            created_at=created_at,
            debit_after=debit_after,
            credit_after=credit_after,
        )
        previous_hash = chain_hash(previous_hash, entry)
        rows.append(_entry_row(entry, previous_hash))
    await session.execute(
        update(_accounts)
        .where(_accounts.c.id == bindparam("account_id"))
        .values(
            debits_pending=bindparam("dp"),
            debits_posted=bindparam("dpo"),
            credits_pending=bindparam("cp"),
            credits_posted=bindparam("cpo"),
        ),
        [
            {
                "account_id": account_id,
                "dp": totals.debits_pending,
                "dpo": totals.debits_posted,
                "cp": totals.credits_pending,
                "cpo": totals.credits_posted,
            }
            for account_id in sorted(plan.touched)
            for totals in (plan.totals[account_id],)
        ],
    )
    await session.execute(insert(_transfers), rows)
    if plan.holds_closed:
        await session.execute(delete(_holds).where(_holds.c.transfer_id.in_(plan.holds_closed)))
    if plan.holds_opened:
        await session.execute(
            insert(_holds),
            [
                {"transfer_id": hold_id, "expires_at": created_at + timedelta(seconds=timeout)}
                for hold_id, timeout in plan.holds_opened
            ],
        )
    return rows


def _entry_row(entry: Entry, entry_hash: str) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "id": entry.id,
        "kind": entry.kind,
        "debit_account_id": entry.debit_account_id,
        "credit_account_id": entry.credit_account_id,
        "amount": entry.amount,
        "currency": entry.currency,
        "code": entry.code,
        "reference": entry.reference,
        "pending_id": entry.pending_id,
        "timeout_s": entry.timeout_s,
        "fx_rate_id": entry.fx_rate_id,
        "created_at": entry.created_at,
        "dr_debits_pending": entry.debit_after[0],
        "dr_debits_posted": entry.debit_after[1],
        "dr_credits_pending": entry.debit_after[2],
        "dr_credits_posted": entry.debit_after[3],
        "cr_debits_pending": entry.credit_after[0],
        "cr_debits_posted": entry.credit_after[1],
        "cr_credits_pending": entry.credit_after[2],
        "cr_credits_posted": entry.credit_after[3],
        "hash": entry_hash,
    }


def entry_of(row: Row[Any]) -> Entry:
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


async def _with_status(session: AsyncSession, rows: list[Row[Any]]) -> list[TransferView]:
    held = [row.id for row in rows if row.kind == TransferKind.pending]
    resolutions = await _load_resolutions(session, held) if held else {}
    return [_view(cast(Mapping[str, Any], row._mapping), resolutions.get(row.id)) for row in rows]


def _view(row: Mapping[str, Any], resolution: Row[Any] | None) -> TransferView:
    kind = TransferKind(row["kind"])
    if kind is TransferKind.pending:
        if resolution is None:
            status = "pending"
        else:
            status = "posted" if resolution.kind == TransferKind.post_pending else "voided"
    else:
        status = "voided" if kind is TransferKind.void_pending else "posted"
    return TransferView(
        id=row["id"],
        seq=row["seq"],
        kind=kind,
        status=status,
        debit_account_id=row["debit_account_id"],
        credit_account_id=row["credit_account_id"],
        amount=row["amount"],
        currency=row["currency"],
        code=row["code"],
        reference=row["reference"],
        pending_id=row["pending_id"],
        timeout_s=row["timeout_s"],
        fx_rate_id=row["fx_rate_id"],
        timestamp=row["created_at"],
        resolved_by=resolution.id if resolution is not None else None,
    )


async def get_transfer(session: AsyncSession, transfer_id: str) -> TransferView | None:
    rows = await _load_transfers(session, [transfer_id])
    if not rows:
        return None
    return (await _with_status(session, rows))[0]


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
    rows = list((await session.execute(query)).all())
    return await _with_status(session, rows)


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
    if _on_postgres(session):
        query = query.with_for_update(skip_locked=True)
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
        earlier = await _load_transfers(session, [out_id])
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
