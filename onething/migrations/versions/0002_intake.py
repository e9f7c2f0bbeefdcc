"""Intake: reports from every channel, their attachments by content hash, case links.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("number", sa.String(40), nullable=False, unique=True),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("reporter", sa.String(200), nullable=False),
        sa.Column("phone", sa.String(40), nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("category", sa.String(100), nullable=True),
        sa.Column("region", sa.String(40), nullable=False),
        sa.Column("grid", sa.String(40), nullable=True),
        sa.Column("lat", sa.Float, nullable=True),
        sa.Column("lon", sa.Float, nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=True),
        sa.Column("rule", sa.String(100), nullable=True),
        sa.Column("redirect_to", sa.String(10), nullable=True),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_index("ix_reports_case", "reports", ["case_id"])
    op.create_index("ix_reports_dedupe", "reports", ["category", "received_at"])
    op.create_index("ix_reports_outcome", "reports", ["outcome", "received_at"])
    op.create_table(
        "attachment_blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "attachments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("report_id", sa.Integer, sa.ForeignKey("reports.id"), nullable=False),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=True),
        sa.Column("sha256", sa.String(64), sa.ForeignKey("attachment_blobs.sha256"),
                  nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_attachments_case", "attachments", ["case_id"])
    op.create_index("ix_attachments_report", "attachments", ["report_id"])
    op.create_table(
        "case_links",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("from_case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("to_case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("from_case_id", "to_case_id", "kind", name="uq_case_links"),
    )
    op.create_index("ix_case_links_from", "case_links", ["from_case_id"])
    op.create_index("ix_case_links_to", "case_links", ["to_case_id"])


def downgrade() -> None:
    for table in ("case_links", "attachments", "attachment_blobs", "reports"):
        op.drop_table(table)
