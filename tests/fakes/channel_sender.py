"""A `ChannelSender` for the delivery worker's tests: records every call, fails when told.

    sender = FakeChannelSender()
    sender.fail(RateLimitedError("slow down", retry_after=0.6))          # the next send
    sender.fail(DeliveryError("502"), times=3, text="How likely")        # sends of that text
    sender.fail(RecipientUnreachableError("blocked"), user_id="42")      # the next send to 42
    sender.fail(DeliveryError("query too old"), action="answer")         # a button's answer

Each call is kept in `calls` (failed ones too, with the error); a successful `send` gives the
message the next platform id ("1", "2", ...), as Telegram numbers a chat's messages.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, replace

from bot.messages import OutgoingMessage, SentRef

SEND, CLOSE, ANSWER = "send", "close", "answer"


@dataclass(frozen=True)
class SenderCall:
    """One call the delivery worker made; `error` is what it raised, None when it went through."""

    action: str  # send / close / answer
    user_id: str
    text: str | None
    at: float  # time.monotonic()
    error: str | None = None
    message_id: str | None = None  # send: the id given to it; close: the message closed
    label: str | None = None  # close: the answer shown
    query_id: str | None = None  # answer: the pressed button's query
    question_id: str | None = None  # send: the question its buttons answer

    @property
    def ok(self) -> bool:
        """Whether the call went through."""
        return self.error is None


@dataclass
class _Failure:
    action: str
    error: Exception
    times: int
    user_id: str | None
    text: str | None


class FakeChannelSender:
    """Records what it is asked to send and raises the failures it was told to."""

    def __init__(self) -> None:
        self.calls: list[SenderCall] = []
        self._failures: list[_Failure] = []
        self._ids = itertools.count(1)

    def fail(
        self,
        error: Exception,
        *,
        times: int = 1,
        action: str = SEND,
        user_id: str | None = None,
        text: str | None = None,
    ) -> None:
        """Raise `error` on the next `times` calls of `action` (to `user_id`, whose text
        contains `text`, when given)."""
        self._failures.append(_Failure(action, error, times, user_id, text))

    def succeeded(self, action: str = SEND, user_id: str | None = None) -> list[SenderCall]:
        """The calls of `action` (to `user_id`) that went through, oldest first."""
        return [
            c
            for c in self.calls
            if c.ok and c.action == action and (user_id is None or c.user_id == user_id)
        ]

    def texts(self, user_id: str) -> list[str]:
        """Texts of the messages delivered to `user_id`, in order."""
        return [c.text or "" for c in self.succeeded(SEND, user_id)]

    def attempts(self, action: str = SEND) -> list[SenderCall]:
        """Every call of `action`, failed or not."""
        return [c for c in self.calls if c.action == action]

    def _failure(self, action: str, user_id: str, text: str | None) -> Exception | None:
        for failure in self._failures:
            if (
                failure.action == action
                and (failure.user_id is None or failure.user_id == user_id)
                and (failure.text is None or failure.text in (text or ""))
            ):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure.error
        return None

    def _go(self, call: SenderCall) -> None:
        """Record the call, or the failure it was told to raise instead (and raise it)."""
        error = self._failure(call.action, call.user_id, call.text)
        if error is not None:
            self.calls.append(replace(call, error=str(error), message_id=None))
            raise error
        self.calls.append(call)

    # -- ChannelSender ---------------------------------------------------------------------------

    async def send(self, message: OutgoingMessage) -> SentRef:
        """Deliver a message; the id the "platform" gave it."""
        call = SenderCall(
            SEND, message.user_id, message.text, time.monotonic(), question_id=message.question_id
        )
        self._go(call)
        message_id = str(next(self._ids))  # numbered only when delivered
        self.calls[-1] = replace(call, message_id=message_id)
        return SentRef(message_id=message_id)

    async def close_question(
        self, *, user_id: str, sent: SentRef, text: str | None, label: str | None
    ) -> None:
        """Take the buttons off a sent question."""
        self._go(
            SenderCall(
                CLOSE, user_id, text, time.monotonic(), message_id=sent.message_id, label=label
            )
        )

    async def answer_button(
        self, *, user_id: str, query_id: str | None, chat: str | None, text: str | None
    ) -> None:
        """Acknowledge a pressed button."""
        self._go(SenderCall(ANSWER, user_id, text, time.monotonic(), query_id=query_id))
