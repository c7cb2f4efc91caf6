"""flow versions say how they came to be (a file, a publish, a rollback) and who published them

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 02:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration; every version stored before it came from a flow file."""
    with op.batch_alter_table("flowversion", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("origin", sa.String(length=16), nullable=False, server_default="file")
        )
        batch_op.add_column(sa.Column("published_by", sa.String(length=160), nullable=True))


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("flowversion", schema=None) as batch_op:
        batch_op.drop_column("published_by")
        batch_op.drop_column("origin")
