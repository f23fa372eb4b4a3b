"""Settlement routes: the contract of an awarded deal, bank confirmations and payments into
escrow, the payout, default and the rights transfer, and institutions' reward policies. The
deal's parties (seller and buyer) see their deal; others get 404."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import orjson
from fastapi import APIRouter, Body, Depends, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.auth.service import Principal, Role
from exchange.deals import service as deals
from exchange.deals.api import deal_context, deal_out
from exchange.deals.machine import Actor
from exchange.deals.models import Deal
from exchange.errors import Conflict, NotFound, Unprocessable
from exchange.listings.calendar import EXCHANGE_TZ
from exchange.money import Money
from exchange.schemas import REFERENCE_ID_PATTERN
from exchange.settlement import credit, escrow, rules
from exchange.settlement import service as settlement
from exchange.settlement.models import (
    Contract,
    CreditEnhancement,
    EnhancementKind,
    EnhancementState,
    RoyaltyReport,
    Settlement,
)
from exchange.settlement.schemas import (
    BankConfirmationIn,
    BankConfirmationOut,
    ContractIn,
    ContractOut,
    CreditActionIn,
    CreditEnhancementIn,
    CreditEnhancementOut,
    DefaultIn,
    InstalmentOut,
    PaymentIn,
    PaymentOut,
    RepaymentIn,
    RewardPolicyIn,
    RewardPolicyOut,
    RightsTransferIn,
    RoyaltyReportIn,
    RoyaltyReportOut,
    SettlementOut,
    SettlementPartOut,
)
from exchange.web import (
    Services,
    ServicesDep,
    execute,
    if_match_version,
    problems,
    require,
)

router = APIRouter(tags=["settlement"])

Operator = Annotated[Principal, Depends(require(Role.operator, Role.admin))]
Party = Annotated[Principal, Depends(require(Role.operator, Role.admin, Role.member))]
Reader = Annotated[
    Principal, Depends(require(Role.operator, Role.admin, Role.auditor, Role.member))
]
IdPath = Annotated[str, Path(pattern=REFERENCE_ID_PATTERN)]


def market_of(app: Services) -> settlement.SettlementRules:
    return settlement.SettlementRules.of(app.settings)


async def _deal_for(
    session: AsyncSession, principal: Principal, deal_id: str, *, buyer: bool, seller: bool
) -> Deal:
    """The deal if the principal may act on it here: operators always; a member as its buyer
    or seller when allowed (otherwise, or for another party's deal, 404)."""
    deal = await deals.get_deal(session, deal_id)
    if principal.role is not Role.member:
        return deal
    if (buyer and principal.party_id == deal.buyer_party_id) or (
        seller and principal.party_id == deal.seller_party_id
    ):
        return deal
    raise NotFound(f"no deal {deal_id}")


def _in_deal_currency(deal: Deal, currency: str, field: str) -> None:
    """Amounts sent for a deal are in the deal's currency (422 naming `field` otherwise)."""
    if currency != deal.currency:
        raise Unprocessable(
            f"the deal is in {deal.currency}",
            errors=[{"field": field, "code": "currency_mismatch"}],
        )


async def contract_out(
    session: AsyncSession, deal: Deal, contract: Contract, app: Services
) -> ContractOut:
    currency = contract.currency
    today = app.clock.now().astimezone(EXCHANGE_TZ).date()
    owed = await settlement.dues(session, deal, contract, today)
    return ContractOut(
        id=contract.id,
        deal_id=contract.deal_id,
        contract_type=contract.contract_type,
        payment_shape=contract.payment_shape,
        seller_party_id=contract.seller_party_id,
        buyer_party_id=contract.buyer_party_id,
        price=Money.of(contract.price, currency),
        settlement_currency=contract.settlement_currency,
        fx_rate_id=contract.fx_rate_id,
        royalty_rate=contract.royalty_rate,
        royalty_trigger_date=contract.royalty_trigger_date,
        registration_number=contract.registration_number,
        schedule=[
            InstalmentOut(
                number=i.number,
                due_date=i.due_date,
                amount=Money.of(i.amount, currency),
                milestone=i.milestone,
            )
            for i in await escrow.instalments(session, contract.id)
        ],
        in_escrow=Money.of(owed.in_escrow, currency),
        due_now=Money.of(owed.due_now, currency),
        outstanding=Money.of(owed.outstanding, currency),
        signed_at=contract.signed_at,
    )


@router.post(
    "/v1/deals/{deal_id}/contract",
    status_code=201,
    response_model=ContractOut,
    responses=problems(404, 409, 422),
)
async def sign_contract(
    deal_id: IdPath, body: ContractIn, request: Request, app: ServicesDep, principal: Party
) -> Response:
    """Sign the technology contract of an awarded deal (`sign_contract`), within the deadline
    after the award: its price is the award price; the schedule sums to it; instalments keep the
    rules (at least 30% within 5 working days, the rest within a year)."""
    spec = settlement.ContractSpec(
        contract_type=body.contract_type.value,
        payment_shape=body.payment_shape,
        schedule=[
            rules.Instalment(i.due_date, i.amount.minor(), i.milestone) for i in body.schedule
        ],
        royalty_rate=body.royalty_rate,
        royalty_trigger_date=body.royalty_trigger_date,
        registration_number=body.registration_number,
        settlement_currency=body.settlement_currency,
        fx_rate_id=body.fx_rate_id,
    )

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        deal = await _deal_for(session, principal, deal_id, buyer=False, seller=True)
        actor = Actor.seller if principal.role is Role.member else Actor.operator
        _in_deal_currency(deal, body.schedule[0].amount.currency, "schedule[0].amount.currency")
        contract = await settlement.sign_contract(
            session, deal_id, spec, market_of(app), deal_context(principal, actor, app.clock.now())
        )
        return 201, await contract_out(session, deal, contract, app)

    return await execute(
        request, app, principal, action="deal.sign_contract", target=deal_id, work=work
    )


@router.get("/v1/deals/{deal_id}/contract", response_model=ContractOut, responses=problems(404))
async def get_contract(deal_id: IdPath, app: ServicesDep, principal: Reader) -> ContractOut:
    """The contract with its schedule and what escrow holds, what is due now and outstanding."""

    async def read(session: AsyncSession) -> ContractOut:
        deal = await _deal_for(session, principal, deal_id, buyer=True, seller=True)
        return await contract_out(session, deal, await escrow.get_contract(session, deal_id), app)

    return await app.db.read(read)


@router.post(
    "/v1/deals/{deal_id}/bank-confirmations",
    status_code=201,
    response_model=BankConfirmationOut,
    responses=problems(404, 409, 422),
)
async def confirm_bank_funds(
    deal_id: IdPath,
    body: BankConfirmationIn,
    request: Request,
    app: ServicesDep,
    principal: Operator,
) -> Response:
    """The bank's callback (or an operator): the buyer's funds arrived; its available account is
    credited from external clearing. The bank's reference is the idempotency key: a second
    confirmation with it changes nothing (200, `created: false`)."""

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        confirmation, created = await settlement.confirm_bank_funds(
            session,
            deal_id,
            bank_reference=body.bank_reference,
            amount=body.amount.minor(),
            currency=body.amount.currency,
            ctx=deal_context(principal, Actor.operator, app.clock.now()),
        )
        return (201 if created else 200), BankConfirmationOut(
            bank_reference=confirmation.bank_reference,
            deal_id=confirmation.deal_id,
            party_id=confirmation.party_id,
            amount=Money.of(confirmation.amount, confirmation.currency),
            transfer_id=confirmation.transfer_id,
            at=confirmation.at,
            created=created,
        )

    return await execute(
        request, app, principal, action="deal.bank_confirmation", target=deal_id, work=work
    )


@router.post(
    "/v1/deals/{deal_id}/payments",
    status_code=201,
    response_model=PaymentOut,
    responses=problems(404, 409, 422),
)
async def pay(
    deal_id: IdPath, body: PaymentIn, request: Request, app: ServicesDep, principal: Party
) -> Response:
    """The buyer pays into the deal's escrow (any part of what is outstanding): 409
    `more_than_due` above it, `nothing_due` once paid in full."""

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        deal = await _deal_for(session, principal, deal_id, buyer=True, seller=False)
        _in_deal_currency(deal, body.amount.currency, "amount.currency")
        actor = Actor.operator if principal.role is not Role.member else Actor.seller
        payment = await settlement.pay(
            session, deal_id, body.amount.minor(), deal_context(principal, actor, app.clock.now())
        )
        contract = await escrow.get_contract(session, deal_id)
        held = await escrow.escrow_balance(session, deal)
        return 201, PaymentOut(
            transfer_id=payment.id,
            deal_id=deal_id,
            amount=Money.of(payment.amount, deal.currency),
            outstanding=Money.of(contract.price - held, deal.currency),
            at=payment.timestamp,
        )

    return await execute(request, app, principal, action="deal.pay", target=deal_id, work=work)


def settlement_out(parts: list[Settlement], contract: Contract) -> SettlementOut:
    currency = contract.currency
    assert parts
    return SettlementOut(
        deal_id=contract.deal_id,
        complete=sum(p.total for p in parts) == contract.price,
        total=Money.of(sum(p.total for p in parts), currency),
        fee=Money.of(sum(p.fee for p in parts), currency),
        reward_pool=Money.of(sum(p.reward_pool for p in parts), currency),
        legs=[leg for p in parts for leg in orjson.loads(p.legs)],
        fx_rate_id=contract.fx_rate_id,
        parts=[
            SettlementPartOut(
                part=p.part,
                total=Money.of(p.total, currency),
                fee=Money.of(p.fee, currency),
                reward_pool=Money.of(p.reward_pool, currency),
                legs=orjson.loads(p.legs),
                at=p.at,
            )
            for p in parts
        ],
    )


@router.post(
    "/v1/deals/{deal_id}/settlement",
    status_code=201,
    response_model=SettlementOut,
    responses=problems(404, 409),
)
async def settle(
    deal_id: IdPath, request: Request, app: ServicesDep, principal: Operator
) -> Response:
    """Settle now a deal whose escrow holds the full price (the worker does it by itself within
    a second): one linked batch to the seller (net), the exchange's fee and the inventors.
    Settling a settled deal answers 200 with the settlement, paying nothing again."""

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        deal = await deals.get_deal(session, deal_id)
        paid = await settlement.settle(session, deal_id, market_of(app), app.clock.now())
        parts = await settlement.settlements(session, deal_id)
        if not parts:
            raise Conflict(
                f"deal {deal_id} is {deal.state}: a deal settles in `settling` once its escrow "
                "holds the full price (or a milestone's part of it)",
                state=deal.state,
            )
        contract = await escrow.get_contract(session, deal_id)
        return (201 if paid is not None else 200), settlement_out(parts, contract)

    return await execute(request, app, principal, action="deal.settle", target=deal_id, work=work)


@router.get("/v1/deals/{deal_id}/settlement", response_model=SettlementOut, responses=problems(404))
async def get_settlement(deal_id: IdPath, app: ServicesDep, principal: Reader) -> SettlementOut:
    async def read(session: AsyncSession) -> SettlementOut:
        deal = await _deal_for(session, principal, deal_id, buyer=True, seller=True)
        parts = await settlement.get_settlement(session, deal_id)
        return settlement_out(parts, await escrow.get_contract(session, deal.id))

    return await app.db.read(read)


@router.post("/v1/deals/{deal_id}/actions/default", responses=problems(404, 409, 422))
async def declare_default(
    deal_id: IdPath, body: DefaultIn, request: Request, app: ServicesDep, principal: Operator
) -> Response:
    """Declare the buyer's default (`default`): the deposit is forfeited (to the seller, less the
    exchange's share); other funds in escrow go back to the buyer; the deal may be relisted."""

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        deal = await settlement.declare_default(
            session,
            deal_id,
            market_of(app),
            deal_context(principal, Actor.operator, app.clock.now()),
            body.reason,
        )
        return 200, deal_out(deal, frozenset({Actor.operator}))

    return await execute(
        request, app, principal, action="deal.default", target=deal_id, work=work, etag=True
    )


@router.post("/v1/deals/{deal_id}/actions/record_transfer", responses=problems(404, 409, 422))
async def record_transfer(
    deal_id: IdPath,
    body: RightsTransferIn,
    request: Request,
    app: ServicesDep,
    principal: Operator,
) -> Response:
    """Record the patent office's registration of the transfer or licence: the deal closes."""

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        deal = await settlement.record_transfer(
            session,
            deal_id,
            registration_number=body.registration_number,
            registered_on=body.registered_on,
            evidence_sha256=body.evidence_sha256,
            ctx=deal_context(principal, Actor.operator, app.clock.now()),
        )
        return 200, deal_out(deal, frozenset({Actor.operator}))

    return await execute(
        request, app, principal, action="deal.record_transfer", target=deal_id, work=work, etag=True
    )


@router.put(
    "/v1/parties/{party_id}/reward-policy",
    response_model=RewardPolicyOut,
    responses=problems(404, 422),
)
async def set_reward_policy(
    party_id: IdPath, body: RewardPolicyIn, request: Request, app: ServicesDep, principal: Operator
) -> Response:
    """An institution's inventor reward policy: its percentage of net proceeds and the
    inventors' shares (paid into their `reward` accounts at settlement)."""

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        row = await settlement.set_reward_policy(
            session,
            party_id,
            _bp(body.pool_pct),
            [(i.party_id, _bp(i.share_pct)) for i in body.inventors],
            app.clock.now(),
        )
        return 200, RewardPolicyOut(
            party_id=row.party_id,
            pool_pct=str(body.pool_pct),
            inventors=[
                {"party_id": i.party_id, "share_pct": str(i.share_pct)} for i in body.inventors
            ],
            version=row.version,
        )

    return await execute(
        request, app, principal, action="party.reward_policy", target=party_id, work=work
    )


def _bp(percent: Decimal) -> int:
    basis_points = percent * 100
    assert basis_points == basis_points.to_integral_value(), "two decimals at most"
    return int(basis_points)


# ---------------------------------------------------------------------------------------------
# Credit enhancement


async def enhancement_out(
    session: AsyncSession, enhancement: CreditEnhancement
) -> CreditEnhancementOut:
    currency = enhancement.currency
    loan = enhancement.kind == EnhancementKind.pledge_loan.value
    return CreditEnhancementOut(
        id=enhancement.id,
        deal_id=enhancement.deal_id,
        kind=enhancement.kind,
        state=enhancement.state,
        version=enhancement.version,
        allowed_actions=credit.allowed_actions(EnhancementState(enhancement.state)),
        provider_party_id=enhancement.provider_party_id,
        amount=Money.of(enhancement.amount, currency),
        premium=Money.of(enhancement.premium, currency) if enhancement.premium else None,
        repaid=Money.of(await credit.repaid(session, enhancement), currency) if loan else None,
        created_at=enhancement.created_at,
        updated_at=enhancement.updated_at,
    )


@router.post(
    "/v1/deals/{deal_id}/credit-enhancements",
    status_code=201,
    response_model=CreditEnhancementOut,
    responses=problems(404, 409, 422),
)
async def apply_for_enhancement(
    deal_id: IdPath,
    body: CreditEnhancementIn,
    request: Request,
    app: ServicesDep,
    principal: Party,
) -> Response:
    """Apply for a guarantee, an IP-pledge loan or an insurance on an awarded, contracted or
    settling deal (the buyer, or an operator)."""
    spec = credit.EnhancementSpec(
        kind=body.kind,
        provider_party_id=body.provider_party_id,
        amount=body.amount.minor(),
        premium=body.premium.minor() if body.premium else None,
    )

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        deal = await _deal_for(session, principal, deal_id, buyer=True, seller=False)
        _in_deal_currency(deal, body.amount.currency, "amount.currency")
        if body.premium is not None:
            _in_deal_currency(deal, body.premium.currency, "premium.currency")
        enhancement = await credit.apply(session, deal_id, spec, app.clock.now())
        return 201, await enhancement_out(session, enhancement)

    return await execute(
        request, app, principal, action="credit.apply", target=deal_id, work=work, etag=True
    )


@router.get(
    "/v1/deals/{deal_id}/credit-enhancements",
    response_model=list[CreditEnhancementOut],
    responses=problems(404),
)
async def list_enhancements(
    deal_id: IdPath, app: ServicesDep, principal: Reader
) -> list[CreditEnhancementOut]:
    async def read(session: AsyncSession) -> list[CreditEnhancementOut]:
        await _deal_for(session, principal, deal_id, buyer=True, seller=True)
        return [await enhancement_out(session, e) for e in await credit.of_deal(session, deal_id)]

    return await app.db.read(read)


async def _credit_act(
    request: Request,
    app: Services,
    principal: Principal,
    enhancement_id: str,
    action: credit.CreditAction,
    body: CreditActionIn | None = None,
) -> Response:
    if_match = if_match_version(request)

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        enhancement = await credit.act(
            session,
            enhancement_id,
            action,
            app.clock.now(),
            if_match=if_match,
            pledge_registration_number=body.pledge_registration_number if body else None,
        )
        return 200, await enhancement_out(session, enhancement)

    return await execute(
        request,
        app,
        principal,
        action=f"credit.{action}",
        target=enhancement_id,
        work=work,
        etag=True,
    )


CREDIT_DOC = (
    "The credit enhancement's machine: applied → approve → approved → activate → active → "
    "claim → claimed | release → released; 409 with `state` and `allowed_actions` otherwise."
)


@router.post(
    "/v1/credit-enhancements/{enhancement_id}/actions/approve",
    response_model=CreditEnhancementOut,
    responses=problems(404, 409, 412),
    description=CREDIT_DOC,
)
async def approve_enhancement(
    enhancement_id: IdPath, request: Request, app: ServicesDep, principal: Operator
) -> Response:
    """Approve an application."""
    return await _credit_act(request, app, principal, enhancement_id, credit.CreditAction.approve)


@router.post(
    "/v1/credit-enhancements/{enhancement_id}/actions/activate",
    response_model=CreditEnhancementOut,
    responses=problems(404, 409, 412, 422),
    description=CREDIT_DOC,
)
async def activate_enhancement(
    enhancement_id: IdPath,
    request: Request,
    app: ServicesDep,
    principal: Operator,
    body: Annotated[CreditActionIn | None, Body()] = None,
) -> Response:
    """Activate: a guarantee holds the guarantor's funds; a pledge loan disburses into escrow
    and registers the pledge on the asset; an insurance takes its premium from the buyer."""
    return await _credit_act(
        request, app, principal, enhancement_id, credit.CreditAction.activate, body
    )


@router.post(
    "/v1/credit-enhancements/{enhancement_id}/actions/claim",
    response_model=CreditEnhancementOut,
    responses=problems(404, 409, 412),
    description=CREDIT_DOC,
)
async def claim_enhancement(
    enhancement_id: IdPath, request: Request, app: ServicesDep, principal: Operator
) -> Response:
    """Claim: a guarantee's hold is posted into escrow; an insurance pays the insured amount
    (at most what is outstanding) into escrow."""
    return await _credit_act(request, app, principal, enhancement_id, credit.CreditAction.claim)


@router.post(
    "/v1/credit-enhancements/{enhancement_id}/actions/release",
    response_model=CreditEnhancementOut,
    responses=problems(404, 409, 412),
    description=CREDIT_DOC,
)
async def release_enhancement(
    enhancement_id: IdPath, request: Request, app: ServicesDep, principal: Operator
) -> Response:
    """Release: a guarantee's hold is voided; a repaid loan's pledge is lifted."""
    return await _credit_act(request, app, principal, enhancement_id, credit.CreditAction.release)


@router.post(
    "/v1/credit-enhancements/{enhancement_id}/repayments",
    response_model=CreditEnhancementOut,
    responses=problems(404, 409, 422),
)
async def repay_loan(
    enhancement_id: IdPath,
    body: RepaymentIn,
    request: Request,
    app: ServicesDep,
    principal: Party,
) -> Response:
    """The buyer repays (part of) a pledge loan to the lender; repaid in full, the loan is
    released and its pledge lifted."""

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        found = await credit.get(session, enhancement_id)
        await _deal_for(session, principal, found.deal_id, buyer=True, seller=False)
        enhancement = await credit.repay(
            session, enhancement_id, body.amount.minor(), app.clock.now()
        )
        return 200, await enhancement_out(session, enhancement)

    return await execute(
        request, app, principal, action="credit.repay", target=enhancement_id, work=work
    )


# ---------------------------------------------------------------------------------------------
# Royalties


def royalty_out(report: RoyaltyReport, currency: str) -> RoyaltyReportOut:
    return RoyaltyReportOut(
        deal_id=report.deal_id,
        period_start=report.period_start_date,
        period_end=report.period_end_date,
        revenue=Money.of(report.revenue, currency),
        royalty=Money.of(report.royalty, currency),
        legs=orjson.loads(report.legs),
        at=report.at,
    )


@router.post(
    "/v1/deals/{deal_id}/royalty-reports",
    status_code=201,
    response_model=RoyaltyReportOut,
    responses=problems(404, 409, 422),
)
async def report_royalty(
    deal_id: IdPath, body: RoyaltyReportIn, request: Request, app: ServicesDep, principal: Party
) -> Response:
    """A royalty or use-first-pay-later licence: the licensee (buyer) reports its revenue for a
    period after the trigger date; the royalty (revenue times the rate) is paid from its
    available account and out to the seller, the exchange and the inventors at once."""

    async def work(session: AsyncSession) -> tuple[int, BaseModel]:
        deal = await _deal_for(session, principal, deal_id, buyer=True, seller=False)
        _in_deal_currency(deal, body.revenue.currency, "revenue.currency")
        actor = Actor.operator if principal.role is not Role.member else Actor.seller
        report = await settlement.report_royalty(
            session,
            deal_id,
            period_start=body.period_start,
            period_end=body.period_end,
            revenue=body.revenue.minor(),
            market=market_of(app),
            ctx=deal_context(principal, actor, app.clock.now()),
        )
        return 201, royalty_out(report, deal.currency)

    return await execute(
        request, app, principal, action="deal.royalty_report", target=deal_id, work=work
    )


@router.get(
    "/v1/deals/{deal_id}/royalty-reports",
    response_model=list[RoyaltyReportOut],
    responses=problems(404),
)
async def list_royalty_reports(
    deal_id: IdPath, app: ServicesDep, principal: Reader
) -> list[RoyaltyReportOut]:
    async def read(session: AsyncSession) -> list[RoyaltyReportOut]:
        deal = await _deal_for(session, principal, deal_id, buyer=True, seller=True)
        return [
            royalty_out(r, deal.currency)
            for r in await settlement.royalty_reports(session, deal_id)
        ]

    return await app.db.read(read)
