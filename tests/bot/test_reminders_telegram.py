"""Reminders and expiry on Telegram: the real python-telegram-bot client against the fake Bot
API, with serve's inbox and delivery workers, and the reminder worker on an injected clock.
What the customer got is read from the fake's records."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.engine import Engine
from bot.reminder_policy import ReminderPolicy
from bot.reminders import Outcome, ReminderWorker
from tests.fakes.clock import FakeClock
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.telegram_setup import (
    Pipeline,
    answers,
    conversations,
    keyboard,
    polling,
    telegram_settings,
)

ANN = 42
NPS = (
    "How likely are you to recommend us to a friend or colleague?\n"
    "(0 = Not at all likely, 10 = Extremely likely)"
)
CLOSED = "This survey has closed — thanks, we kept your note."


@pytest.fixture
def fake() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as api:
        yield api


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def tg_app(fake: FakeTelegramAPI, tmp_path: Path, clock: FakeClock) -> Iterator[App]:
    app = build_app(telegram_settings(fake, tmp_path))
    yield replace(
        app, engine=Engine(db=app.db, catalog=app.catalog, settings=app.settings, clock=clock)
    )
    app.close()


@pytest.fixture
async def channel(tg_app: App) -> AsyncIterator[Pipeline]:
    async with polling(tg_app) as ch:
        yield ch


async def pass_at(app: App, channel: Pipeline, clock: FakeClock, hours: float) -> list[Outcome]:
    """A pass of the reminder worker `hours` after the start; the delivery worker is woken."""
    clock.advance(hours=hours)
    worker = ReminderWorker(
        db=app.db,
        engine=app.engine,
        policy=ReminderPolicy.from_settings(app.settings),
        channels=("telegram",),
        clock=clock,
        on_queued=channel.delivery.nudge,
    )
    handled = await asyncio.to_thread(worker.run_due)
    if any(h.outcome == Outcome.REMINDED for h in handled):
        channel.delivery.nudge()
    return [h.outcome for h in handled]


async def start_survey(fake: FakeTelegramAPI) -> int:
    fake.send_text(ANN, "/start")
    await fake.wait_texts(ANN, 2)
    return fake.last_message_id(ANN)


async def test_the_reminder_repeats_the_question_and_an_answer_to_it_goes_on(
    fake: FakeTelegramAPI, tg_app: App, channel: Pipeline, clock: FakeClock
) -> None:
    nps_id = await start_survey(fake)
    assert await pass_at(tg_app, channel, clock, 23) == []
    assert await pass_at(tg_app, channel, clock, 1) == [Outcome.REMINDED]

    texts = await fake.wait_texts(ANN, 3)
    assert texts[2] == f"Reminder: {NPS}"
    _, question, reminder = fake.sent(ANN)
    assert keyboard(reminder) == keyboard(question) != []  # the same buttons
    reminder_id = fake.last_message_id(ANN)
    # One live keyboard per chat: the first one is taken away.
    await fake.wait_for(lambda: "reply_markup" not in fake.message_state(ANN, nps_id))

    fake.press(ANN, reminder_id, "a:nps:9")
    assert (await fake.wait_texts(ANN, 4))[-1] == "Great to hear! What did you like most?"
    assert [(a.question_id, a.value_int, a.late) for a in answers(tg_app)] == [("nps", 9, False)]
    assert fake.message_state(ANN, reminder_id)["text"] == f"Reminder: {NPS}\n\n✓ 9"

    assert await pass_at(tg_app, channel, clock, 30) == []  # one reminder by default
    assert [t for t in fake.texts(ANN) if t.startswith("Reminder:")] == [f"Reminder: {NPS}"]


async def test_after_the_expiry_a_late_press_and_a_late_message_are_kept_as_late_comments(
    fake: FakeTelegramAPI, tg_app: App, channel: Pipeline, clock: FakeClock
) -> None:
    await start_survey(fake)
    assert await pass_at(tg_app, channel, clock, 24) == [Outcome.REMINDED]
    await fake.wait_texts(ANN, 3)
    reminder_id = fake.last_message_id(ANN)
    assert await pass_at(tg_app, channel, clock, 48) == [Outcome.EXPIRED]
    assert [c.state for c in conversations(tg_app)] == ["expired"]

    fake.press(ANN, reminder_id, "a:nps:4")  # the expired survey's keyboard, still shown
    assert (await fake.wait_texts(ANN, 4))[-1] == CLOSED
    await fake.wait_for(lambda: len(fake.requests("answerCallbackQuery")) == 1)
    (answered,) = fake.requests("answerCallbackQuery")
    assert answered.body == {"callback_query_id": "q1"}  # the spinner stops
    await fake.wait_for(lambda: "reply_markup" not in fake.message_state(ANN, reminder_id))

    fake.send_text(ANN, "Sorry, I was travelling. Great service though!")
    assert (await fake.wait_texts(ANN, 5))[-1] == CLOSED
    assert [(a.question_id, a.value_text, a.late) for a in answers(tg_app)] == [
        ("_late_comment", "4", True),
        ("_late_comment", "Sorry, I was travelling. Great service though!", True),
    ]
    assert [c.state for c in conversations(tg_app)] == ["expired"]
    assert len(fake.texts(ANN)) == 5  # nothing else was sent
