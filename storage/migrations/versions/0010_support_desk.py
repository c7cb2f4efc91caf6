"""the web support desk: desk users, sentiment label corrections, review items' assignee and
response times, and the web side's shared secrets

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration; response times of items acted on before it come from their events."""
    op.create_table(
        "deskuser",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_deskuser_email", "deskuser", ["email"], unique=True)
    op.create_table(
        "labelcorrection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("answer_id", sa.Integer(), nullable=False),
        sa.Column("old_label", sa.String(length=16), nullable=False),
        sa.Column("new_label", sa.String(length=16), nullable=False),
        sa.Column("model_label", sa.String(length=16), nullable=True),
        sa.Column("model_id", sa.String(length=256), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=160), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["answer_id"], ["answer.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_labelcorrection_answer_id", "labelcorrection", ["answer_id"])
    op.create_index("ix_labelcorrection_created_at", "labelcorrection", ["created_at"])
    op.create_table(
        "websecret",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("reviewitem", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assignee", sa.String(length=160), nullable=True))
        batch_op.add_column(sa.Column("first_ack_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("first_reply_at", sa.DateTime(), nullable=True))
        batch_op.create_index("ix_reviewitem_assignee", ["assignee"])
        batch_op.create_index("ix_reviewitem_created_at", ["created_at"])
    op.execute(
        "UPDATE reviewitem SET first_ack_at = (SELECT min(e.created_at) FROM reviewevent e "
        "WHERE e.review_item_id = reviewitem.id AND e.action IN ('acknowledged', 'replied'))"
    )
    op.execute(
        "UPDATE reviewitem SET first_reply_at = (SELECT min(e.created_at) FROM reviewevent e "
        "WHERE e.review_item_id = reviewitem.id AND e.action = 'replied')"
    )


def downgrade() -> None:
    """Revert this migration (desk users, corrections and response times are dropped)."""
    with op.batch_alter_table("reviewitem", schema=None) as batch_op:
        batch_op.drop_index("ix_reviewitem_created_at")
        batch_op.drop_index("ix_reviewitem_assignee")
        batch_op.drop_column("first_reply_at")
        batch_op.drop_column("first_ack_at")
        batch_op.drop_column("assignee")
    op.drop_table("websecret")
    op.drop_index("ix_labelcorrection_created_at", table_name="labelcorrection")
    op.drop_index("ix_labelcorrection_answer_id", table_name="labelcorrection")
    op.drop_table("labelcorrection")
    op.drop_index("ix_deskuser_email", table_name="deskuser")
    op.drop_table("deskuser")
