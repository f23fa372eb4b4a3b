"""Concurrent single transfers of one API process share one transaction.

Every ledger write takes the journal head until it commits, so a process that sent each transfer
in its own transaction would be bound by one lock, one head read and one commit per transfer.
Requests that arrive while a transaction is running queue here; the next transaction takes all of
them (up to `batch_max`) as independent transfers — each applies or is refused on its own, as if
sent alone — with each request's Idempotency-Key and audit record in that same transaction. No
request waits for a timer: one alone goes at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

import orjson
import structlog
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from exchange import idempotency as idempotency_store
from exchange.audit import service as audit_service
from exchange.auth.service import Principal
from exchange.clock import Clock
from exchange.db import Database
from exchange.errors import DomainError
from exchange.ledger import service as ledger
from exchange.ledger.access import foreign_debits

log = structlog.get_logger(__name__)
ACTION = "ledger.transfer.create"
INSTANCE = "/v1/ledger/transfers"
BATCH_MAX = 256
LANES = 1

Answer = tuple[int, bytes]


@dataclass
class Submission:
    spec: ledger.TransferSpec
    principal: Principal
    request_id: str | None
    idempotency_key: str | None
    fingerprint: str
    future: asyncio.Future[Answer]


@dataclass
class TransferCoalescer:
    db: Database
    clock: Clock
    render: Callable[[ledger.TransferView], BaseModel]  # the API's presenter
    batch_max: int = BATCH_MAX
    # Transactions at a time per process. Two lanes let one plan while the other commits, but
    # measured slower here (bench/ledger.py (d): smaller batches, more commits), so one.
    lanes: int = LANES
    queue: list[Submission] = field(default_factory=list)
    drains: set[asyncio.Task[None]] = field(default_factory=set)  # held, so none is collected
    in_flight: set[tuple[str, str]] = field(default_factory=set)  # ids and keys being applied

    async def submit(
        self,
        spec: ledger.TransferSpec,
        principal: Principal,
        request_id: str | None,
        idempotency_key: str | None,
        fingerprint: str,
    ) -> Answer:
        """The status and JSON body of this transfer's answer, once its transaction committed."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.queue.append(
            Submission(spec, principal, request_id, idempotency_key, fingerprint, future)
        )
        if len(self.drains) < self.lanes:
            drain = asyncio.create_task(self._drain())
            self.drains.add(drain)
        return await future

    async def _drain(self) -> None:
        try:
            while batch := self._next_batch():
                marks = {mark for submission in batch for mark in _marks(submission)}
                self.in_flight |= marks
                try:
                    await self._run(batch)
                finally:
                    self.in_flight -= marks
        finally:
            # Leave the set before returning, with no await in between: a done-callback would
            # run later, and a request queued meanwhile would find no drain coming for it.
            self.drains.discard(cast(asyncio.Task[None], asyncio.current_task()))

    def _next_batch(self) -> list[Submission]:
        """The oldest queued requests, up to `batch_max`, at most one per transfer id and per
        Idempotency-Key, none of them in a transaction still running: a repeat waits until the
        first has committed, so it is judged as if the two had come one after the other."""
        batch: list[Submission] = []
        waiting: list[Submission] = []
        taken = set(self.in_flight)
        for submission in self.queue:
            marks = _marks(submission)
            if taken & marks or len(batch) == self.batch_max:
                waiting.append(submission)
                continue
            batch.append(submission)
            taken |= marks
        self.queue = waiting
        return batch

    async def _run(self, batch: list[Submission]) -> None:
        try:
            answers = await self.db.run(lambda session: self._unit(session, batch))
        except Exception:
            if len(batch) == 1:
                log.exception("transfer_failed")
                if not batch[0].future.done():
                    batch[0].future.set_exception(RuntimeError("the transfer failed"))
                return
            # One request's failure must not fail the others: each goes again on its own.
            log.warning("transfer_batch_failed_retrying_one_by_one", size=len(batch))
            for submission in batch:
                await self._run([submission])
            return
        for submission, answer in zip(batch, answers, strict=True):
            if not submission.future.done():
                submission.future.set_result(answer)

    async def _unit(self, session: AsyncSession, batch: list[Submission]) -> list[Answer]:
        now = self.clock.now()
        answers: list[Answer | None] = [
            await self._before(session, submission, now) for submission in batch
        ]
        applying = [index for index, answer in enumerate(answers) if answer is None]
        if applying:
            outcomes = await ledger.create_transfers_each(
                session, [batch[i].spec for i in applying], now
            )
            for index, outcome in zip(applying, outcomes, strict=True):
                answers[index] = await self._after(session, batch[index], outcome, now)
        assert all(answer is not None for answer in answers)
        return [answer for answer in answers if answer is not None]

    async def _before(
        self, session: AsyncSession, submission: Submission, now: datetime
    ) -> Answer | None:
        """An answer that needs no ledger work (a replay or a refusal), else None."""
        key = submission.idempotency_key
        try:
            if key is not None:
                stored = await idempotency_store.replay(
                    session, submission.principal.key_id, key, submission.fingerprint
                )
                if stored is not None:
                    await self._audit(session, submission, "replayed", stored[0], now)
                    return stored
            await _check_member_debit(session, submission)
        except DomainError as error:
            return await self._refused(session, submission, error, now)
        return None

    async def _after(
        self, session: AsyncSession, submission: Submission, outcome: ledger.Outcome, now: datetime
    ) -> Answer:
        if outcome.failure is not None:
            refused = ledger.TransfersRefused.single(outcome.failure)
            return await self._refused(session, submission, refused, now)
        assert outcome.view is not None
        status = 201 if outcome.created else 200
        body = orjson.dumps(self.render(outcome.view).model_dump(mode="json"))
        if submission.idempotency_key is not None:
            await idempotency_store.remember(
                session,
                submission.principal.key_id,
                submission.idempotency_key,
                submission.fingerprint,
                status,
                body,
                now,
            )
        await self._audit(session, submission, "ok", status, now)
        return status, body

    async def _refused(
        self, session: AsyncSession, submission: Submission, error: DomainError, now: datetime
    ) -> Answer:
        await self._audit(session, submission, error.code, error.status, now, error.detail)
        return error.status, orjson.dumps(error.problem(INSTANCE))

    async def _audit(
        self,
        session: AsyncSession,
        submission: Submission,
        outcome: str,
        status: int,
        now: datetime,
        detail: str | None = None,
    ) -> None:
        await audit_service.record(
            session,
            audit_service.Actor(submission.principal, submission.request_id),
            action=ACTION,
            target=submission.spec.id,
            outcome=outcome,
            status=status,
            at=now,
            detail=detail[:1000] if detail else None,
        )


def _marks(submission: Submission) -> set[tuple[str, str]]:
    """What two requests in flight at once must not share: the transfer id, and the key."""
    marks = {("id", submission.spec.id)}
    if submission.idempotency_key is not None:
        marks.add((submission.principal.key_id, submission.idempotency_key))
    return marks


async def _check_member_debit(session: AsyncSession, submission: Submission) -> None:
    spec = submission.spec
    failures = await foreign_debits(
        session, submission.principal, [(spec.id, spec.debit_account_id)]
    )
    if failures:
        raise ledger.TransfersRefused.single(failures[0])
