"""Telegram by long polling: the real python-telegram-bot Bot against the fake Bot API, with
the inbox and delivery workers that `cxbot serve` runs.

Each test pushes updates as Telegram would and asserts on what the bot sent (texts, keyboards,
callback answers, edits) and on what was stored.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from adapters.telegram_links import encode_start_payload
from bot.app import App, build_app
from storage.database import transaction
from storage.review_queue import delivery_failures as stored_failures
from storage.tables import DeliveryFailure
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.telegram_setup import (
    Pipeline,
    answers,
    conversations,
    customer,
    keyboard,
    polling,
    telegram_settings,
)

ANN = 42
NPS = "How likely are you to recommend us to a friend or colleague?\n(0 = Not at all likely, 10 = Extremely likely)"  # noqa: E501
INTRO = "Hi Ann! We'd love your feedback on your recent request. It takes about a minute."


@pytest.fixture
def fake() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as api:
        yield api


@pytest.fixture
def tg_app(fake: FakeTelegramAPI, tmp_path: Path) -> Iterator[App]:
    app = build_app(telegram_settings(fake, tmp_path))
    yield app
    app.close()


@pytest.fixture
async def channel(tg_app: App) -> AsyncIterator[Pipeline]:
    async with polling(tg_app) as ch:
        yield ch


def delivery_failures(app: App) -> list[DeliveryFailure]:
    with transaction(app.db) as s:
        return stored_failures(s)


async def start_survey(fake: FakeTelegramAPI, chat: int = ANN) -> int:
    """Send /start and wait for the NPS question; its message id."""
    fake.send_text(chat, "/start")
    await fake.wait_texts(chat, 2)
    return fake.last_message_id(chat)


async def test_full_survey_with_buttons_and_typing(
    fake: FakeTelegramAPI, tg_app: App, channel: Pipeline
) -> None:
    nps_id = await start_survey(fake)
    intro, nps = fake.sent(ANN)
    assert (intro["text"], keyboard(intro)) == (INTRO, [])
    assert nps["text"] == NPS
    assert keyboard(nps) == [
        [(str(v), f"a:nps:{v}") for v in range(6)],
        [(str(v), f"a:nps:{v}") for v in range(6, 11)],
    ]

    fake.press(ANN, nps_id, "a:nps:9")
    assert (await fake.wait_texts(ANN, 3))[-1] == "Great to hear! What did you like most?"
    (answer,) = fake.requests("answerCallbackQuery")
    assert answer.body == {"callback_query_id": "q1"}  # no notice: the spinner just stops
    (edit,) = fake.requests("editMessageText")
    assert edit.body == {"chat_id": ANN, "message_id": nps_id, "text": NPS + "\n\n✓ 9"}
    assert "reply_markup" not in fake.message_state(ANN, nps_id)  # keyboard gone

    fake.send_text(ANN, "Great support, thanks!")
    await fake.wait_texts(ANN, 4)
    ces = fake.sent(ANN)[-1]
    assert ces["text"].startswith("How easy was it to get your issue resolved?")
    assert keyboard(ces) == [[(str(v), f"a:ces:{v}") for v in range(1, 8)]]
    fake.press(ANN, fake.last_message_id(ANN), "a:ces:6")
    await fake.wait_texts(ANN, 5)
    csat = fake.sent(ANN)[-1]
    assert [label for label, _ in keyboard(csat)[0]] == ["1 😠", "2 🙁", "3 😐", "4 🙂", "5 😍"]
    csat_id = fake.last_message_id(ANN)

    fake.send_text(ANN, "★★★★☆")  # typed, although buttons were offered
    await fake.wait_texts(ANN, 6)
    assert fake.texts(ANN)[-1] == "Anything else you'd like to tell us?"
    (removed,) = fake.requests("editMessageReplyMarkup")
    assert removed.body == {"chat_id": ANN, "message_id": csat_id}  # its keyboard taken away
    fake.send_text(ANN, "skip")
    assert (await fake.wait_texts(ANN, 7))[-1] == "Thank you for your feedback, Ann!"

    assert [(a.question_id, a.value_int, a.value_text, a.raw_text) for a in answers(tg_app)] == [
        ("nps", 9, None, "a:nps:9"),
        ("liked_most", None, "Great support, thanks!", "Great support, thanks!"),
        ("ces", 6, None, "a:ces:6"),
        ("csat", 4, None, "★★★★☆"),
        ("anything_else", None, None, "skip"),
    ]
    assert {a.channel for a in answers(tg_app)} == {"telegram"}
    stored = customer(tg_app)
    assert stored is not None and (stored.first_name, stored.locale) == ("Ann", "en")
    assert [c.state for c in conversations(tg_app)] == ["completed"]


async def test_double_tap_stores_once_and_only_answers_the_second_tap(
    fake: FakeTelegramAPI, tg_app: App, channel: Pipeline
) -> None:
    nps_id = await start_survey(fake)
    # Two taps before the bot had a chance to edit the keyboard away: one getUpdates batch.
    fake.push(fake.press_update(ANN, nps_id, "a:nps:9"), fake.press_update(ANN, nps_id, "a:nps:3"))
    await fake.wait_for(lambda: len(fake.requests("answerCallbackQuery")) == 2)
    await fake.wait_texts(ANN, 3)
    assert [c.body.get("text") for c in fake.requests("answerCallbackQuery")] == [
        None,
        "Already answered: 9",
    ]
    assert [(a.question_id, a.value_int) for a in answers(tg_app)] == [("nps", 9)]
    assert fake.texts(ANN)[2:] == ["Great to hear! What did you like most?"]
    assert len(fake.requests("editMessageText")) == 1


async def test_deep_link_starts_the_named_flow_with_its_context(
    fake: FakeTelegramAPI, tg_app: App, channel: Pipeline
) -> None:
    payload = encode_start_payload("post_purchase", {"order_id": "A-1001"})
    fake.send_text(ANN, f"/start {payload}")
    intro, question = await fake.wait_texts(ANN, 2)
    assert "A-1001" in intro
    assert question == "Did your order arrive on time?"
    assert keyboard(fake.sent(ANN)[-1]) == [[("Yes", "a:on_time:yes"), ("No", "a:on_time:no")]]
    (conv,) = conversations(tg_app)
    assert (conv.flow_id, conv.context) == ("post_purchase", {"order_id": "A-1001"})

    fake.press(ANN, fake.last_message_id(ANN), "a:on_time:no")
    assert (await fake.wait_texts(ANN, 3))[-1] == (
        "Sorry about that! What went wrong with the delivery?"
    )
    assert [(a.question_id, a.value_text) for a in answers(tg_app)] == [("on_time", "no")]


@pytest.mark.parametrize("payload", ["retired_flow", "not%a*payload"])
async def test_unknown_or_broken_deep_links_apologise_and_run_the_default_flow(
    fake: FakeTelegramAPI, tg_app: App, channel: Pipeline, payload: str
) -> None:
    fake.send_text(ANN, f"/start {payload}")
    texts = await fake.wait_texts(ANN, 3)
    assert texts == [
        "Sorry, that link is not valid any more, so here is our general survey.",
        INTRO,
        NPS,
    ]
    assert [c.flow_id for c in conversations(tg_app)] == ["post_interaction"]


async def test_the_same_update_delivered_twice_is_handled_once(
    fake: FakeTelegramAPI, tg_app: App, channel: Pipeline
) -> None:
    await start_survey(fake)
    update = fake.send_text(ANN, "9")
    await fake.wait_texts(ANN, 3)
    fake.redeliver(update)  # as after a restart before the offset was confirmed
    fake.send_text(ANN, "Friendly staff")
    await fake.wait_texts(ANN, 4)
    assert [(a.question_id, a.value_int, a.value_text) for a in answers(tg_app)] == [
        ("nps", 9, None),
        ("liked_most", None, "Friendly staff"),
    ]
    assert fake.texts(ANN)[2:] == [
        "Great to hear! What did you like most?",
        "How easy was it to get your issue resolved?\n(1 = Very difficult, 7 = Very easy)",
    ]


@pytest.mark.parametrize(
    "content",
    [
        {"photo": [{"file_id": "p", "file_unique_id": "u", "width": 9, "height": 9}]},
        {"voice": {"file_id": "v", "file_unique_id": "u", "duration": 2}},
        {"location": {"latitude": 52.5, "longitude": 13.4}},
    ],
)
async def test_unsupported_content_gets_a_polite_reply_and_the_question_again(
    fake: FakeTelegramAPI, tg_app: App, channel: Pipeline, content: dict[str, object]
) -> None:
    await start_survey(fake)
    fake.push(fake.message(ANN, None, **content))
    texts = await fake.wait_texts(ANN, 4)
    assert texts[2:] == ["Sorry, I can only read text messages and button presses here.", NPS]
    assert answers(tg_app) == []


async def test_edited_messages_are_ignored(
    fake: FakeTelegramAPI, tg_app: App, channel: Pipeline
) -> None:
    await start_survey(fake)
    fake.push(fake.message(ANN, "3", edited=True), fake.message(ANN, "10"))
    texts = await fake.wait_texts(ANN, 3)
    assert texts[2:] == ["Great to hear! What did you like most?"]  # only the "10" was read
    assert [(a.question_id, a.value_int) for a in answers(tg_app)] == [("nps", 10)]


async def test_group_chats_get_one_line_and_nothing_is_stored(
    fake: FakeTelegramAPI, tg_app: App, channel: Pipeline
) -> None:
    group = -1001234
    fake.push(
        fake.message(group, "hello everyone", chat_type="supergroup"),
        fake.message(group, "/start@cx_test_bot", chat_type="supergroup"),
    )
    await fake.wait_texts(group, 1)
    assert fake.texts(group) == ["I only run surveys in private chats. Please message me directly."]
    assert customer(tg_app, str(group)) is None and customer(tg_app, "777") is None


async def test_a_customer_who_blocked_the_bot_is_marked_unreachable_and_not_retried(
    fake: FakeTelegramAPI, tg_app: App, channel: Pipeline
) -> None:
    await start_survey(fake)
    fake.block(ANN)
    fake.send_text(ANN, "9")
    await fake.wait_for(
        lambda: (c := customer(tg_app)) is not None and c.unreachable_at is not None
    )
    attempts = [c for c in fake.requests("sendMessage", chat_id=ANN) if c.status == 403]
    assert [c.body["text"] for c in attempts] == ["Great to hear! What did you like most?"]
    stored = customer(tg_app)
    assert stored is not None and stored.unreachable_reason is not None
    assert "blocked" in stored.unreachable_reason
    assert [a.value_int for a in answers(tg_app)] == [9]  # the answer itself was kept


async def test_blocking_the_bot_is_recorded_from_the_membership_update(
    fake: FakeTelegramAPI, tg_app: App, channel: Pipeline
) -> None:
    await start_survey(fake)
    bot = {"id": 123456789, "is_bot": True, "first_name": "CX Bot"}
    fake.push(
        {
            "my_chat_member": {
                "chat": {"id": ANN, "type": "private"},
                "from": fake.user(ANN),
                "date": 0,
                "old_chat_member": {"status": "member", "user": bot},
                "new_chat_member": {"status": "kicked", "user": bot, "until_date": 0},
            }
        }
    )
    await fake.wait_for(
        lambda: (c := customer(tg_app)) is not None and c.unreachable_reason == "blocked the bot"
    )


async def test_rate_limit_is_waited_out(
    fake: FakeTelegramAPI, tg_app: App, channel: Pipeline
) -> None:
    await start_survey(fake)
    fake.fail("sendMessage", status=429, retry_after=0.2, chat_id=ANN)
    fake.send_text(ANN, "9")
    await fake.wait_texts(ANN, 3)
    limited, delivered = fake.requests("sendMessage", chat_id=ANN)[2:]
    assert (limited.status, delivered.status) == (429, 200)
    assert limited.body == delivered.body
    assert delivered.at - limited.at >= 0.2


async def test_server_errors_and_garbled_answers_are_retried_with_backoff(
    fake: FakeTelegramAPI, tg_app: App, channel: Pipeline
) -> None:
    await start_survey(fake)
    fake.fail("sendMessage", status=500, chat_id=ANN)
    fake.fail("sendMessage", status=502, chat_id=ANN)
    fake.send_text(ANN, "9")
    await fake.wait_texts(ANN, 3)
    tries = fake.requests("sendMessage", chat_id=ANN)[2:]
    assert [c.status for c in tries] == [500, 502, 200]
    assert len({c.body["text"] for c in tries}) == 1
    assert tries[2].at - tries[1].at > tries[1].at - tries[0].at  # the wait grows


async def test_a_garbled_get_updates_answer_does_not_stop_polling(
    fake: FakeTelegramAPI, tg_app: App, channel: Pipeline
) -> None:
    fake.fail("getUpdates", raw=b"<html>bad gateway</html>")
    await start_survey(fake)  # PTB waits a second after the failure, then polls again
    assert fake.texts(ANN) == [INTRO, NPS]


async def test_delivery_gives_up_after_its_attempts_and_the_question_comes_back(
    fake: FakeTelegramAPI,
    tg_app: App,
    channel: Pipeline,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await start_survey(fake)
    # FAST tries each send 4 times in line; FAST_SCHEDULE gives the outbox 3 attempts.
    fake.fail("sendMessage", status=500, times=12, chat_id=ANN)
    with caplog.at_level(logging.ERROR):
        fake.send_text(ANN, "9")
        # Logged when given up, stored with the worker's next transaction: wait for the row.
        await fake.wait_for(lambda: len(delivery_failures(tg_app)) == 1)
    assert "gave up sending outbox message" in caplog.text
    assert "failed after 4 attempts" in caplog.text
    assert [c.status for c in fake.requests("sendMessage", chat_id=ANN)[2:]] == [500] * 12
    stored = customer(tg_app)
    assert stored is not None and stored.unreachable_at is None  # not the customer's fault
    (failure,) = delivery_failures(tg_app)
    assert (failure.channel, failure.target, failure.purpose) == ("telegram", "42", "survey")

    fake.send_text(ANN, "hello?")  # the answer to a question they never saw? No: it comes back
    assert (await fake.wait_texts(ANN, 4))[2:] == [
        "Sorry, my last message didn't reach you. Here it is again:",
        "Great to hear! What did you like most?",
    ]
    assert [(a.question_id, a.value_int) for a in answers(tg_app)] == [("nps", 9)]
