"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 10:41:49.910599
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "customer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("first_name", sa.String(length=128), nullable=True),
        sa.Column("last_name", sa.String(length=128), nullable=True),
        sa.Column("locale", sa.String(length=16), nullable=True),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "external_id", name="uq_customer_channel_ext"),
    )
    op.create_table(
        "flowversion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flow_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("flow_id", "version", name="uq_flow_version"),
    )
    with op.batch_alter_table("flowversion", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flowversion_flow_id"), ["flow_id"], unique=False)

    op.create_table(
        "conversation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("flow_id", sa.String(length=64), nullable=False),
        sa.Column("flow_version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("current_question", sa.String(length=64), nullable=True),
        sa.Column("invalid_attempts", sa.Integer(), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversation_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            "uq_conversation_active",
            ["customer_id"],
            unique=True,
            sqlite_where=sa.text("state = 'active'"),
            postgresql_where=sa.text("state = 'active'"),
        )

    op.create_table(
        "answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("flow_id", sa.String(length=64), nullable=False),
        sa.Column("flow_version", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.String(length=64), nullable=False),
        sa.Column("question_type", sa.String(length=16), nullable=False),
        sa.Column("raw_text", sa.Text(), nullable=False),
        sa.Column("value_int", sa.Integer(), nullable=True),
        sa.Column("value_text", sa.Text(), nullable=True),
        sa.Column("scale_min", sa.Integer(), nullable=True),
        sa.Column("scale_max", sa.Integer(), nullable=True),
        sa.Column("skipped", sa.Boolean(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("answer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_answer_answered_at"), ["answered_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_answer_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_answer_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_answer_flow_id"), ["flow_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_answer_question_type"), ["question_type"], unique=False
        )

    op.create_table(
        "reviewitem",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("conversation_id"),
    )
    with op.batch_alter_table("reviewitem", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reviewitem_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_reviewitem_status"), ["status"], unique=False)


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("reviewitem", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reviewitem_status"))
        batch_op.drop_index(batch_op.f("ix_reviewitem_customer_id"))

    op.drop_table("reviewitem")
    with op.batch_alter_table("answer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_answer_question_type"))
        batch_op.drop_index(batch_op.f("ix_answer_flow_id"))
        batch_op.drop_index(batch_op.f("ix_answer_customer_id"))
        batch_op.drop_index(batch_op.f("ix_answer_conversation_id"))
        batch_op.drop_index(batch_op.f("ix_answer_answered_at"))

    op.drop_table("answer")
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_conversation_active",
            sqlite_where=sa.text("state = 'active'"),
            postgresql_where=sa.text("state = 'active'"),
        )
        batch_op.drop_index(batch_op.f("ix_conversation_customer_id"))

    op.drop_table("conversation")
    with op.batch_alter_table("flowversion", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flowversion_flow_id"))

    op.drop_table("flowversion")
    op.drop_table("customer")
