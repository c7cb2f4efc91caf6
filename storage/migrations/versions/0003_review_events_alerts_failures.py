"""review events, review alerts, delivery failures

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 11:46:46.917344
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "deliveryfailure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("review_item_id", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["review_item_id"], ["reviewitem.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deliveryfailure", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deliveryfailure_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_deliveryfailure_review_item_id"), ["review_item_id"], unique=False
        )

    op.create_table(
        "reviewalert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("review_item_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("message_ts", sa.String(length=32), nullable=True),
        sa.Column("shown_version", sa.DateTime(timezone=True), nullable=True),
        sa.Column("shown_labels", sa.Integer(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=256), nullable=True),
        sa.ForeignKeyConstraint(["review_item_id"], ["reviewitem.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("review_item_id"),
    )
    op.create_table(
        "reviewevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("review_item_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("actor_name", sa.String(length=128), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["review_item_id"], ["reviewitem.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reviewevent", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reviewevent_review_item_id"), ["review_item_id"], unique=False
        )


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("reviewevent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reviewevent_review_item_id"))
    op.drop_table("reviewevent")
    op.drop_table("reviewalert")
    with op.batch_alter_table("deliveryfailure", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveryfailure_review_item_id"))
        batch_op.drop_index(batch_op.f("ix_deliveryfailure_created_at"))
    op.drop_table("deliveryfailure")
