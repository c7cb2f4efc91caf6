"""Bot API errors as cxbot errors: what is retried, how long, and what is given up at once."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator

import pytest
from telegram import Bot

from adapters.telegram import TelegramSender
from adapters.telegram_delivery import RetryPolicy, call_api
from bot.errors import DeliveryError, RateLimitedError, RecipientUnreachableError
from bot.messages import OutgoingMessage
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
