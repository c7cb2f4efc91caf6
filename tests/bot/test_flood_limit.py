"""Issue 12: one customer's flood gets ONE notice per window and is not processed as turns;
everyone else is served. The count comes from the inbox rows (`bot.flood_limit`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from sqlmodel import col, select

from adapters.telegram import raw_update, translate_json
from bot.app import App
from bot.flood_limit import FloodLimit
from bot.inbox import Inbox, InboxWorker
from bot.texts import bot_text
from storage.database import transaction
from storage.tables import Answer, InboxUpdate, OutboxMessage
from tests.fakes.telegram_api import FakeTelegramAPI

fake = FakeTelegramAPI()  # only its update builders: no server is started
ids = count(1)
NOON = datetime(2026, 11, 30, 12, 0, 10, tzinfo=UTC)  # 10 s into a one-minute window
FLOOD = bot_text("flood", "en", seconds=60)


def text_update(chat_id: int, text: str) -> dict[str, Any]:
    return {"update_id": next(ids), **fake.message(chat_id, text)}


async def record(app: App, updates: list[dict[str, Any]], *, at: datetime) -> None:
    """Record updates as if they arrived at `at` (an injected arrival time, not a sleep)."""
    await Inbox(db=app.db).record("telegram", [raw_update(u) for u in updates])
    keys = [str(u["update_id"]) for u in updates]
    with transaction(app.db) as s:
        for row in s.exec(select(InboxUpdate).where(col(InboxUpdate.event_key).in_(keys))):
            row.received_at = at
            s.add(row)


async def process_all(app: App) -> None:
    limit = FloodLimit(messages=3, seconds=60)
    worker = InboxWorker(
        db=app.db, engine=app.engine, translators={"telegram": translate_json}, flood_limit=limit
    )
    while await worker.process_one():
        pass


def sent_texts(app: App, chat_id: int) -> list[str]:
    with transaction(app.db) as s:
        stmt = select(OutboxMessage).where(OutboxMessage.recipient == str(chat_id))
        return [str(m.body.get("text")) for m in s.exec(stmt.order_by(col(OutboxMessage.id)))]


async def test_a_flooding_customer_gets_one_notice_and_others_are_served(any_db_app: App) -> None:
    app = any_db_app  # SQLite and PostgreSQL
    flood = [text_update(42, "/start"), text_update(42, "9")]
    flood += [text_update(42, f"flood {i} yyy") for i in range(6)]
    others = [text_update(43, "/start"), text_update(43, "8")]
    await record(app, [*flood[:3], *others, *flood[3:]], at=NOON)
    await process_all(app)

    assert sent_texts(app, 42).count(FLOOD) == 1
    assert FLOOD not in sent_texts(app, 43)
    with transaction(app.db) as s:
        rows = s.exec(select(InboxUpdate).order_by(col(InboxUpdate.id))).all()
        ignored = [r.event_key for r in rows if r.last_error is not None]
        assert ignored == [str(u["update_id"]) for u in flood[3:]]  # all but the first 3
        assert all(r.processed_at is not None for r in rows)
        nps = s.exec(select(Answer).where(Answer.question_id == "nps")).all()
        assert sorted(a.value_int for a in nps) == [8, 9]  # both customers' answers kept
        # Ann's third message was served (her answer to the text question); no later one was.
        texts = s.exec(select(Answer).where(col(Answer.value_text).is_not(None))).all()
        assert [a.value_text for a in texts] == ["flood 0 yyy"]

    # In the next window Ann is served again.
    await record(app, [text_update(42, "/help")], at=NOON + timedelta(minutes=1))
    await process_all(app)
    assert sent_texts(app, 42)[-1] != FLOOD
    assert sent_texts(app, 42).count(FLOOD) == 1


async def test_updates_of_the_current_window_are_counted_by_the_claim_alike(
    any_db_app: App,
) -> None:
    """Arrived now (not backdated): the inbox claim's own count decides, with the same verdicts."""
    app = any_db_app
    # A window of about 31 years (aligned on the epoch): the test never straddles two.
    limit = FloodLimit(messages=3, seconds=10**9)
    updates = [text_update(52, "/start"), text_update(52, "9")]
    updates += [text_update(52, f"more {i} yyy") for i in range(4)]
    await Inbox(db=app.db).record("telegram", [raw_update(u) for u in updates])
    worker = InboxWorker(
        db=app.db, engine=app.engine, translators={"telegram": translate_json}, flood_limit=limit
    )
    while await worker.process_one():
        pass
    assert sent_texts(app, 52).count(bot_text("flood", "en", seconds=10**9)) == 1
    with transaction(app.db) as s:
        rows = s.exec(select(InboxUpdate).order_by(col(InboxUpdate.id))).all()
        assert [r.last_error is not None for r in rows] == [False] * 3 + [True] * 3
        assert all(r.processed_at is not None for r in rows)


def test_windows_are_fixed_and_aligned() -> None:
    limit = FloodLimit(messages=20, seconds=60)
    assert limit.window_start(NOON) == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    naive = datetime(2026, 11, 30, 12, 0, 59)
    assert limit.window_start(naive) == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
