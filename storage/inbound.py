"""Platform events already handled, so that a redelivered update is processed once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

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


def forget_inbound_events(session: Session, *, received_before: datetime) -> int:
    """Delete the record of events received before `received_before`; how many went."""
    result = session.execute(
        delete(InboundEvent).where(col(InboundEvent.received_at) < received_before)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
