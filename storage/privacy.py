"""Queries for privacy requests: erase one customer's personal data, export it, expire old text.

Erasure keeps the anonymous scores that the metrics count: score, choice and yes/no answers
stay with their parsed value and their raw text blanked, pointing at the customer's row, which
is anonymised in place (names, locale, zone cleared; `external_id` becomes `erased:<row id>`).
Everything that holds what the customer wrote or their platform id is deleted or blanked:
text answers and late comments (and their sentiment rows), conversation and invitation
context, review notes and keyword quotes, the inbox and outbox rows of their chat, and
delivery failures addressed to them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, update
from sqlmodel import Session, col, select

from storage.tables import (
    Answer,
    Conversation,
    Customer,
    DeliveryFailure,
    InboxUpdate,
    Invitation,
    LabelCorrection,
    OutboxMessage,
    ReviewEvent,
    ReviewItem,
    SentimentScore,
)

# The question type whose answers are the customer's own words (late comments are too).
TEXT_TYPE = "text"
# Reason codes whose `detail` quotes the customer's words.
_QUOTING_REASONS = frozenset({"keyword"})


def erased_external_id(customer_id: int) -> str:
    """The anonymous id an erased customer's row keeps (unique per channel, never a real id)."""
    return f"erased:{customer_id}"


def _rowcount(result: Any) -> int:
    return int(result.rowcount or 0)


def _is_free_text() -> ColumnElement[bool]:
    # Scores, choices and yes/no keep their parsed value; what was typed goes.
    return or_(col(Answer.late), col(Answer.question_type) == TEXT_TYPE)


def _delete_answers(session: Session, answer_ids: list[int]) -> tuple[int, int]:
    """Delete these answers and their sentiment rows and label corrections; (answers, sentiment
    rows) deleted."""
    if not answer_ids:
        return 0, 0
    # A correction keeps nothing of the text but points at the answer: it goes with it.
    session.execute(delete(LabelCorrection).where(col(LabelCorrection.answer_id).in_(answer_ids)))
    scores = session.execute(
        delete(SentimentScore).where(col(SentimentScore.answer_id).in_(answer_ids))
    )
    answers = session.execute(delete(Answer).where(col(Answer.id).in_(answer_ids)))
    return _rowcount(answers), _rowcount(scores)


def _redacted_reasons(reasons: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**r, "detail": "(erased)"} if r.get("code") in _QUOTING_REASONS else dict(r)
        for r in reasons
    ]


def erase_customer(session: Session, *, channel: str, external_id: str) -> dict[str, int] | None:
    """Erase the customer's personal data; rows changed per table, or None when unknown.

    Inbox and outbox rows are found by the customer's lane (`channel:external_id`), so they go
    even when no customer row exists; the counts then have no `customer` entry.
    """
    counts: dict[str, int] = {}
    lane = f"{channel}:{external_id}"
    counts["inboxupdate"] = _rowcount(
        session.execute(
            delete(InboxUpdate).where(
                col(InboxUpdate.channel) == channel, col(InboxUpdate.lane) == lane
            )
        )
    )
    # Locked (PostgreSQL): a turn or an invitation of this customer running now waits, and
    # then finds the row anonymised instead of writing beside the erasure.
    customer = session.exec(
        select(Customer)
        .where(Customer.channel == channel, Customer.external_id == external_id)
        .with_for_update()
    ).first()
    items: list[ReviewItem] = []
    if customer is not None and customer.id is not None:
        items = list(session.exec(select(ReviewItem).where(ReviewItem.customer_id == customer.id)))
    item_ids = [i.id for i in items if i.id is not None]
    outbox = delete(OutboxMessage).where(
        or_(
            (col(OutboxMessage.channel) == channel)
            & or_(col(OutboxMessage.lane) == lane, col(OutboxMessage.recipient) == external_id),
            col(OutboxMessage.review_item_id).in_(item_ids)
            & (col(OutboxMessage.purpose) == "review_reply"),
        )
    )
    counts["outboxmessage"] = _rowcount(session.execute(outbox))
    failures = delete(DeliveryFailure).where(
        or_(
            (col(DeliveryFailure.channel) == channel)
            & (col(DeliveryFailure.target) == external_id),
            col(DeliveryFailure.review_item_id).in_(item_ids)
            & (col(DeliveryFailure.purpose) == "review_reply"),
        )
    )
    counts["deliveryfailure"] = _rowcount(session.execute(failures))
    if customer is None or customer.id is None:
        return None if not any(counts.values()) else counts
    cid = customer.id
    text_ids = list(
        session.exec(select(Answer.id).where(Answer.customer_id == cid, _is_free_text()))
    )
    counts["answer_deleted"], counts["sentimentscore"] = _delete_answers(
        session, [i for i in text_ids if i is not None]
    )
    counts["answer_blanked"] = _rowcount(
        session.execute(update(Answer).where(col(Answer.customer_id) == cid).values(raw_text=""))
    )
    counts["conversation"] = _rowcount(
        session.execute(
            update(Conversation).where(col(Conversation.customer_id) == cid).values(context={})
        )
    )
    counts["invitation"] = _rowcount(
        session.execute(
            update(Invitation)
            .where(col(Invitation.customer_id) == cid)
            .values(context={}, user_id=erased_external_id(cid))
        )
    )
    for item in items:
        item.reasons = _redacted_reasons(item.reasons)
        # A change of the item: its alert and the desk's cached queue facts see it.
        item.updated_at = datetime.now(UTC)
        session.add(item)
    counts["reviewitem"] = len(items)
    counts["reviewevent"] = (
        _rowcount(
            session.execute(
                update(ReviewEvent)
                .where(col(ReviewEvent.review_item_id).in_(item_ids))
                .values(note=None)
            )
        )
        if item_ids
        else 0
    )
    customer.external_id = erased_external_id(cid)
    customer.first_name = customer.last_name = customer.locale = customer.time_zone = None
    customer.unreachable_reason = None
    customer.opted_out_at = customer.opted_out_at or datetime.now(UTC)
    session.add(customer)
    counts["customer"] = 1
    session.flush()
    return counts


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def export_customer(session: Session, *, channel: str, external_id: str) -> dict[str, Any] | None:
    """Everything stored about the customer, as JSON-ready data; None when unknown."""
    customer = session.exec(
        select(Customer).where(Customer.channel == channel, Customer.external_id == external_id)
    ).first()
    if customer is None or customer.id is None:
        return None
    cid = customer.id
    answers = session.exec(
        select(Answer).where(Answer.customer_id == cid).order_by(col(Answer.id))
    ).all()
    answer_ids = [a.id for a in answers if a.id is not None]
    sentiment = (
        session.exec(
            select(SentimentScore)
            .where(col(SentimentScore.answer_id).in_(answer_ids))
            .order_by(col(SentimentScore.id))
        ).all()
        if answer_ids
        else []
    )
    conversations = session.exec(
        select(Conversation).where(Conversation.customer_id == cid).order_by(col(Conversation.id))
    ).all()
    invitations = session.exec(
        select(Invitation).where(Invitation.customer_id == cid).order_by(col(Invitation.id))
    ).all()
    items = session.exec(
        select(ReviewItem).where(ReviewItem.customer_id == cid).order_by(col(ReviewItem.id))
    ).all()
    return {
        "customer": {
            "channel": customer.channel,
            "external_id": customer.external_id,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "locale": customer.locale,
            "time_zone": customer.time_zone,
            "opted_out_at": _iso(customer.opted_out_at),
            "unreachable_at": _iso(customer.unreachable_at),
            "created_at": _iso(customer.created_at),
        },
        "conversations": [
            {
                "id": c.id,
                "flow_id": c.flow_id,
                "flow_version": c.flow_version,
                "state": c.state,
                "locale": c.locale,
                "context": c.context,
                "started_at": _iso(c.started_at),
                "completed_at": _iso(c.completed_at),
            }
            for c in conversations
        ],
        "answers": [
            {
                "id": a.id,
                "conversation_id": a.conversation_id,
                "flow_id": a.flow_id,
                "question_id": a.question_id,
                "question_type": a.question_type,
                "raw_text": a.raw_text,
                "value_int": a.value_int,
                "value_text": a.value_text,
                "skipped": a.skipped,
                "late": a.late,
                "answered_at": _iso(a.answered_at),
            }
            for a in answers
        ],
        "sentiment": [
            {"answer_id": s.answer_id, "label": s.label, "confidence": s.confidence}
            for s in sentiment
        ],
        "invitations": [
            {
                "source": i.source,
                "interaction_id": i.interaction_id,
                "touchpoint": i.touchpoint,
                "flow_id": i.flow_id,
                "context": i.context,
                "status": i.status,
                "reason": i.reason,
                "created_at": _iso(i.created_at),
            }
            for i in invitations
        ],
        "reviews": [
            {"id": r.id, "status": r.status, "reasons": r.reasons, "created_at": _iso(r.created_at)}
            for r in items
        ],
    }


def forget_old_text(session: Session, *, answered_before: datetime) -> dict[str, int]:
    """Delete free-text answers and late comments older than the cutoff, with their sentiment
    rows, blank the raw text of older score answers and review notes; rows changed per table."""
    cutoff = answered_before.astimezone(UTC)
    old_text = list(
        session.exec(select(Answer.id).where(Answer.answered_at < cutoff, _is_free_text()))
    )
    deleted, scores = _delete_answers(session, [i for i in old_text if i is not None])
    blanked = session.execute(
        update(Answer)
        .where(col(Answer.answered_at) < cutoff, col(Answer.raw_text) != "")
        .values(raw_text="")
    )
    notes = session.execute(
        update(ReviewEvent)
        .where(col(ReviewEvent.created_at) < cutoff, col(ReviewEvent.note).is_not(None))
        .values(note=None)
    )
    return {
        "answer_deleted": deleted,
        "sentimentscore": scores,
        "answer_blanked": _rowcount(blanked),
        "reviewevent": _rowcount(notes),
    }
