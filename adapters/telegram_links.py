"""Telegram deep links: `https://t.me/<bot>?start=<payload>` naming a flow and its context.

Telegram hands the payload to the bot as `/start <payload>` and allows at most 64 characters of
`A-Z a-z 0-9 _ -`. The payload is

    <flow_id>                                  e.g. post_purchase
    <flow_id>-<base64url(context)>             e.g. post_purchase-b3JkZXJfaWQ9QS0xMDAx
    -<base64url(context)>                      the default flow, with context

where the context is URL-encoded `key=value&key=value` (UTF-8), base64url without padding. Flow
ids are lower-case letters, digits and `_`, never `-`, so the first `-` ends the flow id. The
example above is `order_id=A-1001` for the flow `post_purchase`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

MAX_PAYLOAD = 64  # Telegram's limit for the start parameter
_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FLOW_ID = re.compile(r"[a-z][a-z0-9_]*")


class DeepLinkError(ValueError):
    """A start payload that cannot be built (too long, bad flow id)."""


@dataclass(frozen=True, slots=True)
class StartPayload:
    """What a deep link asks for: a flow (None = the default one) and interaction context.

    `valid` is False when the payload was not one of ours (hand-edited or truncated link); the
    customer then gets the default flow.
    """

    flow_id: str | None = None
    context: dict[str, str] = field(default_factory=dict)
    valid: bool = True


def encode_start_payload(flow_id: str | None, context: Mapping[str, str] | None = None) -> str:
    """The start payload for this flow and context; DeepLinkError when it would not fit."""
    flow = flow_id or ""
    if flow and not _FLOW_ID.fullmatch(flow):
        raise DeepLinkError(f"flow id {flow!r} cannot be put in a deep link")
    payload = flow
    if context:
        query = urlencode(list(context.items())).encode()
        payload += "-" + base64.urlsafe_b64encode(query).decode().rstrip("=")
    if not payload:
        raise DeepLinkError("a deep link needs a flow id or some context")
    if len(payload) > MAX_PAYLOAD:
        raise DeepLinkError(
            f"deep link payload is {len(payload)} characters, Telegram allows {MAX_PAYLOAD}; "
            "use shorter context keys or values"
        )
    return payload


def decode_start_payload(payload: str) -> StartPayload:
    """Read a start payload; anything unreadable gives `StartPayload(valid=False)`."""
    if not payload:
        return StartPayload()
    if not _PAYLOAD.fullmatch(payload):
        return StartPayload(valid=False)
    flow, _, encoded = payload.partition("-")
    if flow and not _FLOW_ID.fullmatch(flow):
        return StartPayload(valid=False)
    context: dict[str, str] = {}
    if encoded:
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return StartPayload(flow_id=flow or None, valid=False)
        context = dict(pairs)
    return StartPayload(flow_id=flow or None, context=context)


def deep_link(bot_username: str, payload: str) -> str:
    """The t.me link that opens the bot and sends `/start <payload>`."""
    return f"https://t.me/{bot_username.lstrip('@')}?start={payload}"
