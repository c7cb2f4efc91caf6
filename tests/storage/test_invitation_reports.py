"""The report's invitation queries where surveys of one customer follow each other: which
invitation a survey belongs to, and whose messages still wait — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.config import load_settings
from bot.delivery import DeliveryWorker
from bot.invitations.service import InvitationRequest, Invitations
from bot.messages import IncomingMessage
from storage.database import transaction
from storage.invitation_reports import FunnelRow, funnel_counts, touchpoint_score_answers
from storage.outbox import lane_of
from tests.fakes.channel_sender import FakeChannelSender


@pytest.fixture
def app(tmp_path: Path, database_url: str) -> Iterator[App]:
    config = tmp_path / "config.toml"
    config.write_text("[invitations]\ncooldown_days = 0\n")  # surveys may follow each other
    application = build_app(
        load_settings(
            config,
            environ={
                "CXBOT_GENERAL__DATA_DIR": str(tmp_path / "data"),
                "CXBOT_DATABASE__URL": database_url,
                "CXBOT_SENTIMENT__ENABLED": "0",
            },
        )
    )
    yield application
    application.close()


def invite(app: App, key: str, touchpoint: str, flow: str) -> int | None:
    service = Invitations(
        settings=app.settings,
        db=app.db,
        engine=app.engine,
        catalog=app.catalog,
        channels=["telegram"],
    )
    request = InvitationRequest(
        channel="telegram", user_id="1", touchpoint=touchpoint, interaction_id=key, flow_id=flow
    )
    created = service.create_sync(request, source="crm")
    assert created.status == "sent"
    return created.conversation_id


def deliver(app: App) -> None:
    worker = DeliveryWorker(db=app.db, senders={"telegram": FakeChannelSender()})
    asyncio.run(worker.drain([lane_of("telegram", "1")]))


def funnel(app: App) -> dict[str | None, tuple[int, int, int, int]]:
    with transaction(app.db) as s:
        rows: list[FunnelRow] = funnel_counts(s)
    return {r.touchpoint: (r.invited, r.delivered, r.started, r.completed) for r in rows}


def test_messages_waiting_for_a_later_survey_leave_the_earlier_one_delivered(app: App) -> None:
    invite(app, "o-1", "purchase", "post_purchase")
    deliver(app)
    # A second survey replaces the first; its messages have not gone out yet.
    invite(app, "t-2", "support_contact", "post_interaction")
    assert funnel(app) == {"purchase": (1, 1, 0, 0), "support_contact": (1, 0, 0, 0)}
    deliver(app)
    assert funnel(app) == {"purchase": (1, 1, 0, 0), "support_contact": (1, 1, 0, 0)}


def test_a_survey_named_by_two_invitations_scores_for_the_first(app: App) -> None:
    first = invite(app, "o-1", "purchase", "post_interaction")
    # The same flow again while it is open: the open survey is resumed, not restarted.
    again = invite(app, "o-2", "refund", "post_interaction")
    assert again == first
    deliver(app)
    asyncio.run(app.engine.handle(IncomingMessage(channel="telegram", user_id="1", text="4")))
    with transaction(app.db) as s:
        scores = touchpoint_score_answers(s)
    assert [(t.touchpoint, t.score.question_type, t.score.value) for t in scores] == [
        ("purchase", "nps", 4)
    ]
    # Each invitation's survey was delivered and started (the funnel counts invitations).
    assert funnel(app) == {"purchase": (1, 1, 1, 0), "refund": (1, 1, 1, 0)}
