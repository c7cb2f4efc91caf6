"""The counts behind `/metrics`, read back from rows stored on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from storage.database import transaction
from storage.ops_counts import read_ops_counts
from storage.tables import (
    Answer,
    Conversation,
    Customer,
    DeliveryFailure,
    InboxUpdate,
    OutboxMessage,
    ReviewItem,
    SentimentScore,
    utcnow,
)


def test_counts_group_what_is_stored(db: Engine) -> None:
    now = utcnow()
    with transaction(db) as s:
        customer = Customer(channel="telegram", external_id="7")
        s.add(customer)
        s.flush()
        assert customer.id is not None
        conv = Conversation(
            customer_id=customer.id, channel="telegram", flow_id="nps", flow_version=1
        )
        s.add(conv)
        s.flush()
        assert conv.id is not None

        def answer(qtype: str, text: str | None = None) -> Answer:
            return Answer(
                conversation_id=conv.id,
                customer_id=customer.id,
                channel="telegram",
                flow_id="nps",
                flow_version=1,
                question_id=qtype,
                question_type=qtype,
                value_text=text,
                answered_at=now - timedelta(seconds=30),
            )

        labelled = answer("text", "slow courier")
        s.add_all([answer("nps"), answer("nps"), labelled, answer("text", "fine")])
        s.flush()
        assert labelled.id is not None
        s.add(
            SentimentScore(
                answer_id=labelled.id,
                label="negative",
                confidence=0.9,
                model_id="m",
                model_version="1",
                scored_at=now,
            )
        )
        s.add(ReviewItem(conversation_id=conv.id, customer_id=customer.id))
        s.add_all(
            [
                InboxUpdate(channel="telegram", event_key="1", lane="a", processed_at=now),
                InboxUpdate(channel="telegram", event_key="2", lane="a"),
            ]
        )
        s.add_all(
            [
                OutboxMessage(channel="telegram", recipient="7", lane="a", kind="text"),
                OutboxMessage(
                    channel="telegram", recipient="7", lane="a", kind="text", failed_at=now
                ),
            ]
        )
        s.add(DeliveryFailure(channel="slack", target="C1", purpose="review_alert", error="x"))

    counts = read_ops_counts(db)

    assert counts.turns == {"telegram": 1}
    assert counts.inbox_pending == {"telegram": 1}
    assert counts.answers == {("nps", "nps"): 2, ("nps", "text"): 2}
    assert counts.flags == {"open": 1}
    assert counts.sentiment_backlog == 1
    assert [round(x) for x in counts.sentiment_latencies] == [30]
    assert counts.outbox_pending == {"telegram": 1}
    assert counts.outbox_failed == {"telegram": 1}
    assert counts.delivery_failures == {"slack": 1}


def test_counts_of_an_empty_database(db: Engine) -> None:
    counts = read_ops_counts(db)
    assert (counts.turns, counts.answers, counts.sentiment_backlog) == ({}, {}, 0)
