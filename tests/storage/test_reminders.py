"""`storage.reminders` on SQLite and PostgreSQL: what is due, in which order, claimed by whom."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from storage import conversations, customers, flow_versions
from storage import reminders as remind_q
from storage.database import open_database, transaction
from storage.tables import Conversation, ConversationState
from tests.conftest import _postgres_database

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


def survey(
    db: Engine,
    user: str,
    *,
    channel: str = "telegram",
    remind_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> int:
    """An active survey with this schedule; its id."""
    with transaction(db) as s:
        cust = customers.upsert_customer(s, channel=channel, external_id=user)
        version = flow_versions.publish_flow_version(s, flow_id="f", checksum="c", source="s")
        assert cust.id is not None
        conv = conversations.start_conversation(
            s,
            customer_id=cust.id,
            channel=channel,
            flow_id="f",
            flow_version=version.version,
            locale="en",
            context={},
        )
        remind_q.set_reminder(s, conversation=conv, remind_at=remind_at)
        remind_q.set_expiry(s, conversation=conv, expires_at=expires_at)
        assert conv.id is not None
        return conv.id


def claim(db: Engine, channels: tuple[str, ...] = ("telegram", "slack")) -> tuple[int, str] | None:
    """Claim one due survey and record a reminder for it (so it is no longer due)."""
    with transaction(db) as s:
        claimed = remind_q.claim_due_survey(s, channels=channels, now=NOW)
        if claimed is None:
            return None
        conv, cust = claimed
        remind_q.record_reminder(s, conversation=conv, next_at=None)
        if conv.expires_at is not None:
            remind_q.expire_conversation(s, conversation=conv, now=NOW)
        assert conv.id is not None
        return conv.id, cust.external_id


def test_expiries_come_first_then_reminders_each_in_due_order(db: Engine) -> None:
    late_reminder = survey(db, "a", remind_at=NOW - H)
    early_reminder = survey(db, "b", remind_at=NOW - 2 * H)
    expiry = survey(db, "c", remind_at=NOW - 3 * H, expires_at=NOW)
    survey(db, "d", remind_at=NOW + H, expires_at=NOW + 2 * H)  # nothing due yet
    assert [claim(db) for _ in range(4)] == [
        (expiry, "c"),
        (early_reminder, "b"),
        (late_reminder, "a"),
        None,
    ]


def test_only_active_surveys_of_the_given_channels_are_due(db: Engine) -> None:
    slack = survey(db, "U1", channel="slack", remind_at=NOW)
    console = survey(db, "ann", channel="console", remind_at=NOW)
    finished = survey(db, "bo", remind_at=NOW, expires_at=NOW)
    with transaction(db) as s:
        done = s.get(Conversation, finished)
        assert done is not None
        conversations.end_conversation(s, conversation=done, state=ConversationState.COMPLETED)
    assert claim(db, ("telegram",)) is None
    assert claim(db, ("telegram", "slack")) == (slack, "U1")
    assert claim(db, ("telegram", "slack")) is None
    with transaction(db) as s:
        still = s.get(Conversation, console)
        assert still is not None and still.remind_at is not None  # never claimed


def test_expiring_keeps_where_the_customer_stopped_and_counts_reminders(db: Engine) -> None:
    conv_id = survey(db, "a", remind_at=NOW, expires_at=NOW + 48 * H)
    with transaction(db) as s:
        claimed = remind_q.claim_due_survey(s, channels=["telegram"], now=NOW)
        assert claimed is not None
        conv = claimed[0]
        conversations.save_progress(s, conversation=conv, current_question="nps")
        remind_q.record_reminder(s, conversation=conv, next_at=NOW + 24 * H)
    with transaction(db) as s:
        claimed = remind_q.claim_due_survey(s, channels=["telegram"], now=NOW + 48 * H)
        assert claimed is not None and claimed[0].id == conv_id
        remind_q.expire_conversation(s, conversation=claimed[0], now=NOW + 48 * H)
    with transaction(db) as s:
        stored = s.get(Conversation, conv_id)
        assert stored is not None
        assert (stored.state, stored.current_question, stored.reminders_sent) == (
            "expired",
            "nps",
            1,
        )
        assert (stored.remind_at, stored.completed_at) == (None, None)


def test_a_postponed_reminder_by_id(db: Engine) -> None:
    conv_id = survey(db, "a", remind_at=NOW)
    with transaction(db) as s:
        remind_q.postpone_reminder_of(s, conversation_id=conv_id, remind_at=NOW + H)
    assert claim(db) is None
    with transaction(db) as s:
        assert remind_q.claim_due_survey(s, channels=["telegram"], now=NOW + H) is not None


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _postgres_database()


@pytest.mark.postgres
def test_a_survey_claimed_by_one_transaction_is_skipped_by_another(pg_url: str) -> None:
    """PostgreSQL only: on SQLite, with one writer, a second transaction waits instead."""
    db = open_database(pg_url)
    try:
        first = survey(db, "a", remind_at=NOW - H)
        second = survey(db, "b", remind_at=NOW)
        with transaction(db) as one:
            held = remind_q.claim_due_survey(one, channels=["telegram"], now=NOW)
            assert held is not None and held[0].id == first
            with transaction(db) as other:  # another connection, while the first holds its lock
                skipped = remind_q.claim_due_survey(other, channels=["telegram"], now=NOW)
                assert skipped is not None and skipped[0].id == second
                again = remind_q.claim_due_survey(other, channels=["telegram"], now=NOW)
                assert again is not None and again[0].id == second  # its own lock: same row
    finally:
        db.dispose()


def test_the_migration_marks_late_comments_kept_before_it(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from storage.database import MIGRATIONS_DIR, create_db_engine, migrate

    engine = create_db_engine(database_url)
    try:
        with engine.begin() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0007")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO customer (id, channel, external_id, created_at)"
                    " VALUES (1, 'telegram', '42', :t)"
                ),
                {"t": NOW},
            )
            conn.execute(
                text(
                    "INSERT INTO conversation (id, customer_id, channel, flow_id, flow_version,"
                    " state, invalid_attempts, locale, context, started_at, updated_at,"
                    " redeliver_attempts) VALUES (1, 1, 'telegram', 'f', 1, 'completed', 0, 'en',"
                    " '{}', :t, :t, 0)"
                ),
                {"t": NOW},
            )
            for answer_id, question in ((1, "nps"), (2, "_late_comment")):
                conn.execute(
                    text(
                        "INSERT INTO answer (id, conversation_id, customer_id, channel, flow_id,"
                        " flow_version, question_id, question_type, raw_text, skipped, truncated,"
                        " answered_at) VALUES (:id, 1, 1, 'telegram', 'f', 1, :q, 'text', 'x',"
                        " false, false, :t)"
                    ),
                    {"id": answer_id, "q": question, "t": NOW},
                )
        migrate(engine)
        with engine.connect() as conn:
            late = conn.execute(text("SELECT late FROM answer ORDER BY id")).scalars().all()
            sent = conn.execute(text("SELECT reminders_sent FROM conversation")).scalar_one()
        assert [bool(v) for v in late] == [False, True]
        assert sent == 0
    finally:
        engine.dispose()
