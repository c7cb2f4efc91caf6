"""Outgoing webhooks: events POSTed to other systems, signed the Standard Webhooks way.

`WebhookSender` is the delivery worker's sender for the `webhook` channel: each outbox event is
one POST of its JSON payload with three headers (https://www.standardwebhooks.com/):

- `webhook-id`: the event's id, the same on every retry, so that receivers drop repeats;
- `webhook-timestamp`: unix seconds at THIS attempt (a retry carries a current timestamp, so a
  receiver's five-minute replay window never rejects a late retry);
- `webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed with the
  base64-decoded secret.

What an answer means (the worker does the waiting, `bot.delivery`):

- 2xx: delivered;
- 410 Gone: the endpoint is gone — given up (`RecipientUnreachableError`), and every later event
  for it is given up without a request until the process restarts;
- 429: tried again after `Retry-After`; 408, 5xx, timeouts and network errors: tried again
  with the worker's growing waits;
- 3xx (redirects are not followed) and other 4xx: given up at once (`DeliveryRefusedError`),
  recorded as a delivery failure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bot.errors import (
    DeliveryError,
    DeliveryRefusedError,
    RateLimitedError,
    RecipientUnreachableError,
)
from bot.messages import OutgoingEvent, OutgoingMessage, SentRef

log = logging.getLogger(__name__)

USER_AGENT = "cxbot-webhooks/1"
# Waited when a 429 names no (readable) Retry-After.
DEFAULT_RETRY_AFTER = 30.0
MAX_RETRY_AFTER = 3600.0
# How much of a refusing endpoint's answer is kept in the error (delivery failures keep 512).
MAX_DETAIL = 200


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """One endpoint as the sender needs it: name, URL, decoded signing key, answer timeout."""

    name: str
    url: str
    key: bytes
    timeout: float = 10.0


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """The request body: compact UTF-8 JSON (the bytes that are signed and sent)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(key: bytes, *, event_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`."""
    signed = f"{event_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(key: bytes, *, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one delivery attempt."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, event_id=event_id, timestamp=timestamp, body=body),
    }


class WebhookSender:
    """POSTs events to the configured endpoints (the `ChannelSender` of the webhook channel).

    `clock` gives unix seconds (the signature's timestamp), so tests can move time on.
    """

    def __init__(
        self,
        targets: Sequence[WebhookTarget],
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._targets = {t.name: t for t in targets}
        # Redirects are not followed: a signed event goes only where it was configured to go.
        self._client = client or httpx.AsyncClient(follow_redirects=False)
        self._clock = clock
        self._gone: set[str] = set()

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    async def send_event(self, event: OutgoingEvent) -> None:
        """POST one event, signed at this attempt; raises what the answer means (see module)."""
        target = self._targets.get(event.endpoint)
        if target is None:
            raise DeliveryRefusedError(
                f"webhook endpoint {event.endpoint!r} is no longer configured in [[webhooks]]"
            )
        if target.name in self._gone:
            raise RecipientUnreachableError(
                f"webhook {target.name}: the endpoint answered 410 Gone earlier; nothing more is "
                "sent to it until cxbot restarts"
            )
        body = encode_payload(event.payload)
        headers = signed_headers(
            target.key, event_id=event.event_id, timestamp=int(self._clock()), body=body
        )
        try:
            response = await self._client.post(
                target.url, content=body, headers=headers, timeout=target.timeout
            )
        except httpx.TimeoutException:
            raise DeliveryError(
                f"webhook {target.name}: no answer within {target.timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {target.name}: {type(exc).__name__}: {exc}") from None
        self._judge(target, response)

    def _judge(self, target: WebhookTarget, response: httpx.Response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = f"webhook {target.name}: HTTP {status}"
        text = response.text.strip()[:MAX_DETAIL]
        if text:
            detail += f": {text}"
        if status == 410:
            self._gone.add(target.name)
            log.error(
                "webhook %s answered 410 Gone: no more events are sent to it until cxbot "
                "restarts; remove it from [[webhooks]]",
                target.name,
            )
            raise RecipientUnreachableError(detail)
        if status == 429:
            raise RateLimitedError(detail, retry_after=_retry_after(response))
        if status == 408 or status >= 500:
            raise DeliveryError(detail)
        if 300 <= status < 400:
            where = response.headers.get("location", "?")
            raise DeliveryRefusedError(
                f"{detail} (redirect to {where} not followed: configure the final URL)"
            )
        raise DeliveryRefusedError(detail)

    # -- ChannelSender: the webhook channel carries events only --------------------------------

    async def send(self, message: OutgoingMessage) -> SentRef:
        """Chat messages cannot go to a webhook endpoint."""
        raise DeliveryRefusedError("webhook endpoints take events, not chat messages")

    async def close_question(
        self, *, user_id: str, sent: SentRef, text: str | None, label: str | None
    ) -> None:
        """Nothing to close: webhooks have no buttons."""

    async def answer_button(
        self, *, user_id: str, query_id: str | None, chat: str | None, text: str | None
    ) -> None:
        """Nothing to answer: webhooks have no buttons."""


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("retry-after", "")
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return DEFAULT_RETRY_AFTER
