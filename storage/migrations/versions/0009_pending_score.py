"""a score read from a sentence awaits the customer's confirmation ("Did you mean 2 out of 10?");
the inbox indexed by lane and arrival for the per-customer flood limit

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 23:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_score", sa.Integer(), nullable=True))
    op.create_index("ix_inbox_lane_received", "inboxupdate", ["lane", "received_at"])


def downgrade() -> None:
    """Revert this migration (a pending confirmation is forgotten: the question is asked on)."""
    op.drop_index("ix_inbox_lane_received", table_name="inboxupdate")
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_column("pending_score")
