"""Ledger routes under /v1/ledger: parse, authorise, call the ledger service, shape the answer."""

from __future__ import annotations

import secrets
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth.service import Principal, Role
from exchange.errors import Forbidden, NotFound, Unprocessable
from exchange.ledger import service as ledger
from exchange.ledger.access import foreign_debits, is_own
from exchange.ledger.coalescer import submit_transfer
from exchange.ledger.models import Account, FxRate, OwnerType, TransferKind
from exchange.ledger.schemas import (
    AccountIn,
    AccountOut,
    AccountPage,
    BalanceOut,
    FxRateIn,
    FxRateOut,
    FxRatePage,
    FxTransferIn,
    FxTransferOut,
    ResolveIn,
    TransferBatchIn,
    TransferBatchOut,
    TransferIn,
    TransferOut,
    TransferPage,
    VerifyOut,
    VoidIn,
)
from exchange.money import Money
from exchange.parties.service import get_party
from exchange.schemas import REFERENCE_ID_PATTERN
from exchange.web import (
    PROBLEM_MEDIA_TYPE,
    PrefixedRouter,
    ServicesDep,
    actor_of,
    decode_cursor,
    encode_cursor,
    execute,
    fingerprint_of,
    idempotency_key_of,
    problems,
    require,
)

router = PrefixedRouter(prefix="/v1/ledger", tags=["ledger"])

Writer = Annotated[Principal, Depends(require(Role.operator, Role.admin, Role.member))]
Operator = Annotated[Principal, Depends(require(Role.operator, Role.admin))]
Reader = Annotated[
    Principal, Depends(require(Role.operator, Role.admin, Role.auditor, Role.member))
]
Verifier = Annotated[Principal, Depends(require(Role.operator, Role.admin, Role.auditor))]
AnyRole = Annotated[Principal, Depends(require(*Role))]
AccountIdPath = Annotated[str, Path(pattern=REFERENCE_ID_PATTERN)]
TransferIdPath = Annotated[str, Path(pattern=REFERENCE_ID_PATTERN)]
Limit = Annotated[int, Query(ge=1, le=500)]


# ---------------------------------------------------------------------------------------------
# Presenters


def account_out(account: Account) -> AccountOut:
    currency = account.currency
    owner = {"type": account.owner_type, "id": account.owner_id} if account.owner_type else None
    return AccountOut(
        id=account.id,
        currency=currency,
        code=account.code,
        owner=owner,
        flags={
            "debits_must_not_exceed_credits": account.debits_must_not_exceed_credits,
            "credits_must_not_exceed_debits": account.credits_must_not_exceed_debits,
        },
        debits_pending=Money.of(account.debits_pending, currency),
        debits_posted=Money.of(account.debits_posted, currency),
        credits_pending=Money.of(account.credits_pending, currency),
        credits_posted=Money.of(account.credits_posted, currency),
        created_at=account.created_at,
    )


def transfer_out(view: ledger.TransferView) -> TransferOut:
    return TransferOut(
        id=view.id,
        seq=view.seq,
        status=view.status,
        kind=view.kind.value,
        debit_account_id=view.debit_account_id,
        credit_account_id=view.credit_account_id,
        amount=Money.of(view.amount, view.currency),
        code=view.code,
        pending=view.kind is TransferKind.pending,
        pending_id=view.pending_id,
        timeout_s=view.timeout_s,
        expires_at=view.expires_at,
        resolved_by=view.resolved_by,
        reference=view.reference,
        fx_rate_id=view.fx_rate_id,
        timestamp=view.timestamp,
    )


def fx_rate_out(rate: FxRate) -> FxRateOut:
    return FxRateOut(
        id=rate.id,
        base_currency=rate.base_currency,
        quote_currency=rate.quote_currency,
        rate=rate.rate,
        recorded_at=rate.recorded_at,
    )


def _created(result: ledger.BatchResult) -> int:
    return 201 if result.created else 200


# ---------------------------------------------------------------------------------------------
# Object-level authorisation (exchange.ledger.access): other parties' money is "not found".


async def _visible_account(session: AsyncSession, principal: Principal, account_id: str) -> Account:
    account = await ledger.get_account(session, account_id)
    if account is None or not is_own(principal, account):
        raise ledger.AccountNotFound(f"no account {account_id}")
    return account


async def _check_member_debits(
    session: AsyncSession, principal: Principal, debits: list[tuple[str, str]]
) -> None:
    failures = await foreign_debits(session, principal, debits)
    if failures:
        raise ledger.TransfersRefused(failures)


def _spec(body: TransferIn) -> ledger.TransferSpec:
    return ledger.TransferSpec(
        id=body.id,
        debit_account_id=body.debit_account_id,
        credit_account_id=body.credit_account_id,
        amount=body.amount.minor(),
        currency=body.amount.currency,
        code=body.code,
        pending=body.pending,
        timeout_s=body.timeout_s,
        reference=body.reference,
    )


# ---------------------------------------------------------------------------------------------
# Accounts


@router.post(
    "/accounts",
    status_code=201,
    response_model=AccountOut,
    responses={
        200: {"model": AccountOut, "description": "Replay: the account exists as sent"},
        **problems(404, 409, 422),
    },
)
async def create_account(
    body: AccountIn, request: Request, app: ServicesDep, principal: Writer
) -> Response:
    """Open an account. Idempotent by `id`: the same fields again answer 200 with the account."""
    owner = body.owner
    if principal.role is Role.member and (
        owner is None or owner.type is not OwnerType.party or owner.id != principal.party_id
    ):
        raise Forbidden("a member opens accounts only for its own party")
    spec = ledger.AccountSpec(
        id=body.id or "acc_" + secrets.token_hex(12),
        currency=body.currency,
        code=body.code.value,
        owner_type=owner.type.value if owner else None,
        owner_id=owner.id if owner else None,
        debits_must_not_exceed_credits=body.flags.debits_must_not_exceed_credits,
        credits_must_not_exceed_debits=body.flags.credits_must_not_exceed_debits,
    )

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        owner_id = spec.owner_id
        if (
            spec.owner_type == OwnerType.party
            and owner_id
            and not await get_party(session, owner_id)
        ):
            raise NotFound(f"no party {spec.owner_id}", errors=[{"field": "owner.id"}])
        account, created = await ledger.create_account(session, spec, app.clock.now())
        return (201 if created else 200), account_out(account)

    return await execute(
        request, app, principal, action="ledger.account.create", target=spec.id, work=work
    )


@router.get("/accounts", response_model=AccountPage, responses=problems(422))
async def list_accounts(
    app: ServicesDep,
    principal: Reader,
    owner_type: OwnerType | None = None,
    owner_id: Annotated[str | None, Query(pattern=REFERENCE_ID_PATTERN)] = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> AccountPage:
    """Accounts in id order; a member sees only its own party's."""
    after = decode_cursor(cursor, str)
    if principal.role is Role.member:
        owner_type, owner_id = OwnerType.party, principal.party_id

    async def read(session: AsyncSession) -> list[Account]:
        return await ledger.list_accounts(
            session,
            owner_type=owner_type.value if owner_type else None,
            owner_id=owner_id,
            after_id=after,
            limit=limit,
        )

    accounts = await app.db.read(read)
    next_cursor = encode_cursor(accounts[-1].id) if len(accounts) == limit else None
    return AccountPage(items=[account_out(a) for a in accounts], next_cursor=next_cursor)


@router.get("/accounts/{account_id}", response_model=AccountOut, responses=problems(404))
async def get_account(account_id: AccountIdPath, app: ServicesDep, principal: Reader) -> AccountOut:
    account = await app.db.read(lambda s: _visible_account(s, principal, account_id))
    return account_out(account)


@router.get(
    "/accounts/{account_id}/balance", response_model=BalanceOut, responses=problems(404, 422)
)
async def get_balance(
    account_id: AccountIdPath,
    app: ServicesDep,
    principal: Reader,
    as_of: Annotated[datetime | None, Query(description="RFC 3339 instant")] = None,
) -> BalanceOut:
    """The four totals now, or as of any past instant."""
    if as_of is not None and as_of.tzinfo is None:
        raise Unprocessable(
            "as_of needs a time zone offset (RFC 3339)",
            errors=[{"field": "as_of", "code": "naive_datetime"}],
        )

    async def read(session: AsyncSession) -> ledger.Balance:
        account = await _visible_account(session, principal, account_id)
        return await ledger.balance(session, account, as_of, app.clock.now())

    found = await app.db.read(read)
    currency = found.currency
    totals = found.totals
    return BalanceOut(
        account_id=found.account_id,
        as_of=found.as_of,
        debits_pending=Money.of(totals.debits_pending, currency),
        debits_posted=Money.of(totals.debits_posted, currency),
        credits_pending=Money.of(totals.credits_pending, currency),
        credits_posted=Money.of(totals.credits_posted, currency),
    )


@router.get(
    "/accounts/{account_id}/transfers", response_model=TransferPage, responses=problems(404, 422)
)
async def list_account_transfers(
    account_id: AccountIdPath,
    app: ServicesDep,
    principal: Reader,
    limit: Limit = 100,
    cursor: str | None = None,
    code: Annotated[str | None, Query(max_length=32)] = None,
    reference: Annotated[str | None, Query(max_length=128)] = None,
    side: Literal["debit", "credit"] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> TransferPage:
    """The account's transfers in journal order, with filters; `next_cursor` pages on."""
    after = decode_cursor(cursor, int)
    filters = ledger.TransferFilter(
        code=code, reference=reference, since=since, until=until, side=side
    )

    async def read(session: AsyncSession) -> list[ledger.TransferView]:
        await _visible_account(session, principal, account_id)
        return await ledger.list_account_transfers(
            session, account_id, after_seq=after, limit=limit, filters=filters
        )

    views = await app.db.read(read)
    next_cursor = encode_cursor(views[-1].seq) if len(views) == limit else None
    return TransferPage(items=[transfer_out(v) for v in views], next_cursor=next_cursor)


# ---------------------------------------------------------------------------------------------
# Transfers


@router.post(
    "/transfers",
    status_code=201,
    response_model=TransferOut,
    responses={
        200: {"model": TransferOut, "description": "Replay of an existing transfer"},
        **problems(404, 409, 422),
    },
)
async def create_transfer(
    body: TransferIn, request: Request, app: ServicesDep, principal: Writer
) -> Response:
    """Move money, or hold it (`pending: true`). Idempotent by `id`. Concurrent requests share
    one transaction (each still applies or is refused on its own)."""
    key = idempotency_key_of(request)
    fingerprint = await fingerprint_of(request) if key is not None else ""
    request.state.audited = True  # the coalescer writes this request's audit record
    assert app.transfers is not None
    status, payload = await submit_transfer(
        app.transfers, _spec(body), principal, actor_of(principal).request_id, key, fingerprint
    )
    media_type = "application/json" if status < 400 else PROBLEM_MEDIA_TYPE
    return Response(payload, status_code=status, media_type=media_type)


@router.post(
    "/transfers/batch",
    status_code=201,
    response_model=TransferBatchOut,
    responses={
        200: {"model": TransferBatchOut, "description": "Replay of an existing batch"},
        **problems(404, 409, 422),
    },
)
async def create_transfer_batch(
    body: TransferBatchIn, request: Request, app: ServicesDep, principal: Writer
) -> Response:
    """A linked batch of up to 8,190 transfers: all apply or none; a refusal lists each failing
    transfer by `index` with its `code`."""
    specs = [_spec(item) for item in body.transfers]

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        await _check_member_debits(session, principal, [(s.id, s.debit_account_id) for s in specs])
        result = await ledger.create_transfers(session, specs, app.clock.now())
        return _created(result), TransferBatchOut(
            transfers=[transfer_out(v) for v in result.transfers]
        )

    return await execute(
        request, app, principal, action="ledger.transfer.batch", target=specs[0].id, work=work
    )


@router.get("/transfers/{transfer_id}", response_model=TransferOut, responses=problems(404))
async def get_transfer(
    transfer_id: TransferIdPath, app: ServicesDep, principal: Reader
) -> TransferOut:
    """A transfer; a hold past its timeout is voided as it is read."""
    view = await app.db.read(lambda s: _visible_transfer(s, principal, transfer_id))
    now = app.clock.now()
    if view.status == "pending" and view.expires_at is not None and view.expires_at <= now:
        await app.db.run(lambda s: ledger.expire_hold_if_due(s, transfer_id, app.clock.now()))
        view = await app.db.read(lambda s: _visible_transfer(s, principal, transfer_id))
    return transfer_out(view)


async def _visible_transfer(
    session: AsyncSession, principal: Principal, transfer_id: str
) -> ledger.TransferView:
    view = await ledger.get_transfer(session, transfer_id)
    if view is not None and principal.role is Role.member:
        accounts = [
            await ledger.get_account(session, account_id)
            for account_id in (view.debit_account_id, view.credit_account_id)
        ]
        if not any(a is not None and is_own(principal, a) for a in accounts):
            view = None
    if view is None:
        raise NotFound(f"no transfer {transfer_id}")
    return view


async def _resolve(
    request: Request,
    app: ServicesDep,
    principal: Principal,
    spec: ledger.ResolveSpec,
    action: str,
) -> Response:
    # A hold past its timeout is voided first, in a unit of its own, so the refusal that follows
    # describes a state that is committed.
    await app.db.run(lambda s: ledger.expire_hold_if_due(s, spec.pending_id, app.clock.now()))

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        result = await ledger.create_transfer(session, spec, app.clock.now())
        return _created(result), transfer_out(result.transfers[0])

    return await execute(request, app, principal, action=action, target=spec.pending_id, work=work)


@router.post(
    "/transfers/{transfer_id}/post",
    status_code=201,
    response_model=TransferOut,
    responses={200: {"model": TransferOut, "description": "Replay"}, **problems(404, 409, 422)},
)
async def post_pending(
    transfer_id: TransferIdPath,
    request: Request,
    app: ServicesDep,
    principal: Operator,
    body: ResolveIn | None = None,
) -> Response:
    """Post a hold: all of it, or `amount` of it (the rest is released). A hold resolves once."""
    body = body or ResolveIn()
    if body.amount is not None:
        pending = await app.db.read(lambda s: ledger.get_transfer(s, transfer_id))
        if pending is not None and pending.currency != body.amount.currency:
            raise ledger.TransfersRefused(
                [
                    ledger.Failure(
                        0,
                        transfer_id,
                        "currency_mismatch",
                        422,
                        f"the hold is in {pending.currency}",
                        ("amount.currency",),
                    )
                ]
            )
    spec = ledger.ResolveSpec(
        pending_id=transfer_id,
        post=True,
        amount=body.amount.minor() if body.amount else None,
        id=body.id,
    )
    return await _resolve(request, app, principal, spec, "ledger.transfer.post")


@router.post(
    "/transfers/{transfer_id}/void",
    status_code=201,
    response_model=TransferOut,
    responses={200: {"model": TransferOut, "description": "Replay"}, **problems(404, 409, 422)},
)
async def void_pending(
    transfer_id: TransferIdPath,
    request: Request,
    app: ServicesDep,
    principal: Operator,
    body: VoidIn | None = None,
) -> Response:
    """Void a hold: release all of it. A hold resolves once."""
    spec = ledger.ResolveSpec(pending_id=transfer_id, post=False, id=(body or VoidIn()).id)
    return await _resolve(request, app, principal, spec, "ledger.transfer.void")


# ---------------------------------------------------------------------------------------------
# Verification and FX


@router.get("/verify", response_model=VerifyOut, responses=problems(422))
async def verify(
    app: ServicesDep,
    principal: Verifier,
    from_: Annotated[int | None, Query(alias="from", ge=1, description="first seq")] = None,
    to: Annotated[int | None, Query(ge=1, description="last seq")] = None,
) -> VerifyOut:
    """Recompute the journal's hash chain (all of it, or seq `from`..`to`); the whole journal is
    also replayed against every account's totals."""
    result = await app.db.read(lambda s: ledger.verify_chain(s, from_, to), snapshot=True)
    return VerifyOut(
        ok=result.ok,
        entries=result.entries,
        head_hash=result.head_hash,
        first_broken=result.first_broken,
        accounts_checked=result.accounts_checked,
    )


@router.post("/fx-rates", status_code=201, response_model=FxRateOut, responses=problems(409, 422))
async def record_fx_rate(
    body: FxRateIn, request: Request, app: ServicesDep, principal: Operator
) -> Response:
    """Record a rate: 1 `base_currency` = `rate` `quote_currency`."""
    rate_id = body.id or "fx_" + secrets.token_hex(12)

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        rate = await ledger.record_fx_rate(
            session,
            rate_id=rate_id,
            base_currency=body.base_currency,
            quote_currency=body.quote_currency,
            rate=Decimal(body.rate),
            recorded_by=principal.key_id,
            now=app.clock.now(),
        )
        return 201, fx_rate_out(rate)

    return await execute(
        request, app, principal, action="ledger.fx_rate.record", target=rate_id, work=work
    )


@router.get("/fx-rates", response_model=FxRatePage, responses=problems(422))
async def list_fx_rates(
    app: ServicesDep, principal: AnyRole, limit: Limit = 100, cursor: str | None = None
) -> FxRatePage:
    after = decode_cursor(cursor, str)
    rates = await app.db.read(lambda s: ledger.list_fx_rates(s, after_id=after, limit=limit))
    next_cursor = encode_cursor(rates[-1].id) if len(rates) == limit else None
    return FxRatePage(items=[fx_rate_out(r) for r in rates], next_cursor=next_cursor)


@router.post(
    "/fx-transfers",
    status_code=201,
    response_model=FxTransferOut,
    responses={200: {"model": FxTransferOut, "description": "Replay"}, **problems(404, 409, 422)},
)
async def create_fx_transfer(
    body: FxTransferIn, request: Request, app: ServicesDep, principal: Writer
) -> Response:
    """Move money across currencies: two linked transfers through the exchange's FX position
    accounts at a recorded rate (the latest for the pair, or `rate_id`), kept with both legs."""

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        await _check_member_debits(session, principal, [(body.id, body.debit_account_id)])
        result, rate = await ledger.create_fx_transfer(
            session,
            transfer_id=body.id,
            debit_account_id=body.debit_account_id,
            credit_account_id=body.credit_account_id,
            amount=body.amount.minor(),
            currency=body.amount.currency,
            code=body.code,
            reference=body.reference,
            rate_id=body.rate_id,
            now=app.clock.now(),
        )
        return _created(result), FxTransferOut(
            rate=fx_rate_out(rate), transfers=[transfer_out(v) for v in result.transfers]
        )

    return await execute(
        request, app, principal, action="ledger.fx_transfer.create", target=body.id, work=work
    )
