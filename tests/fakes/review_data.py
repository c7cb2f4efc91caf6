"""Flagged survey responses for desk tests: one call stores a customer, their survey, its
answers and labels, the invitation (touchpoint) and the review item, as the bot would."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from storage.database import Session, transaction
from storage.tables import (
    Answer,
    Conversation,
    ConversationState,
    Customer,
    Invitation,
    InvitationStatus,
    ReviewItem,
    SentimentScore,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MODEL_ID = "tests/sentiment-model"


def completed_survey(
    s: Session,
    *,
    channel: str,
    external_id: str,
    flow: str,
    at: datetime,
    context: dict[str, Any],
    first_name: str | None = None,
    customer_since: datetime | None = None,
    completed: bool = False,
) -> tuple[Customer, Conversation]:
    """A new customer (created at `customer_since`, else now) and their completed survey
    (started two minutes before `at`), flushed; `completed`: `at` is its completion time."""
    customer = Customer(channel=channel, external_id=external_id, first_name=first_name)
    if customer_since is not None:
        customer.created_at = customer_since
    s.add(customer)
    s.flush()
    assert customer.id is not None
    conversation = Conversation(
        customer_id=customer.id,
        channel=channel,
        flow_id=flow,
        flow_version=1,
        state=ConversationState.COMPLETED,
        context=context,
        started_at=at - timedelta(minutes=2),
        updated_at=at,
        completed_at=at if completed else None,
    )
    s.add(conversation)
    s.flush()
    return customer, conversation


@dataclass(frozen=True, slots=True)
class Flagged:
    """What `add_flagged` stored: the item, its survey, its customer and its text answer."""

    review_id: int
    conversation_id: int
    customer_id: int
    text_answer_id: int | None
    nps_answer_id: int | None


def add_flagged(
    db: Engine,
    *,
    user: str,
    channel: str = "telegram",
    flow: str = "delivery",
    touchpoint: str | None = None,
    created_at: datetime = NOW,
    nps: int | None = 3,
    text: str | None = "The courier was late",
    label: str | None = "negative",
    confidence: float = 0.9,
    model_version: str = "v1",
    reasons: tuple[str, ...] = ("nps_detractor",),
    status: str = "open",
    assignee: str | None = None,
    first_ack_at: datetime | None = None,
    first_reply_at: datetime | None = None,
    first_name: str | None = None,
) -> Flagged:
    """Store one flagged response (answered a minute after the survey started at `created_at`)."""
    with transaction(db) as s:
        customer, conversation = completed_survey(
            s,
            channel=channel,
            external_id=user,
            flow=flow,
            at=created_at,
            context={"order_id": f"A-{user}"},
            first_name=first_name,
            customer_since=created_at,
        )
        assert customer.id is not None and conversation.id is not None
        nps_answer = text_answer = None
        if nps is not None:
            nps_answer = _answer(s, conversation, "nps", "nps", str(nps), created_at, value=nps)
        if text is not None:
            text_answer = _answer(s, conversation, "why", "text", text, created_at, value=None)
            if label is not None:
                s.add(
                    SentimentScore(
                        answer_id=text_answer,
                        label=label,
                        confidence=confidence,
                        model_id=MODEL_ID,
                        model_version=model_version,
                        scored_at=created_at,
                    )
                )
        if touchpoint is not None:
            s.add(
                Invitation(
                    source="cli",
                    interaction_id=f"i-{user}",
                    customer_id=customer.id,
                    channel=channel,
                    user_id=user,
                    touchpoint=touchpoint,
                    flow_id=flow,
                    status=InvitationStatus.SENT,
                    conversation_id=conversation.id,
                )
            )
        reason_rows: list[dict[str, Any]] = [
            {"code": code, "question_id": "nps", "answer_id": nps_answer, "detail": code.upper()}
            for code in reasons
        ]
        item = ReviewItem(
            conversation_id=conversation.id,
            customer_id=customer.id,
            status=status,
            reasons=reason_rows,
            created_at=created_at,
            updated_at=created_at,
            assignee=assignee,
            first_ack_at=first_ack_at,
            first_reply_at=first_reply_at,
        )
        s.add(item)
        s.flush()
        assert item.id is not None
        return Flagged(item.id, conversation.id, customer.id, text_answer, nps_answer)


def _answer(
    s: Any,
    conversation: Conversation,
    question_id: str,
    question_type: str,
    raw: str,
    at: datetime,
    *,
    value: int | None,
) -> int:
    assert conversation.id is not None
    answer = Answer(
        conversation_id=conversation.id,
        customer_id=conversation.customer_id,
        channel=conversation.channel,
        flow_id=conversation.flow_id,
        flow_version=1,
        question_id=question_id,
        question_type=question_type,
        raw_text=raw,
        value_int=value,
        value_text=raw if question_type == "text" else None,
        scale_min=0 if question_type == "nps" else None,
        scale_max=10 if question_type == "nps" else None,
        answered_at=at - timedelta(minutes=1),
    )
    s.add(answer)
    s.flush()
    assert answer.id is not None
    return answer.id
