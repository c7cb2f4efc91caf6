"""Bot API errors as cxbot errors: what is retried, how long, and what is given up at once."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator

import pytest
from telegram import Bot

from adapters.retrying import RetryPolicy
from adapters.telegram import TelegramSender
from adapters.telegram_delivery import call_api
from bot.errors import DeliveryError, RateLimitedError, RecipientUnreachableError
from bot.messages import Choice, ChoiceStyle, OutgoingMessage, SentRef
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.telegram_setup import FAST


@pytest.fixture(autouse=True)
def _timedelta_periods(monkeypatch: pytest.MonkeyPatch) -> None:
    """As bot.channels does for real bots: PTB's coming timedelta periods, no warnings."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
def fake() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as api:
        api.known_chats.add(42)
        yield api


@pytest.fixture
async def sender(fake: FakeTelegramAPI) -> AsyncIterator[TelegramSender]:
    bot = Bot(fake.token, base_url=fake.base_url)
    async with bot:
        yield TelegramSender(bot, policy=FAST)


def hello(user_id: str = "42") -> OutgoingMessage:
    return OutgoingMessage(channel="telegram", user_id=user_id, text="Hello")


async def test_a_long_rate_limit_is_not_waited_in_line(
    fake: FakeTelegramAPI, sender: TelegramSender
) -> None:
    fake.fail("sendMessage", status=429, retry_after=30)  # longer than FAST allows (2 s)
    with pytest.raises(RateLimitedError) as err:
        await sender.send(hello())
    assert err.value.retry_after == 30
    assert [c.status for c in fake.requests("sendMessage")] == [429]


async def test_rate_limits_count_as_attempts(fake: FakeTelegramAPI, sender: TelegramSender) -> None:
    fake.fail("sendMessage", status=429, retry_after=0.05, times=10)
    with pytest.raises(RateLimitedError):
        await sender.send(hello())
    assert [c.status for c in fake.requests("sendMessage")] == [429] * FAST.attempts


@pytest.mark.parametrize(
    ("status", "description"),
    [
        (403, "Forbidden: bot was blocked by the user"),
        (403, "Forbidden: bot can't initiate conversation with a user"),
        (403, "Forbidden: user is deactivated"),
        (400, "Bad Request: chat not found"),
    ],
)
async def test_unreachable_customers_are_reported_once_without_retrying(
    fake: FakeTelegramAPI, sender: TelegramSender, status: int, description: str
) -> None:
    fake.fail("sendMessage", status=status, description=description)
    with pytest.raises(RecipientUnreachableError, match="(?i)" + description.split(": ")[1]):
        await sender.send(hello())
    assert len(fake.requests("sendMessage")) == 1


async def test_a_bad_request_is_not_retried(fake: FakeTelegramAPI, sender: TelegramSender) -> None:
    fake.fail("sendMessage", status=400, description="Bad Request: message text is empty")
    with pytest.raises(DeliveryError, match="refused the request: Message text is empty") as err:
        await sender.send(hello())
    assert not isinstance(err.value, RecipientUnreachableError)
    assert len(fake.requests("sendMessage")) == 1


async def test_a_wrong_token_says_so(fake: FakeTelegramAPI) -> None:
    bot = Bot("999:wrong", base_url=fake.base_url)
    with pytest.raises(DeliveryError, match=r"rejected the bot token .*CXBOT_TELEGRAM__TOKEN"):
        await call_api(bot.initialize, what="getMe", policy=FAST)


async def test_network_trouble_is_retried_with_growing_waits_then_given_up(
    fake: FakeTelegramAPI, sender: TelegramSender
) -> None:
    fake.fail("sendMessage", status=500, times=2)
    fake.fail("sendMessage", raw=b"<html>proxy error</html>")
    fake.fail("sendMessage", status=503)
    with pytest.raises(DeliveryError, match="failed after 4 attempts"):
        await sender.send(hello())
    tries = fake.requests("sendMessage")
    assert [c.status for c in tries] == [500, 500, 200, 503]
    assert {c.body["text"] for c in tries} == {"Hello"}
    gaps = [b.at - a.at for a, b in itertools.pairwise(tries)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2


async def test_an_unreachable_server_is_a_delivery_error() -> None:
    with FakeTelegramAPI() as gone:
        url = gone.base_url  # nothing listens there once the block ends
    bot = Bot("1:x", base_url=url)
    policy = RetryPolicy(attempts=2, backoff=0.01)
    with pytest.raises(DeliveryError, match="failed after 2 attempts"):
        await call_api(bot.get_me, what="getMe", policy=policy)


async def test_a_user_id_that_is_not_a_chat_id_is_refused(sender: TelegramSender) -> None:
    with pytest.raises(DeliveryError, match="not a Telegram chat id"):
        await sender.send(hello("alice"))


# -- closing a question, answering a button ------------------------------------------------------


def question(text: str = "How likely?") -> OutgoingMessage:
    choices = tuple(Choice(label=str(v), payload=f"a:nps:{v}") for v in range(11))
    return OutgoingMessage(
        channel="telegram",
        user_id="42",
        text=text,
        choices=choices,
        choice_style=ChoiceStyle.SCALE,
        question_id="nps",
        question_type="nps",
    )


async def test_send_says_where_telegram_keeps_the_message(
    fake: FakeTelegramAPI, sender: TelegramSender
) -> None:
    ref = await sender.send(question())
    assert ref == SentRef(message_id=str(fake.last_message_id(42)))
    assert "reply_markup" in fake.message_state(42, fake.last_message_id(42))


async def test_closing_with_a_label_shows_the_answer_under_the_question(
    fake: FakeTelegramAPI, sender: TelegramSender
) -> None:
    ref = await sender.send(question())
    await sender.close_question(user_id="42", sent=ref, text="How likely?", label="9")
    (edit,) = fake.requests("editMessageText")
    assert edit.body["text"] == "How likely?\n\n✓ 9"
    assert (edit.body["chat_id"], str(edit.body["message_id"])) == (42, ref.message_id)
    assert ref.message_id is not None
    shown = fake.message_state(42, int(ref.message_id))
    assert shown["text"] == "How likely?\n\n✓ 9" and "reply_markup" not in shown
    assert fake.requests("editMessageReplyMarkup") == []


async def test_closing_without_a_label_only_takes_the_buttons_away(
    fake: FakeTelegramAPI, sender: TelegramSender
) -> None:
    ref = await sender.send(question())
    await sender.close_question(user_id="42", sent=ref, text="How likely?", label=None)
    (edit,) = fake.requests("editMessageReplyMarkup")
    assert (edit.body["chat_id"], str(edit.body["message_id"])) == (42, ref.message_id)
    assert ref.message_id is not None
    shown = fake.message_state(42, int(ref.message_id))
    assert shown["text"] == "How likely?" and "reply_markup" not in shown
    assert fake.requests("editMessageText") == []


@pytest.mark.parametrize("label", ["9", None])
async def test_closing_a_question_already_closed_is_not_an_error(
    fake: FakeTelegramAPI, sender: TelegramSender, label: str | None
) -> None:
    """A repeat after a restart: Telegram says "message is not modified", which means done."""
    ref = await sender.send(question())
    await sender.close_question(user_id="42", sent=ref, text="How likely?", label=label)
    await sender.close_question(user_id="42", sent=ref, text="How likely?", label=label)
    method = "editMessageText" if label is not None else "editMessageReplyMarkup"
    assert [c.status for c in fake.requests(method)] == [200, 400]
    assert ref.message_id is not None
    assert "reply_markup" not in fake.message_state(42, int(ref.message_id))


async def test_other_refusals_to_close_are_delivery_errors(
    fake: FakeTelegramAPI, sender: TelegramSender
) -> None:
    with pytest.raises(DeliveryError, match=r"(?i)message to edit not found"):
        await sender.close_question(
            user_id="42", sent=SentRef(message_id="999"), text="Q?", label="9"
        )
    fake.block(42)
    with pytest.raises(RecipientUnreachableError):
        await sender.close_question(
            user_id="42", sent=SentRef(message_id="1"), text="Q?", label=None
        )


async def test_a_question_without_a_telegram_message_id_is_left_alone(
    fake: FakeTelegramAPI, sender: TelegramSender
) -> None:
    await sender.close_question(user_id="42", sent=SentRef(message_id=None), text="Q?", label="9")
    await sender.close_question(
        user_id="42", sent=SentRef(message_id="C0FFEE"), text="Q?", label=None
    )
    assert fake.requests("editMessageText") == fake.requests("editMessageReplyMarkup") == []


async def test_answering_a_button_stops_its_spinner(
    fake: FakeTelegramAPI, sender: TelegramSender
) -> None:
    await sender.send(question())
    query_id = fake.press_update(42, fake.last_message_id(42), "a:nps:9")["callback_query"]["id"]
    await sender.answer_button(user_id="42", query_id=query_id, chat=None, text=None)
    (call,) = fake.requests("answerCallbackQuery")
    assert call.status == 200
    assert call.body["callback_query_id"] == query_id and "text" not in call.body


async def test_a_buttons_answer_may_carry_a_short_notice(
    fake: FakeTelegramAPI, sender: TelegramSender
) -> None:
    await sender.send(question())
    first = fake.press_update(42, fake.last_message_id(42), "a:nps:9")["callback_query"]["id"]
    second = fake.press_update(42, fake.last_message_id(42), "a:nps:8")["callback_query"]["id"]
    await sender.answer_button(user_id="42", query_id=first, chat=None, text="Already answered: 9")
    await sender.answer_button(user_id="42", query_id=second, chat=None, text="x" * 300)
    assert [
        (c.status, c.body["callback_query_id"], c.body["text"])
        for c in fake.requests("answerCallbackQuery")
    ] == [(200, first, "Already answered: 9"), (200, second, "x" * 200)]


async def test_a_press_without_a_query_needs_no_answer(
    fake: FakeTelegramAPI, sender: TelegramSender
) -> None:
    await sender.answer_button(user_id="42", query_id=None, chat=None, text="Already answered")
    assert fake.requests("answerCallbackQuery") == []


async def test_an_expired_query_is_a_delivery_error(
    fake: FakeTelegramAPI, sender: TelegramSender
) -> None:
    """The outbox drops a failed button answer: it is cosmetic, and cannot succeed later."""
    with pytest.raises(DeliveryError, match=r"(?i)query is too old"):
        await sender.answer_button(user_id="42", query_id="q-unknown", chat=None, text=None)
    assert len(fake.requests("answerCallbackQuery")) == 1
