"""The Slack channel: slack-bolt AsyncApp events and actions in, Block Kit out.

Two pure functions translate what Slack sends — `translate_event` (an Events API body → what
the engine should see) and `translate_answer` (a survey button's `block_actions` body) — and
Block Kit is built in `adapters.slack_blocks`. `SlackChannel` is the glue around a Bolt
`AsyncApp` that the caller builds (so tests point its `AsyncWebClient` at a fake Web API).

What reaches the engine:

- a direct message (`message` event, `channel_type: im`) from a person → TEXT; a file without
  text → UNSUPPORTED. Bot messages, edits, deletions and channel messages are ignored.
- a pressed survey button → BUTTON with its payload; the question is then updated in place
  (chat.update) to show the choice, and its buttons go away, so it cannot be answered twice.

Every turn carries an `event_id` (the Events API `event_id`, or the button's `action_ts`), so a
retried delivery (`X-Slack-Retry-Num`) or a replayed Socket Mode envelope is handled once.

Support actions on alerts (Acknowledge, Resolve, Reply to customer) are passed to a `SupportDesk`
(bot.reviews) after checking that the person pressing is one of its support users; others get
an ephemeral refusal. A button or modal for an item that is gone, or already in the state it
asks for, gets a notice (ephemeral, or an error in the modal) and changes nothing. Both Socket
Mode and HTTP mode handle a request fully before it is acknowledged (`process_before_response`),
like the Telegram webhook.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from starlette.requests import Request
from starlette.responses import Response

from adapters import slack_blocks as kit
from adapters.slack_delivery import SlackRetryPolicy, Sleep, call_slack
from bot.errors import DeliveryError, RecipientUnreachableError, ReviewNotFoundError
from bot.keyed_locks import KeyedLocks
from bot.messages import (
    IncomingMessage,
    MessageKind,
    OutgoingMessage,
    ReportUndelivered,
    ReviewCard,
    ReviewStep,
)

log = logging.getLogger(__name__)

CHANNEL = "slack"
RETRY_HEADER = "x-slack-retry-num"
_REMEMBERED = 50_000  # closed/open question messages kept in memory (oldest dropped)
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")

NOTICES = {
    "already_answered": "Already answered: {label}",
    "closed": "This question is closed; please answer the latest one.",
    "not_support": "Sorry, only the support team ({who}) can work on these alerts.",
    "reply_failed": "Could not deliver your reply to the customer: {error}",
    "empty": "Please write something first.",
    "gone": "That flagged reply no longer exists.",
    "already": "Flagged reply #{review_id} is already {status}{by}.",
    "already_resolved": "Already resolved{by}; your note was not saved.",
    "stale_form": "This form is out of date: close it and use the alert's buttons again.",
}
# The steps that give an item its status: who made it so, for "already resolved by …".
_STATUS_STEPS = {"acknowledged": ("acknowledged", "replied"), "resolved": ("resolved",)}

Handler = Callable[[IncomingMessage], Awaitable[list[OutgoingMessage]]]


class SupportDesk(Protocol):
    """What the alert buttons do (implemented by bot.reviews); `actor` is a Slack user id."""

    @property
    def support_users(self) -> frozenset[str]:
        """Slack user ids allowed to act on alerts."""
        ...

    async def card(self, *, review_id: int) -> ReviewCard | None:
        """The item as an alert shows it (None when it does not exist)."""
        ...

    async def acknowledge(self, *, review_id: int, actor: str) -> bool:
        """Mark an open item acknowledged and update its alert; False when it was not open.

        Raises ReviewNotFoundError when no item has this id.
        """
        ...

    async def resolve(self, *, review_id: int, actor: str, note: str) -> bool:
        """Mark the item resolved with a note and update its alert; False when it already was.

        Raises ReviewNotFoundError when no item has this id.
        """
        ...

    async def reply(self, *, review_id: int, actor: str, text: str) -> None:
        """Deliver `text` to the customer on their channel; DeliveryError when it fails.

        Raises ReviewNotFoundError when no item has this id.
        """
        ...


# -- Slack → engine -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ForEngine:
    """A DM turn: the neutral message, the DM channel id and, for a button, what was pressed."""

    message: IncomingMessage
    dm: str
    message_ts: str | None = None  # the pressed question's message
    message_text: str | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class Ignored:
    """A Slack request cxbot deliberately does nothing with, and why (for the debug log)."""

    reason: str


def translate_event(body: Mapping[str, Any]) -> ForEngine | Ignored:
    """What an Events API body means for the survey (pure: no I/O)."""
    event = body.get("event")
    if not isinstance(event, Mapping) or event.get("type") != "message":
        return Ignored("not a message event")
    if event.get("channel_type") != "im":
        return Ignored("message outside a direct message")
    if event.get("bot_id") or (event.get("app_id") and not event.get("user")):
        return Ignored("message from a bot")
    subtype = event.get("subtype")
    user, dm = event.get("user"), event.get("channel")
    if not isinstance(user, str) or not isinstance(dm, str):
        return Ignored("message without a user or channel")
    event_id = body.get("event_id")
    base = IncomingMessage(
        channel=CHANNEL,
        user_id=user,
        platform_message_id=str(event.get("ts") or "") or None,
        event_id=f"slack:{event_id}" if event_id else None,
    )
    text = event.get("text")
    if subtype == "file_share" and not text:
        return ForEngine(replace(base, kind=MessageKind.UNSUPPORTED), dm=dm)
    if subtype not in (None, "file_share", "thread_broadcast"):
        return Ignored(f"message subtype {subtype}")
    if not isinstance(text, str):
        return ForEngine(replace(base, kind=MessageKind.UNSUPPORTED), dm=dm)
    return ForEngine(replace(base, text=_unescape(text)), dm=dm)


def translate_answer(body: Mapping[str, Any]) -> ForEngine | Ignored:
    """What a survey button press (`block_actions`) means for the engine (pure: no I/O)."""
    actions = body.get("actions") or []
    action = next(
        (a for a in actions if str(a.get("action_id", "")).startswith(kit.ANSWER_ACTION)), None
    )
    user = (body.get("user") or {}).get("id")
    container = body.get("container") or {}
    dm = container.get("channel_id") or (body.get("channel") or {}).get("id")
    if action is None or not isinstance(user, str) or not isinstance(dm, str):
        return Ignored("not a survey button")
    message = body.get("message") or {}
    label = (action.get("text") or {}).get("text")
    original = _question_text(message)
    stamp = action.get("action_ts") or body.get("trigger_id")
    incoming = IncomingMessage(
        channel=CHANNEL,
        user_id=user,
        kind=MessageKind.BUTTON,
        payload=str(action.get("value") or ""),
        platform_message_id=container.get("message_ts"),
        event_id=f"slack-action:{user}:{stamp}" if stamp else None,
    )
    return ForEngine(
        incoming,
        dm=dm,
        message_ts=container.get("message_ts") or message.get("ts"),
        message_text=original,
        label=label if isinstance(label, str) else None,
    )


def _question_text(message: Mapping[str, Any]) -> str | None:
    """The question's own text: its first section (the fallback text may carry more)."""
    for block in message.get("blocks") or []:
        if block.get("type") == "section" and isinstance(block.get("text"), Mapping):
            return str(block["text"].get("text") or "")
    text = message.get("text")
    return text if isinstance(text, str) else None


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _remember(store: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    store[key] = value
    store.move_to_end(key)
    while len(store) > _REMEMBERED:
        store.popitem(last=False)


@dataclass(frozen=True, slots=True)
class _Question:
    ts: str
    question_id: str | None
    text: str


# -- the glue -------------------------------------------------------------------------------------


class SlackChannel:
    """Runs the engine and the support desk behind a Bolt `AsyncApp` (Socket Mode or HTTP).

    The caller builds `app` (token, `AsyncWebClient` with `base_url`, signing secret in HTTP
    mode, `process_before_response=True`) and starts the channel with `start_socket_mode` or
    `start_http` (then mounts `http_endpoint` at `POST /slack/events`), then `stop`.
    """

    def __init__(
        self,
        app: AsyncApp,
        handler: Handler,
        *,
        undelivered: ReportUndelivered,
        desk: SupportDesk | None = None,
        policy: SlackRetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.app = app
        self.client = app.client
        self.policy = policy or SlackRetryPolicy()
        self._sleep = sleep
        self._handler = handler
        self._undelivered = undelivered
        self.desk = desk
        self._locks: KeyedLocks[str] = KeyedLocks()
        self._dms: dict[str, str] = {}  # user → DM channel id
        self._profiles: dict[str, tuple[str | None, str | None, str | None]] = {}
        self._open: OrderedDict[str, _Question] = OrderedDict()  # DM → its live question
        self._closed: OrderedDict[tuple[str, str], str | None] = OrderedDict()
        self._socket: AsyncSocketModeHandler | None = None
        self._http = AsyncSlackRequestHandler(app)
        self.bot_user_id: str | None = None
        app.event("message")(self._on_message)
        app.action(re.compile(f"^{kit.ANSWER_ACTION}_"))(self._on_answer)
        app.action(kit.ACK_ACTION)(self._on_acknowledge)
        app.action(kit.RESOLVE_ACTION)(self._on_open_resolve)
        app.action(kit.REPLY_ACTION)(self._on_open_reply)
        app.view(kit.RESOLVE_VIEW)(self._on_resolve)
        app.view(kit.REPLY_VIEW)(self._on_reply)
        app.error(self._on_error)

    # -- lifecycle ----------------------------------------------------------------------------

    async def _call(self, method: str, what: str, **kwargs: Any) -> dict[str, Any]:
        api = getattr(self.client, method)
        return await call_slack(
            lambda: api(**kwargs), what=what, policy=self.policy, sleep=self._sleep
        )

    async def connect(self) -> None:
        """auth.test: fails clearly on a wrong token; remembers the bot's own user id."""
        answer = await self._call("auth_test", "auth.test")
        self.bot_user_id = answer.get("user_id")
        log.info("Slack: connected as %s in %s", answer.get("user"), answer.get("team"))

    async def start_socket_mode(self, *, app_token: str) -> None:
        """Connect, then receive events over a Socket Mode websocket until `stop`."""
        await self.connect()
        self._socket = AsyncSocketModeHandler(self.app, app_token, web_client=self.client)
        await self._socket.connect_async()  # type: ignore[no-untyped-call]

    async def start_http(self) -> None:
        """Connect; events then arrive through `http_endpoint`."""
        await self.connect()

    async def stop(self) -> None:
        """Close the Socket Mode connection (HTTP mode has nothing to close)."""
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None

    async def http_endpoint(self, request: Request) -> Response:
        """`POST /slack/events`: Bolt verifies the signature and timestamp, then dispatches."""
        retry = request.headers.get(RETRY_HEADER)
        if retry is not None:
            # Handled again safely (event ids are recorded once); the log says why it came.
            log.info("Slack retry %s (%s)", retry, request.headers.get("x-slack-retry-reason", "?"))
        return await self._http.handle(request)

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        log.error("handling a Slack request failed (%s)", body.get("type"), exc_info=error)
        raise error  # HTTP 500 / no Socket Mode ack: Slack retries, the event id dedups

    # -- customers ----------------------------------------------------------------------------

    async def _on_message(self, body: dict[str, Any]) -> None:
        translated = translate_event(body)
        if isinstance(translated, Ignored):
            log.debug("ignoring Slack event %s: %s", body.get("event_id"), translated.reason)
            return
        async with self._locks.hold(translated.dm):
            await self._turn(translated)

    async def _on_answer(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        translated = translate_answer(body)
        if isinstance(translated, Ignored):
            return
        async with self._locks.hold(translated.dm):
            key = (translated.dm, translated.message_ts or "")
            if key in self._closed:
                label = self._closed[key]
                text = (
                    NOTICES["already_answered"].format(label=label)
                    if label is not None
                    else NOTICES["closed"]
                )
                await self._ephemeral(translated.dm, translated.message.user_id, text)
                return
            await self._turn(translated)

    async def _profile(self, msg: IncomingMessage) -> IncomingMessage:
        """The message with the customer's name and locale (users.info, once per process)."""
        if msg.user_id not in self._profiles:
            try:
                answer = await self._call(
                    "users_info", f"users.info {msg.user_id}", user=msg.user_id, include_locale=True
                )
            except DeliveryError as exc:
                log.info("no Slack profile for %s: %s", msg.user_id, exc)
                return msg  # not cached: asked again next time
            user = answer.get("user") or {}
            profile = user.get("profile") or {}
            first = profile.get("first_name") or user.get("real_name") or None
            last = profile.get("last_name") or None
            self._profiles[msg.user_id] = (first, last, user.get("locale"))
        first, last, locale = self._profiles[msg.user_id]
        return replace(msg, first_name=first, last_name=last, locale=locale)

    async def _turn(self, t: ForEngine) -> None:
        self._dms[t.message.user_id] = t.dm
        replies = await self._handler(await self._profile(t.message))
        if not replies:
            return  # a redelivered event
        answered = next((r.answered for r in replies if r.answered is not None), None)
        if t.message_ts is not None:
            if answered is not None:
                await self._close(t.dm, t.message_ts, t.message_text or "", t.label)
            else:  # a button of a question no longer asked
                await self._close(t.dm, t.message_ts, t.message_text or "", None)
        elif answered is not None:
            current = self._open.get(t.dm)
            if current is not None and current.question_id == answered:
                await self._close(t.dm, current.ts, current.text, None)  # answered by typing
        await self._send_all(t.dm, t.message.user_id, replies)

    async def _send_all(self, dm: str, user_id: str, replies: Sequence[OutgoingMessage]) -> None:
        for reply in replies:
            previous = self._open.get(dm)
            if reply.choices and previous is not None:
                await self._close(dm, previous.ts, previous.text, None)  # one live question
            try:
                ts = await self._post(dm, reply)
            except DeliveryError as exc:
                # The turn is stored, so a retry by Slack would be ignored as a duplicate: the
                # engine keeps the failure and sends the question again. Later replies wait too.
                unreachable = isinstance(exc, RecipientUnreachableError)
                await self._undelivered(
                    channel=CHANNEL, user_id=user_id, reason=str(exc), unreachable=unreachable
                )
                return
            if reply.choices:
                _remember(self._open, dm, _Question(ts, reply.question_id, reply.text))

    async def _post(self, dm: str, message: OutgoingMessage) -> str:
        args = kit.render_question(message)
        answer = await self._call(
            "chat_postMessage",
            f"chat.postMessage to {dm}",
            channel=dm,
            text=args["text"],
            blocks=args["blocks"],
        )
        return str(answer.get("ts") or "")

    async def _close(self, dm: str, ts: str, text: str, label: str | None) -> None:
        """Show the chosen value (or nothing) in place of the buttons: no double answers."""
        key = (dm, ts)
        if key in self._closed and label is None:
            return
        _remember(self._closed, key, label)
        current = self._open.get(dm)
        if current is not None and current.ts == ts:
            del self._open[dm]
        args = kit.render_answered(text, label)
        try:
            await self._call(
                "chat_update",
                f"chat.update {dm}/{ts}",
                channel=dm,
                ts=ts,
                text=args["text"],
                blocks=args["blocks"],
            )
        except DeliveryError as exc:
            # Cosmetic: the answer is stored; the engine refuses a stale button anyway.
            log.warning("could not close an answered question: %s", exc)

    async def open_dm(self, user_id: str) -> str:
        """The DM channel id with a user (conversations.open; remembered)."""
        if not _USER_ID.fullmatch(user_id):
            raise DeliveryError(f"{user_id!r} is not a Slack user id (U… or W…)")
        if user_id not in self._dms:
            answer = await self._call(
                "conversations_open", f"conversations.open {user_id}", users=user_id
            )
            self._dms[user_id] = str((answer.get("channel") or {}).get("id") or "")
        return self._dms[user_id]

    async def deliver(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        """Send messages to their customers' DMs in order (invitations, support replies).

        Raises RecipientUnreachableError / RateLimitedError / DeliveryError; the first failure
        stops the rest. Returns the messages' ts.
        """
        sent: list[str] = []
        for message in messages:
            dm = await self.open_dm(message.user_id)
            async with self._locks.hold(dm):
                previous = self._open.get(dm)
                if message.choices and previous is not None:
                    await self._close(dm, previous.ts, previous.text, None)
                ts = await self._post(dm, message)
                if message.choices:
                    _remember(self._open, dm, _Question(ts, message.question_id, message.text))
            sent.append(ts)
        return sent

    async def _ephemeral(self, channel: str, user: str, text: str) -> None:
        try:
            await self._call(
                "chat_postEphemeral",
                f"chat.postEphemeral to {user}",
                channel=channel,
                user=user,
                text=text,
            )
        except DeliveryError as exc:
            log.info("could not send a notice to %s: %s", user, exc)

    # -- the support desk ---------------------------------------------------------------------

    async def show_alert(self, *, target: str, card: ReviewCard, message_ts: str | None) -> str:
        """Post the alert to `target` (or update it in place); its ts. Raises DeliveryError."""
        args = kit.render_alert(card)
        if message_ts is None:
            answer = await self._call(
                "chat_postMessage",
                f"chat.postMessage to {target}",
                channel=target,
                text=args["text"],
                blocks=args["blocks"],
                unfurl_links=False,
            )
            return str(answer.get("ts") or "")
        await self._call(
            "chat_update",
            f"chat.update {target}/{message_ts}",
            channel=target,
            ts=message_ts,
            text=args["text"],
            blocks=args["blocks"],
        )
        return message_ts

    def _allowed(self, user: str | None) -> bool:
        return self.desk is not None and user is not None and user in self.desk.support_users

    async def _notify_presser(self, body: Mapping[str, Any], text: str) -> None:
        """An ephemeral notice to whoever pressed a button, where they pressed it."""
        user = (body.get("user") or {}).get("id")
        channel = (body.get("container") or {}).get("channel_id") or (
            body.get("channel") or {}
        ).get("id")
        if isinstance(channel, str) and isinstance(user, str):
            await self._ephemeral(channel, user, text)

    async def _refuse(self, body: Mapping[str, Any]) -> bool:
        """True (after an ephemeral notice) when the presser may not act on alerts."""
        user = (body.get("user") or {}).get("id")
        if self._allowed(user):
            return False
        log.warning("Slack user %s pressed an alert button but is not a support user", user)
        who = ", ".join(f"<@{u}>" for u in sorted(self.desk.support_users)) if self.desk else ""
        await self._notify_presser(body, NOTICES["not_support"].format(who=who or "none"))
        return True

    @staticmethod
    def _status_step(card: ReviewCard) -> ReviewStep | None:
        """The latest step that gave the item its current status (None for an open item)."""
        actions = _STATUS_STEPS.get(card.status, ())
        return next((s for s in reversed(card.history) if s.action in actions), None)

    async def _stale_press(self, body: Mapping[str, Any], review_id: int) -> None:
        """Tell the presser that their (out-of-date) alert's button no longer applies."""
        card = await self.desk.card(review_id=review_id) if self.desk is not None else None
        if card is None:
            await self._notify_presser(body, NOTICES["gone"])
            return
        step = self._status_step(card)
        by = f" (by <@{step.actor}> at {kit.when(step)})" if step is not None else ""
        text = NOTICES["already"].format(review_id=review_id, status=card.status, by=by)
        await self._notify_presser(body, text)

    async def _name_of(self, user: str) -> str:
        """A Slack user's name for plain text, where a `<@U…>` mention does not render."""
        try:
            answer = await self._call("users_info", f"users.info {user}", user=user)
        except DeliveryError as exc:
            log.info("no Slack profile for %s: %s", user, exc)
            return user
        found = answer.get("user") or {}
        profile = found.get("profile") or {}
        name = profile.get("display_name") or found.get("real_name") or profile.get("real_name")
        return str(name or user)

    @staticmethod
    def _review_id(body: Mapping[str, Any]) -> int | None:
        for action in body.get("actions") or []:
            value = str(action.get("value") or "")
            if value.isdigit():
                return int(value)
        return None

    async def _on_acknowledge(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        review_id = self._review_id(body)
        if review_id is None or await self._refuse(body) or self.desk is None:
            return
        try:
            changed = await self.desk.acknowledge(review_id=review_id, actor=body["user"]["id"])
        except ReviewNotFoundError:
            changed = False  # _stale_press finds no card and says so
        if not changed:
            await self._stale_press(body, review_id)

    async def _open_modal(self, body: Mapping[str, Any], reply: bool) -> None:
        review_id = self._review_id(body)
        if review_id is None or await self._refuse(body) or self.desk is None:
            return
        card = await self.desk.card(review_id=review_id)
        # A reply to a resolved item is still allowed; resolving it again is not.
        if card is None or (not reply and card.status == "resolved"):
            await self._stale_press(body, review_id)
            return
        container = body.get("container") or {}
        channel, ts = str(container.get("channel_id", "")), str(container.get("message_ts", ""))
        if reply:
            view = kit.reply_modal(review_id, channel, ts, card.customer)
        else:
            view = kit.resolve_modal(review_id, channel, ts)
        await self._call("views_open", "views.open", trigger_id=body.get("trigger_id"), view=view)

    async def _on_open_resolve(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        await self._open_modal(body, reply=False)

    async def _on_open_reply(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        await self._open_modal(body, reply=True)

    @staticmethod
    def _submitted(body: Mapping[str, Any], block: str, action: str) -> tuple[int | None, str]:
        """The review id the modal was opened for (None if unreadable) and the text typed."""
        view = body.get("view") or {}
        values = (view.get("state") or {}).get("values") or {}
        text = ((values.get(block) or {}).get(action) or {}).get("value") or ""
        try:
            meta = json.loads(view.get("private_metadata") or "")
        except ValueError:
            meta = None
        review_id = meta.get("review_id") if isinstance(meta, dict) else None
        # bool is an int too; a review id is a positive int, as resolve_modal wrote it.
        valid = isinstance(review_id, int) and not isinstance(review_id, bool) and review_id > 0
        return (review_id if valid else None), str(text).strip()

    @staticmethod
    async def _form_error(ack: Any, block: str, text: str) -> None:
        """Keep the modal open with `text` under its input (short: Slack shows ~150 chars)."""
        await ack(response_action="errors", errors={block: text[:150]})

    async def _on_resolve(self, ack: Any, body: dict[str, Any]) -> None:
        review_id, note = self._submitted(body, kit.NOTE_BLOCK, kit.NOTE_INPUT)
        user = (body.get("user") or {}).get("id")
        if not self._allowed(user) or self.desk is None:
            await self._form_error(ack, kit.NOTE_BLOCK, "Support users only.")
            return
        if review_id is None:
            log.warning("a Slack resolve form without a readable review id, from %s", user)
            await self._form_error(ack, kit.NOTE_BLOCK, NOTICES["stale_form"])
            return
        if not note:
            await self._form_error(ack, kit.NOTE_BLOCK, NOTICES["empty"])
            return
        try:
            changed = await self.desk.resolve(review_id=review_id, actor=str(user), note=note)
        except ReviewNotFoundError:
            await self._form_error(ack, kit.NOTE_BLOCK, NOTICES["gone"])
            return
        if not changed:
            # Another agent resolved it meanwhile: the modal stays open so that the note can be
            # copied, rather than closing as if it had been saved.
            await self._form_error(ack, kit.NOTE_BLOCK, await self._resolved_by(review_id))
            return
        await ack()

    async def _resolved_by(self, review_id: int) -> str:
        """The modal error for an item resolved meanwhile, naming who resolved it if known."""
        card = await self.desk.card(review_id=review_id) if self.desk is not None else None
        step = self._status_step(card) if card is not None else None
        by = f" by {await self._name_of(step.actor)} at {kit.when(step)}" if step else ""
        return NOTICES["already_resolved"].format(by=by)

    async def _on_reply(self, ack: Any, body: dict[str, Any]) -> None:
        review_id, text = self._submitted(body, kit.REPLY_BLOCK, kit.REPLY_INPUT)
        user = (body.get("user") or {}).get("id")
        if not self._allowed(user) or self.desk is None:
            await self._form_error(ack, kit.REPLY_BLOCK, "Support users only.")
            return
        if review_id is None:
            log.warning("a Slack reply form without a readable review id, from %s", user)
            await self._form_error(ack, kit.REPLY_BLOCK, NOTICES["stale_form"])
            return
        if not text:
            await self._form_error(ack, kit.REPLY_BLOCK, NOTICES["empty"])
            return
        try:
            await self.desk.reply(review_id=review_id, actor=str(user), text=text)
        except ReviewNotFoundError:
            await self._form_error(ack, kit.REPLY_BLOCK, NOTICES["gone"])
            return
        except DeliveryError as exc:
            await self._form_error(ack, kit.REPLY_BLOCK, NOTICES["reply_failed"].format(error=exc))
            return
        await ack()
