"""Serve's clean-up: platform event ids are forgotten after a few days, not kept for ever."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlmodel import col, select

from bot.app import App
from bot.housekeeping import EVENT_ID_RETENTION, forget_kept_analytics, forget_old_event_ids
from storage import outbox as out_q
from storage.analytics_cache import KEEP_DAYS, KeptDay, store_days
from storage.database import transaction
from storage.inbound import record_inbound_event
from storage.inbox import NewUpdate, record_updates
from storage.tables import AnalyticsDay, InboundEvent, InboxUpdate, OutboxMessage


def remembered(app: App) -> list[str]:
    with transaction(app.db) as s:
        return [e.event_key for e in s.exec(select(InboundEvent).order_by(col(InboundEvent.id)))]


def test_event_ids_older_than_the_retention_are_forgotten(any_db_app: App) -> None:
    now = datetime.now(UTC)
    with transaction(any_db_app.db) as s:
        for key, age in (
            ("tg:1", timedelta(days=10)),
            ("tg:2", EVENT_ID_RETENTION),
            ("tg:3", timedelta(hours=1)),
        ):
            assert record_inbound_event(s, channel="telegram", event_key=key)
            event = s.exec(select(InboundEvent).where(InboundEvent.event_key == key)).one()
            event.received_at = now - age - timedelta(seconds=1)
            s.add(event)
    assert forget_old_event_ids(any_db_app.db, now=now) == 2
    assert remembered(any_db_app) == ["tg:3"]
    with transaction(any_db_app.db) as s:  # an id Telegram uses again is handled again
        assert record_inbound_event(s, channel="telegram", event_key="tg:1")
        assert not record_inbound_event(s, channel="telegram", event_key="tg:3")
    assert forget_old_event_ids(any_db_app.db, now=now) == 0


def test_processed_updates_and_finished_messages_are_forgotten_pending_ones_kept(
    any_db_app: App,
) -> None:
    now = datetime.now(UTC)
    old = now - EVENT_ID_RETENTION - timedelta(hours=1)
    with transaction(any_db_app.db) as s:
        updates = [NewUpdate(event_key=k, lane="telegram:1", body={}) for k in ("1", "2", "3")]
        record_updates(s, channel="telegram", updates=updates)
        sent = out_q.enqueue(s, channel="telegram", recipient="1", kind="message", body={})
        waiting = out_q.enqueue(s, channel="telegram", recipient="1", kind="message", body={})
        out_q.record_sent(s, message_id=sent, platform_message_id="7", platform_chat=None)
        for row in s.exec(select(InboxUpdate)):
            row.received_at = old
            row.processed_at = old if row.event_key != "3" else None  # "3" still waits
            s.add(row)
        for message in s.exec(select(OutboxMessage)):
            message.created_at = old
            s.add(message)
    assert forget_old_event_ids(any_db_app.db, now=now) == 3  # two updates, one sent message
    with transaction(any_db_app.db) as s:
        assert [u.event_key for u in s.exec(select(InboxUpdate))] == ["3"]
        assert [m.id for m in s.exec(select(OutboxMessage))] == [waiting]


def test_analytics_days_kept_a_month_ago_are_forgotten(any_db_app: App) -> None:
    now = datetime.now(UTC)
    kept = [KeptDay("UTC", "sig", date(2026, 11, day), 0, "[]") for day in (1, 2, 3)]
    store_days(any_db_app.db, kept[:2], now=now - timedelta(days=KEEP_DAYS, seconds=1))
    store_days(any_db_app.db, kept[2:], now=now - timedelta(days=1))
    assert forget_kept_analytics(any_db_app.db, now=now) == 2
    with transaction(any_db_app.db) as s:
        assert [d.day for d in s.exec(select(AnalyticsDay))] == [date(2026, 11, 3)]
