"""Slack in Socket Mode: the real Socket Mode client against a local websocket fake."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.slack_api import FakeSlackAPI, SocketModeFake, button_press, dm_event
from tests.fakes.slack_setup import answers, inbox_rows, serving, settled, slack_settings

ANN = "U0ANN0001"
DM = "D0ANN0001"


async def test_a_survey_over_socket_mode(tmp_path: Path) -> None:
    with FakeSlackAPI() as fake:
        async with SocketModeFake() as socket:
            fake.socket_url = socket.url
            settings = slack_settings(
                fake,
                tmp_path,
                slack__mode="socket",
                slack__app_token=fake.app_token,
                slack__signing_secret="",
            )
            async with serving(settings) as served:
                (opened,) = fake.requests("apps.connections.open")
                assert opened.status == 200
                health = await served.http.get(f"{served.url}/healthz")
                assert health.json()["channels"] == ["slack (socket)"]
                # Nothing is mounted at /slack/events: Socket Mode needs no public URL.
                assert (await served.http.post(f"{served.url}/slack/events")).status_code == 404

                start = dm_event(ANN, "start", event_id="Ev0SOCKET1")
                ack = await socket.send("events_api", start)
                assert set(ack) == {"envelope_id"}
                # Acknowledged once recorded in the inbox; processed and delivered after that.
                assert [r.event_key for r in inbox_rows(served.app)] == ["Ev0SOCKET1"]
                await settled(served.app)
                assert len(fake.posted(DM)) == 2
                # Slack redelivers an envelope it thinks was lost: handled once.
                await socket.send("events_api", start)
                await settled(served.app)
                assert len(fake.posted(DM)) == 2
                assert len(inbox_rows(served.app)) == 1

                press = button_press(ANN, DM, fake.last(DM), "a:nps:8")
                await socket.send("interactive", press)
                assert inbox_rows(served.app)[-1].event_key.startswith(f"action:{ANN}:")
                await settled(served.app)
                assert fake.posted(DM)[1]["text"].endswith("✓ 8")
                assert fake.last(DM)["text"] == "What would have made it a 10?"
                assert answers(served.app, ANN) == [("nps", 8, None)]
