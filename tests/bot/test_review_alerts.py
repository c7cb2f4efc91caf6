"""The alert poster: flagged replies posted to the support channel, failures kept, never lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from adapters.slack import SlackChannel
from bot import reviews
from bot.app import App, build_app
from bot.channels import build_slack_channel
from bot.errors import DeliveryError, ReviewNotFoundError
from bot.inbox import Inbox
from bot.messages import (
    IncomingMessage,
    MessageKind,
    SupportAction,
    SupportDone,
    SupportFormError,
    SupportNotice,
    SupportPress,
    SupportSubmission,
)
from bot.reviews import AlertPoster, ReviewDesk, SyncResult
from storage.database import create_db_engine, transaction
from storage.review_queue import alert_of, claim_alerts
from storage.sentiment import add_score
from storage.tables import Answer
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.slack_setup import (
    ALERTS,
    FAST,
    delivery_failures,
    outbox_rows,
    review_events,
    review_items,
    slack_settings,
)


@pytest.fixture
def fake() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI() as api:
        yield api


@pytest.fixture
def app(fake: FakeSlackAPI, tmp_path: Path, database_url: str) -> Iterator[App]:
    """The app with Slack at the fake, on SQLite and (where reachable) PostgreSQL."""
    application = build_app(slack_settings(fake, tmp_path, database__url=database_url))
    yield application
    application.close()


@pytest.fixture
async def channel(app: App) -> AsyncIterator[SlackChannel]:
    yield build_slack_channel(app, Inbox(db=app.db).recorder("slack"), policy=FAST)


def poster(app: App, channel: SlackChannel) -> AlertPoster:
    return AlertPoster(db=app.db, target=ALERTS, show=channel.show_alert)


async def detractor(app: App, user: str, score: int = 2) -> None:
    """A Slack customer answers NPS `score` (straight to the engine)."""
    await app.engine.handle(IncomingMessage(channel="slack", user_id=user, kind=MessageKind.START))
    await app.engine.handle(IncomingMessage(channel="slack", user_id=user, text=str(score)))


async def test_each_flagged_reply_is_posted_once_and_updated_when_it_changes(
    app: App, channel: SlackChannel, fake: FakeSlackAPI
) -> None:
    await detractor(app, "U0ANN0001")
    await detractor(app, "U0BOB0001", 9)  # a promoter: nothing to review
    alerts = poster(app, channel)
    assert await alerts.sync_pending() == SyncResult(shown=1, failed=0)
    assert await alerts.sync_pending() == SyncResult(shown=0, failed=0)  # nothing changed
    (post,) = fake.requests("chat.postMessage", channel=ALERTS)
    assert "NPS 2 (detractor)" in post.body["text"]

    # A keyword in the follow-up adds a reason: the same message is updated.
    await app.engine.handle(
        IncomingMessage(channel="slack", user_id="U0ANN0001", text="I will cancel")
    )
    assert await alerts.sync_pending() == SyncResult(shown=1, failed=0)
    (update,) = fake.requests("chat.update", channel=ALERTS)
    assert update.body["ts"] == fake.last(ALERTS)["ts"]
    assert "mentions 'cancel'" in update.body["text"]
    assert len(fake.posted(ALERTS)) == 1


async def test_a_refused_alert_is_logged_stored_and_retried(
    app: App,
    channel: SlackChannel,
    fake: FakeSlackAPI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await detractor(app, "U0ANN0001")
    alerts = poster(app, channel)
    fake.fail("chat.postMessage", "not_in_channel", channel=ALERTS)
    with caplog.at_level(logging.ERROR, logger="bot.reviews"):
        assert await alerts.sync_pending() == SyncResult(shown=0, failed=1)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "bot.reviews"]
    assert line == (
        f"alert for review #1 could not be posted to {ALERTS}: chat.postMessage to {ALERTS}: "
        "not_in_channel (is the bot a member of that channel? /invite it there); "
        "retrying in 30 s"
    )
    assert delivery_failures(app) == [
        ("review_alert", ALERTS, f"chat.postMessage to {ALERTS}: not_in_channel")
    ]
    assert [i.status for i in review_items(app)] == ["open"]  # the item is still there
    # Not retried before its time ...
    assert await alerts.sync_pending() == SyncResult(shown=0, failed=0)
    # ... and posted once it comes (the bot was invited meanwhile).
    with transaction(app.db) as s:
        alert = alert_of(s, review_item_id=1)
        assert alert is not None and alert.failures == 1
        alert.retry_at = None
        s.add(alert)
    assert await alerts.sync_pending() == SyncResult(shown=1, failed=0)
    assert len(fake.posted(ALERTS)) == 1


async def test_a_rate_limit_is_waited_out(
    app: App, channel: SlackChannel, fake: FakeSlackAPI
) -> None:
    await detractor(app, "U0ANN0001")
    fake.fail("chat.postMessage", "ratelimited", status=429, retry_after=0.1, channel=ALERTS)
    assert await poster(app, channel).sync_pending() == SyncResult(shown=1, failed=0)
    assert [c.status for c in fake.requests("chat.postMessage", channel=ALERTS)] == [429, 200]
    assert delivery_failures(app) == []


async def test_two_processes_post_each_alert_once(
    app: App, channel: SlackChannel, fake: FakeSlackAPI
) -> None:
    for n in range(5):
        await detractor(app, f"U0CUST00{n}")
    other_db = create_db_engine(
        app.db.url.render_as_string(hide_password=False)
    )  # a second process's connection pool
    try:
        first = poster(app, channel)
        second = AlertPoster(db=other_db, target=ALERTS, show=channel.show_alert)
        results = await asyncio.gather(first.sync_pending(), second.sync_pending())
    finally:
        other_db.dispose()
    assert sum(r.shown for r in results) == 5
    assert len(fake.requests("chat.postMessage", channel=ALERTS)) == 5
    assert sorted(m["text"].split(":")[0] for m in fake.posted(ALERTS)) == [
        f"Flagged reply #{n} · open" for n in range(1, 6)
    ]


async def test_a_claim_left_by_a_dead_process_is_taken_over(
    app: App, channel: SlackChannel, fake: FakeSlackAPI
) -> None:
    await detractor(app, "U0ANN0001")
    alerts = poster(app, channel)
    then = datetime.now(UTC) - reviews.STALE_CLAIM
    with transaction(app.db) as s:  # a process claimed it, then died before posting
        assert claim_alerts(s, target=ALERTS, now=then, stale_before=then, limit=10) == [1]
    # Fresh claims are respected: only a stale one is taken over.
    with transaction(app.db) as s:
        alert = alert_of(s, review_item_id=1)
        assert alert is not None
        alert.claimed_at = datetime.now(UTC)
        s.add(alert)
    assert await alerts.sync_pending() == SyncResult(shown=0, failed=0)
    with transaction(app.db) as s:
        alert = alert_of(s, review_item_id=1)
        assert alert is not None
        alert.claimed_at = then - timedelta(seconds=1)
        s.add(alert)
    assert await alerts.sync_pending() == SyncResult(shown=1, failed=0)
    assert len(fake.posted(ALERTS)) == 1


async def test_an_action_while_the_poster_holds_the_alert_is_shown_by_its_next_pass(
    app: App, channel: SlackChannel, fake: FakeSlackAPI
) -> None:
    await detractor(app, "U0ANN0001")
    alerts = poster(app, channel)
    assert await alerts.sync_pending() == SyncResult(shown=1, failed=0)
    with transaction(app.db) as s:  # the poster is between posting and storing the ts
        alert = alert_of(s, review_item_id=1)
        assert alert is not None
        alert.claimed_at = datetime.now(UTC)
        s.add(alert)
    assert reviews.acknowledge(app.db, review_id=1, actor="slack:U0AGENT01") is True
    assert await alerts.sync(1) is False  # left to the holder, which is woken
    assert "· acknowledged" not in str(fake.last(ALERTS)["blocks"])
    with transaction(app.db) as s:  # the holder stores the ts and releases the claim
        alert = alert_of(s, review_item_id=1)
        assert alert is not None
        alert.claimed_at = None
        s.add(alert)
    assert await alerts.sync_pending() == SyncResult(shown=1, failed=0)
    assert "Flagged reply #1 · acknowledged" in str(fake.last(ALERTS)["blocks"])
    assert len(fake.posted(ALERTS)) == 1


async def test_the_workflow_records_each_action_once(app: App) -> None:
    await detractor(app, "U0ANN0001")
    assert reviews.acknowledge(app.db, review_id=1, actor="slack:U0AGENT01") is True
    assert reviews.acknowledge(app.db, review_id=1, actor="slack:U0AGENT02") is False
    assert reviews.resolve(app.db, review_id=1, actor="slack:U0AGENT01", note="Called") is True
    assert reviews.resolve(app.db, review_id=1, actor="slack:U0AGENT02", note="Again") is False
    with pytest.raises(ReviewNotFoundError):
        reviews.acknowledge(app.db, review_id=99, actor="slack:U0AGENT01")
    found = reviews.review_card(app.db, review_id=1)
    assert found is not None
    card, _version = found
    assert (card.status, card.scores, card.reasons) == (
        "resolved",
        ("NPS 2 of 10",),
        ("NPS 2 (detractor)",),
    )
    assert [(s.action, s.actor, s.note) for s in card.history] == [
        ("acknowledged", "U0AGENT01", None),
        ("resolved", "U0AGENT01", "Called"),
    ]


async def test_a_sentiment_label_arriving_later_updates_the_alert(
    app: App, channel: SlackChannel, fake: FakeSlackAPI
) -> None:
    await detractor(app, "U0ANN0001")
    await app.engine.handle(
        IncomingMessage(channel="slack", user_id="U0ANN0001", text="Slow replies")
    )
    alerts = poster(app, channel)
    assert await alerts.sync_pending() == SyncResult(shown=1, failed=0)
    assert "(sentiment pending)" in str(fake.last(ALERTS)["blocks"])
    with transaction(app.db) as s:  # the sentiment worker labels the comment (no new flag)
        (text_answer,) = [a for a in s.exec(select(Answer)) if a.question_type == "text"]
        assert text_answer.id is not None
        add_score(
            s,
            answer_id=text_answer.id,
            label="neutral",
            confidence=0.61,
            model_id="test",
            model_version="1",
        )
    assert await alerts.sync_pending() == SyncResult(shown=1, failed=0)
    assert "(neutral 61%)" in str(fake.last(ALERTS)["blocks"])
    assert await alerts.sync_pending() == SyncResult(shown=0, failed=0)


async def test_a_reply_is_queued_and_recorded_together(app: App) -> None:
    await detractor(app, "U0ANN0001")
    queued: list[str] = []
    desk = ReviewDesk(db=app.db, support_users=["U0AGENT01"], poster=None)
    desk.on_queued(lambda: queued.append("nudged"))
    before = len(outbox_rows(app))
    await desk.reply(review_id=1, actor="U0AGENT01", text="Sorry, Ann: we are on it.")
    assert queued == ["nudged"]
    assert review_events(app) == [("replied", "slack:U0AGENT01", "Sorry, Ann: we are on it.")]
    assert [i.status for i in review_items(app)] == ["acknowledged"]
    (row,) = outbox_rows(app)[before:]
    assert (row.channel, row.recipient, row.kind, row.purpose, row.review_item_id) == (
        "slack",
        "U0ANN0001",
        "message",
        "review_reply",
        1,
    )
    assert row.body["text"] == "Sorry, Ann: we are on it." and row.body["choices"] == []
    assert row.sent_at is None  # the delivery worker sends it


async def test_a_reply_to_a_channel_not_served_here_is_refused_and_nothing_is_stored(
    app: App,
) -> None:
    await detractor(app, "U0ANN0001")
    desk = ReviewDesk(
        db=app.db, support_users=["U0AGENT01"], poster=None, can_reply=lambda c: c != "slack"
    )
    before = len(outbox_rows(app))
    with pytest.raises(DeliveryError, match="the slack channel is not configured"):
        await desk.reply(review_id=1, actor="U0AGENT01", text="Hello")
    with pytest.raises(ReviewNotFoundError):
        await desk.reply(review_id=99, actor="U0AGENT01", text="Hello")
    assert review_events(app) == []
    assert len(outbox_rows(app)) == before
    assert [i.status for i in review_items(app)] == ["open"]


async def test_the_desk_decides_presses_and_forms_over_the_database(app: App) -> None:
    await detractor(app, "U0ANN0001")
    desk = ReviewDesk(db=app.db, support_users=["U0AGENT01"], poster=None)
    ack = SupportPress(action=SupportAction.ACKNOWLEDGE, actor="U0AGENT01", review_id=1)
    assert await desk.press(ack) == SupportDone()
    again = await desk.press(ack)
    assert isinstance(again, SupportNotice)
    assert again.text.startswith("Flagged reply #1 is already acknowledged (by U0AGENT01 at ")
    note = SupportSubmission(
        action=SupportAction.RESOLVE, actor="U0AGENT01", review_id=1, text="Called Ann"
    )
    assert await desk.submit(note) == SupportDone()
    late = await desk.submit(note)
    assert isinstance(late, SupportFormError) and late.text.startswith("Already resolved by ")
    assert review_events(app) == [
        ("acknowledged", "slack:U0AGENT01", None),
        ("resolved", "slack:U0AGENT01", "Called Ann"),
    ]
