"""Invitation rows, API keys and the suppression list, on SQLite and PostgreSQL: one row per
(source, interaction), due rows claimed oldest first, and never by two transactions at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from storage import apikeys, suppressions
from storage import invitation_rows as rows
from storage.customers import upsert_customer
from storage.database import transaction
from storage.invitation_rows import NewInvitation

T0 = datetime(2027, 1, 1, 9, 0, tzinfo=UTC)


def add(
    db: Engine,
    interaction: str,
    *,
    send_at: datetime = T0,
    channel: str = "telegram",
    source: str = "crm",
    status: str = "scheduled",
) -> int | None:
    with transaction(db) as s:
        customer = upsert_customer(s, channel=channel, external_id="42")
        assert customer.id is not None
        new = NewInvitation(
            source=source,
            interaction_id=interaction,
            customer_id=customer.id,
            channel=channel,
            user_id="42",
            touchpoint="purchase",
            flow_id="post_purchase",
            context={"order": "A-1", "n": 2},
            requested_at=send_at,
            send_at=send_at,
            status=status,
            reason="cooldown" if status == "withheld" else None,
        )
        return rows.insert_invitation(s, new=new, now=T0)


def claim(
    db: Engine, now: datetime = T0, limit: int = 10, channels: tuple[str, ...] = ("telegram",)
) -> list[str]:
    with transaction(db) as s:
        return [
            r.interaction_id
            for r in rows.claim_due_invitations(s, now=now, limit=limit, channels=channels)
        ]


def test_one_row_per_source_and_interaction(db: Engine) -> None:
    first = add(db, "i-1")
    assert first is not None
    assert add(db, "i-1") is None  # the same interaction again: nothing inserted
    assert add(db, "i-1", source="shop") is not None  # another source's own ids
    with transaction(db) as s:
        row = rows.invitation_by_interaction(s, source="crm", interaction_id="i-1")
    assert row is not None and row.id == first
    assert (row.status, row.context, row.send_at, row.decided_at) == (
        "scheduled",
        {"order": "A-1", "n": 2},
        T0,
        None,
    )


def test_due_rows_are_claimed_oldest_first_on_the_channels_asked_for(db: Engine) -> None:
    add(db, "late", send_at=T0 + timedelta(hours=1))
    add(db, "second", send_at=T0 - timedelta(minutes=1))
    add(db, "first", send_at=T0 - timedelta(minutes=2))
    add(db, "slack", send_at=T0 - timedelta(minutes=3), channel="slack")
    add(db, "done", send_at=T0 - timedelta(minutes=4), status="withheld")
    assert claim(db) == ["first", "second"]
    assert claim(db, limit=1) == ["first"]
    assert claim(db, channels=()) == []
    assert claim(db, now=T0 + timedelta(hours=1), channels=("telegram", "slack")) == [
        "slack",
        "first",
        "second",
        "late",
    ]
    with transaction(db) as s:
        assert rows.next_due_invitation(s, channels=["telegram"]) == T0 - timedelta(minutes=2)
        assert rows.scheduled_count(s) == 4


def test_decisions_are_recorded_on_the_row(db: Engine) -> None:
    a, b, c = (add(db, i) for i in "abc")
    assert a is not None and b is not None and c is not None
    later = T0 + timedelta(hours=3)
    with transaction(db) as s:
        rows.mark_withheld(
            s, invitation_id=a, reason="suppressed", detail="is on the list", now=later
        )
        rows.reschedule(s, invitation_id=b, send_at=later, reason="quiet_hours", detail="moved")
        rows.note_failure(s, invitation_id=c, error="E" * 600, retry_at=later)
    with transaction(db) as s:
        ra, rb, rc = (rows.get_invitation(s, invitation_id=i) for i in (a, b, c))
    assert ra is not None and (ra.status, ra.reason, ra.detail, ra.decided_at) == (
        "withheld",
        "suppressed",
        "is on the list",
        later,
    )
    assert rb is not None and (rb.status, rb.send_at, rb.reason) == (
        "scheduled",
        later,
        "quiet_hours",
    )
    assert rc is not None and (rc.attempts, rc.send_at, len(rc.last_error or "")) == (1, later, 512)
    assert claim(db) == []
    with transaction(db) as s:
        tally = rows.invitation_tally(s)
    assert sorted((t.status, t.reason or "", t.count) for t in tally) == [
        ("scheduled", "", 1),
        ("scheduled", "quiet_hours", 1),
        ("withheld", "suppressed", 1),
    ]


@pytest.mark.postgres
def test_two_transactions_never_claim_the_same_invitation(pg_db: Engine) -> None:
    for n in range(5):
        add(pg_db, f"i-{n}", send_at=T0 - timedelta(minutes=10 - n))
    with transaction(pg_db) as first, transaction(pg_db) as second:
        one = rows.claim_due_invitations(first, now=T0, limit=3, channels=["telegram"])
        two = rows.claim_due_invitations(second, now=T0, limit=3, channels=["telegram"])
        assert [r.interaction_id for r in one] == ["i-0", "i-1", "i-2"]
        assert [r.interaction_id for r in two] == ["i-3", "i-4"]  # the locked rows are skipped
    # Nothing was decided: the claims end with their transactions and the rows wait again.
    assert claim(pg_db) == ["i-0", "i-1", "i-2", "i-3", "i-4"]


def test_api_keys_are_found_by_prefix_and_revoked_by_prefix_or_name(db: Engine) -> None:
    with transaction(db) as s:
        for prefix, name in (
            ("cxk_aaaaaaaa", "helpdesk"),
            ("cxk_bbbbbbbb", "helpdesk"),
            ("cxk_cccccccc", "shop"),
        ):
            apikeys.add_api_key(
                s, name=name, scope="invite", prefix=prefix, key_hash="h" * 64, now=T0
            )
        assert apikeys.prefix_taken(s, prefix="cxk_aaaaaaaa")
        assert not apikeys.prefix_taken(s, prefix="cxk_dddddddd")
    with transaction(db) as s:
        assert [
            k.prefix for k in apikeys.revoke_api_keys(s, name_or_prefix="cxk_cccccccc", now=T0)
        ] == ["cxk_cccccccc"]
        assert [
            k.prefix for k in apikeys.revoke_api_keys(s, name_or_prefix="helpdesk", now=T0)
        ] == ["cxk_aaaaaaaa", "cxk_bbbbbbbb"]
        assert apikeys.revoke_api_keys(s, name_or_prefix="helpdesk", now=T0) == []  # none active
        apikeys.record_key_use(s, key_id=1, now=T0 + timedelta(minutes=5))
    with transaction(db) as s:
        key = apikeys.key_by_prefix(s, prefix="cxk_aaaaaaaa")
        assert key is not None and (key.revoked_at, key.last_used_at) == (
            T0,
            T0 + timedelta(minutes=5),
        )
        assert [k.name for k in apikeys.list_api_keys(s)] == ["helpdesk", "helpdesk", "shop"]


def test_the_suppression_list_keeps_one_entry_per_customer(db: Engine) -> None:
    with transaction(db) as s:
        assert suppressions.add_suppression(
            s, channel="telegram", external_id="42", note="phone", created_by="cli", now=T0
        )
        assert not suppressions.add_suppression(
            s, channel="telegram", external_id="42", note="again", created_by="x", now=T0
        )
        assert suppressions.add_suppression(
            s, channel="slack", external_id="U1", note=None, created_by="cli", now=T0
        )
    with transaction(db) as s:
        assert suppressions.is_suppressed(s, channel="telegram", external_id="42")
        entry = suppressions.get_suppression(s, channel="telegram", external_id="42")
        assert entry is not None and (entry.note, entry.created_by, entry.created_at) == (
            "phone",
            "cli",
            T0,
        )
        assert [e.external_id for e in suppressions.list_suppressions(s, channel="slack")] == ["U1"]
        assert suppressions.remove_suppression(s, channel="telegram", external_id="42")
        assert not suppressions.remove_suppression(s, channel="telegram", external_id="42")
        assert not suppressions.is_suppressed(s, channel="telegram", external_id="42")
