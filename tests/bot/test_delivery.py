"""The delivery worker against a fake channel: the order each customer sees, what is tried
again and when, what is given up and what that records, and claims left by dead processes.

Rows are queued as turns queue them (`app.engine` on the telegram channel, or
`bot.turn_outbox`), sent through `FakeChannelSender`, and the tests assert on what the fake
was asked to send and on what the database holds afterwards.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from sqlmodel import col, select

from bot.app import App
from bot.delivery import DeliveryWorker, RetrySchedule
from bot.errors import DeliveryError, RateLimitedError, RecipientUnreachableError
from bot.messages import (
    ButtonPress,
    IncomingMessage,
    MessageKind,
    Notice,
    OutgoingMessage,
    SentRef,
)
from bot.turn_outbox import enqueue_message, enqueue_notice
from storage import outbox as out_q
from storage.database import transaction
from storage.review_queue import delivery_failures
from storage.tables import Conversation, Customer, DeliveryFailure, OutboxMessage
from tests.fakes.channel_sender import ANSWER, CLOSE, SEND, FakeChannelSender

TG = "telegram"
NPS = "How likely are you to recommend us to a friend or colleague?"
INTRO = "Hi there! We'd love your feedback on your recent request. It takes about a minute."
LIKED = "Great to hear! What did you like most?"
# Three attempts: the first waits 0.05 s, the second 0.1 s, the third failure gives up.
SCHEDULE = RetrySchedule(first=0.05, longest=0.2, attempts=3)


@pytest.fixture
def sender() -> FakeChannelSender:
    return FakeChannelSender()


def delivery(app: App, sender: FakeChannelSender, *, max_in_flight: int = 1) -> DeliveryWorker:
    return DeliveryWorker(
        db=app.db,
        senders={TG: sender},
        schedule=SCHEDULE,
        max_in_flight=max_in_flight,
        poll_seconds=0.02,
    )


@asynccontextmanager
async def running(worker: DeliveryWorker) -> AsyncIterator[DeliveryWorker]:
    """The worker's `run` loop, as `cxbot serve` runs it, until the block ends."""
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until(predicate: Callable[[], bool], *, timeout: float = 5.0, what: str = "") -> None:
    """Wait (polling every 10 ms) until `predicate` holds; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.01)


def queue(app: App, user: str, *texts: str) -> None:
    """Queue plain messages to a customer, in one transaction (as one turn would)."""
    with transaction(app.db) as s:
        for text in texts:
            enqueue_message(s, OutgoingMessage(channel=TG, user_id=user, text=text))


def rows(app: App, user: str | None = None) -> list[OutboxMessage]:
    """The outbox (of one customer), oldest first."""
    with transaction(app.db) as s:
        stmt = select(OutboxMessage).order_by(col(OutboxMessage.id))
        if user is not None:
            stmt = stmt.where(OutboxMessage.recipient == user)
        return list(s.exec(stmt))


def pending(app: App) -> int:
    return sum(1 for r in rows(app) if r.sent_at is None and r.failed_at is None)


def failures(app: App) -> list[DeliveryFailure]:
    with transaction(app.db) as s:
        return delivery_failures(s)


def stored_customer(app: App, user: str) -> Customer:
    with transaction(app.db) as s:
        return s.exec(select(Customer).where(Customer.external_id == user)).one()


def conversation(app: App, user: str) -> Conversation:
    customer = stored_customer(app, user)
    with transaction(app.db) as s:
        return s.exec(select(Conversation).where(Conversation.customer_id == customer.id)).one()


async def start_survey(app: App, user: str = "42") -> None:
    """The bot opens the default survey with a telegram customer: intro and NPS queued."""
    await app.engine.begin(channel=TG, user_id=user)


async def say(app: App, text: str, user: str = "42") -> None:
    """The customer types `text` (the turn queues its replies)."""
    await app.engine.handle(IncomingMessage(channel=TG, user_id=user, text=text))


# -- order ----------------------------------------------------------------------------------------


async def test_each_recipient_gets_their_messages_in_the_order_queued(
    app: App, sender: FakeChannelSender
) -> None:
    queue(app, "42", "a1", "a2")
    queue(app, "43", "b1", "b2", "b3")
    queue(app, "42", "a3")
    sender.fail(DeliveryError("502 Bad Gateway"), text="a1")  # a1 waits; a2 must not pass it
    async with running(delivery(app, sender, max_in_flight=4)):
        await until(lambda: pending(app) == 0, what="the outbox to empty")
    assert sender.texts("42") == ["a1", "a2", "a3"]
    assert sender.texts("43") == ["b1", "b2", "b3"]
    assert [c.ok for c in sender.attempts() if c.text == "a1"] == [False, True]
    # Each row keeps the id the platform gave it (a press or an edit refers to it later).
    sent_ids = {c.text: c.message_id for c in sender.succeeded()}
    assert {r.body["text"]: r.platform_message_id for r in rows(app)} == sent_ids
    assert all(r.sent_at is not None and r.claimed_by is None for r in rows(app))


async def test_a_rate_limited_lane_waits_as_told_while_others_go_on(
    app: App, sender: FakeChannelSender
) -> None:
    queue(app, "42", "a1", "a2")
    queue(app, "43", "b1")
    sender.fail(RateLimitedError("Too Many Requests", retry_after=0.6), user_id="42")
    worker = delivery(app, sender, max_in_flight=4)
    outcomes = await worker.deliver_due()
    assert sorted(o.status for o in outcomes) == ["retry", "sent"]
    assert sender.texts("43") == ["b1"] and sender.texts("42") == []
    (limited,) = [r for r in rows(app, "42") if r.body["text"] == "a1"]
    assert (limited.attempts, limited.last_error, limited.claimed_by) == (
        1,
        "Too Many Requests",
        None,
    )
    assert await worker.deliver_due() == []  # not due yet, and a2 waits behind a1
    async with running(worker):
        await until(lambda: sender.texts("42") == ["a1", "a2"], what="a1 and a2")
    failed, again = [c for c in sender.attempts() if c.text == "a1"]
    assert not failed.ok and again.ok
    assert again.at - failed.at >= 0.6 - 0.05  # retry_after, give or take the clock's grain


async def test_a_failing_message_is_tried_with_growing_waits_then_given_up(
    app: App, sender: FakeChannelSender
) -> None:
    await start_survey(app)
    sender.fail(DeliveryError("502 Bad Gateway"), times=10, text=NPS)
    async with running(delivery(app, sender)):
        await until(lambda: pending(app) == 0, what="the NPS question to be given up")
    tries = [c for c in sender.attempts() if c.text and c.text.startswith(NPS)]
    assert [c.ok for c in tries] == [False] * SCHEDULE.attempts
    assert tries[1].at - tries[0].at >= 0.05 and tries[2].at - tries[1].at >= 0.1
    assert sender.texts("42") == [INTRO]
    intro, nps = rows(app, "42")
    assert intro.sent_at is not None
    assert nps.failed_at is not None and nps.sent_at is None
    assert (nps.attempts, nps.last_error) == (SCHEDULE.attempts, "502 Bad Gateway")
    # Kept for the admins; the survey knows its question did not arrive; still reachable.
    assert [(f.channel, f.target, f.purpose, f.error) for f in failures(app)] == [
        (TG, "42", "survey", "502 Bad Gateway")
    ]
    assert conversation(app, "42").undelivered_at is not None
    assert stored_customer(app, "42").unreachable_at is None


async def test_an_unreachable_customer_is_marked_and_the_rest_of_their_lane_given_up(
    app: App, sender: FakeChannelSender
) -> None:
    await start_survey(app, "42")
    queue(app, "43", "b1")
    blocked = "Forbidden: bot was blocked by the user"
    sender.fail(RecipientUnreachableError(blocked), user_id="42")
    async with running(delivery(app, sender, max_in_flight=2)):
        await until(lambda: pending(app) == 0, what="the outbox to empty")
    # One attempt at the intro; the NPS question behind it is never tried.
    assert sorted((c.user_id, c.ok) for c in sender.attempts()) == [("42", False), ("43", True)]
    assert sender.texts("42") == [] and sender.texts("43") == ["b1"]
    assert all(r.failed_at is not None and r.sent_at is None for r in rows(app, "42"))
    customer = stored_customer(app, "42")
    assert customer.unreachable_at is not None and customer.unreachable_reason == blocked
    assert [(f.target, f.purpose, f.error) for f in failures(app)] == [("42", "survey", blocked)]
    assert conversation(app, "42").undelivered_at is not None


async def test_closing_a_question_that_was_never_sent_is_skipped(
    app: App, sender: FakeChannelSender
) -> None:
    """The customer typed the answer before the question reached them, and then the question
    was given up: there are no buttons to take away, and the lane goes on."""
    await start_survey(app)
    await say(app, "9")  # queues: close the NPS question, then the next question
    sender.fail(DeliveryError("502 Bad Gateway"), times=10, text=NPS)
    async with running(delivery(app, sender)):
        await until(lambda: pending(app) == 0, what="the outbox to empty")
    assert sender.attempts(CLOSE) == []
    assert sender.texts("42") == [INTRO, LIKED]
    (close,) = [r for r in rows(app, "42") if r.kind == out_q.KIND_CLOSE]
    assert close.sent_at is not None and close.failed_at is None


async def test_closing_a_sent_question_refers_to_it_by_its_platform_id(
    app: App, sender: FakeChannelSender
) -> None:
    await start_survey(app)
    worker = delivery(app, sender)
    await worker.drain(["telegram:42"])
    nps_call = sender.succeeded()[-1]
    assert nps_call.question_id == "nps"
    await say(app, "9")  # answered by typing: its buttons go, no label shown
    await worker.drain(["telegram:42"])
    (close,) = sender.succeeded(CLOSE)
    assert (close.message_id, close.label) == (nps_call.message_id, None)
    assert close.text is not None and close.text.startswith(NPS)


async def test_a_pressed_button_is_answered_and_its_question_shows_the_choice(
    app: App, sender: FakeChannelSender
) -> None:
    await start_survey(app)
    worker = delivery(app, sender)
    await worker.drain(["telegram:42"])
    nps_call = sender.succeeded()[-1]
    before = len(sender.calls)
    press = ButtonPress(
        query_id="q1", message_id=nps_call.message_id, message_text="NPS?", label="9"
    )
    await app.engine.handle(
        IncomingMessage(
            channel=TG, user_id="42", kind=MessageKind.BUTTON, payload="a:nps:9", press=press
        )
    )
    await worker.drain(["telegram:42"])
    new_calls = sender.calls[before:]
    assert [c.action for c in new_calls[:2]] == [ANSWER, CLOSE]
    answer, close = new_calls[:2]
    assert (answer.query_id, answer.text) == ("q1", None)
    assert (close.message_id, close.text, close.label) == (nps_call.message_id, "NPS?", "9")
    assert new_calls[2].action == SEND and new_calls[2].text == LIKED


@pytest.mark.parametrize(
    "error",
    [DeliveryError("query is too old"), RateLimitedError("Too Many Requests", retry_after=30)],
    ids=["refused", "rate-limited"],
)
async def test_a_button_answer_that_fails_is_dropped_and_the_lane_goes_on(
    app: App, sender: FakeChannelSender, error: DeliveryError
) -> None:
    """Answering a button is cosmetic: tried once, then the next message goes."""
    with transaction(app.db) as s:
        enqueue_notice(
            s, Notice(channel=TG, recipient="42", text="Already answered: 9", query_id="q7")
        )
    queue(app, "42", "next")
    sender.fail(error, action=ANSWER)
    outcomes = await delivery(app, sender).drain(["telegram:42"])
    assert [o.status for o in outcomes] == ["dropped", "sent"]
    assert len(sender.attempts(ANSWER)) == 1 and sender.texts("42") == ["next"]
    answer, _ = rows(app, "42")
    assert answer.failed_at is not None and answer.attempts == 1
    assert failures(app) == []  # nothing for the admins


async def test_drain_sends_only_the_lanes_asked_for(app: App, sender: FakeChannelSender) -> None:
    queue(app, "42", "a1", "a2")
    queue(app, "43", "b1")
    outcomes = await delivery(app, sender).drain(["telegram:42"])
    assert [o.status for o in outcomes] == ["sent", "sent"]
    assert sender.texts("42") == ["a1", "a2"] and sender.texts("43") == []


# -- claims of stopped processes ----------------------------------------------------------------


def dead_pid() -> int:
    """The pid of a process that has just ended."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def claim_as(app: App, worker: str, user: str) -> None:
    with transaction(app.db) as s:
        (_row,) = out_q.claim_due(
            s,
            worker=worker,
            lease=timedelta(hours=1),
            limit=1,
            channels=[TG],
            lanes=[out_q.lane_of(TG, user)],
        )


async def test_claims_of_a_dead_process_on_this_host_are_released(
    app: App, sender: FakeChannelSender
) -> None:
    host = socket.gethostname()
    dead = f"{host}:{dead_pid()}:abc"
    queue(app, "42", "from the dead")
    queue(app, "43", "from elsewhere")
    queue(app, "44", "from the living")
    claim_as(app, dead, "42")
    claim_as(app, "otherhost:1:abc", "43")  # another host's processes cannot be checked
    claim_as(app, f"{host}:{os.getppid()}:abc", "44")  # a process that still runs
    worker = delivery(app, sender, max_in_flight=4)
    assert await worker.deliver_due() == []  # every head is claimed, for an hour
    assert worker.release_dead_claims() == 1
    assert worker.release_dead_claims() == 0
    outcomes = await worker.deliver_due()
    assert [o.status for o in outcomes] == ["sent"]
    assert sender.texts("42") == ["from the dead"]
    assert sender.texts("43") == sender.texts("44") == []


async def test_a_starting_worker_takes_over_what_a_dead_process_had_claimed(
    app: App, sender: FakeChannelSender
) -> None:
    queue(app, "42", "a1", "a2")
    claim_as(app, f"{socket.gethostname()}:{dead_pid()}:abc", "42")
    async with running(delivery(app, sender)):
        await until(lambda: sender.texts("42") == ["a1", "a2"], what="a1 and a2")


async def test_a_sender_that_fails_unexpectedly_is_retried_not_fatal(
    app: App, sender: FakeChannelSender
) -> None:
    queue(app, "42", "a1", "a2")
    sender.fail(RuntimeError("a bug in a sender"), text="a1")
    async with running(delivery(app, sender)):
        await until(lambda: pending(app) == 0, what="the outbox to empty")
    assert sender.texts("42") == ["a1", "a2"]
    assert [c.ok for c in sender.attempts() if c.text == "a1"] == [False, True]


async def test_one_message_in_flight_each_on_record_before_the_next_is_sent(
    app: App, sender: FakeChannelSender
) -> None:
    """The window for a repeat after a crash: at most one message sent and not yet recorded."""
    for user in ("41", "42", "43"):
        queue(app, user, f"to {user}")
    unrecorded_at_each_send: list[int] = []
    real_send = sender.send

    async def send(message: OutgoingMessage) -> SentRef:
        sent_unrecorded = sum(
            1 for c in sender.succeeded() if c.action == "send" and not _recorded(app, c.text)
        )
        unrecorded_at_each_send.append(sent_unrecorded)
        return await real_send(message)

    sender.send = send  # type: ignore[method-assign]
    worker = delivery(app, sender)
    await worker.deliver_due()
    assert unrecorded_at_each_send == [0, 0, 0]
    assert pending(app) == 0


def _recorded(app: App, text: str | None) -> bool:
    return any(r.body.get("text") == text and r.sent_at is not None for r in rows(app))
