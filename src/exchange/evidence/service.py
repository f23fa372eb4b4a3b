"""Evidence service: store bytes under their SHA-256 (written atomically, once), keep metadata."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.errors import Unprocessable
from exchange.evidence.models import Evidence


def path_of(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / sha256


def _write_once(root: Path, sha256: str, content: bytes) -> None:
    target = path_of(root, sha256)
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as temporary:
        temporary.write(content)
        temporary.flush()
        os.fsync(temporary.fileno())
    os.replace(temporary.name, target)


async def store(
    session: AsyncSession,
    root: Path,
    content: bytes,
    *,
    media_type: str,
    filename: str | None,
    key_id: str,
    party_id: str | None,
    now: datetime,
) -> tuple[Evidence, bool]:
    """Store a document; the same bytes again return the existing record (created False).
    The file is written before the row commits: a rolled-back upload leaves only an unreferenced
    file, which is harmless in a content-addressed store."""
    sha256 = hashlib.sha256(content).hexdigest()
    existing = await session.get(Evidence, sha256)
    if existing is not None:
        return existing, False
    await asyncio.to_thread(_write_once, root, sha256, content)
    evidence = Evidence(
        sha256=sha256,
        size_bytes=len(content),
        media_type=media_type,
        filename=filename,
        uploaded_by_key_id=key_id,
        uploaded_by_party_id=party_id,
        uploaded_at=now,
    )
    session.add(evidence)
    await session.flush()
    return evidence, True


async def get(session: AsyncSession, sha256: str) -> Evidence | None:
    return await session.get(Evidence, sha256)


async def read(root: Path, sha256: str) -> bytes:
    return await asyncio.to_thread(path_of(root, sha256).read_bytes)


async def require_known(session: AsyncSession, hashes: Iterable[str], field: str) -> None:
    """Refuse references to documents that were never uploaded."""
    wanted = sorted(set(hashes))
    if not wanted:
        return
    found = set(
        (await session.scalars(select(Evidence.sha256).where(Evidence.sha256.in_(wanted)))).all()
    )
    missing = [h for h in wanted if h not in found]
    if missing:
        raise Unprocessable(
            f"no uploaded evidence with SHA-256 {', '.join(missing)}",
            errors=[{"field": field, "code": "evidence_not_found", "sha256": h} for h in missing],
        )
