"""reminders and expiry of surveys: when to remind, how many were sent, when a survey closes;
late comments marked on the answer table

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 22:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIVE = "state = 'active'"


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("remind_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("reminders_sent", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_conversation_remind_due",
            ["remind_at"],
            unique=False,
            sqlite_where=sa.text(_ACTIVE),
            postgresql_where=sa.text(_ACTIVE),
        )
        batch_op.create_index(
            "ix_conversation_expiry_due",
            ["expires_at"],
            unique=False,
            sqlite_where=sa.text(_ACTIVE),
            postgresql_where=sa.text(_ACTIVE),
        )
    with op.batch_alter_table("answer", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("late", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # Comments written after the thanks were kept before this column existed: mark them.
    answer = sa.table("answer", sa.column("late", sa.Boolean()), sa.column("question_id"))
    op.execute(answer.update().where(answer.c.question_id == "_late_comment").values(late=True))


def downgrade() -> None:
    """Revert this migration (expired surveys are kept as abandoned ones)."""
    op.execute(sa.text("UPDATE conversation SET state = 'abandoned' WHERE state = 'expired'"))
    with op.batch_alter_table("answer", schema=None) as batch_op:
        batch_op.drop_column("late")
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_expiry_due")
        batch_op.drop_index("ix_conversation_remind_due")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("reminders_sent")
        batch_op.drop_column("remind_at")
