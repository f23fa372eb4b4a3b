"""Every table, imported in one place for Alembic and the readiness check."""

from exchange.assets.models import Asset, AssetOwner
from exchange.audit.models import AuditRecord
from exchange.auth.models import ApiKey
from exchange.db import Base
from exchange.deals.models import (
    Consent,
    Deal,
    DealTransition,
    RightsCertificate,
    RightsCheck,
    Valuation,
)
from exchange.docking.models import Demand, Interest, MatchSet
from exchange.events import OutboxEvent
from exchange.evidence.models import Evidence
from exchange.idempotency import IdempotencyKey
from exchange.ledger.models import Account, FxRate, Hold, Transfer
from exchange.parties.models import Party

__all__ = [
    "Account",
    "ApiKey",
    "Asset",
    "AssetOwner",
    "AuditRecord",
    "Base",
    "Consent",
    "Deal",
    "DealTransition",
    "Demand",
    "Evidence",
    "FxRate",
    "Hold",
    "IdempotencyKey",
    "Interest",
    "MatchSet",
    "OutboxEvent",
    "Party",
    "RightsCertificate",
    "RightsCheck",
    "Transfer",
    "Valuation",
]
