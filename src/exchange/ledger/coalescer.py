"""Concurrent single transfers of one API process share one transaction (`exchange.coalescer`):
every ledger write takes the journal head until it commits, so one transaction per transfer
would be bound by one lock, one head read and one commit per transfer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth.service import Principal
from exchange.clock import Clock
from exchange.coalescer import Answer, Coalescer, Result, Submission
from exchange.db import Database
from exchange.ledger import service as ledger
from exchange.ledger.access import foreign_debits

ACTION = "ledger.transfer.create"
INSTANCE = "/v1/ledger/transfers"
BATCH_MAX = 256
# Transactions at a time per process. Two lanes let one plan while the other commits, but
# measured slower here (bench/ledger.py (d): smaller batches, more commits), so one.
LANES = 1

TransferCoalescer = Coalescer[ledger.TransferSpec]


def transfer_coalescer(
    db: Database, clock: Clock, render: Callable[[ledger.TransferView], BaseModel]
) -> TransferCoalescer:
    async def apply(
        session: AsyncSession, batch: Sequence[Submission[ledger.TransferSpec]], now: datetime
    ) -> list[Result]:
        """Each transfer as if sent alone: a member's debit of another party's account is
        refused, the others applied together as independent transfers."""
        results: list[Result | None] = []
        for submission in batch:
            spec = submission.item
            failures = await foreign_debits(
                session, submission.principal, [(spec.id, spec.debit_account_id)]
            )
            results.append(ledger.TransfersRefused.single(failures[0]) if failures else None)
        applying = [index for index, result in enumerate(results) if result is None]
        if applying:
            outcomes = await ledger.create_transfers_each(
                session, [batch[i].item for i in applying], now
            )
            for index, outcome in zip(applying, outcomes, strict=True):
                if outcome.failure is not None:
                    results[index] = ledger.TransfersRefused.single(outcome.failure)
                else:
                    assert outcome.view is not None
                    results[index] = (201 if outcome.created else 200, render(outcome.view))
        return [result for result in results if result is not None]

    return Coalescer(
        db,
        clock,
        action=ACTION,
        instance=lambda _spec: INSTANCE,
        apply=apply,
        batch_max=BATCH_MAX,
        lanes=LANES,
    )


async def submit_transfer(
    coalescer: TransferCoalescer,
    spec: ledger.TransferSpec,
    principal: Principal,
    request_id: str | None,
    idempotency_key: str | None,
    fingerprint: str,
) -> Answer:
    """One transfer, answered once the transaction it shares has committed. Two requests for
    one transfer id never share a transaction: the second is judged after the first."""
    return await coalescer.submit(
        spec,
        target=spec.id,
        group=None,
        marks=frozenset({("id", spec.id)}),
        principal=principal,
        request_id=request_id,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )
