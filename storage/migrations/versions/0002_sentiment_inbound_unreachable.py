"""sentiment scores, inbound events, unreachable customers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 10:55:31.518369
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "inboundevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("event_key", sa.String(length=128), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "event_key", name="uq_inbound_event"),
    )
    with op.batch_alter_table("inboundevent", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_inboundevent_received_at"), ["received_at"], unique=False
        )

    op.create_table(
        "sentimentscore",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("answer_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("model_id", sa.String(length=256), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["answer_id"],
            ["answer.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("answer_id", "model_version", name="uq_sentiment_answer_model"),
    )
    with op.batch_alter_table("sentimentscore", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sentimentscore_answer_id"), ["answer_id"], unique=False
        )

    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unreachable_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("unreachable_reason", sa.String(length=256), nullable=True))


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_column("unreachable_reason")
        batch_op.drop_column("unreachable_at")

    with op.batch_alter_table("sentimentscore", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sentimentscore_answer_id"))

    op.drop_table("sentimentscore")
    with op.batch_alter_table("inboundevent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inboundevent_received_at"))

    op.drop_table("inboundevent")
