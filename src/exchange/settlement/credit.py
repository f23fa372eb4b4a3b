"""Credit enhancement (增信): guarantees, IP-pledge loans and insurance attached to a deal in
`awarded`, `contracted` or `settling`, each its own small machine
(applied → approved → active → released | claimed), every money move a ledger transfer:

- guarantee: active holds the guarantor's funds (a pending transfer into the deal's escrow);
  a claim posts the hold into escrow (the buyer missed an instalment); settlement voids it.
- pledge loan: active disburses the lender's funds into escrow for the buyer and registers the
  lender's pledge on the asset; repayments move buyer → lender; repaid in full, it is released
  and the pledge lifted.
- insurance: active moves the premium buyer → insurer; a claim pays the insured amount (at most
  what is outstanding) insurer → escrow.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.assets import service as assets
from exchange.db import for_update
from exchange.deals import service as deals
from exchange.deals.machine import DealState
from exchange.deals.models import Deal
from exchange.errors import Conflict, NotFound, Unprocessable, check_version
from exchange.events import emit
from exchange.ledger import service as ledger
from exchange.ledger.models import AccountCode
from exchange.listings.service import escrow_account_id
from exchange.parties.service import get_party, open_accounts, party_account_id
from exchange.settlement.escrow import outstanding
from exchange.settlement.models import (
    CreditEnhancement,
    EnhancementKind,
    EnhancementState,
)

ATTACHABLE_STATES = frozenset(
    {DealState.awarded.value, DealState.contracted.value, DealState.settling.value}
)


class CreditAction(StrEnum):
    approve = "approve"
    activate = "activate"
    claim = "claim"
    release = "release"


_S = EnhancementState
TRANSITIONS: dict[tuple[EnhancementState, CreditAction], EnhancementState] = {
    (_S.applied, CreditAction.approve): _S.approved,
    (_S.approved, CreditAction.activate): _S.active,
    (_S.active, CreditAction.claim): _S.claimed,
    (_S.active, CreditAction.release): _S.released,
}


def allowed_actions(state: EnhancementState) -> list[str]:
    return [action.value for (source, action) in TRANSITIONS if source is state]


class EnhancementNotAllowed(Conflict):
    code = "transition_not_allowed"
    title = "Action not allowed in this state"


@dataclass(frozen=True, slots=True)
class EnhancementSpec:
    kind: EnhancementKind
    provider_party_id: str
    amount: int
    premium: int | None


async def apply(
    session: AsyncSession, deal_id: str, spec: EnhancementSpec, now: datetime
) -> CreditEnhancement:
    deal = await deals.get_deal(session, deal_id, lock=True)
    if deal.state not in ATTACHABLE_STATES:
        raise Conflict(
            f"deal {deal_id} is {deal.state}: credit enhancements attach to awarded, "
            "contracted or settling deals",
            state=deal.state,
        )
    if await get_party(session, spec.provider_party_id) is None:
        raise Unprocessable(
            f"no party {spec.provider_party_id}",
            errors=[{"field": "provider_party_id", "code": "party_not_found"}],
        )
    if (spec.kind is EnhancementKind.insurance) != (spec.premium is not None):
        raise Unprocessable(
            "an insurance has a premium, and only an insurance",
            errors=[{"field": "premium", "code": "premium_for_insurance_only"}],
        )
    enhancement = CreditEnhancement(
        id="ce_" + secrets.token_hex(10),
        deal_id=deal_id,
        kind=spec.kind.value,
        state=EnhancementState.applied.value,
        provider_party_id=spec.provider_party_id,
        amount=spec.amount,
        premium=spec.premium,
        currency=deal.currency,
        pledge_registration_number=None,
        version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(enhancement)
    await session.flush()
    await _emit(session, enhancement, "applied", now)
    return enhancement


async def get(
    session: AsyncSession, enhancement_id: str, *, lock: bool = False
) -> CreditEnhancement:
    query = select(CreditEnhancement).where(CreditEnhancement.id == enhancement_id)
    if lock:
        query = for_update(session, query)
    found = (await session.scalars(query)).first()
    if found is None:
        raise NotFound(f"no credit enhancement {enhancement_id}")
    return found


async def of_deal(session: AsyncSession, deal_id: str) -> list[CreditEnhancement]:
    query = select(CreditEnhancement).where(CreditEnhancement.deal_id == deal_id)
    return list((await session.scalars(query.order_by(CreditEnhancement.created_at))).all())


async def act(
    session: AsyncSession,
    enhancement_id: str,
    action: CreditAction,
    now: datetime,
    *,
    if_match: int | None = None,
    pledge_registration_number: str | None = None,
) -> CreditEnhancement:
    """One action of the enhancement's machine, with its money move; 409 (nothing written)
    when the machine does not allow it."""
    found = await get(session, enhancement_id)
    deal = await deals.get_deal(session, found.deal_id, lock=True)  # deal before enhancement
    enhancement = await get(session, enhancement_id, lock=True)
    check_version(f"credit enhancement {enhancement_id}", enhancement.version, if_match)
    state = EnhancementState(enhancement.state)
    target = TRANSITIONS.get((state, action))
    if target is None:
        raise EnhancementNotAllowed(
            f"{action} is not allowed from {state}",
            state=state.value,
            allowed_actions=allowed_actions(state),
        )
    kind = EnhancementKind(enhancement.kind)
    if action in (CreditAction.activate, CreditAction.claim) and (
        deal.state not in ATTACHABLE_STATES
    ):
        raise Conflict(
            f"deal {deal.id} is {deal.state}: enhancements activate and pay in awarded, "
            "contracted or settling deals",
            state=deal.state,
        )
    if action is CreditAction.activate:
        await _activate(session, deal, enhancement, kind, now, pledge_registration_number)
    elif action is CreditAction.claim:
        await _claim(session, deal, enhancement, kind, now)
    elif action is CreditAction.release:
        await _release(session, deal, enhancement, kind, now)
    enhancement.state = target.value
    enhancement.version += 1
    enhancement.updated_at = now
    await session.flush()
    await _emit(session, enhancement, action.value, now)
    return enhancement


async def _move(
    session: AsyncSession,
    transfer_id: str,
    debit: str,
    credit: str,
    amount: int,
    currency: str,
    code: str,
    deal_id: str,
    now: datetime,
    *,
    pending: bool = False,
) -> None:
    await ledger.create_transfer(
        session,
        ledger.TransferSpec(
            id=transfer_id,
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            currency=currency,
            code=code,
            pending=pending,
            reference=deal_id,
        ),
        now,
    )


def hold_id(enhancement: CreditEnhancement) -> str:
    """A guarantee's hold on the guarantor's funds (its ledger transfer id)."""
    return f"{enhancement.id}.hold"


def _available(party_id: str, currency: str) -> str:
    return party_account_id(party_id, AccountCode.available, currency)


async def _activate(
    session: AsyncSession,
    deal: Deal,
    enhancement: CreditEnhancement,
    kind: EnhancementKind,
    now: datetime,
    pledge_registration_number: str | None,
) -> None:
    currency = enhancement.currency
    escrow = escrow_account_id(deal.id, currency)
    provider = enhancement.provider_party_id
    assert deal.buyer_party_id is not None
    await open_accounts(session, provider, currency, now)
    if kind is EnhancementKind.guarantee:
        await _move(
            session,
            hold_id(enhancement),
            _available(provider, currency),
            escrow,
            enhancement.amount,
            currency,
            "guarantee_hold",
            deal.id,
            now,
            pending=True,
        )
    elif kind is EnhancementKind.pledge_loan:
        if pledge_registration_number is None:
            raise Unprocessable(
                "a pledge loan is activated with its pledge's registration number",
                errors=[{"field": "pledge_registration_number", "code": "missing"}],
            )
        lacking = await outstanding(session, deal)
        if enhancement.amount > lacking:
            raise Conflict(
                f"the loan of {enhancement.amount} would bring escrow past the price: "
                f"{lacking} is outstanding",
                outstanding=lacking,
            )
        transfer_id = f"{enhancement.id}.disburse"
        await _move(
            session,
            transfer_id,
            _available(provider, currency),
            escrow,
            enhancement.amount,
            currency,
            "loan_disbursement",
            deal.id,
            now,
        )
        enhancement.pledge_registration_number = pledge_registration_number
        await assets.set_pledge(
            session,
            deal.asset_id,
            pledgee_party_id=provider,
            registration_number=pledge_registration_number,
            present=True,
            now=now,
        )
    else:
        assert enhancement.premium is not None
        await open_accounts(session, deal.buyer_party_id, currency, now)
        await _move(
            session,
            f"{enhancement.id}.premium",
            _available(deal.buyer_party_id, currency),
            _available(provider, currency),
            enhancement.premium,
            currency,
            "insurance_premium",
            deal.id,
            now,
        )


async def _claim(
    session: AsyncSession,
    deal: Deal,
    enhancement: CreditEnhancement,
    kind: EnhancementKind,
    now: datetime,
) -> None:
    currency = enhancement.currency
    lacking = await outstanding(session, deal)
    if kind is not EnhancementKind.pledge_loan and lacking == 0:
        raise Conflict(f"deal {deal.id} has nothing outstanding: the claim pays nothing")
    if kind is EnhancementKind.guarantee:
        # The hold is posted up to what escrow lacks; the rest of it goes back to the guarantor.
        payout = min(enhancement.amount, lacking)
        await ledger.create_transfers(
            session,
            [ledger.ResolveSpec(hold_id(enhancement), post=True, amount=payout)],
            now,
        )
    elif kind is EnhancementKind.insurance:
        payout = min(enhancement.amount, lacking)
        transfer_id = f"{enhancement.id}.claim"
        await _move(
            session,
            transfer_id,
            _available(enhancement.provider_party_id, currency),
            escrow_account_id(deal.id, currency),
            payout,
            currency,
            "insurance_claim",
            deal.id,
            now,
        )
    else:
        raise Conflict("a pledge loan is not claimed through the exchange; it is repaid")


async def _release(
    session: AsyncSession,
    deal: Deal,
    enhancement: CreditEnhancement,
    kind: EnhancementKind,
    now: datetime,
) -> None:
    if kind is EnhancementKind.guarantee:
        await ledger.create_transfers(
            session, [ledger.ResolveSpec(hold_id(enhancement), post=False)], now
        )
    elif kind is EnhancementKind.pledge_loan:
        outstanding = enhancement.amount - await repaid(session, enhancement)
        if outstanding > 0:
            raise Conflict(
                f"the loan has {outstanding} outstanding: it is released once repaid",
                outstanding=outstanding,
            )
        assert enhancement.pledge_registration_number is not None
        await assets.set_pledge(
            session,
            deal.asset_id,
            pledgee_party_id=enhancement.provider_party_id,
            registration_number=enhancement.pledge_registration_number,
            present=False,
            now=now,
        )


async def repaid(session: AsyncSession, enhancement: CreditEnhancement) -> int:
    """What the buyer has repaid of a pledge loan: its repayment transfers, from the ledger."""
    total = 0
    for number in range(1, REPAYMENTS_MAX + 1):
        view = await ledger.get_transfer(session, f"{enhancement.id}.repay.{number}")
        if view is None:
            break
        total += view.amount
    return total


REPAYMENTS_MAX = 240


async def repay(
    session: AsyncSession, enhancement_id: str, amount: int, now: datetime
) -> CreditEnhancement:
    """The buyer repays part of a pledge loan (buyer → lender); repaid in full, the loan is
    released and its pledge lifted."""
    found = await get(session, enhancement_id)
    deal = await deals.get_deal(session, found.deal_id, lock=True)
    enhancement = await get(session, enhancement_id, lock=True)
    if enhancement.kind != EnhancementKind.pledge_loan.value:
        raise Conflict(f"{enhancement_id} is a {enhancement.kind}: only a loan is repaid")
    if enhancement.state != EnhancementState.active.value:
        raise EnhancementNotAllowed(
            f"the loan is {enhancement.state}: repayments are for an active loan",
            state=enhancement.state,
            allowed_actions=allowed_actions(EnhancementState(enhancement.state)),
        )
    done = await repaid(session, enhancement)
    outstanding = enhancement.amount - done
    if amount > outstanding:
        raise Conflict(
            f"{amount} is more than the {outstanding} outstanding", outstanding=outstanding
        )
    assert deal.buyer_party_id is not None
    number = 1
    while await ledger.get_transfer(session, f"{enhancement.id}.repay.{number}") is not None:
        number += 1
    if number > REPAYMENTS_MAX:
        raise Conflict(f"a loan takes at most {REPAYMENTS_MAX} repayments")
    currency = enhancement.currency
    await _move(
        session,
        f"{enhancement.id}.repay.{number}",
        _available(deal.buyer_party_id, currency),
        _available(enhancement.provider_party_id, currency),
        amount,
        currency,
        "loan_repayment",
        deal.id,
        now,
    )
    if amount == outstanding:
        return await act(session, enhancement_id, CreditAction.release, now)
    return enhancement


async def release_guarantees(session: AsyncSession, deal: Deal, now: datetime) -> None:
    """At settlement or default: every active guarantee of the deal is released (its hold
    voided)."""
    for enhancement in await of_deal(session, deal.id):
        if (
            enhancement.kind == EnhancementKind.guarantee.value
            and enhancement.state == EnhancementState.active.value
        ):
            await act(session, enhancement.id, CreditAction.release, now)


async def _emit(
    session: AsyncSession, enhancement: CreditEnhancement, action: str, now: datetime
) -> None:
    await emit(
        session,
        type=f"credit_enhancement.{action}",
        aggregate_type="credit_enhancement",
        aggregate_id=enhancement.id,
        version=enhancement.version,
        payload={
            "id": enhancement.id,
            "deal_id": enhancement.deal_id,
            "kind": enhancement.kind,
            "state": enhancement.state,
        },
        now=now,
    )
