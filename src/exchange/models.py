"""Every table, imported in one place for Alembic and the readiness check."""

from exchange.audit.models import AuditRecord
from exchange.auth.models import ApiKey
from exchange.db import Base
from exchange.idempotency import IdempotencyKey
from exchange.ledger.models import Account, FxRate, Hold, Transfer
from exchange.parties.models import Party

__all__ = [
    "Account",
    "ApiKey",
    "AuditRecord",
    "Base",
    "FxRate",
    "Hold",
    "IdempotencyKey",
    "Party",
    "Transfer",
]
