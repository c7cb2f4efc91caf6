"""Queries on invitation rows: create once per (source, interaction id), decide, claim when due.

A scheduled row is claimed by the scheduler of one `cxbot serve` process at a time —
`FOR UPDATE SKIP LOCKED` on PostgreSQL, the single writer on SQLite — inside the transaction
that opens its survey and marks it sent, so a crash leaves it scheduled or sent, never both.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from storage.tables import Conversation, Invitation, InvitationStatus, as_utc

MAX_ERROR = 512
MAX_DETAIL = 512
_TABLE = Invitation.__table__  # type: ignore[attr-defined]  # Core: plain rows, no ORM objects


def _utc(value: datetime) -> datetime:
    """Every stored time is UTC; SQLite keeps the wall clock only, so convert before storing."""
    if value.tzinfo is None:
        raise ValueError("invitation times must be timezone-aware")
    return value.astimezone(UTC)


def _aware(value: Any) -> Any:
    """`as_utc` for any column's value (only datetimes change)."""
    return as_utc(value) if isinstance(value, datetime) else value


@dataclass(frozen=True, slots=True)
class StoredInvitation:
    """An invitation row as plain values (times timezone-aware UTC)."""

    id: int
    source: str
    interaction_id: str
    customer_id: int
    channel: str
    user_id: str
    touchpoint: str | None
    flow_id: str
    context: dict[str, Any]
    status: str
    reason: str | None
    detail: str | None
    created_at: datetime
    requested_at: datetime
    send_at: datetime
    decided_at: datetime | None
    conversation_id: int | None
    attempts: int
    last_error: str | None


_COLUMNS = [getattr(_TABLE.c, f.name) for f in fields(StoredInvitation)]


def _stored(row: Any) -> StoredInvitation:
    return StoredInvitation(**{k: _aware(v) for k, v in row._mapping.items()})


@dataclass(frozen=True, slots=True)
class NewInvitation:
    """What a new row holds; `status` scheduled (with `send_at`) or decided at once."""

    source: str
    interaction_id: str
    customer_id: int
    channel: str
    user_id: str
    touchpoint: str | None
    flow_id: str
    context: dict[str, Any]
    requested_at: datetime
    send_at: datetime
    status: str = InvitationStatus.SCHEDULED
    reason: str | None = None
    detail: str | None = None


def insert_invitation(session: Session, *, new: NewInvitation, now: datetime) -> int | None:
    """Insert the row; its id, or None when (source, interaction_id) is already there.

    ON CONFLICT DO NOTHING: of two requests for one interaction arriving together, the second
    waits for the first's commit (PostgreSQL) and then finds its row, without an error.
    """
    values = {
        "source": new.source,
        "interaction_id": new.interaction_id,
        "customer_id": new.customer_id,
        "channel": new.channel,
        "user_id": new.user_id,
        "touchpoint": new.touchpoint,
        "flow_id": new.flow_id,
        "context": new.context,
        "status": new.status,
        "reason": new.reason,
        "detail": new.detail[:MAX_DETAIL] if new.detail is not None else None,
        "created_at": _utc(now),
        "requested_at": _utc(new.requested_at),
        "send_at": _utc(new.send_at),
        "decided_at": _utc(now) if new.status != InvitationStatus.SCHEDULED else None,
        "attempts": 0,
    }
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(_TABLE)
        .values(values)
        .on_conflict_do_nothing(index_elements=["source", "interaction_id"])
        .returning(_TABLE.c.id)
    )
    row = session.execute(stmt).first()
    return int(row[0]) if row is not None else None


def get_invitation(session: Session, *, invitation_id: int) -> StoredInvitation | None:
    """One invitation by id."""
    row = session.execute(core_select(*_COLUMNS).where(_TABLE.c.id == invitation_id)).first()
    return _stored(row) if row is not None else None


def invitation_by_interaction(
    session: Session, *, source: str, interaction_id: str
) -> StoredInvitation | None:
    """The invitation a source made for an interaction, if any."""
    row = session.execute(
        core_select(*_COLUMNS).where(
            _TABLE.c.source == source, _TABLE.c.interaction_id == interaction_id
        )
    ).first()
    return _stored(row) if row is not None else None


def mark_sent(
    session: Session, *, invitation_id: int, conversation_id: int | None, now: datetime
) -> None:
    """The survey was opened (its first messages queued in this transaction)."""
    session.execute(
        update(_TABLE)
        .where(_TABLE.c.id == invitation_id)
        .values(
            status=InvitationStatus.SENT,
            conversation_id=conversation_id,
            reason=None,
            detail=None,
            decided_at=_utc(now),
        )
    )


def mark_withheld(
    session: Session, *, invitation_id: int, reason: str, detail: str, now: datetime
) -> None:
    """A rule said no: final, with its reason code and sentence."""
    session.execute(
        update(_TABLE)
        .where(_TABLE.c.id == invitation_id)
        .values(
            status=InvitationStatus.WITHHELD,
            reason=reason,
            detail=detail[:MAX_DETAIL],
            decided_at=_utc(now),
        )
    )


def reschedule(
    session: Session,
    *,
    invitation_id: int,
    send_at: datetime,
    reason: str | None,
    detail: str | None,
) -> None:
    """Still scheduled, now for `send_at` (quiet hours moved it), with why."""
    session.execute(
        update(_TABLE)
        .where(_TABLE.c.id == invitation_id)
        .values(
            send_at=_utc(send_at),
            reason=reason,
            detail=detail[:MAX_DETAIL] if detail is not None else None,
        )
    )


def note_failure(session: Session, *, invitation_id: int, error: str, retry_at: datetime) -> None:
    """An attempt to send failed with an error: count it, try again at `retry_at`."""
    session.execute(
        update(_TABLE)
        .where(_TABLE.c.id == invitation_id)
        .values(
            attempts=_TABLE.c.attempts + 1,
            last_error=error[:MAX_ERROR],
            send_at=_utc(retry_at),
        )
    )


def claim_due_invitations(
    session: Session, *, now: datetime, limit: int, channels: Collection[str]
) -> list[StoredInvitation]:
    """Scheduled rows due by `now` on these channels, oldest due first, locked for this
    transaction; rows another transaction holds are skipped (PostgreSQL), not waited for."""
    if not channels:
        return []
    stmt = (
        core_select(*_COLUMNS)
        .where(
            _TABLE.c.status == InvitationStatus.SCHEDULED,
            _TABLE.c.send_at <= _utc(now),
            _TABLE.c.channel.in_(list(channels)),
        )
        .order_by(_TABLE.c.send_at, _TABLE.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [_stored(row) for row in session.execute(stmt)]


def next_due_invitation(session: Session, *, channels: Collection[str]) -> datetime | None:
    """When the earliest scheduled invitation on these channels is due (None: none waits)."""
    if not channels:
        return None
    value = session.execute(
        core_select(func.min(_TABLE.c.send_at)).where(
            _TABLE.c.status == InvitationStatus.SCHEDULED,
            _TABLE.c.channel.in_(list(channels)),
        )
    ).scalar_one()
    return _aware(value) if isinstance(value, datetime) else None


@dataclass(frozen=True, slots=True)
class TallyRow:
    """How many invitations share a touchpoint, flow, channel, status and reason."""

    touchpoint: str | None
    flow_id: str
    channel: str
    status: str
    reason: str | None
    count: int


def invitation_tally(
    session: Session, *, since: datetime | None = None, until: datetime | None = None
) -> list[TallyRow]:
    """Counts of invitations created in [since, until), by touchpoint, flow, channel, status
    and reason (the withheld ones by rule)."""
    keys: Sequence[Any] = (
        _TABLE.c.touchpoint,
        _TABLE.c.flow_id,
        _TABLE.c.channel,
        _TABLE.c.status,
        _TABLE.c.reason,
    )
    stmt = core_select(*keys, func.count().label("count")).group_by(*keys)
    if since is not None:
        stmt = stmt.where(_TABLE.c.created_at >= _utc(since))
    if until is not None:
        stmt = stmt.where(_TABLE.c.created_at < _utc(until))
    return [TallyRow(**row._mapping) for row in session.execute(stmt)]


def scheduled_count(session: Session) -> int:
    """How many invitations wait for their time."""
    stmt = core_select(func.count()).where(_TABLE.c.status == InvitationStatus.SCHEDULED)
    return int(session.execute(stmt).scalar_one())


def conversation_summary(session: Session, *, conversation_id: int) -> dict[str, Any] | None:
    """The state of the survey an invitation opened: id, state, flow id and version, current
    question, started_at, completed_at (None when it is gone)."""
    row = session.get(Conversation, conversation_id)
    if row is None or row.id is None:
        return None
    return {
        "id": row.id,
        "state": row.state,
        "flow_id": row.flow_id,
        "flow_version": row.flow_version,
        "current_question": row.current_question,
        "started_at": _aware(row.started_at),
        "completed_at": _aware(row.completed_at),
    }
