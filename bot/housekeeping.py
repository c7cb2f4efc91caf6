"""Periodic clean-up run by `cxbot serve`: forgetting old platform event ids, and analytics
days kept for filters nobody has asked for in a month (`storage.analytics_cache`).

Event ids are kept so that a redelivered update is handled once (`storage.inbound`). Slack
retries within minutes and Telegram keeps an update for 24 hours, so a few days cover every
redelivery. Keeping them longer is harmful, not just wasteful: after a week without updates
Telegram may start its update ids again at a random number, and a new update whose id matches
a remembered one would be dropped as a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from bot.privacy import expire_old_text
from storage.analytics_cache import forget_days
from storage.database import Database, transaction
from storage.inbound import forget_inbound_events
from storage.inbox import forget_processed_updates
from storage.outbox import forget_finished_messages

log = logging.getLogger(__name__)

EVENT_ID_RETENTION = timedelta(days=3)
INTERVAL_SECONDS = 3600.0


def forget_old_event_ids(db: Database, *, now: datetime | None = None) -> int:
    """Delete event ids, processed inbox updates and finished outbox rows older than
    `EVENT_ID_RETENTION`; how many rows were deleted.

    The inbox keeps an update's key as long as the platform may deliver it again; the outbox
    keeps sent questions so that a late tap on one still gets "Already answered".
    """
    cutoff = (now or datetime.now(UTC)) - EVENT_ID_RETENTION
    with transaction(db) as session:
        return (
            forget_inbound_events(session, received_before=cutoff)
            + forget_processed_updates(session, processed_before=cutoff)
            + forget_finished_messages(session, created_before=cutoff)
        )


def forget_kept_analytics(db: Database, *, now: datetime | None = None) -> int:
    """Delete analytics days kept more than `storage.analytics_cache.KEEP_DAYS` ago (the next
    page that needs one counts it again); how many."""
    with transaction(db) as session:
        return forget_days(session, now=now or datetime.now(UTC))


async def run_housekeeping(
    db: Database, *, interval: float = INTERVAL_SECONDS, text_retention_days: int = 0
) -> None:
    """Clean up now and then every `interval` seconds, until cancelled; with
    `text_retention_days` ([privacy]) also delete free text older than that."""
    while True:
        if text_retention_days > 0:
            expired = await asyncio.to_thread(expire_old_text, db, days=text_retention_days)
            if any(expired.values()):
                log.info(
                    "privacy: expired text older than %d days: %s", text_retention_days, expired
                )
        forgotten = await asyncio.to_thread(forget_old_event_ids, db)
        if forgotten:
            log.info(
                "forgot %d event ids and inbox/outbox rows older than %s",
                forgotten,
                EVENT_ID_RETENTION,
            )
        dropped = await asyncio.to_thread(forget_kept_analytics, db)
        if dropped:
            log.info("forgot %d kept analytics days", dropped)
        await asyncio.sleep(interval)
