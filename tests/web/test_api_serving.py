"""The API inside `cxbot serve`: a helpdesk's POST reaches the customer through the fake Bot API,
now or, scheduled, when its time comes."""

from __future__ import annotations

from pathlib import Path

import httpx

from bot.api_keys import Scope, create_key
from bot.app import build_app
from storage.database import transaction
from storage.invitation_rows import get_invitation
from tests.fakes.serving import running
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.telegram_setup import telegram_settings


async def test_a_helpdesk_invites_through_serve_now_and_later(tmp_path: Path) -> None:
    with FakeTelegramAPI() as fake:
        fake.known_chats.update({42, 43})
        settings = telegram_settings(
            fake, tmp_path, server__port="0", invitations__poll_seconds="0.2"
        )
        app = build_app(settings)
        try:
            key = create_key(app.db, scope=Scope.INVITE, name="helpdesk").key
        finally:
            app.close()
        headers = {"Authorization": f"Bearer {key}"}
        async with running(settings) as (served, url), httpx.AsyncClient(base_url=url) as http:
            schema = await http.get("/api/v1/openapi.json")
            assert schema.status_code == 200 and "/invitations" in schema.json()["paths"]
            now = await http.post(
                "/api/v1/invitations",
                headers=headers,
                json={
                    "channel": "telegram",
                    "user_id": "42",
                    "touchpoint": "support_contact",
                    "interaction_id": "ticket-1",
                    "context": {"ticket_id": "T-1"},
                },
            )
            assert (now.status_code, now.json()) == (201, {"id": "1", "status": "sent"})
            intro, question = await fake.wait_texts(42, 2)
            assert "T-1" in intro and question.startswith("How likely are you to recommend us")

            later = await http.post(
                "/api/v1/invitations",
                headers=headers,
                json={
                    "channel": "telegram",
                    "user_id": "43",
                    "touchpoint": "purchase",
                    "interaction_id": "order-7",
                    "flow_id": "post_purchase",
                    "send_after": 0.5,
                },
            )
            assert later.status_code == 201 and later.json()["status"] == "scheduled"
            await fake.wait_texts(43, 2)
            with transaction(served.db) as s:
                row = get_invitation(s, invitation_id=2)
            assert row is not None and row.status == "sent"
            # A key is required here as anywhere.
            assert (await http.post("/api/v1/invitations", json={})).status_code == 401
