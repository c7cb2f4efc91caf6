"""undelivered survey messages: redelivery state on conversations

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 19:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("undelivered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("redeliver_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("redeliver_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.create_index(
            batch_op.f("ix_conversation_redeliver_at"), ["redeliver_at"], unique=False
        )


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_redeliver_at"))
        batch_op.drop_column("redeliver_attempts")
        batch_op.drop_column("redeliver_at")
        batch_op.drop_column("undelivered_at")
