"""Neutral messages exchanged between channel adapters and the dialogue engine.

Adapters build an `IncomingMessage` from a platform update and render each `OutgoingMessage` as
that platform's message (inline keyboard, Block Kit buttons, numbered console lines).
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


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
class ReviewStep:
    """One thing the support team did with a review item, as an alert shows it."""

    action: str  # acknowledged / resolved / replied
    actor: str  # the platform's user id of who did it (Slack U…)
    at: datetime
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ReviewCard:
    """A flagged survey response as the support team sees it (a Slack alert renders this)."""

    review_id: int
    status: str  # open / acknowledged / resolved
    customer: str  # name and platform id
    channel: str  # the customer's channel: telegram, slack, console
    flow_id: str
    scores: tuple[str, ...] = ()  # "NPS 3", "CSAT 1 of 5"
    # (question id, text, sentiment such as "negative 93%" or None while unlabelled)
    texts: tuple[tuple[str, str, str | None], ...] = ()
    reasons: tuple[str, ...] = ()
    history: tuple[ReviewStep, ...] = ()
    can_reply: bool = True  # False when the customer's channel cannot be written to


class MarkUnreachable(Protocol):
    """`Engine.mark_unreachable`'s signature: record that a customer cannot be messaged."""

    def __call__(self, *, channel: str, user_id: str, reason: str) -> Awaitable[None]: ...


class ReportUndelivered(Protocol):
    """`Engine.undelivered`'s signature: a reply the platform refused after retries.

    `unreachable`: the customer blocked the bot or left, rather than the platform failing.
    """

    def __call__(
        self, *, channel: str, user_id: str, reason: str, unreachable: bool = False
    ) -> Awaitable[None]: ...
