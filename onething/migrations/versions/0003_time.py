"""Time limits: worker leases on cases, extension requests (延期) and supervisions (督办).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(100), nullable=True))
        batch.add_column(sa.Column("lease_until", TS, nullable=True))
    op.create_table(
        "extensions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("stage", sa.String(200), nullable=False),
        sa.Column("seconds", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("department", sa.String(200), nullable=True),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("old_due", TS, nullable=True),
        sa.Column("new_due", TS, nullable=True),
    )
    op.create_index("ix_extensions_case_status", "extensions", ["case_id", "status"])
    op.create_table(
        "supervisions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("stage", sa.String(200), nullable=False),
        sa.Column("element", sa.String(200), nullable=False),
        sa.Column("leader", sa.String(200), nullable=True),
        sa.Column("due_at", TS, nullable=True),
        sa.Column("opened_at", TS, nullable=False),
        sa.UniqueConstraint("case_id", "stage", name="uq_supervisions_case_stage"),
    )


def downgrade() -> None:
    op.drop_table("supervisions")
    op.drop_index("ix_extensions_case_status", table_name="extensions")
    op.drop_table("extensions")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("lease_owner")
