"""Queries on review items: survey responses flagged for the support team."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from storage.tables import Conversation, ReviewItem, ReviewStatus, utcnow


def flag_for_review(
    session: Session, *, conversation: Conversation, reasons: list[dict[str, Any]]
) -> ReviewItem:
    """Open (or extend) the conversation's review item with these reasons."""
    assert conversation.id is not None
    stmt = select(ReviewItem).where(ReviewItem.conversation_id == conversation.id)
    item = session.exec(stmt).first()
    if item is None:
        item = ReviewItem(conversation_id=conversation.id, customer_id=conversation.customer_id)
    # A new list, not an in-place append: JSON columns only notice reassignment.
    item.reasons = [*item.reasons, *reasons]
    item.updated_at = utcnow()
    session.add(item)
    session.flush()
    return item


def review_items(session: Session, *, status: ReviewStatus | None = None) -> list[ReviewItem]:
    """Review items, oldest first, optionally only those with one status."""
    stmt = select(ReviewItem).order_by(col(ReviewItem.id))
    if status is not None:
        stmt = stmt.where(ReviewItem.status == status)
    return list(session.exec(stmt))
