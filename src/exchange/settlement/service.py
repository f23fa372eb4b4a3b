"""Settlement service (结算): sign the technology contract, take buyer funds from bank
confirmations into escrow by instalment, pay the escrow out in one linked batch (seller net,
exchange fee, inventors' rewards), forfeit a defaulting buyer's deposit, and record the rights
transfer. Every move is a ledger transfer in the transaction of the deal's transition; what is
due and what is in escrow is read from the ledger, never kept here.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from exchange.config import Settings
from exchange.deals import service as deals
from exchange.deals.machine import Actor, DealAction, DealState
from exchange.deals.models import Deal
from exchange.errors import Conflict, NotFound, Unprocessable
from exchange.events import emit
from exchange.evidence import service as evidence
from exchange.ledger import service as ledger
from exchange.ledger.models import AccountCode, OwnerType
from exchange.listings import service as listings
from exchange.listings.calendar import EXCHANGE_TZ, WorkingCalendar
from exchange.listings.service import ListingRules, escrow_account_id
from exchange.parties.service import get_party, open_accounts, party_account_id
from exchange.settlement import credit, rules
from exchange.settlement.escrow import escrow_balance, get_contract, instalments, released_total
from exchange.settlement.models import (
    BankConfirmation,
    Contract,
    Instalment,
    PaymentShape,
    RewardPolicy,
    RoyaltyReport,
    Settlement,
)

FEE_CODE = "exchange_fee"
EXCHANGE_FEE_ACCOUNT = "exchange.fee_revenue.{currency}"
EXCHANGE_CLEARING_ACCOUNT = "exchange.external_clearing.{currency}"
SETTLE_BATCH_MAX = 100
# Transfer ids the engine derives from a deal id stay within the ledger's 80 characters.
DEAL_KEY_LENGTH_MAX = 40


def transfer_key(deal_id: str) -> str:
    """The deal's part of the transfer ids derived from it: the id itself when short, else a
    digest of it (a client's deal id may have 64 characters)."""
    if len(deal_id) <= DEAL_KEY_LENGTH_MAX:
        return deal_id
    return "h" + hashlib.sha256(deal_id.encode()).hexdigest()[: DEAL_KEY_LENGTH_MAX - 1]


# Stands for the seller's account in the split when the seller is paid in another currency.
SELLER_ACROSS_CURRENCIES = "seller-across-currencies"


@dataclass(frozen=True, slots=True)
class SettlementRules:
    """The market's settlement rules (each a setting)."""

    contract_deadline_working_days: int = 10
    instalments: rules.InstalmentRules = field(default_factory=rules.InstalmentRules)
    fee_schedule: rules.FeeSchedule = rules.DEFAULT_FEE_SCHEDULE
    forfeit_exchange_share_bp: int = 2_000  # of a forfeited deposit, the exchange keeps this
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar)

    @classmethod
    def of(cls, settings: Settings) -> SettlementRules:
        default = rules.DEFAULT_FEE_SCHEDULE
        schedule = rules.FeeSchedule(
            bands=tuple(rules.FeeBand(f, bp) for f, bp in settings.fee_bands)
            if settings.fee_bands
            else default.bands,
            minimum=default.minimum if settings.fee_minimum is None else settings.fee_minimum,
            maximum=default.maximum if settings.fee_maximum is None else settings.fee_maximum,
        )
        return cls(
            contract_deadline_working_days=settings.contract_deadline_working_days,
            fee_schedule=schedule,
            forfeit_exchange_share_bp=settings.forfeit_exchange_share_bp,
            calendar=ListingRules.of(settings).calendar,
        )


@dataclass(frozen=True, slots=True)
class ContractSpec:
    contract_type: str
    payment_shape: PaymentShape
    schedule: list[rules.Instalment]
    royalty_rate: Decimal | None
    royalty_trigger_date: date | None
    registration_number: str | None
    settlement_currency: str | None  # None: the deal's currency
    fx_rate_id: str | None


class ContractDeadlinePassed(Conflict):
    code = "contract_deadline_passed"
    title = "The deadline to sign the contract has passed"


class NothingDue(Conflict):
    code = "nothing_due"
    title = "Nothing is due"


class Overpayment(Conflict):
    code = "more_than_due"
    title = "More than is due"


# ---------------------------------------------------------------------------------------------
# Accounts


def fee_account_id(currency: str) -> str:
    return EXCHANGE_FEE_ACCOUNT.format(currency=currency)


def clearing_account_id(currency: str) -> str:
    return EXCHANGE_CLEARING_ACCOUNT.format(currency=currency)


async def _exchange_accounts(session: AsyncSession, currency: str, now: datetime) -> None:
    for account_id, code in (
        (fee_account_id(currency), AccountCode.fee_revenue),
        (clearing_account_id(currency), AccountCode.external_clearing),
    ):
        await ledger.create_account(
            session,
            ledger.AccountSpec(
                id=account_id,
                currency=currency,
                code=code.value,
                owner_type=OwnerType.exchange.value,
                owner_id="exchange",
            ),
            now,
        )


async def _reward_account(
    session: AsyncSession, party_id: str, currency: str, now: datetime
) -> str:
    account_id = party_account_id(party_id, AccountCode.reward, currency)
    await ledger.create_account(
        session,
        ledger.AccountSpec(
            id=account_id,
            currency=currency,
            code=AccountCode.reward.value,
            owner_type=OwnerType.party.value,
            owner_id=party_id,
            debits_must_not_exceed_credits=True,
        ),
        now,
    )
    return account_id


# ---------------------------------------------------------------------------------------------
# The contract


def contract_deadline(deal: Deal, market: SettlementRules) -> datetime:
    assert deal.awarded_at is not None
    return market.calendar.notice_ends_at(deal.awarded_at, market.contract_deadline_working_days)


async def sign_contract(
    session: AsyncSession,
    deal_id: str,
    spec: ContractSpec,
    market: SettlementRules,
    ctx: deals.ActorContext,
) -> Contract:
    """Record the technology contract of an awarded deal, within the deadline: its price is the
    award price and its schedule sums to it, keeping the instalment rules."""
    deal = await deals.get_deal(session, deal_id, lock=True)
    deals.check_allowed(deal, DealAction.sign_contract, ctx)
    deadline = contract_deadline(deal, market)
    if ctx.now >= deadline:
        raise ContractDeadlinePassed(
            f"the contract was due by {deadline.isoformat()}; the operator may declare a default",
            deadline=deadline.isoformat(),
        )
    assert deal.award_price is not None and deal.buyer_party_id is not None
    today = ctx.now.astimezone(EXCHANGE_TZ).date()
    problems = rules.plan_problems(
        spec.schedule,
        price=deal.award_price,
        contract_date=today,
        rules=market.instalments,
        first_due_limit=market.calendar.add_working_days(
            today, market.instalments.first_due_working_days_max
        ),
    )
    if spec.payment_shape is PaymentShape.lump_sum and len(spec.schedule) != 1:
        problems.append(
            {"field": "schedule", "code": "lump_sum_is_one_payment", "detail": "one payment"}
        )
    if problems:
        raise Unprocessable(
            "the payment schedule breaks the rules: " + "; ".join(p["detail"] for p in problems),
            errors=problems,
        )
    settlement_currency = spec.settlement_currency or deal.currency
    fx_rate_id = None
    if settlement_currency != deal.currency:
        locked = await ledger.find_fx_rate(
            session, deal.currency, settlement_currency, spec.fx_rate_id
        )
        fx_rate_id = locked.id
    contract = Contract(
        id="ctr_" + secrets.token_hex(10),
        deal_id=deal.id,
        contract_type=spec.contract_type,
        payment_shape=spec.payment_shape.value,
        seller_party_id=deal.seller_party_id,
        buyer_party_id=deal.buyer_party_id,
        price=deal.award_price,
        currency=deal.currency,
        settlement_currency=settlement_currency,
        fx_rate_id=fx_rate_id,
        royalty_rate=str(spec.royalty_rate) if spec.royalty_rate is not None else None,
        royalty_trigger_date=spec.royalty_trigger_date,
        registration_number=spec.registration_number,
        signed_by_key_id=ctx.key_id,
        signed_at=ctx.now,
    )
    session.add(contract)
    await session.flush()
    await _exchange_accounts(session, deal.currency, ctx.now)
    for number, due in enumerate(spec.schedule, start=1):
        session.add(
            Instalment(
                contract_id=contract.id,
                number=number,
                due_date=due.due_date,
                amount=due.amount,
                milestone=due.milestone,
            )
        )
    await deals.perform_delegated(
        session,
        deal,
        DealAction.sign_contract,
        ctx,
        {
            "contract_id": contract.id,
            "payment_shape": contract.payment_shape,
            "instalments": len(spec.schedule),
            "fx_rate_id": fx_rate_id,
        },
    )
    return contract


# ---------------------------------------------------------------------------------------------
# Funds in: bank confirmations and payments into escrow


async def confirm_bank_funds(
    session: AsyncSession,
    deal_id: str,
    *,
    bank_reference: str,
    amount: int,
    currency: str,
    ctx: deals.ActorContext,
) -> tuple[BankConfirmation, bool]:
    """The bank confirms the buyer's funds arrived: the buyer's available account is credited
    from external clearing. The bank's reference is the idempotency key: the same confirmation
    again changes nothing (False); the same reference with other figures is refused."""
    deal = await deals.get_deal(session, deal_id, lock=True)
    existing = await session.get(BankConfirmation, bank_reference)
    if existing is not None:
        if (existing.deal_id, existing.amount, existing.currency) != (deal_id, amount, currency):
            raise Conflict(
                f"bank reference {bank_reference} was confirmed for other figures",
                errors=[{"field": "bank_reference", "code": "exists_with_different_fields"}],
            )
        return existing, False
    if deal.buyer_party_id is None or deal.state not in (
        DealState.awarded.value,
        DealState.contracted.value,
        DealState.settling.value,
    ):
        raise Conflict(
            f"deal {deal_id} is {deal.state}: funds are taken between the award and settlement",
            state=deal.state,
        )
    if currency != deal.currency:
        raise Unprocessable(
            f"the deal is in {deal.currency}",
            errors=[{"field": "amount.currency", "code": "currency_mismatch"}],
        )
    await _exchange_accounts(session, currency, ctx.now)
    await open_accounts(session, deal.buyer_party_id, currency, ctx.now)
    transfer_id = f"bank.{bank_reference}"
    await ledger.create_transfers(
        session,
        [
            ledger.TransferSpec(
                id=transfer_id,
                debit_account_id=clearing_account_id(currency),
                credit_account_id=party_account_id(
                    deal.buyer_party_id, AccountCode.available, currency
                ),
                amount=amount,
                currency=currency,
                code="bank_confirmation",
                reference=deal_id,
            )
        ],
        ctx.now,
    )
    confirmation = BankConfirmation(
        bank_reference=bank_reference,
        deal_id=deal_id,
        party_id=deal.buyer_party_id,
        amount=amount,
        currency=currency,
        transfer_id=transfer_id,
        confirmed_by_key_id=ctx.key_id,
        at=ctx.now,
    )
    session.add(confirmation)
    await session.flush()
    return confirmation, True


@dataclass(frozen=True, slots=True)
class Dues:
    price: int
    in_escrow: int
    due_now: int  # the instalments due by today, less what escrow holds
    outstanding: int  # the price less what escrow holds


async def dues(session: AsyncSession, deal: Deal, contract: Contract, today: date) -> Dues:
    held = await escrow_balance(session, deal)
    received = held + await released_total(session, deal.id)
    schedule = await instalments(session, contract.id)
    due_by_today = sum(i.amount for i in schedule if i.due_date <= today)
    return Dues(
        price=contract.price,
        in_escrow=held,
        due_now=max(0, due_by_today - received),
        outstanding=max(0, contract.price - received),
    )


async def pay(
    session: AsyncSession, deal_id: str, amount: int, ctx: deals.ActorContext
) -> ledger.TransferView:
    """The buyer pays `amount` from its available account into the deal's escrow (any part of
    what is outstanding, early or on time); more than is outstanding is refused, and so is a
    payment on a deal with nothing outstanding."""
    deal = await deals.get_deal(session, deal_id, lock=True)
    system = deals.ActorContext(Actor.system, ctx.key_id, ctx.request_id, ctx.now)
    deals.check_allowed(deal, DealAction.pay, system)
    contract = await get_contract(session, deal_id)
    owed = await dues(session, deal, contract, ctx.now.astimezone(EXCHANGE_TZ).date())
    if owed.outstanding == 0:
        raise NothingDue(f"deal {deal_id} is paid in full: nothing is due")
    if amount > owed.outstanding:
        raise Overpayment(
            f"{amount} is more than the {owed.outstanding} outstanding",
            outstanding=owed.outstanding,
        )
    assert deal.buyer_party_id is not None
    payment = await _into_escrow(
        session,
        deal,
        deal.buyer_party_id,
        f"pay.{transfer_key(deal.id)}.{secrets.token_hex(6)}",
        amount,
        "instalment_payment",
        ctx.now,
    )
    detail = {"payment": payment.id, "amount": amount, "outstanding": owed.outstanding - amount}
    await deals.perform_delegated(session, deal, DealAction.pay, system, detail)
    return payment


async def _into_escrow(
    session: AsyncSession,
    deal: Deal,
    payer_party_id: str,
    transfer_id: str,
    amount: int,
    code: str,
    now: datetime,
) -> ledger.TransferView:
    """`amount` from the payer's available account into the deal's escrow, in its currency."""
    paid = await ledger.create_transfer(
        session,
        ledger.TransferSpec(
            id=transfer_id,
            debit_account_id=party_account_id(payer_party_id, AccountCode.available, deal.currency),
            credit_account_id=escrow_account_id(deal.id, deal.currency),
            amount=amount,
            currency=deal.currency,
            code=code,
            reference=deal.id,
        ),
        now,
    )
    return paid.transfers[0]


# ---------------------------------------------------------------------------------------------
# Settlement: the escrow paid out, once


async def reward_policy(session: AsyncSession, party_id: str) -> rules.RewardPolicy | None:
    row = await session.get(RewardPolicy, party_id)
    if row is None:
        return None
    return rules.RewardPolicy(
        pool_bp=row.pool_bp,
        inventors=tuple(rules.Inventor(p, share) for p, share in orjson.loads(row.inventors)),
    )


async def set_reward_policy(
    session: AsyncSession,
    party_id: str,
    pool_bp: int,
    inventors: list[tuple[str, int]],
    now: datetime,
) -> RewardPolicy:
    if await get_party(session, party_id) is None:
        raise NotFound(f"no party {party_id}")
    for inventor, _ in inventors:
        if await get_party(session, inventor) is None:
            raise Unprocessable(
                f"no party {inventor}", errors=[{"field": "inventors", "code": "party_not_found"}]
            )
    row = await session.get(RewardPolicy, party_id)
    encoded = orjson.dumps([[p, s] for p, s in inventors]).decode()
    if row is None:
        row = RewardPolicy(
            party_id=party_id, pool_bp=pool_bp, inventors=encoded, version=1, updated_at=now
        )
        session.add(row)
    else:
        row.pool_bp, row.inventors, row.updated_at = pool_bp, encoded, now
        row.version += 1
    await session.flush()
    return row


async def settlements(session: AsyncSession, deal_id: str) -> list[Settlement]:
    """The deal's payouts so far, in order (one, or one per milestone)."""
    query = select(Settlement).where(Settlement.deal_id == deal_id).order_by(Settlement.part)
    return list((await session.scalars(query)).all())


async def _release_target(
    session: AsyncSession, deal: Deal, contract: Contract, released: int
) -> int:
    """How far escrow may be released: to the end of the last milestone instalment it covers,
    or the whole price once all of it is in (at least `released`, what already was)."""
    received = released + await escrow_balance(session, deal)
    assert received <= contract.price, "payments never exceed the price"
    cumulative, target = 0, released
    for instalment in await instalments(session, contract.id):
        cumulative += instalment.amount
        if (instalment.milestone or cumulative == contract.price) and cumulative <= received:
            target = max(target, cumulative)
    return target


async def settle(
    session: AsyncSession, deal_id: str, market: SettlementRules, now: datetime
) -> Settlement | None:
    """Pay out what escrow holds of a fully paid deal — or of a paid milestone, where the
    schedule has milestones — in one linked batch: seller (net), exchange fee (its share of the
    fee on the whole price), inventors' rewards, the remainder by rule. The part that completes
    the price moves the deal to `settled`. None when nothing is due: settling twice pays once."""
    deal = await deals.get_deal(session, deal_id, lock=True)
    if deal.state != DealState.settling.value:
        return None
    contract = await get_contract(session, deal_id)
    parts = await settlements(session, deal_id)
    released = sum(p.total for p in parts)
    target = await _release_target(session, deal, contract, released)
    if target <= released:
        return None
    part = len(parts) + 1
    final = target == contract.price
    amount = target - released
    fee = rules.fee_share(
        rules.exchange_fee(contract.price, market.fee_schedule), contract.price, released, target
    )
    split = await _split(session, deal, contract, amount, market, now, fee=fee)
    key = transfer_key(deal.id)
    prefix = f"settle.{key}" if final and part == 1 else f"settle.{key}.m{part}"
    legs = await _pay_out(session, deal, contract, split, prefix, now)
    row = Settlement(
        deal_id=deal.id,
        part=part,
        total=amount,
        fee=split.fee,
        reward_pool=split.reward_pool,
        legs=orjson.dumps(legs).decode(),
        fx_rate_id=contract.fx_rate_id,
        at=now,
    )
    session.add(row)
    detail = {"part": part, "total": amount, "fee": split.fee, "legs": legs}
    if final:
        await credit.release_guarantees(session, deal, now)
        system = deals.ActorContext(Actor.system, None, None, now)
        await deals.perform_delegated(session, deal, DealAction.settle, system, detail)
    else:
        await session.flush()
        await emit(
            session,
            type="deal.milestone_released",
            aggregate_type="deal",
            aggregate_id=deal.id,
            version=deal.version,
            payload={"id": deal.id, **detail},
            now=now,
        )
    return row


async def _split(
    session: AsyncSession,
    deal: Deal,
    contract: Contract,
    total: int,
    market: SettlementRules,
    now: datetime,
    *,
    fee: int | None = None,
) -> rules.Split:
    """How `total` out of the deal's escrow is paid: seller (net), exchange fee, the seller's
    inventors by its reward policy (their reward accounts opened on first use)."""
    seller = contract.seller_party_id
    pay_currency = contract.settlement_currency
    await _exchange_accounts(session, deal.currency, now)
    await open_accounts(session, seller, pay_currency, now)
    policy = await reward_policy(session, seller)
    if policy is not None:
        inventors = [
            rules.Inventor(
                await _reward_account(session, inventor.account_id, deal.currency, now),
                inventor.share_bp,
            )
            for inventor in policy.inventors
        ]
        policy = rules.RewardPolicy(pool_bp=policy.pool_bp, inventors=tuple(inventors))
    return rules.settlement_split(
        total,
        seller_account_id=party_account_id(seller, AccountCode.available, deal.currency)
        if pay_currency == deal.currency
        else SELLER_ACROSS_CURRENCIES,
        fee_account_id=fee_account_id(deal.currency),
        schedule=market.fee_schedule,
        policy=policy,
        fee=fee,
    )


async def _pay_out(
    session: AsyncSession,
    deal: Deal,
    contract: Contract,
    split: rules.Split,
    id_prefix: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """The split's transfers out of escrow, ids derived from `id_prefix` (so a second run of the
    same payout would replay, never pay twice); a seller paid in another currency is paid
    through the FX position accounts at the rate locked at contract."""
    escrow_id = escrow_account_id(deal.id, deal.currency)
    specs: list[ledger.AnySpec] = []
    legs: list[dict[str, Any]] = []
    fx_leg: rules.Leg | None = None
    for index, leg in enumerate(split.legs):
        transfer_id = f"{id_prefix}.{index}"
        if leg.account_id == SELLER_ACROSS_CURRENCIES:  # paid through FX below
            fx_leg = leg
            continue
        specs.append(
            ledger.TransferSpec(
                id=transfer_id,
                debit_account_id=escrow_id,
                credit_account_id=leg.account_id,
                amount=leg.amount,
                currency=deal.currency,
                code=f"settlement_{leg.role}",
                reference=deal.id,
            )
        )
        legs.append(
            {
                "account_id": leg.account_id,
                "amount": leg.amount,
                "role": str(leg.role),
                "transfer_id": transfer_id,
            }
        )
    if specs:
        await ledger.create_transfers(session, specs, now)
    if fx_leg is not None:
        transfer_id = f"{id_prefix}.seller"
        seller_account = party_account_id(
            contract.seller_party_id, AccountCode.available, contract.settlement_currency
        )
        _result, rate = await ledger.create_fx_transfer(
            session,
            transfer_id=transfer_id,
            debit_account_id=escrow_id,
            credit_account_id=seller_account,
            amount=fx_leg.amount,
            currency=deal.currency,
            code="settlement_seller",
            reference=deal.id,
            rate_id=contract.fx_rate_id,
            now=now,
        )
        legs.append(
            {
                "account_id": seller_account,
                "amount": fx_leg.amount,
                "role": "seller",
                "transfer_id": transfer_id,
                "fx_rate_id": rate.id,
                "fx_rate": rate.rate,
            }
        )
    return legs


async def due_settlements(session: AsyncSession, limit: int = SETTLE_BATCH_MAX) -> list[str]:
    """Deals in `settling` with a payout due (the full price, or a paid milestone): the
    settlement worker's list."""
    query = (
        select(Deal.id)
        .join(Contract, Contract.deal_id == Deal.id)
        .where(Deal.state == DealState.settling.value)
        .order_by(Deal.id)
        .limit(limit)
    )
    due = []
    for deal_id in list((await session.scalars(query)).all()):
        deal = await deals.get_deal(session, deal_id)
        released = await released_total(session, deal_id)
        contract = await get_contract(session, deal_id)
        if await _release_target(session, deal, contract, released) > released:
            due.append(deal_id)
    return due


async def get_settlement(session: AsyncSession, deal_id: str) -> list[Settlement]:
    found = await settlements(session, deal_id)
    if not found:
        raise NotFound(f"deal {deal_id} has not been settled")
    return found


# ---------------------------------------------------------------------------------------------
# Default and the rights transfer


async def declare_default(
    session: AsyncSession,
    deal_id: str,
    market: SettlementRules,
    ctx: deals.ActorContext,
    reason: str,
) -> Deal:
    """The buyer defaulted: its deposit is forfeited by rule (to the seller, less the exchange's
    share) and everything else in escrow goes back to the buyer; the deal may be relisted."""
    deal = await deals.get_deal(session, deal_id, lock=True)
    deals.check_allowed(deal, DealAction.default, ctx)
    assert deal.buyer_party_id is not None
    held = await escrow_balance(session, deal)
    # The deposit came into escrow first: a milestone already released may have paid it out.
    deposit = await listings.applied_deposit(session, deal)
    deposit = max(0, deposit - await released_total(session, deal.id))
    forfeited = min(deposit, held)
    to_seller, to_exchange = (
        rules.forfeiture_split(forfeited, exchange_share_bp=market.forfeit_exchange_share_bp)
        if forfeited
        else (0, 0)
    )
    refund = held - forfeited
    escrow_id = escrow_account_id(deal.id, deal.currency)
    await _exchange_accounts(session, deal.currency, ctx.now)
    await open_accounts(session, deal.seller_party_id, deal.currency, ctx.now)
    moves = [
        (
            party_account_id(deal.seller_party_id, AccountCode.available, deal.currency),
            to_seller,
            "forfeit_seller",
        ),
        (fee_account_id(deal.currency), to_exchange, "forfeit_exchange"),
        (
            party_account_id(deal.buyer_party_id, AccountCode.available, deal.currency),
            refund,
            "default_refund",
        ),
    ]
    specs = [
        ledger.TransferSpec(
            id=f"default.{transfer_key(deal.id)}.{code}",
            debit_account_id=escrow_id,
            credit_account_id=account,
            amount=amount,
            currency=deal.currency,
            code=code,
            reference=deal.id,
        )
        for account, amount, code in moves
        if amount > 0
    ]
    if specs:
        await ledger.create_transfers(session, specs, ctx.now)
    await credit.release_guarantees(session, deal, ctx.now)
    await deals.perform_delegated(
        session,
        deal,
        DealAction.default,
        ctx,
        {
            "reason": reason,
            "forfeited": forfeited,
            "to_seller": to_seller,
            "to_exchange": to_exchange,
            "refunded": refund,
        },
    )
    return deal


async def record_transfer(
    session: AsyncSession,
    deal_id: str,
    *,
    registration_number: str,
    registered_on: date,
    evidence_sha256: str,
    ctx: deals.ActorContext,
) -> Deal:
    """The patent office registered the transfer or licence: the deal closes."""
    deal = await deals.get_deal(session, deal_id, lock=True)
    deals.check_allowed(deal, DealAction.record_transfer, ctx)
    await evidence.require_known(session, [evidence_sha256], "evidence_sha256")
    await deals.perform_delegated(
        session,
        deal,
        DealAction.record_transfer,
        ctx,
        {
            "registration_number": registration_number,
            "registered_on": registered_on.isoformat(),
            "evidence_sha256": evidence_sha256,
        },
    )
    return deal


# ---------------------------------------------------------------------------------------------
# Royalties: licences whose payments follow the licensee's revenue


class RoyaltyRefused(Conflict):
    code = "royalty_not_due"
    title = "No royalty is due for this report"


async def royalty_reports(session: AsyncSession, deal_id: str) -> list[RoyaltyReport]:
    query = select(RoyaltyReport).where(RoyaltyReport.deal_id == deal_id)
    return list((await session.scalars(query.order_by(RoyaltyReport.period_end_date))).all())


async def report_royalty(
    session: AsyncSession,
    deal_id: str,
    *,
    period_start: date,
    period_end: date,
    revenue: int,
    market: SettlementRules,
    ctx: deals.ActorContext,
) -> RoyaltyReport:
    """The licensee reports its revenue for a period after the trigger date: the royalty
    (revenue times the contract's rate, rounded once) moves licensee → escrow and out again to
    the seller, the exchange and the inventors as a settlement does, in one transaction.
    Periods follow each other without overlap; the upfront price must be settled first."""
    deal = await deals.get_deal(session, deal_id, lock=True)
    contract = await get_contract(session, deal_id)
    if contract.payment_shape not in (
        PaymentShape.royalty.value,
        PaymentShape.use_first_pay_later.value,
    ):
        raise RoyaltyRefused(f"deal {deal_id}'s contract is {contract.payment_shape}: no royalty")
    if deal.state not in (DealState.settled.value, DealState.closed.value):
        raise RoyaltyRefused(
            f"deal {deal_id} is {deal.state}: royalties follow the settled upfront price",
            state=deal.state,
        )
    assert contract.royalty_rate is not None and contract.royalty_trigger_date is not None
    earlier = await royalty_reports(session, deal_id)
    problems = []
    if period_end < contract.royalty_trigger_date:
        problems.append(("period_end", "before_trigger_date"))
    if earlier and period_start <= earlier[-1].period_end_date:
        problems.append(("period_start", "overlaps_reported_period"))
    if problems:
        raise Unprocessable(
            "the royalty period is before the trigger date or overlaps a reported one",
            errors=[{"field": field_name, "code": code} for field_name, code in problems],
        )
    royalty = rules.royalty_due(revenue, Decimal(contract.royalty_rate))
    legs: list[dict[str, Any]] = []
    if royalty > 0:
        prefix = f"royalty.{transfer_key(deal.id)}.{period_end:%Y%m%d}"
        legs = await _collect_royalty(session, deal, contract, royalty, prefix, market, ctx.now)
    report = RoyaltyReport(
        deal_id=deal_id,
        period_start_date=period_start,
        period_end_date=period_end,
        revenue=revenue,
        royalty=royalty,
        legs=orjson.dumps(legs).decode(),
        reported_by_key_id=ctx.key_id,
        at=ctx.now,
    )
    session.add(report)
    await session.flush()
    await emit(
        session,
        type="deal.royalty_reported",
        aggregate_type="deal",
        aggregate_id=deal_id,
        version=deal.version,
        payload={"deal_id": deal_id, "period_end": period_end.isoformat(), "royalty": royalty},
        now=ctx.now,
    )
    return report


async def _collect_royalty(
    session: AsyncSession,
    deal: Deal,
    contract: Contract,
    royalty: int,
    prefix: str,
    market: SettlementRules,
    now: datetime,
) -> list[dict[str, Any]]:
    """The licensee's royalty into escrow and out again by the settlement split."""
    await _into_escrow(
        session, deal, contract.buyer_party_id, f"{prefix}.in", royalty, "royalty_payment", now
    )
    split = await _split(session, deal, contract, royalty, market, now)
    return await _pay_out(session, deal, contract, split, prefix, now)
