"""Neutral messages exchanged between channel adapters and the dialogue engine.

Adapters build an `IncomingMessage` from a platform update and render each `OutgoingMessage` as
that platform's message (inline keyboard, Block Kit buttons, numbered console lines).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


class MessageKind(StrEnum):
    """What the customer sent."""

    TEXT = "text"
    BUTTON = "button"
    START = "start"
    UNSUPPORTED = "unsupported"


class ChoiceStyle(StrEnum):
    """How an adapter should lay out the choices of a question."""

    SCALE = "scale"  # numbers on one or two rows; typing the number answers
    OPTIONS = "options"  # a list of labelled options; typing its position answers


@dataclass(frozen=True, slots=True)
class Choice:
    """One button: the label shown and the payload sent back when it is pressed."""

    label: str
    payload: str


@dataclass(frozen=True, slots=True)
class ButtonPress:
    """A pressed button as the platform showed it: the question message, its text, the label.

    `query_id` is Telegram's callback query (answered to stop the button's spinner); `chat` is
    the conversation the message sits in where the platform needs it (Slack's DM channel).
    """

    query_id: str | None = None
    message_id: str | None = None  # None when the platform no longer shows that message
    chat: str | None = None
    message_text: str | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A customer's message, whatever the channel.

    `user_id` is the platform's id for the customer (Telegram chat id, Slack user id, console
    name). `payload` is set for a pressed button, `text` for typed text. A START message asks for
    a survey (`flow_id`, `context` from a deep link or an invitation). A customer who sends
    anything is reachable again, even if a delivery to them failed before.
    """

    channel: str
    user_id: str
    text: str | None = None
    payload: str | None = None
    kind: MessageKind = MessageKind.TEXT
    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None
    flow_id: str | None = None
    context: dict[str, str] = field(default_factory=dict)
    platform_message_id: str | None = None
    # The platform's id for this delivery (Telegram update_id, Slack event_id): a message whose
    # event_id was already handled is ignored, so redeliveries are processed once.
    event_id: str | None = None
    # For a BUTTON: where it was pressed (so its question can be closed and the press answered).
    press: ButtonPress | None = None
    # For a START from a link that could not be read: the default flow runs, with an apology.
    bad_link: bool = False


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A bot message: text plus optional choices, addressed to one customer on one channel."""

    channel: str
    user_id: str
    text: str
    choices: tuple[Choice, ...] = ()
    choice_style: ChoiceStyle = ChoiceStyle.OPTIONS
    question_id: str | None = None
    # The asked question's type (nps, ces, csat, yes_no, choice, text), so that an adapter can
    # lay out its choices: NPS on two rows, faces on CSAT buttons.
    question_type: str | None = None
    # Set on the first reply after an answer was accepted (or a question skipped): the id of
    # that question, so that an adapter can close its buttons and show the chosen value.
    answered: str | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """A one-line reply outside any survey (e.g. "private chats only"), or a button's answer."""

    channel: str
    recipient: str  # a chat the platform can write to (Telegram chat id, Slack user id)
    text: str
    query_id: str | None = None  # answer this pressed button with the text instead


@dataclass(frozen=True, slots=True)
class Unreachable:
    """The platform says the customer can no longer be written to (they blocked the bot)."""

    channel: str
    user_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """An update cxbot deliberately does nothing with, and why (for the debug log)."""

    reason: str


# What one recorded platform update means, as an adapter's pure translation says.
Inbound = IncomingMessage | Notice | Unreachable | Ignored


@dataclass(frozen=True, slots=True)
class RawUpdate:
    """A platform update as received, to be recorded in the inbox before it is acknowledged.

    `event_key` is the platform's id for it (duplicates are dropped); `lane` keeps order: the
    updates of one lane (one customer's chat) are processed one at a time, in arrival order.
    """

    event_key: str
    lane: str
    body: dict[str, Any]


class RecordUpdates(Protocol):
    """`Inbox.record` as an adapter sees it: returns once the updates are durably stored."""

    def __call__(self, updates: Sequence[RawUpdate]) -> Awaitable[int]: ...


@dataclass(frozen=True, slots=True)
class SentRef:
    """Where the platform keeps a message the bot sent: its id and, on Slack, the DM channel."""

    message_id: str | None
    chat: str | None = None


class ChannelSender(Protocol):
    """What the delivery worker asks of a channel adapter; each call is one delivery.

    Raises `RecipientUnreachableError`, `RateLimitedError` or `DeliveryError` (bot.errors).
    """

    async def send(self, message: OutgoingMessage) -> SentRef:
        """Send a message (with its buttons); where the platform keeps it."""
        ...

    async def close_question(
        self, *, user_id: str, sent: SentRef, text: str | None, label: str | None
    ) -> None:
        """Take the buttons off a sent question, showing `label` as the answer when given."""
        ...

    async def answer_button(
        self, *, user_id: str, query_id: str | None, chat: str | None, text: str | None
    ) -> None:
        """Acknowledge a pressed button (stop its spinner), with a short notice if `text`."""
        ...


@dataclass(frozen=True, slots=True)
class OutgoingEvent:
    """An event for another system (a configured webhook endpoint), as the outbox keeps it."""

    endpoint: str  # the configured endpoint's name
    event_id: str  # the same on every retry (`webhook-id`), so receivers can drop repeats
    payload: dict[str, Any]  # {"type", "timestamp", "data"}


@runtime_checkable
class EventSender(Protocol):
    """A sender that also delivers events (webhooks); raises bot.errors' delivery errors."""

    async def send_event(self, event: OutgoingEvent) -> None:
        """Deliver one event to its endpoint."""
        ...


@dataclass(frozen=True, slots=True)
class ReviewStep:
    """One thing the support team did with a review item, as an alert shows it."""

    action: str  # acknowledged / resolved / replied
    actor: str  # the platform's user id of who did it (Slack U…)
    at: datetime
    note: str | None = None

    @property
    def when(self) -> str:
        """When the step was taken, as alerts and notices show it: `2026-11-22 12:01 UTC`."""
        return self.at.strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True, slots=True)
class ReviewText:
    """One text answer of a flagged response, as an alert shows it.

    `sentiment` is the label as shown ("negative 93%", "neutral (corrected)", None while
    unlabelled); `label` the bare label. A text a person corrected names who (`corrected_by`, a
    platform user id or a web desk user's e-mail) and the model's own label (`corrected_from`).
    `answer_id` is what a correction names (None: this text cannot be corrected).
    """

    question_id: str
    text: str
    sentiment: str | None = None
    answer_id: int | None = None
    label: str | None = None
    corrected_from: str | None = None
    corrected_by: str | None = None


@dataclass(frozen=True, slots=True)
class ReviewCard:
    """A flagged survey response as the support team sees it (a Slack alert renders this)."""

    review_id: int
    status: str  # open / acknowledged / resolved
    customer: str  # name and platform id
    channel: str  # the customer's channel: telegram, slack, console
    flow_id: str
    scores: tuple[str, ...] = ()  # "NPS 3", "CSAT 1 of 5"
    texts: tuple[ReviewText, ...] = ()  # the text answers, with their sentiment labels
    reasons: tuple[str, ...] = ()
    history: tuple[ReviewStep, ...] = ()
    can_reply: bool = True  # False when the customer's channel cannot be written to


# -- the support desk: what agents do with alerts, and what the desk answers ----------------------


class SupportAction(StrEnum):
    """What a support agent asks of a flagged reply (an alert's buttons and forms)."""

    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"  # with a note, typed in a form
    REPLY = "reply"  # a message to the customer, typed in a form
    CORRECT_LABEL = "correct_label"  # a text answer's sentiment label, chosen in a form


@dataclass(frozen=True, slots=True)
class SupportPress:
    """An agent pressed one of an alert's buttons: `actor` is their platform user id."""

    action: SupportAction
    actor: str
    review_id: int


@dataclass(frozen=True, slots=True)
class SupportSubmission:
    """An agent submitted a form (RESOLVE: the note; REPLY: the text for the customer;
    CORRECT_LABEL: the text answer `answer_id` and the `label` chosen for it).

    `actor` is None when the platform named nobody, `review_id` None when the form's record of
    its item could not be read; `text` is what was typed, trimmed. `answer_id` and `label` are
    None when nothing was chosen (or the choice could not be read).
    """

    action: SupportAction
    actor: str | None
    review_id: int | None
    text: str
    answer_id: int | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class SupportDone:
    """The action was taken: a submitted form closes; the alert shows the change by itself."""


@dataclass(frozen=True, slots=True)
class SupportNotice:
    """Nothing was done: tell whoever pressed `text`, seen by them only."""

    text: str


@dataclass(frozen=True, slots=True)
class SupportForm:
    """Ask the agent for a text first: the resolution note, or the message to `customer`; or,
    for CORRECT_LABEL, which of `texts` to label and with which of `labels`."""

    action: SupportAction  # RESOLVE, REPLY or CORRECT_LABEL
    review_id: int
    customer: str  # name and platform id, as the alert shows them
    texts: tuple[ReviewText, ...] = ()  # CORRECT_LABEL: the texts that can be corrected
    labels: tuple[str, ...] = ()  # CORRECT_LABEL: the labels a person may choose


@dataclass(frozen=True, slots=True)
class SupportFormError:
    """A submitted form is refused: it stays open with `text` under its input."""

    text: str


# What a press and a submission come to.
PressOutcome = SupportDone | SupportNotice | SupportForm
SubmitOutcome = SupportDone | SupportFormError


class SupportDesk(Protocol):
    """What a platform's alert buttons and forms talk to (bot.reviews.ReviewDesk).

    The desk decides (who may act, what is out of date, what a form lacks) and words its
    answers; the adapter translates the platform's requests into these calls and renders what
    comes back.
    """

    async def press(self, press: SupportPress) -> PressOutcome:
        """An alert's button was pressed: done, a notice for the presser, or a form to open."""
        ...

    async def submit(self, form: SupportSubmission) -> SubmitOutcome:
        """A form was submitted: done (the form closes), or why it stays open."""
        ...


class UserNames(Protocol):
    """How a platform names its users in the support desk's notices (the adapter's part)."""

    def mention(self, user_id: str) -> str:
        """A mention the platform renders in a notice (Slack: `<@U…>`)."""
        ...

    async def plain_name(self, user_id: str) -> str:
        """A name for plain text, where a mention does not render (the id when none is known)."""
        ...
