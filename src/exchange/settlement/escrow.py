"""What a deal's escrow holds and what its contract says is due, read from the ledger and the
contract (shared by settlement and credit enhancement)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.deals.models import Deal
from exchange.errors import NotFound
from exchange.ledger import service as ledger
from exchange.listings.service import escrow_account_id
from exchange.settlement.models import Contract, Instalment, Settlement


async def escrow_balance(session: AsyncSession, deal: Deal) -> int:
    """What the deal's escrow holds now (posted credits less posted debits)."""
    account = await ledger.get_account(session, escrow_account_id(deal.id, deal.currency))
    if account is None:
        return 0
    await session.refresh(account)  # totals are written outside the ORM
    return account.credits_posted - account.debits_posted


async def get_contract(session: AsyncSession, deal_id: str) -> Contract:
    found = (await session.scalars(select(Contract).where(Contract.deal_id == deal_id))).first()
    if found is None:
        raise NotFound(f"deal {deal_id} has no contract")
    return found


async def instalments(session: AsyncSession, contract_id: str) -> list[Instalment]:
    query = select(Instalment).where(Instalment.contract_id == contract_id)
    return list((await session.scalars(query.order_by(Instalment.number))).all())


async def released_total(session: AsyncSession, deal_id: str) -> int:
    """What settlement has paid out of the deal's escrow so far (its parts' totals)."""
    total = await session.scalar(
        select(func.coalesce(func.sum(Settlement.total), 0)).where(Settlement.deal_id == deal_id)
    )
    return int(total or 0)


async def outstanding(session: AsyncSession, deal: Deal) -> int:
    """What escrow still lacks of the price (the contract's, else the award's): what a payment,
    a loan or a claim may still bring in without paying more than the price. What settlement
    released already counts as paid."""
    contract = (await session.scalars(select(Contract).where(Contract.deal_id == deal.id))).first()
    price = contract.price if contract is not None else deal.award_price
    assert price is not None, "a deal with a buyer has an award price"
    return max(
        0, price - await released_total(session, deal.id) - await escrow_balance(session, deal)
    )
