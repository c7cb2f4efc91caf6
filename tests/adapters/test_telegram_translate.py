"""The Telegram adapter's pure parts: an update → what it means for cxbot (`Inbound`), an
update's JSON → its inbox record (`raw_update`), engine messages → inline keyboards."""

from __future__ import annotations

import json
from typing import Any

import pytest
from telegram import CallbackQuery, Chat, InaccessibleMessage, Update, User

from adapters.telegram import (
    raw_update,
    render_message,
    translate_json,
    translate_recorded,
    translate_update,
)
from adapters.telegram_links import (
    DeepLinkError,
    StartPayload,
    decode_start_payload,
    deep_link,
    encode_start_payload,
)
from bot.messages import (
    ButtonPress,
    Choice,
    ChoiceStyle,
    Ignored,
    IncomingMessage,
    MessageKind,
    Notice,
    OutgoingMessage,
    RawUpdate,
    Unreachable,
)
from tests.fakes.telegram_api import BOT_USER, FakeTelegramAPI

fake = FakeTelegramAPI()  # only its update builders: no server is started

PRIVATE_ONLY = "I only run surveys in private chats. Please message me directly."
PRIVATE_ONLY_ES = "Solo hago encuestas en chats privados. Escríbeme directamente."


def update(data: dict[str, Any], update_id: int = 7) -> Update:
    return Update.de_json({"update_id": update_id, **data}, None)


def engine_message(data: dict[str, Any]) -> IncomingMessage:
    result = translate_update(update(data))
    assert isinstance(result, IncomingMessage), result
    return result


def test_private_text_becomes_a_text_message_with_profile_and_event_id() -> None:
    msg = engine_message(fake.message(42, "8/10", first_name="Lucía", language_code="es-MX"))
    assert (msg.channel, msg.user_id, msg.kind, msg.text) == ("telegram", "42", "text", "8/10")
    assert (msg.first_name, msg.locale, msg.event_id) == ("Lucía", "es-MX", "tg:7")
    assert msg.platform_message_id is not None and int(msg.user_id) == 42
    assert msg.press is None and not msg.bad_link


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
    msg = engine_message(fake.message(42, text))
    assert msg.kind == MessageKind.START
    assert (msg.flow_id, msg.context, msg.bad_link) == (flow, context, bad)


def test_other_commands_reach_the_engine_as_text() -> None:
    msg = engine_message(fake.message(42, "/stop"))
    assert (msg.kind, msg.text) == (MessageKind.TEXT, "/stop")


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
    msg = engine_message(fake.message(42, None, **content))
    assert (msg.kind, msg.user_id, msg.text) == (MessageKind.UNSUPPORTED, "42", None)


def test_edits_channel_posts_and_service_messages_are_ignored() -> None:
    assert isinstance(translate_update(update(fake.message(42, "9", edited=True))), Ignored)
    post = {"message_id": 1, "date": 0, "chat": {"id": -100, "type": "channel"}, "text": "hi"}
    assert isinstance(translate_update(update({"channel_post": post})), Ignored)
    assert isinstance(translate_update(update({"edited_channel_post": post})), Ignored)
    service = fake.message(42, None, new_chat_title="x")
    assert translate_update(update(service)) == Ignored("service message")
    assert isinstance(translate_update(update({})), Ignored)  # a type cxbot does not ask for


def test_group_commands_get_a_private_only_notice_and_other_group_messages_nothing() -> None:
    group = translate_update(update(fake.message(-1001, "/start@cx_test_bot", chat_type="group")))
    assert group == Notice(channel="telegram", recipient="-1001", text=PRIVATE_ONLY)
    chatter = fake.message(-1001, "hello all", chat_type="supergroup")
    assert isinstance(translate_update(update(chatter)), Ignored)


def test_the_private_only_notice_speaks_the_senders_language() -> None:
    group = fake.message(-1001, "/help", chat_type="supergroup", language_code="es-ES")
    assert translate_update(update(group)) == Notice(
        channel="telegram", recipient="-1001", text=PRIVATE_ONLY_ES
    )


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
    msg = engine_message(callback(42, "a:csat:4"))
    assert (msg.kind, msg.payload, msg.user_id) == ("button", "a:csat:4", "42")
    assert (msg.event_id, msg.platform_message_id) == ("tg:7", "5")
    assert msg.press == ButtonPress(
        query_id="q9", message_id="5", message_text="How satisfied?", label="4 🙂"
    )
    forged = engine_message(callback(42, "a:csat:99"))
    assert forged.press is not None and forged.press.label is None
    assert forged.press.message_id == "5"


def test_a_press_on_a_message_telegram_no_longer_shows_has_no_message_to_edit() -> None:
    """Telegram sends an InaccessibleMessage for old messages: no text, label or id to edit."""
    ann = User(id=42, is_bot=False, first_name="Ann")
    gone = InaccessibleMessage(chat=Chat(id=42, type="private"), message_id=5)
    query = CallbackQuery(id="q9", from_user=ann, chat_instance="c", message=gone, data="a:nps:9")
    msg = translate_update(Update(update_id=7, callback_query=query))
    assert isinstance(msg, IncomingMessage)
    assert (msg.kind, msg.payload, msg.user_id) == (MessageKind.BUTTON, "a:nps:9", "42")
    assert msg.press == ButtonPress(query_id="q9", message_id=None)


def test_buttons_without_a_message_or_data_are_ignored() -> None:
    inline = {
        "callback_query": {
            "id": "q1",
            "from": fake.user(42),
            "chat_instance": "c",
            "inline_message_id": "im",
            "data": "a:nps:9",
        }
    }
    assert isinstance(translate_update(update(inline)), Ignored)
    game = callback(42, "a:csat:4")
    del game["callback_query"]["data"]
    assert isinstance(translate_update(update(game)), Ignored)


def test_buttons_in_groups_are_answered_with_the_private_only_notice() -> None:
    result = translate_update(update(callback(-1001, "a:csat:4", chat_type="group")))
    assert result == Notice(channel="telegram", recipient="-1001", text=PRIVATE_ONLY, query_id="q9")


def membership(chat: dict[str, Any], new_status: str) -> dict[str, Any]:
    new: dict[str, Any] = {"status": new_status, "user": BOT_USER}
    if new_status == "kicked":
        new["until_date"] = 0
    return {
        "my_chat_member": {
            "chat": chat,
            "from": fake.user(42),
            "date": 0,
            "old_chat_member": {"status": "member", "user": BOT_USER},
            "new_chat_member": new,
        }
    }


def test_blocking_the_bot_is_noticed() -> None:
    blocked = membership({"id": 42, "type": "private"}, "kicked")
    assert translate_update(update(blocked)) == Unreachable(
        channel="telegram", user_id="42", reason="blocked the bot"
    )


def test_other_membership_changes_are_ignored() -> None:
    removed_from_group = membership({"id": -1001, "type": "group", "title": "G"}, "kicked")
    assert isinstance(translate_update(update(removed_from_group)), Ignored)
    restarted = membership({"id": 42, "type": "private"}, "member")
    assert isinstance(translate_update(update(restarted)), Ignored)


# -- translate_json: the same translation, from the JSON the inbox keeps --------------------------


@pytest.mark.parametrize(
    "data",
    [
        fake.message(42, "8/10"),
        fake.message(42, "/start post_purchase"),
        fake.message(42, "9", edited=True),
        fake.message(-1001, "/start", chat_type="group"),
        callback(42, "a:csat:4"),
        callback(-1001, "a:csat:4", chat_type="group"),
        membership({"id": 42, "type": "private"}, "kicked"),
    ],
    ids=["text", "start", "edited", "group-command", "button", "group-button", "blocked"],
)
def test_translate_json_reads_what_the_inbox_stored_as_translate_update_does(
    data: dict[str, Any],
) -> None:
    stored = json.loads(json.dumps({"update_id": 7, **data}))  # as a JSON column gives it back
    assert translate_json(stored) == translate_update(update(data))


def test_translate_json_of_a_button_press() -> None:
    msg = translate_json({"update_id": 8, **callback(42, "a:csat:4")})
    assert isinstance(msg, IncomingMessage)
    assert (msg.event_id, msg.kind, msg.payload) == ("tg:8", MessageKind.BUTTON, "a:csat:4")
    assert msg.press is not None and (msg.press.message_id, msg.press.label) == ("5", "4 🙂")


# The bodies tests/web/test_telegram_webhook.py answers 400, and more that are not updates.
MALFORMED: list[dict[str, Any]] = [
    {"hello": "world"},
    {"update_id": 1, "message": "x"},
    {"update_id": 2, "message": [1]},
    {"update_id": 3, "callback_query": {"id": "q"}},
    {"update_id": 4, "message": {"message_id": 1, "date": 0, "text": "hi"}},  # no chat
    {
        "update_id": 5,
        "callback_query": {
            "id": "q",
            "chat_instance": "c",
            "data": "a:nps:9",
            "from": {"id": 42, "is_bot": False, "first_name": "Ann"},
            "message": {"message_id": 1, "date": 0, "text": "NPS?"},
        },
    },
    {"update_id": "six", **fake.message(42, "hi")},
]
MALFORMED_IDS = [
    "no-update-id",
    "message-text",
    "message-list",
    "button-fields",
    "no-chat",
    "button-no-chat",
    "update-id-not-a-number",
]


@pytest.mark.parametrize("body", MALFORMED, ids=MALFORMED_IDS)
def test_translate_json_refuses_what_is_not_an_update(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"^not a Telegram update"):
        translate_json(body)


def _pressed(data: str, **changes: Any) -> dict[str, Any]:
    """A press as Telegram sends it, with `changes` to its callback query (None: removed)."""
    press = callback(42, "a:csat:4")
    query = {**press["callback_query"], "data": data}
    for key, value in changes.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = value
    return {"callback_query": query}


def _without(data: dict[str, Any], key: str) -> dict[str, Any]:
    message = {k: v for k, v in data["message"].items() if k != key}
    return {"message": message}


RECORDED: list[dict[str, Any]] = [
    fake.message(42, "8/10"),
    fake.message(42, "/start"),
    fake.message(42, "/start post_purchase"),
    fake.message(42, "/start@cxbot not-a-valid-link!"),
    fake.message(42, "hola", language_code="es", first_name="Ana"),
    fake.message(42, "no language", language_code=None),
    fake.message(42, "  "),
    fake.message(42, "9", edited=True),
    fake.message(-1001, "/start", chat_type="group"),
    fake.message(42, photo=[{"file_id": "p", "file_unique_id": "u", "width": 1, "height": 1}]),
    _without(fake.message(42, "no sender"), "from"),
    _without(fake.message(42, "no date"), "date"),
    callback(42, "a:csat:4"),
    callback(42, "a:csat:5"),  # a button the keyboard does not have: no label
    callback(-1001, "a:csat:4", chat_type="group"),
    callback(43, "a:csat:4")
    | {"callback_query": {**callback(43, "a:csat:4")["callback_query"], "from": fake.user(44)}},
    _pressed(
        "a:nps:9", message={**callback(42, "x")["callback_query"]["message"], "reply_markup": None}
    ),
    _pressed("a:nps:9", message={**callback(42, "x")["callback_query"]["message"], "text": None}),
    _pressed("a:nps:9", message=None),
    _pressed("", chat_instance="c"),
    _pressed("a:nps:9", chat_instance=None),
    _pressed(
        "a:nps:9",
        message={
            **callback(42, "x")["callback_query"]["message"],
            "reply_markup": {"inline_keyboard": [["not a button"]]},
        },
    ),
    membership({"id": 42, "type": "private"}, "kicked"),
]


@pytest.mark.parametrize("data", RECORDED)
def test_the_inbox_workers_translation_is_translate_jsons(data: dict[str, Any]) -> None:
    """The fast reading of common updates (`translate_recorded`) changes no translation."""
    stored = json.loads(json.dumps({"update_id": 7, **data}))
    try:
        expected: object = translate_json(stored)
    except ValueError as exc:
        expected = exc.args
    try:
        got: object = translate_recorded(stored)
    except ValueError as exc:
        got = exc.args
    assert got == expected


# -- raw_update: the inbox record ---------------------------------------------------------------


def test_a_message_is_keyed_by_update_id_in_its_chats_lane() -> None:
    data = {"update_id": 1234, **fake.message(42, "hello")}
    assert raw_update(data) == RawUpdate(event_key="1234", lane="telegram:42", body=data)


@pytest.mark.parametrize(
    ("data", "lane"),
    [
        (fake.message(42, "/start"), "telegram:42"),
        (fake.message(42, "9", edited=True), "telegram:42"),
        (callback(42, "a:csat:4"), "telegram:42"),
        (membership({"id": 42, "type": "private"}, "kicked"), "telegram:42"),
        (fake.message(-1001, "/start", chat_type="supergroup"), "telegram:-1001"),
        (callback(-1001, "a:csat:4", chat_type="group"), "telegram:-1001"),
        (
            {"channel_post": {"message_id": 1, "date": 0, "chat": {"id": -100, "type": "channel"}}},
            "telegram:-100",
        ),
        ({}, "telegram:-"),  # no chat at all: a lane of its own
    ],
    ids=[
        "message",
        "edited",
        "button",
        "membership",
        "group-message",
        "group-button",
        "channel-post",
        "no-chat",
    ],
)
def test_each_update_goes_to_the_lane_of_its_chat(data: dict[str, Any], lane: str) -> None:
    record = raw_update({"update_id": 99, **data})
    assert (record.event_key, record.lane) == ("99", lane)


def test_the_customers_messages_and_presses_share_one_lane() -> None:
    """One chat, one lane: a press waits for the text before it (and the other way round)."""
    text = raw_update({"update_id": 1, **fake.message(42, "hi")})
    press = raw_update({"update_id": 2, **callback(42, "a:csat:4")})
    other = raw_update({"update_id": 3, **fake.message(43, "hi")})
    assert text.lane == press.lane != other.lane


def test_a_button_on_an_inline_message_goes_to_the_pressers_lane() -> None:
    data = {
        "update_id": 5,
        "callback_query": {
            "id": "q1",
            "from": fake.user(42),
            "chat_instance": "c",
            "inline_message_id": "im",
            "data": "a:nps:9",
        },
    }
    assert raw_update(data).lane == "telegram:42"


def test_the_record_keeps_the_whole_update_for_processing() -> None:
    data = {"update_id": 77, **callback(42, "a:csat:4")}
    record = raw_update(data)
    assert record.body == data and record.body is not data
    assert translate_json(record.body) == translate_json(data)


@pytest.mark.parametrize("body", MALFORMED, ids=MALFORMED_IDS)
def test_raw_update_refuses_what_could_never_be_processed(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"^not a Telegram update"):
        raw_update(body)


# -- engine → Telegram --------------------------------------------------------------------------


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


def test_a_press_by_someone_other_than_the_chats_customer_is_not_applied() -> None:
    """Issue 12: a callback whose presser (`from`) is not the private chat's customer gets a
    notice to the presser and is never turned into the chat customer's answer."""
    forged = callback(42, "a:nps:0")
    forged["callback_query"]["from"] = fake.user(666)
    result = translate_update(update(forged))
    assert result == Notice(
        channel="telegram",
        recipient="666",
        text="This survey belongs to someone else.",
        query_id="q9",
    )
