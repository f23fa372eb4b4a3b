"""Asset service: register an asset with its owners and encumbrances; change it under optimistic
concurrency; a change to its rights sends every confirmed deal on it back to review."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.assets.models import Asset, AssetOwner
from exchange.assets.schemas import RIGHTS_FIELDS, AssetIn, share_to_bp
from exchange.db import for_update
from exchange.errors import NotFound, Unprocessable, check_version
from exchange.events import emit
from exchange.parties.models import Party


@dataclass(frozen=True, slots=True)
class AssetRecord:
    asset: Asset
    owners: dict[str, int]  # party id → basis points

    @property
    def licences(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = orjson.loads(self.asset.licences)
        return found

    @property
    def pledges(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = orjson.loads(self.asset.pledges)
        return found

    @property
    def ipc(self) -> list[str]:
        found: list[str] = orjson.loads(self.asset.ipc)
        return found


def _dump(items: Sequence[Any]) -> str:
    return orjson.dumps([item.model_dump(mode="json") for item in items]).decode()


async def _require_parties(session: AsyncSession, body: AssetIn) -> None:
    wanted = {o.party_id for o in body.owners} | {p.pledgee_party_id for p in body.pledges}
    found = set((await session.scalars(select(Party.id).where(Party.id.in_(wanted)))).all())
    errors = [
        {"field": f"owners.{i}.party_id", "code": "party_not_found"}
        for i, owner in enumerate(body.owners)
        if owner.party_id not in found
    ] + [
        {"field": f"pledges.{i}.pledgee_party_id", "code": "party_not_found"}
        for i, pledge in enumerate(body.pledges)
        if pledge.pledgee_party_id not in found
    ]
    if errors:
        raise Unprocessable(f"unknown parties: {', '.join(sorted(wanted - found))}", errors=errors)


async def _require_unique_number(session: AsyncSession, number: str | None, asset_id: str) -> None:
    if number is None:
        return
    holder = (
        await session.scalars(select(Asset.id).where(Asset.application_number == number))
    ).first()
    if holder is not None and holder != asset_id:
        raise Unprocessable(
            f"application number {number} is already registered as asset {holder}",
            errors=[{"field": "application_number", "code": "taken"}],
        )


def _apply(asset: Asset, body: AssetIn) -> None:
    asset.kind = body.kind.value
    asset.title_zh = body.title_zh
    asset.title_en = body.title_en
    asset.abstract_zh = body.abstract_zh
    asset.abstract_en = body.abstract_en
    asset.application_number = body.application_number
    asset.registration_number = body.registration_number
    asset.ipc = orjson.dumps(body.ipc).decode()
    asset.legal_status = body.legal_status.value
    asset.filing_date = body.filing_date
    asset.expiry_date = body.expiry_date
    asset.trl = body.trl
    asset.public_funded = body.public_funded
    asset.export_control = body.export_control.value if body.export_control else None
    asset.licences = _dump(body.licences)
    asset.pledges = _dump(body.pledges)


async def create_asset(
    session: AsyncSession, asset_id: str, body: AssetIn, created_by: str | None, now: datetime
) -> AssetRecord:
    if await session.get(Asset, asset_id) is not None:
        raise Unprocessable(f"asset {asset_id} exists", errors=[{"field": "id", "code": "taken"}])
    await _require_parties(session, body)
    await _require_unique_number(session, body.application_number, asset_id)
    asset = Asset(
        id=asset_id, created_by_party_id=created_by, version=1, created_at=now, updated_at=now
    )
    _apply(asset, body)
    session.add(asset)
    await session.flush()
    owners = {o.party_id: share_to_bp(o.share) for o in body.owners}
    session.add_all(
        AssetOwner(asset_id=asset_id, party_id=party, share_bp=bp) for party, bp in owners.items()
    )
    await session.flush()
    await emit(
        session,
        type="asset.registered",
        aggregate_type="asset",
        aggregate_id=asset_id,
        version=1,
        payload={"id": asset_id, "kind": asset.kind},
        now=now,
    )
    return AssetRecord(asset, owners)


async def get_asset(session: AsyncSession, asset_id: str, *, lock: bool = False) -> AssetRecord:
    query = select(Asset).where(Asset.id == asset_id)
    if lock:
        query = for_update(session, query)
    asset = (await session.scalars(query)).first()
    if asset is None:
        raise NotFound(f"no asset {asset_id}")
    rows = await session.scalars(select(AssetOwner).where(AssetOwner.asset_id == asset_id))
    return AssetRecord(asset, {row.party_id: row.share_bp for row in rows.all()})


async def list_assets(
    session: AsyncSession, *, owner_party_id: str | None, after_id: str | None, limit: int
) -> list[AssetRecord]:
    query = select(Asset).order_by(Asset.id).limit(limit)
    if owner_party_id is not None:
        query = query.join(AssetOwner, AssetOwner.asset_id == Asset.id).where(
            AssetOwner.party_id == owner_party_id
        )
    if after_id is not None:
        query = query.where(Asset.id > after_id)
    assets = list((await session.scalars(query)).all())
    owners: dict[str, dict[str, int]] = {a.id: {} for a in assets}
    if assets:
        rows = await session.scalars(
            select(AssetOwner).where(AssetOwner.asset_id.in_(list(owners)))
        )
        for row in rows.all():
            owners[row.asset_id][row.party_id] = row.share_bp
    return [AssetRecord(a, owners[a.id]) for a in assets]


def _rights_snapshot(record: AssetRecord) -> dict[str, Any]:
    asset = record.asset
    return {
        "kind": asset.kind,
        "application_number": asset.application_number,
        "registration_number": asset.registration_number,
        "legal_status": asset.legal_status,
        "filing_date": asset.filing_date,
        "expiry_date": asset.expiry_date,
        "export_control": asset.export_control,
        "owners": dict(sorted(record.owners.items())),
        "licences": record.licences,
        "pledges": record.pledges,
    }


async def update_asset(
    session: AsyncSession, asset_id: str, body: AssetIn, if_match: int | None, now: datetime
) -> tuple[AssetRecord, bool]:
    """Replace the asset's fields; returns the record and whether its rights changed."""
    record = await get_asset(session, asset_id, lock=True)
    asset = record.asset
    check_version(f"asset {asset_id}", asset.version, if_match)
    await _require_parties(session, body)
    await _require_unique_number(session, body.application_number, asset_id)
    before = _rights_snapshot(record)
    _apply(asset, body)
    owners = {o.party_id: share_to_bp(o.share) for o in body.owners}
    await session.execute(delete(AssetOwner).where(AssetOwner.asset_id == asset_id))
    session.add_all(
        AssetOwner(asset_id=asset_id, party_id=party, share_bp=bp) for party, bp in owners.items()
    )
    updated = AssetRecord(asset, owners)
    after = _rights_snapshot(updated)
    changed = [field for field in RIGHTS_FIELDS if before[field] != after[field]]
    await _new_version(session, asset, changed, now)
    return updated, bool(changed)


async def set_pledge(
    session: AsyncSession,
    asset_id: str,
    *,
    pledgee_party_id: str,
    registration_number: str,
    present: bool,
    now: datetime,
) -> AssetRecord:
    """Add (or, `present=False`, remove) a registered pledge on the asset: an IP-pledge loan's
    encumbrance, which shows on the asset while the loan runs."""
    record = await get_asset(session, asset_id, lock=True)
    asset = record.asset
    pledge = {"pledgee_party_id": pledgee_party_id, "registration_number": registration_number}
    pledges = [p for p in record.pledges if p != pledge]
    if present:
        pledges.append(pledge)
    asset.pledges = orjson.dumps(pledges).decode()
    await _new_version(session, asset, ["pledges"], now)
    return record


async def _new_version(
    session: AsyncSession, asset: Asset, rights_changed: list[str], now: datetime
) -> None:
    """The changed asset's next version, written, and its `asset.updated` event naming the
    rights fields that changed."""
    asset.version += 1
    asset.updated_at = now
    await session.flush()
    await emit(
        session,
        type="asset.updated",
        aggregate_type="asset",
        aggregate_id=asset.id,
        version=asset.version,
        payload={"id": asset.id, "rights_changed": rights_changed},
        now=now,
    )
