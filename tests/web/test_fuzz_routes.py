"""Bounded fuzzing of every HTTP route: arbitrary bodies, headers and sizes, never a 5xx.

Each test throws hypothesis-generated requests at one route of the app `serve` builds
(`tests.fakes.hostile_web.all_routes`: Slack, Telegram, the REST API, `/healthz`) — unsigned
and signed Slack bodies, Telegram updates with the right secret, API calls with and without a
valid key — and asserts that every answer is below 500, then that the app still records a good
request and `/healthz` is 200. Run with `-s` to see how many examples each route got and the
status-code counts (printed once the module ends); `CXBOT_FUZZ_EXAMPLES=2000` for a longer
hunt. Defects found here stay as regression tests in test_hostile_input.py.
"""

from __future__ import annotations

import json
import os
import string
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.api_keys import Scope, create_key
from bot.app import App
from tests.fakes.hostile_web import (
    SLACK_PATH,
    TELEGRAM_SECRET,
    Routes,
    all_routes,
    signed_headers,
    slack_message,
    telegram_headers,
    telegram_message,
)
from tests.fakes.slack_api import FakeSlackAPI, dm_event
from web.api import API_MAX_BODY_BYTES, API_PREFIX
from web.body_limit import MAX_BODY_BYTES
from web.server import TELEGRAM_SECRET_HEADER, TELEGRAM_WEBHOOK_PATH

# 300 examples a route keeps the module near 15 s; CXBOT_FUZZ_EXAMPLES=5000 for a long hunt.
FUZZ = settings(
    max_examples=int(os.environ.get("CXBOT_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# Per route: examples run and the status codes answered (printed at the end with -s).
STATUSES: dict[str, Counter[int]] = {}

# -- strategies ----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=60,
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/json; charset=utf-16",
        "",
    ]
)
# Sizes cluster around the limit as well as small: just under, at, just over, far over.
sizes = st.sampled_from(
    [0, 1, MAX_BODY_BYTES - 1, MAX_BODY_BYTES, MAX_BODY_BYTES + 1, API_MAX_BODY_BYTES + 1]
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """Raw bytes, JSON of any shape, a form with a payload, or a body of a chosen size."""
    kind = draw(st.sampled_from(["bytes", "json", "form", "sized"]))
    if kind == "bytes":
        return draw(st.binary(max_size=2048))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "form":
        from urllib.parse import urlencode

        return urlencode(
            {"payload": draw(st.text(max_size=200) | json_values.map(json.dumps))}
        ).encode()
    return draw(st.sampled_from([b"x", b"{", b"\xff"])) * draw(sizes)


@st.composite
def extra_headers(draw: st.DrawFn) -> dict[str, str]:
    """Any of the headers the routes read, with arbitrary values."""
    names = [
        "X-Slack-Request-Timestamp",
        "X-Slack-Signature",
        "X-Slack-Retry-Num",
        TELEGRAM_SECRET_HEADER,
        "Authorization",
        "Content-Type",
        "Content-Encoding",
        "Transfer-Encoding-Ignored",
    ]
    return draw(st.dictionaries(st.sampled_from(names), header_text, max_size=5))


@st.composite
def telegram_updates(draw: st.DrawFn) -> bytes:
    """Telegram-shaped updates with hostile values where PTB expects numbers and objects."""
    value = json_values
    message = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "message_id": value,
                "date": value | st.integers(min_value=-(10**19), max_value=10**19),
                "chat": value | st.fixed_dictionaries({"id": value, "type": value}),
                "from": value | st.fixed_dictionaries({"id": value, "first_name": value}),
                "text": value,
                "reply_markup": value,
            },
        )
    )
    key = draw(st.sampled_from(["message", "edited_message", "callback_query", "my_chat_member"]))
    update: dict[str, Any] = {"update_id": draw(value | st.integers()), key: message}
    if key == "callback_query":
        update[key] = {
            "id": draw(value),
            "from": draw(value),
            "message": message,
            "data": draw(value),
        }
    return json.dumps(update).encode()


@st.composite
def slack_events(draw: st.DrawFn) -> tuple[bytes, str]:
    """Signed-shaped Slack bodies that reach the listeners: DM events and button presses with
    hostile values where Slack puts strings and objects."""
    value = json_values
    if draw(st.booleans()):
        event = dm_event(
            "U0ANN0001", draw(st.text(max_size=50)), event_id=draw(st.text(max_size=12))
        )
        for key in draw(
            st.lists(
                st.sampled_from(
                    ["user", "text", "channel", "channel_type", "ts", "files", "subtype", "bot_id"]
                ),
                max_size=3,
            )
        ):
            event["event"][key] = draw(value)
        for key in draw(
            st.lists(
                st.sampled_from(["event_id", "team_id", "authorizations", "event"]), max_size=1
            )
        ):
            event[key] = draw(value)
        return json.dumps(event).encode(), "application/json"
    action: dict[str, Any] = {
        "action_id": draw(st.sampled_from(["a_0", "a_1", "alert_ack", "x"]) | st.text(max_size=10)),
        "value": draw(value),
        "action_ts": draw(value),
    }
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": draw(st.fixed_dictionaries({"id": value}) | value),
        "channel": draw(st.fixed_dictionaries({"id": value}) | value),
        "container": draw(value),
        "message": draw(
            st.fixed_dictionaries({"ts": value, "text": value, "blocks": value}) | value
        ),
        "actions": draw(st.just([action]) | value),
        "team": {"id": "T0TEST01"},
    }
    from urllib.parse import urlencode

    return urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded"


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    """Print, per route, the number of examples and the status-code counts."""
    yield
    print("\nfuzzed routes (examples, status counts):")
    for route, counts in sorted(STATUSES.items()):
        print(f"  {route}: {sum(counts.values())} examples, {dict(sorted(counts.items()))}")


@pytest.fixture
def routes(app: App) -> Iterator[Routes]:
    with FakeSlackAPI() as fake:
        yield all_routes(app, fake)


@pytest.fixture
def client(routes: Routes) -> Iterator[TestClient]:
    # Server errors come back as 500 answers (counted and failed on), not as exceptions.
    with TestClient(routes.web, raise_server_exceptions=False) as c:
        yield c


def send(client: TestClient, route: str, method: str, path: str, **kw: Any) -> int:
    """One request; count its status under `route` and fail on a 5xx."""
    # As raw bytes: a client encodes `str` headers as ASCII, a hostile one sends any octet.
    headers = {k: v.encode("latin-1") for k, v in kw.pop("headers", {}).items()}
    status = client.request(method, path, headers=headers, **kw).status_code
    STATUSES.setdefault(route, Counter())[status] += 1
    assert status < 500, f"{method} {path} answered {status}"
    return status


def still_serving(client: TestClient, routes: Routes) -> None:
    """A good Slack event and Telegram update are still recorded, and /healthz is 200."""
    before = len(routes.recorded)
    body = slack_message(event_id="Ev-after-fuzz")
    assert client.post(SLACK_PATH, content=body, headers=signed_headers(body)).status_code == 200
    update = telegram_message(update_id=987654)
    assert (
        client.post(TELEGRAM_WEBHOOK_PATH, content=update, headers=telegram_headers()).status_code
        == 200
    )
    assert len(routes.recorded) >= before + 1  # Slack's retry of a known event id adds nothing
    assert client.get("/healthz").status_code == 200


# -- the routes ----------------------------------------------------------------------------------


def test_slack_events_unsigned(client: TestClient, routes: Routes) -> None:
    @FUZZ
    @given(body=bodies(), headers=extra_headers(), content_type=content_types)
    def fuzz(body: bytes, headers: dict[str, str], content_type: str) -> None:
        all_headers = {"Content-Type": content_type, **headers}
        assert send(
            client,
            "POST /slack/events (unsigned)",
            "POST",
            SLACK_PATH,
            content=body,
            headers=all_headers,
        ) in {401, 413, 400}

    fuzz()
    still_serving(client, routes)


def test_slack_events_signed(client: TestClient, routes: Routes) -> None:
    @FUZZ
    @given(
        shaped=slack_events() | st.tuples(bodies(), content_types),
        retry=st.booleans(),
    )
    def fuzz(shaped: tuple[bytes, str], retry: bool) -> None:
        body, content_type = shaped
        headers = signed_headers(body, content_type=content_type)
        if retry:
            headers["X-Slack-Retry-Num"] = "1"
        send(
            client, "POST /slack/events (signed)", "POST", SLACK_PATH, content=body, headers=headers
        )

    fuzz()
    still_serving(client, routes)


def test_telegram_webhook(client: TestClient, routes: Routes) -> None:
    @FUZZ
    @given(
        body=bodies() | telegram_updates(),
        headers=extra_headers(),
        right_secret=st.booleans(),
    )
    def fuzz(body: bytes, headers: dict[str, str], right_secret: bool) -> None:
        if right_secret:
            headers = {**headers, TELEGRAM_SECRET_HEADER: TELEGRAM_SECRET}
        send(
            client,
            "POST /telegram/webhook",
            "POST",
            TELEGRAM_WEBHOOK_PATH,
            content=body,
            headers=headers,
        )

    fuzz()
    still_serving(client, routes)


API_ROUTES = [
    ("POST", "/invitations"),
    ("POST", "/invitations/batch"),
    ("GET", "/invitations/{id}"),
    ("GET", "/suppressions"),
    ("POST", "/suppressions"),
    ("DELETE", "/suppressions"),
    ("DELETE", "/customers/{id}"),
    ("GET", "/openapi.json"),
]


def test_rest_api(client: TestClient, routes: Routes, app: App) -> None:
    admin = create_key(app.db, scope=Scope.ADMIN, name="fuzz").key

    @FUZZ
    @given(
        route=st.sampled_from(API_ROUTES),
        method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]) | st.none(),
        segment=st.text(alphabet=string.ascii_letters + string.digits + "-_.~:%", max_size=40),
        query=st.dictionaries(
            st.sampled_from(["limit", "cursor", "status", "channel", "x"]), header_text, max_size=3
        ),
        body=bodies(),
        headers=extra_headers(),
        keyed=st.booleans(),
    )
    def fuzz(
        route: tuple[str, str],
        method: str | None,
        segment: str,
        query: dict[str, str],
        body: bytes,
        headers: dict[str, str],
        keyed: bool,
    ) -> None:
        verb, template = route
        path = API_PREFIX + template.replace("{id}", segment or "x")
        if keyed:
            headers = {**headers, "Authorization": f"Bearer {admin}"}
        send(
            client,
            f"{API_PREFIX}/...",
            method or verb,
            path,
            params=query,
            content=body,
            headers=headers,
        )

    fuzz()
    still_serving(client, routes)


def test_healthz_and_unknown_paths(client: TestClient, routes: Routes) -> None:
    @FUZZ
    @given(
        path=st.sampled_from(["/healthz", "/", "/slack", "/telegram/webhook/x", "/api/v1", "/%ff"]),
        method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"]),
        body=bodies(),
        headers=extra_headers(),
    )
    def fuzz(path: str, method: str, body: bytes, headers: dict[str, str]) -> None:
        send(client, "/healthz and others", method, path, content=body, headers=headers)

    fuzz()
    still_serving(client, routes)
