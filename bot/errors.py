"""The project's error hierarchy. Commands turn these into one clear message and an exit code."""

from __future__ import annotations

from dataclasses import dataclass


class CxbotError(Exception):
    """Base class of every error cxbot reports to a user."""


class ConfigError(CxbotError):
    """The configuration file or an environment override is missing, unreadable or invalid."""


@dataclass(frozen=True, slots=True)
class FlowProblem:
    """One problem in a flow file, printed as `PATH:LINE: message` (line omitted when unknown)."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


class FlowError(CxbotError):
    """A flow file is invalid; `problems` lists every problem found."""

    def __init__(self, problems: list[FlowProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class UnknownFlowError(CxbotError):
    """A flow id that no loaded flow file defines."""


class ReviewNotFoundError(CxbotError):
    """No review item has this id (an alert or a form outlived its item)."""


class DeliveryError(CxbotError):
    """A message could not be delivered to a channel (adapters raise the subclasses)."""


class RecipientUnreachableError(DeliveryError):
    """The platform says the customer cannot be reached (blocked the bot, deactivated, left)."""


class RateLimitedError(DeliveryError):
    """The platform asked us to slow down; retry after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeliveryRefusedError(DeliveryError):
    """The recipient refused this one delivery for good (a webhook's 4xx): it is given up at
    once and recorded, without retries, while later deliveries to the recipient go on."""


class ReviewConflictError(CxbotError):
    """A review action does not apply: the item changed since the page was shown (a stale
    version, a double submit), or its status rules the action out (acknowledging a non-open
    item, resolving a resolved one, reopening an open one). Nothing was stored."""


class CustomerUnreachableError(CxbotError):
    """A reply was refused because the customer cannot be reached: they blocked the bot or
    their data was erased. Nothing was stored."""


class LabelCorrectionError(CxbotError):
    """A sentiment label correction was refused: an unknown label, or the label the text
    already shows. Nothing was stored."""


class DeskUserError(CxbotError):
    """A desk user change was refused: a malformed e-mail, an unknown role, a password too
    short, an e-mail already taken, or no such user. Nothing was stored."""


class AnalyticsFilterError(CxbotError):
    """An analytics filter cannot be answered: a start after its end, an unknown time zone,
    period or breakdown, a malformed date or segment. Nothing was read."""
