"""DELETE /api/v1/customers/{channel}:{id}: erasure by an admin key, read back from the database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from bot.api_keys import KeyChecker, Scope, create_key
from bot.app import App
from bot.invitations.service import Invitations
from bot.invitations.suppression import SuppressionList
from bot.messages import IncomingMessage
from bot.privacy import PrivacyRequests
from storage.database import transaction
from storage.tables import Answer, Customer
from web.api import API_PREFIX, build_api
from web.server import Mount, build_web_app


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    invitations = Invitations(
        settings=app.settings,
        db=app.db,
        engine=app.engine,
        catalog=app.catalog,
        channels=("telegram", "slack"),
    )
    api = build_api(
        invitations=invitations,
        keys=KeyChecker(app.db),
        suppressions=SuppressionList(app.db),
        privacy=PrivacyRequests(app.db),
    )
    with TestClient(build_web_app(mounts=[Mount(API_PREFIX, api)])) as c:
        yield c


def auth(app: App, scope: Scope) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_key(app.db, scope=scope, name=scope.value).key}"}


async def test_an_admin_erases_a_customer_and_they_are_never_invited_again(
    client: TestClient, app: App
) -> None:
    await app.engine.begin(channel="telegram", user_id="42", first_name="Zelda")
    for text in ["3", "the courier was rude", "2", "1", ""]:
        await app.engine.handle(IncomingMessage(channel="telegram", user_id="42", text=text))
    url = f"{API_PREFIX}/customers/telegram:42"
    refused = client.delete(url, headers=auth(app, Scope.INVITE))
    assert refused.status_code == 403

    admin = auth(app, Scope.ADMIN)
    erased = client.delete(url, headers=admin)

    assert erased.status_code == 200, erased.text
    answer = erased.json()
    assert (answer["channel"], answer["user_id"], answer["suppressed"]) == ("telegram", "42", True)
    assert answer["counts"]["customer"] == 1 and answer["counts"]["answer_deleted"] == 2
    with transaction(app.db) as s:
        customer = s.exec(select(Customer)).one()
        assert (customer.external_id, customer.first_name) == (f"erased:{customer.id}", None)
        kept = {(a.question_id, a.value_int, a.raw_text) for a in s.exec(select(Answer))}
        assert kept == {("nps", 3, ""), ("ces", 2, ""), ("csat", 1, "")}
    invite = {
        "channel": "telegram",
        "user_id": "42",
        "touchpoint": "support_contact",
        "interaction_id": "ticket-1",
    }
    withheld = client.post(f"{API_PREFIX}/invitations", json=invite, headers=admin)
    assert (withheld.json()["status"], withheld.json()["reason"]) == ("withheld", "suppressed")
    # The withheld invitation is recorded (with a new customer row); erasing again clears it.
    again = client.delete(url, headers=admin)
    assert (again.status_code, again.json()["counts"], again.json()["suppressed"]) == (
        200,
        {"customer": 1, "invitation": 1},
        False,
    )


@pytest.mark.parametrize(
    ("customer", "message"),
    [
        ("telegram:bob", "a Telegram user id is the numeric chat id, not 'bob'"),
        ("email:a@b.c", "unknown channel 'email'; use telegram or slack"),
        ("42", "unknown channel '42'; use telegram or slack"),
    ],
)
def test_a_malformed_customer_is_a_422_and_nothing_changes(
    client: TestClient, app: App, customer: str, message: str
) -> None:
    answer = client.delete(f"{API_PREFIX}/customers/{customer}", headers=auth(app, Scope.ADMIN))
    assert answer.status_code == 422
    assert message in answer.json()["error"]
    assert client.get(f"{API_PREFIX}/suppressions", headers=auth(app, Scope.ADMIN)).json() == {
        "suppressions": []
    }
