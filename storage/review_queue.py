"""Queries behind the support loop: review events, alert bookkeeping and delivery failures.

Alerts are posted outside any transaction (a platform call must never hold a database lock), so
a process first *claims* an alert row in a short transaction (compare-and-set on `claimed_at`),
posts, then records the result. A claim older than the stale limit is taken over, so a process
that died mid-post delays an alert but never loses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.tables import (
    Answer,
    Conversation,
    Customer,
    DeliveryFailure,
    ReviewAlert,
    ReviewEvent,
    ReviewItem,
    ReviewStatus,
    SentimentScore,
    utcnow,
)

# Actions that count as the first response to an item (a reply acknowledges it too).
ACK_ACTIONS = frozenset({"acknowledged", "replied"})


@dataclass(frozen=True, slots=True)
class ReviewDetails:
    """Everything an alert shows about one review item, read in one transaction."""

    item: ReviewItem
    customer: Customer
    conversation: Conversation
    answers: list[Answer]
    # answer id → its most recent sentiment label
    sentiment: dict[int, SentimentScore] = field(default_factory=dict)
    events: list[ReviewEvent] = field(default_factory=list)


def get_review_item(session: Session, *, review_item_id: int) -> ReviewItem | None:
    """The review item with this id, locked for this transaction where supported."""
    stmt = select(ReviewItem).where(ReviewItem.id == review_item_id).with_for_update()
    return session.exec(stmt).first()


def review_details(session: Session, *, review_item_id: int) -> ReviewDetails | None:
    """The item with its customer, conversation, answers, sentiment labels and events."""
    item = session.get(ReviewItem, review_item_id)
    if item is None:
        return None
    customer = session.get(Customer, item.customer_id)
    conversation = session.get(Conversation, item.conversation_id)
    assert customer is not None and conversation is not None  # foreign keys
    answers = list(
        session.exec(
            select(Answer)
            .where(Answer.conversation_id == item.conversation_id)
            .order_by(col(Answer.id))
        )
    )
    sentiment: dict[int, SentimentScore] = {}
    ids = [a.id for a in answers if a.id is not None]
    if ids:
        scores = session.exec(
            select(SentimentScore)
            .where(col(SentimentScore.answer_id).in_(ids))
            .order_by(col(SentimentScore.id))
        )
        for score in scores:
            sentiment[score.answer_id] = score  # the newest wins
    return ReviewDetails(
        item=item,
        customer=customer,
        conversation=conversation,
        answers=answers,
        sentiment=sentiment,
        events=review_events(session, review_item_id=review_item_id),
    )


def review_events(session: Session, *, review_item_id: int) -> list[ReviewEvent]:
    """What the support team did with the item, oldest first."""
    stmt = (
        select(ReviewEvent)
        .where(ReviewEvent.review_item_id == review_item_id)
        .order_by(col(ReviewEvent.id))
    )
    return list(session.exec(stmt))


def add_review_event(
    session: Session,
    *,
    item: ReviewItem,
    action: str,
    actor: str,
    actor_name: str | None = None,
    note: str | None = None,
    status: str | None = None,
) -> ReviewEvent:
    """Record one action on the item (and its new status); the item's alert then updates.

    The first acknowledgement or reply stamps `first_ack_at`, the first reply `first_reply_at`.
    """
    assert item.id is not None
    event = ReviewEvent(
        review_item_id=item.id,
        action=action,
        actor=actor[:128],
        actor_name=actor_name[:128] if actor_name else None,
        note=note,
    )
    if status is not None:
        item.status = status
    # Response times: stamped once, so a reopen and a second reply never move them.
    if action in ACK_ACTIONS and item.first_ack_at is None:
        item.first_ack_at = event.created_at
    if action == "replied" and item.first_reply_at is None:
        item.first_reply_at = event.created_at
    item.updated_at = event.created_at
    session.add(item)
    session.add(event)
    session.flush()
    return event


def _label_count() -> Any:
    """Sentiment labels on the answers of the review item's conversation (a correlated count)."""
    return (
        select(func.count(col(SentimentScore.id)))
        .join(Answer, col(Answer.id) == col(SentimentScore.answer_id))
        .where(col(Answer.conversation_id) == col(ReviewItem.conversation_id))
        .correlate(ReviewItem)
        .scalar_subquery()
    )


def claim_alerts(
    session: Session, *, target: str, now: datetime, stale_before: datetime, limit: int
) -> list[int]:
    """Claim up to `limit` review items whose alert is missing or out of date; their ids.

    New items get an alert row (the unique key makes one process win); existing rows are taken
    with a compare-and-set on `claimed_at`, so two processes never post the same alert at once.
    """
    claimed: list[int] = []
    missing = session.exec(
        select(ReviewItem.id)
        .outerjoin(ReviewAlert, col(ReviewAlert.review_item_id) == col(ReviewItem.id))
        .where(col(ReviewAlert.id).is_(None))
        .order_by(col(ReviewItem.id))
        .limit(limit)
    ).all()
    for item_id in missing:
        assert item_id is not None
        try:
            with session.begin_nested():
                session.add(ReviewAlert(review_item_id=item_id, target=target, claimed_at=now))
                session.flush()
        except IntegrityError:
            continue  # another process claimed it first
        claimed.append(item_id)
    if len(claimed) >= limit:
        return claimed
    free = or_(col(ReviewAlert.claimed_at).is_(None), col(ReviewAlert.claimed_at) < stale_before)
    due = or_(col(ReviewAlert.retry_at).is_(None), col(ReviewAlert.retry_at) <= now)
    changed = or_(
        col(ReviewAlert.shown_version).is_(None),
        col(ReviewAlert.shown_version) != col(ReviewItem.updated_at),
        # A label that arrived since (resolved items are not worth another update).
        and_(
            col(ReviewItem.status) != ReviewStatus.RESOLVED,
            col(ReviewAlert.shown_labels) != _label_count(),
        ),
    )
    rows = session.exec(
        select(ReviewAlert.id, ReviewAlert.review_item_id)
        .join(ReviewItem, col(ReviewItem.id) == col(ReviewAlert.review_item_id))
        .where(free, due, changed)
        .order_by(col(ReviewAlert.id))
        .limit(limit - len(claimed))
    ).all()
    for alert_id, item_id in rows:
        result = session.execute(
            update(ReviewAlert).where(col(ReviewAlert.id) == alert_id, free).values(claimed_at=now)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(item_id)
    return claimed


def claim_alert(
    session: Session, *, review_item_id: int, target: str, now: datetime, stale_before: datetime
) -> bool:
    """Claim one item's alert now (after a support action); False when another holds it."""
    alert = alert_of(session, review_item_id=review_item_id)
    if alert is None:
        try:
            with session.begin_nested():
                session.add(
                    ReviewAlert(review_item_id=review_item_id, target=target, claimed_at=now)
                )
                session.flush()
        except IntegrityError:
            return False
        return True
    free = or_(col(ReviewAlert.claimed_at).is_(None), col(ReviewAlert.claimed_at) < stale_before)
    result = session.execute(
        update(ReviewAlert).where(col(ReviewAlert.id) == alert.id, free).values(claimed_at=now)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def alert_of(session: Session, *, review_item_id: int) -> ReviewAlert | None:
    """The alert row of a review item, if one was ever claimed."""
    stmt = select(ReviewAlert).where(ReviewAlert.review_item_id == review_item_id)
    return session.exec(stmt).first()


def record_alert_shown(
    session: Session,
    *,
    review_item_id: int,
    message_ts: str,
    shown_version: datetime,
    shown_labels: int,
) -> None:
    """The alert now shows the item as of `shown_version` with `shown_labels`; release it."""
    alert = alert_of(session, review_item_id=review_item_id)
    assert alert is not None
    alert.message_ts = message_ts[:32]
    alert.shown_version = shown_version
    alert.shown_labels = shown_labels
    alert.claimed_at = alert.retry_at = alert.last_error = None
    alert.failures = 0
    session.add(alert)
    session.flush()


def record_alert_failed(
    session: Session, *, review_item_id: int, error: str, retry_at: datetime
) -> int:
    """Posting failed: release the claim, try again at `retry_at`; the failure count."""
    alert = alert_of(session, review_item_id=review_item_id)
    assert alert is not None
    alert.claimed_at = None
    alert.failures += 1
    alert.retry_at = retry_at
    alert.last_error = error[:256]
    session.add(alert)
    session.flush()
    return alert.failures


def add_delivery_failure(
    session: Session,
    *,
    channel: str,
    target: str,
    purpose: str,
    error: str,
    review_item_id: int | None = None,
) -> DeliveryFailure:
    """Keep a refused delivery for the admins (what, to whom, why)."""
    failure = DeliveryFailure(
        channel=channel[:32],
        target=target[:128],
        purpose=purpose[:32],
        error=error[:512],
        review_item_id=review_item_id,
        created_at=utcnow(),
    )
    session.add(failure)
    session.flush()
    return failure


def delivery_failures(session: Session) -> list[DeliveryFailure]:
    """Every stored delivery failure, oldest first."""
    return list(session.exec(select(DeliveryFailure).order_by(col(DeliveryFailure.id))))
