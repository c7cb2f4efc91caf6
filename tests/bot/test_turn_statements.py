"""What a durable turn costs in SQL statements (issue 16: at most 4 in the common case).

The common case is an answer to the survey's live question. On PostgreSQL the turn reads its
state in one SELECT and writes the answer, the survey's progress, the closed buttons and the
outbox rows in one statement; BEGIN, the claim and COMMIT are the inbox worker's, shared by
every update of a group. Counted as bench/telegram.py counts them: each statement the driver
runs, each COMMIT, and on PostgreSQL each BEGIN.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from bot.app import App
from bot.inbox import Inbox, InboxWorker
from bot.messages import Inbound, IncomingMessage, MessageKind, RawUpdate

CHANNEL = "telegram"


def _translate(body: Mapping[str, Any]) -> Inbound:
    user = str(body["user"])
    if body.get("text") is None:
        return IncomingMessage(channel=CHANNEL, user_id=user, kind=MessageKind.START)
    return IncomingMessage(channel=CHANNEL, user_id=user, text=str(body["text"]))


async def _record(app: App, key: str, *users: int, text: str | None = None) -> None:
    await Inbox(db=app.db).record(
        CHANNEL,
        [
            RawUpdate(
                event_key=f"{key}-{user}",
                lane=f"{CHANNEL}:{user}",
                body={"user": user, "text": text},
            )
            for user in users
        ],
    )


@contextmanager
def _counted(app: App) -> Iterator[list[str]]:
    statements: list[str] = []
    postgres = app.db.dialect.name == "postgresql"

    def executed(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        statements.append(sql.split(None, 1)[0].upper())

    def committed(_conn: Any) -> None:
        statements.append("COMMIT")

    def began(_conn: Any) -> None:
        if postgres:  # psycopg sends it before the first statement; sqlite3's is a statement
            statements.append("BEGIN")

    listeners = [("before_cursor_execute", executed), ("commit", committed), ("begin", began)]
    for name, listener in listeners:
        event.listen(app.db, name, listener)
    try:
        yield statements
    finally:
        for name, listener in listeners:
            event.remove(app.db, name, listener)


async def test_an_answer_to_the_live_question_costs_at_most_four_statements(
    any_db_app: App,
) -> None:
    app = any_db_app
    worker = InboxWorker(db=app.db, engine=app.engine, translators={CHANNEL: _translate})
    await _record(app, "start", 41, 42, 43)
    assert await worker.process_all() == 3  # each asked the first question (NPS)

    # The default flow's follow-up depends on the score: the condition reads the answer just
    # given from the turn itself, not from the database.
    await _record(app, "nps", 41, text="9")
    with _counted(app) as alone:
        assert await worker.process_some() == 1
    await _record(app, "nps", 42, 43, text="9")
    with _counted(app) as grouped:
        assert await worker.process_some() == 2

    if app.db.dialect.name == "postgresql":
        # BEGIN, the claim, the turn's read, the turn's write, COMMIT.
        assert alone == ["BEGIN", "UPDATE", "SELECT", "WITH", "COMMIT"]
        # A group of two: BEGIN, claim and COMMIT once, then two reads and two writes.
        assert grouped == ["BEGIN", "UPDATE", "SELECT", "WITH", "SELECT", "WITH", "COMMIT"]
        assert len(grouped) / 2 <= 4
    else:
        # SQLite has no data-modifying WITH: the write is one statement per table, none of them
        # a round trip: answer, progress, the closed buttons, the outbox rows.
        write = ["INSERT", "UPDATE", "UPDATE", "INSERT"]
        assert alone == ["BEGIN", "UPDATE", "SELECT", *write, "COMMIT"]
        assert grouped == ["BEGIN", "UPDATE", "SELECT", *write, "SELECT", *write, "COMMIT"]
