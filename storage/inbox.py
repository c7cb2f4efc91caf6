"""The inbox: platform updates recorded before they are acknowledged, processed once in order.

Recording is one INSERT of the whole batch that ignores rows already there (a platform's
redelivery). Processing claims the oldest unprocessed row of a lane whose earlier rows are all
done — `FOR UPDATE SKIP LOCKED` on PostgreSQL, so that several processes share the work and
never take two rows of one lane at once; SQLite has one writer, which serialises the same
query. The caller runs the turn in the claiming transaction and marks the row processed there,
so a crash before the commit leaves the row to be claimed again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from storage.tables import InboxUpdate, utcnow

MAX_ERROR = 512
_TABLE = InboxUpdate.__table__  # type: ignore[attr-defined]  # Core: no ORM objects


@dataclass(frozen=True, slots=True)
class NewUpdate:
    """One update to record: its platform key, its lane (whose order it keeps) and its body."""

    event_key: str
    lane: str
    body: dict[str, Any]


def record_updates(session: Session, *, channel: str, updates: Sequence[NewUpdate]) -> int:
    """Insert the updates not yet recorded (by channel and event key); how many were new."""
    if not updates:
        return 0
    rows = [
        {
            "channel": channel,
            "event_key": u.event_key[:128],
            "lane": u.lane[:160],
            "body": u.body,
            "received_at": utcnow(),
            "attempts": 0,
        }
        for u in updates
    ]
    dialect = session.get_bind().dialect.name
    if len(rows) == 1:  # the common case: a statement built once per dialect
        result = session.execute(_insert_one(dialect), rows[0])
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(_TABLE).values(rows).on_conflict_do_nothing(index_elements=["channel", "event_key"])
    )
    # psycopg forgets an INSERT's rowcount when SQLAlchemy closes the cursor: keep it.
    result = session.execute(stmt.execution_options(preserve_rowcount=True))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


_ONE_ROW: dict[str, Any] = {}


def _insert_one(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING of one row, with bind parameters (cached per dialect)."""
    stmt = _ONE_ROW.get(dialect)
    if stmt is None:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        columns = ("channel", "event_key", "lane", "body", "received_at", "attempts")
        stmt = (
            insert(_TABLE)
            .values({c: bindparam(c) for c in columns})
            .on_conflict_do_nothing(index_elements=["channel", "event_key"])
            .execution_options(preserve_rowcount=True)
        )
        _ONE_ROW[dialect] = stmt
    return stmt


def _claim_statement() -> Any:
    """The oldest unprocessed row of a lane whose earlier rows are done (bind parameter: now)."""
    inner = _TABLE.alias("earlier")
    lane_head = (
        core_select(func.min(inner.c.id))
        .where(inner.c.lane == _TABLE.c.lane, inner.c.processed_at.is_(None))
        .scalar_subquery()
    )
    now: Any = bindparam("now")
    return (
        core_select(
            _TABLE.c.id,
            _TABLE.c.channel,
            _TABLE.c.event_key,
            _TABLE.c.lane,
            _TABLE.c.body,
            _TABLE.c.attempts,
            _TABLE.c.received_at,
        )
        .where(
            _TABLE.c.processed_at.is_(None),
            _TABLE.c.id == lane_head,
            _TABLE.c.retry_at.is_(None) | (_TABLE.c.retry_at <= now),
        )
        .order_by(_TABLE.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )


# Built once: building a statement costs more than running it on SQLite.
_CLAIM = _claim_statement()
_PROCESSED = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("row_id"))
    .values(
        processed_at=bindparam("processed_at"), retry_at=None, last_error=bindparam("last_error")
    )
)


@dataclass(frozen=True, slots=True)
class ClaimedUpdate:
    """An update claimed for processing (plain values: no ORM object to load or flush)."""

    id: int
    channel: str
    event_key: str
    lane: str
    body: dict[str, Any]
    attempts: int
    received_at: datetime | None = None


def claim_next_update(session: Session, *, now: datetime | None = None) -> ClaimedUpdate | None:
    """The next update to process, locked for this transaction; None when none is due.

    Only the oldest unprocessed row of each lane is a candidate, so one customer's updates are
    taken in order and never two at a time.
    """
    row = session.execute(_CLAIM, {"now": now or utcnow()}).first()
    return ClaimedUpdate(**row._mapping) if row is not None else None


def mark_processed(
    session: Session, *, update_row: ClaimedUpdate, error: str | None = None
) -> None:
    """The update is done (or given up with `error`); its lane moves on.

    A success after failed attempts clears the error (`attempts` still tells they happened).
    """
    session.execute(
        _PROCESSED,
        {
            "row_id": update_row.id,
            "processed_at": utcnow(),
            "last_error": error[:MAX_ERROR] if error is not None else None,
        },
    )


def note_failure(
    session: Session, *, update_row: ClaimedUpdate, error: str, retry_at: datetime | None
) -> None:
    """Count a failed attempt on a claimed update; `retry_at` None gives it up (processed)."""
    values: dict[str, Any] = {
        "attempts": _TABLE.c.attempts + 1,
        "last_error": error[:MAX_ERROR],
        "retry_at": retry_at,
    }
    if retry_at is None:
        values["processed_at"] = utcnow()
    session.execute(update(_TABLE).where(_TABLE.c.id == update_row.id).values(**values))


def pending_updates(session: Session) -> int:
    """How many recorded updates wait to be processed."""
    stmt = (
        select(func.count()).select_from(InboxUpdate).where(col(InboxUpdate.processed_at).is_(None))
    )
    return int(session.exec(stmt).one())


def forget_processed_updates(session: Session, *, processed_before: datetime) -> int:
    """Delete updates processed before `processed_before`; how many went."""
    result = session.execute(
        delete(InboxUpdate).where(col(InboxUpdate.processed_at) < processed_before)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def lane_updates_since(session: Session, *, lane: str, since: datetime, up_to_id: int) -> int:
    """How many updates of `lane` arrived from `since` on, up to (and with) row `up_to_id`:
    what the flood limit counts, the same in every process (ids order a lane's updates)."""
    stmt = (
        select(func.count())
        .select_from(InboxUpdate)
        .where(
            InboxUpdate.lane == lane,
            col(InboxUpdate.received_at) >= since,
            col(InboxUpdate.id) <= up_to_id,
        )
    )
    return int(session.exec(stmt).one())
