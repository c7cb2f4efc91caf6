"""`cxbot report`'s invitation sections — scores by touchpoint and the funnel invited →
delivered → started → completed — on a database filled through the real invitation service,
delivery worker and engine, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, build_app
from bot.cli import main
from bot.config import load_settings
from bot.delivery import DeliveryWorker
from bot.errors import RecipientUnreachableError
from bot.housekeeping import forget_old_event_ids
from bot.invitations.service import InvitationRequest, Invitations
from bot.invitations.suppression import SuppressionList
from bot.messages import IncomingMessage, MessageKind
from storage.outbox import lane_of
from tests.fakes.channel_sender import FakeChannelSender


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> Iterator[App]:
    """The app on the database `cxbot report` reads (the same environment)."""
    monkeypatch.setenv("CXBOT_GENERAL__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CXBOT_DATABASE__URL", database_url)
    monkeypatch.setenv("CXBOT_SENTIMENT__ENABLED", "false")
    application = build_app(load_settings())
    yield application
    application.close()


def report(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["report", "--json", *args]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def say(app: App, user: str, *texts: str) -> None:
    for text in texts:
        asyncio.run(app.engine.handle(IncomingMessage(channel="telegram", user_id=user, text=text)))


def fill(app: App) -> None:
    """Nine invitations that end at every step of the funnel, and one survey without one."""
    invitations = Invitations(
        settings=app.settings,
        db=app.db,
        engine=app.engine,
        catalog=app.catalog,
        channels=["telegram"],
    )
    SuppressionList(app.db).add("telegram", "6", by="test")

    def invite(user: str, key: str, touchpoint: str | None, **kw: Any) -> str:
        request = InvitationRequest(
            channel="telegram", user_id=user, touchpoint=touchpoint, interaction_id=key, **kw
        )
        return invitations.create_sync(request, source="crm").status

    later = datetime.now(UTC) + timedelta(hours=1)
    statuses = [
        invite("1", "t-1", "support_contact"),  # completed
        invite("2", "o-2", "purchase"),  # started
        invite("3", "o-3", "purchase"),  # delivered
        invite("4", "o-4", "purchase"),  # the platform refuses: not delivered
        invite("5", "r-5", "refund"),  # still queued: not delivered (yet)
        invite("1", "r-6", "refund"),  # cooldown
        invite("6", "o-7", "purchase"),  # suppressed
        invite("7", "t-8", "support_contact", send_after=later),  # scheduled
        invite("9", "cli-9", None),  # no touchpoint; still queued
    ]
    assert statuses == ["sent"] * 5 + ["withheld"] * 2 + ["scheduled", "sent"]
    sender = FakeChannelSender()
    sender.fail(RecipientUnreachableError("Forbidden: bot was blocked by the user"), user_id="4")
    worker = DeliveryWorker(db=app.db, senders={"telegram": sender})
    asyncio.run(worker.drain([lane_of("telegram", u) for u in ("1", "2", "3", "4")]))
    assert {c.user_id for c in sender.succeeded()} == {"1", "2", "3"}
    say(app, "1", "9", "Great support, thanks!", "6", "5", "skip")
    say(app, "2", "3")
    # A customer who asked for a survey themselves: scored overall, outside the funnel.
    asyncio.run(
        app.engine.handle(IncomingMessage(channel="telegram", user_id="8", kind=MessageKind.START))
    )
    say(app, "8", "10")


def step(
    invited: int,
    *,
    scheduled: int = 0,
    withheld: dict[str, int] | None = None,
    sent: int = 0,
    delivered: int = 0,
    started: int = 0,
    completed: int = 0,
    rate: float | None = None,
) -> dict[str, Any]:
    withheld = withheld or {}
    return {
        "invited": invited,
        "scheduled": scheduled,
        "withheld": sum(withheld.values()),
        "withheld_by_reason": withheld,
        "sent": sent,
        "delivered": delivered,
        "started": started,
        "completed": completed,
        "response_rate": rate,
    }


def test_the_funnel_counts_each_step_per_flow_channel_and_touchpoint(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(app)
    data = report(capsys)
    # What was there stays as it was; the invitation sections are added beside it.
    assert set(data) == {
        "nps",
        "ces",
        "csat",
        "by_flow",
        "by_channel",
        "late_comments",
        "touchpoints",
        "funnel",
    }
    assert data["nps"]["n"] == 3  # customer 8's survey is scored, though not invited
    funnel = data["funnel"]
    overall = step(
        9,
        scheduled=1,
        withheld={"cooldown": 1, "suppressed": 1},
        sent=6,
        delivered=3,
        started=2,
        completed=1,
        rate=33.3,
    )
    assert {k: v for k, v in funnel.items() if not k.startswith("by_")} == overall
    assert funnel["by_flow"] == {"post_interaction": overall}
    assert funnel["by_channel"] == {"telegram": overall}
    assert funnel["by_touchpoint"] == {
        "(none)": step(1, sent=1),
        "purchase": step(4, withheld={"suppressed": 1}, sent=3, delivered=2, started=1, rate=0.0),
        "refund": step(2, withheld={"cooldown": 1}, sent=1),
        "support_contact": step(
            2, scheduled=1, sent=1, delivered=1, started=1, completed=1, rate=100.0
        ),
    }


def test_scores_are_broken_down_by_the_touchpoint_of_the_invitation(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(app)
    touchpoints = report(capsys)["touchpoints"]
    assert set(touchpoints) == {"purchase", "support_contact"}
    assert touchpoints["support_contact"] == {
        "nps": {"score": 100.0, "promoters": 1, "passives": 0, "detractors": 0, "n": 1},
        "ces": {"mean": 6.0, "n": 1},
        "csat": {"score": 100.0, "satisfied": 1, "n": 1},
    }
    assert touchpoints["purchase"]["nps"] == {
        "score": -100.0,
        "promoters": 0,
        "passives": 0,
        "detractors": 1,
        "n": 1,
    }
    # Filters apply to the sections too.
    assert report(capsys, "--channel", "slack")["touchpoints"] == {}
    assert report(capsys, "--channel", "slack")["funnel"]["invited"] == 0
    assert report(capsys, "--flow", "post_interaction")["funnel"]["invited"] == 9


def test_delivered_outlives_the_outbox_clean_up(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(app)
    before = report(capsys)["funnel"]
    # A week later the finished outbox rows are gone; what was delivered stays delivered.
    assert forget_old_event_ids(app.db, now=datetime.now(UTC) + timedelta(days=7)) > 0
    after = report(capsys)["funnel"]
    assert after == before


def test_the_text_report_shows_the_funnel_and_the_rules(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["report"]) == 0
    assert "funnel" not in capsys.readouterr().out  # nothing invited: nothing to show
    fill(app)
    assert main(["report"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NPS", "n", "CES", "n", "CSAT%", "n"]  # the scores come first
    assert any(line.startswith("by touchpoint") for line in lines)
    assert any(line.split()[:3] == ["support_contact", "+100.0", "1"] for line in lines)
    funnel = next(line for line in lines if line.startswith("all invitations"))
    assert funnel.split()[2:] == ["9", "2", "1", "6", "3", "2", "1", "33.3"]
    assert "Withheld by rule: cooldown 1, suppressed 1." in lines
