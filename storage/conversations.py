"""Queries on conversations (the engine's persisted state) and the answers given in them."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from storage.tables import Answer, Conversation, ConversationState, utcnow


def active_conversation(session: Session, *, customer_id: int) -> Conversation | None:
    """The customer's unfinished conversation, locked for this transaction where supported."""
    stmt = (
        select(Conversation)
        .where(
            Conversation.customer_id == customer_id,
            Conversation.state == ConversationState.ACTIVE,
        )
        # Two processes handling the same customer's messages must take turns (PostgreSQL).
        .with_for_update()
    )
    return session.exec(stmt).first()


def latest_conversation(session: Session, *, customer_id: int) -> Conversation | None:
    """The customer's most recent conversation in any state."""
    stmt = (
        select(Conversation)
        .where(Conversation.customer_id == customer_id)
        .order_by(col(Conversation.id).desc())
    )
    return session.exec(stmt).first()


def start_conversation(
    session: Session,
    *,
    customer_id: int,
    channel: str,
    flow_id: str,
    flow_version: int,
    locale: str,
    context: dict[str, Any],
) -> Conversation:
    """Create an active conversation (the caller ends any previous one first)."""
    conversation = Conversation(
        customer_id=customer_id,
        channel=channel,
        flow_id=flow_id,
        flow_version=flow_version,
        locale=locale,
        context=dict(context),
    )
    session.add(conversation)
    session.flush()
    return conversation


def save_progress(
    session: Session,
    *,
    conversation: Conversation,
    current_question: str | None,
    invalid_attempts: int = 0,
) -> None:
    """Move the conversation to its next question (None with `end_conversation`)."""
    conversation.current_question = current_question
    conversation.invalid_attempts = invalid_attempts
    conversation.updated_at = utcnow()
    session.add(conversation)
    session.flush()


def end_conversation(
    session: Session, *, conversation: Conversation, state: ConversationState
) -> None:
    """Close the conversation as completed, abandoned or opted out."""
    conversation.state = state
    conversation.current_question = None
    conversation.updated_at = utcnow()
    if state == ConversationState.COMPLETED:
        conversation.completed_at = conversation.updated_at
    session.add(conversation)
    session.flush()


def add_answer(
    session: Session,
    *,
    conversation: Conversation,
    question_id: str,
    question_type: str,
    raw_text: str,
    value_int: int | None = None,
    value_text: str | None = None,
    scale: tuple[int, int] | None = None,
    skipped: bool = False,
    truncated: bool = False,
) -> Answer:
    """Store one answer under the conversation's flow id and version."""
    assert conversation.id is not None
    answer = Answer(
        conversation_id=conversation.id,
        customer_id=conversation.customer_id,
        channel=conversation.channel,
        flow_id=conversation.flow_id,
        flow_version=conversation.flow_version,
        question_id=question_id,
        question_type=question_type,
        raw_text=raw_text,
        value_int=value_int,
        value_text=value_text,
        scale_min=scale[0] if scale else None,
        scale_max=scale[1] if scale else None,
        skipped=skipped,
        truncated=truncated,
    )
    session.add(answer)
    session.flush()
    return answer


def conversation_answers(session: Session, *, conversation_id: int) -> list[Answer]:
    """Every answer of a conversation, in the order given."""
    stmt = select(Answer).where(Answer.conversation_id == conversation_id).order_by(col(Answer.id))
    return list(session.exec(stmt))
