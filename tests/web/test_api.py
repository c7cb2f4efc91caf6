"""The REST API under /api/v1, through the app `cxbot serve` builds: keys and scopes, bodies that
are refused (422 naming the field, nothing stored), idempotency, batches, state, the schema."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from bot.api_keys import KeyChecker, Scope, create_key, revoke_keys
from bot.app import App
from bot.invitations.service import Invitations
from bot.invitations.suppression import SuppressionList
from storage.database import transaction
from storage.tables import ApiKey, Invitation, OutboxMessage, Suppression
from tests.fakes.clock import FakeClock
from web.api import API_PREFIX, build_api
from web.server import Mount, build_web_app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def client(app: App, clock: FakeClock) -> Iterator[TestClient]:
    invitations = Invitations(
        settings=app.settings,
        db=app.db,
        engine=app.engine,
        catalog=app.catalog,
        channels=("telegram", "slack"),
        clock=clock,
    )
    api = build_api(
        invitations=invitations,
        keys=KeyChecker(app.db, clock=clock),
        suppressions=SuppressionList(app.db),
    )
    with TestClient(build_web_app(mounts=[Mount(API_PREFIX, api)])) as c:
        yield c


@pytest.fixture
def invite_key(app: App) -> str:
    return create_key(app.db, scope=Scope.INVITE, name="helpdesk").key


@pytest.fixture
def admin_key(app: App) -> str:
    return create_key(app.db, scope=Scope.ADMIN, name="ops").key


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def body(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "channel": "telegram",
        "user_id": "42",
        "touchpoint": "support_contact",
        "interaction_id": "ticket-4711",
        "context": {"ticket_id": "4711", "support_contacts_30d": 2},
    }
    return {k: v for k, v in (base | changes).items() if v is not None}


def stored(app: App, table: type[Any] = Invitation) -> int:
    with transaction(app.db) as s:
        return int(s.exec(select(func.count()).select_from(table)).one())


def post(client: TestClient, key: str, payload: Any, path: str = "/invitations") -> Any:
    return client.post(f"{API_PREFIX}{path}", json=payload, headers=auth(key))


# -- keys and scopes ------------------------------------------------------------------------------


def test_a_request_without_a_valid_key_is_refused_with_401(
    client: TestClient, app: App, invite_key: str
) -> None:
    url = f"{API_PREFIX}/invitations"
    missing = client.post(url, json=body())
    assert missing.status_code == 401, missing.text
    assert missing.json() == {"error": "missing API key: send Authorization: Bearer <key>"}
    assert missing.headers["www-authenticate"] == "Bearer"
    for key, message in [
        ("hunter2", "not a cxbot API key (they look like cxk_…, 47 characters)"),
        (invite_key[:-1] + ("A" if invite_key[-1] != "A" else "B"), "unknown API key"),
        ("cxk_" + "x" * 43, "unknown API key"),
    ]:
        answer = client.post(url, json=body(), headers=auth(key))
        assert (answer.status_code, answer.json()) == (401, {"error": message})
    revoke_keys(app.db, name_or_prefix="helpdesk")
    revoked = client.post(url, json=body(), headers=auth(invite_key))
    assert revoked.status_code == 401
    assert revoked.json()["error"].startswith("this API key was revoked on ")
    assert stored(app) == 0


def test_an_invite_key_may_not_keep_the_suppression_list(
    client: TestClient, app: App, invite_key: str
) -> None:
    answer = client.get(f"{API_PREFIX}/suppressions", headers=auth(invite_key))
    assert answer.status_code == 403
    assert answer.json()["error"].startswith("this needs an admin key; key cxk_")
    added = post(client, invite_key, {"channel": "telegram", "user_id": "42"}, "/suppressions")
    assert added.status_code == 403 and stored(app, Suppression) == 0


def test_an_admin_key_may_invite_too_and_use_is_recorded_once_a_minute(
    client: TestClient, app: App, admin_key: str, clock: FakeClock
) -> None:
    assert post(client, admin_key, body()).status_code == 201
    first_use = clock.now
    clock.advance(seconds=30)
    assert post(client, admin_key, body()).status_code == 200
    with transaction(app.db) as s:
        (used,) = s.exec(select(ApiKey.last_used_at).where(ApiKey.name == "ops")).all()
    assert used is not None and used.replace(tzinfo=UTC) == first_use  # not written again yet
    clock.advance(seconds=31)
    post(client, admin_key, body())
    with transaction(app.db) as s:
        (used,) = s.exec(select(ApiKey.last_used_at).where(ApiKey.name == "ops")).all()
    assert used is not None and used.replace(tzinfo=UTC) == clock.now


# -- creating invitations -------------------------------------------------------------------------


def test_an_invitation_is_sent_at_once_and_a_repeat_gets_the_stored_answer(
    client: TestClient, app: App, invite_key: str
) -> None:
    first = post(client, invite_key, body())
    assert (first.status_code, first.json()) == (201, {"id": "1", "status": "sent"})
    again = post(client, invite_key, body())
    assert (again.status_code, again.json()) == (200, {"id": "1", "status": "sent"})
    assert stored(app) == 1 and stored(app, OutboxMessage) == 2  # intro and question, once
    other = post(client, invite_key, body(user_id="43"))
    assert other.status_code == 409
    assert "already used for invitation 1" in other.json()["error"]


def test_a_withheld_invitation_says_why(client: TestClient, invite_key: str) -> None:
    post(client, invite_key, body())
    answer = post(client, invite_key, body(interaction_id="ticket-4712"))
    assert answer.status_code == 201
    got = answer.json()
    assert (got["status"], got["reason"]) == ("withheld", "cooldown")
    assert got["detail"].startswith("was surveyed on ")


@pytest.mark.parametrize(
    "send_after",
    [3600, 3600.5, "PLUS_ONE_HOUR"],
)
def test_a_later_invitation_is_scheduled(
    client: TestClient, invite_key: str, clock: FakeClock, send_after: Any
) -> None:
    if send_after == "PLUS_ONE_HOUR":
        send_after = (clock.now + timedelta(hours=1)).astimezone().isoformat()
    answer = post(client, invite_key, body(send_after=send_after))
    assert answer.status_code == 201
    got = answer.json()
    assert got["status"] == "scheduled"
    due = datetime.fromisoformat(got["send_at"])
    assert timedelta(hours=1) <= due - clock.now <= timedelta(hours=1, seconds=1)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"user_id": None}, "user_id: Field required"),
        ({"channel": "email"}, "channel: Input should be 'telegram' or 'slack'"),
        ({"sendAfter": 5}, "sendAfter: Extra inputs are not permitted"),
        ({"user_id": "alice"}, "user_id: a Telegram user id is the numeric chat id, not 'alice'"),
        ({"touchpoint": "birthday"}, "touchpoint: unknown touchpoint 'birthday'; known: "),
        ({"flow_id": "nope"}, "flow_id: unknown flow 'nope'; known flows: post_interaction"),
        ({"send_after": -1}, "send_after: a number of seconds must be 0 or more"),
        ({"send_after": 400 * 86400}, "send_after: at most a year (31536000 seconds) ahead"),
        ({"send_after": "2020-01-01T10:00:00Z"}, "send_after: 2020-01-01T10:00:00Z is in the past"),
        ({"send_after": "2099-01-01T10:00:00Z"}, "send_after: at most a year (365 days) ahead"),
        ({"send_after": "2027-01-01T10:00"}, "send_after: an ISO-8601 time needs its offset"),
        ({"send_after": "tomorrow"}, "send_after: 'tomorrow' is neither a number of seconds"),
        ({"send_after": True}, "send_after: a number of seconds or an ISO-8601 time, not a"),
        ({"context": {"a": {"b": 1}}}, "context: 'a': values are strings, numbers or booleans"),
        ({"context": ["x"]}, "context: must be an object"),
        ({"time_zone": "Mars/Olympus"}, "time_zone: unknown time zone 'Mars/Olympus'"),
        ({"interaction_id": ""}, "interaction_id: String should have at least 1 character"),
    ],
)
def test_a_bad_body_is_a_422_naming_the_field_and_stores_nothing(
    client: TestClient, app: App, invite_key: str, changes: dict[str, Any], error: str
) -> None:
    answer = post(client, invite_key, body(**changes))
    assert answer.status_code == 422, answer.text
    got = answer.json()
    assert got["error"].startswith(error), got["error"]
    assert got["detail"][0]["field"] == error.split(":")[0]
    assert stored(app) == 0 and stored(app, OutboxMessage) == 0


def test_a_body_that_is_not_json_is_a_422(client: TestClient, invite_key: str) -> None:
    answer = client.post(
        f"{API_PREFIX}/invitations",
        content=b"{not json",
        headers={**auth(invite_key), "Content-Type": "application/json"},
    )
    assert answer.status_code == 422
    assert "JSON decode error" in answer.json()["error"]
    empty = client.post(f"{API_PREFIX}/invitations", headers=auth(invite_key))
    assert (empty.status_code, empty.json()["error"]) == (422, "body: Field required")


# -- batches --------------------------------------------------------------------------------------


def test_a_batch_answers_each_row_in_order(client: TestClient, app: App, invite_key: str) -> None:
    post(client, invite_key, body(interaction_id="t-0"))
    rows = [body(interaction_id=f"t-{n}", user_id=str(100 + n)) for n in range(3)]
    rows[0]["user_id"] = "42"  # t-0 again: a repeat
    answer = post(client, invite_key, {"invitations": rows}, "/invitations/batch")
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert (got["created"], got["repeated"]) == (2, 1)
    assert [(r["index"], r["id"], r["status"], r["created"]) for r in got["results"]] == [
        (0, "1", "sent", False),
        (1, "2", "sent", True),
        (2, "3", "sent", True),
    ]


def test_a_batch_with_one_bad_row_stores_nothing(
    client: TestClient, app: App, invite_key: str
) -> None:
    rows = [body(interaction_id=f"t-{n}", user_id=str(100 + n)) for n in range(3)]
    rows[1]["touchpoint"] = "birthday"
    rows[2].pop("channel")
    answer = post(client, invite_key, {"invitations": rows}, "/invitations/batch")
    assert answer.status_code == 422
    assert answer.json()["error"] == "invitations[2].channel: Field required"
    rows[2]["channel"] = "telegram"
    answer = post(client, invite_key, {"invitations": rows}, "/invitations/batch")
    assert answer.status_code == 422
    assert answer.json()["error"].startswith("invitations[1].touchpoint: unknown touchpoint")
    assert answer.json()["detail"][0]["loc"] == ["body", "invitations", 1, "touchpoint"]
    assert stored(app) == 0


def test_a_batch_takes_at_most_1000_rows(client: TestClient, app: App, invite_key: str) -> None:
    rows = [body(interaction_id=f"t-{n}", user_id=str(n)) for n in range(1001)]
    answer = post(client, invite_key, {"invitations": rows}, "/invitations/batch")
    assert answer.status_code == 422
    assert answer.json()["error"] == (
        "invitations: at most 1000 invitations per request, got 1001: split the batch"
    )
    empty = post(client, invite_key, {"invitations": []}, "/invitations/batch")
    assert empty.status_code == 422 and empty.json()["error"].startswith("invitations: List")
    assert stored(app) == 0


def test_a_full_batch_of_1000_is_accepted(client: TestClient, app: App, invite_key: str) -> None:
    rows = [
        body(interaction_id=f"t-{n}", user_id=str(n), send_after=3600, context=None)
        for n in range(1000)
    ]
    answer = post(client, invite_key, {"invitations": rows}, "/invitations/batch")
    assert answer.status_code == 200
    assert answer.json()["created"] == 1000 and stored(app) == 1000


# -- state ----------------------------------------------------------------------------------------


def test_an_invitations_state_includes_its_survey(
    client: TestClient, app: App, invite_key: str, admin_key: str, clock: FakeClock
) -> None:
    post(client, invite_key, body())
    answer = client.get(f"{API_PREFIX}/invitations/1", headers=auth(invite_key))
    assert answer.status_code == 200
    got = answer.json()
    assert {k: got[k] for k in ("id", "status", "source", "touchpoint", "flow_id", "user_id")} == {
        "id": "1",
        "status": "sent",
        "source": "helpdesk",
        "touchpoint": "support_contact",
        "flow_id": "post_interaction",
        "user_id": "42",
    }
    assert got["context"] == {"ticket_id": "4711", "support_contacts_30d": 2}
    assert datetime.fromisoformat(got["sent_at"]) == clock.now
    conversation = got["conversation"]
    assert (conversation["state"], conversation["current_question"]) == ("active", "nps")
    # Another key's invitations are not shown to an invite key; an admin key sees them all.
    other = create_key(app.db, scope=Scope.INVITE, name="shop").key
    hidden = client.get(f"{API_PREFIX}/invitations/1", headers=auth(other))
    assert (hidden.status_code, hidden.json()) == (404, {"error": "no invitation 1"})
    assert client.get(f"{API_PREFIX}/invitations/1", headers=auth(admin_key)).status_code == 200
    for missing in ("2", "abc"):
        answer = client.get(f"{API_PREFIX}/invitations/{missing}", headers=auth(invite_key))
        assert answer.status_code == 404


# -- suppression list -----------------------------------------------------------------------------


def test_admins_keep_the_suppression_list(
    client: TestClient, app: App, admin_key: str, invite_key: str
) -> None:
    entry = {"channel": "telegram", "user_id": "42", "note": "asked us by phone"}
    added = post(client, admin_key, entry, "/suppressions")
    assert added.status_code == 201
    assert {k: added.json()[k] for k in ("user_id", "note", "created_by")} == {
        "user_id": "42",
        "note": "asked us by phone",
        "created_by": "ops",
    }
    assert post(client, admin_key, entry, "/suppressions").status_code == 200
    listed = client.get(f"{API_PREFIX}/suppressions", headers=auth(admin_key))
    assert [e["user_id"] for e in listed.json()["suppressions"]] == ["42"]
    withheld = post(client, invite_key, body())
    assert (withheld.json()["status"], withheld.json()["reason"]) == ("withheld", "suppressed")

    url = f"{API_PREFIX}/suppressions?channel=telegram&user_id=42"
    removed = client.delete(url, headers=auth(admin_key))
    assert (removed.status_code, removed.json()) == (200, {"removed": True})
    again = client.delete(url, headers=auth(admin_key))
    assert (again.status_code, again.json()) == (
        404,
        {"error": "telegram:42 is not on the suppression list"},
    )
    bad = post(client, admin_key, {"channel": "slack", "user_id": "bob"}, "/suppressions")
    assert bad.status_code == 422 and bad.json()["error"].startswith("user_id: a Slack user id")
    assert stored(app, Suppression) == 0


# -- the schema -----------------------------------------------------------------------------------


def test_the_openapi_schema_shows_only_the_api(client: TestClient) -> None:
    answer = client.get(f"{API_PREFIX}/openapi.json")
    assert answer.status_code == 200
    schema = answer.json()
    assert sorted(schema["paths"]) == [
        "/invitations",
        "/invitations/batch",
        "/invitations/{invitation_id}",
        "/suppressions",
    ]
    assert schema["servers"] == [{"url": API_PREFIX}]
    models = schema["components"]["schemas"]
    assert set(models["InvitationIn"]["required"]) == {
        "channel",
        "user_id",
        "touchpoint",
        "interaction_id",
    }
    create = schema["paths"]["/invitations"]["post"]
    assert set(create["responses"]) >= {"200", "201", "401", "403", "409", "422"}
    assert create["security"] == [{"HTTPBearer": []}]
    assert client.get("/openapi.json").status_code == 404  # the rest of the server is not in it
