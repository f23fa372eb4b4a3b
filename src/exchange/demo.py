"""A small demo: two parties, their accounts, the exchange's accounts, a few transfers and keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.assets import service as assets
from exchange.assets.schemas import AssetIn
from exchange.auth.models import ApiKey
from exchange.auth.service import Role, create_key, revoke_key
from exchange.bidding import rules as bidding_rules
from exchange.clock import Clock
from exchange.db import Database
from exchange.deals import service as deals
from exchange.deals.machine import Actor, DealAction
from exchange.deals.rights import Check, RightsOffered
from exchange.evidence import service as evidence
from exchange.identifiers import uscc_check_character
from exchange.ledger import service as ledger
from exchange.ledger.models import AccountCode
from exchange.listings import service as listings
from exchange.parties.service import create_party, get_party, open_accounts, party_account_id
from exchange.pricing import rules as pricing

DEMO_KEY_PREFIX = "demo "
PARTIES = (
    (
        "demo-university",
        "Demo University Technology Transfer Centre",
        "university",
        "12310000425006117",
    ),
    ("demo-enterprise", "Demo Advanced Materials Co., Ltd.", "enterprise", "91310115MA1K4D6X5"),
)


@dataclass(frozen=True)
class DemoKey:
    role: str
    party_id: str | None
    token: str


async def seed(db: Database, clock: Clock) -> list[DemoKey]:
    """Create the demo data once; each run revokes the previous demo keys and prints new ones."""
    await db.run(lambda session: _seed_ledger(session, clock))
    return await db.run(lambda session: _fresh_keys(session, clock))


async def _seed_ledger(session: AsyncSession, clock: Clock) -> None:
    now = clock.now()
    for party_id, name, kind, uscc_body in PARTIES:
        if await get_party(session, party_id) is None:
            await create_party(
                session,
                party_id=party_id,
                name=name,
                kind=kind,
                now=now,
                uscc=uscc_body + uscc_check_character(uscc_body),
            )
        await ledger.create_account(
            session,
            ledger.AccountSpec(
                id=f"{party_id}-available-cny",
                currency="CNY",
                code="available",
                owner_type="party",
                owner_id=party_id,
                debits_must_not_exceed_credits=True,
            ),
            now,
        )
    for account_id, code in (
        ("exchange-clearing-cny", "external_clearing"),
        ("exchange-deposit-cny", "deposit"),
        ("exchange-fee-revenue-cny", "fee_revenue"),
    ):
        await ledger.create_account(
            session,
            ledger.AccountSpec(id=account_id, currency="CNY", code=code, owner_type="exchange"),
            now,
        )
    await ledger.create_transfers(
        session,
        [
            ledger.TransferSpec(
                "demo-fund-enterprise",
                "exchange-clearing-cny",
                "demo-enterprise-available-cny",
                500_000_000,
                "CNY",
                "funding",
            ),
            ledger.TransferSpec(
                "demo-deposit-hold",
                "demo-enterprise-available-cny",
                "exchange-deposit-cny",
                5_000_000,
                "CNY",
                "deposit",
                pending=True,
            ),
            ledger.TransferSpec(
                "demo-listing-fee",
                "demo-enterprise-available-cny",
                "exchange-fee-revenue-cny",
                80_000,
                "CNY",
                "fee",
            ),
        ],
        now,
    )


async def _fresh_keys(session: AsyncSession, clock: Clock) -> list[DemoKey]:
    now = clock.now()
    old = await session.scalars(
        select(ApiKey).where(ApiKey.name.startswith(DEMO_KEY_PREFIX), ApiKey.revoked_at.is_(None))
    )
    for key in old.all():
        await revoke_key(session, key.id, now)
    wanted = [
        (Role.admin, None),
        (Role.operator, None),
        (Role.auditor, None),
        *((Role.member, party_id) for party_id, *_ in PARTIES),
    ]
    keys = []
    for role, party_id in wanted:
        _, token = await create_key(
            session,
            role=role,
            party_id=party_id,
            name=f"{DEMO_KEY_PREFIX}{role}" + (f" {party_id}" if party_id else ""),
            now=now,
        )
        keys.append(DemoKey(role.value, party_id, token))
    return keys


# ---------------------------------------------------------------------------------------------
# An auction in bidding, walked there through the services (benchmarks, load tests, the demo)


@dataclass(frozen=True)
class SeededAuction:
    listing_id: str
    deal_id: str
    seller_party_id: str
    bidder_party_ids: list[str]
    start_price: int
    increment: int
    currency: str


async def seed_auction(
    session: AsyncSession,
    evidence_root: Path,
    *,
    name: str,
    bidders: int,
    now: datetime,
    method: str = "english",
    duration_s: int = 3600,
    start_price: int = 100_000_000,
    increment: int = 100,
    funds: int = 10**15,
) -> SeededAuction:
    """A deal of a fresh seller, walked through rights confirmation and pricing, listed with a
    one-working-day notice published a week before `now`, `bidders` funded parties registered
    with their deposits, and the notice ended at `now`: an auction open from `now` for
    `duration_s`. `name` prefixes every id, so runs do not collide."""
    ctx = deals.ActorContext(Actor.operator, None, None, now)
    seller = f"{name}-seller"
    await create_party(session, party_id=seller, name=f"{name} seller", kind="university", now=now)
    asset_body = AssetIn.model_validate(
        {
            "kind": "know_how",
            "title_en": f"{name}: a process",
            "legal_status": "unregistered",
            "trl": 6,
            "export_control": "free",
            "owners": [{"party_id": seller, "share": "100"}],
        }
    )
    await assets.create_asset(session, f"{name}-asset", asset_body, seller, now)
    deal_id = f"{name}-deal"
    spec = deals.DealSpec(
        f"{name}-asset", seller, RightsOffered.assignment, ["CN"], None, None, method, "CNY"
    )
    await deals.create_deal(session, deal_id, spec, ctx)
    await deals.perform(session, deal_id, DealAction.submit, ctx)
    stored, _ = await evidence.store(
        session,
        evidence_root,
        f"{name}: rights evidence".encode(),
        media_type="application/pdf",
        filename=None,
        key_id="seed",
        party_id=None,
        now=now,
    )
    for check in Check:
        await deals.record_check(
            session,
            deal_id,
            check=check,
            result="pass",
            evidence_hashes=[stored.sha256],
            note=None,
            ctx=ctx,
        )
    await deals.perform(session, deal_id, DealAction.confirm, ctx)
    valuation = pricing.value_by_cost(
        pricing.CostInputs(replacement_cost=start_price, obsolescence_rate="0"), "CNY"
    )
    recorded = await deals.record_valuation(session, deal_id, valuation, ctx)
    price = deals.PriceSpec(recorded.id, start_price, start_price, "CNY")
    await deals.perform(session, deal_id, DealAction.price, ctx, price=price)
    market = listings.ListingRules(notice_working_days_min=1)
    published = deals.ActorContext(Actor.operator, None, None, now - timedelta(days=7))
    terms = listings.ListingTerms(
        trade_method=method,
        currency="CNY",
        listing_price=start_price,
        reserve_price=start_price,
        deposit=100_000,
        increments=(bidding_rules.IncrementTier(0, increment),),
        eligibility=listings.Eligibility(),
        notice_working_days=1,
        extension_working_days=5,
        extensions_max=0,
        auction=listings.AuctionTerms(duration_s=duration_s, soft_close_s=0, hard_close_after_s=0),
    )
    listing = await listings.publish(session, deal_id, terms, market, published)
    parties = [f"{name}-bidder-{i}" for i in range(bidders)]
    for party_id in parties:
        await create_party(session, party_id=party_id, name=party_id, kind="enterprise", now=now)
        await open_accounts(session, party_id, "CNY", now)
        await _fund(session, party_id, funds, now)
        await listings.register_intent(session, listing.id, party_id, published.now)
    assert await listings.process_due(session, listing.id, now, market)
    return SeededAuction(listing.id, deal_id, seller, parties, start_price, increment, "CNY")


async def _fund(session: AsyncSession, party_id: str, amount: int, now: datetime) -> None:
    clearing = "exchange-clearing-cny"
    await ledger.create_account(
        session,
        ledger.AccountSpec(
            id=clearing, currency="CNY", code="external_clearing", owner_type="exchange"
        ),
        now,
    )
    await ledger.create_transfers(
        session,
        [
            ledger.TransferSpec(
                f"fund-{party_id}",
                clearing,
                party_account_id(party_id, AccountCode.available, "CNY"),
                amount,
                "CNY",
                "funding",
            )
        ],
        now,
    )
