"""Asset routes under /v1/assets. A member sees and changes only assets its party co-owns."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.assets import service as assets
from exchange.assets.schemas import (
    AssetIn,
    AssetOut,
    AssetPage,
    LicenceIn,
    OwnerOut,
    PledgeIn,
    bp_to_share,
)
from exchange.auth.service import Principal, Role
from exchange.deals import service as deals
from exchange.deals.machine import Actor
from exchange.errors import Forbidden, NotFound
from exchange.schemas import REFERENCE_ID_PATTERN
from exchange.web import (
    PrefixedRouter,
    ServicesDep,
    actor_of,
    decode_cursor,
    encode_cursor,
    etagged,
    execute,
    if_match_version,
    problems,
    require,
)

router = PrefixedRouter(prefix="/v1/assets", tags=["assets"])

Writer = Annotated[Principal, Depends(require(Role.operator, Role.admin, Role.member))]
Reader = Annotated[
    Principal, Depends(require(Role.operator, Role.admin, Role.auditor, Role.member))
]
AssetIdPath = Annotated[str, Path(pattern=REFERENCE_ID_PATTERN)]


def asset_out(record: assets.AssetRecord) -> AssetOut:
    asset = record.asset
    return AssetOut(
        id=asset.id,
        kind=asset.kind,
        title_zh=asset.title_zh,
        title_en=asset.title_en,
        abstract_zh=asset.abstract_zh,
        abstract_en=asset.abstract_en,
        application_number=asset.application_number,
        registration_number=asset.registration_number,
        ipc=record.ipc,
        legal_status=asset.legal_status,
        filing_date=asset.filing_date,
        expiry_date=asset.expiry_date,
        trl=asset.trl,
        public_funded=asset.public_funded,
        export_control=asset.export_control,
        owners=[
            OwnerOut(party_id=p, share=bp_to_share(bp)) for p, bp in sorted(record.owners.items())
        ],
        licences=[LicenceIn.model_validate(item) for item in record.licences],
        pledges=[PledgeIn.model_validate(item) for item in record.pledges],
        version=asset.version,
        created_at=asset.created_at,
        updated_at=asset.updated_at,
    )


def _member_owns(principal: Principal, owners: dict[str, int] | list[str]) -> bool:
    return principal.role is not Role.member or principal.party_id in owners


async def _visible(
    session: AsyncSession, principal: Principal, asset_id: str
) -> assets.AssetRecord:
    record = await assets.get_asset(session, asset_id)
    if not _member_owns(principal, record.owners):
        raise NotFound(f"no asset {asset_id}")
    return record


@router.post("", status_code=201, response_model=AssetOut, responses=problems(422))
async def register_asset(
    body: AssetIn, request: Request, app: ServicesDep, principal: Writer
) -> Response:
    """Register a technology asset with its owners (shares summing to 100%) and encumbrances."""
    if not _member_owns(principal, [o.party_id for o in body.owners]):
        raise Forbidden("a member registers only assets its own party co-owns")
    asset_id = body.id or "ast_" + secrets.token_hex(10)

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        record = await assets.create_asset(
            session, asset_id, body, principal.party_id, app.clock.now()
        )
        return 201, asset_out(record)

    return await execute(
        request, app, principal, action="asset.register", target=asset_id, work=work, etag=True
    )


@router.get("", response_model=AssetPage, responses=problems(422))
async def list_assets(
    app: ServicesDep,
    principal: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> AssetPage:
    after = decode_cursor(cursor, str)
    owner = principal.party_id if principal.role is Role.member else None
    found = await app.db.read(
        lambda s: assets.list_assets(s, owner_party_id=owner, after_id=after, limit=limit)
    )
    next_cursor = encode_cursor(found[-1].asset.id) if len(found) == limit else None
    return AssetPage(items=[asset_out(r) for r in found], next_cursor=next_cursor)


@router.get("/{asset_id}", response_model=AssetOut, responses=problems(404))
async def get_asset(asset_id: AssetIdPath, app: ServicesDep, principal: Reader) -> JSONResponse:
    record = await app.db.read(lambda s: _visible(s, principal, asset_id))
    return etagged(asset_out(record))


@router.put("/{asset_id}", response_model=AssetOut, responses=problems(404, 409, 412))
async def replace_asset(
    asset_id: AssetIdPath, body: AssetIn, request: Request, app: ServicesDep, principal: Writer
) -> Response:
    """Replace the asset's record (send `If-Match` with its ETag). A change to its rights —
    owners, legal status, dates, licences, pledges, export class — sends every deal confirmed
    on the old rights back to `rights_review`."""
    if_match = if_match_version(request)
    if body.id not in (None, asset_id):
        raise Forbidden("the id of an asset does not change")

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        await _visible(session, principal, asset_id)
        if not _member_owns(principal, [o.party_id for o in body.owners]):
            raise Forbidden("a member cannot give away its party's whole share this way")
        now = app.clock.now()
        record, rights_changed = await assets.update_asset(session, asset_id, body, if_match, now)
        if rights_changed:
            ctx = deals.ActorContext(
                Actor.system, principal.key_id, actor_of(principal).request_id, now
            )
            await deals.reopen_for_asset(session, asset_id, ctx)
        return 200, asset_out(record)

    return await execute(
        request, app, principal, action="asset.replace", target=asset_id, work=work, etag=True
    )
