"""Property tests of the ledger through its service layer.

A hypothesis state machine drives random sequences of account creations, single transfers, holds,
posts, voids, linked batches (with invalid transfers mixed in), replays, clock moves and hold
expiry against the real database, and keeps its own model of every account's four totals. After
every step the database must match the model, conserve Σ debits = Σ credits per currency (pending
and posted, over this run's accounts and over the whole database), keep every limit-flagged
account within its limit and answer the same balances from the journal; at the end of every run
the hash chain verifies. Separate tests tamper with the journal inside a transaction that is
rolled back, and check the pure rules and money conversions.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import hypothesis
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.config import Settings
from exchange.db import Database
from exchange.ledger import repository
from exchange.ledger import service as ledger
from exchange.ledger.models import Account, Hold, Transfer, TransferKind
from exchange.ledger.repository import TransferRow
from exchange.ledger.rules import Limits, Totals, apply, chain_hash, limit_breach
from exchange.ledger.service import (
    AccountExists,
    AccountSpec,
    AnySpec,
    BatchResult,
    ResolveSpec,
    TransferSpec,
    TransfersRefused,
)
from exchange.money import AMOUNT_MINOR_MAX, exponent, to_decimal_string, to_minor

if TYPE_CHECKING:
    from tests.conftest import TestClock

T = TypeVar("T")
Quad = tuple[int, int, int, int]  # debits_pending, debits_posted, credits_pending, credits_posted

ZERO: Quad = (0, 0, 0, 0)
CURRENCIES = ("CNY", "USD", "JPY")
DEBITS_LIMITED = "debits_must_not_exceed_credits"
CREDITS_LIMITED = "credits_must_not_exceed_debits"
FLAGS = (None, DEBITS_LIMITED, CREDITS_LIMITED)
TIMEOUTS_S = (None, 1, 2, 5)
# One defect at most per generated transfer, so the failure it must produce is unambiguous.
DEFECTS = (None,) * 16 + (
    "unknown_debit",
    "unknown_credit",
    "same_account",
    "wrong_currency",
    "cross_currency",
)
RESOLVED_CODES = {
    "posted": "pending_transfer_already_posted",
    "voided": "pending_transfer_already_voided",
    "expired": "pending_transfer_expired",
}
STEP = timedelta(milliseconds=1)  # the run's time moves between steps: instants are distinct
MICROSECOND = timedelta(microseconds=1)
OPERATIONS = (  # (method, weight)
    ("open_account", 1),
    ("transfer_or_hold", 4),
    ("post_or_void", 3),
    ("linked_batch", 3),
    ("replay", 2),
    ("time_passes", 2),
    ("balances_at_an_earlier_instant", 1),
)

MACHINE_SETTINGS = hypothesis.settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# ---------------------------------------------------------------------------------------------
# The model: what the ledger must hold, worked out independently of the service


def model_breach(flag: str | None, totals: Quad) -> str | None:
    debits_pending, debits_posted, credits_pending, credits_posted = totals
    if max(totals) > AMOUNT_MINOR_MAX:
        return "overflow"
    if flag == DEBITS_LIMITED and debits_pending + debits_posted > credits_posted:
        return "exceeds_credits"
    if flag == CREDITS_LIMITED and credits_pending + credits_posted > debits_posted:
        return "exceeds_debits"
    return None


def quad(totals: Totals) -> Quad:
    return totals.as_tuple()


def account_quad(account: Account) -> Quad:
    return (
        account.debits_pending,
        account.debits_posted,
        account.credits_pending,
        account.credits_posted,
    )


@dataclass
class ModelAccount:
    currency: str
    flag: str | None
    totals: Quad = ZERO

    @property
    def spec_flags(self) -> dict[str, bool]:
        return {
            DEBITS_LIMITED: self.flag == DEBITS_LIMITED,
            CREDITS_LIMITED: self.flag == CREDITS_LIMITED,
        }


@dataclass(frozen=True)
class ModelRow:
    """A journal entry this run wrote (seq and timestamp known once it is written)."""

    kind: TransferKind
    debit: str
    credit: str
    amount: int
    currency: str
    code: str
    timeout_s: int | None
    pending_id: str | None
    seq: int = 0
    timestamp: datetime | None = None


@dataclass
class ModelHold:
    debit: str
    credit: str
    amount: int
    code: str
    timeout_s: int | None
    created_at: datetime
    state: str = "open"  # open | posted | voided | expired

    def timed_out(self, now: datetime) -> bool:
        return self.timeout_s is not None and now >= self.created_at + timedelta(
            seconds=self.timeout_s
        )


@dataclass
class Outcome:
    """What a batch must do: the failures it must be refused with (index → acceptable codes), or
    the totals, rows and hold resolutions it must write."""

    failures: dict[int, set[str]] = field(default_factory=dict)
    totals: dict[str, Quad] = field(default_factory=dict)
    new: list[tuple[str, ModelRow]] = field(default_factory=list)
    resolved: dict[str, str] = field(default_factory=dict)


def spec_id(spec: AnySpec) -> str:
    return spec.transfer_id if isinstance(spec, ResolveSpec) else spec.id


def expected_status(row: ModelRow, holds: dict[str, ModelHold], transfer_id: str) -> str:
    if row.kind is TransferKind.pending:
        state = holds[transfer_id].state
        return {"open": "pending", "posted": "posted"}.get(state, "voided")
    return "voided" if row.kind is TransferKind.void_pending else "posted"


# ---------------------------------------------------------------------------------------------
# The state machine


def ledger_machine(
    database: Database, loop: asyncio.AbstractEventLoop, clock: TestClock
) -> type[RuleBasedStateMachine]:
    def run(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        return loop.run_until_complete(database.run(work))

    def journal_size() -> int:
        return run(ledger.journal_size)

    async def journal_end(session: AsyncSession) -> datetime | None:
        query = select(Transfer.created_at).order_by(Transfer.seq.desc()).limit(1)
        return await session.scalar(query)

    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.token = secrets.token_hex(5)
            self.counter = 0
            self.accounts: dict[str, ModelAccount] = {}
            self.rows: dict[str, ModelRow] = {}
            self.holds: dict[str, ModelHold] = {}
            self.accepted: list[list[AnySpec]] = []
            self.snapshots: list[tuple[datetime, dict[str, Quad]]] = []
            # The run keeps its own time, so what it does depends on its draws only (a hold
            # times out when the run says so, not when a slow step makes it): it starts after
            # the journal's last entry and moves by STEP per operation, or when time passes.
            self.time = max(clock.now(), run(journal_end) or clock.now())
            # Nothing else writes while the run goes: the journal grows by what it writes.
            self.journal = journal_size()
            self.journal_checked: dict[str, Quad] = {}  # totals last read back from the journal

        # -- helpers ----------------------------------------------------------------------

        def new_id(self, kind: str) -> str:
            self.counter += 1
            return f"{self.token}-{kind}{self.counter}"

        def now(self) -> datetime:
            self.time += STEP
            return self.time

        def totals_now(self) -> dict[str, Quad]:
            return {account_id: m.totals for account_id, m in self.accounts.items()}

        def create_account(self, currency: str, flag: str | None) -> str:
            account_id = self.new_id("a")
            spec = AccountSpec(
                id=account_id,
                currency=currency,
                code="available",
                debits_must_not_exceed_credits=flag == DEBITS_LIMITED,
                credits_must_not_exceed_debits=flag == CREDITS_LIMITED,
            )
            now = self.now()

            async def unit(session: AsyncSession) -> tuple[Quad, bool]:
                account, created = await ledger.create_account(session, spec, now)
                return account_quad(account), created

            totals, created = run(unit)
            assert created and totals == ZERO
            self.accounts[account_id] = ModelAccount(currency, flag)
            return account_id

        def currencies_with_two_accounts(self) -> list[str]:
            by_currency: dict[str, int] = {}
            for account in self.accounts.values():
                by_currency[account.currency] = by_currency.get(account.currency, 0) + 1
            return sorted(c for c, n in by_currency.items() if n >= 2)

        def room(self, debit: str, credit: str) -> int | None:
            """How much more the pair can move before a limit is passed (None: no limit)."""
            rooms = []
            d = self.accounts[debit]
            if d.flag == DEBITS_LIMITED:
                rooms.append(d.totals[3] - d.totals[0] - d.totals[1])
            c = self.accounts[credit]
            if c.flag == CREDITS_LIMITED:
                rooms.append(c.totals[1] - c.totals[2] - c.totals[3])
            return min(rooms) if rooms else None

        def draw_transfer(
            self, data: st.DataObject, *, pending: bool | None = None
        ) -> TransferSpec:
            currency = data.draw(st.sampled_from(self.currencies_with_two_accounts()))
            candidates = sorted(a for a, m in self.accounts.items() if m.currency == currency)
            pairs = [(d, c) for d in candidates for c in candidates if d != c]
            feasible = [(d, c) for d, c in pairs if self.room(d, c) != 0]
            # Mostly a pair that can move something; sometimes any pair (likely past a limit).
            if feasible and data.draw(st.integers(0, 3)) > 0:
                pairs = feasible
            debit, credit = data.draw(st.sampled_from(pairs))
            room = self.room(debit, credit)
            if room is None:
                amount = data.draw(st.integers(1, 1_000))
            else:
                within = st.integers(1, room) if room > 0 else st.just(1)
                amount = data.draw(
                    st.one_of(within, within, within, st.just(max(room, 1)), st.just(room + 1))
                )
            if pending is None:
                pending = data.draw(st.booleans())
            timeout_s = data.draw(st.sampled_from(TIMEOUTS_S)) if pending else None
            spec = TransferSpec(
                id=self.new_id("t"),
                debit_account_id=debit,
                credit_account_id=credit,
                amount=amount,
                currency=currency,
                code="hold" if pending else "move",
                pending=pending,
                timeout_s=timeout_s,
            )
            defect = data.draw(st.sampled_from(DEFECTS))
            others = sorted(a for a, m in self.accounts.items() if m.currency != currency)
            if defect == "unknown_debit":
                spec = replace(spec, debit_account_id=self.new_id("ghost"))
            elif defect == "unknown_credit":
                spec = replace(spec, credit_account_id=self.new_id("ghost"))
            elif defect == "same_account":
                spec = replace(spec, credit_account_id=debit)
            elif defect == "wrong_currency":
                wrong = data.draw(st.sampled_from([c for c in CURRENCIES if c != currency]))
                spec = replace(spec, currency=wrong)
            elif defect == "cross_currency" and others:
                spec = replace(spec, credit_account_id=data.draw(st.sampled_from(others)))
            return spec

        def draw_resolve(self, data: st.DataObject, *, post: bool | None = None) -> ResolveSpec:
            target = data.draw(
                st.sampled_from(("open",) * 12 + ("any",) * 4 + ("unknown", "not_a_hold"))
            )
            open_holds = sorted(i for i, h in self.holds.items() if h.state == "open")
            not_holds = sorted(
                i for i, r in self.rows.items() if r.kind is not TransferKind.pending
            )
            if target in ("open", "any") and self.holds:
                choices = open_holds if target == "open" and open_holds else sorted(self.holds)
                pending_id = data.draw(st.sampled_from(choices))
                held = self.holds[pending_id].amount
            elif target == "not_a_hold" and not_holds:
                pending_id = data.draw(st.sampled_from(not_holds))
                held = self.rows[pending_id].amount
            else:
                pending_id, held = self.new_id("ghost"), 100
            if post is None:
                post = data.draw(st.booleans())
            amount = None
            if post:
                amount = data.draw(
                    st.one_of(
                        st.none(),
                        st.integers(1, held),
                        st.integers(1, held),
                        st.integers(held + 1, held + 100),
                    )
                )
            own_id = self.new_id("r") if data.draw(st.booleans()) else None
            return ResolveSpec(pending_id=pending_id, post=post, amount=amount, id=own_id)

        def draw_old_spec(self, data: st.DataObject) -> AnySpec:
            batch = data.draw(st.sampled_from(self.accepted))
            return data.draw(st.sampled_from(batch))

        def differs(self, spec: AnySpec, row: ModelRow) -> bool:
            if isinstance(spec, ResolveSpec):
                # A post without an amount means all of the hold: after a partial post it differs.
                held = self.rows.get(spec.pending_id)
                whole = held.amount if held is not None else None
                amount = spec.amount if spec.amount is not None else whole
                return (
                    row.kind is not spec.kind
                    or row.pending_id != spec.pending_id
                    or (spec.post and amount is not None and amount != row.amount)
                )
            return (
                row.kind is not spec.kind
                or (row.debit, row.credit, row.amount, row.currency, row.code, row.timeout_s)
                != (
                    spec.debit_account_id,
                    spec.credit_account_id,
                    spec.amount,
                    spec.currency,
                    spec.code,
                    spec.timeout_s,
                )
                or spec.reference is not None
                or spec.fx_rate_id is not None
            )

        def predict(self, specs: Sequence[AnySpec], now: datetime) -> Outcome:
            outcome = Outcome()
            first: dict[str, int] = {}
            for index, spec in enumerate(specs):
                if spec_id(spec) in first:
                    outcome.failures[index] = {"id_repeated_in_batch"}
                first.setdefault(spec_id(spec), index)
            if outcome.failures:
                return outcome
            for index, spec in enumerate(specs):
                codes = self.predict_one(spec, now, outcome)
                if codes:
                    outcome.failures[index] = codes
            return outcome

        def predict_one(self, spec: AnySpec, now: datetime, outcome: Outcome) -> set[str] | None:
            transfer_id = spec_id(spec)
            if transfer_id in self.rows:
                if self.differs(spec, self.rows[transfer_id]):
                    return {"exists_with_different_fields"}
                return None

            def totals(account_id: str) -> Quad:
                return outcome.totals.get(account_id, self.accounts[account_id].totals)

            if isinstance(spec, ResolveSpec):
                pending_row = self.rows.get(spec.pending_id)
                if pending_row is None:
                    return {"pending_transfer_not_found"}
                if pending_row.kind is not TransferKind.pending:
                    return {"pending_transfer_not_pending"}
                hold = self.holds[spec.pending_id]
                if hold.state != "open":
                    return {RESOLVED_CODES[hold.state]}
                if spec.pending_id in outcome.resolved:
                    return {"pending_transfer_resolved_in_batch"}
                if spec.post and hold.timed_out(now):
                    return {"pending_transfer_expired"}
                if spec.amount is not None and spec.amount > hold.amount:
                    return {"exceeds_pending_amount"}
                amount = spec.amount if spec.post and spec.amount is not None else hold.amount
                posted = amount if spec.post else 0
                dp, dpo, dcp, dcpo = totals(hold.debit)
                cdp, cdpo, cp, cpo = totals(hold.credit)
                debit_after = (dp - hold.amount, dpo + posted, dcp, dcpo)
                credit_after = (cdp, cdpo, cp - hold.amount, cpo + posted)
                row = ModelRow(
                    kind=spec.kind,
                    debit=hold.debit,
                    credit=hold.credit,
                    amount=amount,
                    currency=pending_row.currency,
                    code=spec.code or hold.code,
                    timeout_s=None,
                    pending_id=spec.pending_id,
                )
            else:
                debit = self.accounts.get(spec.debit_account_id)
                credit = self.accounts.get(spec.credit_account_id)
                if debit is None:
                    return {"debit_account_not_found"}
                if credit is None:
                    return {"credit_account_not_found"}
                if spec.debit_account_id == spec.credit_account_id:
                    return {"accounts_must_differ"}
                if not debit.currency == credit.currency == spec.currency:
                    return {"currency_mismatch"}
                dp, dpo, dcp, dcpo = totals(spec.debit_account_id)
                cdp, cdpo, cp, cpo = totals(spec.credit_account_id)
                if spec.pending:
                    debit_after = (dp + spec.amount, dpo, dcp, dcpo)
                    credit_after = (cdp, cdpo, cp + spec.amount, cpo)
                else:
                    debit_after = (dp, dpo + spec.amount, dcp, dcpo)
                    credit_after = (cdp, cdpo, cp, cpo + spec.amount)
                row = ModelRow(
                    kind=spec.kind,
                    debit=spec.debit_account_id,
                    credit=spec.credit_account_id,
                    amount=spec.amount,
                    currency=spec.currency,
                    code=spec.code,
                    timeout_s=spec.timeout_s,
                    pending_id=None,
                )
            breaches = {
                code
                for code in (
                    model_breach(self.accounts[row.debit].flag, debit_after),
                    model_breach(self.accounts[row.credit].flag, credit_after),
                )
                if code is not None
            }
            if breaches:
                return breaches
            outcome.totals[row.debit] = debit_after
            outcome.totals[row.credit] = credit_after
            outcome.new.append((transfer_id, row))
            if isinstance(spec, ResolveSpec):
                outcome.resolved[spec.pending_id] = "posted" if spec.post else "voided"
            return None

        def check_view(self, view: ledger.TransferView, transfer_id: str) -> None:
            row = self.rows[transfer_id]
            assert view.id == transfer_id
            assert (view.seq, view.kind, view.amount, view.currency, view.code) == (
                row.seq,
                row.kind,
                row.amount,
                row.currency,
                row.code,
            )
            assert (view.debit_account_id, view.credit_account_id) == (row.debit, row.credit)
            assert (view.pending_id, view.timeout_s, view.timestamp) == (
                row.pending_id,
                row.timeout_s,
                row.timestamp,
            )
            assert view.status == expected_status(row, self.holds, transfer_id), view

        def submit(self, specs: list[AnySpec]) -> BatchResult | TransfersRefused:
            """Send a batch, check it did exactly what the model says, and update the model."""
            now = self.now()
            outcome = self.predict(specs, now)
            head = self.journal

            async def unit(session: AsyncSession) -> BatchResult:
                return await ledger.create_transfers(session, specs, now)

            try:
                result = run(unit)
            except TransfersRefused as refused:
                actual = {failure.index: failure for failure in refused.failures}
                assert outcome.failures, f"refused, the model expected success: {actual}"
                assert set(actual) == set(outcome.failures), (actual, outcome.failures)
                for index, failure in actual.items():
                    assert failure.code in outcome.failures[index], (failure, outcome.failures)
                    assert failure.transfer_id == spec_id(specs[index])
                # All or nothing: the invariant finds the journal and the totals unchanged.
                return refused
            assert not outcome.failures, f"accepted, the model expected {outcome.failures}"
            before = self.totals_now()
            assert [view.id for view in result.transfers] == [spec_id(s) for s in specs]
            assert result.created == bool(outcome.new)
            self.journal += len(outcome.new)
            views = {view.id: view for view in result.transfers}
            for offset, (transfer_id, planned) in enumerate(outcome.new, start=1):
                view = views[transfer_id]
                assert view.seq == head + offset, "seq is gapless, in batch order"
                assert view.timestamp == now
                self.rows[transfer_id] = replace(planned, seq=view.seq, timestamp=view.timestamp)
                if planned.kind is TransferKind.pending:
                    self.holds[transfer_id] = ModelHold(
                        debit=planned.debit,
                        credit=planned.credit,
                        amount=planned.amount,
                        code=planned.code,
                        timeout_s=planned.timeout_s,
                        created_at=view.timestamp,
                    )
            for pending_id, state in outcome.resolved.items():
                self.holds[pending_id].state = state
            for account_id, totals in outcome.totals.items():
                self.accounts[account_id].totals = totals
            for transfer_id in views:
                self.check_view(views[transfer_id], transfer_id)
            self.accepted.append(list(specs))
            if outcome.new:  # as of the write's instant it counts; a microsecond earlier not
                self.snapshots += [(now - MICROSECOND, before), (now, self.totals_now())]
            return result

        def balances_as_of(self, instant: datetime, expected: dict[str, Quad]) -> None:
            ids = sorted(self.accounts)
            now = self.now()
            assert instant < now

            async def unit(session: AsyncSession) -> dict[str, Quad]:
                accounts = await session.scalars(select(Account).where(Account.id.in_(ids)))
                return {
                    a.id: quad((await ledger.balance(session, a, instant, now)).totals)
                    for a in accounts.all()
                }

            found = run(unit)
            assert found == {i: expected.get(i, ZERO) for i in ids}, f"balances as of {instant}"

        # -- rules ------------------------------------------------------------------------

        @initialize(flags=st.lists(st.sampled_from(FLAGS), min_size=3, max_size=3))
        def open_accounts(self, flags: list[str | None]) -> None:
            for currency, flag in zip(CURRENCIES, flags, strict=True):
                self.create_account(currency, None)  # a source of funds
                self.create_account(currency, flag)

        @rule(data=st.data())
        def operate(self, data: st.DataObject) -> None:
            possible = [
                name
                for name, weight in OPERATIONS
                for _ in range(weight)
                if getattr(self, f"can_{name}", lambda: True)()
            ]
            name = data.draw(st.sampled_from(possible), label="operation")
            getattr(self, name)(data)

        def can_transfer_or_hold(self) -> bool:
            return bool(self.currencies_with_two_accounts())

        can_linked_batch = can_transfer_or_hold

        def can_post_or_void(self) -> bool:
            return bool(self.holds)

        def can_replay(self) -> bool:
            return bool(self.accepted)

        def can_balances_at_an_earlier_instant(self) -> bool:
            return len(self.snapshots) > 1

        def open_account(self, data: st.DataObject) -> None:
            currency = data.draw(st.sampled_from(CURRENCIES), label="currency")
            flag = data.draw(st.sampled_from(FLAGS), label="flag")
            self.create_account(currency, flag)
            if data.draw(st.integers(0, 2)) == 0:
                self.replay_account_creation(data.draw(st.sampled_from(sorted(self.accounts))))

        def replay_account_creation(self, account_id: str) -> None:
            model = self.accounts[account_id]
            spec = AccountSpec(
                id=account_id,
                currency=model.currency,
                code="available",
                **model.spec_flags,
            )
            now = self.now()

            async def same(session: AsyncSession) -> tuple[Quad, bool]:
                account, created = await ledger.create_account(session, spec, now)
                return account_quad(account), created

            assert run(same) == (model.totals, False)
            other = replace(spec, currency=next(c for c in CURRENCIES if c != model.currency))

            async def different(session: AsyncSession) -> None:
                await ledger.create_account(session, other, now)

            with pytest.raises(AccountExists):
                run(different)

        def transfer_or_hold(self, data: st.DataObject) -> None:
            self.submit([self.draw_transfer(data)])

        def post_or_void(self, data: st.DataObject) -> None:
            self.submit([self.draw_resolve(data)])

        def linked_batch(self, data: st.DataObject) -> None:
            size = data.draw(st.integers(2, 5), label="size")
            kinds = ["transfer"] * 3 + (["resolve"] * 2 if self.holds else [])
            kinds += ["old"] if self.accepted else []
            specs: list[AnySpec] = []
            for _ in range(size):
                kind = data.draw(st.sampled_from(kinds))
                if kind == "transfer":
                    specs.append(self.draw_transfer(data))
                elif kind == "resolve":
                    specs.append(self.draw_resolve(data))
                else:
                    specs.append(self.draw_old_spec(data))
            if data.draw(st.integers(0, 9)) == 0:
                specs.append(data.draw(st.sampled_from(specs)))  # an id repeated in the batch
            self.submit(specs)

        def replay(self, data: st.DataObject) -> None:
            """The same batch again changes nothing; with one amount changed it is refused."""
            specs = list(data.draw(st.sampled_from(self.accepted)))
            more = data.draw(st.one_of(st.just(0), st.integers(1, 1_000)), label="more")
            if more == 0:
                rows_before = dict(self.rows)
                result = self.submit(specs)
                assert isinstance(result, BatchResult), result
                assert result.created is False
                assert self.rows == rows_before
                return
            changeable = [
                i
                for i, s in enumerate(specs)
                if isinstance(s, TransferSpec) or (isinstance(s, ResolveSpec) and s.post)
            ]
            if not changeable:
                return
            index = data.draw(st.sampled_from(changeable))
            original = self.rows[spec_id(specs[index])]
            specs[index] = replace(specs[index], amount=original.amount + more)
            refused = self.submit(specs)
            assert isinstance(refused, TransfersRefused), refused
            assert [(f.index, f.code) for f in refused.failures] == [
                (index, "exists_with_different_fields")
            ]
            assert "amount" in refused.failures[0].fields

        def time_passes(self, data: st.DataObject) -> None:
            """Time passes; then, maybe, the expiry sweep voids every hold that timed out."""
            self.time += timedelta(seconds=data.draw(st.integers(0, 3), label="seconds"))
            if data.draw(st.booleans(), label="sweep"):
                self.holds_expire()

        def holds_expire(self) -> None:
            now = self.now()
            due = sorted(
                pending_id
                for pending_id, hold in self.holds.items()
                if hold.state == "open" and hold.timed_out(now)
            )
            expired = 0
            while True:

                async def unit(session: AsyncSession) -> int:
                    return await ledger.expire_due_holds(session, now)

                count = run(unit)
                if count == 0:
                    break
                expired += count
            # Holds of earlier runs or other tests may expire too; ours must all be among them.
            assert expired >= len(due)
            self.journal += expired

            still_open = sorted(i for i, h in self.holds.items() if h.state == "open")

            async def unit_read(session: AsyncSession) -> tuple[int, list[Any], list[Any]]:
                still_due = await session.scalar(
                    select(func.count()).select_from(Hold).where(Hold.expires_at <= now)
                )
                voids = [await ledger.get_transfer(session, f"{i}.void") for i in due]
                holds = [await ledger.get_transfer(session, i) for i in still_open]
                return int(still_due or 0), voids, holds

            still_due, voids, holds = run(unit_read)
            assert still_due == 0
            before = self.totals_now()
            for pending_id, view in zip(due, voids, strict=True):
                assert view is not None, f"hold {pending_id} did not expire"
                hold = self.holds[pending_id]
                self.rows[view.id] = ModelRow(
                    kind=TransferKind.void_pending,
                    debit=hold.debit,
                    credit=hold.credit,
                    amount=hold.amount,
                    currency=self.accounts[hold.debit].currency,
                    code=ledger.EXPIRED_CODE,
                    timeout_s=None,
                    pending_id=pending_id,
                    seq=view.seq,
                    timestamp=now,
                )
                hold.state = "expired"
                dp, dpo, dcp, dcpo = self.accounts[hold.debit].totals
                self.accounts[hold.debit].totals = (dp - hold.amount, dpo, dcp, dcpo)
                cdp, cdpo, cp, cpo = self.accounts[hold.credit].totals
                self.accounts[hold.credit].totals = (cdp, cdpo, cp - hold.amount, cpo)
                self.check_view(view, view.id)
            for pending_id, view in zip(still_open, holds, strict=True):
                if pending_id not in due:  # a hold not yet due is left alone
                    self.check_view(view, pending_id)
            if due:
                self.snapshots += [(now - MICROSECOND, before), (now, self.totals_now())]

        def balances_at_an_earlier_instant(self, data: st.DataObject) -> None:
            instant, expected = data.draw(st.sampled_from(self.snapshots))
            self.balances_as_of(instant, expected)

        # -- invariants -------------------------------------------------------------------

        @invariant()
        def database_matches_the_model(self) -> None:
            if not self.accounts:
                return
            instant = self.time
            now = self.now()
            ids = sorted(self.accounts)
            # The journal only grows, so an account's balance from it changes only when the
            # account moves: read it back for the accounts that moved since the last check.
            moved = {i for i in ids if self.journal_checked.get(i) != self.accounts[i].totals}

            async def unit(session: AsyncSession) -> tuple[Any, ...]:
                mine = (await session.scalars(select(Account).where(Account.id.in_(ids)))).all()
                current = {
                    a.id: quad((await ledger.balance(session, a, None, now)).totals) for a in mine
                }
                journal = {
                    a.id: quad((await ledger.balance(session, a, instant, now)).totals)
                    for a in mine
                    if a.id in moved
                }
                everything = (
                    await session.execute(
                        select(
                            Account.currency,
                            Account.debits_pending,
                            Account.debits_posted,
                            Account.credits_pending,
                            Account.credits_posted,
                        )
                    )
                ).all()
                count, last = (
                    await session.execute(select(func.count(), func.max(Transfer.seq)))
                ).one()
                return list(mine), current, journal, [tuple(r) for r in everything], count, last

            mine, current, journal, everything, count, last = run(unit)
            assert {a.id for a in mine} == set(ids)
            for account in mine:
                model = self.accounts[account.id]
                assert account.currency == model.currency
                assert model.spec_flags == {
                    DEBITS_LIMITED: account.debits_must_not_exceed_credits,
                    CREDITS_LIMITED: account.credits_must_not_exceed_debits,
                }
                stored = account_quad(account)
                assert stored == model.totals, f"{account.id}: {stored} != model {model.totals}"
                assert current[account.id] == model.totals, "the balance now differs"
                if account.id in moved:
                    assert journal[account.id] == model.totals, "the journal's balance differs"
                    self.journal_checked[account.id] = model.totals
                dp, dpo, cp, cpo = account_quad(account)
                assert min(dp, dpo, cp, cpo) >= 0
                if model.flag == DEBITS_LIMITED:
                    assert dp + dpo <= cpo, f"{account.id} is past its limit: {stored}"
                if model.flag == CREDITS_LIMITED:
                    assert cp + cpo <= dpo, f"{account.id} is past its limit: {stored}"
            ours = [(self.accounts[a.id].currency, *account_quad(a)) for a in mine]
            for rows in (ours, everything):
                sums: dict[str, list[int]] = {}
                for currency, *totals in rows:
                    acc = sums.setdefault(currency, [0, 0, 0, 0])
                    for position, value in enumerate(totals):
                        acc[position] += value
                for currency, (dp, dpo, cp, cpo) in sums.items():
                    assert dp == cp, f"{currency}: pending debits {dp} != credits {cp}"
                    assert dpo == cpo, f"{currency}: posted debits {dpo} != credits {cpo}"
            assert count == (last or 0), "seq is gapless"
            assert count == self.journal, f"the journal has {count} entries, not {self.journal}"
            self.snapshots.append((instant, self.totals_now()))

        def teardown(self) -> None:
            # The next writer (another run, another test) must not stamp an earlier time.
            clock.advance(max(timedelta(0), self.time + STEP - clock.now()))
            if not self.accounts:
                return
            verification = run(ledger.verify_chain)
            assert verification.ok, verification.first_broken
            assert verification.accounts_checked is not None
            assert verification.accounts_checked >= len(self.accounts)
            assert verification.entries == journal_size()
            if self.rows:
                seqs = [row.seq for row in self.rows.values()]
                low, high = min(seqs), max(seqs)

                async def ranged(session: AsyncSession) -> ledger.Verification:
                    return await ledger.verify_chain(session, low, high)

                part = run(ranged)
                assert part.ok and part.entries == high - low + 1
                assert part.accounts_checked is None
            for instant, expected in self.snapshots[:: max(1, len(self.snapshots) // 3)]:
                self.balances_as_of(instant, expected)

    return LedgerMachine


def test_any_sequence_of_ledger_operations_keeps_the_invariants(
    settings: Settings, clock: TestClock
) -> None:
    loop = asyncio.new_event_loop()
    database = Database(settings)
    try:
        machine = ledger_machine(database, loop, clock)
        run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)
    finally:
        loop.run_until_complete(database.dispose())
        loop.close()


# ---------------------------------------------------------------------------------------------
# Tampering: always inside a transaction that is rolled back


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings)
    try:
        yield db
    finally:
        await db.dispose()


@asynccontextmanager
async def rolled_back(database: Database) -> AsyncIterator[AsyncSession]:
    async with database.sessions() as session:
        try:
            yield session
        finally:
            await session.rollback()


async def allow_journal_changes(session: AsyncSession) -> None:
    """Lift the append-only guard for this transaction only (the rollback restores it)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        await session.execute(text("DROP TRIGGER ledger_transfer_no_update"))
        await session.execute(text("DROP TRIGGER ledger_transfer_no_delete"))


async def write_transfers(
    database: Database, clock: TestClock, count: int
) -> list[ledger.TransferView]:
    """`count` single transfers, one unit each, from a clearing account to a limited account."""
    token = secrets.token_hex(5)
    source, target = f"{token}-src", f"{token}-dst"

    async def accounts(session: AsyncSession) -> None:
        await ledger.create_account(
            session, AccountSpec(source, "CNY", "external_clearing"), clock.now()
        )
        await ledger.create_account(
            session,
            AccountSpec(target, "CNY", "available", debits_must_not_exceed_credits=True),
            clock.now(),
        )

    await database.run(accounts)
    views = []
    for n in range(count):
        spec = TransferSpec(f"{token}-t{n}", source, target, 100 + n, "CNY", "test")

        async def unit(session: AsyncSession, spec: TransferSpec = spec) -> BatchResult:
            return await ledger.create_transfers(session, [spec], clock.now())

        views.append((await database.run(unit)).transfers[0])
    return views


async def assert_journal_intact(database: Database) -> None:
    verification = await database.read(ledger.verify_chain)
    assert verification.ok, verification.first_broken
    async with rolled_back(database) as session:
        seq = await session.scalar(select(func.max(Transfer.seq)))
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(
                text("UPDATE ledger_transfer SET amount = amount + 1 WHERE seq = :seq"),
                {"seq": seq},
            )


async def rehash(session: AsyncSession, seq: int) -> None:
    """What a careful forger does: recompute the changed row's own hash."""
    previous = await session.scalar(select(Transfer.hash).where(Transfer.seq == seq - 1))
    row = (await session.execute(select(Transfer.__table__).where(Transfer.seq == seq))).one()
    new_hash = chain_hash(previous or "0" * 64, ledger.entry_of(row))
    await session.execute(
        text("UPDATE ledger_transfer SET hash = :hash WHERE seq = :seq"),
        {"hash": new_hash, "seq": seq},
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("UPDATE ledger_transfer SET amount = amount + 1 WHERE seq = :seq", "hash_mismatch"),
        (
            "UPDATE ledger_transfer SET dr_debits_posted = dr_debits_posted + 1 WHERE seq = :seq",
            "hash_mismatch",
        ),
        ("UPDATE ledger_transfer SET code = 'forged' WHERE seq = :seq", "hash_mismatch"),
        ("UPDATE ledger_transfer SET amount = amount + 1 WHERE seq = :seq", "totals_mismatch"),
        ("DELETE FROM ledger_transfer WHERE seq = :seq", "missing"),
    ],
    ids=["amount", "running_total", "code", "amount_rehashed", "deleted"],
)
async def test_a_tampered_journal_row_is_found_by_verify(
    database: Database, clock: TestClock, change: str, reason: str
) -> None:
    views = await write_transfers(database, clock, 3)
    target = views[1]
    async with rolled_back(database) as session:
        assert (await ledger.verify_chain(session)).ok
        await allow_journal_changes(session)
        await session.execute(text(change), {"seq": target.seq})
        if reason == "totals_mismatch":
            await rehash(session, target.seq)
        verification = await ledger.verify_chain(session)
        assert not verification.ok
        expected = {"seq": target.seq, "reason": reason}
        if reason != "missing":
            expected["id"] = target.id
        assert verification.first_broken == expected
        assert verification.entries == target.seq - 1
        before = await ledger.verify_chain(session, 1, target.seq - 1)
        assert before.ok and before.entries == target.seq - 1
        assert not (await ledger.verify_chain(session, target.seq, target.seq + 1)).ok
    await assert_journal_intact(database)


async def test_a_changed_account_total_is_found_by_verify(
    database: Database, clock: TestClock
) -> None:
    views = await write_transfers(database, clock, 2)
    source = views[0].debit_account_id
    async with rolled_back(database) as session:
        await session.execute(
            text("UPDATE ledger_account SET credits_posted = credits_posted + 1 WHERE id = :id"),
            {"id": source},
        )
        verification = await ledger.verify_chain(session)
        assert not verification.ok
        assert verification.first_broken == {
            "account_id": source,
            "reason": "account_totals_mismatch",
        }
    await assert_journal_intact(database)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_transfer SET amount = amount + 1 WHERE seq = :seq",
        "UPDATE ledger_transfer SET hash = :forged WHERE seq = :seq",
        "DELETE FROM ledger_transfer WHERE seq = :seq",
    ],
    ids=["update_amount", "update_hash", "delete"],
)
async def test_the_database_refuses_to_change_a_journal_row(
    database: Database, clock: TestClock, statement: str
) -> None:
    views = await write_transfers(database, clock, 1)
    async with rolled_back(database) as session:
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text(statement), {"seq": views[0].seq, "forged": "f" * 64})
    async with rolled_back(database) as session:
        row = (
            await session.execute(
                select(Transfer.amount, Transfer.id).where(Transfer.seq == views[0].seq)
            )
        ).one()
        assert tuple(row) == (views[0].amount, views[0].id)


@pytest.mark.postgres
async def test_the_database_refuses_to_truncate_the_journal(
    database: Database, clock: TestClock
) -> None:
    await write_transfers(database, clock, 1)
    async with rolled_back(database) as session:
        with pytest.raises(DBAPIError, match="append-only"):
            await session.execute(text("TRUNCATE ledger_transfer CASCADE"))
    await assert_journal_intact(database)


@pytest.mark.parametrize("rows", [1, 20], ids=["insert", "bulk"])
@pytest.mark.parametrize("missing", ["debit_account_id", "credit_account_id", "fx_rate_id"])
async def test_the_database_refuses_a_journal_entry_naming_what_does_not_exist(
    database: Database, clock: TestClock, rows: int, missing: str
) -> None:
    """The journal's references hold whatever the application does: a row-by-row foreign key on
    SQLite, one check per INSERT or COPY statement on PostgreSQL (revision 0007)."""
    views = await write_transfers(database, clock, 1)
    async with rolled_back(database) as session:
        row = (
            await session.execute(select(Transfer.__table__).where(Transfer.seq == views[0].seq))
        ).one()
        template = TransferRow(*row)
        forged = [
            template._replace(seq=template.seq + 1 + n, id=f"forged-{n}") for n in range(rows)
        ]
        forged[-1] = forged[-1]._replace(**{missing: "no-such-thing"})
        journal = await repository.journal(session)
        refused = r"or FX rate does not exist|FOREIGN KEY constraint failed"
        with pytest.raises(DBAPIError, match=refused):
            await journal.append(forged)
    await assert_journal_intact(database)


async def test_the_database_keeps_the_accounts_and_rates_the_journal_names(
    database: Database, clock: TestClock
) -> None:
    views = await write_transfers(database, clock, 1)
    account = views[0].debit_account_id
    async with database.sessions() as session, session.begin():
        await ledger.record_fx_rate(
            session,
            rate_id=f"rate-{secrets.token_hex(4)}",
            base_currency="USD",
            quote_currency="CNY",
            rate=Decimal("7.1"),
            recorded_by=None,
            now=clock.now(),
        )
    refused = [
        ("DELETE FROM ledger_account WHERE id = :id", {"id": account}),
        ("UPDATE ledger_account SET id = 'renamed' WHERE id = :id", {"id": account}),
        ("UPDATE ledger_fx_rate SET rate = '9.9'", {}),
        ("DELETE FROM ledger_fx_rate", {}),
    ]
    if database.dialect == "postgresql":
        refused.append(("TRUNCATE ledger_account CASCADE", {}))
    for statement, parameters in refused:
        async with rolled_back(database) as session:
            guard = r"never removed|append-only|FOREIGN KEY constraint failed"
            with pytest.raises(DBAPIError, match=guard):
                await session.execute(text(statement), parameters)
    async with rolled_back(database) as session:
        assert await session.scalar(select(func.count()).where(Account.id == account)) == 1
    await assert_journal_intact(database)


async def test_a_total_past_the_largest_amount_is_refused(
    database: Database, clock: TestClock
) -> None:
    token = secrets.token_hex(5)
    source, target = f"{token}-src", f"{token}-dst"
    async with rolled_back(database) as session:  # never committed: no giant totals left behind
        for account_id in (source, target):
            await ledger.create_account(
                session, AccountSpec(account_id, "USD", "available"), clock.now()
            )
        first = TransferSpec(f"{token}-t0", source, target, AMOUNT_MINOR_MAX, "USD", "test")
        await ledger.create_transfers(session, [first], clock.now())
        more = TransferSpec(f"{token}-t1", source, target, 1, "USD", "test")
        with pytest.raises(TransfersRefused) as refused:
            await ledger.create_transfers(session, [more], clock.now())
        assert [f.code for f in refused.value.failures] == ["overflow"]


# ---------------------------------------------------------------------------------------------
# Pure rules: no database


amounts = st.integers(1, 10**12)
totals_strategy = st.builds(Totals, *(st.integers(0, 10**12) for _ in range(4)))
limits_strategy = st.sampled_from(
    [
        Limits(),
        Limits(debits_must_not_exceed_credits=True),
        Limits(credits_must_not_exceed_debits=True),
    ]
)


@given(limits=limits_strategy, totals=totals_strategy)
def test_limit_breach_is_exactly_the_limit(limits: Limits, totals: Totals) -> None:
    flag = (
        DEBITS_LIMITED
        if limits.debits_must_not_exceed_credits
        else CREDITS_LIMITED
        if limits.credits_must_not_exceed_debits
        else None
    )
    assert limit_breach(limits, totals) == model_breach(flag, quad(totals))


@given(limits=limits_strategy, totals=totals_strategy, position=st.integers(0, 3))
def test_a_total_past_the_largest_amount_is_an_overflow(
    limits: Limits, totals: Totals, position: int
) -> None:
    values = list(quad(totals))
    values[position] = AMOUNT_MINOR_MAX + 1
    assert limit_breach(limits, Totals(*values)) == "overflow"
    values[position] = AMOUNT_MINOR_MAX
    assert limit_breach(limits, Totals(*values)) != "overflow"


@st.composite
def operations(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """A sequence of transfers among four accounts; holds are referred to by their order."""
    ops: list[tuple[Any, ...]] = []
    open_holds = 0
    for _ in range(draw(st.integers(1, 30))):
        choices = ["single", "pending"] + (["post", "void"] if open_holds else [])
        kind = draw(st.sampled_from(choices))
        if kind in ("single", "pending"):
            debit, credit = draw(st.lists(st.integers(0, 3), min_size=2, max_size=2, unique=True))
            ops.append((kind, debit, credit, draw(amounts)))
            open_holds += kind == "pending"
        else:
            which = draw(st.integers(0, open_holds - 1))
            ops.append((kind, which, draw(st.integers(1, 100))))  # post: percent of the hold
            open_holds -= 1
    return ops


@given(ops=operations())
def test_apply_conserves_debits_and_credits(ops: list[tuple[Any, ...]]) -> None:
    accounts = [Totals() for _ in range(4)]
    holds: list[tuple[int, int, int]] = []
    moved_posted = 0
    for op in ops:
        before = [quad(t) for t in accounts]
        if op[0] in ("single", "pending"):
            kind, debit, credit, amount = op
            apply(TransferKind(kind), amount, 0, accounts[debit], accounts[credit])
            if kind == "pending":
                holds.append((debit, credit, amount))
                delta = (amount, 0, 0, 0), (0, 0, amount, 0)
            else:
                moved_posted += amount
                delta = (0, amount, 0, 0), (0, 0, 0, amount)
        else:
            kind, which, percent = op
            debit, credit, held = holds.pop(which)
            amount = max(1, held * percent // 100) if kind == "post" else held
            posted = amount if kind == "post" else 0
            transfer_kind = (
                TransferKind.post_pending if kind == "post" else TransferKind.void_pending
            )
            apply(transfer_kind, amount, held, accounts[debit], accounts[credit])
            moved_posted += posted
            delta = (-held, posted, 0, 0), (0, 0, -held, posted)
        for index, change in ((debit, delta[0]), (credit, delta[1])):
            assert quad(accounts[index]) == tuple(
                b + c for b, c in zip(before[index], change, strict=True)
            )
        for index in set(range(4)) - {debit, credit}:
            assert quad(accounts[index]) == before[index]
        assert sum(t.debits_pending for t in accounts) == sum(t.credits_pending for t in accounts)
        assert sum(t.debits_posted for t in accounts) == sum(t.credits_posted for t in accounts)
        assert sum(t.debits_posted for t in accounts) == moved_posted
        assert sum(t.debits_pending for t in accounts) == sum(h[2] for h in holds)
        assert all(min(quad(t)) >= 0 for t in accounts)


@given(held=amounts, more=st.integers(1, 10**6))
def test_apply_refuses_to_resolve_other_than_what_is_held(held: int, more: int) -> None:
    cases = [(TransferKind.post_pending, held + more), (TransferKind.void_pending, held + more)]
    if held > more:
        cases.append((TransferKind.void_pending, held - more))  # a void releases all of it
    for kind, amount in cases:
        debit, credit = Totals(debits_pending=held), Totals(credits_pending=held)
        with pytest.raises(AssertionError):
            apply(kind, amount, held, debit, credit)


@given(
    limits=limits_strategy,
    debit_totals=st.tuples(st.integers(0, 10**9), st.integers(0, 10**9)),
    credit_totals=st.tuples(st.integers(0, 10**9), st.integers(0, 10**9)),
    held=st.integers(1, 10**9),
    percent=st.integers(0, 100),
)
def test_resolving_a_hold_never_pushes_an_account_past_its_limit(
    limits: Limits,
    debit_totals: tuple[int, int],
    credit_totals: tuple[int, int],
    held: int,
    percent: int,
) -> None:
    """A hold that fit within the limits still fits once it is posted (in part) or voided."""
    debit = Totals(debits_posted=debit_totals[0], credits_posted=debit_totals[1])
    credit = Totals(debits_posted=credit_totals[0], credits_posted=credit_totals[1])
    apply(TransferKind.pending, held, 0, debit, credit)
    hypothesis.assume(limit_breach(limits, debit) is None and limit_breach(limits, credit) is None)
    amount = max(1, held * percent // 100)
    for kind in (TransferKind.post_pending, TransferKind.void_pending):
        d, c = debit.copy(), credit.copy()
        apply(kind, amount if kind is TransferKind.post_pending else held, held, d, c)
        assert limit_breach(limits, d) is None
        assert limit_breach(limits, c) is None
        assert (d.debits_pending, c.credits_pending) == (0, 0)


# ---------------------------------------------------------------------------------------------
# Money: integer minor units inside, decimal strings outside

SIGNIFICANT_DIGITS = 28  # Python's default decimal context
money_currencies = st.sampled_from(["JPY", "KRW", "CNY", "USD", "EUR", "BHD", "KWD", "TND"])


@given(minor=st.integers(0, AMOUNT_MINOR_MAX), currency=money_currencies, zeros=st.integers(0, 5))
def test_minor_units_round_trip_through_decimal_strings(
    minor: int, currency: str, zeros: int
) -> None:
    text_amount = to_decimal_string(minor, currency)
    places = exponent(currency)
    assert places in (0, 2, 3)
    whole, _, fraction = text_amount.partition(".")
    assert len(fraction) == places
    assert whole == str(int(whole))  # no padding, no sign
    assert int(whole + fraction) == minor
    assert to_minor(text_amount, currency) == minor
    padded = text_amount + ("" if places else ".") + "0" * zeros if zeros else text_amount
    assert to_minor(padded, currency) == minor  # trailing zeros are not fractional units


@given(
    minor=st.integers(0, AMOUNT_MINOR_MAX),
    currency=money_currencies,
    fraction=st.text("0123456789", min_size=0, max_size=26),
    last=st.sampled_from("123456789"),
)
def test_fractional_minor_units_are_refused(
    minor: int, currency: str, fraction: str, last: str
) -> None:
    amount = to_decimal_string(minor, currency)
    places = exponent(currency)
    significant = len(amount.replace(".", "").lstrip("0"))
    # At most 30 decimals (the input pattern) and 28 significant digits: past those the check
    # rounds first (see test_a_fraction_past_28_significant_digits_is_refused).
    extra = (fraction + last)[-min(30 - places, SIGNIFICANT_DIGITS - significant) :]
    amount += ("" if places else ".") + extra
    with pytest.raises(ValueError, match="decimal places"):
        to_minor(amount, currency)


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("1.00000000000000000000000000001", "CNY"),
        ("5.0000000000000000000000000001", "JPY"),
        ("92233720368547758.07000000000001", "CNY"),
    ],
)
def test_a_fraction_past_28_significant_digits_is_refused(amount: str, currency: str) -> None:
    with pytest.raises(ValueError):
        to_minor(amount, currency)


@given(excess=st.integers(1, 10**10), currency=money_currencies)
def test_an_amount_past_the_largest_is_refused(excess: int, currency: str) -> None:
    with pytest.raises(ValueError, match="too large"):
        to_minor(to_decimal_string(AMOUNT_MINOR_MAX + excess, currency), currency)
