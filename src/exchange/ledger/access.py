"""Object-level authorisation over the ledger, for the API: a member sees and moves only its own
party's money; anything else is "not found" to it, never "forbidden", so it learns nothing of
other parties."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth.service import Principal, Role
from exchange.ledger import service as ledger
from exchange.ledger.models import Account, OwnerType


def is_own(principal: Principal, account: Account) -> bool:
    if principal.role is not Role.member:
        return True
    return account.owner_type == OwnerType.party and account.owner_id == principal.party_id


async def foreign_debits(
    session: AsyncSession, principal: Principal, debits: list[tuple[str, str]]
) -> list[ledger.Failure]:
    """A member's transfers (id, debit account) out of another party's account, refused as if
    that account did not exist."""
    if principal.role is not Role.member:
        return []
    failures = []
    for index, (transfer_id, account_id) in enumerate(debits):
        account = await ledger.get_account(session, account_id)
        if account is not None and not is_own(principal, account):
            failures.append(
                ledger.Failure(
                    index,
                    transfer_id,
                    "debit_account_not_found",
                    422,
                    "no such debit account",
                    ("debit_account_id",),
                )
            )
    return failures
