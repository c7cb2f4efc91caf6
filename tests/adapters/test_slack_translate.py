"""The Slack adapter's pure parts: events and button presses in, Block Kit out, errors mapped."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters import slack_blocks as kit
from adapters.slack import ForEngine, Ignored, translate_answer, translate_event
from adapters.slack_delivery import SlackRetryPolicy, call_slack
from bot.errors import DeliveryError, RateLimitedError, RecipientUnreachableError
from bot.messages import (
    Choice,
    ChoiceStyle,
    MessageKind,
    OutgoingMessage,
    ReviewCard,
    ReviewStep,
)
from tests.fakes.slack_api import FakeSlackAPI, button_press, dm_event

ANN = "U0ANN0001"


def test_a_direct_message_is_text_with_the_event_id() -> None:
    result = translate_event(dm_event(ANN, "8 &amp; fine &lt;3", event_id="Ev01"))
    assert isinstance(result, ForEngine)
    assert result.dm == "D0ANN0001"
    msg = result.message
    assert (msg.channel, msg.user_id, msg.kind, msg.text) == ("slack", ANN, "text", "8 & fine <3")
    assert msg.event_id == "slack:Ev01"


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"channel_type": "channel"}, "message outside a direct message"),
        ({"bot_id": "B1"}, "message from a bot"),
        ({"subtype": "message_changed"}, "message subtype message_changed"),
        ({"subtype": "message_deleted"}, "message subtype message_deleted"),
    ],
)
def test_what_is_ignored(extra: dict[str, Any], reason: str) -> None:
    assert translate_event(dm_event(ANN, "hi", **extra)) == Ignored(reason)


def test_a_file_without_text_is_unsupported() -> None:
    result = translate_event(dm_event(ANN, "", subtype="file_share"))
    assert isinstance(result, ForEngine) and result.message.kind == MessageKind.UNSUPPORTED


def nps_question() -> OutgoingMessage:
    return OutgoingMessage(
        channel="slack",
        user_id=ANN,
        text="How likely?",
        choices=tuple(Choice(str(v), f"a:nps:{v}") for v in range(11)),
        choice_style=ChoiceStyle.SCALE,
        question_id="nps",
        question_type="nps",
    )


def test_a_button_press_is_its_payload_and_names_the_message() -> None:
    rendered = kit.render_question(nps_question())
    message = {"ts": "1.000001", **rendered}
    result = translate_answer(button_press(ANN, "D0ANN0001", message, "a:nps:4"))
    assert isinstance(result, ForEngine)
    assert (result.message.kind, result.message.payload) == (MessageKind.BUTTON, "a:nps:4")
    assert (result.message_ts, result.message_text, result.label) == (
        "1.000001",
        "How likely?",
        "4",
    )
    assert result.message.event_id is not None
    assert result.message.event_id.startswith(f"slack-action:{ANN}:")


def test_scales_and_options_are_laid_out_as_buttons() -> None:
    nps = kit.render_question(nps_question())
    rows = [[e["value"] for e in b["elements"]] for b in nps["blocks"] if b["type"] == "actions"]
    assert rows == [[f"a:nps:{v}" for v in range(6)], [f"a:nps:{v}" for v in range(6, 11)]]
    options = kit.render_question(
        OutgoingMessage(
            channel="slack",
            user_id=ANN,
            text="Which?",
            choices=(Choice("Price", "a:why:price"), Choice("Speed", "a:why:speed")),
        )
    )
    assert [b["type"] for b in options["blocks"]] == ["section", "actions"]
    plain = kit.render_question(OutgoingMessage(channel="slack", user_id=ANN, text="Thanks!"))
    assert plain["blocks"] == [
        {"type": "section", "text": {"type": "plain_text", "text": "Thanks!", "emoji": True}}
    ]


def test_an_alert_shows_everything_and_only_the_buttons_still_useful() -> None:
    card = ReviewCard(
        review_id=7,
        status="acknowledged",
        customer="Ann <Lee> (U0ANN0001)",
        channel="slack",
        flow_id="post_interaction",
        scores=("NPS 2 of 10",),
        texts=(("fix_first", "Too slow", "negative 91%"),),
        reasons=("NPS 2 (detractor)", "negative (91%)"),
        history=(
            ReviewStep("acknowledged", "U0AGENT01", datetime(2026, 11, 22, 12, 1, tzinfo=UTC)),
        ),
    )
    alert = kit.render_alert(card)
    text = str(alert["blocks"])
    assert "Ann &lt;Lee&gt; (U0ANN0001)" in text
    assert "*fix_first* (negative 91%)\\n> Too slow" in text
    assert "• NPS 2 (detractor)\\n• negative (91%)" in text
    assert "Acknowledged by <@U0AGENT01> at 2026-11-22 12:01 UTC" in text
    actions = next(b for b in alert["blocks"] if b["type"] == "actions")["elements"]
    assert [a["action_id"] for a in actions] == [kit.RESOLVE_ACTION, kit.REPLY_ACTION]
    assert all(a["value"] == "7" for a in actions)


def history_of(card: ReviewCard) -> str:
    alert = kit.render_alert(card)
    (context,) = [b for b in alert["blocks"] if b["type"] == "context"]
    return str(context["elements"][0]["text"])


def test_long_notes_are_shortened_so_every_history_line_shows() -> None:
    at = datetime(2026, 11, 22, 12, 1, tzinfo=UTC)
    note = "Refund & credit <issued>. " * 115  # 2990 characters, 3680 once escaped
    steps = (
        ReviewStep("resolved", "U0AGENT01", at, note),
        ReviewStep("replied", "U0AGENT02", at, "Sorry & thanks"),
    )
    card = ReviewCard(
        review_id=7, status="resolved", customer="Ann", channel="slack", flow_id="f", history=steps
    )
    resolved, replied = history_of(card).split("\n")
    assert resolved.startswith("Resolved by <@U0AGENT01> at 2026-11-22 12:01 UTC: Refund &amp; ")
    assert resolved.endswith("…") and len(resolved) < 800  # 500 characters, escaped
    assert replied == "Replied by <@U0AGENT02> at 2026-11-22 12:01 UTC: Sorry &amp; thanks"
    # Many long notes: shorter (here: left out), and every step still has its line.
    many = replace(card, history=(*steps[:1] * 30, steps[1]))
    lines = history_of(many).split("\n")
    assert len(lines) == 31 and lines[-1] == "Replied by <@U0AGENT02> at 2026-11-22 12:01 UTC"
    # Too many steps for one text even so: the latest ones, and a count of the others.
    endless = replace(card, history=(*steps[:1] * 99, steps[1]))
    text = history_of(endless)
    assert len(text) <= kit.MAX_SECTION
    first, *shown = text.split("\n")
    assert first == f"… {100 - len(shown)} earlier steps not shown"
    assert shown[-1] == "Replied by <@U0AGENT02> at 2026-11-22 12:01 UTC"


async def test_slack_errors_become_the_projects_errors() -> None:
    policy = SlackRetryPolicy(attempts=3, backoff=0.01, max_retry_after=1.0)
    with FakeSlackAPI() as fake:
        client = AsyncWebClient(token=fake.token, base_url=fake.base_url)

        async def post() -> dict[str, Any]:
            return await call_slack(
                lambda: client.chat_postMessage(channel="C1", text="x"), what="post", policy=policy
            )

        for code in ("not_in_channel", "channel_not_found", "account_inactive"):
            fake.fail("chat.postMessage", code)
            with pytest.raises(RecipientUnreachableError, match=code):
                await post()
        fake.fail("chat.postMessage", "invalid_blocks")
        with pytest.raises(DeliveryError, match="Slack refused the request: invalid_blocks"):
            await post()
        fake.fail("chat.postMessage", "ratelimited", status=429, retry_after=30)
        with pytest.raises(RateLimitedError) as raised:
            await post()
        assert raised.value.retry_after == 30
        fake.fail("chat.postMessage", "ratelimited", status=429, retry_after=0.05, times=2)
        assert (await post())["ok"] is True
        fake.fail("chat.postMessage", "internal_error", status=500, times=3)
        with pytest.raises(DeliveryError, match="internal_error"):
            await post()
