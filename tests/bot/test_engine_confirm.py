"""Issue 12: a score read from a sentence is stored only after the customer confirms it
("Did you mean 2 out of 10?" with Yes/No buttons, or typed yes/no)."""

from __future__ import annotations

from sqlmodel import col, select

from adapters.telegram import raw_update, translate_json
from bot.app import App
from bot.inbox import Inbox, InboxWorker
from storage.database import transaction
from storage.tables import Answer, OutboxMessage
from tests.bot.test_engine import answers, asked, conversations, open_survey
from tests.fakes.telegram_api import FakeTelegramAPI

fake = FakeTelegramAPI()  # only its update builders: no server is started


async def test_a_number_in_a_sentence_is_confirmed_before_it_is_stored(app: App) -> None:
    ch = await open_survey(app)
    ch.pop_all()
    await ch.push("the courier was 2 hours late")
    (confirm,) = ch.pop_all()
    assert confirm.text == "Did you mean 2 out of 10?"
    assert [(c.label, c.payload) for c in confirm.choices] == [
        ("Yes", "a:nps:yes"),
        ("No", "a:nps:no"),
    ]
    assert answers(app) == []
    assert conversations(app)[0].pending_score == 2
    await ch.press("a:nps:yes")
    assert asked(ch) == "fix_first"
    assert [(a.question_id, a.value_int) for a in answers(app)] == [("nps", 2)]
    assert conversations(app)[0].pending_score is None


async def test_no_asks_the_question_again_and_stores_nothing(app: App) -> None:
    ch = await open_survey(app)
    ch.pop_all()
    await ch.push("flood 0 yyy")
    assert ch.pop_all()[0].text == "Did you mean 0 out of 10?"
    await ch.push("no")
    declined, again = ch.pop_all()
    assert declined.text == "OK, let's try again."
    assert again.question_id == "nps"
    assert answers(app) == [] and conversations(app)[0].pending_score is None
    await ch.press("a:nps:yes")  # the closed confirmation: no longer a yes to anything
    hint, again = ch.pop_all()
    assert hint.text.startswith("That button belongs to an earlier question")
    assert again.question_id == "nps"
    assert answers(app) == [] and conversations(app)[0].invalid_attempts == 0


async def test_typed_yes_confirms_and_a_new_number_replaces_the_pending_one(app: App) -> None:
    ch = await open_survey(app)
    ch.pop_all()
    await ch.push("I'd say 8")
    await ch.push("9")  # a new answer, unambiguous: taken as typed
    assert [(a.question_id, a.value_int) for a in answers(app)] == [("nps", 9)]
    await ch.push("")  # liked_most, optional
    await ch.push("maybe a 5 this time")  # CES 1–7
    assert ch.pop_all()[-1].text == "Did you mean 5 out of 7?"
    await ch.push("Yes!")
    assert [(a.question_id, a.value_int, a.raw_text) for a in answers(app)][-1] == (
        "ces",
        5,
        "Yes!",
    )


async def test_the_confirmation_speaks_spanish(app: App) -> None:
    ch = await open_survey(app, locale="es")
    ch.pop_all()
    await ch.push("el mensajero llegó 2 horas tarde")
    (confirm,) = ch.pop_all()
    assert confirm.text == "¿Quisiste decir 2 de 10?"
    assert [c.label for c in confirm.choices] == ["Sí", "No"]


async def test_through_the_telegram_inbox_the_confirmation_is_the_live_keyboard(
    any_db_app: App,
) -> None:
    """On a channel with an outbox (SQLite and PostgreSQL): the confirmation replaces the
    question's keyboard, and a typed yes stores the score and closes the confirmation."""
    app = any_db_app
    updates = [
        {"update_id": n, **fake.message(42, text)}
        for n, text in enumerate(["/start", "the courier was 2 hours late", "yes"], start=1)
    ]
    await Inbox(db=app.db).record("telegram", [raw_update(u) for u in updates])
    worker = InboxWorker(db=app.db, engine=app.engine, translators={"telegram": translate_json})
    while await worker.process_one():
        pass
    with transaction(app.db) as s:
        nps = s.exec(select(Answer).where(Answer.question_id == "nps")).one()
        assert (nps.value_int, nps.raw_text) == (2, "yes")
        rows = s.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
        texts = [str(r.body.get("text")) for r in rows if r.kind == "message"]
        assert "Did you mean 2 out of 10?" in texts
        confirm = next(r for r in rows if r.body.get("text") == "Did you mean 2 out of 10?")
        assert confirm.question_id == "nps" and confirm.closed_at is not None
