"""The suppression list: customers who are never invited, whatever the other rules say.

Kept by `cxbot suppress add|remove|list CHANNEL:ID` and the admin API
(`/api/v1/suppressions`); checked by the fatigue rules (`bot.invitations.rules`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bot.errors import CxbotError
from storage import suppressions as supp_q
from storage.database import Database, transaction
from storage.suppressions import StoredSuppression

CHANNELS = ("telegram", "slack")
_USER = {"telegram": re.compile(r"-?\d{1,20}"), "slack": re.compile(r"[UW][A-Z0-9]{2,}")}


def user_id_problem(channel: str, user_id: str) -> str | None:
    """What is wrong with a user id of a known channel (None: nothing)."""
    if not _USER[channel].fullmatch(user_id):
        shape = "the numeric chat id" if channel == "telegram" else "like U012ABCDEF"
        return f"a {channel.capitalize()} user id is {shape}, not {user_id!r}"
    return None


def check_customer(channel: str, user_id: str) -> str | None:
    """What is wrong with this channel and user id (None: nothing)."""
    if channel not in CHANNELS:
        return f"unknown channel {channel!r}; use telegram or slack"
    return user_id_problem(channel, user_id)


def parse_customer(text: str) -> tuple[str, str]:
    """`telegram:42` or `slack:U012ABCDEF` → (channel, user id); CxbotError when malformed."""
    channel, sep, user_id = text.partition(":")
    if not sep:
        raise CxbotError(f"expected CHANNEL:ID (e.g. telegram:123456789), not {text!r}")
    problem = check_customer(channel, user_id)
    if problem is not None:
        raise CxbotError(problem)
    return channel, user_id


class SuppressionList:
    """Add, remove and list suppressed customers (each call its own transaction)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        channel: str,
        user_id: str,
        *,
        note: str | None = None,
        by: str,
        now: datetime | None = None,
    ) -> bool:
        """Suppress the customer; False when they already were (the entry is kept as it was)."""
        with transaction(self._db) as session:
            return supp_q.add_suppression(
                session,
                channel=channel,
                external_id=user_id,
                note=note,
                created_by=by,
                now=now or datetime.now(UTC),
            )

    def remove(self, channel: str, user_id: str) -> bool:
        """Take the customer off the list; False when they were not on it."""
        with transaction(self._db) as session:
            return supp_q.remove_suppression(session, channel=channel, external_id=user_id)

    def get(self, channel: str, user_id: str) -> StoredSuppression | None:
        """The customer's entry, if they are on the list."""
        with transaction(self._db) as session:
            return supp_q.get_suppression(session, channel=channel, external_id=user_id)

    def entries(
        self, *, channel: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[StoredSuppression]:
        """The list, oldest entry first."""
        with transaction(self._db) as session:
            return supp_q.list_suppressions(session, channel=channel, limit=limit, offset=offset)
