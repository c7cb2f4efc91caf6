"""The inbox: platform updates recorded before they are acknowledged, processed once in order.

Recording is one INSERT of the whole batch that ignores rows already there (a platform's
redelivery). Processing claims the oldest unprocessed row of a lane whose earlier rows are all
done — `FOR UPDATE SKIP LOCKED` on PostgreSQL, so that several processes share the work and
never take two rows of one lane at once; SQLite has one writer, which serialises the same
query. `take_next_update` claims the row and marks it processed in one statement; the caller
runs the turn in that transaction, so a crash before the commit (or a failing turn, rolled back)
leaves the row to be claimed again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Integer, bindparam, delete, func, null, text, type_coerce, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from storage.database import Database, core_transaction
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
    return _insert_updates(session.connection(), channel=channel, updates=updates)


def _insert_updates(conn: Connection, *, channel: str, updates: Sequence[NewUpdate]) -> int:
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
    dialect = conn.dialect.name
    if len(rows) == 1:  # the common case: a statement built once per dialect
        result = conn.execute(_insert_one(dialect), rows[0])
        return int(result.rowcount or 0)
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(_TABLE).values(rows).on_conflict_do_nothing(index_elements=["channel", "event_key"])
    )
    # psycopg forgets an INSERT's rowcount when SQLAlchemy closes the cursor: keep it.
    result = conn.execute(stmt.execution_options(preserve_rowcount=True))
    return int(result.rowcount or 0)


def record_updates_now(db: Database, *, channel: str, updates: Sequence[NewUpdate]) -> int:
    """`record_updates` committed on its own; how many were new.

    The INSERT of a batch is one statement, atomic by itself: on PostgreSQL it runs in
    autocommit, without the BEGIN and COMMIT round trips of a transaction around it (three
    statements a batch → one). SQLite takes the process's writer lock, as every write does.
    """
    if db.dialect.name != "postgresql":
        with core_transaction(db) as conn:
            return _insert_updates(conn, channel=channel, updates=updates)
    if not updates:
        return 0
    with db.connect() as raw:
        conn = raw.execution_options(isolation_level="AUTOCOMMIT")
        return _insert_updates(conn, channel=channel, updates=updates)


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


def _due_lane_head(rows: Any) -> list[Any]:
    """Conditions on `rows` (the inbox table or an alias of it): unprocessed, the oldest
    unprocessed row of its lane, and due (bind parameter: now)."""
    earlier = _TABLE.alias("earlier")
    lane_head = (
        core_select(func.min(earlier.c.id))
        .where(earlier.c.lane == rows.c.lane, earlier.c.processed_at.is_(None))
        .scalar_subquery()
    )
    now: Any = bindparam("now")
    return [
        rows.c.processed_at.is_(None),
        rows.c.id == lane_head,
        rows.c.retry_at.is_(None) | (rows.c.retry_at <= now),
    ]


def _claim_statement() -> Any:
    """The oldest unprocessed row of a lane whose earlier rows are done (bind parameter: now)."""
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
        .where(*_due_lane_head(_TABLE))
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
    # `take_next_update`'s flood count: the lane's updates received from `counted_since` on,
    # up to this one (None: not counted).
    recent: int | None = None
    counted_since: datetime | None = None


def _take_statement(*, counted: bool, limit: int = 1) -> Any:
    """`_claim_statement`'s row marked processed in the same statement (UPDATE … RETURNING);
    `counted`: with the lane's updates received since `since` up to it (the flood count)."""
    pending = _TABLE.alias("pending")
    now: Any = bindparam("now")
    candidate = (
        core_select(pending.c.id)
        .where(*_due_lane_head(pending))
        .order_by(pending.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    columns: list[Any] = [getattr(_TABLE.c, name) for name in _CLAIMED_NAMES]
    if counted:
        # Text, not a correlated Core subquery: SQLAlchemy writes SQLite's RETURNING columns
        # without their table, and the subquery's `inboxupdate.lane` would lose it too.
        recent = text(
            "(SELECT count(*) FROM inboxupdate AS flood WHERE flood.lane = inboxupdate.lane"
            " AND flood.received_at >= :since AND flood.id <= inboxupdate.id)"
        ).bindparams(bindparam("since", type_=_TABLE.c.received_at.type))
        columns.append(type_coerce(recent, Integer).label("recent"))
    # One row: `id = (subquery)`, the form PostgreSQL plans best for one; several: `id IN`.
    chosen = (
        _TABLE.c.id == candidate.scalar_subquery() if limit == 1 else _TABLE.c.id.in_(candidate)
    )
    return (
        update(_TABLE)
        .where(chosen)
        .values(processed_at=now, retry_at=null(), last_error=null())
        .returning(*columns)
    )


_CLAIMED_NAMES = ("id", "channel", "event_key", "lane", "body", "attempts", "received_at")
# Built once each (building a statement costs more than running it): by flood count and limit.
_TAKE: dict[tuple[bool, int], Any] = {}


def _take(*, counted: bool, limit: int) -> Any:
    stmt = _TAKE.get((counted, limit))
    if stmt is None:
        stmt = _TAKE[counted, limit] = _take_statement(counted=counted, limit=limit)
    return stmt


def take_next_update(
    session: Session, *, now: datetime | None = None, count_since: datetime | None = None
) -> ClaimedUpdate | None:
    """`claim_next_update` and `mark_processed` in ONE statement: the next due update, locked
    and already marked processed in this transaction (a turn that fails rolls that back with
    the rest). `count_since`: also count the lane's updates received from then on, up to this
    one (`ClaimedUpdate.recent`) — the flood limit's count when `count_since` is the start of
    the update's window — so the common turn needs no query of its own for it.

    Over the flood limit, `note_ignored` keeps the reason with the row.
    """
    taken = take_next_updates(session, now=now, count_since=count_since, limit=1)
    return taken[0] if taken else None


def take_next_updates(
    session: Session,
    *,
    now: datetime | None = None,
    count_since: datetime | None = None,
    limit: int,
) -> list[ClaimedUpdate]:
    """`take_next_update` for up to `limit` lanes at once, in one statement: the head of each
    of the `limit` oldest due lanes, locked and marked processed, in id order. A lane gives
    at most one row (only a lane's oldest unprocessed row is a candidate), so the caller may
    run their turns one after the other in this transaction and keep every lane in order.
    """
    params: dict[str, Any] = {"now": now or utcnow()}
    if count_since is not None:
        params["since"] = count_since
    stmt = _take(counted=count_since is not None, limit=max(1, limit))
    taken = []
    for row in session.connection().execute(stmt, params):
        values = dict(row._mapping)
        recent = values.pop("recent", None)
        taken.append(ClaimedUpdate(**values, recent=recent, counted_since=count_since))
    taken.sort(key=lambda claimed: claimed.id)  # RETURNING promises no order
    return taken


def note_ignored(session: Session, *, update_row: ClaimedUpdate, reason: str) -> None:
    """A taken update that caused no turn: keep why with it (it stays processed)."""
    session.execute(
        update(_TABLE).where(_TABLE.c.id == update_row.id).values(last_error=reason[:MAX_ERROR])
    )


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
