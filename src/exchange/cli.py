"""The command line: `python -m exchange serve | migrate | seed-demo | worker | keys ...`.
Every command uses the same settings as the service (DATABASE_URL, EXCHANGE_*)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
import uvicorn
from alembic import command
from sqlalchemy.ext.asyncio import AsyncSession

from exchange import demo, logs, worker
from exchange.auth.service import Role, create_key, list_keys, revoke_key
from exchange.clock import SystemClock
from exchange.config import get_settings
from exchange.db import Database
from exchange.health import alembic_config
from exchange.listings.service import ListingRules
from exchange.settlement.service import SettlementRules

app = typer.Typer(help="Technology exchange transaction engine.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: create, revoke, list.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
T = TypeVar("T")


def _with_db(work: Callable[[Database], Awaitable[T]]) -> T:
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_json)  # JSON lines on stderr, like the API

    async def run() -> T:
        db = Database(settings)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the API with uvicorn."""
    uvicorn.run(
        "exchange.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_config=None,
    )


@app.command()
def migrate() -> None:
    """Upgrade the database to the newest schema (Alembic head)."""
    command.upgrade(alembic_config(get_settings().database_url), "head")
    typer.echo("database at head")


@app.command("seed-demo")
def seed_demo() -> None:
    """Create demo parties, accounts and transfers, and print fresh demo API keys."""
    keys = _with_db(lambda db: demo.seed(db, SystemClock()))
    typer.echo("Demo API keys (send as 'Authorization: Bearer <key>'):")
    for key in keys:
        typer.echo(f"  {key.role:<9} {key.party_id or '-':<16} {key.token}")


@app.command("worker")
def run_worker() -> None:
    """Run the background worker alone (hold expiry, notices, auction closes, settlements),
    until interrupted."""
    settings = get_settings()
    market = ListingRules.of(settings)
    settlement_market = SettlementRules.of(settings)
    _with_db(
        lambda db: worker.run(
            db, SystemClock(), settings.worker_interval_s, market, settlement_market
        )
    )


@app.command("settle")
def settle() -> None:
    """Settle every fully paid deal once, print how many, and exit. Safe to kill at any point
    and to run again: a deal settles in one transaction, once."""
    settings = get_settings()
    market = SettlementRules.of(settings)
    done = _with_db(lambda db: worker.settle_due_once(db, SystemClock(), market))
    typer.echo(f"settled {done}")


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(help="The key's role.")],
    party: Annotated[str | None, typer.Option(help="The party of a member key.")] = None,
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")] = "",
) -> None:
    """Create a key; the key itself is printed alone on the last line, once."""

    async def work(db: Database) -> tuple[str, str]:
        async def unit(session: AsyncSession) -> tuple[str, str]:
            key, token = await create_key(
                session,
                role=role,
                party_id=party,
                name=name or f"{role} key",
                now=SystemClock().now(),
            )
            return key.id, token

        return await db.run(unit)

    key_id, token = _with_db(work)
    typer.echo(f"created {key_id} role={role} party={party or '-'}")
    typer.echo(token)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id (key_...).")]) -> None:
    """Revoke a key; it stops working within the auth cache's TTL."""
    _with_db(lambda db: db.run(lambda s: revoke_key(s, key_id, SystemClock().now())))
    typer.echo(f"revoked {key_id}")


@keys_app.command("list")
def keys_list() -> None:
    """List keys (never their secrets)."""
    keys = _with_db(lambda db: db.read(list_keys))
    for key in keys:
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        typer.echo(f"{key.id}  {key.role:<9} {key.party_id or '-':<16} {state:<18} {key.name}")


@app.command()
def openapi(
    output: Annotated[
        str | None, typer.Option(help="Write to this file (default: stdout).")
    ] = None,
) -> None:
    """Print the OpenAPI document generated from the app (what openapi/openapi.json holds)."""
    from exchange.app import create_app
    from exchange.openapi import render

    document = render(create_app())
    if output is None:
        typer.echo(document, nl=False)
    else:
        with open(output, "w", encoding="utf-8") as file:
            file.write(document)


@app.command("docking-rebuild")
def docking_rebuild() -> None:
    """Rebuild the docking index from the database: every API process rebuilds its own on its
    next refresh (an outbox event tells them); this command builds one too and reports it."""
    from exchange.docking.runtime import REBUILD_EVENT, DockingRuntime
    from exchange.events import emit

    async def work(db: Database) -> int:
        clock = SystemClock()
        await db.run(
            lambda s: emit(
                s,
                type=REBUILD_EVENT,
                aggregate_type="docking",
                aggregate_id="index",
                version=1,
                payload={},
                now=clock.now(),
            )
        )
        return await DockingRuntime(db, clock).rebuild()

    documents = _with_db(work)
    typer.echo(f"docking index rebuilt: {documents} documents; API processes rebuild theirs")
