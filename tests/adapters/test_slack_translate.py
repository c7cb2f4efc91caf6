"""The Slack adapter's pure parts: events and button presses in, Block Kit out, errors mapped."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters import slack_blocks as kit
from adapters.retrying import RetryPolicy
from adapters.slack import (
    PROFILE_KEY,
    SlackSender,
    raw_event,
    translate_answer,
    translate_event,
    translate_json,
    translate_support_form,
    translate_support_press,
)
from adapters.slack_delivery import call_slack
from bot.errors import DeliveryError, RateLimitedError, RecipientUnreachableError
from bot.messages import (
    ButtonPress,
    Choice,
    ChoiceStyle,
    Ignored,
    IncomingMessage,
    MessageKind,
    OutgoingMessage,
    ReviewCard,
    ReviewStep,
    ReviewText,
    SentRef,
    SupportAction,
    SupportForm,
    SupportPress,
    SupportSubmission,
)
from tests.fakes.slack_api import (
    FakeSlackAPI,
    block_action,
    button_press,
    dm_event,
    view_submission,
)

ANN = "U0ANN0001"


def test_a_direct_message_is_text_with_the_event_id() -> None:
    msg = translate_event(dm_event(ANN, "8 &amp; fine &lt;3", event_id="Ev01"))
    assert isinstance(msg, IncomingMessage)
    assert (msg.channel, msg.user_id, msg.kind, msg.text) == ("slack", ANN, "text", "8 & fine <3")
    assert msg.event_id == "slack:Ev01"
    assert msg.press is None and msg.first_name is None  # no profile without the listener's


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
    assert isinstance(result, IncomingMessage) and result.kind == MessageKind.UNSUPPORTED


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
    assert isinstance(result, IncomingMessage)
    assert (result.kind, result.payload) == (MessageKind.BUTTON, "a:nps:4")
    assert result.press == ButtonPress(
        query_id=None,
        message_id="1.000001",
        chat="D0ANN0001",
        message_text="How likely?",
        label="4",
    )
    assert result.event_id is not None
    assert result.event_id.startswith(f"slack-action:{ANN}:")


def test_what_is_recorded_is_keyed_by_event_and_press_and_carries_the_profile() -> None:
    profile = {"first_name": "Ann", "last_name": "Lee", "locale": "es-ES"}
    event = {**dm_event(ANN, "9", event_id="Ev02"), PROFILE_KEY: profile}
    raw = raw_event(event)
    assert (raw.event_key, raw.lane) == ("Ev02", f"slack:{ANN}")
    msg = translate_json(raw.body)
    assert isinstance(msg, IncomingMessage)
    assert (msg.text, msg.first_name, msg.last_name, msg.locale) == ("9", "Ann", "Lee", "es-ES")
    plain = translate_json(dm_event(ANN, "9"))  # users.info failed: recorded without profile
    assert isinstance(plain, IncomingMessage) and plain.first_name is None

    message = {"ts": "1.000001", **kit.render_question(nps_question())}
    press = button_press(ANN, "D0ANN0001", message, "a:nps:4")
    raw = raw_event({**press, PROFILE_KEY: profile})
    stamp = press["actions"][0]["action_ts"]
    assert (raw.event_key, raw.lane) == (f"action:{ANN}:{stamp}", f"slack:{ANN}")
    pressed = translate_json(raw.body)
    assert isinstance(pressed, IncomingMessage) and pressed.kind == MessageKind.BUTTON
    assert (pressed.payload, pressed.first_name) == ("a:nps:4", "Ann")
    assert translate_json({"type": "url_verification"}) == Ignored(
        "Slack request of type url_verification"
    )
    with pytest.raises(ValueError, match="event_id"):
        raw_event({"type": "event_callback", "event": {"type": "message", "user": ANN}})
    with pytest.raises(ValueError, match="not a Slack event"):
        translate_json(
            {"type": "block_actions", "actions": [{"action_id": "cxbot_answer_0"}], "user": ANN}
        )


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
        texts=(ReviewText("fix_first", "Too slow", "negative 91%"),),
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


TOO_SLOW = ReviewText("fix_first", "Too slow", "negative 91%", answer_id=31, label="negative")
FIXED = ReviewText(
    "liked",
    "Nice & quick",
    "neutral (corrected)",
    answer_id=32,
    label="neutral",
    corrected_from="positive",
    corrected_by="U0AGENT02",
)


def test_an_alert_with_texts_offers_to_correct_their_labels_and_shows_corrections() -> None:
    card = ReviewCard(
        review_id=7,
        status="resolved",
        customer="Ann",
        channel="slack",
        flow_id="f",
        texts=(TOO_SLOW, FIXED, ReviewText("other", "Pending", None, answer_id=33)),
    )
    alert = kit.render_alert(card)
    text = str(alert["blocks"])
    assert "*fix_first* (negative 91%)\\n> Too slow" in text
    assert "*liked* (positive → corrected to neutral by <@U0AGENT02>)\\n> Nice &amp; quick" in text
    assert "*other* (sentiment pending)" in text
    actions = next(b for b in alert["blocks"] if b["type"] == "actions")["elements"]
    assert [(a["action_id"], a["value"]) for a in actions] == [
        (kit.REPLY_ACTION, "7"),
        (kit.CORRECT_ACTION, "7"),
    ]
    assert kit.ALERT_ACTIONS[kit.CORRECT_ACTION] == SupportAction.CORRECT_LABEL
    # A label corrected before any model labelled the text: no "from".
    unlabelled = replace(FIXED, corrected_from=None, corrected_by="ana@example.com")
    shown = str(kit.render_alert(replace(card, texts=(unlabelled,)))["blocks"])
    assert "(corrected to neutral by ana@example.com)" in shown


LABELS = ("negative", "neutral", "positive")


def correct_form(*texts: ReviewText) -> SupportForm:
    return SupportForm(
        action=SupportAction.CORRECT_LABEL, review_id=7, customer="Ann", texts=texts, labels=LABELS
    )


def select_options(modal: dict[str, Any], block_id: str) -> list[tuple[str, str]]:
    (block,) = [b for b in modal["blocks"] if b.get("block_id") == block_id]
    assert block["element"]["type"] == "static_select"
    return [(o["text"]["text"], o["value"]) for o in block["element"]["options"]]


def test_the_label_modal_of_several_texts_reads_back_the_answer_and_label_chosen() -> None:
    modal = kit.support_modal(correct_form(TOO_SLOW, FIXED), "C0ALERTS1", "1.0")
    assert modal["callback_id"] == kit.CORRECT_VIEW
    assert select_options(modal, kit.TEXT_BLOCK) == [
        ("fix_first: Too slow", "31"),
        ("liked: Nice & quick", "32"),
    ]
    assert select_options(modal, kit.LABEL_BLOCK) == [(x, x) for x in LABELS]
    body = view_submission(
        "U0AGENT01", modal, {}, selected={"answer": {"answer": "32"}, "label": {"label": "neutral"}}
    )
    assert translate_support_form(body) == SupportSubmission(
        action=SupportAction.CORRECT_LABEL,
        actor="U0AGENT01",
        review_id=7,
        text="",
        answer_id=32,
        label="neutral",
    )


def test_the_label_modal_of_one_text_shows_it_and_keeps_its_answer_id() -> None:
    modal = kit.support_modal(correct_form(TOO_SLOW), "C0ALERTS1", "1.0")
    assert [b.get("block_id") for b in modal["blocks"] if b["type"] == "input"] == ["label"]
    assert modal["blocks"][0]["text"]["text"] == "*fix_first* (now negative 91%)\n> Too slow"
    body = view_submission("U0AGENT01", modal, {}, selected={"label": {"label": "positive"}})
    found = translate_support_form(body)
    assert isinstance(found, SupportSubmission)
    assert (found.action, found.review_id, found.answer_id, found.label) == (
        SupportAction.CORRECT_LABEL,
        7,
        31,
        "positive",
    )


@pytest.mark.parametrize(
    ("metadata", "selected", "answer_id", "label"),
    [
        ('{"review_id": 7}', {}, None, None),  # nothing chosen
        ('{"review_id": 7, "answer_id": true}', {"label": {"label": "neutral"}}, None, "neutral"),
        ('{"review_id": 7}', {"answer": {"answer": "x1"}}, None, None),
        ('{"review_id": 7, "answer_id": 31}', {"answer": {"answer": "0"}}, None, None),
        ('{"review_id": 7, "answer_id": 31}', {"label": {"label": " angry "}}, 31, "angry"),
    ],
)
def test_a_label_form_reads_what_it_can_and_leaves_the_rest_to_the_desk(
    metadata: str, selected: dict[str, dict[str, str]], answer_id: int | None, label: str | None
) -> None:
    view = {"type": "modal", "callback_id": kit.CORRECT_VIEW, "private_metadata": metadata}
    found = translate_support_form(view_submission("U0AGENT01", view, {}, selected=selected))
    assert found == SupportSubmission(
        action=SupportAction.CORRECT_LABEL,
        actor="U0AGENT01",
        review_id=7,
        text="",
        answer_id=answer_id,
        label=label,
    )


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
    policy = RetryPolicy(attempts=3, backoff=0.01, max_retry_after=1.0)
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


async def test_the_sender_posts_in_the_dm_closes_in_place_and_answers_privately() -> None:
    policy = RetryPolicy(attempts=2, backoff=0.01)
    with FakeSlackAPI() as fake:
        sender = SlackSender(
            AsyncWebClient(token=fake.token, base_url=fake.base_url), policy=policy
        )
        sent = await sender.send(nps_question())
        dm = "D0ANN0001"
        assert sent == SentRef(message_id=fake.last(dm)["ts"], chat=dm)
        (post,) = fake.requests("chat.postMessage")
        assert post.body["blocks"] == kit.render_question(nps_question())["blocks"]

        await sender.close_question(user_id=ANN, sent=sent, text="How likely?", label="8")
        assert fake.last(dm) == {"ts": sent.message_id, **kit.render_answered("How likely?", "8")}
        await sender.answer_button(user_id=ANN, query_id=None, chat=dm, text=None)
        await sender.answer_button(user_id=ANN, query_id=None, chat=None, text="Already: 8")
        (notice,) = fake.requests("chat.postEphemeral")
        assert notice.body == {"channel": dm, "user": ANN, "text": "Already: 8"}

        fake.fail("chat.postMessage", "account_inactive")
        with pytest.raises(RecipientUnreachableError, match=f"chat.postMessage to {dm}"):
            await sender.send(nps_question())
        with pytest.raises(DeliveryError, match="not a Slack user id"):
            await sender.send(replace(nps_question(), user_id="ann"))


def alert_message() -> dict[str, Any]:
    card = ReviewCard(
        review_id=7, status="open", customer="Ann", channel="slack", flow_id="f", texts=(TOO_SLOW,)
    )
    return {"ts": "1.000007", **kit.render_alert(card)}


@pytest.mark.parametrize(
    ("action_id", "action"),
    [
        (kit.ACK_ACTION, SupportAction.ACKNOWLEDGE),
        (kit.RESOLVE_ACTION, SupportAction.RESOLVE),
        (kit.REPLY_ACTION, SupportAction.REPLY),
        (kit.CORRECT_ACTION, SupportAction.CORRECT_LABEL),
    ],
)
def test_an_alert_button_is_a_press_for_the_support_desk(
    action_id: str, action: SupportAction
) -> None:
    body = block_action("U0AGENT01", "C0ALERTS1", alert_message(), action_id)
    assert translate_support_press(body) == SupportPress(
        action=action, actor="U0AGENT01", review_id=7
    )


def test_an_alert_button_without_a_review_id_or_a_user_is_ignored() -> None:
    body = block_action("U0AGENT01", "C0ALERTS1", alert_message(), kit.ACK_ACTION)
    body["actions"][0]["value"] = "seven"
    assert isinstance(translate_support_press(body), Ignored)
    body = block_action("U0AGENT01", "C0ALERTS1", alert_message(), kit.ACK_ACTION)
    del body["user"]
    assert isinstance(translate_support_press(body), Ignored)
    survey = block_action(
        ANN,
        "D0ANN0001",
        {"ts": "1.0", **kit.render_question(nps_question())},
        f"{kit.ANSWER_ACTION}_0",
    )
    assert isinstance(translate_support_press(survey), Ignored)


def test_a_support_modal_opened_from_a_form_reads_back_as_its_submission() -> None:
    modal = kit.support_modal(
        SupportForm(action=SupportAction.REPLY, review_id=7, customer="Ann"), "C0ALERTS1", "1.0"
    )
    assert modal["blocks"][0]["label"]["text"] == "Message to Ann"
    body = view_submission("U0AGENT01", modal, {"reply": {"text": "  Hello Ann \n"}})
    assert translate_support_form(body) == SupportSubmission(
        action=SupportAction.REPLY, actor="U0AGENT01", review_id=7, text="Hello Ann"
    )
    modal = kit.support_modal(
        SupportForm(action=SupportAction.RESOLVE, review_id=7, customer="Ann"), "C0ALERTS1", "1.0"
    )
    body = view_submission("U0AGENT01", modal, {"note": {"note": "Refunded"}})
    assert translate_support_form(body) == SupportSubmission(
        action=SupportAction.RESOLVE, actor="U0AGENT01", review_id=7, text="Refunded"
    )


@pytest.mark.parametrize(
    "metadata",
    [None, "not json", "[1]", '{"review_id": "1"}', '{"review_id": true}', '{"review_id": 0}'],
)
def test_a_support_form_whose_review_id_cannot_be_read_has_none(metadata: str | None) -> None:
    view: dict[str, Any] = {"type": "modal", "callback_id": kit.RESOLVE_VIEW}
    if metadata is not None:
        view["private_metadata"] = metadata
    found = translate_support_form(view_submission("U0AGENT01", view, {}))
    assert found == SupportSubmission(
        action=SupportAction.RESOLVE, actor="U0AGENT01", review_id=None, text=""
    )


def test_other_modals_are_not_support_forms() -> None:
    view = {"type": "modal", "callback_id": "someone_else"}
    assert isinstance(translate_support_form(view_submission("U0AGENT01", view, {})), Ignored)
