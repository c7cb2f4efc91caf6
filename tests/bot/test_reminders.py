"""Reminders and expiry (`bot.reminders`, scheduled by `bot.engine`) with an injected clock:
what a pass of the worker queues is read back from the outbox, what it records from the
conversation row. No platform is involved (`test_reminders_telegram.py` has the fake Bot API).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.app import App, build_app
from bot.config import load_settings
from bot.engine import Engine
from bot.messages import ButtonPress, IncomingMessage, MessageKind
from bot.metrics import build_report
from bot.reminder_policy import ReminderPolicy, as_utc
from bot.reminders import Handled, Outcome, ReminderWorker
from bot.texts import bot_text
from storage import customers as cust_q
from storage import outbox as out_q
from storage.database import transaction
from storage.reports import late_comment_count, score_answers
from storage.tables import Answer, Conversation, Customer, OutboxMessage
from tests.fakes.clock import FakeClock

TG = "telegram"
ANN = "42"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday morning
NPS = (
    "How likely are you to recommend us to a friend or colleague?\n"
    "(0 = Not at all likely, 10 = Extremely likely)"
)
LIKED = "Great to hear! What did you like most?"
CLOSED = "This survey has closed — thanks, we kept your note."


def make_app(tmp_path: Path, clock: FakeClock, **env: str) -> App:
    """The app on SQLite, its engine on `clock`; `env`: CXBOT_* settings without the prefix."""
    environ = {
        "CXBOT_GENERAL__DATA_DIR": str(tmp_path / "data"),
        "CXBOT_SENTIMENT__ENABLED": "false",
        **{f"CXBOT_{k.upper()}": v for k, v in env.items()},
    }
    app = build_app(load_settings(None, environ=environ))
    engine = Engine(db=app.db, catalog=app.catalog, settings=app.settings, clock=clock)
    return replace(app, engine=engine)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock) -> Iterator[App]:
    application = make_app(tmp_path, clock)
    yield application
    application.close()


def worker(app: App, clock: FakeClock) -> ReminderWorker:
    policy = ReminderPolicy.from_settings(app.settings)
    return ReminderWorker(
        db=app.db, engine=app.engine, policy=policy, channels=(TG, "slack"), clock=clock
    )


def run_at(app: App, clock: FakeClock, hours: float) -> list[Outcome]:
    """One pass of the worker `hours` after T0: what it did with each due survey."""
    clock.set(T0 + timedelta(hours=hours))
    return [h.outcome for h in worker(app, clock).run_due()]


# -- reading what happened ----------------------------------------------------------------------


def outbox(app: App, after: int = 0) -> list[OutboxMessage]:
    with transaction(app.db) as s:
        stmt = select(OutboxMessage).where(col(OutboxMessage.id) > after)
        return list(s.exec(stmt.order_by(col(OutboxMessage.id))))


def last_id(app: App) -> int:
    rows = outbox(app)
    return (rows[-1].id or 0) if rows else 0


def shown(row: OutboxMessage) -> tuple[Any, ...]:
    """A row as a test reads it: kind, purpose and what it sends or refers to."""
    body = row.body
    if row.kind == out_q.KIND_MESSAGE:
        return ("message", row.purpose, body["text"], row.question_id)
    if row.kind == out_q.KIND_BUTTON:
        return ("button", body["query_id"], body["text"])
    return ("close", body["ref"], body["message_id"], body["label"])


def survey(app: App, user: str = ANN) -> Conversation:
    """The customer's latest survey."""
    with transaction(app.db) as s:
        stmt = (
            select(Conversation)
            .join(Customer, col(Customer.id) == col(Conversation.customer_id))
            .where(Customer.external_id == user)
            .order_by(col(Conversation.id).desc())
        )
        return s.exec(stmt).first()  # type: ignore[return-value]


def answers(app: App) -> list[tuple[str, int | None, str | None, str, bool]]:
    with transaction(app.db) as s:
        rows = s.exec(select(Answer).order_by(col(Answer.id)))
        return [(a.question_id, a.value_int, a.value_text, a.raw_text, a.late) for a in rows]


def delivered(app: App) -> dict[str, str]:
    """Record every queued message as sent, numbered as Telegram numbers a chat's messages;
    {question id or text: platform message id} of the messages just recorded."""
    ids: dict[str, str] = {}
    with transaction(app.db) as s:
        for n, row in enumerate(outbox(app), start=1):
            if row.sent_at is None and row.kind == out_q.KIND_MESSAGE:
                assert row.id is not None
                out_q.record_sent(
                    s, message_id=row.id, platform_message_id=str(n), platform_chat=None
                )
                ids[row.question_id or row.body["text"]] = str(n)
    return ids


def text(words: str, user: str = ANN, channel: str = TG) -> IncomingMessage:
    return IncomingMessage(channel=channel, user_id=user, text=words)


def press(payload: str, message_id: str, label: str, query_id: str = "q1") -> IncomingMessage:
    return IncomingMessage(
        channel=TG,
        user_id=ANN,
        kind=MessageKind.BUTTON,
        payload=payload,
        press=ButtonPress(query_id=query_id, message_id=message_id, label=label),
    )


async def begin(app: App, user: str = ANN, channel: str = TG) -> None:
    await app.engine.begin(channel=channel, user_id=user)


# -- reminders ---------------------------------------------------------------------------------


async def test_a_survey_not_started_is_reminded_once_after_a_day_of_silence(
    app: App, clock: FakeClock
) -> None:
    await begin(app)
    nps_row = outbox(app)[-1]
    assert survey(app).remind_at is not None
    assert as_utc(survey(app).remind_at) == T0 + timedelta(hours=24)  # type: ignore[arg-type]
    assert as_utc(survey(app).expires_at) == T0 + timedelta(hours=72)  # type: ignore[arg-type]

    before = last_id(app)
    assert run_at(app, clock, 23.99) == []
    assert outbox(app, before) == []

    assert run_at(app, clock, 24) == [Outcome.REMINDED]
    close, reminder = outbox(app, before)
    # The question's old buttons go, and the same question comes again with the same buttons.
    assert shown(close) == ("close", nps_row.id, None, None)
    assert shown(reminder) == ("message", "reminder", f"Reminder: {NPS}", "nps")
    assert reminder.body["choices"] == nps_row.body["choices"]
    assert reminder.body["choice_style"] == nps_row.body["choice_style"] == "scale"
    assert (survey(app).reminders_sent, survey(app).remind_at) == (1, None)

    assert run_at(app, clock, 48) == []  # one reminder by default
    assert len(outbox(app, before)) == 2


async def test_a_survey_left_half_way_is_reminded_of_its_open_question(
    app: App, clock: FakeClock
) -> None:
    await begin(app)
    clock.set(T0 + timedelta(hours=1))
    await app.engine.handle(text("9"))  # NPS answered; "What did you like most?" asked
    before = last_id(app)
    assert run_at(app, clock, 24.5) == []  # a day after the *last* question: 25 h
    assert run_at(app, clock, 25) == [Outcome.REMINDED]
    assert [shown(r) for r in outbox(app, before)] == [
        ("message", "reminder", f"Reminder: {LIKED}", None)  # a text question: no buttons
    ]


async def test_a_reply_the_bot_could_not_read_restarts_the_silence(
    app: App, clock: FakeClock
) -> None:
    await begin(app)
    clock.set(T0 + timedelta(hours=10))
    await app.engine.handle(text("no idea"))  # a hint: the question is asked again
    assert run_at(app, clock, 24) == []
    assert run_at(app, clock, 34) == [Outcome.REMINDED]


async def test_count_and_spacing(tmp_path: Path, clock: FakeClock) -> None:
    app = make_app(tmp_path, clock, reminders__count="3", reminders__spacing_hours="6")
    try:
        await begin(app)
        done = {h: run_at(app, clock, h) for h in range(0, 80)}
        assert {h: o for h, o in done.items() if o} == {
            24: [Outcome.REMINDED],
            30: [Outcome.REMINDED],
            36: [Outcome.REMINDED],
            72: [Outcome.EXPIRED],
        }
        reminders = [r for r in outbox(app) if r.purpose == "reminder"]
        assert [r.body["text"] for r in reminders] == [f"Reminder: {NPS}"] * 3
        assert survey(app).reminders_sent == 3
    finally:
        app.close()


async def test_count_zero_sends_no_reminder_but_the_survey_still_expires(
    tmp_path: Path, clock: FakeClock
) -> None:
    app = make_app(tmp_path, clock, reminders__count="0")
    try:
        await begin(app)
        assert survey(app).remind_at is None
        before = last_id(app)
        assert run_at(app, clock, 48) == []
        assert run_at(app, clock, 72) == [Outcome.EXPIRED]
        assert outbox(app, before) == []
        assert survey(app).state == "expired"
    finally:
        app.close()


async def test_expiry_zero_keeps_surveys_open(tmp_path: Path, clock: FakeClock) -> None:
    app = make_app(tmp_path, clock, reminders__expire_after_hours="0")
    try:
        await begin(app)
        assert survey(app).expires_at is None
        assert run_at(app, clock, 24) == [Outcome.REMINDED]
        assert run_at(app, clock, 24 * 30) == []
        assert survey(app).state == "active"
    finally:
        app.close()


@pytest.mark.parametrize(
    ("zone", "started", "reminded"),
    [
        # Begun at 21:00 in New York: due at 21:00 the next evening, sent at 08:00 after.
        ("America/New_York", datetime(2026, 3, 2, 2, 0), datetime(2026, 3, 3, 13, 0)),
        # The same across the change to summer time (8 March): 08:00 is 12:00 UTC then.
        ("America/New_York", datetime(2026, 3, 7, 2, 0), datetime(2026, 3, 8, 12, 0)),
        # 02:00 UTC is 11:00 in Tokyo: no quiet hours there, sent when due.
        ("Asia/Tokyo", datetime(2026, 3, 2, 2, 0), datetime(2026, 3, 3, 2, 0)),
        # No zone known: [invitations] default_time_zone (UTC here), quiet until 08:00 UTC.
        (None, datetime(2026, 3, 2, 2, 0), datetime(2026, 3, 3, 8, 0)),
    ],
)
async def test_quiet_hours_move_a_reminder_in_the_customers_zone(
    tmp_path: Path, clock: FakeClock, zone: str | None, started: datetime, reminded: datetime
) -> None:
    app = make_app(tmp_path, clock, invitations__quiet_hours="21:00-08:00")
    try:
        with transaction(app.db) as s:
            ann = cust_q.upsert_customer(s, channel=TG, external_id=ANN)
            ann.time_zone = zone
            s.add(ann)
        clock.set(started.replace(tzinfo=UTC))
        await begin(app)
        due = clock.now + timedelta(hours=24)
        clock.set(due)
        handled = worker(app, clock).run_due()
        if reminded.replace(tzinfo=UTC) == due:
            assert [h.outcome for h in handled] == [Outcome.REMINDED]
            return
        assert [h.outcome for h in handled] == [Outcome.POSTPONED]
        assert as_utc(survey(app).remind_at) == reminded.replace(tzinfo=UTC)  # type: ignore[arg-type]
        clock.set(reminded.replace(tzinfo=UTC) - timedelta(minutes=1))
        assert worker(app, clock).run_due() == []
        clock.set(reminded.replace(tzinfo=UTC))
        assert [h.outcome for h in worker(app, clock).run_due()] == [Outcome.REMINDED]
    finally:
        app.close()


async def test_a_reminder_the_quiet_hours_would_push_past_the_expiry_is_dropped(
    tmp_path: Path, clock: FakeClock
) -> None:
    app = make_app(
        tmp_path,
        clock,
        invitations__quiet_hours="21:00-08:00",
        reminders__expire_after_hours="30",
    )
    try:
        clock.set(datetime(2026, 3, 2, 22, 0, tzinfo=UTC))
        await begin(app)  # due at 22:00 tomorrow (quiet), expires at 04:00 the day after
        clock.advance(hours=24)
        assert [h.outcome for h in worker(app, clock).run_due()] == [Outcome.DROPPED]
        assert survey(app).remind_at is None
        clock.advance(hours=6)
        assert [h.outcome for h in worker(app, clock).run_due()] == [Outcome.EXPIRED]
    finally:
        app.close()


async def test_a_completed_survey_gets_no_reminder(app: App, clock: FakeClock) -> None:
    await begin(app)
    for typed in ("9", "", "6", "5", ""):  # NPS, liked most, CES, CSAT, anything else
        await app.engine.handle(text(typed))
    assert survey(app).state == "completed"
    before = last_id(app)
    assert run_at(app, clock, 24) == []
    assert run_at(app, clock, 100) == []
    assert outbox(app, before) == []
    assert survey(app).state == "completed"


async def test_an_answer_after_a_reminder_continues_the_survey(app: App, clock: FakeClock) -> None:
    await begin(app)
    delivered(app)
    assert run_at(app, clock, 24) == [Outcome.REMINDED]
    ids = delivered(app)  # the reminder reached Ann
    before = last_id(app)
    clock.set(T0 + timedelta(hours=26))
    await app.engine.handle(press("a:nps:9", ids["nps"], "9"))
    assert [shown(r) for r in outbox(app, before)] == [
        ("button", "q1", None),
        ("close", None, ids["nps"], "9"),
        ("message", "survey", LIKED, None),
    ]
    assert answers(app) == [("nps", 9, None, "a:nps:9", False)]
    conversation = survey(app)
    assert (conversation.state, conversation.current_question) == ("active", "liked_most")
    assert conversation.remind_at is None  # its one reminder is used
    assert run_at(app, clock, 60) == []


async def test_unreachable_customers_are_not_reminded(app: App, clock: FakeClock) -> None:
    await begin(app)
    with transaction(app.db) as s:
        ann = cust_q.get_customer(s, channel=TG, external_id=ANN)
        assert ann is not None
        cust_q.set_unreachable(s, customer=ann, reason="Forbidden: bot was blocked by the user")
    before = last_id(app)
    assert run_at(app, clock, 24) == [Outcome.DROPPED]
    assert outbox(app, before) == []
    assert run_at(app, clock, 72) == [Outcome.EXPIRED]


async def test_slack_surveys_are_reminded_and_console_ones_never(
    app: App, clock: FakeClock
) -> None:
    await begin(app, "U0ANN", "slack")
    await begin(app, "ann", "console")
    assert (survey(app, "ann").remind_at, survey(app, "ann").expires_at) == (None, None)
    before = last_id(app)
    assert run_at(app, clock, 24) == [Outcome.REMINDED]
    (reminder,) = [r for r in outbox(app, before) if r.kind == out_q.KIND_MESSAGE]
    assert (reminder.lane, reminder.body["text"]) == ("slack:U0ANN", f"Reminder: {NPS}")
    assert run_at(app, clock, 72) == [Outcome.EXPIRED]
    assert survey(app, "ann").state == "active"


async def test_only_the_channels_of_the_worker_are_handled(app: App, clock: FakeClock) -> None:
    await begin(app)
    clock.set(T0 + timedelta(hours=80))
    policy = ReminderPolicy.from_settings(app.settings)
    slack_only = ReminderWorker(
        db=app.db, engine=app.engine, policy=policy, channels=("slack",), clock=clock
    )
    assert slack_only.run_due() == []
    assert survey(app).state == "active"


async def test_a_reminder_that_cannot_be_built_is_tried_later_and_others_go_on(
    app: App, clock: FakeClock
) -> None:
    await begin(app, "1")
    await begin(app, "2")
    with transaction(app.db) as s:
        broken = s.get(Conversation, survey(app, "1").id)
        assert broken is not None
        broken.current_question = "no_such_question"  # as if its stored flow were damaged
        s.add(broken)
    clock.set(T0 + timedelta(hours=24))
    handled = worker(app, clock).run_due()
    assert handled == [
        Handled(survey(app, "1").id or 0, Outcome.FAILED),
        Handled(survey(app, "2").id or 0, Outcome.REMINDED),
    ]
    assert as_utc(survey(app, "1").remind_at) == T0 + timedelta(hours=25)  # type: ignore[arg-type]
    assert survey(app, "1").reminders_sent == 0
    clock.set(T0 + timedelta(hours=24, minutes=30))
    assert worker(app, clock).run_due() == []  # not tried again at every pass


# -- expiry and late replies --------------------------------------------------------------------


async def test_expiry_closes_the_survey_without_a_message(app: App, clock: FakeClock) -> None:
    await begin(app)
    assert run_at(app, clock, 24) == [Outcome.REMINDED]
    before = last_id(app)
    assert run_at(app, clock, 71.9) == []
    assert run_at(app, clock, 72) == [Outcome.EXPIRED]
    assert outbox(app, before) == []
    closed = survey(app)
    assert (closed.state, closed.completed_at, closed.remind_at) == ("expired", None, None)
    assert closed.current_question == "nps"  # where Ann stopped
    assert run_at(app, clock, 200) == []


async def test_a_late_reply_is_kept_as_a_late_comment_and_reports_are_unaffected(
    app: App, clock: FakeClock
) -> None:
    await begin(app)
    await app.engine.handle(text("9"))  # half-way: NPS answered
    assert run_at(app, clock, 72) == [Outcome.EXPIRED]
    before = last_id(app)

    replies = await app.engine.handle(text("Sorry, I was away. The delivery was late."))
    assert [r.text for r in replies] == [CLOSED]
    assert [shown(r) for r in outbox(app, before)] == [("message", "survey", CLOSED, None)]
    late = ("_late_comment", None, "Sorry, I was away. The delivery was late.")
    assert answers(app) == [
        ("nps", 9, None, "9", False),
        (*late, late[2], True),
    ]
    assert (survey(app).state, survey(app).completed_at) == ("expired", None)  # no new survey

    with transaction(app.db) as s:
        scores = score_answers(s)
        assert [(r.question_type, r.value) for r in scores] == [("nps", 9)]  # the real answer
        assert late_comment_count(s) == 1
    report = build_report(scores, late_comments=1)
    assert (report.overall.nps.n, report.to_dict()["late_comments"]) == (1, 1)


async def test_a_button_pressed_on_the_expired_surveys_keyboard(app: App, clock: FakeClock) -> None:
    await begin(app)
    ids = delivered(app)
    assert run_at(app, clock, 72) == [Outcome.EXPIRED]  # the expiry goes before any reminder
    before = last_id(app)

    await app.engine.handle(press("a:nps:3", ids["nps"], "3", query_id="q7"))
    assert [shown(r) for r in outbox(app, before)] == [
        ("button", "q7", None),  # the spinner stops
        ("close", None, ids["nps"], None),  # its buttons go, no choice shown
        ("message", "survey", CLOSED, None),
    ]
    assert answers(app) == [("_late_comment", None, "3", "a:nps:3", True)]
    with transaction(app.db) as s:
        assert score_answers(s) == []
    assert survey(app).state == "expired"


async def test_late_replies_after_expiry_speak_the_surveys_language(
    app: App, clock: FakeClock
) -> None:
    await app.engine.begin(channel=TG, user_id=ANN, locale="es")
    assert run_at(app, clock, 72) == [Outcome.EXPIRED]
    replies = await app.engine.handle(text("hola"))
    assert [r.text for r in replies] == [bot_text("expired", "es")]


async def test_a_new_survey_after_an_expired_one_starts_afresh(app: App, clock: FakeClock) -> None:
    await begin(app)
    assert run_at(app, clock, 72) == [Outcome.EXPIRED]
    clock.set(T0 + timedelta(hours=100))
    await begin(app)
    fresh = survey(app)
    assert (fresh.state, fresh.reminders_sent) == ("active", 0)
    assert as_utc(fresh.remind_at) == T0 + timedelta(hours=124)  # type: ignore[arg-type]
    assert as_utc(fresh.expires_at) == T0 + timedelta(hours=172)  # type: ignore[arg-type]


async def test_a_late_reply_with_a_churn_word_reaches_the_review_queue(
    app: App, clock: FakeClock
) -> None:
    from storage.tables import ReviewItem

    await begin(app)
    assert run_at(app, clock, 72) == [Outcome.EXPIRED]
    await app.engine.handle(text("Never mind, I want a refund"))
    with transaction(app.db) as s:
        (item,) = s.exec(select(ReviewItem))
    assert item.conversation_id == survey(app).id  # the expired survey, for support to see
    assert [r["question_id"] for r in item.reasons] == ["_late_comment"]
