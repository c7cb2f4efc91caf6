"""Privacy requests: erase a customer, export their data, expire old free text.

Erasure and the suppression entry that blocks future surveys are written in one transaction:
an erased customer is never invited again (`bot.invitations.rules` checks the list), and their
scores stay in the reports, anonymous (`storage.privacy` says what is kept).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.errors import CxbotError
from storage import privacy as privacy_q
from storage.database import Database, transaction
from storage.suppressions import add_suppression

ERASED_NOTE = "erased on request"


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an erasure did: rows changed per table, and whether the suppression entry is new."""

    channel: str
    user_id: str
    counts: dict[str, int] = field(default_factory=dict)
    suppressed: bool = False

    def lines(self) -> list[str]:
        """One line per table with rows changed, for the CLI."""
        return [f"{table:<16} {n}" for table, n in sorted(self.counts.items()) if n]


def erase_customer(
    db: Database, *, channel: str, user_id: str, by: str, now: datetime | None = None
) -> Erasure:
    """Erase the customer's personal data and suppress them; an unknown customer is
    suppressed all the same (a request to forget someone must also keep them uninvited)."""
    with transaction(db) as session:
        counts = privacy_q.erase_customer(session, channel=channel, external_id=user_id) or {}
        added = add_suppression(
            session,
            channel=channel,
            external_id=user_id,
            note=ERASED_NOTE,
            created_by=by,
            now=now or datetime.now(UTC),
        )
    return Erasure(channel=channel, user_id=user_id, counts=counts, suppressed=added)


def export_customer(db: Database, *, channel: str, user_id: str) -> dict[str, Any]:
    """Everything stored about the customer (an access request); CxbotError when unknown."""
    with transaction(db) as session:
        data = privacy_q.export_customer(session, channel=channel, external_id=user_id)
    if data is None:
        raise CxbotError(f"no customer {channel}:{user_id} is stored")
    return data


def expire_old_text(db: Database, *, days: int, now: datetime | None = None) -> dict[str, int]:
    """Delete free text older than `days` days (0: keep it); rows changed per table."""
    if days <= 0:
        return {}
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    with transaction(db) as session:
        return privacy_q.forget_old_text(session, answered_before=cutoff)


class PrivacyRequests:
    """Privacy requests on one database, for the admin API (each call its own transaction)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def erase(self, channel: str, user_id: str, *, by: str) -> Erasure:
        """`erase_customer` on this database."""
        return erase_customer(self._db, channel=channel, user_id=user_id, by=by)
