"""sentiment labels record the language of the text they label

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 05:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration; labels stored before it have no language (NULL): unknown."""
    with op.batch_alter_table("sentimentscore", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=8), nullable=True))


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("sentimentscore", schema=None) as batch_op:
        batch_op.drop_column("language")
