"""A survey message the platform refused: kept as a failure, and the question sent again."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlmodel import col, select

from adapters.console import MemoryChannel
from bot.app import App
from bot.engine import REDELIVERY_ATTEMPTS, redelivery_wait
from bot.errors import DeliveryError, RecipientUnreachableError
from bot.messages import IncomingMessage, OutgoingMessage
from bot.redelivery import Redelivery, RedeliveryResult
from storage.database import transaction
from storage.tables import Answer, Conversation, Customer, DeliveryFailure

SORRY = "Sorry, my last message didn't reach you. Here it is again:"
LIKED = "Great to hear! What did you like most?"


class Outbox:
    """A channel's delivery as `ChannelRegistry.deliver` calls it; fails on demand."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[str]]] = []
        self.errors: list[DeliveryError] = []

    async def __call__(self, channel: str, messages: Sequence[OutgoingMessage]) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append((channel, [m.text for m in messages]))


async def promoter_without_follow_up(app: App) -> MemoryChannel:
    """Ann answers NPS 9 on the console; the follow-up question never reaches her."""
    ch = MemoryChannel(app.engine.handle, user_id="ann")
    ch.receive(await app.engine.begin(channel="console", user_id="ann"))
    ch.pop_all()
    assert [m.text for m in await ch.push("9")] == [LIKED]
    ch.pop_all()
    await app.engine.undelivered(
        channel="console", user_id="ann", reason="chat.postMessage to D1: internal_error"
    )
    return ch


def conversation(app: App) -> Conversation:
    with transaction(app.db) as s:
        return s.exec(select(Conversation)).one()


def stored_answers(app: App) -> list[tuple[str, int | None, str | None]]:
    with transaction(app.db) as s:
        rows = s.exec(select(Answer).order_by(col(Answer.id)))
        return [(a.question_id, a.value_int, a.value_text) for a in rows]


def failures(app: App) -> list[tuple[str, str, str, str]]:
    with transaction(app.db) as s:
        rows = s.exec(select(DeliveryFailure).order_by(col(DeliveryFailure.id)))
        return [(f.channel, f.target, f.purpose, f.error) for f in rows]


def redelivery(app: App, outbox: Outbox, channels: Sequence[str] = ("console",)) -> Redelivery:
    return Redelivery(db=app.db, engine=app.engine, deliver=outbox, channels=channels)


def later(minutes: float) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


async def test_the_failure_is_kept_and_a_resend_planned(app: App) -> None:
    await promoter_without_follow_up(app)
    assert failures(app) == [("console", "ann", "survey", "chat.postMessage to D1: internal_error")]
    conv = conversation(app)
    assert conv.current_question == "liked_most"
    assert conv.undelivered_at is not None and conv.redeliver_at is not None
    assert stored_answers(app) == [("nps", 9, None)]


async def test_the_next_message_brings_the_question_back_and_is_not_an_answer(app: App) -> None:
    ch = await promoter_without_follow_up(app)
    replies = await ch.push("hello? anyone there?")
    assert [m.text for m in replies] == [SORRY, LIKED]
    assert replies[-1].question_id == "liked_most"
    assert stored_answers(app) == [("nps", 9, None)]
    assert conversation(app).undelivered_at is None
    await ch.push("Quick and friendly")
    assert stored_answers(app) == [("nps", 9, None), ("liked_most", None, "Quick and friendly")]


async def test_a_button_or_a_command_is_handled_as_usual(app: App) -> None:
    ch = await promoter_without_follow_up(app)
    replies = await ch.push("help")
    assert SORRY not in [m.text for m in replies]
    assert replies[-1].text == LIKED
    assert conversation(app).undelivered_at is None


async def test_the_background_pass_sends_the_question_again_when_due(app: App) -> None:
    await promoter_without_follow_up(app)
    outbox = Outbox()
    loop = redelivery(app, outbox)
    assert await loop.redeliver_due() == RedeliveryResult(sent=0, failed=0)  # not yet due
    assert outbox.sent == []
    assert await loop.redeliver_due(later(2)) == RedeliveryResult(sent=1, failed=0)
    assert outbox.sent == [("console", [SORRY, LIKED])]
    conv = conversation(app)
    assert conv.undelivered_at is None and conv.redeliver_at is None
    assert await loop.redeliver_due(later(600)) == RedeliveryResult(sent=0, failed=0)
    assert len(outbox.sent) == 1


async def test_a_failed_resend_is_tried_again_later_with_a_longer_wait(app: App) -> None:
    await promoter_without_follow_up(app)
    outbox = Outbox()
    outbox.errors.append(DeliveryError("chat.postMessage to D1: service_unavailable"))
    loop = redelivery(app, outbox)
    now = later(2)
    assert await loop.redeliver_due(now) == RedeliveryResult(sent=0, failed=1)
    conv = conversation(app)
    assert conv.redeliver_attempts == 1 and conv.redeliver_at is not None
    wait = conv.redeliver_at.replace(tzinfo=UTC) - now
    assert timedelta(seconds=110) < wait < timedelta(seconds=130)  # the second wait: 2 min
    assert await loop.redeliver_due(now) == RedeliveryResult(sent=0, failed=0)
    assert await loop.redeliver_due(later(5)) == RedeliveryResult(sent=1, failed=0)
    assert outbox.sent == [("console", [SORRY, LIKED])]
    assert failures(app) == [
        ("console", "ann", "survey", "chat.postMessage to D1: internal_error")
    ]  # one stored failure per run of failures


async def test_a_customer_who_became_unreachable_is_not_tried_again(app: App) -> None:
    await promoter_without_follow_up(app)
    outbox = Outbox()
    outbox.errors.append(RecipientUnreachableError("account_inactive"))
    loop = redelivery(app, outbox)
    assert await loop.redeliver_due(later(2)) == RedeliveryResult(sent=0, failed=1)
    conv = conversation(app)
    assert conv.redeliver_at is None and conv.undelivered_at is not None
    with transaction(app.db) as s:
        assert s.exec(select(Customer)).one().unreachable_at is not None
    assert await loop.redeliver_due(later(600)) == RedeliveryResult(sent=0, failed=0)


async def test_a_customer_who_wrote_first_gets_nothing_twice(app: App) -> None:
    ch = await promoter_without_follow_up(app)
    await ch.push("hello?")
    outbox = Outbox()
    assert await redelivery(app, outbox).redeliver_due(later(2)) == RedeliveryResult(0, 0)
    assert outbox.sent == []


async def test_channels_this_process_does_not_run_are_left_alone(app: App) -> None:
    await promoter_without_follow_up(app)
    outbox = Outbox()
    assert await redelivery(app, outbox, ["telegram"]).redeliver_due(later(2)) == (
        RedeliveryResult(0, 0)
    )
    assert conversation(app).redeliver_at is not None  # still due for the console's process
    assert await redelivery(app, outbox).redeliver_due(later(2)) == RedeliveryResult(1, 0)


async def test_an_unreachable_customer_is_asked_again_only_when_they_write(app: App) -> None:
    ch = MemoryChannel(app.engine.handle, user_id="ann")
    ch.receive(await app.engine.begin(channel="console", user_id="ann"))
    await app.engine.undelivered(
        channel="console", user_id="ann", reason="account_inactive", unreachable=True
    )
    conv = conversation(app)
    assert conv.undelivered_at is not None and conv.redeliver_at is None
    assert failures(app) == [("console", "ann", "survey", "account_inactive")]
    replies = await app.engine.handle(IncomingMessage(channel="console", user_id="ann", text="8"))
    assert replies[0].text == SORRY and replies[-1].question_id == "nps"
    assert stored_answers(app) == []
    with transaction(app.db) as s:
        assert s.exec(select(Customer)).one().unreachable_at is None


async def test_a_failure_after_the_thanks_is_kept_with_nothing_to_resend(app: App) -> None:
    await app.engine.undelivered(channel="console", user_id="bo", reason="internal_error")
    assert failures(app) == [("console", "bo", "survey", "internal_error")]


def test_the_waits_double_up_to_an_hour_then_stop() -> None:
    waits = [redelivery_wait(n) for n in range(REDELIVERY_ATTEMPTS + 1)]
    assert waits[:3] == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert waits[REDELIVERY_ATTEMPTS - 1] == timedelta(hours=1)
    assert waits[REDELIVERY_ATTEMPTS] is None
