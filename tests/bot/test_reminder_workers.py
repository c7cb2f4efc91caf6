"""Two reminder workers on one database (two `cxbot serve` processes): each due survey is
reminded by one of them, once — on SQLite (one writer) and on PostgreSQL (SKIP LOCKED)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.app import App, build_app
from bot.config import load_settings
from bot.engine import Engine
from bot.messages import OutgoingMessage
from bot.reminder_policy import ReminderPolicy
from bot.reminders import Handled, Outcome, ReminderWorker
from storage.database import Session, transaction
from storage.tables import Conversation, Customer, OutboxMessage
from tests.fakes.clock import FakeClock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SURVEYS = 12


class MeetingEngine(Engine):
    """An engine whose first reminder in each worker thread waits for the other worker's
    first one: both hold a claimed survey at the same moment (PostgreSQL only: on SQLite the
    second worker cannot claim while the first holds the writer's lock)."""

    def __init__(self, *, meet: threading.Barrier | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._meet = meet
        self._met = threading.local()

    def reminder_message(
        self, session: Session, *, conversation: Conversation, customer: Customer
    ) -> OutgoingMessage | None:
        if self._meet is not None and not getattr(self._met, "done", False):
            self._met.done = True
            self._meet.wait(timeout=30)
        return super().reminder_message(session, conversation=conversation, customer=customer)


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[App]:
    settings = load_settings(
        None,
        environ={
            "CXBOT_GENERAL__DATA_DIR": str(tmp_path / "data"),
            "CXBOT_DATABASE__URL": database_url,
            "CXBOT_SENTIMENT__ENABLED": "false",
        },
    )
    application = build_app(settings)
    yield application
    application.close()


async def test_two_workers_remind_each_survey_once(app: App, database_url: str) -> None:
    clock = FakeClock(T0)
    meet = None if database_url.startswith("sqlite") else threading.Barrier(2)
    engine = MeetingEngine(
        db=app.db, catalog=app.catalog, settings=app.settings, clock=clock, meet=meet
    )
    for n in range(SURVEYS):
        await engine.begin(channel="telegram", user_id=str(1000 + n))
    clock.advance(hours=24)
    policy = ReminderPolicy.from_settings(app.settings)
    workers = [
        ReminderWorker(
            db=app.db,
            engine=engine,
            policy=policy,
            channels=("telegram",),
            clock=clock,
            batch=3,
        )
        for _ in range(2)
    ]

    def drain(worker: ReminderWorker) -> list[Handled]:
        handled: list[Handled] = []
        while done := worker.run_due():
            handled.extend(done)
        return handled

    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(drain, workers)

    assert {h.outcome for h in first + second} == {Outcome.REMINDED}
    ids = [h.conversation_id for h in first + second]
    assert len(ids) == len(set(ids)) == SURVEYS  # every survey, by one worker each
    if meet is not None:
        assert first and second  # both claimed at the same time: the work was shared
    with transaction(app.db) as s:
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.purpose == "reminder"))
        per_lane = Counter(r.lane for r in rows)
        sent = [
            c.reminders_sent for c in s.exec(select(Conversation).order_by(col(Conversation.id)))
        ]
    assert per_lane == Counter(f"telegram:{1000 + n}" for n in range(SURVEYS))
    assert sent == [1] * SURVEYS
    clock.advance(hours=1)
    assert workers[0].run_due() == [] and workers[1].run_due() == []
