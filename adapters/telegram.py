"""The Telegram channel: python-telegram-bot updates in, inline keyboards out.

This adapter translates and sends, nothing more:

- `translate_update` / `translate_json`: a Telegram update → what it means for cxbot (pure);
- `raw_update`: the update's key and lane for the inbox (pure);
- `render_message`: an `OutgoingMessage` → `sendMessage` arguments with its keyboard (pure);
- `TelegramSender`: the delivery worker's `ChannelSender` (send, close a question's buttons,
  answer a button press), each a Bot API call with Telegram's errors mapped to cxbot's;
- `TelegramPoller`: long polling that records each fetched batch in the inbox BEFORE the next
  getUpdates confirms it to Telegram, so a crash never loses an update Telegram let go of;
- `TelegramChannel`: connects, and starts polling or registers the webhook.

What reaches the engine, and what does not:

- private text → TEXT; `/start [payload]` (a deep link, see `adapters.telegram_links`) → START
  with the flow and context it names; a pressed button → BUTTON with its payload and press.
- photos, stickers, voice, documents, locations, polls… in a private chat → UNSUPPORTED (the
  engine's polite "text only" reply).
- edited messages, channel posts, service messages, membership changes: ignored (an edit cannot
  change an answer already stored). A customer blocking the bot is recorded as unreachable.
- group, supergroup and channel chats: a command (`/start@bot`…) or a button there gets a
  one-line "private chats only" notice; other group messages are ignored.

Conversation key: the private chat id, which Telegram makes equal to the customer's user id.
The inbox keys each update by its `update_id`, so a redelivered update is handled once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, TypedDict

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, Conflict, InvalidToken, TelegramError

from adapters.retrying import RetryPolicy, Sleep
from adapters.telegram_delivery import call_api
from adapters.telegram_http import post_json
from adapters.telegram_links import decode_start_payload
from bot.errors import DeliveryError
from bot.messages import (
    ButtonPress,
    ChoiceStyle,
    Ignored,
    Inbound,
    IncomingMessage,
    MessageKind,
    Notice,
    OutgoingMessage,
    RawUpdate,
    RecordUpdates,
    SentRef,
    Unreachable,
)

log = logging.getLogger(__name__)

CHANNEL = "telegram"
# The update types cxbot handles; Telegram sends no others (polling and webhook alike).
ALLOWED_UPDATES = ("message", "edited_message", "callback_query", "my_chat_member")
MAX_TEXT = 4096  # Telegram's limit for one message
MAX_NOTICE = 200  # ... and for the text of a callback answer

# Labels of CSAT buttons: the score with a face, so that the scale reads at a glance.
CSAT_FACES = {1: "😠", 2: "🙁", 3: "😐", 4: "🙂", 5: "😍"}
_START = re.compile(r"^/start(?:@\w+)?(?:\s+(?P<payload>.*))?$", re.DOTALL)
# Message contents the engine cannot read; a message with one of these is UNSUPPORTED.
_CONTENT_KINDS = (
    "photo", "sticker", "voice", "video", "video_note", "audio", "document", "animation",
    "location", "venue", "contact", "poll", "dice", "game", "story", "paid_media", "invoice",
)  # fmt: skip

# The channel's own words (the survey's words come from the engine), by language.
NOTICES: Mapping[str, Mapping[str, str]] = {
    "en": {
        "private_only": "I only run surveys in private chats. Please message me directly.",
        "not_your_survey": "This survey belongs to someone else.",
    },
    "es": {
        "private_only": "Solo hago encuestas en chats privados. Escríbeme directamente.",
        "not_your_survey": "Esta encuesta es de otra persona.",
    },
}


def notice(key: str, locale: str | None, **values: str) -> str:
    """One of the channel's own texts in the customer's language (English when unknown)."""
    language = (locale or "en").replace("_", "-").split("-")[0].lower()
    table = NOTICES.get(language, NOTICES["en"])
    return table[key].format(**values)


# -- update → cxbot -----------------------------------------------------------------------------


def translate_update(update: Update) -> Inbound:
    """What a Telegram update means for cxbot (pure: no I/O)."""
    if update.edited_message is not None or update.edited_channel_post is not None:
        return Ignored("edited message: answers already stored are not changed")
    if update.channel_post is not None:
        return Ignored("channel post")
    if update.my_chat_member is not None:
        change = update.my_chat_member
        if (
            change.chat.type == ChatType.PRIVATE
            and change.new_chat_member.status == ChatMemberStatus.BANNED
        ):
            return Unreachable(
                channel=CHANNEL, user_id=str(change.chat.id), reason="blocked the bot"
            )
        return Ignored("membership change")
    if update.callback_query is not None:
        return _from_button(update)
    if update.message is not None:
        return _from_message(update, update.message)
    return Ignored("update type not handled")


def translate_json(data: Mapping[str, Any]) -> Inbound:
    """`translate_update` of an update's JSON (as recorded in the inbox).

    Raises ValueError for JSON that is not a Telegram update (a message without a chat, an
    `update_id` that is not a number): python-telegram-bot builds what it is given unchecked.
    """
    try:
        update = Update.de_json(dict(data), None)
        if not isinstance(update.update_id, int):
            raise TypeError("update_id is not a number")
        return translate_update(update)
    except Exception as exc:
        # Building and translating are pure (no I/O), so any error is the JSON's fault: a date
        # of 1e18 is an OSError from the C library, a chat that is a list an AttributeError.
        raise ValueError(f"not a Telegram update: {exc!r}") from None


def _chat_of(data: Mapping[str, Any]) -> object:
    for key in ("message", "edited_message", "channel_post", "edited_channel_post"):
        part = data.get(key)
        if isinstance(part, Mapping):
            return (part.get("chat") or {}).get("id")
    query = data.get("callback_query")
    if isinstance(query, Mapping):
        message = query.get("message")
        if isinstance(message, Mapping):
            return (message.get("chat") or {}).get("id")
        return (query.get("from") or {}).get("id")
    member = data.get("my_chat_member")
    if isinstance(member, Mapping):
        return (member.get("chat") or {}).get("id")
    return None


def raw_update(data: Mapping[str, Any]) -> RawUpdate:
    """The inbox record of an update: keyed by `update_id`, in the lane of its chat.

    Raises ValueError when the JSON is not a readable Telegram update.
    """
    translate_json(data)  # refuse what could never be processed, before it is acknowledged
    try:
        lane = _lane_of(data)
    except AttributeError as exc:  # a `chat` that is not an object: nothing to key it by
        raise ValueError(f"not a Telegram update: {exc!r}") from None
    return RawUpdate(event_key=str(data.get("update_id")), lane=lane, body=dict(data))


def _lane_of(data: Mapping[str, Any]) -> str:
    """The inbox lane of an update: its chat (the presser's id when no message is shown)."""
    chat = _chat_of(data)
    return f"{CHANNEL}:{chat}" if isinstance(chat, int | str) else f"{CHANNEL}:-"


def _from_message(update: Update, msg: Message) -> Inbound:
    user = msg.from_user
    locale = user.language_code if user is not None else None
    if msg.chat.type != ChatType.PRIVATE:
        if msg.text is not None and msg.text.startswith("/"):
            return Notice(
                channel=CHANNEL, recipient=str(msg.chat.id), text=notice("private_only", locale)
            )
        return Ignored("message in a group chat")
    base = IncomingMessage(
        channel=CHANNEL,
        user_id=str(msg.chat.id),
        first_name=user.first_name if user is not None else None,
        last_name=user.last_name if user is not None else None,
        locale=locale,
        platform_message_id=str(msg.message_id),
        event_id=f"tg:{update.update_id}",
    )
    if msg.text is None:
        if any(getattr(msg, kind, None) for kind in _CONTENT_KINDS):
            return replace(base, kind=MessageKind.UNSUPPORTED)
        return Ignored("service message")
    return _with_text(base, msg.text)


def _with_text(base: IncomingMessage, text: str) -> IncomingMessage:
    """A private text message: a start (with its deep link's payload) or text to answer with."""
    start = _START.match(text.strip())
    if start is not None:
        payload = decode_start_payload((start["payload"] or "").strip())
        return replace(
            base,
            kind=MessageKind.START,
            flow_id=payload.flow_id,
            context=dict(payload.context),
            bad_link=not payload.valid,
        )
    return replace(base, text=text)


def _from_button(update: Update) -> Inbound:
    query = update.callback_query
    assert query is not None
    user = query.from_user
    message = query.message
    if message is None or not query.data:
        return Ignored("button on an inline message, or a game button")
    if message.chat.type != ChatType.PRIVATE:
        return Notice(
            channel=CHANNEL,
            recipient=str(message.chat.id),
            text=notice("private_only", user.language_code),
            query_id=query.id,
        )
    if user.id != message.chat.id:
        # In a private chat the presser is the chat; one who is not must never answer for the
        # chat's customer (a forged or replayed update): a notice to the presser only.
        return Notice(
            channel=CHANNEL,
            recipient=str(user.id),
            text=notice("not_your_survey", user.language_code),
            query_id=query.id,
        )
    text = label = None
    if isinstance(message, Message):  # else Telegram no longer shows us the message (too old)
        text = message.text
        label = _label_of(message.reply_markup, query.data)
    press = ButtonPress(
        query_id=query.id,
        message_id=str(message.message_id) if isinstance(message, Message) else None,
        message_text=text,
        label=label,
    )
    return IncomingMessage(
        channel=CHANNEL,
        user_id=str(message.chat.id),
        kind=MessageKind.BUTTON,
        payload=query.data,
        first_name=user.first_name,
        last_name=user.last_name,
        locale=user.language_code,
        platform_message_id=str(message.message_id),
        event_id=f"tg:{update.update_id}",
        press=press,
    )


def _label_of(markup: InlineKeyboardMarkup | None, data: str) -> str | None:
    if markup is None:
        return None
    for row in markup.inline_keyboard:
        for button in row:
            if button.callback_data == data:
                return button.text
    return None


# -- engine → Telegram --------------------------------------------------------------------------


class SendArgs(TypedDict):
    """Arguments of `Bot.send_message` besides the chat id."""

    text: str
    reply_markup: InlineKeyboardMarkup | None


def render_message(message: OutgoingMessage) -> SendArgs:
    """The message as Telegram text plus inline keyboard (pure: no I/O).

    Scales: up to 7 buttons on one row (CES 1–7, CSAT 1–5 with faces, yes/no), longer ones on
    two rows (NPS: 0–5 and 6–10). Options: one per row, so that long labels stay readable.
    """
    text = message.text[:MAX_TEXT]
    if not message.choices:
        return {"text": text, "reply_markup": None}
    buttons = [
        InlineKeyboardButton(_button_label(message, c.label), callback_data=c.payload)
        for c in message.choices
    ]
    if message.choice_style == ChoiceStyle.OPTIONS:
        rows = [[b] for b in buttons]
    else:
        count = 1 if len(buttons) <= 7 else math.ceil(len(buttons) / 7)
        size = math.ceil(len(buttons) / count)
        rows = [buttons[i : i + size] for i in range(0, len(buttons), size)]
    return {"text": text, "reply_markup": InlineKeyboardMarkup(rows)}


def _button_label(message: OutgoingMessage, label: str) -> str:
    if message.question_type == "csat" and label.isdigit() and int(label) in CSAT_FACES:
        return f"{label} {CSAT_FACES[int(label)]}"
    return label


def chat_id_of(user_id: str) -> int:
    """The Telegram chat id a customer's `user_id` stands for."""
    try:
        return int(user_id)
    except ValueError:
        raise DeliveryError(
            f"{user_id!r} is not a Telegram chat id (a number such as 123456789)"
        ) from None


class TelegramSender:
    """Delivers through a `Bot`: the delivery worker's `ChannelSender` for Telegram.

    Each call is tried as `policy` says (short: the outbox does the long waiting). Raises
    `RecipientUnreachableError`, `RateLimitedError` or `DeliveryError` (bot.errors).
    """

    def __init__(
        self, bot: Bot, *, policy: RetryPolicy | None = None, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.bot = bot
        self.policy = policy or RetryPolicy()
        self._sleep = sleep

    async def _call(self, what: str, operation: Callable[[], Awaitable[Any]]) -> Any:
        return await call_api(operation, what=what, policy=self.policy, sleep=self._sleep)

    async def send(self, message: OutgoingMessage) -> SentRef:
        """Send one message (with its keyboard); the id Telegram gave it."""
        chat_id = chat_id_of(message.user_id)
        args = render_message(message)
        data = {"chat_id": chat_id, "text": args["text"], "reply_markup": args["reply_markup"]}
        sent = await self._call(
            f"sendMessage to {chat_id}", lambda: post_json(self.bot, "sendMessage", data)
        )
        return SentRef(message_id=str(sent["message_id"]))

    async def close_question(
        self, *, user_id: str, sent: SentRef, text: str | None, label: str | None
    ) -> None:
        """Show the chosen label under the question (dropping its keyboard), or just drop it."""
        chat_id = chat_id_of(user_id)
        if sent.message_id is None or not sent.message_id.isdigit():
            return
        message_id = int(sent.message_id)
        try:
            if label is not None:
                new_text = f"{text or ''}\n\n✓ {label}".strip()[:MAX_TEXT]
                edit = {"chat_id": chat_id, "message_id": message_id, "text": new_text}
                await self._call(
                    f"editMessageText {chat_id}/{message_id}",
                    lambda: post_json(self.bot, "editMessageText", edit),
                )
            else:
                which = {"chat_id": chat_id, "message_id": message_id}
                await self._call(
                    f"editMessageReplyMarkup {chat_id}/{message_id}",
                    lambda: post_json(self.bot, "editMessageReplyMarkup", which),
                )
        except DeliveryError as exc:
            if not _not_modified(exc):  # already as wanted (a repeat after a restart): done
                raise

    async def answer_button(
        self, *, user_id: str, query_id: str | None, chat: str | None, text: str | None
    ) -> None:
        """Answer a callback query (stops the button's spinner), with an optional notice."""
        if query_id is None:
            return
        answer = {"callback_query_id": query_id, "text": text[:MAX_NOTICE] if text else None}
        await self._call(
            "answerCallbackQuery", lambda: post_json(self.bot, "answerCallbackQuery", answer)
        )


def _not_modified(exc: DeliveryError) -> bool:
    cause = exc.__cause__
    return isinstance(cause, BadRequest) and "not modified" in cause.message.lower()


# -- receiving ----------------------------------------------------------------------------------


class TelegramPoller:
    """Long polling that never confirms an update before the inbox has recorded it.

    Telegram forgets the updates before `offset` when getUpdates is called with it, so the
    offset moves past a batch only after `record` returned for the whole batch. A crash before
    that: the batch comes again, and the inbox drops what it already has.
    """

    def __init__(
        self,
        bot: Bot,
        record: RecordUpdates,
        *,
        poll_timeout: int = 10,
        backoff: float = 0.5,
        max_backoff: float = 16.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.bot = bot
        self._record = record
        self._timeout = poll_timeout
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._sleep = sleep
        self.offset: int | None = None

    async def run(self) -> None:
        """Fetch and record batches until cancelled."""
        delay = self._backoff
        while True:
            try:
                updates = await self._get_updates()
            except InvalidToken as exc:
                raise DeliveryError(
                    f"getUpdates: Telegram rejected the bot token ({exc.message}); "
                    "check [telegram] token / CXBOT_TELEGRAM__TOKEN"
                ) from exc
            except (Conflict, TelegramError) as exc:
                # PTB retries nothing here: one line per failure, then back off and poll again.
                log.warning("Telegram polling failed (%s); retrying in %g s", exc, delay)
                await self._sleep(delay)
                delay = min(delay * 2, self._max_backoff)
                continue
            delay = self._backoff
            if not updates:
                continue
            await self._record([_raw(u) for u in updates])
            self.offset = max(u["update_id"] for u in updates) + 1

    async def _get_updates(self) -> list[dict[str, Any]]:
        """The next batch as the Bot API's JSON (stored as is: no PTB objects built)."""
        data = {
            "offset": self.offset,
            "timeout": self._timeout,
            "allowed_updates": list(ALLOWED_UPDATES),
        }
        # As PTB's get_updates: the read may take the long-poll time plus the usual margin.
        margin = self.bot.request.read_timeout or 0
        result = await post_json(self.bot, "getUpdates", data, read_timeout=self._timeout + margin)
        if not isinstance(result, list) or not all(_is_update(u) for u in result):
            raise TelegramError("getUpdates answered something that is not a list of updates")
        return result


def _is_update(item: object) -> bool:
    return isinstance(item, dict) and type(item.get("update_id")) is int


# -- the inbox worker's translation, straight from the JSON -------------------------------------


def translate_recorded(data: Mapping[str, Any]) -> Inbound:
    """`translate_json` of an update the inbox recorded, for the inbox worker.

    Recorded updates were checked before they were recorded (`raw_update`, the webhook) or come
    from getUpdates. The two kinds nearly every update is — a private chat's text message, a
    press of a button on a private chat's message — are read straight from the JSON, with the
    same result as `translate_json` and without building python-telegram-bot's objects (they
    cost more than the rest of the translation); anything else, or anything shaped otherwise
    than these two are, goes through `translate_json`.
    """
    fast = _fast_translation(data)
    return fast if fast is not None else translate_json(data)


def _fast_translation(data: Mapping[str, Any]) -> IncomingMessage | None:
    update_id = data.get("update_id")
    if type(update_id) is not int or len(data) != 2:
        return None
    message = data.get("message")
    if isinstance(message, dict):
        return _fast_text(update_id, message)
    query = data.get("callback_query")
    if isinstance(query, dict):
        return _fast_press(update_id, query)
    return None


def _private_chat(message: Mapping[str, Any]) -> int | None:
    """The id of the message's chat when it is a private one (and the message is well formed
    in what is read here); None otherwise."""
    chat = message.get("chat")
    if not isinstance(chat, dict) or chat.get("type") != ChatType.PRIVATE:
        return None
    chat_id = chat.get("id")
    if type(chat_id) is not int or type(message.get("message_id")) is not int:
        return None
    if type(message.get("date")) is not int:
        return None
    return chat_id


def _fast_user(user: object) -> tuple[int, str, str | None, str | None] | None:
    """(id, first name, last name, language) of a well-formed user; None otherwise."""
    if not isinstance(user, dict) or type(user.get("is_bot")) is not bool:
        return None
    user_id, first = user.get("id"), user.get("first_name")
    last, language = user.get("last_name"), user.get("language_code")
    if type(user_id) is not int or not isinstance(first, str):
        return None
    if not (last is None or isinstance(last, str)):
        return None
    if not (language is None or isinstance(language, str)):
        return None
    return user_id, first, last, language


def _fast_text(update_id: int, message: Mapping[str, Any]) -> IncomingMessage | None:
    chat_id = _private_chat(message)
    user = _fast_user(message.get("from"))
    text = message.get("text")
    if chat_id is None or user is None or not isinstance(text, str) or message.get("date") == 0:
        return None
    _, first, last, language = user
    base = IncomingMessage(
        channel=CHANNEL,
        user_id=str(chat_id),
        first_name=first,
        last_name=last,
        locale=language,
        platform_message_id=str(message["message_id"]),
        event_id=f"tg:{update_id}",
    )
    return _with_text(base, text)


def _fast_press(update_id: int, query: Mapping[str, Any]) -> IncomingMessage | None:
    message = query.get("message")
    if not isinstance(message, dict):
        return None
    chat_id = _private_chat(message)
    user = _fast_user(query.get("from"))
    payload, query_id, text = query.get("data"), query.get("id"), message.get("text")
    if chat_id is None or user is None or user[0] != chat_id:
        return None  # a group, or someone else's press: the notices of `translate_json`
    if not (isinstance(payload, str) and payload and isinstance(query_id, str)):
        return None
    if not isinstance(query.get("chat_instance"), str) or not (
        text is None or isinstance(text, str)
    ):
        return None
    sender = message.get("from")
    if sender is not None and _fast_user(sender) is None:
        return None
    label = _fast_label(message.get("reply_markup"), payload)
    if isinstance(label, _Malformed):
        return None
    _, first, last, language = user
    message_id = str(message["message_id"])
    return IncomingMessage(
        channel=CHANNEL,
        user_id=str(chat_id),
        kind=MessageKind.BUTTON,
        payload=payload,
        first_name=first,
        last_name=last,
        locale=language,
        platform_message_id=message_id,
        event_id=f"tg:{update_id}",
        press=ButtonPress(query_id=query_id, message_id=message_id, message_text=text, label=label),
    )


class _Malformed:
    """A keyboard not shaped as Telegram sends one."""


def _fast_label(markup: object, data: str) -> str | _Malformed | None:
    """`_label_of` on the keyboard's JSON."""
    if markup is None:
        return None
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    if not isinstance(rows, list):
        return _Malformed()
    label: str | None = None
    for row in rows:
        if not isinstance(row, list):
            return _Malformed()
        for button in row:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                return _Malformed()
            if label is None and button.get("callback_data") == data:
                label = button["text"]
    return label


def _raw(update: dict[str, Any]) -> RawUpdate:
    # Telegram's own JSON: no second check (raw_update's); the worker translates it.
    return RawUpdate(event_key=str(update["update_id"]), lane=_lane_of(update), body=update)


class TelegramChannel:
    """Connects a `Bot` and receives updates: long polling or webhook, into `record`."""

    def __init__(
        self,
        bot: Bot,
        record: RecordUpdates,
        *,
        policy: RetryPolicy | None = None,
        poll_timeout: int = 10,
    ) -> None:
        self.bot = bot
        self._record = record
        self.policy = policy or RetryPolicy()
        self.poller = TelegramPoller(bot, record, poll_timeout=poll_timeout)

    async def connect(self) -> None:
        """getMe: fails clearly on a wrong token, retries while Telegram is unreachable."""
        await call_api(self.bot.initialize, what="getMe", policy=self.policy)

    async def start_polling(self, *, drop_pending_updates: bool = False) -> None:
        """Connect and drop any webhook; then `poll` fetches updates."""
        await self.connect()
        await call_api(
            lambda: self.bot.delete_webhook(drop_pending_updates=drop_pending_updates),
            what="deleteWebhook",
            policy=self.policy,
        )

    async def poll(self) -> None:
        """Long polling until cancelled (ends by itself only by failing: a wrong token)."""
        await self.poller.run()

    async def start_webhook(
        self, *, url: str, secret_token: str, drop_pending_updates: bool = False
    ) -> None:
        """Connect and register `url`; updates then arrive through `feed_webhook`."""
        await self.connect()
        await call_api(
            lambda: self.bot.set_webhook(
                url=url,
                secret_token=secret_token,
                allowed_updates=list(ALLOWED_UPDATES),
                drop_pending_updates=drop_pending_updates,
            ),
            what="setWebhook",
            policy=self.policy,
        )

    async def stop(self) -> None:
        """Close connections; a webhook stays registered (Telegram keeps updates while cxbot
        is down and delivers them when it is back)."""
        await self.bot.shutdown()

    async def feed_webhook(self, data: Mapping[str, Any]) -> None:
        """Record one update Telegram posted; returns once it is durably stored.

        Raises ValueError for a body that is not a Telegram update (answered 400, so Telegram
        does not send it again for ever).
        """
        await self._record([raw_update(data)])
