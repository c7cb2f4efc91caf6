"""The support loop in Slack: alerts for flagged replies, and acknowledge / resolve / reply.

`serve` runs with Slack in HTTP mode (and Telegram polling where a customer is on Telegram);
button presses and modal submissions are signed as Slack signs them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.messages import IncomingMessage, MessageKind
from storage.database import transaction
from storage.sentiment import add_score
from storage.tables import Answer, DeliveryFailure, LabelCorrection
from tests.fakes.slack_api import (
    FakeSlackAPI,
    block_action,
    button_press,
    dm_event,
    view_submission,
)
from tests.fakes.slack_setup import (
    AGENT,
    ALERTS,
    STRANGER,
    Served,
    alerts_settled,
    buttons,
    delivery_failures,
    outbox_rows,
    review_events,
    review_items,
    serving,
    slack_settings,
    wait_until,
)
from tests.fakes.telegram_api import FakeTelegramAPI

ANN = "U0ANN0001"
DM = "D0ANN0001"


@pytest.fixture
def fake() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI() as api:
        yield api


@pytest.fixture
async def served(fake: FakeSlackAPI, tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(slack_settings(fake, tmp_path)) as s:
        yield s


async def flagged(fake: FakeSlackAPI, served: Served) -> dict[str, Any]:
    """Ann answers NPS 2 in Slack; the alert that follows."""
    await served.event(dm_event(ANN, "start"))
    await served.interact(button_press(ANN, DM, fake.last(DM), "a:nps:2"))
    await wait_until(lambda: alerts_settled(served.app), what="the alert")
    return fake.last(ALERTS)


def blocks_text(message: dict[str, Any]) -> str:
    return str(message["blocks"])


async def alert_shows(fake: FakeSlackAPI, text: str) -> dict[str, Any]:
    """The alert once it shows `text`.

    An action's own update is skipped when the poster's background pass has claimed the alert
    at that moment; the poster then shows the change itself a moment later, so tests wait.
    """
    await wait_until(lambda: text in blocks_text(fake.last(ALERTS)), what=f"alert with {text!r}")
    return fake.last(ALERTS)


async def test_acknowledge_updates_the_alert_in_place(fake: FakeSlackAPI, served: Served) -> None:
    alert = await flagged(fake, served)
    response = await served.interact(block_action(AGENT, ALERTS, alert, "cxbot_review_ack"))
    assert response.status_code == 200
    assert review_events(served.app) == [("acknowledged", f"slack:{AGENT}", None)]
    assert [i.status for i in review_items(served.app)] == ["acknowledged"]
    now = await alert_shows(fake, "Flagged reply #1 · acknowledged")
    (update,) = fake.requests("chat.update", channel=ALERTS)
    assert update.body["ts"] == alert["ts"]
    assert f"Acknowledged by <@{AGENT}> at " in blocks_text(now)
    assert [label for label, _ in buttons(now)[0]] == ["Resolve", "Reply to customer"]
    assert len(fake.posted(ALERTS)) == 1


async def test_resolve_asks_for_a_note_and_records_it(fake: FakeSlackAPI, served: Served) -> None:
    alert = await flagged(fake, served)
    await served.interact(block_action(AGENT, ALERTS, alert, "cxbot_review_resolve"))
    (opened,) = fake.requests("views.open")
    view = opened.body["view"]
    assert view["callback_id"] == "cxbot_resolve"
    assert view["blocks"][0]["label"]["text"] == "Resolution note"

    empty = await served.interact(view_submission(AGENT, view, {"note": {"note": "  "}}))
    assert empty.json() == {
        "response_action": "errors",
        "errors": {"note": "Please write something first."},
    }
    done = await served.interact(
        view_submission(AGENT, view, {"note": {"note": "Called Ann, refunded the fee"}})
    )
    assert done.status_code == 200 and done.text == ""  # the modal closes
    assert review_events(served.app) == [
        ("resolved", f"slack:{AGENT}", "Called Ann, refunded the fee")
    ]
    assert [i.status for i in review_items(served.app)] == ["resolved"]
    now = await alert_shows(fake, "Flagged reply #1 · resolved")
    assert f"Resolved by <@{AGENT}> at " in blocks_text(now)
    assert "Called Ann, refunded the fee" in blocks_text(now)
    assert [label for label, _ in buttons(now)[0]] == ["Reply to customer"]


async def test_reply_reaches_a_slack_customer_and_is_recorded(
    fake: FakeSlackAPI, served: Served
) -> None:
    alert = await flagged(fake, served)
    await served.interact(block_action(AGENT, ALERTS, alert, "cxbot_review_reply"))
    view = fake.requests("views.open")[0].body["view"]
    assert view["callback_id"] == "cxbot_reply"
    text = "Hi Ann, sorry about the wait. I've escalated your ticket."
    response = await served.interact(view_submission(AGENT, view, {"reply": {"text": text}}))
    assert response.status_code == 200
    (sent,) = fake.requests("chat.postMessage", channel=DM, text=text)
    assert sent.body["blocks"] == [
        {"type": "section", "text": {"type": "plain_text", "text": text, "emoji": True}}
    ]
    assert review_events(served.app) == [("replied", f"slack:{AGENT}", text)]
    assert [i.status for i in review_items(served.app)] == ["acknowledged"]
    await alert_shows(fake, f"Replied by <@{AGENT}> at ")


async def test_a_reply_slack_refuses_is_kept_as_a_failure_of_the_item(
    fake: FakeSlackAPI, served: Served
) -> None:
    alert = await flagged(fake, served)
    await served.interact(block_action(AGENT, ALERTS, alert, "cxbot_review_reply"))
    view = fake.requests("views.open")[0].body["view"]
    fake.fail("chat.postMessage", "account_inactive", channel=DM)
    response = await served.interact(view_submission(AGENT, view, {"reply": {"text": "Hello"}}))
    # Queued and recorded at once: the modal closes; the delivery worker sends it later.
    assert response.status_code == 200 and response.text == ""
    assert review_events(served.app) == [("replied", f"slack:{AGENT}", "Hello")]
    refused = fake.requests("chat.postMessage", channel=DM, text="Hello")
    assert [c.status for c in refused] == [200]  # the fake answers ok:false with HTTP 200
    assert delivery_failures(served.app) == [
        ("review_reply", ANN, f"chat.postMessage to {DM}: account_inactive")
    ]
    (row,) = [r for r in outbox_rows(served.app) if r.purpose == "review_reply"]
    assert row.review_item_id == 1 and row.failed_at is not None and row.sent_at is None
    with transaction(served.app.db) as s:
        (failure,) = s.exec(select(DeliveryFailure))
        assert failure.review_item_id == 1


async def test_a_reply_to_a_customer_on_a_channel_not_served_here_is_refused_in_the_modal(
    fake: FakeSlackAPI, served: Served
) -> None:
    engine = served.app.engine  # a Telegram customer, while this cxbot runs Slack only
    await engine.handle(
        IncomingMessage(channel="telegram", user_id="42", kind=MessageKind.START, first_name="Bo")
    )
    await engine.handle(IncomingMessage(channel="telegram", user_id="42", text="1"))
    await wait_until(lambda: alerts_settled(served.app), what="the alert")
    view = {"type": "modal", "callback_id": "cxbot_reply", "private_metadata": '{"review_id": 1}'}
    submitted = view_submission(AGENT, view, {"reply": {"text": "Hello"}})
    # Not settled: the survey's Telegram messages stay queued, no Telegram runs here.
    response = await served.interact(submitted, settle=False)
    assert response.json() == {
        "response_action": "errors",
        "errors": {
            "reply": "Could not send your reply to the customer: "
            "the telegram channel is not configured in this cxbot"
        },
    }
    assert review_events(served.app) == []
    assert [r for r in outbox_rows(served.app) if r.purpose == "review_reply"] == []


async def test_clicks_from_outside_the_support_team_are_refused(
    fake: FakeSlackAPI, served: Served
) -> None:
    alert = await flagged(fake, served)
    for action in ("cxbot_review_ack", "cxbot_review_resolve", "cxbot_review_reply"):
        response = await served.interact(block_action(STRANGER, ALERTS, alert, action))
        assert response.status_code == 200
    notices = fake.requests("chat.postEphemeral", channel=ALERTS, user=STRANGER)
    assert len(notices) == 3
    assert notices[0].body["text"] == (
        f"Sorry, only the support team (<@{AGENT}>) can work on these alerts."
    )
    assert fake.requests("views.open") == []
    # A forged submission of a modal is refused as well.
    view = {"type": "modal", "callback_id": "cxbot_resolve", "private_metadata": '{"review_id": 1}'}
    refused = await served.interact(view_submission(STRANGER, view, {"note": {"note": "x"}}))
    assert refused.json()["response_action"] == "errors"
    assert review_events(served.app) == []
    assert [i.status for i in review_items(served.app)] == ["open"]


async def test_reply_reaches_a_telegram_customer(fake: FakeSlackAPI, tmp_path: Path) -> None:
    with FakeTelegramAPI() as telegram:
        telegram.known_chats.add(42)
        settings = slack_settings(
            fake,
            tmp_path,
            telegram__token=telegram.token,
            telegram__base_url=telegram.base_url,
        )
        async with serving(settings) as served:
            engine = served.app.engine
            await engine.handle(
                IncomingMessage(
                    channel="telegram", user_id="42", kind=MessageKind.START, first_name="Bo"
                )
            )
            await engine.handle(IncomingMessage(channel="telegram", user_id="42", text="1"))
            await wait_until(lambda: alerts_settled(served.app), what="the alert")
            alert = fake.last(ALERTS)
            assert "Bo (42)" in blocks_text(alert) and "telegram" in blocks_text(alert)
            await served.interact(block_action(AGENT, ALERTS, alert, "cxbot_review_reply"))
            view = fake.requests("views.open")[0].body["view"]
            assert view["blocks"][0]["label"]["text"] == "Message to Bo (42)"
            text = "Bo, we are on it: expect a call today."
            await served.interact(view_submission(AGENT, view, {"reply": {"text": text}}))
            sent = telegram.requests("sendMessage", chat_id=42)
            assert sent[-1].body["text"] == text
            assert review_events(served.app) == [("replied", f"slack:{AGENT}", text)]


def notices_to(fake: FakeSlackAPI, user: str) -> list[str]:
    return [c.body["text"] for c in fake.requests("chat.postEphemeral", user=user)]


async def test_actions_on_a_review_that_does_not_exist_are_refused_clearly(
    fake: FakeSlackAPI, served: Served
) -> None:
    alert = await flagged(fake, served)
    for action in ("cxbot_review_ack", "cxbot_review_resolve", "cxbot_review_reply"):
        press = block_action(AGENT, ALERTS, alert, action)
        press["actions"][0]["value"] = "999"  # an alert that outlived its item
        assert (await served.interact(press)).status_code == 200
    assert notices_to(fake, AGENT) == ["That flagged reply no longer exists."] * 3
    assert fake.requests("views.open") == []
    for callback, values, block in (
        ("cxbot_resolve", {"note": {"note": "Refunded"}}, "note"),
        ("cxbot_reply", {"reply": {"text": "Hello"}}, "reply"),
    ):
        view = {"type": "modal", "callback_id": callback, "private_metadata": '{"review_id": 999}'}
        response = await served.interact(view_submission(AGENT, view, values))
        assert response.status_code == 200
        assert response.json() == {
            "response_action": "errors",
            "errors": {block: "That flagged reply no longer exists."},
        }
    assert review_events(served.app) == []
    assert [i.status for i in review_items(served.app)] == ["open"]
    assert fake.requests("chat.postMessage", text="Hello") == []


@pytest.mark.parametrize(
    "metadata",
    [None, "not json", "[1]", '{"review_id": "1"}', '{"review_id": true}', '{"other": 1}'],
)
async def test_a_form_without_a_readable_review_id_is_refused(
    fake: FakeSlackAPI, served: Served, metadata: str | None
) -> None:
    await flagged(fake, served)
    view: dict[str, Any] = {"type": "modal", "callback_id": "cxbot_resolve"}
    if metadata is not None:
        view["private_metadata"] = metadata
    response = await served.interact(view_submission(AGENT, view, {"note": {"note": "Done"}}))
    assert response.status_code == 200
    assert response.json()["response_action"] == "errors"
    assert "out of date" in response.json()["errors"]["note"]
    assert review_events(served.app) == []
    assert [i.status for i in review_items(served.app)] == ["open"]


async def test_a_second_resolve_keeps_its_modal_open_and_names_who_resolved(
    fake: FakeSlackAPI, tmp_path: Path
) -> None:
    other = "U0AGENT02"
    fake.profiles[AGENT] = {"id": AGENT, "real_name": "Alice Agent", "profile": {}}
    settings = slack_settings(fake, tmp_path, slack__support_users=f"{AGENT},{other}")
    async with serving(settings) as served:
        alert = await flagged(fake, served)
        # Both agents open the Resolve modal on the same alert, then both submit.
        await served.interact(block_action(AGENT, ALERTS, alert, "cxbot_review_resolve"))
        await served.interact(block_action(other, ALERTS, alert, "cxbot_review_resolve"))
        first, second = (c.body["view"] for c in fake.requests("views.open"))
        done = await served.interact(view_submission(AGENT, first, {"note": {"note": "Refunded"}}))
        late = await served.interact(view_submission(other, second, {"note": {"note": "Called"}}))
        assert done.text == ""
        assert late.json()["response_action"] == "errors"
        error = late.json()["errors"]["note"]
        assert error.startswith("Already resolved by Alice Agent at ")
        assert error.endswith("; your note was not saved.")
        assert review_events(served.app) == [("resolved", f"slack:{AGENT}", "Refunded")]


async def test_buttons_of_an_out_of_date_alert_say_what_happened(
    fake: FakeSlackAPI, served: Served
) -> None:
    alert = await flagged(fake, served)  # still shows Acknowledge and Resolve
    await served.interact(block_action(AGENT, ALERTS, alert, "cxbot_review_resolve"))
    view = fake.requests("views.open")[0].body["view"]
    await served.interact(view_submission(AGENT, view, {"note": {"note": "Refunded"}}))
    for action in ("cxbot_review_ack", "cxbot_review_resolve"):
        response = await served.interact(block_action(AGENT, ALERTS, alert, action))
        assert response.status_code == 200
    notices = notices_to(fake, AGENT)
    assert len(notices) == 2
    for notice in notices:
        assert notice.startswith(f"Flagged reply #1 is already resolved (by <@{AGENT}> at ")
    assert len(fake.requests("views.open")) == 1  # no second Resolve modal
    # Replying to the customer of a resolved item is still allowed.
    await served.interact(block_action(AGENT, ALERTS, alert, "cxbot_review_reply"))
    reply_view = fake.requests("views.open")[-1].body["view"]
    assert reply_view["callback_id"] == "cxbot_reply"
    await served.interact(view_submission(AGENT, reply_view, {"reply": {"text": "All done"}}))
    assert review_events(served.app) == [
        ("resolved", f"slack:{AGENT}", "Refunded"),
        ("replied", f"slack:{AGENT}", "All done"),
    ]
    assert [i.status for i in review_items(served.app)] == ["resolved"]


async def test_a_long_resolution_note_leaves_later_history_visible(
    fake: FakeSlackAPI, served: Served
) -> None:
    alert = await flagged(fake, served)
    await served.interact(block_action(AGENT, ALERTS, alert, "cxbot_review_resolve"))
    view = fake.requests("views.open")[0].body["view"]
    note = ("Refund & credit issued. " * 124).strip()  # under the modal's 3000 characters
    await served.interact(view_submission(AGENT, view, {"note": {"note": note}}))
    await served.interact(block_action(AGENT, ALERTS, alert, "cxbot_review_reply"))
    view = fake.requests("views.open")[-1].body["view"]
    await served.interact(view_submission(AGENT, view, {"reply": {"text": "We refunded you"}}))
    now = await alert_shows(fake, f"Replied by <@{AGENT}> at ")
    (history,) = [b for b in now["blocks"] if b["type"] == "context"]
    text = history["elements"][0]["text"]
    assert len(text) <= 3000
    resolved, replied = text.split("\n")
    assert resolved.startswith(f"Resolved by <@{AGENT}> at ") and resolved.endswith("…")
    assert replied.endswith(": We refunded you")
    assert review_events(served.app)[0] == ("resolved", f"slack:{AGENT}", note)


def label_corrections(served: Served) -> list[tuple[int, str, str, str | None, str]]:
    """(answer id, old label, new label, model version, actor) of every stored correction."""
    with transaction(served.app.db) as s:
        rows = s.exec(select(LabelCorrection).order_by(col(LabelCorrection.id)))
        return [(f.answer_id, f.old_label, f.new_label, f.model_version, f.actor) for f in rows]


async def flagged_with_a_label(fake: FakeSlackAPI, served: Served) -> tuple[int, dict[str, Any]]:
    """Ann answers NPS 2 and why; the model labels the text negative. Its answer id, and the
    alert once it shows the label."""
    await flagged(fake, served)
    await served.event(dm_event(ANN, "Too slow, nobody answered"))
    with transaction(served.app.db) as s:
        answer = s.exec(select(Answer).where(Answer.question_id == "fix_first")).one()
        assert answer.id is not None
        # What the sentiment worker stores (it is off in these tests).
        add_score(
            s,
            answer_id=answer.id,
            label="negative",
            confidence=0.93,
            model_id="tests/sentiment-model",
            model_version="v7",
        )
    alert = await alert_shows(fake, "*fix_first* (negative 93%)")
    await wait_until(lambda: alerts_settled(served.app), what="the alert's update")
    return answer.id, alert


async def test_a_support_user_corrects_a_label_from_the_alert(
    fake: FakeSlackAPI, served: Served
) -> None:
    answer_id, alert = await flagged_with_a_label(fake, served)
    assert ("Correct label", "1") in buttons(alert)[0]
    updates_before = len(fake.requests("chat.update", channel=ALERTS))
    await served.interact(block_action(AGENT, ALERTS, alert, "cxbot_review_label"))
    (opened,) = fake.requests("views.open")
    view = opened.body["view"]
    assert view["callback_id"] == "cxbot_label"
    assert "Too slow, nobody answered" in str(view["blocks"])  # the one text, shown
    options = view["blocks"][-1]["element"]["options"]
    assert [o["value"] for o in options] == ["negative", "neutral", "positive"]

    same = await served.interact(
        view_submission(AGENT, view, {}, selected={"label": {"label": "negative"}})
    )
    assert same.json() == {
        "response_action": "errors",
        "errors": {"label": "Label not corrected: the text is labelled negative already."},
    }
    done = await served.interact(
        view_submission(AGENT, view, {}, selected={"label": {"label": "neutral"}})
    )
    assert done.status_code == 200 and done.text == ""  # the modal closes
    assert label_corrections(served) == [(answer_id, "negative", "neutral", "v7", f"slack:{AGENT}")]
    assert review_events(served.app) == [
        ("label_corrected", f"slack:{AGENT}", f"answer #{answer_id}: negative → neutral")
    ]
    shown = f"negative → corrected to neutral by <@{AGENT}>"
    now = await alert_shows(fake, shown)
    update = fake.requests("chat.update", channel=ALERTS)[updates_before:][-1]
    assert update.body["ts"] == alert["ts"] and shown in str(update.body["blocks"])
    assert f"Label corrected by <@{AGENT}> at " in blocks_text(now)
    assert [i.status for i in review_items(served.app)] == ["open"]  # a label is not a status


async def test_a_label_correction_from_outside_the_support_team_stores_nothing(
    fake: FakeSlackAPI, served: Served
) -> None:
    answer_id, alert = await flagged_with_a_label(fake, served)
    await served.interact(block_action(STRANGER, ALERTS, alert, "cxbot_review_label"))
    assert fake.requests("views.open") == []
    (notice,) = fake.requests("chat.postEphemeral", channel=ALERTS, user=STRANGER)
    assert notice.body["text"] == (
        f"Sorry, only the support team (<@{AGENT}>) can work on these alerts."
    )
    # A forged submission of the modal is refused as well.
    meta = f'{{"review_id": 1, "answer_id": {answer_id}}}'
    view = {"type": "modal", "callback_id": "cxbot_label", "private_metadata": meta}
    refused = await served.interact(
        view_submission(STRANGER, view, {}, selected={"label": {"label": "positive"}})
    )
    assert refused.json() == {
        "response_action": "errors",
        "errors": {"label": "Support users only."},
    }
    assert label_corrections(served) == [] and review_events(served.app) == []
