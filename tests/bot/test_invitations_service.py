"""Invitations from other systems: decided and stored in one transaction, sent now or by the
scheduler when due (rules checked again then), on SQLite and PostgreSQL, with an injected clock."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, func, select

from bot.app import App, build_app
from bot.config import load_settings
from bot.errors import ConfigError
from bot.invitations.scheduler import MAX_ATTEMPTS, InvitationScheduler
from bot.invitations.service import (
    InteractionConflict,
    InvalidInvitation,
    InvitationRequest,
    Invitations,
)
from bot.invitations.suppression import SuppressionList
from bot.messages import IncomingMessage
from storage.database import transaction
from storage.invitation_rows import StoredInvitation, get_invitation
from storage.tables import Conversation, Customer, Invitation, OutboxMessage
from tests.fakes.clock import FakeClock


def make_app(tmp_path: Path, database_url: str | None = None, toml: str = "") -> App:
    config = tmp_path / "config.toml"
    config.write_text(toml)
    environ = {"CXBOT_GENERAL__DATA_DIR": str(tmp_path / "data"), "CXBOT_SENTIMENT__ENABLED": "0"}
    if database_url is not None:
        environ["CXBOT_DATABASE__URL"] = database_url
    return build_app(load_settings(config, environ=environ))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    application = make_app(tmp_path)
    yield application
    application.close()


@pytest.fixture
def db_app(tmp_path: Path, database_url: str) -> Iterator[App]:
    application = make_app(tmp_path, database_url)
    yield application
    application.close()


def service(app: App, clock: FakeClock) -> Invitations:
    return Invitations(
        settings=app.settings,
        db=app.db,
        engine=app.engine,
        catalog=app.catalog,
        channels=("telegram", "slack"),
        clock=clock,
    )


def ask(
    user: str = "42",
    interaction: str = "ticket-1",
    touchpoint: str | None = "support_contact",
    **kw: object,
) -> InvitationRequest:
    return InvitationRequest(
        channel="telegram",
        user_id=user,
        touchpoint=touchpoint,
        interaction_id=interaction,
        **kw,  # type: ignore[arg-type]
    )


def queued(app: App, user: str = "42") -> list[OutboxMessage]:
    with transaction(app.db) as s:
        stmt = select(OutboxMessage).where(OutboxMessage.lane == f"telegram:{user}")
        return list(s.exec(stmt.order_by(col(OutboxMessage.id))))


def stored(app: App, invitation_id: int) -> StoredInvitation:
    with transaction(app.db) as s:
        row = get_invitation(s, invitation_id=invitation_id)
        assert row is not None
        return row


def count(app: App, table: type[Invitation] | type[Conversation]) -> int:
    with transaction(app.db) as s:
        return int(s.exec(select(func.count()).select_from(table)).one())


# -- now ------------------------------------------------------------------------------------------


def test_an_invitation_due_now_is_sent_with_its_messages_queued(
    db_app: App, clock: FakeClock
) -> None:
    request = ask(context={"ticket_id": "T-42", "support_contacts_30d": 2, "vip": True})
    created = service(db_app, clock).create_sync(request, source="helpdesk")
    assert (created.status, created.reason, created.created) == ("sent", None, True)
    intro, question = queued(db_app)
    assert "T-42" in intro.body["text"] and question.question_id == "nps"
    row = stored(db_app, created.id)
    assert (row.status, row.source, row.touchpoint, row.flow_id) == (
        "sent",
        "helpdesk",
        "support_contact",
        "post_interaction",
    )
    assert row.context == {"ticket_id": "T-42", "support_contacts_30d": 2, "vip": True}
    assert row.decided_at == clock.now and row.requested_at == clock.now
    with transaction(db_app.db) as s:
        conversation = s.get(Conversation, row.conversation_id)
        assert conversation is not None
        # Segment facts reach the survey as text, as `cxbot invite --context` gives them.
        assert conversation.context == {
            "ticket_id": "T-42",
            "support_contacts_30d": "2",
            "vip": "true",
        }


def test_a_repeat_of_an_interaction_is_answered_from_the_stored_row(
    db_app: App, clock: FakeClock
) -> None:
    invitations = service(db_app, clock)
    first = invitations.create_sync(ask(), source="helpdesk")
    again = invitations.create_sync(ask(), source="helpdesk")
    assert (again.id, again.status, again.created) == (first.id, "sent", False)
    assert len(queued(db_app)) == 2  # nothing sent twice
    # Another source's interaction ids are its own: a new invitation (which the cooldown stops).
    other = invitations.create_sync(ask(), source="shop")
    assert (other.created, other.status, other.reason) == (True, "withheld", "cooldown")
    assert count(db_app, Invitation) == 2


def test_an_interaction_id_reused_for_another_customer_is_refused(
    app: App, clock: FakeClock
) -> None:
    invitations = service(app, clock)
    invitations.create_sync(ask("42"), source="helpdesk")
    with pytest.raises(InteractionConflict, match="already used for invitation 1"):
        invitations.create_sync(ask("43"), source="helpdesk")
    assert count(app, Invitation) == 1


def test_every_withheld_invitation_records_its_rule(app: App, clock: FakeClock) -> None:
    invitations = service(app, clock)
    asyncio.run(app.engine.handle(IncomingMessage(channel="telegram", user_id="1", text="stop")))
    SuppressionList(app.db).add("telegram", "2", note="asked us by phone", by="test")
    invitations.create_sync(ask("3", "a"), source="helpdesk")  # surveyed now
    results = {
        user: invitations.create_sync(ask(user, f"b-{user}"), source="helpdesk")
        for user in ("1", "2", "3")
    }
    assert {u: (r.status, r.reason) for u, r in results.items()} == {
        "1": ("withheld", "opted_out"),
        "2": ("withheld", "suppressed"),
        "3": ("withheld", "cooldown"),
    }
    assert results["2"].detail == "is on the suppression list"
    row = stored(app, results["3"].id)
    assert row.detail is not None and row.detail.startswith("was surveyed on ")
    assert row.decided_at == clock.now and row.conversation_id is None
    assert [m.body.get("text", "")[:2] for m in queued(app, "2")] == []


def test_a_touchpoint_brings_its_flow_and_its_own_rules(tmp_path: Path, clock: FakeClock) -> None:
    app = make_app(
        tmp_path,
        toml='[touchpoints.purchase]\nflow = "post_purchase"\ncooldown_days = 0\n'
        "[touchpoints.renewal]\n",
    )
    try:
        invitations = service(app, clock)
        first = invitations.create_sync(ask(touchpoint="purchase"), source="shop")
        assert (first.status, first.flow_id) == ("sent", "post_purchase")
        # No cooldown for purchases: a second purchase is asked about too.
        second = invitations.create_sync(
            ask(interaction="o-2", touchpoint="purchase"), source="shop"
        )
        assert second.status == "sent"
        # A declared touchpoint takes the global rules and the default flow.
        renewal = invitations.create_sync(
            ask(interaction="r-1", touchpoint="renewal"), source="shop"
        )
        assert (renewal.status, renewal.reason, renewal.flow_id) == (
            "withheld",
            "cooldown",
            "post_interaction",
        )
    finally:
        app.close()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"touchpoint": "birthday"},
            "touchpoint",
            "unknown touchpoint 'birthday'; known: first_visit",
        ),
        ({"flow_id": "nope"}, "flow_id", "unknown flow 'nope'"),
        ({"user_id": "alice"}, "user_id", "numeric chat id"),
        ({"channel": "slack"}, "user_id", "like U012ABCDEF"),
        ({"channel": "email"}, "channel", "unknown channel 'email'"),
        ({"send_after": -2}, "send_after", "is in the past"),
        ({"send_after": 366}, "send_after", "at most a year"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "unknown time zone 'Mars/Olympus'"),
        ({"context": {"k": "x" * 300}}, "context.k", "at most 256 characters"),
        ({"context": {f"k{n}": n for n in range(51)}}, "context", "at most 50 keys"),
        ({"interaction_id": ""}, "interaction_id", "1-128 characters"),
    ],
)
def test_bad_requests_are_refused_naming_the_field_and_store_nothing(
    app: App, clock: FakeClock, changes: dict[str, object], field: str, message: str
) -> None:
    if "send_after" in changes:
        changes["send_after"] = clock.now + timedelta(days=changes["send_after"])  # type: ignore[arg-type]
    values: dict[str, object] = {
        "channel": "telegram",
        "user_id": "42",
        "touchpoint": "purchase",
        "interaction_id": "i-1",
    } | changes
    request = InvitationRequest(**values)  # type: ignore[arg-type]
    with pytest.raises(InvalidInvitation) as err:
        service(app, clock).create_sync(request, source="helpdesk")
    assert [(p.field, message in p.message) for p in err.value.problems] == [(field, True)]
    assert count(app, Invitation) == 0 and queued(app) == []


def test_a_channel_not_served_here_is_refused(app: App, clock: FakeClock) -> None:
    only_slack = Invitations(
        settings=app.settings, db=app.db, engine=app.engine, catalog=app.catalog, channels=["slack"]
    )
    (problem,) = only_slack.problems(ask())
    assert str(problem) == "channel: telegram is not configured on this server (configured: slack)"


# -- later: the scheduler -------------------------------------------------------------------------


def scheduler(invitations: Invitations, batch: int = 50) -> InvitationScheduler:
    return InvitationScheduler(db=invitations.db, invitations=invitations, batch_size=batch)


def test_a_later_invitation_is_scheduled_and_sent_once_when_due(
    db_app: App, clock: FakeClock
) -> None:
    invitations = service(db_app, clock)
    created = invitations.create_sync(ask(send_after=clock.now + timedelta(hours=2)), source="crm")
    assert (created.status, created.send_at) == ("scheduled", clock.now + timedelta(hours=2))
    assert queued(db_app) == []
    send = scheduler(invitations)
    clock.advance(hours=1, minutes=59)
    assert sum(asyncio.run(send.send_due()).values()) == 0
    clock.advance(minutes=1)
    assert asyncio.run(send.send_due()) == {"sent": 1}
    assert len(queued(db_app)) == 2
    row = stored(db_app, created.id)
    assert (row.status, row.decided_at) == ("sent", clock.now) and row.conversation_id is not None
    clock.advance(hours=1)
    assert sum(asyncio.run(send.send_due()).values()) == 0  # never twice
    assert len(queued(db_app)) == 2


def test_the_rules_are_checked_again_at_send_time(app: App, clock: FakeClock) -> None:
    invitations = service(app, clock)
    later = clock.now + timedelta(hours=1)
    suppressed = invitations.create_sync(ask("1", "a", send_after=later), source="crm")
    opted_out = invitations.create_sync(ask("2", "b", send_after=later), source="crm")
    twice = [invitations.create_sync(ask("3", i, send_after=later), source="crm") for i in "cd"]
    SuppressionList(app.db).add("telegram", "1", by="test")
    asyncio.run(app.engine.handle(IncomingMessage(channel="telegram", user_id="2", text="stop")))
    clock.advance(hours=1)
    assert asyncio.run(scheduler(invitations).send_due()) == {"withheld": 3, "sent": 1}
    assert [stored(app, i.id).reason for i in (suppressed, opted_out, *twice)] == [
        "suppressed",
        "opted_out",
        None,
        "cooldown",  # the first of the two opened a survey a moment ago
    ]


def test_quiet_hours_schedule_the_send_in_the_customers_zone(tmp_path: Path) -> None:
    app = make_app(tmp_path, toml='[invitations]\nquiet_hours = "21:00-08:00"\n')
    # 22:30 in Berlin, the night the clocks go forward; 17:30 in New York.
    clock = FakeClock(datetime(2027, 3, 27, 21, 30, tzinfo=UTC))
    try:
        invitations = service(app, clock)
        berlin = invitations.create_sync(ask("1", "a", time_zone="Europe/Berlin"), source="crm")
        new_york = invitations.create_sync(
            ask("2", "b", time_zone="America/New_York"), source="crm"
        )
        assert new_york.status == "sent"
        assert (berlin.status, berlin.reason) == ("scheduled", "quiet_hours")
        assert berlin.send_at == datetime(2027, 3, 28, 6, 0, tzinfo=UTC)  # 08:00 CEST
        assert berlin.detail is not None and "2027-03-28 08:00 Europe/Berlin" in berlin.detail
        with transaction(app.db) as s:
            zones = s.exec(select(Customer.external_id, Customer.time_zone)).all()
        assert sorted(zones) == [("1", "Europe/Berlin"), ("2", "America/New_York")]
        # The customer's zone is remembered: a later request without one keeps the quiet hours.
        clock.advance(minutes=5)
        again = invitations.create_sync(ask("1", "c", touchpoint="refund"), source="crm")
        assert again.send_at == datetime(2027, 3, 28, 6, 0, tzinfo=UTC)
        clock.set(datetime(2027, 3, 28, 6, 0, tzinfo=UTC))
        assert asyncio.run(scheduler(invitations).send_due()) == {"sent": 1, "withheld": 1}
        row = stored(app, berlin.id)
        assert (row.status, row.reason, row.send_at) == ("sent", None, berlin.send_at)
        assert row.requested_at == datetime(2027, 3, 27, 21, 30, tzinfo=UTC)  # the move is kept
    finally:
        app.close()


def test_a_failing_send_is_retried_with_backoff_then_given_up(
    app: App, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    invitations = service(app, clock)
    bad = invitations.create_sync(
        ask("1", "a", send_after=clock.now + timedelta(minutes=1)), source="crm"
    )
    good = invitations.create_sync(
        ask("2", "b", send_after=clock.now + timedelta(minutes=1)), source="crm"
    )
    real_open = invitations._open_survey

    def open_survey(session, invitation):  # type: ignore[no-untyped-def]
        if invitation.user_id == "1":
            raise RuntimeError("the engine broke")
        return real_open(session, invitation)

    monkeypatch.setattr(invitations, "_open_survey", open_survey)
    send = scheduler(invitations)
    clock.advance(minutes=1)
    # One failing invitation is undone alone: the other one is sent in the same pass.
    assert asyncio.run(send.send_due()) == {"scheduled": 1, "sent": 1}
    assert stored(app, good.id).status == "sent" and queued(app, "1") == []
    row = stored(app, bad.id)
    assert (row.status, row.attempts, row.last_error) == (
        "scheduled",
        1,
        "RuntimeError: the engine broke",
    )
    assert row.send_at == clock.now + timedelta(seconds=30)
    for _ in range(MAX_ATTEMPTS - 1):
        clock.set(stored(app, bad.id).send_at)
        asyncio.run(send.send_due())
    row = stored(app, bad.id)
    assert (row.status, row.reason, row.attempts) == ("withheld", "error", MAX_ATTEMPTS)
    assert row.detail is not None and "the engine broke" in row.detail


def test_two_schedulers_send_every_invitation_exactly_once(db_app: App, clock: FakeClock) -> None:
    """Several claiming threads (PostgreSQL: SKIP LOCKED; SQLite: one writer) share the work."""
    invitations = service(db_app, clock)
    due = clock.now + timedelta(minutes=10)
    for n in range(40):
        invitations.create_sync(ask(str(1000 + n), f"i-{n}", send_after=due), source="crm")
    clock.set(due)
    sent: list[int] = []
    guard = threading.Lock()

    def work() -> None:
        send = scheduler(invitations, batch=3)
        while True:
            counts = send.send_due_sync()
            with guard:
                sent.append(counts["sent"])
            if not counts:
                return

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sum(sent) == 40
    assert count(db_app, Conversation) == 40
    with transaction(db_app.db) as s:
        statuses = s.exec(select(Invitation.status, func.count()).group_by(Invitation.status)).all()
        lanes = s.exec(select(OutboxMessage.lane, func.count()).group_by(OutboxMessage.lane)).all()
    assert statuses == [("sent", 40)]
    assert len(lanes) == 40 and {n for _, n in lanes} == {2}  # intro + first question, once each


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[touchpoints.purchase]\nflow = "nope"\n',
            "[touchpoints.purchase] flow: unknown flow 'nope'",
        ),
        ('[touchpoints."Big Sale"]\n', "touchpoint names are 1-64 of a-z 0-9 _ . -"),
        ('[touchpoints.refund]\nquiet_hours = "9-5"\n', "expected HH:MM-HH:MM"),
        ("[touchpoints.refund]\nsample_percent = 120\n", "sample_percent"),
    ],
)
def test_touchpoint_settings_are_checked_at_start(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_app(tmp_path, toml=toml)
