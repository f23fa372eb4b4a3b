"""Concurrent requests of one kind in one API process share one transaction.

Some writes serialise on one lock until commit: every ledger write takes the journal head, every
bid its auction row. A process that sent each such request in its own transaction would pay one
lock wait, one round of reads and one commit per request, and with many waiters queued on one
PostgreSQL row lock, far more. Requests that arrive while a transaction is running queue here;
the next transaction takes them together (up to `batch_max`, of one `group` when the kind has
groups) and applies each on its own — applied or refused as if sent alone — with each request's
Idempotency-Key and audit record in that same transaction. No request waits for a timer: one
alone goes at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar, cast

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

log = structlog.get_logger(__name__)
T = TypeVar("T")
Answer = tuple[int, bytes]
Result = tuple[int, BaseModel] | DomainError  # an applied item's status and body, or its refusal


@dataclass
class Submission(Generic[T]):
    item: T
    target: str  # what the audit record names
    group: str | None  # a batch holds one group's items (one auction's bids)
    marks: frozenset[tuple[str, str]]  # what two requests in one batch must not share
    principal: Principal
    request_id: str | None
    idempotency_key: str | None
    fingerprint: str
    future: asyncio.Future[Answer]


Apply = Callable[[AsyncSession, Sequence[Submission[T]], datetime], Awaitable[list[Result]]]


@dataclass
class Coalescer(Generic[T]):
    db: Database
    clock: Clock
    action: str  # the audit record's action
    instance: Callable[[T], str]  # a refusal's problem `instance`
    apply: Apply[T]  # the domain's work: one result per submission, in order
    batch_max: int = 256
    lanes: int = 1  # transactions at a time per process (of different groups)
    queue: list[Submission[T]] = field(default_factory=list)
    drains: set[asyncio.Task[None]] = field(default_factory=set)  # held, so none is collected
    in_flight: set[tuple[str, str]] = field(default_factory=set)  # marks and groups running

    async def submit(
        self,
        item: T,
        *,
        target: str,
        group: str | None,
        marks: frozenset[tuple[str, str]],
        principal: Principal,
        request_id: str | None,
        idempotency_key: str | None,
        fingerprint: str,
    ) -> Answer:
        """The status and JSON body of this request's answer, once its transaction committed."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        if idempotency_key is not None:
            marks = marks | {(principal.key_id, idempotency_key)}
        self.queue.append(
            Submission(
                item,
                target,
                group,
                marks,
                principal,
                request_id,
                idempotency_key,
                fingerprint,
                future,
            )
        )
        if len(self.drains) < self.lanes:
            drain = asyncio.create_task(self._drain())
            self.drains.add(drain)
        return await future

    async def _drain(self) -> None:
        try:
            while batch := self._next_batch():
                taken = _taken(batch)
                self.in_flight |= taken
                try:
                    await self._run(batch)
                finally:
                    self.in_flight -= taken
        finally:
            # Leave the set before returning, with no await in between: a done-callback would
            # run later, and a request queued meanwhile would find no drain coming for it.
            self.drains.discard(cast(asyncio.Task[None], asyncio.current_task()))

    def _next_batch(self) -> list[Submission[T]]:
        """The oldest queued requests, up to `batch_max`, of the oldest group not in a running
        transaction, at most one per mark, none sharing a mark with a running transaction: a
        repeat waits until the first has committed, so it is judged as if sent after it."""
        batch: list[Submission[T]] = []
        waiting: list[Submission[T]] = []
        taken = set(self.in_flight)
        group: str | None = None
        for submission in self.queue:
            grouped = submission.group is not None
            busy = grouped and ("group", submission.group or "") in self.in_flight
            other_group = bool(batch) and submission.group != group
            if busy or other_group or taken & submission.marks or len(batch) == self.batch_max:
                waiting.append(submission)
                continue
            group = submission.group
            batch.append(submission)
            taken |= submission.marks
        self.queue = waiting
        return batch

    async def _run(self, batch: list[Submission[T]]) -> None:
        try:
            answers = await self.db.run(lambda session: self._unit(session, batch))
        except Exception:
            if len(batch) == 1:
                log.exception("coalesced_request_failed", action=self.action)
                if not batch[0].future.done():
                    batch[0].future.set_exception(RuntimeError(f"{self.action} failed"))
                return
            # One request's failure must not fail the others: each goes again on its own.
            log.warning("coalesced_batch_failed_retrying_one_by_one", size=len(batch))
            for submission in batch:
                await self._run([submission])
            return
        for submission, answer in zip(batch, answers, strict=True):
            if not submission.future.done():
                submission.future.set_result(answer)

    async def _unit(self, session: AsyncSession, batch: list[Submission[T]]) -> list[Answer]:
        now = self.clock.now()
        audits: list[dict[str, Any]] = []
        answers: list[Answer | None] = [
            await self._replayed(session, submission, now, audits) for submission in batch
        ]
        applying = [index for index, answer in enumerate(answers) if answer is None]
        if applying:
            results = await self.apply(session, [batch[i] for i in applying], now)
            assert len(results) == len(applying), "one result per submission"
            for index, result in zip(applying, results, strict=True):
                answers[index] = await self._answer(session, batch[index], result, now, audits)
        assert len(audits) == len(batch), "one audit record per request"
        await audit_service.record_all(session, audits)
        return [answer for answer in answers if answer is not None]

    async def _replayed(
        self,
        session: AsyncSession,
        submission: Submission[T],
        now: datetime,
        audits: list[dict[str, Any]],
    ) -> Answer | None:
        key = submission.idempotency_key
        if key is None:
            return None
        try:
            stored = await idempotency_store.replay(
                session, submission.principal.key_id, key, submission.fingerprint
            )
        except DomainError as error:  # the key was used with another body
            return await self._answer(session, submission, error, now, audits)
        if stored is not None:
            audits.append(self._audit(submission, "replayed", stored[0], now))
        return stored

    async def _answer(
        self,
        session: AsyncSession,
        submission: Submission[T],
        result: Result,
        now: datetime,
        audits: list[dict[str, Any]],
    ) -> Answer:
        if isinstance(result, DomainError):
            detail = result.detail[:1000]
            audits.append(self._audit(submission, result.code, result.status, now, detail))
            return result.status, orjson.dumps(result.problem(self.instance(submission.item)))
        status, model = result
        body = orjson.dumps(model.model_dump(mode="json"))
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
        audits.append(self._audit(submission, "ok", status, now))
        return status, body

    def _audit(
        self,
        submission: Submission[T],
        outcome: str,
        status: int,
        now: datetime,
        detail: str | None = None,
    ) -> dict[str, Any]:
        return audit_service.entry(
            audit_service.Actor(submission.principal, submission.request_id),
            action=self.action,
            target=submission.target,
            outcome=outcome,
            status=status,
            at=now,
            detail=detail,
        )


def _taken(batch: Sequence[Submission[T]]) -> set[tuple[str, str]]:
    taken = {mark for submission in batch for mark in submission.marks}
    taken |= {("group", s.group) for s in batch if s.group is not None}
    return taken
