"""Liveness and readiness: /healthz (alive), /readyz (database reachable, migrations at head)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.config import get_settings
from exchange.web import ServicesDep

router = APIRouter(tags=["health"])
SOURCE_MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    location = get_settings().migrations_dir or str(SOURCE_MIGRATIONS_DIR)
    config.set_main_option("script_location", location)
    if url is not None:
        config.set_main_option("sqlalchemy.url", url)
    return config


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready"}})
async def readyz(app: ServicesDep) -> JSONResponse:
    async def current(session: AsyncSession) -> str | None:
        result = await session.execute(text("SELECT version_num FROM alembic_version"))
        return result.scalar_one_or_none()

    try:
        revision = await app.db.read(current)
    except (SQLAlchemyError, OSError) as error:
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable", "detail": type(error).__name__},
            status_code=503,
        )
    head = head_revision()
    ready = revision == head
    return JSONResponse(
        {
            "status": "ok" if ready else "unavailable",
            "database": "ok",
            "revision": revision,
            "head": head,
        },
        status_code=200 if ready else 503,
    )
