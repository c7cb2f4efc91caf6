"""The Telegram adapter's pure parts: updates → engine messages, engine messages → keyboards."""

from __future__ import annotations

from typing import Any

import pytest
from telegram import Update

from adapters.telegram import (
    Blocked,
    ForEngine,
    Ignored,
    NotPrivate,
    render_message,
    translate_update,
)
from adapters.telegram_links import (
    DeepLinkError,
    StartPayload,
    decode_start_payload,
    deep_link,
    encode_start_payload,
)
from bot.messages import Choice, ChoiceStyle, MessageKind, OutgoingMessage
from tests.fakes.telegram_api import BOT_USER, FakeTelegramAPI

fake = FakeTelegramAPI()  # only its update builders: no server is started


def update(data: dict[str, Any], update_id: int = 7) -> Update:
    return Update.de_json({"update_id": update_id, **data}, None)


def engine_message(data: dict[str, Any]) -> ForEngine:
    result = translate_update(update(data))
    assert isinstance(result, ForEngine), result
    return result


def test_private_text_becomes_a_text_message_with_profile_and_event_id() -> None:
    t = engine_message(fake.message(42, "8/10", first_name="Lucía", language_code="es-MX"))
    msg = t.message
    assert (msg.channel, msg.user_id, msg.kind, msg.text) == ("telegram", "42", "text", "8/10")
    assert (msg.first_name, msg.locale, msg.event_id) == ("Lucía", "es-MX", "tg:7")
    assert msg.platform_message_id is not None and t.chat_id == 42 and t.press is None


@pytest.mark.parametrize(
    ("text", "flow", "context", "bad"),
    [
        ("/start", None, {}, False),
        ("/start@cx_test_bot", None, {}, False),
        ("/start post_purchase", "post_purchase", {}, False),
        (
            "/start post_purchase-" + encode_start_payload(None, {"order_id": "A-1001"})[1:],
            "post_purchase",
            {"order_id": "A-1001"},
            False,
        ),
        ("/start no$such!", None, {}, True),
        ("/start Post_Purchase", None, {}, True),
    ],
)
def test_start_with_deep_link_payload(
    text: str, flow: str | None, context: dict[str, str], bad: bool
) -> None:
    t = engine_message(fake.message(42, text))
    assert t.message.kind == MessageKind.START
    assert (t.message.flow_id, t.message.context, t.bad_link) == (flow, context, bad)


def test_other_commands_reach_the_engine_as_text() -> None:
    assert engine_message(fake.message(42, "/stop")).message.text == "/stop"


@pytest.mark.parametrize(
    "content",
    [
        {"photo": [{"file_id": "p", "file_unique_id": "u", "width": 1, "height": 1}]},
        {
            "sticker": {
                "file_id": "s",
                "file_unique_id": "u",
                "width": 1,
                "height": 1,
                "is_animated": False,
                "is_video": False,
                "type": "regular",
            }
        },
        {"voice": {"file_id": "v", "file_unique_id": "u", "duration": 3}},
        {"document": {"file_id": "d", "file_unique_id": "u"}},
        {"location": {"latitude": 1.0, "longitude": 2.0}},
    ],
)
def test_media_and_locations_are_unsupported(content: dict[str, Any]) -> None:
    t = engine_message(fake.message(42, None, **content))
    assert t.message.kind == MessageKind.UNSUPPORTED


def test_edits_channel_posts_and_service_messages_are_ignored() -> None:
    assert isinstance(translate_update(update(fake.message(42, "9", edited=True))), Ignored)
    post = {"message_id": 1, "date": 0, "chat": {"id": -100, "type": "channel"}, "text": "hi"}
    assert isinstance(translate_update(update({"channel_post": post})), Ignored)
    service = fake.message(42, None, new_chat_title="x")
    assert translate_update(update(service)) == Ignored("service message")


def test_group_commands_get_a_private_only_reply_and_other_group_messages_nothing() -> None:
    group = translate_update(update(fake.message(-1001, "/start@cx_test_bot", chat_type="group")))
    assert group == NotPrivate(chat_id=-1001, locale="en")
    chatter = fake.message(-1001, "hello all", chat_type="supergroup")
    assert isinstance(translate_update(update(chatter)), Ignored)


def callback(chat_id: int, data: str, *, chat_type: str = "private") -> dict[str, Any]:
    keyboard = {"inline_keyboard": [[{"text": "4 🙂", "callback_data": "a:csat:4"}]]}
    message = {
        "message_id": 5,
        "date": 0,
        "chat": {"id": chat_id, "type": chat_type},
        "from": BOT_USER,
        "text": "How satisfied?",
        "reply_markup": keyboard,
    }
    return {
        "callback_query": {
            "id": "q9",
            "from": fake.user(chat_id if chat_type == "private" else 777),
            "chat_instance": "c",
            "message": message,
            "data": data,
        }
    }


def test_button_press_carries_payload_label_and_the_message_to_edit() -> None:
    t = engine_message(callback(42, "a:csat:4"))
    assert (t.message.kind, t.message.payload, t.message.user_id) == ("button", "a:csat:4", "42")
    assert t.press is not None
    assert (t.press.query_id, t.press.message_id, t.press.label) == ("q9", 5, "4 🙂")
    assert t.press.message_text == "How satisfied?"
    forged = engine_message(callback(42, "a:csat:99"))
    assert forged.press is not None and forged.press.label is None


def test_buttons_in_groups_are_answered_with_the_private_only_notice() -> None:
    result = translate_update(update(callback(-1001, "a:csat:4", chat_type="group")))
    assert result == NotPrivate(chat_id=-1001, locale="en", query_id="q9")


def test_blocking_the_bot_is_noticed() -> None:
    member = {"status": "member", "user": BOT_USER}
    change = {
        "chat": {"id": 42, "type": "private"},
        "from": fake.user(42),
        "date": 0,
        "old_chat_member": member,
        "new_chat_member": {"status": "kicked", "user": BOT_USER, "until_date": 0},
    }
    assert translate_update(update({"my_chat_member": change})) == Blocked(user_id="42")


def scale(qtype: str, lo: int, hi: int) -> OutgoingMessage:
    choices = tuple(Choice(label=str(v), payload=f"a:{qtype}:{v}") for v in range(lo, hi + 1))
    return OutgoingMessage(
        channel="telegram",
        user_id="42",
        text="Q?",
        choices=choices,
        choice_style=ChoiceStyle.SCALE,
        question_id=qtype,
        question_type=qtype,
    )


def rows(message: OutgoingMessage) -> list[list[tuple[str, str | None]]]:
    markup = render_message(message)["reply_markup"]
    assert markup is not None
    return [[(b.text, b.callback_data) for b in row] for row in markup.inline_keyboard]  # type: ignore[misc]


def test_nps_on_two_rows_ces_on_one() -> None:
    nps = rows(scale("nps", 0, 10))
    assert [[label for label, _ in row] for row in nps] == [
        ["0", "1", "2", "3", "4", "5"],
        ["6", "7", "8", "9", "10"],
    ]
    assert nps[1][3] == ("9", "a:nps:9")
    assert [[label for label, _ in row] for row in rows(scale("ces", 1, 7))] == [
        ["1", "2", "3", "4", "5", "6", "7"]
    ]


def test_csat_buttons_have_faces_and_keep_their_payloads() -> None:
    assert rows(scale("csat", 1, 5)) == [
        [
            ("1 😠", "a:csat:1"),
            ("2 🙁", "a:csat:2"),
            ("3 😐", "a:csat:3"),
            ("4 🙂", "a:csat:4"),
            ("5 😍", "a:csat:5"),
        ]
    ]


def test_yes_no_on_one_row_and_choices_one_per_row() -> None:
    yes_no = OutgoingMessage(
        channel="telegram",
        user_id="42",
        text="On time?",
        choices=(Choice("Yes", "a:t:yes"), Choice("No", "a:t:no")),
        choice_style=ChoiceStyle.SCALE,
        question_type="yes_no",
    )
    assert rows(yes_no) == [[("Yes", "a:t:yes"), ("No", "a:t:no")]]
    options = OutgoingMessage(
        channel="telegram",
        user_id="42",
        text="What mattered?",
        choices=(Choice("Price", "a:m:price"), Choice("Quality", "a:m:quality")),
        choice_style=ChoiceStyle.OPTIONS,
        question_type="choice",
    )
    assert rows(options) == [[("Price", "a:m:price")], [("Quality", "a:m:quality")]]


def test_plain_text_has_no_keyboard_and_is_cut_to_telegrams_limit() -> None:
    rendered = render_message(OutgoingMessage(channel="telegram", user_id="42", text="x" * 5000))
    assert rendered == {"text": "x" * 4096, "reply_markup": None}


def test_deep_link_payloads_round_trip_within_64_characters() -> None:
    payload = encode_start_payload("post_purchase", {"order_id": "A-1001", "agent": "Zoë"})
    assert payload.startswith("post_purchase-") and len(payload) <= 64
    assert decode_start_payload(payload) == StartPayload(
        "post_purchase", {"order_id": "A-1001", "agent": "Zoë"}
    )
    assert encode_start_payload("post_interaction") == "post_interaction"
    assert decode_start_payload(encode_start_payload(None, {"ticket": "T-9"})) == StartPayload(
        None, {"ticket": "T-9"}
    )
    assert deep_link("@cx_test_bot", payload) == f"https://t.me/cx_test_bot?start={payload}"


def test_deep_link_payloads_that_cannot_be_made_or_read() -> None:
    with pytest.raises(DeepLinkError, match="Telegram allows 64"):
        encode_start_payload("post_purchase", {"order_id": "A" * 60})
    with pytest.raises(DeepLinkError, match="cannot be put"):
        encode_start_payload("Bad-Flow")
    assert not decode_start_payload("x" * 65).valid
    assert not decode_start_payload("post_purchase-%%%").valid
    assert not decode_start_payload("post_purchase-Zm9v").valid  # "foo": not key=value
