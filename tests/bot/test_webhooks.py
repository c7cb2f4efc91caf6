"""Outgoing webhooks end to end: surveys run through the engine, events written with their turn,
delivered by the webhook delivery worker to a loopback receiver, and every body received checked
with the Standard Webhooks reference verifier.

Two endpoints are configured from the environment: `crm` hears every event, `desk` only flags.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.app import App, build_app
from bot.config import load_settings
from bot.delivery import Outcome, RetrySchedule
from bot.sentiment_worker import SentimentWorker
from bot.serve import plan_channels
from bot.webhook_serve import WebhookDelivery, plan_webhooks
from storage.database import transaction
from storage.review_queue import delivery_failures
from storage.tables import Conversation, DeliveryFailure, OutboxMessage, ReviewItem
from tests.bot.test_engine import open_survey
from tests.fakes.sentiment import KeywordClassifier
from tests.fakes.webhook_receiver import WebhookReceiver

CRM_SECRET = "whsec_" + base64.b64encode(b"crm-signing-key-32-bytes-long!!!").decode()
DESK_SECRET = "whsec_" + base64.b64encode(b"desk-signing-key-32-bytes-long!!").decode()
# No waiting between attempts, three attempts: retries are driven pass by pass.
NOW = RetrySchedule(first=0.0, longest=0.0, attempts=3)
HAPPY = ["10", "Great support", "7", "5", ""]
DETRACTOR = ["3", "Slow replies", "6", "4", ""]
TIMES = ("timestamp", "started_at", "completed_at", "answered_at")


class StepClock:
    """Unix seconds that tests move on (the signatures' timestamps)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    fake = WebhookReceiver()
    yield fake
    fake.stop()


def webhook_env(receiver: WebhookReceiver) -> dict[str, str]:
    return {
        "CXBOT_WEBHOOKS__CRM__URL": receiver.url("/crm"),
        "CXBOT_WEBHOOKS__CRM__SECRET": CRM_SECRET,
        "CXBOT_WEBHOOKS__DESK__URL": receiver.url("/desk"),
        "CXBOT_WEBHOOKS__DESK__SECRET": DESK_SECRET,
        "CXBOT_WEBHOOKS__DESK__EVENTS": "response.flagged",
    }


@pytest.fixture
def hooked_app(
    database_url: str, tmp_path: Path, receiver: WebhookReceiver
) -> Iterator[Callable[..., App]]:
    """Builds the app with both endpoints on each database (extra variables as keywords)."""
    apps: list[App] = []

    def build(**extra: str) -> App:
        env = {
            "CXBOT_GENERAL__DATA_DIR": str(tmp_path / "data"),
            "CXBOT_DATABASE__URL": database_url,
            **webhook_env(receiver),
            **extra,
        }
        apps.append(build_app(load_settings(None, environ=env)))
        return apps[-1]

    yield build
    for app in apps:
        app.close()


def webhooks(app: App, clock: StepClock | None = None) -> WebhookDelivery:
    delivery = plan_webhooks(app, schedule=NOW, clock=clock or StepClock(), poll_seconds=0.02)
    assert delivery is not None
    return delivery


async def deliver_all(delivery: WebhookDelivery, passes: int = 10) -> list[Outcome]:
    """Passes of the worker until nothing more is due (each lane sends its head per pass)."""
    outcomes: list[Outcome] = []
    for _ in range(passes):
        done = await delivery.worker.deliver_due()
        if not done:
            break
        outcomes.extend(done)
    return outcomes


async def survey(app: App, user: str, lines: list[str]) -> None:
    channel = await open_survey(app, user)
    for line in lines:
        await channel.push(line)


def event_rows(app: App) -> list[OutboxMessage]:
    with transaction(app.db) as s:
        stmt = select(OutboxMessage).where(OutboxMessage.channel == "webhook")
        return list(s.exec(stmt.order_by(col(OutboxMessage.id))))


def failures(app: App) -> list[DeliveryFailure]:
    with transaction(app.db) as s:
        return delivery_failures(s)


def conversation_id(app: App) -> int:
    with transaction(app.db) as s:
        conversation = s.exec(select(Conversation).order_by(col(Conversation.id).desc())).first()
        assert conversation is not None and conversation.id is not None
        return conversation.id


def review_item(app: App) -> ReviewItem:
    with transaction(app.db) as s:
        return s.exec(select(ReviewItem)).one()


def timeless(value: Any) -> Any:
    """The payload without its times (they differ run to run; checked for shape elsewhere)."""
    if isinstance(value, dict):
        return {k: timeless(v) for k, v in value.items() if k not in TIMES}
    if isinstance(value, list):
        return [timeless(v) for v in value]
    return value


def answer(question: str, kind: str, value: Any, scale: list[int] | None = None) -> dict[str, Any]:
    return {
        "question_id": question,
        "type": kind,
        "value": value,
        "skipped": value is None,
        "scale": scale,
        "sentiment": None,
    }


async def test_a_completed_survey_is_posted_once_to_its_subscriber(
    hooked_app: Callable[..., App], receiver: WebhookReceiver
) -> None:
    app = hooked_app()
    await survey(app, "ann", HAPPY)
    assert [r.recipient for r in event_rows(app)] == [f"crm:{conversation_id(app)}"]  # not desk

    delivery = webhooks(app)
    assert [o.status for o in await deliver_all(delivery)] == ["sent"]
    [request] = receiver.received
    assert request.path == "/crm"
    body = request.verify(CRM_SECRET)  # the reference verifier accepts the signature
    assert body["type"] == "response.completed"
    assert body["timestamp"].endswith("Z")
    assert body["data"]["completed_at"].endswith("Z")
    assert timeless(body["data"]) == {
        "conversation_id": conversation_id(app),
        "flow": {"id": "post_interaction", "version": 1},
        "channel": "console",
        "customer": {"channel": "console", "external_id": "ann"},
        "state": "completed",
        "locale": "en",
        "touchpoint": None,
        "context": {},
        "scores": {"nps": 10, "ces": 7, "csat": 5},
        "answers": [
            answer("nps", "nps", 10, [0, 10]),
            answer("liked_most", "text", "Great support"),
            answer("ces", "ces", 7, [1, 7]),
            answer("csat", "csat", 5, [1, 5]),
            answer("anything_else", "text", None),
        ],
    }
    assert await deliver_all(delivery) == []  # exactly once
    assert len(receiver.received) == 1


async def test_a_low_score_is_flagged_in_its_turn_and_each_endpoint_hears_it_in_order(
    hooked_app: Callable[..., App], receiver: WebhookReceiver
) -> None:
    app = hooked_app()
    await survey(app, "bob", DETRACTOR)
    await deliver_all(webhooks(app))

    crm = [r for r in receiver.received if r.path == "/crm"]
    desk = [r for r in receiver.received if r.path == "/desk"]
    assert [r.verify(CRM_SECRET)["type"] for r in crm] == ["response.flagged", "response.completed"]
    [flag] = [r.verify(DESK_SECRET) for r in desk]
    # One event, one id, whichever endpoint hears it; the completion is another event.
    assert desk[0].headers["webhook-id"] == crm[0].headers["webhook-id"]
    assert crm[1].headers["webhook-id"] != crm[0].headers["webhook-id"]
    assert flag == crm[0].json

    item = review_item(app)
    nps_answer_id = item.reasons[0]["answer_id"]
    reason = {
        "code": "nps_detractor",
        "question_id": "nps",
        "answer_id": nps_answer_id,
        "detail": "NPS 3 (detractor)",
    }
    data = timeless(flag["data"])
    assert data["state"] == "active"  # flagged as the score arrived, before the end
    assert data["answers"] == [answer("nps", "nps", 3, [0, 10])]
    assert data["review"] == {"id": item.id, "status": "open", "reasons": [reason]}
    assert data["reasons"] == [reason]
    assert data["scores"] == {"nps": 3, "ces": None, "csat": None}
    completed = crm[1].json["data"]
    assert completed["scores"] == {"nps": 3, "ces": 6, "csat": 4}
    assert "review" not in completed


async def test_a_negative_comment_flagged_by_the_sentiment_worker_is_posted(
    hooked_app: Callable[..., App], receiver: WebhookReceiver
) -> None:
    app = hooked_app()
    await survey(app, "cat", ["9", "Your app is a disaster", "7", "5", ""])
    assert [r.purpose for r in event_rows(app)] == ["response.completed"]
    worker = SentimentWorker(db=app.db, settings=app.settings, loader=KeywordClassifier)
    assert await worker.drain() == 1
    assert [r.purpose for r in event_rows(app)] == [
        "response.completed",
        "response.flagged",
        "response.flagged",
    ]
    await deliver_all(webhooks(app))

    [desk] = [r.verify(DESK_SECRET) for r in receiver.received if r.path == "/desk"]
    assert desk["type"] == "response.flagged"
    data = desk["data"]
    assert [r["code"] for r in data["reasons"]] == ["negative_text", "score_text_mismatch"]
    assert data["state"] == "completed"
    liked = next(a for a in data["answers"] if a["question_id"] == "liked_most")
    assert liked["sentiment"] == {"label": "negative", "confidence": 0.95, "model_version": "kw-1"}
    assert [r.verify(CRM_SECRET)["type"] for r in receiver.received if r.path == "/crm"] == [
        "response.completed",
        "response.flagged",
    ]


async def test_a_failed_attempt_is_retried_with_the_same_id_and_a_fresh_timestamp(
    hooked_app: Callable[..., App], receiver: WebhookReceiver
) -> None:
    app = hooked_app()
    await survey(app, "dan", HAPPY)
    clock = StepClock()
    delivery = webhooks(app, clock)
    receiver.answer(500)

    assert [o.status for o in await delivery.worker.deliver_due()] == ["retry"]
    clock.now += 60
    assert [o.status for o in await delivery.worker.deliver_due()] == ["sent"]
    first, second = receiver.received
    assert (first.status, second.status) == (500, 200)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert int(second.headers["webhook-timestamp"]) == int(first.headers["webhook-timestamp"]) + 60
    assert first.verify(CRM_SECRET) == second.verify(CRM_SECRET)
    [row] = event_rows(app)
    assert row.sent_at is not None and row.attempts == 2
    assert failures(app) == []


async def test_a_slow_endpoint_times_out_and_is_tried_again(
    hooked_app: Callable[..., App], receiver: WebhookReceiver
) -> None:
    app = hooked_app(CXBOT_WEBHOOKS__CRM__TIMEOUT_SECONDS="0.3")
    await survey(app, "eve", HAPPY)
    delivery = webhooks(app)
    receiver.answer(200, delay=5.0)

    [outcome] = await delivery.worker.deliver_due()
    assert outcome.status == "retry"
    assert outcome.error == "webhook crm: no answer within 0.3 s"
    assert [o.status for o in await delivery.worker.deliver_due()] == ["sent"]
    assert len(receiver.received) == 2


async def test_retries_that_run_out_are_given_up_and_recorded(
    hooked_app: Callable[..., App], receiver: WebhookReceiver
) -> None:
    app = hooked_app()
    await survey(app, "fay", HAPPY)
    receiver.answer(503, times=3, body=b"maintenance")

    outcomes = await deliver_all(webhooks(app))
    assert [o.status for o in outcomes] == ["retry", "retry", "failed"]
    [failure] = failures(app)
    assert (failure.channel, failure.target, failure.purpose) == (
        "webhook",
        f"crm:{conversation_id(app)}",
        "response.completed",
    )
    assert failure.error == "webhook crm: HTTP 503: maintenance"
    [row] = event_rows(app)
    assert row.failed_at is not None and row.attempts == 3


async def test_a_client_error_is_given_up_at_once_and_later_events_still_go(
    hooked_app: Callable[..., App], receiver: WebhookReceiver
) -> None:
    app = hooked_app()
    delivery = webhooks(app)
    await survey(app, "gus", HAPPY)
    receiver.answer(422, body=b"unknown field")
    assert [o.status for o in await deliver_all(delivery)] == ["failed"]
    [failure] = failures(app)
    assert failure.error == "webhook crm: HTTP 422: unknown field"

    await survey(app, "hal", HAPPY)
    assert [o.status for o in await deliver_all(delivery)] == ["sent"]
    assert [r.status for r in receiver.received] == [422, 200]


async def test_a_gone_endpoint_is_given_up_and_no_more_is_posted_to_it(
    hooked_app: Callable[..., App], receiver: WebhookReceiver
) -> None:
    app = hooked_app()
    delivery = webhooks(app)
    await survey(app, "ida", DETRACTOR)
    receiver.answer(410, path="/crm")  # crm's first request (its flag); desk is not gone

    outcomes = await deliver_all(delivery)
    assert sorted(o.status for o in outcomes) == ["failed", "sent"]
    await survey(app, "jo", HAPPY)
    assert [o.status for o in await deliver_all(delivery)] == ["failed"]  # not even posted

    # (The first pass posts both flags at once: they arrive in either order.)
    assert sorted((r.path, r.status) for r in receiver.received) == [
        ("/crm", 410),
        ("/desk", 200),
    ]
    # Each event given up is a delivery failure; the gone response's lane is given up whole.
    assert [(f.target.split(":")[0], f.purpose) for f in failures(app)] == [
        ("crm", "response.flagged"),
        ("crm", "response.completed"),
    ]
    assert all(r.sent_at is not None or r.failed_at is not None for r in event_rows(app))


async def test_serve_runs_a_webhook_worker_that_delivers_as_events_arrive(
    hooked_app: Callable[..., App], receiver: WebhookReceiver
) -> None:
    app = hooked_app()
    plan = plan_channels(app)
    assert [t.name for t in plan.tasks] == ["webhooks"]
    assert "webhooks" in plan.channels

    delivery = webhooks(app)
    task = asyncio.create_task(delivery.run())
    try:
        await survey(app, "kim", HAPPY)
        deadline = time.monotonic() + 10
        while not receiver.received:
            assert time.monotonic() < deadline, "the running worker never posted the event"
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert receiver.received[0].verify(CRM_SECRET)["type"] == "response.completed"


async def test_nothing_is_queued_or_run_without_webhooks(app: App) -> None:
    await survey(app, "lee", DETRACTOR)
    worker = SentimentWorker(db=app.db, settings=app.settings, loader=KeywordClassifier)
    await worker.drain()
    assert len(app.settings.webhooks) == 0
    assert event_rows(app) == []
    assert plan_webhooks(app) is None
    assert all(t.name != "webhooks" for t in plan_channels(app).tasks)
