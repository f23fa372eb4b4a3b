"""What every router shares: the app's services, authentication, the unit of work around a
state-changing request (retries, Idempotency-Key, audit record), cursors and problem docs."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from asgi_correlation_id import correlation_id
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette._utils import get_route_path
from starlette.routing import Match
from starlette.types import Scope

from exchange import idempotency as idempotency_store
from exchange.audit import service as audit_service
from exchange.auth.service import Principal, Role, authenticate
from exchange.clock import Clock
from exchange.coalescer import Coalescer
from exchange.config import Settings
from exchange.db import Database
from exchange.docking.runtime import DockingRuntime
from exchange.errors import DomainError, Forbidden, InvalidCursor, Unauthenticated, Unprocessable
from exchange.ledger.coalescer import TransferCoalescer
from exchange.listings.service import BidSubmission

PROBLEM_MEDIA_TYPE = "application/problem+json"
AUTH_CACHE_ENTRIES_MAX = 10_000


class PrefixedRouter(APIRouter):
    """A domain's router, all of whose paths start with its prefix: a request for another path
    is answered "no match" at once. FastAPI matches a request against every route of every
    included router before it, in order (each a regular expression): a bid went through all
    the ledger's routes first."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = get_route_path(scope)
        if self.prefix and not (path == self.prefix or path.startswith(self.prefix + "/")):
            return Match.NONE, {}
        return super().matches(scope)


@dataclass
class AuthCache:
    """Recently authenticated tokens, so a hot client costs no key lookup per request.
    A revoked key stops working within `ttl_s`."""

    ttl_s: float
    entries: dict[str, tuple[Principal, float]] = field(default_factory=dict)

    def get(self, token: str) -> Principal | None:
        hit = self.entries.get(token)
        if hit is None or hit[1] < time.monotonic():
            return None
        return hit[0]

    def put(self, token: str, principal: Principal) -> None:
        if len(self.entries) >= AUTH_CACHE_ENTRIES_MAX:
            self.entries.clear()
        self.entries[token] = (principal, time.monotonic() + self.ttl_s)


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock
    auth_cache: AuthCache
    docking: DockingRuntime | None = None
    transfers: TransferCoalescer | None = None
    bids: Coalescer[BidSubmission] | None = None


def services_of(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def services(request: Request) -> Services:
    # async on purpose: FastAPI runs a plain `def` dependency on a thread pool, per request.
    return services_of(request)


ServicesDep = Annotated[Services, Depends(services)]


async def current_principal(request: Request) -> Principal:
    """The caller, authenticated by its API key (401 without a valid one). A dependency of its
    own, reading the services off the app: each nested dependency costs FastAPI a resolution
    on every request."""
    app = services_of(request)
    header = request.headers.get("authorization")
    if header is None:
        raise Unauthenticated("send an API key as 'Authorization: Bearer <key>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <key>'")
    token = token.strip()
    principal = app.auth_cache.get(token)
    if principal is None:
        principal = await app.db.read(lambda session: authenticate(session, token))
        if principal is None:
            raise Unauthenticated("the API key is unknown or revoked")
        app.auth_cache.put(token, principal)
    request.state.principal = principal
    return principal


async def optional_principal(request: Request) -> Principal | None:
    """The caller on a public route: None without an Authorization header; a bad key is still
    a 401 (it is a mistake worth saying)."""
    if request.headers.get("authorization") is None:
        return None
    return await current_principal(request)


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates and admits only `roles` (403 otherwise)."""

    async def dependency(request: Request) -> Principal:
        principal = await current_principal(request)
        if principal.role not in roles:
            raise Forbidden(f"the {principal.role} role may not do this")
        return principal

    return dependency


def acting_party(principal: Principal, given: str | None, field: str) -> str:
    """The party a request acts for: a member's own (naming another is forbidden), else the
    one the body names in `field`, which is then required."""
    if principal.role is Role.member:
        if given not in (None, principal.party_id):
            raise Forbidden(f"a member acts only for its own party, not for {field} {given}")
        assert principal.party_id is not None, "a member key has a party"
        return principal.party_id
    if given is None:
        raise Unprocessable(f"{field} is required", errors=[{"field": field, "code": "missing"}])
    return given


def etagged(model: BaseModel) -> JSONResponse:
    """A versioned resource, with its version as the ETag that `If-Match` names."""
    version = model.model_dump(include={"version"})["version"]
    return JSONResponse(model.model_dump(mode="json"), headers={"ETag": f'"{version}"'})


def actor_of(principal: Principal | None) -> audit_service.Actor:
    return audit_service.Actor(principal=principal, request_id=correlation_id.get())


Work = Callable[[AsyncSession], Awaitable[tuple[int, BaseModel]]]


async def execute(
    request: Request,
    app: Services,
    principal: Principal,
    *,
    action: str,
    target: str | None,
    work: Work,
    etag: bool = False,
) -> Response:
    """Run a state-changing request as one unit of work and answer with its JSON.

    The state change, the stored Idempotency-Key response and the audit record commit together;
    a refusal is audited in a transaction of its own after the unit rolled back."""
    key = idempotency_key_of(request)
    fingerprint = await fingerprint_of(request) if key is not None else ""
    actor = actor_of(principal)

    async def unit(session: AsyncSession) -> tuple[int, bytes]:
        now = app.clock.now()
        if key is not None:
            stored = await idempotency_store.replay(session, principal.key_id, key, fingerprint)
            if stored is not None:
                await audit_service.record(
                    session,
                    actor,
                    action=action,
                    target=target,
                    outcome="replayed",
                    status=stored[0],
                    at=now,
                )
                return stored
        status, model = await work(session)
        body = orjson.dumps(model.model_dump(mode="json"))
        if key is not None:
            await idempotency_store.remember(
                session, principal.key_id, key, fingerprint, status, body, now
            )
        await audit_service.record(
            session, actor, action=action, target=target, outcome="ok", status=status, at=now
        )
        return status, body

    request.state.audited = True  # this unit of work writes the request's audit record
    try:
        status, body = await app.db.run(unit)
    except DomainError as error:
        refusal = functools.partial(
            _record_refusal, app=app, actor=actor, action=action, target=target, error=error
        )
        await app.db.run(refusal)
        raise
    headers = {"ETag": f'"{orjson.loads(body)["version"]}"'} if etag else None
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def if_match_version(request: Request) -> int | None:
    """The version an `If-Match` header asks for (`"3"`, `W/"3"` or `3`), if any."""
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    value = header.strip().removeprefix("W/").strip('"')
    if not value.isdigit() or len(value) > 18:
        raise Unprocessable(
            'If-Match must carry an ETag this API issued, such as "3"',
            errors=[{"field": "If-Match", "code": "invalid"}],
        )
    return int(value)


MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def audit_refused_request(request: Request, status: int, code: str, detail: str) -> None:
    """Audit a state-changing request refused before its unit of work ran (a role or an owner
    check, an invalid body): every such request leaves a record, refused or done."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if (
        request.method not in MUTATING_METHODS
        or principal is None
        or getattr(request.state, "audited", False)
    ):
        return
    request.state.audited = True
    route = request.scope.get("route")
    action = f"{request.method} {getattr(route, 'path', request.url.path)}"
    target = next(iter(request.path_params.values()), None) if request.path_params else None
    app = services_of(request)
    await app.db.run(
        lambda session: audit_service.record(
            session,
            actor_of(principal),
            action=action[:64],
            target=target,
            outcome=code,
            status=status,
            at=app.clock.now(),
            detail=detail[:1000],
        )
    )


async def _record_refusal(
    session: AsyncSession,
    app: Services,
    actor: audit_service.Actor,
    action: str,
    target: str | None,
    error: DomainError,
) -> None:
    await audit_service.record(
        session,
        actor,
        action=action,
        target=target,
        outcome=error.code,
        status=error.status,
        at=app.clock.now(),
        detail=error.detail[:1000],
    )


def idempotency_key_of(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not (0 < len(key) <= idempotency_store.KEY_LENGTH_MAX and key.isprintable()):
        raise Unprocessable(
            f"Idempotency-Key must be 1 to {idempotency_store.KEY_LENGTH_MAX} printable characters",
            errors=[{"field": "Idempotency-Key", "code": "invalid"}],
        )
    return key


async def fingerprint_of(request: Request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode() + b" " + request.url.path.encode() + b"\n")
    digest.update(await request.body())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Cursors: opaque to clients, a keyset position inside.


def encode_cursor(position: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"k": position})).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: type) -> Any:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = orjson.loads(base64.urlsafe_b64decode(padded.encode()))["k"]
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        position = None
    if not isinstance(position, kind) or isinstance(position, bool):
        raise InvalidCursor(
            "cursor is not one this API issued", errors=[{"field": "cursor", "code": "invalid"}]
        )
    return position


# ---------------------------------------------------------------------------------------------
# OpenAPI: the problems a route may answer.


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}}
        for status in (401, 403, 413, 415, *statuses)
    }
