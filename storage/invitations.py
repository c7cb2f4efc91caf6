"""Queries behind invitations: what is known of a customer, and undoing an undelivered one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.conversations import active_conversation, end_conversation
from storage.customers import get_customer
from storage.tables import Conversation, ConversationState


def _aware(value: datetime | None) -> datetime | None:
    # SQLite gives back naive datetimes; every stored time is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class InvitationFacts:
    """What decides whether a customer may be invited now."""

    known: bool  # a customer row exists (they wrote to the bot, or were invited before)
    opted_out_at: datetime | None = None
    unreachable_at: datetime | None = None
    unreachable_reason: str | None = None
    # When their latest survey started (undelivered, abandoned ones left out).
    last_surveyed_at: datetime | None = None


def invitation_facts(session: Session, *, channel: str, external_id: str) -> InvitationFacts:
    """Opt-out, reachability and the latest survey of the customer known by this id."""
    customer = get_customer(session, channel=channel, external_id=external_id)
    if customer is None or customer.id is None:
        return InvitationFacts(known=False)
    latest = session.exec(
        select(func.max(Conversation.started_at)).where(
            Conversation.customer_id == customer.id,
            col(Conversation.state) != ConversationState.ABANDONED,
        )
    ).one()
    return InvitationFacts(
        known=True,
        opted_out_at=_aware(customer.opted_out_at),
        unreachable_at=_aware(customer.unreachable_at),
        unreachable_reason=customer.unreachable_reason,
        last_surveyed_at=_aware(latest),
    )


def abandon_active_survey(session: Session, *, channel: str, external_id: str) -> bool:
    """End the customer's open survey as abandoned (its invitation never arrived).

    Abandoned surveys do not count for the fatigue rule. False when none was open.
    """
    customer = get_customer(session, channel=channel, external_id=external_id)
    if customer is None or customer.id is None:
        return False
    conversation = active_conversation(session, customer_id=customer.id)
    if conversation is None:
        return False
    end_conversation(session, conversation=conversation, state=ConversationState.ABANDONED)
    return True
