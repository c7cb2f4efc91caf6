"""A survey response as other systems are told about it: conversation, customer, answers, labels.

Read inside the transaction that completes or flags the response, so that the event written
to the outbox shows exactly what that transaction stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from storage.tables import Answer, Conversation, Customer, SentimentScore

_ANSWERS = (
    select(Answer)
    .where(Answer.conversation_id == bindparam("conversation_id"))
    .order_by(col(Answer.id))
)
_LABELS = (
    select(SentimentScore)
    .join(Answer, col(Answer.id) == col(SentimentScore.answer_id))
    .where(Answer.conversation_id == bindparam("conversation_id"))
    .order_by(col(SentimentScore.id))
)


@dataclass(frozen=True, slots=True)
class ResponseRecord:
    """One conversation with its customer, its answers in order and their newest labels."""

    conversation: Conversation
    customer: Customer
    answers: list[Answer]
    # answer id → its most recent sentiment label (free-text answers labelled so far)
    sentiment: dict[int, SentimentScore] = field(default_factory=dict)


def response_record(session: Session, *, conversation_id: int) -> ResponseRecord | None:
    """The response of conversation `conversation_id` (None: no such conversation)."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        return None
    customer = session.get(Customer, conversation.customer_id)
    assert customer is not None  # a foreign key
    params = {"conversation_id": conversation_id}
    answers = list(session.exec(_ANSWERS, params=params))
    sentiment = {score.answer_id: score for score in session.exec(_LABELS, params=params)}
    return ResponseRecord(
        conversation=conversation, customer=customer, answers=answers, sentiment=sentiment
    )
