"""The Slack channel: slack-bolt AsyncApp events and actions in, Block Kit out.

This adapter translates and sends, nothing more:

- `translate_event` / `translate_answer`: an Events API body / a survey button's
  `block_actions` body → what it means for cxbot (pure); `translate_json` is either, as the
  inbox recorded it (with the customer's profile, see below);
- `raw_event`: the body's key and lane for the inbox (pure);
- `SlackSender`: the delivery worker's `ChannelSender` (post a question in the customer's DM,
  close a question's buttons in place, answer a press with an ephemeral notice), each a Web API
  call with Slack's errors mapped to cxbot's (`adapters.slack_delivery`);
- `translate_support_press` / `translate_support_form`: an alert button's or a support modal's
  body → what it asks of the support desk (pure);
- `SlackChannel`: Bolt listeners that record each customer event in the inbox BEFORE Slack is
  answered, and render the support desk's answers to alert buttons and modals.

What reaches the engine, and what does not:

- a direct message (`message` event, `channel_type: im`) from a person → TEXT; a file without
  text → UNSUPPORTED. Bot messages, edits, deletions and channel messages are ignored (and not
  recorded).
- a pressed survey button → BUTTON with its payload and the press (the question's ts, DM
  channel, text and the label pressed), so that the question can be closed in place to show
  the choice; a second press on a closed question gets an "Already answered" notice.

The customer's name and locale come from users.info: the listener asks for them (once per
process) before recording and keeps them in the recorded body under `PROFILE_KEY`, so that
translation stays pure. The inbox keys a message by its Events API `event_id` and a button by
`action:<user>:<action_ts>`, so a retried delivery (`X-Slack-Retry-Num`) or a replayed Socket
Mode envelope is handled once.

Support actions on alerts (Acknowledge, Resolve, Reply to customer, Correct label) are
translated into the neutral `SupportPress` / `SupportSubmission` (`translate_support_press`,
`translate_support_form`, pure) and passed to a `SupportDesk` (bot.messages; bot.reviews'
`ReviewDesk`), which decides — who may act, what is out of date, what a form lacks — and words
its answer (bot.support_actions). The adapter renders that answer: an ephemeral notice, a
modal opened with views.open, or the modal kept open with an error under its input
(`response_action: errors`). For the desk's notices it names people (`mention`: `<@U…>`;
`plain_name`: users.info, where a mention does not render). Both Socket Mode and HTTP mode
answer Slack only after the listener returned (`process_before_response`): for a customer's
event, only after the inbox committed it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from slack_bolt import BoltResponse
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import to_async_bolt_request, to_starlette_response
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adapters import slack_blocks as kit
from adapters.retrying import RetryPolicy, Sleep
from adapters.slack_delivery import call_slack
from bot.errors import DeliveryError
from bot.messages import (
    ButtonPress,
    Ignored,
    Inbound,
    IncomingMessage,
    MessageKind,
    OutgoingMessage,
    RawUpdate,
    RecordUpdates,
    ReviewCard,
    SentRef,
    SupportAction,
    SupportDesk,
    SupportForm,
    SupportFormError,
    SupportNotice,
    SupportPress,
    SupportSubmission,
)

log = logging.getLogger(__name__)

CHANNEL = "slack"
RETRY_HEADER = "x-slack-retry-num"
# Where the listener keeps the customer's users.info profile in the recorded body.
PROFILE_KEY = "cxbot_profile"
# users.info is asked before an event is recorded, so before Slack gets its answer (3 s).
PROFILE_POLICY = RetryPolicy(attempts=2, backoff=0.2, max_backoff=0.2, max_retry_after=0.5)
PROFILE_TIMEOUT = 1.5
MAX_NOTICE = 3000  # an ephemeral notice's text
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # Unix seconds; anything else is not Slack's
SIGNATURE_MAX_AGE = 300  # seconds, as Slack and Bolt have it: older requests may be replays


def _signed(secret: bytes, body: bytes, headers: Headers) -> bool:
    """Whether Slack signed `body` within the last five minutes (`X-Slack-Signature`).

    Computed on the raw bytes (slack_sdk's verifier decodes them first, and fails on non-UTF-8).
    """
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not _TIMESTAMP.fullmatch(timestamp) or not signature.isascii():
        return False
    if abs(time.time() - int(timestamp)) > SIGNATURE_MAX_AGE:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret, base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode())


T = TypeVar("T")


class _ListenerFailed(Exception):
    """A listener failed for a reason other than the body (the inbox, Slack's API): retried."""


async def _retryable(work: Awaitable[T], what: str) -> T:
    """`await work`; its failure (the inbox, the database, Slack's API — not the body) logged
    and raised as `_ListenerFailed`, which answers Slack 500 so that it retries."""
    try:
        return await work
    except Exception as exc:
        log.error("Slack: %s failed", what, exc_info=exc)
        raise _ListenerFailed(f"{what}: {type(exc).__name__}: {exc}") from exc


class _Unreadable(Exception):
    """A signed body that the pure translations cannot read: answered 400, not retried."""


def _readable(translate: Callable[[Mapping[str, Any]], T], body: Mapping[str, Any]) -> T:
    """`translate(body)`, its errors as `_Unreadable`: translation is pure (no I/O), so any
    error there is the body's fault, and Slack retrying it would not help."""
    try:
        return translate(body)
    except Exception as exc:
        raise _Unreadable(f"{type(exc).__name__}: {exc}") from None


def _unreadable(reason: str) -> Response:
    # Signed, so by Slack (or by someone holding the secret): worth a line, never the body.
    log.warning("Slack: refused a signed request (400): %s", reason)
    return JSONResponse({"error": reason}, status_code=400)


# -- Slack → cxbot --------------------------------------------------------------------------------


def translate_event(body: Mapping[str, Any]) -> IncomingMessage | Ignored:
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
        return replace(base, kind=MessageKind.UNSUPPORTED)
    if subtype not in (None, "file_share", "thread_broadcast"):
        return Ignored(f"message subtype {subtype}")
    if not isinstance(text, str):
        return replace(base, kind=MessageKind.UNSUPPORTED)
    return replace(base, text=_unescape(text))


def _answer_action(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The survey button among a `block_actions` body's actions (None if there is none)."""
    for action in body.get("actions") or []:
        if isinstance(action, Mapping) and str(action.get("action_id", "")).startswith(
            kit.ANSWER_ACTION
        ):
            return action
    return None


def translate_answer(body: Mapping[str, Any]) -> IncomingMessage | Ignored:
    """What a survey button press (`block_actions`) means for the engine (pure: no I/O)."""
    action = _answer_action(body)
    user = (body.get("user") or {}).get("id")
    container = body.get("container") or {}
    dm = container.get("channel_id") or (body.get("channel") or {}).get("id")
    if action is None or not isinstance(user, str) or not isinstance(dm, str):
        return Ignored("not a survey button")
    message = body.get("message") or {}
    label = (action.get("text") or {}).get("text")
    stamp = action.get("action_ts") or body.get("trigger_id")
    message_ts = container.get("message_ts") or message.get("ts")
    press = ButtonPress(
        query_id=None,  # Slack needs no answer to a press: the HTTP ack stops its spinner
        message_id=str(message_ts) if message_ts else None,
        chat=dm,
        message_text=_question_text(message),
        label=label if isinstance(label, str) else None,
    )
    return IncomingMessage(
        channel=CHANNEL,
        user_id=user,
        kind=MessageKind.BUTTON,
        payload=str(action.get("value") or ""),
        platform_message_id=press.message_id,
        event_id=f"slack-action:{user}:{stamp}" if stamp else None,
        press=press,
    )


def translate_json(body: Mapping[str, Any]) -> Inbound:
    """What a recorded body (an event or a survey button, see `raw_event`) means (pure).

    The customer's profile, when the listener found it, is read from `PROFILE_KEY`. Raises
    ValueError for a body that is not readable as either.
    """
    try:
        kind = body.get("type")
        if kind == "block_actions":
            found = translate_answer(body)
        elif kind == "event_callback" or isinstance(body.get("event"), Mapping):
            found = translate_event(body)
        else:
            return Ignored(f"Slack request of type {kind}")
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a Slack event or button press: {exc!r}") from None
    profile = body.get(PROFILE_KEY)
    if isinstance(found, IncomingMessage) and isinstance(profile, Mapping):
        found = replace(
            found,
            first_name=_text(profile.get("first_name")),
            last_name=_text(profile.get("last_name")),
            locale=_text(profile.get("locale")),
        )
    return found


def raw_event(body: Mapping[str, Any]) -> RawUpdate:
    """The inbox record of a body: keyed by event id (or user and action_ts for a button), in
    the lane of its customer.

    Raises ValueError for a body without what the key needs.
    """
    if body.get("type") == "block_actions":
        user = (body.get("user") or {}).get("id")
        action = _answer_action(body) or {}
        stamp = action.get("action_ts") or body.get("trigger_id")
        if not isinstance(user, str) or not stamp:
            raise ValueError("a Slack button press without a user or action_ts")
        key = f"action:{user}:{stamp}"
    else:
        event = body.get("event") or {}
        user = event.get("user") if isinstance(event, Mapping) else None
        key = str(body.get("event_id") or "")
        if not isinstance(user, str) or not key:
            raise ValueError("a Slack event without an event_id or a user")
    return RawUpdate(event_key=key, lane=f"{CHANNEL}:{user}", body=dict(body))


def translate_support_press(body: Mapping[str, Any]) -> SupportPress | Ignored:
    """What an alert button's `block_actions` body asks of the support desk (pure)."""
    user = (body.get("user") or {}).get("id")
    for action in body.get("actions") or []:
        if not isinstance(action, Mapping):
            continue
        kind = kit.ALERT_ACTIONS.get(str(action.get("action_id", "")))
        value = str(action.get("value") or "")
        if kind is not None and value.isascii() and value.isdigit() and isinstance(user, str):
            return SupportPress(action=kind, actor=user, review_id=int(value))
    return Ignored("not an alert button with a review id and a user")


def translate_support_form(body: Mapping[str, Any]) -> SupportSubmission | Ignored:
    """What a support modal's `view_submission` body asks of the support desk (pure).

    The review id is read from the modal's `private_metadata` (as `kit.support_modal` wrote
    it; None when unreadable), the text from its input, trimmed.
    """
    view = body.get("view") or {}
    action = kit.FORM_VIEWS.get(str(view.get("callback_id") or ""))
    if action is None:
        return Ignored(f"not a support form: {view.get('callback_id')!r}")
    values = (view.get("state") or {}).get("values") or {}
    try:
        meta = json.loads(view.get("private_metadata") or "")
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        meta = {}
    user = (body.get("user") or {}).get("id")
    actor = user if isinstance(user, str) else None
    review_id = _row_id(meta.get("review_id"))
    if action == SupportAction.CORRECT_LABEL:
        # The answer is chosen in a select when the item has several texts; else the modal
        # kept its id in the metadata.
        chosen = _selected(values, kit.TEXT_BLOCK, kit.TEXT_SELECT)
        if not chosen:
            answer_id = _row_id(meta.get("answer_id"))
        else:
            answer_id = _row_id(int(chosen)) if chosen.isascii() and chosen.isdigit() else None
        return SupportSubmission(
            action=action,
            actor=actor,
            review_id=review_id,
            text="",
            answer_id=answer_id,
            label=_selected(values, kit.LABEL_BLOCK, kit.LABEL_SELECT) or None,
        )
    block, element = kit.FORM_INPUTS[action]
    text = ((values.get(block) or {}).get(element) or {}).get("value") or ""
    return SupportSubmission(
        action=action, actor=actor, review_id=review_id, text=str(text).strip()
    )


def _row_id(value: object) -> int | None:
    """A database id as a modal wrote it: a positive int (bool is an int too: not one)."""
    valid = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return value if valid and isinstance(value, int) else None


def _selected(values: Mapping[str, Any], block: str, element: str) -> str:
    """The value of a static_select's chosen option in a view's state ("" when none)."""
    state = (values.get(block) or {}).get(element) or {}
    option = state.get("selected_option") if isinstance(state, Mapping) else None
    value = option.get("value") if isinstance(option, Mapping) else None
    return str(value).strip() if value is not None else ""


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _question_text(message: Mapping[str, Any]) -> str | None:
    """The question's own text: its first section (the fallback text may carry more)."""
    for block in message.get("blocks") or []:
        if block.get("type") == "section" and isinstance(block.get("text"), Mapping):
            return str(block["text"].get("text") or "")
    text = message.get("text")
    return text if isinstance(text, str) else None


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def profile_of(answer: Mapping[str, Any]) -> dict[str, str | None]:
    """The name and locale in a users.info answer, as `PROFILE_KEY` keeps them."""
    user = answer.get("user") or {}
    profile = user.get("profile") or {}
    return {
        "first_name": profile.get("first_name") or user.get("real_name") or None,
        "last_name": profile.get("last_name") or None,
        "locale": user.get("locale") or None,
    }


# -- cxbot → Slack --------------------------------------------------------------------------------


class SlackSender:
    """Delivers customers' messages in their DMs: the delivery worker's `ChannelSender`.

    Each call is tried as `policy` says (short: the outbox does the long waiting). Raises
    `RecipientUnreachableError`, `RateLimitedError` or `DeliveryError` (bot.errors). The DM
    channel of each customer is asked once (conversations.open) and remembered.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.client = client
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._dms: dict[str, str] = {}  # user → DM channel id

    async def _call(self, method: str, what: str, **kwargs: Any) -> dict[str, Any]:
        api = getattr(self.client, method)
        return await call_slack(
            lambda: api(**kwargs), what=what, policy=self.policy, sleep=self._sleep
        )

    async def open_dm(self, user_id: str) -> str:
        """The DM channel id with a user (conversations.open; remembered)."""
        if not _USER_ID.fullmatch(user_id):
            raise DeliveryError(f"{user_id!r} is not a Slack user id (U… or W…)")
        if user_id not in self._dms:
            answer = await self._call(
                "conversations_open", f"conversations.open {user_id}", users=user_id
            )
            dm = (answer.get("channel") or {}).get("id")
            if not isinstance(dm, str) or not dm:
                raise DeliveryError(f"conversations.open {user_id}: Slack named no channel")
            self._dms[user_id] = dm
        return self._dms[user_id]

    async def send(self, message: OutgoingMessage) -> SentRef:
        """Post one message (with its buttons) in the customer's DM; its ts and the DM."""
        dm = await self.open_dm(message.user_id)
        args = kit.render_question(message)
        answer = await self._call(
            "chat_postMessage",
            f"chat.postMessage to {dm}",
            channel=dm,
            text=args["text"],
            blocks=args["blocks"],
        )
        ts = answer.get("ts")
        return SentRef(message_id=str(ts) if ts else None, chat=dm)

    async def close_question(
        self, *, user_id: str, sent: SentRef, text: str | None, label: str | None
    ) -> None:
        """Show the question with the chosen label (or just the question) in place of its
        buttons, so that it cannot be answered twice."""
        if sent.message_id is None:
            return
        dm = sent.chat or await self.open_dm(user_id)
        args = kit.render_answered(text or "", label)
        await self._call(
            "chat_update",
            f"chat.update {dm}/{sent.message_id}",
            channel=dm,
            ts=sent.message_id,
            text=args["text"],
            blocks=args["blocks"],
        )

    async def answer_button(
        self, *, user_id: str, query_id: str | None, chat: str | None, text: str | None
    ) -> None:
        """A short notice to whoever pressed, seen by them only (the press was acknowledged
        when it arrived, so without `text` there is nothing to do)."""
        if not text:
            return
        dm = chat or await self.open_dm(user_id)
        await self._call(
            "chat_postEphemeral",
            f"chat.postEphemeral to {user_id}",
            channel=dm,
            user=user_id,
            text=text[:MAX_NOTICE],
        )


# -- receiving, and the support desk ---------------------------------------------------------------


class SlackChannel:
    """Bolt listeners behind an `AsyncApp` (Socket Mode or HTTP): customers' events into the
    inbox, alert buttons and modals to the support desk.

    The caller builds `app` (token, `AsyncWebClient` with `base_url`, signing secret in HTTP
    mode, `process_before_response=True`) and starts the channel with `start_socket_mode` or
    `start_http` (then mounts `http_endpoint` at `POST /slack/events`), then `stop`.
    """

    def __init__(
        self,
        app: AsyncApp,
        record: RecordUpdates,
        *,
        desk: SupportDesk | None = None,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.app = app
        self.client = app.client
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._record = record
        self.desk = desk
        self._profiles: dict[str, dict[str, str | None]] = {}  # user → PROFILE_KEY's value
        self._socket: AsyncSocketModeHandler | None = None
        # Bolt keeps the signing secret to itself; checking it here, before Bolt parses the body,
        # means nothing unsigned is ever parsed (and a malformed header is a 401, not a 500).
        self._secret = app._signing_secret.encode()
        self.bot_user_id: str | None = None
        app.event("message")(self._on_message)
        app.action(re.compile(f"^{kit.ANSWER_ACTION}_"))(self._on_answer)
        for action in kit.ALERT_ACTIONS:
            app.action(action)(self._on_alert_button)
        for view in kit.FORM_VIEWS:
            app.view(view)(self._on_support_form)
        app.error(self._on_error)

    # -- lifecycle ----------------------------------------------------------------------------

    async def _call(
        self, method: str, what: str, *, policy: RetryPolicy | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        api = getattr(self.client, method)
        return await call_slack(
            lambda: api(**kwargs), what=what, policy=policy or self.policy, sleep=self._sleep
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
        """`POST /slack/events`: the signature and timestamp are checked before anything is
        parsed (401, one log line with the size), a signed body Bolt cannot read is a 400, then
        Bolt dispatches it."""
        body = await request.body()
        if not _signed(self._secret, body, request.headers):
            log.warning("Slack: refused an unsigned or stale %d-byte request (401)", len(body))
            return JSONResponse({"error": "invalid request signature"}, status_code=401)
        try:
            bolt_request = to_async_bolt_request(request, body)
        except Exception as exc:  # Bolt parses the body in the constructor: bytes, JSON, form
            return _unreadable(f"body is not a readable Slack payload ({type(exc).__name__})")
        if not isinstance(bolt_request.body, dict):
            return _unreadable("body is not a JSON object")
        retry = request.headers.get(RETRY_HEADER)
        if retry is not None:
            # Recorded again harmlessly (the inbox keeps one row per event id); the log says why.
            log.info("Slack retry %s (%s)", retry, request.headers.get("x-slack-retry-reason", "?"))
        try:
            answer = await self.app.async_dispatch(bolt_request)
        except _ListenerFailed:
            # Ours (e.g. the inbox could not record it), logged in `_retryable`: Slack retries.
            return JSONResponse({"error": "not recorded; retry"}, status_code=500)
        except Exception as exc:
            # Other failures come back as answers (`_on_error`); what escapes is Bolt failing on
            # the body's shape in its own error path (e.g. `"actions": null`): the body's fault.
            return _unreadable(f"Bolt cannot read this body ({type(exc).__name__})")
        return to_starlette_response(answer)

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> BoltResponse | None:
        if isinstance(error, _ListenerFailed):
            # Logged where it happened. HTTP 500 / no Socket Mode ack: Slack retries, the inbox
            # dedups. (Bolt calls this twice, as listener and as middleware error handler.)
            raise error
        # Anything else failed on the body's shape — in Bolt's matching or in the pure
        # translations — so a retry would fail the same way: 400, and one line.
        log.warning(
            "Slack: refused a %s request (400): %s: %s",
            body.get("type") if isinstance(body, dict) else "?",
            type(error).__name__,
            error,
        )
        return BoltResponse(status=400, body='{"error": "not a readable Slack request"}')

    # -- customers ----------------------------------------------------------------------------

    async def _on_message(self, body: dict[str, Any]) -> None:
        found = _readable(translate_event, body)
        if isinstance(found, Ignored):
            log.debug("ignoring Slack event %s: %s", body.get("event_id"), found.reason)
            return
        # Bolt answers Slack once this returns: after the inbox committed the event.
        profiled = await self._with_profile(body, found.user_id)
        await _retryable(self._record([_readable(raw_event, profiled)]), "recording a Slack event")

    async def _on_answer(self, ack: Any, body: dict[str, Any]) -> None:
        found = _readable(translate_answer, body)
        if isinstance(found, IncomingMessage):
            profiled = await self._with_profile(body, found.user_id)
            await _retryable(self._record([_readable(raw_event, profiled)]), "recording a press")
        await ack()

    async def _with_profile(self, body: Mapping[str, Any], user: str) -> dict[str, Any]:
        """The body with the customer's name and locale (users.info, once per process)."""
        if user not in self._profiles:
            try:
                async with asyncio.timeout(PROFILE_TIMEOUT):
                    answer = await self._call(
                        "users_info",
                        f"users.info {user}",
                        policy=PROFILE_POLICY,
                        user=user,
                        include_locale=True,
                    )
            except (DeliveryError, TimeoutError) as exc:
                log.info("no Slack profile for %s: %r", user, exc)
                return dict(body)  # not remembered: asked again next time
            self._profiles[user] = profile_of(answer)
        return {**body, PROFILE_KEY: self._profiles[user]}

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

    async def _notify_presser(self, body: Mapping[str, Any], text: str) -> None:
        """An ephemeral notice to whoever pressed a button, where they pressed it."""
        user = (body.get("user") or {}).get("id")
        channel = (body.get("container") or {}).get("channel_id") or (
            body.get("channel") or {}
        ).get("id")
        if isinstance(channel, str) and isinstance(user, str):
            await self._ephemeral(channel, user, text)

    def mention(self, user_id: str) -> str:
        """A Slack user in a notice: `<@U…>` (the desk's `UserNames`)."""
        return kit.mention(user_id)

    async def plain_name(self, user_id: str) -> str:
        """A Slack user's name for plain text, where a `<@U…>` mention does not render (a
        modal's error): users.info's display name, else the id."""
        try:
            answer = await self._call("users_info", f"users.info {user_id}", user=user_id)
        except DeliveryError as exc:
            log.info("no Slack profile for %s: %s", user_id, exc)
            return user_id
        found = answer.get("user") or {}
        profile = found.get("profile") or {}
        name = profile.get("display_name") or found.get("real_name") or profile.get("real_name")
        return str(name or user_id)

    async def _on_alert_button(self, ack: Any, body: dict[str, Any]) -> None:
        """An alert's button (Acknowledge, Resolve, Reply, Correct label): the desk decides; a
        notice or a modal."""
        await ack()
        press = _readable(translate_support_press, body)
        if isinstance(press, Ignored):
            log.info("alert button ignored: %s", press.reason)
            return
        if self.desk is None:
            log.warning("an alert button was pressed, but no support desk is wired here")
            return
        outcome = await _retryable(self.desk.press(press), "an alert button")
        if isinstance(outcome, SupportNotice):
            await _retryable(self._notify_presser(body, outcome.text), "notifying the presser")
        elif isinstance(outcome, SupportForm):
            container = body.get("container") or {}
            view = kit.support_modal(
                outcome, str(container.get("channel_id", "")), str(container.get("message_ts", ""))
            )
            opened = self._call(
                "views_open", "views.open", trigger_id=body.get("trigger_id"), view=view
            )
            await _retryable(opened, "views.open")

    async def _on_support_form(self, ack: Any, body: dict[str, Any]) -> None:
        """A resolve, reply or label modal submitted: closed when done, else kept open with why."""
        form = _readable(translate_support_form, body)
        if isinstance(form, Ignored):
            log.info("support form ignored: %s", form.reason)
            await ack()
            return
        if self.desk is None:
            log.warning("a support form was submitted, but no support desk is wired here")
            await ack()
            return
        outcome = await _retryable(self.desk.submit(form), "a support form")
        if isinstance(outcome, SupportFormError):
            block = kit.FORM_INPUTS[form.action][0]
            errors = {block: outcome.text[: kit.MAX_FORM_ERROR]}
            await ack(response_action="errors", errors=errors)
            return
        await ack()
