"""Every table, imported in one place for Alembic and the readiness check."""

from exchange.assets.models import Asset, AssetOwner
from exchange.audit.models import AuditRecord
from exchange.auth.models import ApiKey
from exchange.bidding.models import Auction, AuctionBidder, Bid, Panelist, Score
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
from exchange.listings.models import Intent, Listing
from exchange.parties.models import Party
from exchange.settlement.models import (
    BankConfirmation,
    Contract,
    CreditEnhancement,
    Instalment,
    RewardPolicy,
    RoyaltyReport,
    Settlement,
)

__all__ = [
    "Account",
    "ApiKey",
    "Asset",
    "AssetOwner",
    "Auction",
    "AuctionBidder",
    "AuditRecord",
    "BankConfirmation",
    "Base",
    "Bid",
    "Consent",
    "Contract",
    "CreditEnhancement",
    "Deal",
    "DealTransition",
    "Demand",
    "Evidence",
    "FxRate",
    "Hold",
    "IdempotencyKey",
    "Instalment",
    "Intent",
    "Interest",
    "Listing",
    "MatchSet",
    "OutboxEvent",
    "Panelist",
    "Party",
    "RewardPolicy",
    "RightsCertificate",
    "RightsCheck",
    "RoyaltyReport",
    "Score",
    "Settlement",
    "Transfer",
    "Valuation",
]
