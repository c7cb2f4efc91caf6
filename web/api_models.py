"""The REST API's request and response models (pydantic): what `/api/v1/openapi.json` shows.

Input models forbid unknown fields (a typo such as `sendAfter` is a 422 naming it, not silently
ignored). `send_after` and `context` have validators of their own so that their errors say
what was expected in one message rather than one line per union member.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    field_validator,
)

MAX_BATCH = 1000
MAX_CONTEXT_KEYS = 50
MAX_SEND_AFTER_SECONDS = 365 * 86400


def _send_after(value: Any) -> float | datetime | None:
    """Seconds from now (a number ≥ 0), or an ISO-8601 time with its offset."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("a number of seconds or an ISO-8601 time, not a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError("a number of seconds must be 0 or more")
        if value > MAX_SEND_AFTER_SECONDS:
            raise ValueError("at most a year (31536000 seconds) ahead")
        return float(value)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"{value[:40]!r} is neither a number of seconds nor an ISO-8601 time "
                "(e.g. 3600 or 2026-12-01T09:30:00+01:00)"
            ) from None
    else:
        raise ValueError("a number of seconds or an ISO-8601 time")
    if moment.tzinfo is None:
        raise ValueError("an ISO-8601 time needs its offset (e.g. Z or +02:00)")
    return moment


def _context(value: Any) -> dict[str, str | int | float | bool]:
    """An object of at most 50 keys (1-64 characters) with string, number or boolean values."""
    if not isinstance(value, dict):
        raise ValueError("must be an object of key: string, number or boolean")
    if len(value) > MAX_CONTEXT_KEYS:
        raise ValueError(f"at most {MAX_CONTEXT_KEYS} keys, got {len(value)}")
    for key, item in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 64:
            raise ValueError(f"key {str(key)[:70]!r}: keys are 1-64 characters")
        if not isinstance(item, str | int | float) or (
            isinstance(item, float) and not math.isfinite(item)
        ):
            raise ValueError(f"{key!r}: values are strings, numbers or booleans")
    return dict(value)


SendAfter = Annotated[
    float | datetime | None,
    PlainValidator(_send_after),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": MAX_SEND_AFTER_SECONDS},
                {"type": "string", "format": "date-time"},
                {"type": "null"},
            ],
            "description": "When to send: seconds from now, or an ISO-8601 time with offset. "
            "Omitted: now. At most a year ahead; a time in the past is refused.",
        }
    ),
]
Context = Annotated[
    dict[str, str | int | float | bool],
    PlainValidator(_context),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_CONTEXT_KEYS,
            "additionalProperties": {"type": ["string", "number", "boolean"]},
            "description": "Interaction details and segment facts (order_id, "
            "support_contacts_30d…): stored with the invitation and given to the survey as "
            "text, for the flow's {context.KEY} fields.",
        }
    ),
]


class InvitationIn(BaseModel):
    """Survey this customer after this interaction."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "channel": "telegram",
                    "user_id": "123456789",
                    "touchpoint": "support_contact",
                    "interaction_id": "ticket-4711",
                    "context": {"ticket_id": "4711", "support_contacts_30d": 2},
                    "send_after": 3600,
                    "time_zone": "Europe/Berlin",
                }
            ]
        },
    )

    channel: Literal["telegram", "slack"] = Field(description="The customer's channel.")
    user_id: str = Field(
        min_length=1,
        max_length=128,
        description="Telegram: the numeric chat id; Slack: the member id (U…).",
    )
    touchpoint: str = Field(
        min_length=1,
        max_length=64,
        description="first_visit, purchase, onboarding_failed, refund, support_contact, "
        "referral, or one declared in [touchpoints.NAME].",
    )
    interaction_id: str = Field(
        min_length=1,
        max_length=128,
        description="Your id of the interaction: a repeat with the same id (same API key name) "
        "is answered 200 with the stored invitation, and nothing is sent twice.",
    )
    flow_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The flow to run; omitted: the touchpoint's, else the default flow.",
    )
    context: Context = Field(default_factory=dict)
    send_after: SendAfter = None
    time_zone: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The customer's IANA time zone (Europe/Berlin); quiet hours are kept in it, "
        "and it is remembered for the customer's later invitations.",
    )


class InvitationOut(BaseModel):
    """What became of an invitation."""

    id: str
    status: Literal["scheduled", "sent", "withheld"]
    reason: str | None = Field(
        default=None,
        description="Withheld: opted_out, unreachable, suppressed, sampled_out, cooldown, "
        "recontact, unknown_flow, error. Scheduled: quiet_hours when the send was moved.",
    )
    detail: str | None = Field(default=None, description="The reason in a sentence.")
    send_at: datetime | None = Field(default=None, description="Scheduled: when it will be sent.")


class BatchIn(BaseModel):
    """Up to 1,000 invitations, each as in POST /invitations."""

    model_config = ConfigDict(extra="forbid")

    invitations: list[InvitationIn] = Field(min_length=1, max_length=MAX_BATCH)

    @field_validator("invitations", mode="before")
    @classmethod
    def _at_most(cls, value: Any) -> Any:
        if isinstance(value, list) and len(value) > MAX_BATCH:
            raise ValueError(
                f"at most {MAX_BATCH} invitations per request, got {len(value)}: split the batch"
            )
        return value


class BatchResultOut(InvitationOut):
    """One row's result, in the order of the request."""

    index: int
    created: bool = Field(description="False: a repeat of an interaction already invited.")


class BatchOut(BaseModel):
    """Every row's result, and how many were new."""

    results: list[BatchResultOut]
    created: int
    repeated: int


class ConversationOut(BaseModel):
    """The survey an invitation opened, as it stands."""

    id: int
    state: str = Field(description="active, completed, abandoned, opted_out, …")
    flow_id: str
    flow_version: int
    current_question: str | None
    started_at: datetime
    completed_at: datetime | None


class InvitationStateOut(InvitationOut):
    """An invitation's whole state."""

    source: str
    interaction_id: str
    channel: str
    user_id: str
    touchpoint: str | None
    flow_id: str
    context: dict[str, Any]
    created_at: datetime
    requested_at: datetime
    decided_at: datetime | None
    sent_at: datetime | None
    conversation: ConversationOut | None


class SuppressionIn(BaseModel):
    """A customer to suppress."""

    model_config = ConfigDict(extra="forbid")

    channel: Literal["telegram", "slack"]
    user_id: str = Field(min_length=1, max_length=128)
    note: str | None = Field(default=None, max_length=256, description="Why, for people.")


class SuppressionOut(BaseModel):
    """One entry of the suppression list."""

    channel: str
    user_id: str
    note: str | None
    created_by: str
    created_at: datetime


class SuppressionListOut(BaseModel):
    """A page of the suppression list, oldest first."""

    suppressions: list[SuppressionOut]


class RemovedOut(BaseModel):
    """The customer was taken off the suppression list."""

    removed: bool


class ErrorOut(BaseModel):
    """An error, in one sentence."""

    error: str


class FieldError(BaseModel):
    """One problem with the body: where (`field`, `loc`) and what."""

    field: str
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    """422: the body is not acceptable; `error` names every field, `detail` lists them."""

    error: str
    detail: list[FieldError]


class ErasedOut(BaseModel):
    """The customer's personal data was erased; rows changed per table (none: nothing stored)."""

    channel: str
    user_id: str
    counts: dict[str, int]
    suppressed: bool = Field(description="True when this erasure added the suppression entry.")
