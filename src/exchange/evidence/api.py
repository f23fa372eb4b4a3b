"""Evidence routes: upload a document (raw bytes) and read it back by its SHA-256."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import Depends, Header, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth.service import Principal, Role
from exchange.errors import NotFound, Unprocessable
from exchange.evidence import service as evidence
from exchange.web import PrefixedRouter, ServicesDep, execute, problems, require

router = PrefixedRouter(prefix="/v1/evidence", tags=["evidence"])
UPLOAD_MEDIA_TYPES = (
    "application/pdf",
    "application/octet-stream",
    "image/png",
    "image/jpeg",
    "text/plain",
)


class EvidenceOut(BaseModel):
    sha256: str
    size_bytes: int
    media_type: str
    filename: str | None
    uploaded_at: datetime


def _root(app: ServicesDep) -> FilePath:
    return FilePath(app.settings.evidence_dir)


@router.post(
    "",
    status_code=201,
    response_model=EvidenceOut,
    responses={
        200: {"model": EvidenceOut, "description": "The same bytes were stored before"},
        **problems(),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in UPLOAD_MEDIA_TYPES
            },
        }
    },
)
async def upload(
    request: Request,
    app: ServicesDep,
    principal: Annotated[Principal, Depends(require(Role.operator, Role.admin, Role.member))],
    filename: Annotated[str | None, Header(alias="X-Filename", max_length=200)] = None,
) -> Response:
    """Store a document (the request body, as sent) under its SHA-256; rights checks and
    consents cite it by that hash. Idempotent: the same bytes answer 200."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in UPLOAD_MEDIA_TYPES:
        raise Unprocessable(
            f"Content-Type must be one of {', '.join(UPLOAD_MEDIA_TYPES)}",
            errors=[{"field": "Content-Type", "code": "unsupported"}],
        )
    content = await request.body()
    if not content:
        raise Unprocessable("the document is empty", errors=[{"field": "body", "code": "empty"}])

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        stored, created = await evidence.store(
            session,
            _root(app),
            content,
            media_type=media_type,
            filename=filename,
            key_id=principal.key_id,
            party_id=principal.party_id,
            now=app.clock.now(),
        )
        return (201 if created else 200), EvidenceOut.model_validate(stored, from_attributes=True)

    return await execute(request, app, principal, action="evidence.upload", target=None, work=work)


@router.get(
    "/{sha256}", responses={200: {"content": {"application/octet-stream": {}}}, **problems(404)}
)
async def download(
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    app: ServicesDep,
    principal: Annotated[
        Principal, Depends(require(Role.operator, Role.admin, Role.auditor, Role.member))
    ],
) -> Response:
    """The document's bytes. A member reads only what its own party uploaded."""
    found = await app.db.read(lambda s: evidence.get(s, sha256))
    if found is None or (
        principal.role is Role.member and found.uploaded_by_party_id != principal.party_id
    ):
        raise NotFound(f"no evidence {sha256}")
    content = await evidence.read(_root(app), sha256)
    return Response(content, media_type=found.media_type)
