"""The web desk's work on review items: each action, conflicts on stale versions and double
submits, replies refused to unreachable customers with nothing stored, label corrections, and
the history every action leaves (also on the Slack alert)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from adapters.slack_blocks import history_line
from bot import reviews
from bot.config import DeskSettings
from bot.desk_views import QueueFilter
from bot.desk_work import DeskWork
from bot.errors import (
    CustomerUnreachableError,
    DeliveryError,
    LabelCorrectionError,
    ReviewConflictError,
    ReviewNotFoundError,
)
from bot.messages import SupportFormError
from bot.reviews import review_card
from bot.support_actions import reply_submitted
from storage.database import open_database, transaction
from storage.privacy import erase_customer
from storage.tables import (
    Customer,
    LabelCorrection,
    OutboxMessage,
    ReviewEvent,
    ReviewItem,
    SentimentScore,
)
from tests.fakes.review_data import NOW, Flagged, add_flagged

ANA = "desk:ana@example.com"
BOB = "desk:bob@example.com"


@pytest.fixture
def db(database_url: str) -> Iterator[Engine]:
    engine = open_database(database_url)
    yield engine
    engine.dispose()


class Listeners:
    """What the desk told serve: items changed (Slack sync) and replies queued (delivery)."""

    def __init__(self) -> None:
        self.changed: list[int] = []
        self.queued = 0

    async def on_changed(self, review_id: int) -> None:
        self.changed.append(review_id)

    def on_queued(self) -> None:
        self.queued += 1


@pytest.fixture
def heard() -> Listeners:
    return Listeners()


@pytest.fixture
def work(db: Engine, heard: Listeners) -> DeskWork:
    desk = DeskWork(db=db, settings=DeskSettings())
    desk.on_changed(heard.on_changed)
    desk.on_queued(heard.on_queued)
    return desk


@pytest.fixture
def ann(db: Engine) -> Flagged:
    return add_flagged(db, user="ann", first_name="Ann", touchpoint="delivery")


def _events(db: Engine, review_id: int) -> list[tuple[str, str, str | None]]:
    with transaction(db) as s:
        rows = s.exec(
            select(ReviewEvent)
            .where(ReviewEvent.review_item_id == review_id)
            .order_by(col(ReviewEvent.id))
        )
        return [(e.action, e.actor, e.note) for e in rows]


def _replies(db: Engine) -> list[tuple[str, str, str]]:
    with transaction(db) as s:
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.purpose == "review_reply"))
        return [(m.channel, m.recipient, str(m.body.get("text"))) for m in rows]


def _item(db: Engine, review_id: int) -> ReviewItem:
    with transaction(db) as s:
        item = s.get(ReviewItem, review_id)
        assert item is not None
        return item


async def _version(work: DeskWork, review_id: int) -> str:
    view = await work.item(review_id)
    assert view is not None
    return view.version


async def test_acknowledge_stores_the_event_and_a_second_submit_is_a_conflict(
    db: Engine, work: DeskWork, heard: Listeners, ann: Flagged
) -> None:
    version = await _version(work, ann.review_id)
    await work.acknowledge(ann.review_id, actor=ANA, version=version)
    item = _item(db, ann.review_id)
    assert item.status == "acknowledged" and item.first_ack_at is not None
    assert item.first_reply_at is None
    assert _events(db, ann.review_id) == [("acknowledged", ANA, None)]
    assert heard.changed == [ann.review_id]
    with pytest.raises(ReviewConflictError, match="changed since"):
        await work.acknowledge(ann.review_id, actor=BOB, version=version)  # double submit
    with pytest.raises(ReviewConflictError, match="not open"):
        await work.acknowledge(
            ann.review_id, actor=BOB, version=await _version(work, ann.review_id)
        )
    assert _events(db, ann.review_id) == [("acknowledged", ANA, None)]
    assert heard.changed == [ann.review_id]
    with pytest.raises(ReviewNotFoundError):
        await work.acknowledge(9999, actor=ANA, version=version)


async def test_assign_to_someone_and_back_to_nobody(
    db: Engine, work: DeskWork, ann: Flagged
) -> None:
    await work.assign(ann.review_id, actor=ANA, assignee=BOB, version=await _version(work, 1))
    assert _item(db, ann.review_id).assignee == BOB
    with pytest.raises(ReviewConflictError, match="already"):
        await work.assign(ann.review_id, actor=ANA, assignee=BOB, version=await _version(work, 1))
    with pytest.raises(ValueError, match="not an actor"):
        await work.assign(ann.review_id, actor=ANA, assignee="bob", version=await _version(work, 1))
    await work.assign(ann.review_id, actor=BOB, assignee=None, version=await _version(work, 1))
    assert _item(db, ann.review_id).assignee is None
    assert _events(db, ann.review_id) == [
        ("assigned", ANA, BOB),
        ("assigned", BOB, "unassigned"),
    ]
    view = await work.item(ann.review_id)
    assert view is not None and [h.note for h in view.history] == [BOB, "unassigned"]


async def test_resolve_needs_a_note_and_reopen_needs_a_closed_item(
    db: Engine, work: DeskWork, ann: Flagged
) -> None:
    with pytest.raises(ValueError, match="empty"):
        await work.resolve(ann.review_id, actor=ANA, note="  ", version=await _version(work, 1))
    with pytest.raises(ReviewConflictError, match="open already"):
        await work.reopen(ann.review_id, actor=ANA, version=await _version(work, 1))
    assert _events(db, ann.review_id) == []
    await work.resolve(ann.review_id, actor=ANA, note="Refunded", version=await _version(work, 1))
    assert _item(db, ann.review_id).status == "resolved"
    assert _item(db, ann.review_id).first_ack_at is None  # resolving is not a response
    with pytest.raises(ReviewConflictError, match="resolved already"):
        await work.resolve(ann.review_id, actor=BOB, note="x", version=await _version(work, 1))
    await work.reopen(ann.review_id, actor=BOB, version=await _version(work, 1))
    assert _item(db, ann.review_id).status == "open"
    assert _events(db, ann.review_id) == [
        ("resolved", ANA, "Refunded"),
        ("reopened", BOB, None),
    ]


async def test_a_reply_is_queued_on_the_customers_channel_and_recorded(
    db: Engine, work: DeskWork, heard: Listeners, ann: Flagged
) -> None:
    version = await _version(work, ann.review_id)
    await work.reply(ann.review_id, actor=ANA, text=" Sorry, refunded. ", version=version)
    assert _replies(db) == [("telegram", "ann", "Sorry, refunded.")]
    item = _item(db, ann.review_id)
    assert item.status == "acknowledged"
    assert item.first_ack_at == item.first_reply_at is not None
    assert _events(db, ann.review_id) == [("replied", ANA, "Sorry, refunded.")]
    assert heard.queued == 1 and heard.changed == [ann.review_id]
    with pytest.raises(ReviewConflictError):
        await work.reply(ann.review_id, actor=ANA, text="Sorry, refunded.", version=version)
    assert len(_replies(db)) == 1 and heard.queued == 1
    view = await work.item(ann.review_id)
    assert view is not None
    assert [(t.who, t.text, t.actor) for t in view.timeline][-1] == (
        "support",
        "Sorry, refunded.",
        ANA,
    )
    # A second reply keeps the first reply's time.
    first = item.first_reply_at
    await work.reply(ann.review_id, actor=BOB, text="Anything else?", version=view.version)
    assert _item(db, ann.review_id).first_reply_at == first


async def test_a_reply_to_an_unreachable_customer_stores_nothing(
    db: Engine, work: DeskWork, heard: Listeners, ann: Flagged
) -> None:
    with transaction(db) as s:
        customer = s.get(Customer, ann.customer_id)
        assert customer is not None
        customer.unreachable_at = NOW
        customer.unreachable_reason = "Forbidden: bot was blocked by the user"
        s.add(customer)
    view = await work.item(ann.review_id)
    assert view is not None and view.unreachable == "Forbidden: bot was blocked by the user"
    with pytest.raises(CustomerUnreachableError, match="blocked"):
        await work.reply(ann.review_id, actor=ANA, text="Hello?", version=view.version)
    assert _replies(db) == [] and _events(db, ann.review_id) == []
    assert _item(db, ann.review_id).status == "open"
    assert heard.changed == [] and heard.queued == 0


async def test_a_reply_to_an_erased_customer_stores_nothing(
    db: Engine, work: DeskWork, ann: Flagged
) -> None:
    version = await _version(work, ann.review_id)
    with transaction(db) as s:
        erase_customer(s, channel="telegram", external_id="ann")
    assert await work.item(ann.review_id) is None
    with pytest.raises(CustomerUnreachableError, match="erased"):
        await work.reply(ann.review_id, actor=ANA, text="Hello?", version=version)
    with pytest.raises(ReviewNotFoundError):
        await work.acknowledge(ann.review_id, actor=ANA, version=version)
    assert _replies(db) == [] and _events(db, ann.review_id) == []
    assert (await work.queue(QueueFilter())).total == 0


async def test_a_reply_on_a_channel_not_served_here_stores_nothing(
    db: Engine, heard: Listeners, ann: Flagged
) -> None:
    desk = DeskWork(db=db, settings=DeskSettings(), can_reply=lambda channel: False)
    with pytest.raises(DeliveryError, match="telegram"):
        await desk.reply(ann.review_id, actor=ANA, text="Hi", version=await _version(desk, 1))
    with pytest.raises(ValueError, match="empty"):
        await desk.reply(ann.review_id, actor=ANA, text="", version=await _version(desk, 1))
    assert _replies(db) == [] and _events(db, ann.review_id) == []


async def test_slack_agents_are_told_when_the_customer_blocked_the_bot(
    db: Engine, ann: Flagged
) -> None:
    with transaction(db) as s:
        customer = s.get(Customer, ann.customer_id)
        assert customer is not None
        customer.unreachable_at = NOW
        s.add(customer)
    desk = reviews.ReviewDesk(db=db, support_users=["U1"], poster=None)
    outcome = await reply_submitted(desk, actor="U1", review_id=ann.review_id, text="Hello?")
    assert isinstance(outcome, SupportFormError)
    assert "cannot be reached" in outcome.text
    assert _replies(db) == [] and _events(db, ann.review_id) == []


async def test_a_correction_keeps_the_models_label_and_shows_in_the_history(
    db: Engine, work: DeskWork, heard: Listeners, ann: Flagged
) -> None:
    answer = ann.text_answer_id
    assert answer is not None
    await work.correct_label(answer, actor=ANA, label="Neutral", review_id=ann.review_id)
    with transaction(db) as s:
        fixes = list(s.exec(select(LabelCorrection)))
        scores = list(s.exec(select(SentimentScore)))
    assert [(f.answer_id, f.old_label, f.new_label, f.model_label, f.actor) for f in fixes] == [
        (answer, "negative", "neutral", "negative", ANA)
    ]
    assert (fixes[0].model_id, fixes[0].model_version) == ("tests/sentiment-model", "v1")
    assert fixes[0].created_at is not None
    assert [(s.label, s.confidence) for s in scores] == [("negative", 0.9)]  # kept
    assert _events(db, ann.review_id) == [
        ("label_corrected", ANA, f"answer #{answer}: negative → neutral")
    ]
    assert heard.changed == [ann.review_id]
    view = await work.item(ann.review_id)
    assert view is not None
    (text,) = view.texts
    assert (text.label, text.confidence, text.model_label, text.corrected_by) == (
        "neutral",
        None,
        "negative",
        ANA,
    )
    assert text.corrected_at is not None and text.model_version == "v1"
    # The Slack alert shows the corrected label too: one state, two views.
    found = review_card(db, review_id=ann.review_id)
    assert found is not None
    (shown,) = found[0].texts
    assert (shown.sentiment, shown.label, shown.answer_id) == (
        "neutral (corrected)",
        "neutral",
        answer,
    )
    assert (shown.corrected_from, shown.corrected_by) == ("negative", "ana@example.com")
    with pytest.raises(LabelCorrectionError, match="already"):
        await work.correct_label(answer, actor=BOB, label="neutral", review_id=ann.review_id)
    with pytest.raises(LabelCorrectionError, match="unknown"):
        await work.correct_label(answer, actor=BOB, label="angry", review_id=ann.review_id)
    other = add_flagged(db, user="bob")
    with pytest.raises(ReviewNotFoundError):
        await work.correct_label(answer, actor=BOB, label="positive", review_id=other.review_id)
    with pytest.raises(ReviewNotFoundError):
        await work.correct_label(
            ann.nps_answer_id or 0, actor=BOB, label="positive", review_id=ann.review_id
        )
    with transaction(db) as s:
        assert len(list(s.exec(select(LabelCorrection)))) == 1


async def test_the_item_view_holds_the_whole_story(
    db: Engine, work: DeskWork, ann: Flagged
) -> None:
    view = await work.item(ann.review_id, now=NOW + timedelta(hours=5))
    assert view is not None
    assert (view.customer, view.channel, view.external_id) == ("Ann (ann)", "telegram", "ann")
    assert (view.flow_id, view.flow_version, view.touchpoint) == ("delivery", 1, "delivery")
    assert view.context == {"order_id": "A-ann"}
    assert view.scores == {"nps": 3}
    assert [r["code"] for r in view.reasons] == ["nps_detractor"]
    assert [(t.who, t.text, t.score) for t in view.timeline] == [
        ("customer", "3", 3),
        ("customer", "The courier was late", None),
    ]
    label = view.timeline[1].label
    assert label is not None and (label.label, label.confidence) == ("negative", 0.9)
    assert view.overdue and view.unreachable is None
    assert view.first_ack_at is None and view.history == []
    assert await work.item(9999) is None


async def test_queue_pages_and_filters_are_checked(work: DeskWork, db: Engine) -> None:
    for n in range(3):
        add_flagged(db, user=f"u{n}", created_at=NOW - timedelta(hours=n))
    page = await work.queue(QueueFilter(per_page=2, page=2), now=NOW)
    assert [r.customer for r in page.rows] == ["u2"]
    assert (page.total, page.pages, page.page) == (3, 2, 2)
    assert page.counts["status"] == {"open": 3}
    for bad in (
        QueueFilter(status="closed"),
        QueueFilter(sentiment="angry"),
        QueueFilter(order="random"),
        QueueFilter(page=0),
        QueueFilter(per_page=0),
    ):
        with pytest.raises(ValueError):
            await work.queue(bad)


async def test_response_times_through_the_desk(db: Engine, work: DeskWork) -> None:
    add_flagged(db, user="a", first_ack_at=NOW + timedelta(hours=2))
    times = await work.response_times(days=7, now=NOW + timedelta(days=1))
    assert (times.acknowledged, times.replied) == (1, 0)
    assert times.ack_p50 == times.ack_p90 == timedelta(hours=2)
    assert times.reply_p50 is None


async def test_slack_alerts_name_desk_users_by_their_email(
    db: Engine, work: DeskWork, ann: Flagged
) -> None:
    await work.acknowledge(ann.review_id, actor=ANA, version=await _version(work, 1))
    found = reviews.review_card(db, review_id=ann.review_id)
    assert found is not None
    (step,) = found[0].history
    assert step.actor == "ana@example.com"
    line = history_line(step)
    assert "by ana@example.com at" in line and "<@" not in line
