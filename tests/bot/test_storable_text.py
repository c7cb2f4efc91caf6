"""Issue 12: NUL and other control characters reach the database as storable text, on SQLite
and PostgreSQL, and the customer's answer is not lost (`bot.storable_text`)."""

from __future__ import annotations

from itertools import count
from typing import Any

from sqlmodel import col, select

from adapters.telegram import raw_update, translate_json
from bot.app import App
from bot.inbox import Inbox, InboxWorker
from bot.storable_text import storable, storable_or_none
from storage.database import transaction
from storage.tables import Answer, Customer, InboxUpdate
from tests.fakes.telegram_api import FakeTelegramAPI

fake = FakeTelegramAPI()  # only its update builders: no server is started


def test_controls_are_dropped_but_newlines_and_tabs_kept() -> None:
    assert storable("a\x00b\x07c\x1bd\x7fe\x85f") == "abcdef"
    assert storable("one\ttwo\nthree\r\nfour\rfive") == "one\ttwo\nthree\nfour\nfive"
    assert storable("lone \ud800 surrogate") == "lone \ufffd surrogate"
    assert storable("Ça va ★ 👍🏽") == "Ça va ★ 👍🏽"
    assert storable_or_none(None) is None


async def test_nul_in_a_message_and_a_first_name_is_stored_and_the_answer_kept(
    any_db_app: App,
) -> None:
    app = any_db_app  # SQLite and PostgreSQL
    ids = count(1)

    def stamped(update: dict[str, Any]) -> dict[str, Any]:
        return {"update_id": next(ids), **update}

    updates = [
        stamped(fake.message(42, "/start", first_name="A\u0000nn")),
        stamped(fake.message(42, "\u00009\u0000", first_name="A\u0000nn")),
        stamped(fake.message(42, "Great\u0000 support\x07\nthanks", first_name="A\u0000nn")),
    ]
    inbox = Inbox(db=app.db)
    await inbox.record("telegram", [raw_update(u) for u in updates])
    worker = InboxWorker(db=app.db, engine=app.engine, translators={"telegram": translate_json})
    while await worker.process_one():
        pass
    with transaction(app.db) as s:
        failed = [u.last_error for u in s.exec(select(InboxUpdate)) if u.processed_at is None]
        assert failed == []
        customer = s.exec(select(Customer)).one()
        assert customer.first_name == "Ann"
        stored = s.exec(select(Answer).order_by(col(Answer.id))).all()
        assert [(a.question_id, a.value_int, a.value_text) for a in stored] == [
            ("nps", 9, None),
            ("liked_most", None, "Great support\nthanks"),
        ]
