"""closed days of the analytics page cached per zone and filter; triggers stamp changed days

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 06:00:00.000000

The triggers bump `analyticsstamp` for the UTC day of any answer that changes in a way the
analytics page counts, but only when that answer is more than a day old: the cache holds days
that ended at least two days before they were read (`storage.analytics_cache`), so a change to
a newer answer cannot touch a cached day, and the turn that records a fresh answer pays for one
comparison, not for a write to a shared row.

A later migration that rebuilds one of these tables on SQLite (batch "recreate") drops its
triggers: it must create them again (`create_triggers`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_OLD = "datetime('now', '-1 day')"
_SQLITE_BUMP = (
    "INSERT INTO analyticsstamp (day, version) {rows} "
    "ON CONFLICT (day) DO UPDATE SET version = version + 1;"
)


def _sqlite_answers(where: str) -> str:
    # `WHERE` is required before ON CONFLICT in an INSERT … SELECT (SQLite's parser).
    rows = f"SELECT date(answered_at), 1 FROM answer WHERE {where} AND answered_at < {_SQLITE_OLD}"
    return _SQLITE_BUMP.format(rows=rows)


def _sqlite_moment(moment: str) -> str:
    rows = f"SELECT date({moment}), 1 WHERE {moment} < {_SQLITE_OLD}"
    return _SQLITE_BUMP.format(rows=rows)


SQLITE_TRIGGERS = {
    "cxbot_analytics_answer_insert": (
        f"AFTER INSERT ON answer BEGIN {_sqlite_moment('NEW.answered_at')} END"
    ),
    "cxbot_analytics_answer_update": (
        "AFTER UPDATE ON answer BEGIN "
        f"{_sqlite_moment('OLD.answered_at')} {_sqlite_moment('NEW.answered_at')} END"
    ),
    "cxbot_analytics_answer_delete": (
        f"AFTER DELETE ON answer BEGIN {_sqlite_moment('OLD.answered_at')} END"
    ),
    "cxbot_analytics_score_insert": (
        f"AFTER INSERT ON sentimentscore BEGIN {_sqlite_answers('id = NEW.answer_id')} END"
    ),
    "cxbot_analytics_score_delete": (
        f"AFTER DELETE ON sentimentscore BEGIN {_sqlite_answers('id = OLD.answer_id')} END"
    ),
    "cxbot_analytics_correction_insert": (
        f"AFTER INSERT ON labelcorrection BEGIN {_sqlite_answers('id = NEW.answer_id')} END"
    ),
    "cxbot_analytics_correction_delete": (
        f"AFTER DELETE ON labelcorrection BEGIN {_sqlite_answers('id = OLD.answer_id')} END"
    ),
    "cxbot_analytics_invitation_insert": (
        "AFTER INSERT ON invitation WHEN NEW.conversation_id IS NOT NULL BEGIN "
        f"{_sqlite_answers('conversation_id = NEW.conversation_id')} END"
    ),
    "cxbot_analytics_invitation_update": (
        "AFTER UPDATE OF conversation_id, touchpoint ON invitation BEGIN "
        f"{_sqlite_answers('conversation_id = OLD.conversation_id')} "
        f"{_sqlite_answers('conversation_id = NEW.conversation_id')} END"
    ),
    "cxbot_analytics_context_update": (
        "AFTER UPDATE OF context ON conversation WHEN OLD.context IS NOT NEW.context BEGIN "
        f"{_sqlite_answers('conversation_id = NEW.id')} END"
    ),
}

_PG_FUNCTIONS = """
CREATE FUNCTION cxbot_analytics_bump(moment timestamptz) RETURNS void AS $$
BEGIN
  IF moment < now() - interval '1 day' THEN
    INSERT INTO analyticsstamp (day, version) VALUES ((moment AT TIME ZONE 'UTC')::date, 1)
    ON CONFLICT (day) DO UPDATE SET version = analyticsstamp.version + 1;
  END IF;
END $$ LANGUAGE plpgsql;

CREATE FUNCTION cxbot_analytics_bump_conversation(conversation integer) RETURNS void AS $$
BEGIN
  PERFORM cxbot_analytics_bump(a.answered_at) FROM answer a
   WHERE a.conversation_id = conversation AND a.answered_at < now() - interval '1 day';
END $$ LANGUAGE plpgsql;

CREATE FUNCTION cxbot_analytics_answer() RETURNS trigger AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN PERFORM cxbot_analytics_bump(OLD.answered_at); END IF;
  IF TG_OP <> 'DELETE' THEN PERFORM cxbot_analytics_bump(NEW.answered_at); END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE FUNCTION cxbot_analytics_label() RETURNS trigger AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    PERFORM cxbot_analytics_bump(a.answered_at) FROM answer a WHERE a.id = OLD.answer_id;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    PERFORM cxbot_analytics_bump(a.answered_at) FROM answer a WHERE a.id = NEW.answer_id;
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE FUNCTION cxbot_analytics_invitation() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.conversation_id IS NOT NULL THEN
    PERFORM cxbot_analytics_bump_conversation(OLD.conversation_id);
  END IF;
  IF NEW.conversation_id IS NOT NULL THEN
    PERFORM cxbot_analytics_bump_conversation(NEW.conversation_id);
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE FUNCTION cxbot_analytics_context() RETURNS trigger AS $$
BEGIN
  PERFORM cxbot_analytics_bump_conversation(NEW.id);
  RETURN NULL;
END $$ LANGUAGE plpgsql;
"""

PG_TRIGGERS = {
    "cxbot_analytics_answer": (
        "AFTER INSERT OR UPDATE OR DELETE ON answer FOR EACH ROW "
        "EXECUTE FUNCTION cxbot_analytics_answer()"
    ),
    "cxbot_analytics_score": (
        "AFTER INSERT OR UPDATE OR DELETE ON sentimentscore FOR EACH ROW "
        "EXECUTE FUNCTION cxbot_analytics_label()"
    ),
    "cxbot_analytics_correction": (
        "AFTER INSERT OR UPDATE OR DELETE ON labelcorrection FOR EACH ROW "
        "EXECUTE FUNCTION cxbot_analytics_label()"
    ),
    "cxbot_analytics_invitation_insert": (
        "AFTER INSERT ON invitation FOR EACH ROW EXECUTE FUNCTION cxbot_analytics_invitation()"
    ),
    "cxbot_analytics_invitation_update": (
        "AFTER UPDATE OF conversation_id, touchpoint ON invitation FOR EACH ROW "
        "EXECUTE FUNCTION cxbot_analytics_invitation()"
    ),
    # `json` has no equality operator: compared as text.
    "cxbot_analytics_context_update": (
        "AFTER UPDATE OF context ON conversation FOR EACH ROW "
        "WHEN (OLD.context::text IS DISTINCT FROM NEW.context::text) "
        "EXECUTE FUNCTION cxbot_analytics_context()"
    ),
}
_PG_TABLES = {
    "cxbot_analytics_answer": "answer",
    "cxbot_analytics_score": "sentimentscore",
    "cxbot_analytics_correction": "labelcorrection",
    "cxbot_analytics_invitation_insert": "invitation",
    "cxbot_analytics_invitation_update": "invitation",
    "cxbot_analytics_context_update": "conversation",
}
_PG_FUNCTION_NAMES = (
    "cxbot_analytics_context()",
    "cxbot_analytics_invitation()",
    "cxbot_analytics_label()",
    "cxbot_analytics_answer()",
    "cxbot_analytics_bump_conversation(integer)",
    "cxbot_analytics_bump(timestamptz)",
)


def create_triggers() -> None:
    """(Re)create the stamping triggers for the current dialect."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTIONS)
        for name, body in PG_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def drop_triggers() -> None:
    """Drop the stamping triggers (and PostgreSQL's functions behind them)."""
    if op.get_bind().dialect.name == "postgresql":
        for name, table in _PG_TABLES.items():
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        for function in _PG_FUNCTION_NAMES:
            op.execute(f"DROP FUNCTION IF EXISTS {function}")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "analyticsstamp",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )
    op.create_table(
        "analyticsday",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("stamp", sa.Integer(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("zone", "signature", "day", name="uq_analytics_day"),
    )
    create_triggers()


def downgrade() -> None:
    """Revert this migration."""
    drop_triggers()
    op.drop_table("analyticsday")
    op.drop_table("analyticsstamp")
