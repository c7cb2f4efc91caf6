"""The outbox: what the bot will send, written in the transaction that decided it.

Rows of one lane (one recipient on one channel) are sent in id order. A delivery worker claims
the oldest unsent row of lanes that have nothing else claimed — `FOR UPDATE SKIP LOCKED` on
PostgreSQL so that processes never block on each other, the single writer on SQLite — by
stamping it with its name and a lease (`claimed_until`), sends it outside any transaction, and
records the result. A claim whose lease ran out, or whose process is known to be dead, is
taken again: that is the one window where a message can be sent twice.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, update
from sqlalchemy import select as core_select
from sqlmodel import Session

from storage.database import Database, core_transaction
from storage.tables import OutboxMessage, as_utc, utcnow

MAX_ERROR = 512
# Writes go to the table itself (SQLAlchemy Core): the ORM's bulk paths cost several times more
# per statement, and no object of the session needs to be kept in step with them.
_TABLE = OutboxMessage.__table__  # type: ignore[attr-defined]

KIND_MESSAGE = "message"
KIND_CLOSE = "close"
KIND_BUTTON = "button"
# An event for another system (a webhook); its lane is `webhook:<endpoint>:<conversation>`.
KIND_EVENT = "event"


def lane_of(channel: str, recipient: str) -> str:
    """The ordering key of one recipient's messages."""
    return f"{channel}:{recipient}"


def new_row(
    *,
    channel: str,
    recipient: str,
    kind: str,
    body: dict[str, Any],
    question_id: str | None = None,
    purpose: str = "survey",
    review_item_id: int | None = None,
) -> dict[str, Any]:
    """The values of one row to queue (`enqueue` one, or `insert_rows` several together)."""
    now = utcnow()
    return {
        "channel": channel,
        "recipient": recipient,
        "lane": lane_of(channel, recipient),
        "kind": kind,
        "body": body,
        "question_id": question_id,
        "purpose": purpose,
        "review_item_id": review_item_id,
        "created_at": now,
        "not_before": now,
        "attempts": 0,
    }


def enqueue(
    session: Session,
    *,
    channel: str,
    recipient: str,
    kind: str,
    body: dict[str, Any],
    question_id: str | None = None,
    purpose: str = "survey",
    review_item_id: int | None = None,
) -> int:
    """Add one thing to send (after everything already queued for the same recipient); its id.

    A plain INSERT, not an ORM object: a turn queues several rows and reads none of them back.
    """
    row = new_row(
        channel=channel,
        recipient=recipient,
        kind=kind,
        body=body,
        question_id=question_id,
        purpose=purpose,
        review_item_id=review_item_id,
    )
    result = session.execute(_INSERT, row)
    key = result.inserted_primary_key  # type: ignore[attr-defined]
    assert key is not None
    return int(key[0])


def insert_rows(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Queue `new_row`s in one statement, in their order (their ids ascend with it)."""
    if rows:  # on the session's connection: a turn's hot path, no ORM work per statement
        session.connection().execute(_INSERT, list(rows))


def _unsent() -> Any:
    """Unsent rows, for Core statements on the table."""
    return _TABLE.c.sent_at.is_(None) & _TABLE.c.failed_at.is_(None)


_INSERT = insert(_TABLE)
# A message the platform took: (row id, sent_at, platform message id and chat) as parameters.
RECORD_SENT = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("row_id"))
    .values(
        sent_at=bindparam("sent_at"),
        platform_message_id=bindparam("platform_message_id"),
        platform_chat=bindparam("platform_chat"),
        claimed_by=None,
        claimed_until=None,
        attempts=_TABLE.c.attempts + 1,
    )
)


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """An outbox row claimed for sending (plain values: no ORM object to load or flush)."""

    id: int
    channel: str
    recipient: str
    lane: str
    kind: str
    body: dict[str, Any]
    purpose: str
    review_item_id: int | None
    attempts: int


_CLAIMED_COLUMNS = [getattr(_TABLE.c, f.name) for f in fields(ClaimedMessage)]


def _claim_statement() -> Any:
    """Lane heads that are due and unclaimed (bind parameters: now, channels)."""
    earlier = _TABLE.alias("earlier")
    lane_head = (
        core_select(func.min(earlier.c.id))
        .where(
            earlier.c.lane == _TABLE.c.lane,
            earlier.c.sent_at.is_(None),
            earlier.c.failed_at.is_(None),
        )
        .scalar_subquery()
    )
    now: Any = bindparam("now")
    return core_select(*_CLAIMED_COLUMNS).where(
        _unsent(),
        _TABLE.c.id == lane_head,
        _TABLE.c.not_before <= now,
        _TABLE.c.channel.in_(bindparam("channels", expanding=True)),
        _TABLE.c.claimed_until.is_(None) | (_TABLE.c.claimed_until < now),
    )


# Built once: building a statement costs more than running it on SQLite.
_CLAIM = _claim_statement()


def claim_due(
    session: Session,
    *,
    worker: str,
    lease: timedelta,
    limit: int,
    channels: Collection[str],
    lanes: Collection[str] | None = None,
    exclude_lanes: Collection[str] = (),
    now: datetime | None = None,
) -> list[ClaimedMessage]:
    """Claim up to `limit` rows, each the oldest unsent row of its lane, due and unclaimed."""
    moment = now or utcnow()
    params: dict[str, Any] = {"now": moment, "channels": list(channels), "limit": limit}
    if lanes is not None or exclude_lanes:
        stmt = _claim_statement().where(
            _TABLE.c.lane.in_(list(lanes)) if lanes is not None else True,
            _TABLE.c.lane.not_in(list(exclude_lanes)) if exclude_lanes else True,
        )
    else:
        stmt = _CLAIM
    stmt = stmt.order_by(_TABLE.c.id).limit(bindparam("limit")).with_for_update(skip_locked=True)
    conn = session.connection()  # Core only: no ORM work per statement
    rows = [ClaimedMessage(**row._mapping) for row in conn.execute(stmt, params)]
    rows += _following(session, rows, now=moment)
    if rows:
        conn.execute(
            update(_TABLE)
            .where(_TABLE.c.id.in_([r.id for r in rows]))
            .values(claimed_by=worker, claimed_until=moment + lease)
        )
    return rows


# Kinds that only touch what the customer already has (a button's spinner, an old keyboard):
# a turn queues them before its message, and a failed one is dropped, never retried.
_COSMETIC = frozenset({KIND_BUTTON, KIND_CLOSE})
_FOLLOWING = (
    core_select(*_CLAIMED_COLUMNS, _TABLE.c.not_before, _TABLE.c.claimed_until)
    .where(_unsent(), _TABLE.c.lane.in_(bindparam("lanes", expanding=True)))
    .order_by(_TABLE.c.lane, _TABLE.c.id)
    .limit(bindparam("limit"))
)


def _following(
    session: Session, heads: Sequence[ClaimedMessage], *, now: datetime
) -> list[ClaimedMessage]:
    """What follows a cosmetic lane head up to and including the lane's next message.

    A turn queues "answer the button, close the old question, ask the next one": claimed one
    lane head at a time, that took three passes of the delivery worker (three claiming
    transactions, three waits). The rows taken here are the lane's next ones in order, due and
    unclaimed; the worker sends cosmetic rows before messages, so each lane keeps its order.
    No other worker takes them: only lane heads are claimed, and this lane's head is ours.
    """
    lanes = {h.lane: h.id for h in heads if h.kind in _COSMETIC}
    if not lanes:
        return []
    params = {"lanes": list(lanes), "limit": 8 * len(lanes)}
    taken: list[ClaimedMessage] = []
    stopped: set[str] = set()
    for row in session.connection().execute(_FOLLOWING, params):
        values = row._mapping
        lane = values["lane"]
        if lane in stopped or values["id"] <= lanes[lane]:
            continue
        not_before, claimed_until = as_utc(values["not_before"]), as_utc(values["claimed_until"])
        due = not_before is None or not_before <= now
        free = claimed_until is None or claimed_until < now
        if not (due and free and values["kind"] in _COSMETIC | {KIND_MESSAGE}):
            stopped.add(lane)  # the lane's order stops here
            continue
        taken.append(ClaimedMessage(**{f.name: values[f.name] for f in fields(ClaimedMessage)}))
        if values["kind"] == KIND_MESSAGE:
            stopped.add(lane)  # its next message: the rest waits for the next pass
    return taken


def get_message(session: Session, *, message_id: int) -> OutboxMessage | None:
    """One outbox row by id."""
    return session.get(OutboxMessage, message_id)


def record_sent(
    session: Session,
    *,
    message_id: int,
    platform_message_id: str | None,
    platform_chat: str | None,
) -> None:
    """The platform took the row: keep its ids, release the claim."""
    session.execute(
        RECORD_SENT,
        {
            "row_id": message_id,
            "sent_at": utcnow(),
            "platform_message_id": platform_message_id,
            "platform_chat": platform_chat,
        },
    )


def record_sent_many(session: Session, sent: Sequence[tuple[int, str | None, str | None]]) -> None:
    """`record_sent` of several rows in one statement: (row id, platform message id, chat)."""
    if sent:
        session.connection().execute(RECORD_SENT, sent_params(sent))


def sent_params(sent: Sequence[tuple[int, str | None, str | None]]) -> list[dict[str, Any]]:
    """`RECORD_SENT`'s parameters for (row id, platform message id, chat) sent now."""
    now = utcnow()
    return [
        {"row_id": i, "sent_at": now, "platform_message_id": m, "platform_chat": c}
        for i, m, c in sent
    ]


class SentRecorder:
    """`record_sent_many` committed at once, for a delivery worker that records each message
    before it sends the next.

    On PostgreSQL the records run in autocommit on a connection kept between them until
    `release` (the worker releases it after each pass): one round trip a record — no BEGIN and
    COMMIT around it, no pool check-out and its ping. Each row's record stands alone, and all
    were sent, so a failure half way only leaves the rest to be sent again, as a crash before
    the record would. On SQLite a record takes the process's writer lock, as every write does.
    Calls come from one thread at a time (the worker's); a lock keeps it so.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    def record(self, sent: Sequence[tuple[int, str | None, str | None]]) -> None:
        """Record (row id, platform message id, chat) of messages the platform took."""
        if not sent:
            return
        params = sent_params(sent)
        if self._db.dialect.name != "postgresql":
            with core_transaction(self._db) as conn:
                conn.execute(RECORD_SENT, params)
            return
        with self._lock:
            if self._conn is None:
                raw = self._db.connect()
                self._conn = raw.execution_options(isolation_level="AUTOCOMMIT")
            try:
                self._conn.execute(RECORD_SENT, params)
            except Exception:
                self._release()  # a broken connection is not kept: the next record takes another
                raise

    @property
    def holding(self) -> bool:
        """Whether a connection is kept."""
        return self._conn is not None

    def release(self) -> None:
        """Give the kept connection back to the pool (none kept: nothing to do)."""
        with self._lock:
            self._release()

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def record_retry(session: Session, *, message_id: int, error: str, not_before: datetime) -> int:
    """A failed attempt to be tried again at `not_before`; attempts made so far."""
    session.execute(
        update(_TABLE)
        .where(_TABLE.c.id == message_id)
        .values(
            not_before=not_before,
            last_error=error[:MAX_ERROR],
            claimed_by=None,
            claimed_until=None,
            attempts=_TABLE.c.attempts + 1,
        )
    )
    row = session.get(OutboxMessage, message_id)
    return row.attempts if row is not None else 0


def record_failed(session: Session, *, message_id: int, error: str) -> OutboxMessage | None:
    """Given up: the platform refused for good or the retries ran out. The row, updated."""
    session.execute(
        update(_TABLE)
        .where(_TABLE.c.id == message_id)
        .values(
            failed_at=utcnow(),
            last_error=error[:MAX_ERROR],
            claimed_by=None,
            claimed_until=None,
            attempts=_TABLE.c.attempts + 1,
        )
    )
    return session.get(OutboxMessage, message_id)


def fail_lane(session: Session, *, lane: str, error: str) -> int:
    """Give up every unsent message of a lane (its recipient cannot be reached); how many."""
    result = session.execute(
        update(_TABLE)
        .where(_unsent(), _TABLE.c.lane == lane)
        .values(
            failed_at=utcnow(),
            last_error=error[:MAX_ERROR],
            claimed_by=None,
            claimed_until=None,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def claim_holders(session: Session) -> list[str]:
    """The workers holding claims on unsent rows now."""
    stmt = (
        core_select(_TABLE.c.claimed_by)
        .where(_unsent(), _TABLE.c.claimed_by.is_not(None))
        .distinct()
    )
    return [w for w in session.execute(stmt).scalars() if w is not None]


def release_claims(session: Session, *, workers: Sequence[str]) -> int:
    """Drop the claims of workers known to be dead, so their rows are sent at once."""
    if not workers:
        return 0
    result = session.execute(
        update(_TABLE)
        .where(_unsent(), _TABLE.c.claimed_by.in_(list(workers)))
        .values(claimed_by=None, claimed_until=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def pending_in_lanes(session: Session, *, lanes: Collection[str]) -> int:
    """How many rows of these lanes are still to be sent."""
    stmt = core_select(func.count()).where(_unsent(), _TABLE.c.lane.in_(list(lanes)))
    return int(session.execute(stmt).scalar_one())


def next_due(session: Session, *, channels: Collection[str]) -> datetime | None:
    """When the earliest unsent row of these channels becomes due (None: nothing pending)."""
    stmt = core_select(func.min(_TABLE.c.not_before)).where(
        _unsent(), _TABLE.c.channel.in_(list(channels))
    )
    value = session.execute(stmt).scalar_one()
    return value if isinstance(value, datetime) else None


# -- questions with buttons -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuestionRow:
    """A queued or sent question message: what a turn needs to close its buttons."""

    id: int
    question_id: str | None
    body: dict[str, Any]
    closed_at: datetime | None
    chosen_label: str | None


_QUESTION_COLUMNS = [getattr(_TABLE.c, f.name) for f in fields(QuestionRow)]
# Core reads into plain rows: a turn makes one of these, and ORM objects cost more than the SQL.
_OPEN_QUESTION = (
    core_select(*_QUESTION_COLUMNS)
    .where(
        _TABLE.c.lane == bindparam("lane"),
        _TABLE.c.kind == KIND_MESSAGE,
        _TABLE.c.question_id.is_not(None),
        _TABLE.c.closed_at.is_(None),
        _TABLE.c.failed_at.is_(None),
    )
    .order_by(_TABLE.c.id.desc())
    .limit(1)
)
_BY_PLATFORM_ID = core_select(*_QUESTION_COLUMNS).where(
    _TABLE.c.lane == bindparam("lane"),
    _TABLE.c.platform_message_id == bindparam("platform_message_id"),
    _TABLE.c.kind == KIND_MESSAGE,
)
_CLOSE = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("row_id"))
    .values(closed_at=bindparam("closed_at"), chosen_label=bindparam("chosen_label"))
)


def _question(row: Any) -> QuestionRow | None:
    return None if row is None else QuestionRow(**row._mapping)


def open_question(session: Session, *, lane: str) -> QuestionRow | None:
    """The lane's question whose buttons are still live (at most one per lane)."""
    return _question(session.connection().execute(_OPEN_QUESTION, {"lane": lane}).first())


def question_by_platform_id(
    session: Session, *, lane: str, platform_message_id: str
) -> QuestionRow | None:
    """The question message the platform knows by this id, if the bot sent it."""
    params = {"lane": lane, "platform_message_id": platform_message_id}
    return _question(session.connection().execute(_BY_PLATFORM_ID, params).first())


def mark_closed(session: Session, *, row_id: int, label: str | None) -> None:
    """Its buttons are (being) taken away; `label` is the answer chosen there, if any."""
    label = label[:128] if label is not None else None
    params = {"row_id": row_id, "closed_at": utcnow(), "chosen_label": label}
    session.connection().execute(_CLOSE, params)


def forget_finished_messages(session: Session, *, created_before: datetime) -> int:
    """Delete rows sent or given up that were queued before `created_before`; how many went.

    A close row may still refer to a deleted question: it then closes nothing.
    """
    result = session.execute(
        delete(_TABLE).where(
            _TABLE.c.created_at < created_before,
            _TABLE.c.sent_at.is_not(None) | _TABLE.c.failed_at.is_not(None),
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
