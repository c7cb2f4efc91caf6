"""Webhooks' share of `cxbot serve`: a delivery worker of their own for the `webhook` channel.

The chat channels' worker never waits on another system: webhook events are claimed by a
second `DeliveryWorker` whose only sender is `adapters.webhooks.WebhookSender`, so a slow
endpoint (up to its `timeout_seconds`) delays no customer's message. Events are retried longer
than chat messages (`WEBHOOK_RETRY`, about 1.7 hours in all): an endpoint being redeployed
should not lose events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from adapters.webhooks import WebhookSender, WebhookTarget
from bot.app import App
from bot.config import Settings
from bot.delivery import DeliveryWorker, RetrySchedule
from bot.webhook_events import CHANNEL

log = logging.getLogger(__name__)

# Waits of 5 s, 10 s, 20 s … up to 30 min between attempts; given up after the 12th.
WEBHOOK_RETRY = RetrySchedule(first=5.0, longest=1800.0, attempts=12)


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """The webhook worker and its sender, for serve to run and close."""

    worker: DeliveryWorker
    sender: WebhookSender

    async def run(self) -> None:
        """Deliver events until cancelled; the sender's connections are closed after."""
        try:
            await self.worker.run()
        finally:
            await self.sender.aclose()


def webhook_targets(settings: Settings) -> list[WebhookTarget]:
    """The configured endpoints as the sender needs them."""
    return [
        WebhookTarget(name=e.name, url=e.url, key=e.key, timeout=e.timeout_seconds)
        for e in settings.webhooks
    ]


def plan_webhooks(
    app: App,
    *,
    schedule: RetrySchedule = WEBHOOK_RETRY,
    clock: Callable[[], float] | None = None,
    poll_seconds: float = 1.0,
) -> WebhookDelivery | None:
    """The webhook delivery of serve, or None when no `[[webhooks]]` endpoint is configured."""
    targets = webhook_targets(app.settings)
    if not targets:
        return None
    sender = WebhookSender(targets) if clock is None else WebhookSender(targets, clock=clock)
    worker = DeliveryWorker(
        db=app.db,
        senders={CHANNEL: sender},
        schedule=schedule,
        lease=timedelta(seconds=app.settings.delivery.lease_seconds),
        poll_seconds=poll_seconds,
    )
    # Names only: a URL may carry the receiver's token in its query.
    log.info("webhooks: %s", ", ".join(t.name for t in targets))
    return WebhookDelivery(worker=worker, sender=sender)
