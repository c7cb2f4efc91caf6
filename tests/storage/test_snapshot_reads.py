"""Reads side by side on one snapshot: every read sees the database as of the same instant,
writers are not held back, results come back in order, and an error in one read reaches the
caller."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from storage.database import transaction
from storage.snapshot_reads import read_together
from storage.tables import Customer


def _customers(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(Customer)).scalar_one())


def _add_customer(db: Engine, name: str) -> None:
    with transaction(db) as s:
        s.add(Customer(channel="telegram", external_id=name))


def test_every_read_sees_the_same_snapshot(db: Engine) -> None:
    _add_customer(db, "before")

    def write_then_count(session: Session) -> int:
        _add_customer(db, "during")  # committed by another transaction after the snapshot
        return _customers(session)

    # On SQLite too: the reads hold back no writer (a deferred WAL read transaction).
    assert read_together(db, [_customers, write_then_count, _customers]) == [1, 1, 1]
    with transaction(db) as s:
        assert _customers(s) == 2  # the write happened; the reads did not see it


def test_an_error_in_one_read_reaches_the_caller(db: Engine) -> None:
    def broken(_: Session) -> int:
        raise RuntimeError("read failed")

    with pytest.raises(RuntimeError, match="read failed"):
        read_together(db, [_customers, broken, _customers])
    assert read_together(db, [_customers]) == [0]
