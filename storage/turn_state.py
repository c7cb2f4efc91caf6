"""What a customer's turn reads before it acts, in ONE statement in the common case.

A turn on a survey in progress (nearly every turn) needs the customer, their active
conversation (locked, so two turns of one customer never interleave on PostgreSQL), the chat's
question whose buttons are still live and, for a button press, the question pressed. Read one
by one that was four statements and four trips through SQLAlchemy; here they are one SELECT:
the customer joined to the active conversation, and the two outbox rows as outer joins on
their ids. Without an active conversation (a new customer, a finished survey) there is no row,
and the caller reads what it needs the long way.

What a turn writes after its answer — the survey's progress, the closing of answered questions'
buttons, the outbox rows — is written last, together (`write_turn_rows`): on PostgreSQL in ONE
statement (data-modifying WITH), a round trip instead of up to three.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Dialect, and_, bindparam, func, insert, update
from sqlalchemy import select as core_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from storage.conversations import IS_ACTIVE, PROGRESS_COLUMNS, write_answer, write_progress
from storage.outbox import KIND_MESSAGE, QuestionRow, insert_rows, mark_closed
from storage.tables import Answer, Conversation, Customer, OutboxMessage, utcnow

__all__ = ["HeldWrites", "TurnState", "read_turn_state", "write_turn_rows"]

_OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
_LIVE = aliased(OutboxMessage, name="live")
_PRESSED = aliased(OutboxMessage, name="pressed")
_QUESTION_FIELDS = ("id", "question_id", "body", "closed_at", "chosen_label")


def _state_statement() -> Any:
    """Customer ⋈ active conversation ⟕ live question ⟕ pressed question (bind parameters:
    channel, external_id, lane, platform_message_id)."""
    heads = _OUTBOX.alias("heads")
    live_id = (
        core_select(func.max(heads.c.id))
        .where(
            heads.c.lane == bindparam("lane"),
            heads.c.kind == KIND_MESSAGE,
            heads.c.question_id.is_not(None),
            heads.c.closed_at.is_(None),
            heads.c.failed_at.is_(None),
        )
        .scalar_subquery()
    )
    sent = _OUTBOX.alias("sent")
    pressed_id = (
        core_select(func.min(sent.c.id))
        .where(
            sent.c.lane == bindparam("lane"),
            sent.c.platform_message_id == bindparam("platform_message_id"),
            sent.c.kind == KIND_MESSAGE,
        )
        .scalar_subquery()
    )
    return (
        select(
            Customer,
            Conversation,
            *(getattr(_LIVE, name) for name in _QUESTION_FIELDS),
            *(getattr(_PRESSED, name) for name in _QUESTION_FIELDS),
        )
        .select_from(Customer)
        .join(
            Conversation,
            and_(col(Conversation.customer_id) == col(Customer.id), IS_ACTIVE),
        )
        .outerjoin(_LIVE, col(_LIVE.id) == live_id)
        .outerjoin(_PRESSED, col(_PRESSED.id) == pressed_id)
        .where(
            col(Customer.channel) == bindparam("channel"),
            col(Customer.external_id) == bindparam("external_id"),
        )
        # Two processes handling the same customer's messages must take turns (PostgreSQL).
        .with_for_update(of=Conversation)
    )


_STATE = _state_statement()
_WIDTH = len(_QUESTION_FIELDS)


@dataclass(frozen=True, slots=True)
class TurnState:
    """A customer with a survey in progress, as one turn finds them.

    `customer` and `active` are the session's objects (changes to them are written as usual);
    `live` is the chat's question whose buttons are live, `pressed` the question whose button
    was pressed (None: none, or not a press on a message the bot knows).
    """

    customer: Customer
    active: Conversation
    live: QuestionRow | None
    pressed: QuestionRow | None


def read_turn_state(
    session: Session,
    *,
    channel: str,
    external_id: str,
    lane: str,
    platform_message_id: str | None,
) -> TurnState | None:
    """The customer, their active conversation (locked) and the chat's questions in ONE
    statement; None when the customer is unknown or has no active conversation."""
    params = {
        "channel": channel,
        "external_id": external_id,
        "lane": lane,
        "platform_message_id": platform_message_id,
    }
    row = session.execute(_STATE, params).first()
    if row is None:
        return None
    customer, active = row[0], row[1]
    live = _question(row[2 : 2 + _WIDTH])
    pressed = _question(row[2 + _WIDTH : 2 + 2 * _WIDTH])
    return TurnState(customer=customer, active=active, live=live, pressed=pressed)


def _question(values: Any) -> QuestionRow | None:
    if values[0] is None:
        return None
    return QuestionRow(*values)


@dataclass
class HeldWrites:
    """Writes a turn holds back until its outbox rows are written (`write_turn_rows`).

    `answers`: rows of `storage.conversations.answer_row`; `progress`:
    `storage.conversations.save_progress`'s values by conversation id (its `hold`); `closes`:
    questions whose buttons are taken away, (outbox row id, chosen label).
    """

    answers: list[dict[str, Any]] = field(default_factory=list)
    progress: dict[int, dict[str, Any]] = field(default_factory=dict)
    closes: list[tuple[int, str | None]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.answers or self.progress or self.closes)


def write_turn_rows(session: Session, rows: Sequence[dict[str, Any]], held: HeldWrites) -> None:
    """The held writes, then the outbox rows (`storage.outbox.new_row`s, inserted in order);
    `held` is emptied.

    On PostgreSQL, with rows to insert, ONE statement: each held write a WITH of the INSERT.
    Its SQL is compiled once per shape (held writes, rows) and run as text: SQLAlchemy does not
    cache the compilation of a statement with data-modifying WITHs, and compiling it on every
    turn cost more than the round trips it saves. Elsewhere one statement each, in the order a
    turn made them: answers, progress, closes, rows.
    """
    conn = session.connection()
    if held and rows and conn.dialect.name == "postgresql":
        closed_at = utcnow()
        params: dict[str, Any] = {}
        answer_columns = tuple(held.answers[0]) if held.answers else ()
        for i, answer in enumerate(held.answers):
            params.update(
                {f"a{i}_{k}": _bound(conn.dialect, _ANSWER, k, answer[k]) for k in answer_columns}
            )
        for i, (conversation_id, values) in enumerate(held.progress.items()):
            params[f"p{i}_id"] = conversation_id
            params.update(
                {
                    f"p{i}_{k}": _bound(conn.dialect, _CONVERSATION, k, values[k])
                    for k in PROGRESS_COLUMNS
                }
            )
        for i, (row_id, label) in enumerate(held.closes):
            params[f"c{i}_id"] = row_id
            params[f"c{i}_at"] = closed_at
            params[f"c{i}_label"] = label[:128] if label is not None else None
        columns = tuple(rows[0])
        for i, row in enumerate(rows):
            params.update({f"r{i}_{k}": _bound(conn.dialect, _OUTBOX, k, row[k]) for k in columns})
        shape = (answer_columns, len(held.answers), len(held.progress), len(held.closes))
        sql = _combined_sql(conn.dialect, shape, columns, len(rows))
        conn.exec_driver_sql(sql, params)
    else:
        for answer in held.answers:
            write_answer(session, answer)
        for conversation_id, values in held.progress.items():
            write_progress(session, conversation_id=conversation_id, values=values)
        for row_id, label in held.closes:
            mark_closed(session, row_id=row_id, label=label)
        insert_rows(session, rows)
    held.answers.clear()
    held.progress.clear()
    held.closes.clear()


_CONVERSATION = Conversation.__table__  # type: ignore[attr-defined]
_ANSWER = Answer.__table__  # type: ignore[attr-defined]
_Shape = tuple[tuple[str, ...], int, int, int]  # answer columns, answers, progress, closes
_COMBINED: dict[tuple[str, _Shape, tuple[str, ...], int], str] = {}


def _combined_sql(dialect: Dialect, shape: _Shape, columns: tuple[str, ...], rows: int) -> str:
    """WITH answer_i AS (INSERT INTO answer …), progress_i AS (UPDATE conversation …),
    close_i AS (UPDATE outboxmessage …) INSERT INTO outboxmessage … VALUES (…), … — compiled
    once per shape."""
    key = (dialect.name, shape, columns, rows)
    sql = _COMBINED.get(key)
    if sql is None:
        answer_columns, answers, progress, closes = shape
        ctes = [
            insert(_ANSWER)
            .values({k: bindparam(f"a{i}_{k}", type_=_ANSWER.c[k].type) for k in answer_columns})
            .cte(f"answer_{i}")
            for i in range(answers)
        ]
        ctes += [
            update(_CONVERSATION)
            .where(_CONVERSATION.c.id == bindparam(f"p{i}_id"))
            .values({k: bindparam(f"p{i}_{k}") for k in PROGRESS_COLUMNS})
            .cte(f"progress_{i}")
            for i in range(progress)
        ]
        ctes += [
            update(_OUTBOX)
            .where(_OUTBOX.c.id == bindparam(f"c{i}_id"))
            .values(closed_at=bindparam(f"c{i}_at"), chosen_label=bindparam(f"c{i}_label"))
            .cte(f"close_{i}")
            for i in range(closes)
        ]
        values = [
            {k: bindparam(f"r{i}_{k}", type_=_OUTBOX.c[k].type) for k in columns}
            for i in range(rows)
        ]
        stmt = insert(_OUTBOX).values(values).add_cte(*ctes)
        sql = str(stmt.compile(dialect=dialect))
        _COMBINED[key] = sql
    return sql


def _bound(dialect: Dialect, table: Any, column: str, value: Any) -> Any:
    """`value` as SQLAlchemy would bind it to `table.column` (JSON serialised, …)."""
    if value is None:
        return None
    process = table.c[column].type._cached_bind_processor(dialect)
    return process(value) if process is not None else value
