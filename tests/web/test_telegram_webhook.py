"""Telegram by webhook: `serve` with uvicorn on a real port, updates POSTed as Telegram does."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from bot.app import App
from storage.database import transaction
from storage.tables import InboxUpdate
from tests.fakes.serving import fail_first_call, running
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.telegram_setup import answers, conversations, customer, telegram_settings
from web.server import TELEGRAM_SECRET_HEADER

SECRET = "webhook_Secret-42"
PUBLIC_URL = "https://cx.example.com/telegram/webhook"
ANN = 42


@dataclass
class Served:
    app: App
    url: str
    http: httpx.AsyncClient

    async def post(self, update: dict[str, Any], secret: str | None = SECRET) -> httpx.Response:
        headers = {TELEGRAM_SECRET_HEADER: secret} if secret is not None else {}
        return await self.http.post(f"{self.url}/telegram/webhook", json=update, headers=headers)


@pytest.fixture
def fake() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as api:
        yield api


@pytest.fixture
async def served(fake: FakeTelegramAPI, tmp_path: Path) -> AsyncIterator[Served]:
    settings = telegram_settings(
        fake,
        tmp_path,
        telegram__mode="webhook",
        telegram__webhook_url=PUBLIC_URL,
        telegram__secret_token=SECRET,
        server__port="0",
    )
    async with running(settings) as (app, url), httpx.AsyncClient() as http:
        yield Served(app=app, url=url, http=http)


async def test_start_registers_the_webhook_and_nothing_polls(
    fake: FakeTelegramAPI, served: Served
) -> None:
    (call,) = fake.requests("setWebhook")
    assert call.body["url"] == PUBLIC_URL
    assert call.body["secret_token"] == SECRET
    assert call.body["allowed_updates"] == [
        "message",
        "edited_message",
        "callback_query",
        "my_chat_member",
    ]
    assert fake.requests("getUpdates") == []
    health = await served.http.get(f"{served.url}/healthz")
    assert health.json() == {
        "status": "ok",
        "checks": {"database": "ok"},
        "channels": ["telegram (webhook)"],
    }


async def test_full_survey_by_webhook(fake: FakeTelegramAPI, served: Served) -> None:
    response = await served.post(fake.stamp(fake.message(ANN, "/start")))
    assert response.status_code == 200
    # Recorded before the answer; the replies follow through the outbox.
    assert await fake.wait_texts(ANN, 2)
    nps_id = fake.last_message_id(ANN)

    await served.post(fake.stamp(fake.press_update(ANN, nps_id, "a:nps:10")))
    assert (await fake.wait_texts(ANN, 3))[-1] == "Great to hear! What did you like most?"
    await fake.wait_for(lambda: fake.message_state(ANN, nps_id)["text"].endswith("\n\n✓ 10"))
    await served.post(fake.stamp(fake.message(ANN, "Quick and kind")))
    await fake.wait_texts(ANN, 4)
    await served.post(fake.stamp(fake.press_update(ANN, fake.last_message_id(ANN), "a:ces:7")))
    await fake.wait_texts(ANN, 5)
    await served.post(fake.stamp(fake.press_update(ANN, fake.last_message_id(ANN), "a:csat:5")))
    await fake.wait_texts(ANN, 6)
    await served.post(fake.stamp(fake.message(ANN, "no, that's all")))
    assert (await fake.wait_texts(ANN, 7))[-1] == "Thank you for your feedback, Ann!"
    await fake.wait_for(lambda: len(fake.requests("answerCallbackQuery")) == 3)

    assert [(a.question_id, a.value_int, a.value_text) for a in answers(served.app)] == [
        ("nps", 10, None),
        ("liked_most", None, "Quick and kind"),
        ("ces", 7, None),
        ("csat", 5, None),
        ("anything_else", None, "no, that's all"),
    ]
    assert [c.state for c in conversations(served.app)] == ["completed"]


async def test_an_update_is_recorded_before_telegram_hears_it_arrived(
    fake: FakeTelegramAPI, served: Served
) -> None:
    update = fake.stamp(fake.message(ANN, "/start"))
    assert (await served.post(update)).status_code == 200
    with transaction(served.app.db) as s:
        (row,) = s.exec(select(InboxUpdate)).all()
    assert (row.channel, row.event_key, row.lane) == (
        "telegram",
        str(update["update_id"]),
        "telegram:42",
    )
    assert row.body["message"]["text"] == "/start"


async def test_updates_without_the_right_secret_are_refused(
    fake: FakeTelegramAPI, served: Served
) -> None:
    update = fake.stamp(fake.message(ANN, "/start"))
    missing = await served.post(update, secret=None)
    wrong = await served.post(update, secret="webhook_Secret-43")
    assert (missing.status_code, wrong.status_code) == (401, 403)
    assert fake.requests("sendMessage") == []
    assert customer(served.app, str(ANN)) is None
    # The same update, now with the secret, is handled: refusals recorded nothing.
    assert (await served.post(update)).status_code == 200
    assert len(await fake.wait_texts(ANN, 2)) == 2


async def test_a_retried_webhook_delivery_is_handled_once(
    fake: FakeTelegramAPI, served: Served
) -> None:
    await served.post(fake.stamp(fake.message(ANN, "/start")))
    answer = fake.stamp(fake.message(ANN, "6"))
    first = await served.post(answer)
    again = await served.post(answer)  # Telegram did not see our first answer in time
    assert (first.status_code, again.status_code) == (200, 200)
    await fake.wait_texts(ANN, 3)
    await served.post(fake.stamp(fake.message(ANN, "the app")))
    texts = await fake.wait_texts(ANN, 4)
    assert texts[2:] == [
        "Sorry to hear that. What should we fix first?",
        "How easy was it to get your issue resolved?\n(1 = Very difficult, 7 = Very easy)",
    ]
    assert [(a.question_id, a.value_int) for a in answers(served.app)] == [
        ("nps", 6),
        ("fix_first", None),
    ]


async def test_an_update_whose_handling_failed_is_tried_again_from_the_inbox(
    fake: FakeTelegramAPI, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot import engine

    fail_first_call(monkeypatch, engine.conv_q, "start_conversation")
    start = fake.stamp(fake.message(ANN, "/start"))
    # Recorded, so Telegram may let go of it: the failed turn is the inbox's to try again.
    assert (await served.post(start)).status_code == 200
    assert len(await fake.wait_texts(ANN, 2, timeout=10)) == 2
    with transaction(served.app.db) as s:
        (row,) = s.exec(select(InboxUpdate)).all()
    # One failed attempt, then processed: the error is cleared with the success.
    assert (row.attempts, row.last_error) == (1, None) and row.processed_at is not None


@pytest.mark.parametrize(
    "body",
    [
        {"hello": "world"},
        {"update_id": 1, "message": "x"},  # PTB's de_json fails with AttributeError
        {"update_id": 2, "message": [1]},
        {"update_id": 3, "callback_query": {"id": "q"}},
        {"update_id": 4, "message": {"message_id": 1, "date": 0, "text": "hi"}},  # no chat
        {
            "update_id": 5,
            "callback_query": {
                "id": "q",
                "chat_instance": "c",
                "data": "a:nps:9",
                "from": {"id": ANN, "is_bot": False, "first_name": "Ann"},
                "message": {"message_id": 1, "date": 0, "text": "NPS?"},
            },
        },
    ],
    ids=[
        "no-update-id",
        "message-text",
        "message-list",
        "button-fields",
        "no-chat",
        "button-no-chat",
    ],
)
async def test_a_body_that_is_not_an_update_is_a_bad_request(
    fake: FakeTelegramAPI,
    served: Served,
    body: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """400, not 500: Telegram would deliver a malformed update again and again."""
    with caplog.at_level(logging.WARNING):
        response = await served.post(body)
    assert response.status_code == 400
    assert response.json()["error"].startswith("not a Telegram update")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("Telegram webhook: refused a malformed update (400): ")
    assert "\n" not in warnings[0]
    assert customer(served.app, str(ANN)) is None  # nothing stored
    assert fake.requests("sendMessage") == [] and fake.requests("answerCallbackQuery") == []
