"""Ledger tables: accounts with their four totals, the append-only hash-chained journal of
transfers, the open holds that carry a timeout, and the recorded FX rates."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from exchange.db import Base, UTCDateTime

ID_LENGTH_MAX = 80  # client ids are at most 64; derived ids ("<pending>.void") add a suffix


class AccountCode(StrEnum):
    """What an account is for (its kind)."""

    available = "available"
    deposit = "deposit"
    escrow = "escrow"
    fee_revenue = "fee_revenue"
    reward = "reward"
    loan = "loan"
    guarantee = "guarantee"
    fx_position = "fx_position"
    external_clearing = "external_clearing"


class OwnerType(StrEnum):
    party = "party"
    deal = "deal"
    listing = "listing"
    exchange = "exchange"


class TransferKind(StrEnum):
    single = "single"  # posted at once
    pending = "pending"  # a hold
    post_pending = "post_pending"  # resolves a hold by posting (all or part of) it
    void_pending = "void_pending"  # resolves a hold by releasing it


class Account(Base):
    """An account and its four totals. Never deleted, truncated or renamed (a trigger refuses
    it on PostgreSQL; a foreign key from the journal on SQLite): journal entries name it."""

    __tablename__ = "ledger_account"
    __table_args__ = (
        CheckConstraint(
            "debits_pending >= 0 AND debits_posted >= 0 "
            "AND credits_pending >= 0 AND credits_posted >= 0",
            name="totals_non_negative",
        ),
        CheckConstraint(
            "NOT (debits_must_not_exceed_credits AND credits_must_not_exceed_debits)",
            name="one_limit_flag",
        ),
        # The database holds the limit too, so no code path can write past it.
        CheckConstraint(
            "NOT debits_must_not_exceed_credits "
            "OR debits_pending + debits_posted <= credits_posted",
            name="debits_within_credits",
        ),
        CheckConstraint(
            "NOT credits_must_not_exceed_debits "
            "OR credits_pending + credits_posted <= debits_posted",
            name="credits_within_debits",
        ),
        Index("ix_ledger_account_owner", "owner_type", "owner_id"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH_MAX), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    code: Mapped[str] = mapped_column(String(32))
    owner_type: Mapped[str | None] = mapped_column(String(16))
    owner_id: Mapped[str | None] = mapped_column(String(ID_LENGTH_MAX))
    debits_must_not_exceed_credits: Mapped[bool] = mapped_column(Boolean, default=False)
    credits_must_not_exceed_debits: Mapped[bool] = mapped_column(Boolean, default=False)
    debits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    debits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_posted: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FxRate(Base):
    """A rate an operator recorded: 1 `base_currency` = `rate` units of `quote_currency`.
    Append-only: the transfers that used it name it."""

    __tablename__ = "ledger_fx_rate"
    __table_args__ = (
        Index("ix_ledger_fx_rate_pair", "base_currency", "quote_currency", "recorded_at"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH_MAX), primary_key=True)
    base_currency: Mapped[str] = mapped_column(String(3))
    quote_currency: Mapped[str] = mapped_column(String(3))
    rate: Mapped[str] = mapped_column(String(40))  # exact decimal text
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str | None] = mapped_column(String(ID_LENGTH_MAX))


class Transfer(Base):
    """One journal entry. Append-only: a trigger refuses UPDATE and DELETE.

    `seq` is gapless and assigned under the journal-head lock, so it is the commit order of the
    chain; each row stores both accounts' totals after it (point-in-time balances) and
    hash = SHA-256(previous hash || canonical bytes of this entry).
    """

    __tablename__ = "ledger_transfer"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="accounts_differ"),
        Index("ix_ledger_transfer_debit_seq", "debit_account_id", "seq"),
        Index("ix_ledger_transfer_credit_seq", "credit_account_id", "seq"),
        Index("ix_ledger_transfer_created_at", "created_at", "seq"),
        Index("ix_ledger_transfer_reference", "reference"),
        Index("uq_ledger_transfer_pending_id", "pending_id", unique=True),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String(ID_LENGTH_MAX), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    # The accounts and the FX rate are references without a foreign key on PostgreSQL: one
    # trigger per INSERT statement checks them all (revision 0007), and accounts and rates are
    # never removed. Row-by-row foreign keys cost 40% of a batch's COPY, under the head lock.
    debit_account_id: Mapped[str] = mapped_column(String(ID_LENGTH_MAX))
    credit_account_id: Mapped[str] = mapped_column(String(ID_LENGTH_MAX))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    code: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(128))
    pending_id: Mapped[str | None] = mapped_column(String(ID_LENGTH_MAX))
    timeout_s: Mapped[int | None] = mapped_column(Integer)
    fx_rate_id: Mapped[str | None] = mapped_column(String(ID_LENGTH_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    dr_debits_pending: Mapped[int] = mapped_column(BigInteger)
    dr_debits_posted: Mapped[int] = mapped_column(BigInteger)
    dr_credits_pending: Mapped[int] = mapped_column(BigInteger)
    dr_credits_posted: Mapped[int] = mapped_column(BigInteger)
    cr_debits_pending: Mapped[int] = mapped_column(BigInteger)
    cr_debits_posted: Mapped[int] = mapped_column(BigInteger)
    cr_credits_pending: Mapped[int] = mapped_column(BigInteger)
    cr_credits_posted: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class Hold(Base):
    """An open pending transfer with a timeout; deleted when the hold resolves (not the journal)."""

    __tablename__ = "ledger_hold"

    transfer_id: Mapped[str] = mapped_column(ForeignKey("ledger_transfer.id"), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
