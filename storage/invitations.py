"""Queries behind invitation rules: what is known of a customer, and undoing an undelivered one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.conversations import active_conversation, end_conversation
from storage.customers import get_customer
from storage.suppressions import is_suppressed
from storage.tables import (
    Conversation,
    ConversationState,
    Customer,
    Invitation,
    InvitationStatus,
    as_utc,
)


@dataclass(frozen=True, slots=True)
class InvitationFacts:
    """What decides whether a customer may be invited now."""

    known: bool  # a customer row exists (they wrote to the bot, or were invited before)
    opted_out_at: datetime | None = None
    unreachable_at: datetime | None = None
    unreachable_reason: str | None = None
    # When their latest survey started (undelivered, abandoned ones left out).
    last_surveyed_at: datetime | None = None
    # The same, of the flow asked about (the recontact rule).
    last_flow_surveyed_at: datetime | None = None
    suppressed: bool = False  # on the suppression list
    time_zone: str | None = None  # the customer's IANA zone, if known


def _latest_start(session: Session, customer_id: int, flow_id: str | None) -> datetime | None:
    """When the customer's latest survey (of `flow_id`, if given) started, abandoned ones left
    out: the conversation's start, or the decision of the invitation that opened it (the
    invitations' clock, which is the one the rules compare with)."""
    kept = col(Conversation.state) != ConversationState.ABANDONED
    started = select(func.max(Conversation.started_at)).where(
        Conversation.customer_id == customer_id, kept
    )
    invited = (
        select(func.max(Invitation.decided_at))
        .join(Conversation, col(Conversation.id) == col(Invitation.conversation_id))
        .where(Invitation.customer_id == customer_id, Invitation.status == InvitationStatus.SENT)
        .where(kept)
    )
    if flow_id is not None:
        started = started.where(Conversation.flow_id == flow_id)
        invited = invited.where(Conversation.flow_id == flow_id)
    found = [as_utc(session.exec(stmt).one()) for stmt in (started, invited)]
    return max((f for f in found if f is not None), default=None)


def invitation_facts(
    session: Session, *, channel: str, external_id: str, flow_id: str | None = None
) -> InvitationFacts:
    """Opt-out, reachability, suppression and the latest surveys (any flow, and `flow_id`) of
    the customer known by this id."""
    suppressed = is_suppressed(session, channel=channel, external_id=external_id)
    customer = get_customer(session, channel=channel, external_id=external_id)
    if customer is None or customer.id is None:
        return InvitationFacts(known=False, suppressed=suppressed)
    return InvitationFacts(
        known=True,
        opted_out_at=as_utc(customer.opted_out_at),
        unreachable_at=as_utc(customer.unreachable_at),
        unreachable_reason=customer.unreachable_reason,
        last_surveyed_at=_latest_start(session, customer.id, None),
        last_flow_surveyed_at=(
            _latest_start(session, customer.id, flow_id) if flow_id is not None else None
        ),
        suppressed=suppressed,
        time_zone=customer.time_zone,
    )


def set_time_zone(session: Session, *, customer: Customer, time_zone: str) -> None:
    """Remember the customer's IANA zone (quiet hours are kept in it)."""
    if customer.time_zone != time_zone:
        customer.time_zone = time_zone[:64]
        session.add(customer)
        session.flush()


def lock_customer(session: Session, *, customer_id: int) -> None:
    """Hold the customer's row until the transaction ends (PostgreSQL), so that two invitations
    of one customer are decided one after the other and the second sees the first's survey."""
    session.execute(select(Customer.id).where(Customer.id == customer_id).with_for_update())


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
