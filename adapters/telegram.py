"""The Telegram channel: python-telegram-bot updates in, inline keyboards out.

Two pure functions do the translating — `translate_update` (an `Update` → what the engine should
see) and `render_message` (an `OutgoingMessage` → `sendMessage` arguments with its inline
keyboard) — and `TelegramChannel` is the glue around a python-telegram-bot `Application` that the
caller builds (so tests point it at a fake Bot API with `base_url`).

What reaches the engine, and what does not:

- private text → TEXT; `/start [payload]` (a deep link, see `adapters.telegram_links`) → START
  with the flow and context it names; a pressed button → BUTTON with its payload.
- photos, stickers, voice, documents, locations, polls… in a private chat → UNSUPPORTED (the
  engine's polite "text only" reply).
- edited messages, channel posts, service messages, membership changes: ignored (an edit cannot
  change an answer already stored). A customer blocking the bot is recorded as unreachable.
- group, supergroup and channel chats: a command (`/start@bot`…) or a button there gets a
  one-line "private chats only" reply; other group messages are ignored.

Conversation key: the private chat id, which Telegram makes equal to the customer's user id.
Every update carries `event_id = "tg:<update_id>"`, so a redelivered update is handled once.

Concurrency: updates of one chat are handled one at a time and in arrival order (a per-chat
lock around translate → engine → delivery), different chats concurrently. A double tap on a
button therefore sees the first tap's result: the question message was already edited to show
the chosen value, and the second tap only gets a short notice. Which keyboards are still open is
remembered in memory; after a restart a tap on an old keyboard falls back to the engine's "that
button belongs to an earlier question" reply, and nothing is ever stored twice.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypedDict

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, TypeHandler

from adapters.telegram_delivery import RetryPolicy, Sleep, call_api
from adapters.telegram_links import decode_start_payload
from bot.errors import DeliveryError, RecipientUnreachableError
from bot.keyed_locks import KeyedLocks
from bot.messages import (
    ChoiceStyle,
    IncomingMessage,
    MarkUnreachable,
    MessageKind,
    OutgoingMessage,
    ReportUndelivered,
)

log = logging.getLogger(__name__)

CHANNEL = "telegram"
# The update types cxbot handles; Telegram sends no others (polling and webhook alike).
ALLOWED_UPDATES = ("message", "edited_message", "callback_query", "my_chat_member")
MAX_TEXT = 4096  # Telegram's limit for one message
MAX_NOTICE = 200  # ... and for the text of a callback answer
_REMEMBERED = 50_000  # closed keyboards / open keyboards kept in memory (oldest dropped)

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
        "already_answered": "Already answered: {label}",
        "closed": "This question is closed; please use the latest message.",
        "bad_link": "Sorry, that link is not valid any more, so here is our general survey.",
    },
    "es": {
        "private_only": "Solo hago encuestas en chats privados. Escríbeme directamente.",
        "already_answered": "Ya respondiste: {label}",
        "closed": "Esta pregunta ya está cerrada; usa el último mensaje.",
        "bad_link": "Lo siento, ese enlace ya no es válido; esta es nuestra encuesta general.",
    },
}

Handler = Callable[[IncomingMessage], Awaitable[list[OutgoingMessage]]]
TelegramApplication = Application[Any, Any, Any, Any, Any, Any]


def notice(key: str, locale: str | None, **values: str) -> str:
    """One of the channel's own texts in the customer's language (English when unknown)."""
    language = (locale or "en").replace("_", "-").split("-")[0].lower()
    table = NOTICES.get(language, NOTICES["en"])
    return table[key].format(**values)


# -- update → engine ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ButtonPress:
    """A pressed inline button: the query to answer and the message it sits on."""

    query_id: str
    message_id: int | None  # None when Telegram no longer shows the bot that message
    message_text: str | None
    label: str | None  # the pressed button's label, from the message's own keyboard


@dataclass(frozen=True, slots=True)
class ForEngine:
    """An update the engine handles: the neutral message, the chat, and a button press if any."""

    message: IncomingMessage
    chat_id: int
    press: ButtonPress | None = None
    bad_link: bool = False  # a /start payload that could not be read


@dataclass(frozen=True, slots=True)
class NotPrivate:
    """A command or button in a group, supergroup or channel: reply that we work privately."""

    chat_id: int
    locale: str | None
    query_id: str | None = None


@dataclass(frozen=True, slots=True)
class Blocked:
    """The customer blocked the bot (a `my_chat_member` update)."""

    user_id: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """An update cxbot deliberately does nothing with, and why (for the debug log)."""

    reason: str


Translation = ForEngine | NotPrivate | Blocked | Ignored


def translate_update(update: Update) -> Translation:
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
            return Blocked(user_id=str(change.chat.id))
        return Ignored("membership change")
    if update.callback_query is not None:
        return _from_button(update)
    if update.message is not None:
        return _from_message(update, update.message)
    return Ignored("update type not handled")


def _from_message(update: Update, msg: Message) -> Translation:
    user = msg.from_user
    locale = user.language_code if user is not None else None
    if msg.chat.type != ChatType.PRIVATE:
        if msg.text is not None and msg.text.startswith("/"):
            return NotPrivate(chat_id=msg.chat.id, locale=locale)
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
            return ForEngine(replace(base, kind=MessageKind.UNSUPPORTED), chat_id=msg.chat.id)
        return Ignored("service message")
    start = _START.match(msg.text.strip())
    if start is not None:
        payload = decode_start_payload((start["payload"] or "").strip())
        incoming = replace(
            base, kind=MessageKind.START, flow_id=payload.flow_id, context=dict(payload.context)
        )
        return ForEngine(incoming, chat_id=msg.chat.id, bad_link=not payload.valid)
    return ForEngine(replace(base, text=msg.text), chat_id=msg.chat.id)


def _from_button(update: Update) -> Translation:
    query = update.callback_query
    assert query is not None
    user = query.from_user
    message = query.message
    if message is None or not query.data:
        return Ignored("button on an inline message, or a game button")
    if message.chat.type != ChatType.PRIVATE:
        return NotPrivate(chat_id=message.chat.id, locale=user.language_code, query_id=query.id)
    text = label = None
    if isinstance(message, Message):  # else Telegram no longer shows us the message (too old)
        text = message.text
        label = _label_of(message.reply_markup, query.data)
    incoming = IncomingMessage(
        channel=CHANNEL,
        user_id=str(message.chat.id),
        kind=MessageKind.BUTTON,
        payload=query.data,
        first_name=user.first_name,
        last_name=user.last_name,
        locale=user.language_code,
        platform_message_id=str(message.message_id),
        event_id=f"tg:{update.update_id}",
    )
    press = ButtonPress(
        query_id=query.id,
        message_id=message.message_id if isinstance(message, Message) else None,
        message_text=text,
        label=label,
    )
    return ForEngine(incoming, chat_id=message.chat.id, press=press)


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
    """Delivers neutral messages through a `Bot`, retrying as `policy` says.

    Raises `RecipientUnreachableError`, `RateLimitedError` or `DeliveryError` (bot.errors).
    """

    def __init__(
        self, bot: Bot, *, policy: RetryPolicy | None = None, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.bot = bot
        self.policy = policy or RetryPolicy()
        self._sleep = sleep

    async def _call(self, what: str, operation: Callable[[], Awaitable[Any]]) -> Any:
        return await call_api(operation, what=what, policy=self.policy, sleep=self._sleep)

    async def send(self, message: OutgoingMessage) -> Message:
        """Send one message (with its keyboard); the message as Telegram stored it."""
        chat_id = chat_id_of(message.user_id)
        args = render_message(message)
        sent: Message = await self._call(
            f"sendMessage to {chat_id}",
            lambda: self.bot.send_message(
                chat_id=chat_id, text=args["text"], reply_markup=args["reply_markup"]
            ),
        )
        return sent

    async def deliver(self, messages: Sequence[OutgoingMessage]) -> list[Message]:
        """Send messages in order; the first failure stops the rest and is raised."""
        return [await self.send(m) for m in messages]

    async def edit_text(self, chat_id: int, message_id: int, text: str) -> None:
        """Replace a message's text and drop its keyboard."""
        await self._call(
            f"editMessageText {chat_id}/{message_id}",
            lambda: self.bot.edit_message_text(
                chat_id=chat_id, message_id=message_id, text=text[:MAX_TEXT]
            ),
        )

    async def remove_keyboard(self, chat_id: int, message_id: int) -> None:
        """Take the inline keyboard off a message."""
        await self._call(
            f"editMessageReplyMarkup {chat_id}/{message_id}",
            lambda: self.bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id),
        )

    async def answer_button(self, query_id: str, text: str | None = None) -> None:
        """Answer a callback query (stops the button's spinner), with an optional notice."""
        await self._call(
            "answerCallbackQuery",
            lambda: self.bot.answer_callback_query(
                callback_query_id=query_id, text=text[:MAX_NOTICE] if text else None
            ),
        )


# -- the glue -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Keyboard:
    message_id: int
    question_id: str | None


def _remember(store: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    store[key] = value
    store.move_to_end(key)
    while len(store) > _REMEMBERED:
        store.popitem(last=False)


class TelegramChannel:
    """Runs the engine behind a python-telegram-bot `Application` (polling or webhook).

    `handler` has the engine's `handle` signature; `mark_unreachable` and `undelivered` its
    methods of those names (a block; a reply refused after retries);
    `flow_ids` lists the flows a deep link may name (others start the default flow).
    The caller builds `application` (token, `base_url`, concurrency) and starts it through
    `start_polling` or `start_webhook`, then `stop`.
    """

    def __init__(
        self,
        application: TelegramApplication,
        handler: Handler,
        *,
        mark_unreachable: MarkUnreachable,
        undelivered: ReportUndelivered,
        flow_ids: Callable[[], Collection[str]] | None = None,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.application = application
        self._flow_ids = flow_ids
        self.sender = TelegramSender(application.bot, policy=policy, sleep=sleep)
        self._handler = handler
        self._mark_unreachable = mark_unreachable
        self._undelivered = undelivered
        self._locks: KeyedLocks[int] = KeyedLocks()
        self._open: OrderedDict[int, _Keyboard] = OrderedDict()  # chat → its one live keyboard
        # (chat, message) whose keyboard we closed → the label chosen there (None: replaced).
        self._closed: OrderedDict[tuple[int, int], str | None] = OrderedDict()
        # Webhook updates being processed → the error their handling raised, if any.
        self._webhook_errors: dict[int, BaseException | None] = {}
        application.add_handler(TypeHandler(Update, self._on_update))
        application.add_error_handler(self._on_error)

    # -- lifecycle -------------------------------------------------------------------------------

    async def _initialize(self) -> None:
        # getMe: fails clearly on a wrong token, retries while Telegram is unreachable.
        await call_api(self.application.initialize, what="getMe", policy=self.sender.policy)

    async def start_polling(
        self, *, drop_pending_updates: bool = False, poll_timeout: float = 10.0
    ) -> None:
        """Connect, drop any webhook, and fetch updates by long polling until `stop`."""
        updater = self.application.updater
        if updater is None:
            raise RuntimeError("long polling needs an Application built with an Updater")
        await self._initialize()
        try:
            await updater.start_polling(
                timeout=int(poll_timeout),
                allowed_updates=list(ALLOWED_UPDATES),
                drop_pending_updates=drop_pending_updates,
                bootstrap_retries=3,  # deleteWebhook, retried by PTB itself
                error_callback=self._polling_error,
            )
        except TelegramError as exc:
            raise DeliveryError(f"starting long polling: {exc.message}") from exc
        await self.application.start()

    async def start_webhook(
        self, *, url: str, secret_token: str, drop_pending_updates: bool = False
    ) -> None:
        """Connect and register `url` with Telegram; updates then arrive via `feed_webhook`."""
        await self._initialize()
        await self.application.start()
        await call_api(
            lambda: self.application.bot.set_webhook(
                url=url,
                secret_token=secret_token,
                allowed_updates=list(ALLOWED_UPDATES),
                drop_pending_updates=drop_pending_updates,
            ),
            what="setWebhook",
            policy=self.sender.policy,
        )

    async def stop(self) -> None:
        """Stop fetching, finish the updates under way, and close connections.

        A webhook stays registered: Telegram keeps updates while cxbot is down and delivers
        them when it is back.
        """
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    async def feed_webhook(self, data: Mapping[str, Any]) -> None:
        """Handle one update Telegram posted to the webhook.

        Raises ValueError for a body that is not an update, and the handling error otherwise,
        so that the HTTP answer is an error and Telegram delivers the update again (a
        redelivery of an update already handled is ignored by its event id).
        """
        try:
            update = Update.de_json(dict(data), self.application.bot)
            # PTB builds what it is given without checking it (a message without a chat), so
            # the update is read here once: a malformed one is a bad request now, not a
            # handling error that Telegram would redeliver for ever.
            translate_update(update)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a Telegram update: {exc!r}") from None
        self._webhook_errors[update.update_id] = None
        try:
            await self.application.process_update(update)
            error = self._webhook_errors.get(update.update_id)
        finally:
            self._webhook_errors.pop(update.update_id, None)
        if error is not None:
            raise error

    def _polling_error(self, exc: Exception) -> None:
        # PTB retries polling by itself; one line per failure is enough for the operator.
        log.warning("Telegram polling failed (%s); retrying", exc)

    async def _on_error(self, update: object, context: Any) -> None:
        error = context.error
        update_id = update.update_id if isinstance(update, Update) else None
        if update_id is not None and update_id in self._webhook_errors:
            self._webhook_errors[update_id] = error  # feed_webhook raises it
        log.error("handling Telegram update %s failed", update_id, exc_info=error)

    async def _on_update(self, update: Update, _context: Any) -> None:
        await self.handle_update(update)

    # -- one update ------------------------------------------------------------------------------

    async def handle_update(self, update: Update) -> None:
        """Translate an update, run it through the engine, and deliver the replies."""
        translated = translate_update(update)
        if isinstance(translated, Ignored):
            log.debug("ignoring Telegram update %s: %s", update.update_id, translated.reason)
        elif isinstance(translated, Blocked):
            await self._unreachable(translated.user_id, "blocked the bot")
        elif isinstance(translated, NotPrivate):
            await self._private_only(translated)
        else:
            async with self._locks.hold(translated.chat_id):
                await self._turn(translated)

    async def _turn(self, t: ForEngine) -> None:
        press, chat = t.press, t.chat_id
        locale = t.message.locale
        if press is not None:
            if press.message_id is not None and (chat, press.message_id) in self._closed:
                # A second tap on a keyboard already answered (or replaced): a notice, no turn.
                label = self._closed[(chat, press.message_id)]
                text = (
                    notice("already_answered", locale, label=label)
                    if label is not None
                    else notice("closed", locale)
                )
                await self._answer_button(press.query_id, text)
                return
            await self._answer_button(press.query_id)  # stop the spinner before the turn
        replies = await self._ask_engine(t)
        if not replies:
            return  # a redelivered update
        answered = next((r.answered for r in replies if r.answered is not None), None)
        if press is not None and press.message_id is not None and press.label is not None:
            if answered is not None:  # on a button turn, only the pressed button's answer
                await self._show_choice(chat, press.message_id, press.message_text, press.label)
            else:  # a button of a question no longer asked (after a restart)
                await self._close_keyboard(chat, press.message_id)
        elif answered is not None:
            current = self._open.get(chat)
            if current is not None and current.question_id == answered:
                await self._close_keyboard(chat, current.message_id)  # answered by typing
        await self._deliver(chat, t.message.user_id, replies)

    async def _ask_engine(self, t: ForEngine) -> list[OutgoingMessage]:
        msg, bad_link = t.message, t.bad_link
        if (
            msg.kind == MessageKind.START
            and msg.flow_id is not None
            and self._flow_ids is not None
            and msg.flow_id not in self._flow_ids()
        ):
            # A deep link naming a flow that no longer exists: apologise, run the default.
            log.warning("deep link names unknown flow %r; starting the default flow", msg.flow_id)
            msg, bad_link = replace(msg, flow_id=None), True
        replies = await self._handler(msg)
        if not (bad_link and replies):
            return replies
        sorry = OutgoingMessage(
            channel=CHANNEL, user_id=msg.user_id, text=notice("bad_link", msg.locale)
        )
        return [sorry, *replies]

    async def _deliver(self, chat: int, user_id: str, replies: Sequence[OutgoingMessage]) -> None:
        for reply in replies:
            previous = self._open.get(chat)
            if reply.choices and previous is not None:
                await self._close_keyboard(chat, previous.message_id)  # one live keyboard
            try:
                sent = await self.sender.send(reply)
            except DeliveryError as exc:
                # The turn is stored, so Telegram's redelivery of the update would be ignored
                # as a duplicate: the engine keeps the failure and sends the question again.
                unreachable = isinstance(exc, RecipientUnreachableError)
                if unreachable:
                    self._open.pop(chat, None)
                await self._undelivered(
                    channel=CHANNEL, user_id=user_id, reason=str(exc), unreachable=unreachable
                )
                return  # later replies would arrive out of order
            if reply.choices:
                _remember(self._open, chat, _Keyboard(sent.message_id, reply.question_id))

    async def _show_choice(self, chat: int, message_id: int, text: str | None, label: str) -> None:
        """Edit the question to show the chosen value; its keyboard goes away with the edit."""
        _remember(self._closed, (chat, message_id), label)
        self._forget_open(chat, message_id)
        try:
            await self.sender.edit_text(chat, message_id, f"{text or ''}\n\n✓ {label}".strip())
        except DeliveryError as exc:
            # Cosmetic: the answer is stored; an old keyboard left on screen is harmless.
            log.warning("could not mark the answered question: %s", exc)

    async def _close_keyboard(self, chat: int, message_id: int) -> None:
        self._closed.setdefault((chat, message_id), None)
        self._closed.move_to_end((chat, message_id))
        self._forget_open(chat, message_id)
        try:
            await self.sender.remove_keyboard(chat, message_id)
        except DeliveryError as exc:
            if not _not_modified(exc):  # cosmetic, as above
                log.warning("could not remove an old keyboard: %s", exc)

    def _forget_open(self, chat: int, message_id: int) -> None:
        current = self._open.get(chat)
        if current is not None and current.message_id == message_id:
            del self._open[chat]

    async def _answer_button(self, query_id: str, text: str | None = None) -> None:
        try:
            await self.sender.answer_button(query_id, text)
        except DeliveryError as exc:
            # The query expired (Telegram allows a few seconds) or was answered already.
            log.info("could not answer a button press: %s", exc)

    async def _private_only(self, t: NotPrivate) -> None:
        text = notice("private_only", t.locale)
        if t.query_id is not None:
            await self._answer_button(t.query_id, text)
            return
        reply = OutgoingMessage(channel=CHANNEL, user_id=str(t.chat_id), text=text)
        try:
            await self.sender.send(reply)
        except RecipientUnreachableError as exc:
            log.info("cannot reply in group %s: %s", t.chat_id, exc)

    async def _unreachable(self, user_id: str, reason: str) -> None:
        log.info("Telegram customer %s is unreachable: %s", user_id, reason)
        self._open.pop(chat_id_of(user_id), None)
        await self._mark_unreachable(channel=CHANNEL, user_id=user_id, reason=reason)


def _not_modified(exc: DeliveryError) -> bool:
    cause = exc.__cause__
    return isinstance(cause, BadRequest) and "not modified" in cause.message.lower()
