"""The desk's queue, item and response-time queries on SQLite and PostgreSQL: every filter,
the counts per facet under the other filters, pagination, order, and hand-checked percentiles."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from sqlalchemy import Engine

from storage import desk_queue as dq
from storage.database import transaction
from storage.label_corrections import add_correction
from storage.outbox import lane_of
from storage.privacy import erase_customer
from storage.review_queue import add_review_event, get_review_item
from storage.reviews import flag_for_review
from storage.tables import Conversation, Customer, OutboxMessage
from tests.fakes.review_data import NOW, Flagged, add_flagged

TARGET = timedelta(hours=4)
BASE = dq.QueueQuery(now=NOW, target=TARGET, low_below=0.6)


@pytest.fixture
def items(db: Engine) -> dict[str, Flagged]:
    """Five flagged responses (and one of an erased customer, never shown)."""
    h = timedelta(hours=1)
    made = {
        "ann": add_flagged(db, user="ann", touchpoint="delivery", created_at=NOW - h),
        "bob": add_flagged(
            db,
            user="bob",
            channel="slack",
            touchpoint="support",
            created_at=NOW - 5 * h,
            nps=2,
            confidence=0.5,
            reasons=("nps_detractor", "negative_sentiment"),
        ),
        "eve": add_flagged(
            db,
            user="eve",
            channel="slack",
            flow="onboarding",
            touchpoint="support",
            created_at=NOW - 10 * h,
            nps=1,
            text=None,
        ),
        "cat": add_flagged(
            db,
            user="cat",
            flow="onboarding",
            created_at=NOW - 48 * h,
            nps=None,
            text="ok fine",
            label="neutral",
            confidence=0.55,
            reasons=("keyword",),
            status="acknowledged",
            assignee="desk:ana@example.com",
            first_ack_at=NOW - 47 * h,
        ),
        "dan": add_flagged(
            db,
            user="dan",
            touchpoint="delivery",
            created_at=NOW - 72 * h,
            nps=9,
            text="great",
            label="positive",
            confidence=0.95,
            reasons=("keyword",),
            status="resolved",
            first_ack_at=NOW - 70 * h,
            first_reply_at=NOW - 69 * h,
        ),
    }
    gone = add_flagged(db, user="fay", created_at=NOW - h / 2)
    with transaction(db) as s:
        customer = s.get(Customer, gone.customer_id)
        assert customer is not None
        customer.external_id = f"erased:{customer.id}"
        s.add(customer)
    return made


def _page(db: Engine, **changes: object) -> dq.StoredPage:
    with transaction(db) as s:
        return dq.queue_page(s, replace(BASE, **changes))  # type: ignore[arg-type]


def _users(page: dq.StoredPage) -> list[str]:
    return [row.customer for row in page.rows]


def test_the_unfiltered_queue_is_newest_first_without_erased_customers(
    db: Engine, items: dict[str, Flagged]
) -> None:
    page = _page(db)
    assert _users(page) == ["ann", "bob", "eve", "cat", "dan"]
    assert page.total == 5
    ann = page.rows[0]
    assert (ann.id, ann.channel, ann.flow_id, ann.touchpoint) == (
        items["ann"].review_id,
        "telegram",
        "delivery",
        "delivery",
    )
    assert ann.reasons == ("nps_detractor",) and ann.details == ("NPS_DETRACTOR",)
    assert ann.excerpt == "The courier was late"
    assert ann.scores == {"nps": 3}
    assert (ann.sentiment, ann.confidence, ann.low_confidence) == ("negative", 0.9, False)
    assert (ann.overdue, ann.assignee, ann.status) == (False, None, "open")
    assert ann.created_at == NOW - timedelta(hours=1)
    eve = page.rows[2]
    assert (eve.sentiment, eve.confidence, eve.excerpt, eve.overdue) == (None, None, "", True)
    assert page.facets == {
        "flows": ["delivery", "onboarding"],
        "channels": ["slack", "telegram"],
        "touchpoints": ["delivery", "support"],
        "reasons": ["keyword", "negative_sentiment", "nps_detractor"],
        "assignees": ["desk:ana@example.com"],
    }


def test_oldest_open_puts_open_items_first_oldest_first(
    db: Engine, items: dict[str, Flagged]
) -> None:
    assert _users(_page(db, order="oldest_open")) == ["eve", "bob", "ann", "dan", "cat"]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"status": "open"}, ["ann", "bob", "eve"]),
        ({"status": "unresolved"}, ["ann", "bob", "eve", "cat"]),
        ({"status": "resolved"}, ["dan"]),
        ({"reason": "nps_detractor"}, ["ann", "bob", "eve"]),
        ({"reason": "negative_sentiment"}, ["bob"]),
        ({"channel": "slack"}, ["bob", "eve"]),
        ({"flow": "onboarding"}, ["eve", "cat"]),
        ({"touchpoint": "support"}, ["bob", "eve"]),
        ({"sentiment": "negative"}, ["ann", "bob"]),
        ({"sentiment": "neutral"}, ["cat"]),
        ({"sentiment": "positive"}, ["dan"]),
        ({"sentiment": "unlabelled"}, ["eve"]),
        ({"assignee": "desk:ana@example.com"}, ["cat"]),
        ({"assignee": "none"}, ["ann", "bob", "eve", "dan"]),
        ({"since": date(2026, 11, 18)}, ["ann", "bob", "eve", "cat"]),
        ({"until": date(2026, 11, 18)}, ["cat", "dan"]),
        ({"since": date(2026, 11, 18), "until": date(2026, 11, 18)}, ["cat"]),
        ({"low_confidence": True}, ["bob", "cat"]),
        ({"overdue": True}, ["bob", "eve"]),
        ({"channel": "slack", "reason": "negative_sentiment", "overdue": True}, ["bob"]),
    ],
)
def test_each_filter_keeps_only_its_items(
    db: Engine, items: dict[str, Flagged], changes: dict[str, object], expected: list[str]
) -> None:
    page = _page(db, **changes)
    assert _users(page) == expected
    assert page.total == len(expected)


def test_counts_of_each_facet_apply_every_other_filter(
    db: Engine, items: dict[str, Flagged]
) -> None:
    counts = _page(db, status="open").counts
    # The status facet ignores the status filter itself: every status with its count.
    assert counts["status"] == {"open": 3, "acknowledged": 1, "resolved": 1}
    assert counts["channel"] == {"telegram": 1, "slack": 2}
    assert counts["flow"] == {"delivery": 2, "onboarding": 1}
    assert counts["reason"] == {"nps_detractor": 3, "negative_sentiment": 1}
    assert counts["sentiment"] == {"negative": 2, "unlabelled": 1}
    assert counts["touchpoint"] == {"delivery": 1, "support": 2}
    both = _page(db, channel="slack", sentiment="negative").counts
    assert both["channel"] == {"slack": 1, "telegram": 1}  # negative ones per channel
    assert both["sentiment"] == {"negative": 1, "unlabelled": 1}  # slack ones per label
    assert both["status"] == {"open": 1}
    # Non-facet filters narrow every count.
    assert _page(db, overdue=True).counts["status"] == {"open": 2}


def test_pages_split_the_ordered_queue(db: Engine, items: dict[str, Flagged]) -> None:
    pages = [_page(db, per_page=2, page=n) for n in (1, 2, 3, 4)]
    assert [_users(p) for p in pages] == [["ann", "bob"], ["eve", "cat"], ["dan"], []]
    assert all(p.total == 5 for p in pages)


def test_a_correction_changes_the_sentiment_shown_and_clears_low_confidence(
    db: Engine, items: dict[str, Flagged]
) -> None:
    with transaction(db) as s:
        dan, bob = items["dan"].text_answer_id, items["bob"].text_answer_id
        assert dan is not None and bob is not None
        add_correction(s, answer_id=dan, new_label="negative", actor="desk:ana@example.com")
        add_correction(s, answer_id=bob, new_label="negative", actor="desk:ana@example.com")
    assert _users(_page(db, sentiment="negative")) == ["ann", "bob", "dan"]
    assert _users(_page(db, sentiment="positive")) == []
    assert _users(_page(db, low_confidence=True)) == ["cat"]
    row = next(r for r in _page(db).rows if r.customer == "dan")
    assert (row.sentiment, row.confidence) == ("negative", None)


def test_an_acknowledged_or_resolved_item_is_no_longer_overdue(
    db: Engine, items: dict[str, Flagged]
) -> None:
    with transaction(db) as s:
        item = get_review_item(s, review_item_id=items["bob"].review_id)
        assert item is not None
        add_review_event(
            s, item=item, action="acknowledged", actor="desk:a@x", status="acknowledged"
        )
        item = get_review_item(s, review_item_id=items["eve"].review_id)
        assert item is not None
        add_review_event(s, item=item, action="resolved", actor="desk:a@x", status="resolved")
    assert _users(_page(db, overdue=True)) == []


def test_the_item_reads_the_whole_conversation_in_order(
    db: Engine, items: dict[str, Flagged]
) -> None:
    ann = items["ann"]
    with transaction(db) as s:
        s.add(
            OutboxMessage(
                channel="telegram",
                recipient="ann",
                lane=lane_of("telegram", "ann"),
                kind="message",
                body={"text": "How likely are you to recommend us?"},
                question_id="nps",
                created_at=NOW - timedelta(hours=1, minutes=2),
            )
        )
        item = get_review_item(s, review_item_id=ann.review_id)
        assert item is not None
        add_review_event(s, item=item, action="replied", actor="desk:a@x", note="Sorry!")
    with transaction(db) as s:
        found = dq.item_details(s, review_id=ann.review_id, now=NOW, target=TARGET)
    assert found is not None
    assert [(m.who, m.text) for m in found.messages] == [
        ("bot", "How likely are you to recommend us?"),
        ("customer", "3"),
        ("customer", "The courier was late"),
        ("support", "Sorry!"),
    ]
    assert found.messages[1].score == 3 and found.messages[2].answer_id == ann.text_answer_id
    assert found.messages[3].actor == "desk:a@x"
    assert found.touchpoint == "delivery"
    assert found.item.first_ack_at is not None and found.item.first_reply_at is not None
    with transaction(db) as s:
        assert dq.item_details(s, review_id=10_000, now=NOW, target=TARGET) is None


def test_response_times_are_nearest_rank_percentiles_of_the_window(db: Engine) -> None:
    h = timedelta(hours=1)
    for n, (age, ack, reply) in enumerate(
        [
            (1, 1, None),
            (2, 2, 5),
            (3, 3, None),
            (4, 4, 7),
            (5, 10, None),
            (20, 100, None),  # only in the 30-day window
            (40, 1, 1),  # in neither
            (1, None, None),  # not acknowledged yet
        ]
    ):
        created = NOW - age * 24 * h
        add_flagged(
            db,
            user=f"u{n}",
            created_at=created,
            first_ack_at=created + ack * h if ack is not None else None,
            first_reply_at=created + reply * h if reply is not None else None,
        )
    with transaction(db) as s:
        week = dq.response_times(s, since=NOW - 7 * 24 * h)
        month = dq.response_times(s, since=NOW - 30 * 24 * h)
    assert week.acknowledged == [3600.0, 7200.0, 10800.0, 14400.0, 36000.0]
    assert dq.percentile(week.acknowledged, 0.5) == 3 * h  # ceil(2.5) = 3rd of 5
    assert dq.percentile(week.acknowledged, 0.9) == 10 * h  # ceil(4.5) = 5th
    assert dq.percentile(week.replied, 0.5) == 5 * h  # ceil(1.0) = 1st of 2
    assert dq.percentile(week.replied, 0.9) == 7 * h  # ceil(1.8) = 2nd
    assert dq.percentile(month.acknowledged, 0.5) == 3 * h  # ceil(3.0) = 3rd of 6
    assert dq.percentile(month.acknowledged, 0.9) == 100 * h  # ceil(5.4) = 6th
    assert dq.percentile([], 0.5) is None


def test_the_facts_cache_follows_new_rows_updates_and_deletions(
    db: Engine, items: dict[str, Flagged]
) -> None:
    cache = dq.FactsCache()

    def page(**changes: object) -> dq.StoredPage:
        with transaction(db) as s:
            return dq.queue_page(s, replace(BASE, **changes), cache)  # type: ignore[arg-type]

    assert _users(page(sentiment="positive")) == ["dan"]
    # A correction (a new row): only the items it touches are derived again.
    with transaction(db) as s:
        assert items["dan"].text_answer_id is not None
        add_correction(s, answer_id=items["dan"].text_answer_id, new_label="negative", actor="x:y")
    assert _users(page(sentiment="positive")) == []
    assert page().counts["sentiment"] == {"negative": 3, "neutral": 1, "unlabelled": 1}
    # A new item, and a new reason on an old one (an update of the item).
    add_flagged(db, user="gus", created_at=NOW, reasons=("keyword",))
    with transaction(db) as s:
        conversation = s.get(Conversation, items["ann"].conversation_id)
        assert conversation is not None
        flag_for_review(s, conversation=conversation, reasons=[{"code": "keyword"}])
    assert _users(page(reason="keyword")) == ["gus", "ann", "cat", "dan"]
    # A label deleted (an erasure): every item is derived again, the erased one left out.
    with transaction(db) as s:
        erase_customer(s, channel="slack", external_id="bob")
    assert _users(page(sentiment="negative")) == ["gus", "ann", "dan"]
    assert page().total == 5
