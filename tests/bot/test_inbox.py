"""The inbox worker: a turn that fails is undone whole, its failure recorded, and retried."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlmodel import col, select

from bot.app import App
from bot.inbox import MAX_ATTEMPTS, Inbox, InboxWorker
from bot.messages import Inbound, IncomingMessage, MessageKind, RawUpdate
from storage.database import transaction
from storage.tables import Answer, Conversation, Customer, InboxUpdate, OutboxMessage, utcnow

CHANNEL = "telegram"


def _start(body: Mapping[str, Any]) -> Inbound:
    return IncomingMessage(channel=CHANNEL, user_id=str(body["user"]), kind=MessageKind.START)


async def _record(app: App, user: int) -> None:
    inbox = Inbox(db=app.db)
    update = RawUpdate(event_key=f"u{user}", lane=f"{CHANNEL}:{user}", body={"user": user})
    await inbox.record(CHANNEL, [update])


async def test_a_turn_that_fails_after_writing_leaves_nothing_but_the_failure(app: App) -> None:
    await _record(app, 7)
    original = app.engine.turn_in

    def failing_turn(session: Any, msg: IncomingMessage, **kw: Any) -> Any:
        original(session, msg, **kw)  # writes the customer, the survey, its outbox rows
        raise RuntimeError("engine exploded")

    app.engine.turn_in = failing_turn  # type: ignore[method-assign]
    worker = InboxWorker(db=app.db, engine=app.engine, translators={CHANNEL: _start})
    assert await worker.process_one() is True
    with transaction(app.db) as session:
        row = session.exec(select(InboxUpdate)).one()
        assert (row.attempts, row.processed_at) == (1, None)
        assert row.last_error == "RuntimeError: engine exploded"
        assert row.retry_at is not None
        # Nothing of the turn survived: it was rolled back whole.
        assert session.exec(select(Customer)).all() == []
        assert session.exec(select(Conversation)).all() == []
        assert session.exec(select(OutboxMessage)).all() == []
    assert await worker.process_one() is False  # not due again before its retry time


async def test_updates_of_different_lanes_are_turned_in_one_transaction(any_db_app: App) -> None:
    """Group commit: one call takes the head of every due lane, runs their turns and commits
    them together; a lane's next update waits for the next group."""
    app = any_db_app
    inbox = Inbox(db=app.db)
    users = [21, 22, 21, 23]
    await inbox.record(
        CHANNEL,
        [
            RawUpdate(event_key=f"g{n}", lane=f"{CHANNEL}:{user}", body={"user": user})
            for n, user in enumerate(users)
        ],
    )
    commits: list[int] = []
    event.listen(app.db, "commit", lambda _conn: commits.append(1))
    worker = InboxWorker(db=app.db, engine=app.engine, translators={CHANNEL: _start})
    assert await worker.process_some() == 3
    assert len(commits) == 1
    with transaction(app.db) as session:
        done = session.exec(select(InboxUpdate).where(col(InboxUpdate.processed_at).is_not(None)))
        assert sorted(r.event_key for r in done) == ["g0", "g1", "g3"]
        customers = session.exec(select(Customer)).all()
        assert sorted(c.external_id for c in customers) == ["21", "22", "23"]
    assert await worker.process_some() == 1
    assert await worker.process_some() == 0


async def test_a_failing_turn_in_a_group_is_isolated_and_the_others_go_through(
    any_db_app: App,
) -> None:
    """The group is rolled back whole; the failing update is counted and waits for its retry
    time (even if it would pass now), the others are taken again and commit."""
    app = any_db_app
    inbox = Inbox(db=app.db)

    failures = {32: 1}  # a passing failure: taken again at once, it would go through

    def picky(body: Mapping[str, Any]) -> Inbound:
        if failures.get(body["user"], 0) > 0:
            failures[body["user"]] -= 1
            raise RuntimeError("cannot read this one")
        return _start(body)

    await inbox.record(
        CHANNEL,
        [
            RawUpdate(event_key=f"h{user}", lane=f"{CHANNEL}:{user}", body={"user": user})
            for user in (31, 32, 33)
        ],
    )
    worker = InboxWorker(db=app.db, engine=app.engine, translators={CHANNEL: picky})
    assert await worker.process_some() == 3
    with transaction(app.db) as session:
        rows = {r.event_key: r for r in session.exec(select(InboxUpdate))}
        assert rows["h32"].processed_at is None and rows["h32"].attempts == 1
        assert rows["h32"].last_error == "RuntimeError: cannot read this one"
        for key in ("h31", "h33"):
            assert rows[key].processed_at is not None and rows[key].attempts == 0
        customers = session.exec(select(Customer)).all()
        assert sorted(c.external_id for c in customers) == ["31", "33"]
        assert {o.recipient for o in session.exec(select(OutboxMessage))} == {"31", "33"}


async def test_after_the_last_attempt_the_update_is_kept_with_its_error(app: App) -> None:
    def broken(body: Mapping[str, Any]) -> Inbound:
        raise ValueError("bad update")

    await _record(app, 8)
    worker = InboxWorker(db=app.db, engine=app.engine, translators={CHANNEL: broken})
    for _ in range(MAX_ATTEMPTS):
        with transaction(app.db) as session:
            row = session.exec(select(InboxUpdate)).one()
            if row.retry_at is not None:  # due now, rather than after the backoff
                row.retry_at = utcnow() - timedelta(seconds=1)
                session.add(row)
        assert await worker.process_one() is True
    with transaction(app.db) as session:
        row = session.exec(select(InboxUpdate)).one()
        assert (row.attempts, row.retry_at) == (MAX_ATTEMPTS, None)
        assert row.last_error == "ValueError: bad update"
    assert await worker.process_one() is False  # kept, never claimed again


async def test_a_good_turn_commits_its_answer_and_marks_the_update(app: App) -> None:
    await _record(app, 9)
    worker = InboxWorker(db=app.db, engine=app.engine, translators={CHANNEL: _start})
    assert await worker.process_one() is True
    with transaction(app.db) as session:
        row = session.exec(select(InboxUpdate)).one()
        assert row.processed_at is not None and row.last_error is None
        assert len(session.exec(select(Conversation)).all()) == 1
        assert session.exec(select(OutboxMessage)).all() != []
        assert session.exec(select(Answer)).all() == []


async def test_announced_updates_are_processed_without_waiting_for_the_poll(
    any_db_app: App,
) -> None:
    """Each recorded update is looked for when announced; one held back behind an earlier
    update of its lane is looked for again once that one is done — not at the next poll."""
    app = any_db_app
    inbox = Inbox(db=app.db)
    worker = InboxWorker(
        db=app.db, engine=app.engine, translators={CHANNEL: _start}, poll_seconds=60
    )
    inbox.on_recorded(worker.nudge)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.1)  # the loops have looked once and now wait for news
        updates = [
            RawUpdate(event_key=f"u{n}", lane=f"{CHANNEL}:{user}", body={"user": user})
            for n, user in enumerate([5, 5, 6, 5])
        ]
        await inbox.record(CHANNEL, updates)
        for _ in range(100):
            with transaction(app.db) as session:
                rows = session.exec(select(InboxUpdate)).all()
            if all(r.processed_at is not None for r in rows):
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(rows) == 4 and all(r.processed_at is not None for r in rows)


async def test_a_failed_update_is_retried_while_others_keep_arriving(app: App) -> None:
    """The look for unannounced work (a retry come due) is made every poll interval, however
    busy the worker is with announced updates."""
    inbox = Inbox(db=app.db)
    failures = {"u-flaky": 1}

    def flaky(body: Mapping[str, Any]) -> Inbound:
        key = str(body["key"])
        if failures.get(key, 0) > 0:
            failures[key] -= 1
            raise RuntimeError("not yet")
        return _start(body)

    worker = InboxWorker(
        db=app.db, engine=app.engine, translators={CHANNEL: flaky}, poll_seconds=0.2
    )
    inbox.on_recorded(worker.nudge)
    task = asyncio.create_task(worker.run())
    try:
        await inbox.record(
            CHANNEL,
            [
                RawUpdate(
                    event_key="u-flaky", lane=f"{CHANNEL}:1", body={"user": 1, "key": "u-flaky"}
                )
            ],
        )
        # The retry is due 1 s after the failure; meanwhile updates of others keep coming.
        for n in range(40):
            key = f"u{n}"
            body = {"user": 100 + n, "key": key}
            await inbox.record(
                CHANNEL, [RawUpdate(event_key=key, lane=f"{CHANNEL}:{100 + n}", body=body)]
            )
            await asyncio.sleep(0.05)
        for _ in range(40):
            with transaction(app.db) as session:
                flaky_row = session.exec(
                    select(InboxUpdate).where(InboxUpdate.event_key == "u-flaky")
                ).one()
            if flaky_row.processed_at is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert flaky_row.processed_at is not None and flaky_row.attempts == 1
