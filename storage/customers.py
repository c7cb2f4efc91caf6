"""Queries on customers: find or create by channel id, opt-out and opt-in."""

from __future__ import annotations

from sqlalchemy import bindparam
from sqlmodel import Session, select

from storage.tables import Customer, utcnow

# Built once, run with parameters: building a statement costs more than running it on SQLite.
_BY_CHANNEL_ID = select(Customer).where(
    Customer.channel == bindparam("channel"), Customer.external_id == bindparam("external_id")
)


def get_customer(session: Session, *, channel: str, external_id: str) -> Customer | None:
    """The customer known on `channel` as `external_id`, if any."""
    params = {"channel": channel, "external_id": external_id}
    return session.exec(_BY_CHANNEL_ID, params=params).first()


def upsert_customer(
    session: Session,
    *,
    channel: str,
    external_id: str,
    first_name: str | None = None,
    last_name: str | None = None,
    locale: str | None = None,
) -> Customer:
    """Find the customer or create them; refresh the profile fields the platform sent."""
    customer = get_customer(session, channel=channel, external_id=external_id)
    created = customer is None
    if customer is None:
        customer = Customer(channel=channel, external_id=external_id)
        session.add(customer)
    refresh_profile(customer, first_name=first_name, last_name=last_name, locale=locale)
    if created:
        session.flush()  # its id, for the rows that point at it
    return customer


def refresh_profile(
    customer: Customer,
    *,
    first_name: str | None = None,
    last_name: str | None = None,
    locale: str | None = None,
) -> None:
    """Keep the profile fields the platform sent with a message (written with the turn).

    Platforms send the current profile with each message; keep what they sent, never blank it.
    Only real changes are set: an unchanged customer (nearly every turn) costs no statement.
    """
    fields = {
        "first_name": (first_name, 128),
        "last_name": (last_name, 128),
        "locale": (locale, 16),
    }
    for name, (value, limit) in fields.items():
        if value and getattr(customer, name) != value[:limit]:
            setattr(customer, name, value[:limit])


def set_opted_out(session: Session, *, customer: Customer, opted_out: bool) -> None:
    """Record that the customer wants no more surveys (or wants them again)."""
    customer.opted_out_at = utcnow() if opted_out else None
    session.add(customer)
    session.flush()


def set_unreachable(session: Session, *, customer: Customer, reason: str | None) -> None:
    """Record that messages no longer reach the customer (None: reachable again)."""
    customer.unreachable_at = utcnow() if reason is not None else None
    customer.unreachable_reason = reason[:256] if reason is not None else None
    session.add(customer)
    session.flush()
