"""Platform events already handled, so that a redelivered update is processed once."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from storage.tables import InboundEvent


def record_inbound_event(session: Session, *, channel: str, event_key: str) -> bool:
    """Remember the event; False when it was already recorded (a duplicate delivery)."""
    stmt = select(InboundEvent).where(
        InboundEvent.channel == channel, InboundEvent.event_key == event_key
    )
    if session.exec(stmt).first() is not None:
        return False
    # A savepoint, so that losing a race with another process only undoes this insert.
    try:
        with session.begin_nested():
            session.add(InboundEvent(channel=channel, event_key=event_key[:128]))
            session.flush()
    except IntegrityError:
        return False
    return True
