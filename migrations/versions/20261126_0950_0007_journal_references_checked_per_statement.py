"""journal references checked per statement

On PostgreSQL the journal's three foreign keys (debit and credit account, FX rate) were checked
row by row: two `SELECT ... FOR KEY SHARE` per entry, inside the journal-head lock, which made
them about 40% of a 1,000-entry COPY. One check per statement replaces them: an AFTER INSERT
trigger over the inserted rows (a transition table) refuses the statement when any row names an
account or rate that does not exist. What the foreign keys also gave — a referenced row cannot
disappear — comes from guards: accounts are never deleted, truncated or renamed, and recorded
FX rates are append-only (on both databases).

SQLite keeps the row-by-row foreign keys of revision 0001: it is the embedded single-writer
default, and dropping a constraint there means rebuilding the journal table.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 09:50:00
"""

from collections.abc import Sequence

from alembic import op

from exchange.append_only import allow_change, refuse_change

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JOURNAL_FOREIGN_KEYS = (
    ("fk_ledger_transfer_debit_account_id_ledger_account", "debit_account_id", "ledger_account"),
    ("fk_ledger_transfer_credit_account_id_ledger_account", "credit_account_id", "ledger_account"),
    ("fk_ledger_transfer_fx_rate_id_ledger_fx_rate", "fx_rate_id", "ledger_fx_rate"),
)

PG_UPGRADE = (
    """
    CREATE FUNCTION ledger_transfer_references_exist() RETURNS trigger AS $$
    DECLARE
        orphan text;
    BEGIN
        SELECT n.id INTO orphan FROM inserted n
        WHERE NOT EXISTS (SELECT 1 FROM ledger_account a WHERE a.id = n.debit_account_id)
           OR NOT EXISTS (SELECT 1 FROM ledger_account a WHERE a.id = n.credit_account_id)
           OR (n.fx_rate_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM ledger_fx_rate r WHERE r.id = n.fx_rate_id))
        LIMIT 1;
        IF orphan IS NOT NULL THEN
            RAISE EXCEPTION 'ledger_transfer %: its debit account, credit account or FX rate '
                'does not exist', orphan USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN NULL;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER ledger_transfer_references_exist AFTER INSERT ON ledger_transfer
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_transfer_references_exist()
    """,
    """
    CREATE FUNCTION refuse_ledger_account_removal() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'ledger_account rows are never removed or renamed: % refused', TG_OP
            USING ERRCODE = 'restrict_violation';
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER ledger_account_kept BEFORE DELETE OR UPDATE OF id ON ledger_account
    FOR EACH ROW EXECUTE FUNCTION refuse_ledger_account_removal()
    """,
    """
    CREATE TRIGGER ledger_account_no_truncate BEFORE TRUNCATE ON ledger_account
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_ledger_account_removal()
    """,
)

PG_DOWNGRADE = (
    "DROP TRIGGER ledger_account_no_truncate ON ledger_account",
    "DROP TRIGGER ledger_account_kept ON ledger_account",
    "DROP FUNCTION refuse_ledger_account_removal()",
    "DROP TRIGGER ledger_transfer_references_exist ON ledger_transfer",
    "DROP FUNCTION ledger_transfer_references_exist()",
)


def upgrade() -> None:
    refuse_change(op, "ledger_fx_rate")
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, _, _ in JOURNAL_FOREIGN_KEYS:
        op.drop_constraint(name, "ledger_transfer", type_="foreignkey")
    for statement in PG_UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    allow_change(op, "ledger_fx_rate")
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in PG_DOWNGRADE:
        op.execute(statement)
    for name, column, referred in JOURNAL_FOREIGN_KEYS:
        op.create_foreign_key(name, "ledger_transfer", referred, [column], ["id"])
