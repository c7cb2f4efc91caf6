"""The inbox and outbox tables' queries, on SQLite and PostgreSQL: what each records, which row
is handed out next, and that one lane's rows are never handed out twice or out of order."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from storage import inbox as in_q
from storage import outbox as out_q
from storage.database import transaction
from storage.inbox import NewUpdate
from storage.tables import InboxUpdate, OutboxMessage, utcnow


def new(key: str, lane: str, **body: object) -> NewUpdate:
    return NewUpdate(event_key=key, lane=lane, body={"key": key, **body})


def record(db: Engine, *updates: NewUpdate, channel: str = "telegram") -> int:
    with transaction(db) as s:
        return in_q.record_updates(s, channel=channel, updates=updates)


def claim_update(db: Engine, *, now: datetime | None = None, process: bool = True) -> str | None:
    """Claim the next update in a transaction of its own; its event key (None: nothing due).

    `process=False` commits the claim without marking the row processed (a turn that failed
    before its commit leaves the row exactly so).
    """
    with transaction(db) as s:
        row = in_q.claim_next_update(s, now=now)
        if row is None:
            return None
        if process:
            in_q.mark_processed(s, update_row=row)
        return row.event_key


def update_row(db: Engine, key: str) -> InboxUpdate:
    with transaction(db) as s:
        (row,) = s.exec(select(InboxUpdate).where(InboxUpdate.event_key == key)).all()
        return row


# -- inbox: recording -----------------------------------------------------------------------------


def test_recording_ignores_updates_already_there_and_counts_the_new_ones(db: Engine) -> None:
    assert record(db, new("1", "telegram:42"), new("2", "telegram:42"), new("3", "telegram:7")) == 3
    # A redelivered batch: two seen before, one new.
    assert record(db, new("2", "telegram:42"), new("3", "telegram:7"), new("4", "telegram:42")) == 1
    assert record(db, new("4", "telegram:42")) == 0
    assert record(db) == 0
    with transaction(db) as s:
        assert in_q.pending_updates(s) == 4
        rows = s.exec(select(InboxUpdate).order_by(col(InboxUpdate.id))).all()
    assert [(r.event_key, r.lane, r.body["key"]) for r in rows] == [
        ("1", "telegram:42", "1"),
        ("2", "telegram:42", "2"),
        ("3", "telegram:7", "3"),
        ("4", "telegram:42", "4"),
    ]
    assert all(r.processed_at is None and r.attempts == 0 for r in rows)


def test_the_first_copy_of_an_update_is_kept(db: Engine) -> None:
    """A duplicate inside one batch, or a later copy with another body, changes nothing."""
    assert record(db, new("1", "telegram:42", v="first"), new("1", "telegram:42", v="again")) == 1
    assert record(db, new("1", "telegram:42", v="later")) == 0
    assert update_row(db, "1").body == {"key": "1", "v": "first"}


def test_event_keys_are_per_channel(db: Engine) -> None:
    assert record(db, new("Ev1", "slack:U1"), channel="slack") == 1
    assert record(db, new("Ev1", "telegram:42"), channel="telegram") == 1
    with transaction(db) as s:
        assert in_q.pending_updates(s) == 2


# -- inbox: claiming ------------------------------------------------------------------------------


def test_updates_are_claimed_oldest_first_one_lane_head_at_a_time(db: Engine) -> None:
    record(db, new("a1", "telegram:1"), new("b1", "telegram:2"), new("a2", "telegram:1"))
    record(db, new("b2", "telegram:2"), new("c1", "telegram:3"))
    taken = [claim_update(db) for _ in range(6)]
    assert taken == ["a1", "b1", "a2", "b2", "c1", None]
    with transaction(db) as s:
        assert in_q.pending_updates(s) == 0


def test_an_unprocessed_update_holds_back_the_rest_of_its_lane(db: Engine) -> None:
    record(db, new("a1", "telegram:1"), new("a2", "telegram:1"), new("b1", "telegram:2"))
    # a1 claimed and not processed (its turn failed before committing): claimed again, a2 never.
    assert claim_update(db, process=False) == "a1"
    assert claim_update(db, process=False) == "a1"
    with transaction(db) as s:
        head = in_q.claim_next_update(s)
        assert head is not None and head.event_key == "a1"
        in_q.note_failure(
            s, update_row=head, error="boom", retry_at=utcnow() + timedelta(minutes=1)
        )
    # While a1 waits for its retry, the other lane goes on and a2 stays behind a1.
    assert claim_update(db) == "b1"
    assert claim_update(db) is None
    later = utcnow() + timedelta(minutes=2)
    assert claim_update(db, now=later) == "a1"
    assert claim_update(db, now=later) == "a2"


def test_a_retry_waits_until_retry_at_and_counts_attempts(db: Engine) -> None:
    record(db, new("a1", "telegram:1"))
    start = utcnow()
    with transaction(db) as s:
        row = in_q.claim_next_update(s)
        assert row is not None
        in_q.note_failure(
            s, update_row=row, error="x" * 600, retry_at=start + timedelta(seconds=10)
        )
    first = update_row(db, "a1")
    assert (first.attempts, first.last_error) == (1, "x" * in_q.MAX_ERROR)
    assert claim_update(db, now=start + timedelta(seconds=5)) is None
    with transaction(db) as s:
        row = in_q.claim_next_update(s, now=start + timedelta(seconds=11))
        assert row is not None
        in_q.note_failure(s, update_row=row, error="again", retry_at=start)
    stored = update_row(db, "a1")
    assert (stored.attempts, stored.last_error, stored.processed_at) == (2, "again", None)
    assert claim_update(db, now=start + timedelta(seconds=1)) == "a1"
    # Processed at last: the error is cleared, the attempts still tell what happened.
    done = update_row(db, "a1")
    assert done.processed_at is not None and done.attempts == 2
    assert (done.last_error, done.retry_at) == (None, None)


def test_giving_an_update_up_moves_its_lane_on(db: Engine) -> None:
    record(db, new("a1", "telegram:1"), new("a2", "telegram:1"))
    with transaction(db) as s:
        row = in_q.claim_next_update(s)
        assert row is not None
        in_q.note_failure(s, update_row=row, error="x" * 600, retry_at=None)
    given_up = update_row(db, "a1")
    assert given_up.processed_at is not None and given_up.attempts == 1
    assert given_up.last_error == "x" * in_q.MAX_ERROR
    assert claim_update(db) == "a2"


def test_processing_with_an_error_keeps_it(db: Engine) -> None:
    record(db, new("a1", "telegram:1"), new("a2", "telegram:1"))
    with transaction(db) as s:
        row = in_q.claim_next_update(s)
        assert row is not None
        in_q.mark_processed(s, update_row=row, error="no translator for channel 'x'")
    assert update_row(db, "a1").last_error == "no translator for channel 'x'"
    assert claim_update(db) == "a2"


def test_taking_an_update_claims_marks_and_counts_it_in_one_statement(db: Engine) -> None:
    record(db, new("a1", "telegram:1"), new("a2", "telegram:1"), new("b1", "telegram:2"))
    since = utcnow() - timedelta(minutes=1)
    with transaction(db) as s:
        row = in_q.take_next_update(s, count_since=since)
        assert row is not None and (row.event_key, row.recent, row.counted_since) == (
            "a1",
            1,
            since,
        )
    taken = update_row(db, "a1")
    assert taken.processed_at is not None and taken.last_error is None
    with transaction(db) as s:  # the lane's second update: two of that lane up to it
        row = in_q.take_next_update(s, count_since=since)
        assert row is not None and (row.event_key, row.recent) == ("a2", 2)
        in_q.note_ignored(s, update_row=row, reason="ignored: over the flood limit")
    assert update_row(db, "a2").last_error == "ignored: over the flood limit"
    with transaction(db) as s:  # not counted unless asked
        row = in_q.take_next_update(s)
        assert row is not None and (row.event_key, row.recent) == ("b1", None)
        assert in_q.take_next_update(s) is None


def test_a_group_take_marks_the_head_of_each_lane_in_id_order(db: Engine) -> None:
    record(
        db,
        new("a1", "telegram:1"),
        new("b1", "telegram:2"),
        new("a2", "telegram:1"),
        new("c1", "telegram:3"),
        new("d1", "telegram:4"),
    )
    since = utcnow() - timedelta(minutes=1)
    with transaction(db) as s:
        rows = in_q.take_next_updates(s, count_since=since, limit=3)
        # One row per lane (a2 waits behind a1), the oldest lanes first, each counted.
        assert [(r.event_key, r.recent) for r in rows] == [("a1", 1), ("b1", 1), ("c1", 1)]
    assert all(update_row(db, key).processed_at is not None for key in ("a1", "b1", "c1"))
    assert update_row(db, "d1").processed_at is None
    with transaction(db) as s:
        rows = in_q.take_next_updates(s, count_since=since, limit=16)
        assert [(r.event_key, r.recent) for r in rows] == [("a2", 2), ("d1", 1)]
        assert in_q.take_next_updates(s, limit=16) == []


def test_a_group_whose_transaction_fails_is_taken_again_whole(db: Engine) -> None:
    record(db, new("a1", "telegram:1"), new("b1", "telegram:2"))
    with pytest.raises(RuntimeError), transaction(db) as s:
        assert len(in_q.take_next_updates(s, limit=16)) == 2
        raise RuntimeError("a turn failed")
    assert update_row(db, "a1").processed_at is None and update_row(db, "b1").processed_at is None
    with transaction(db) as s:
        assert [r.event_key for r in in_q.take_next_updates(s, limit=16)] == ["a1", "b1"]


@pytest.mark.postgres
def test_concurrent_group_takes_share_out_the_lanes(pg_db: Engine) -> None:
    """SKIP LOCKED with a limit: a second group passes over the first group's lanes."""
    record(
        pg_db,
        new("a1", "telegram:1"),
        new("b1", "telegram:2"),
        new("a2", "telegram:1"),
        new("c1", "telegram:3"),
    )
    with transaction(pg_db) as first, transaction(pg_db) as second:
        one = in_q.take_next_updates(first, limit=2)
        two = in_q.take_next_updates(second, limit=2)
        assert [r.event_key for r in one] == ["a1", "b1"]
        assert [r.event_key for r in two] == ["c1"]  # a2 waits behind a1, held by the first
    with transaction(pg_db) as third:
        assert [r.event_key for r in in_q.take_next_updates(third, limit=2)] == ["a2"]


def test_a_taken_update_whose_turn_fails_is_taken_again(db: Engine) -> None:
    record(db, new("a1", "telegram:1"), new("a2", "telegram:1"))
    with pytest.raises(RuntimeError), transaction(db) as s:
        assert in_q.take_next_update(s) is not None
        raise RuntimeError("the turn failed")
    assert update_row(db, "a1").processed_at is None  # rolled back with the turn
    with transaction(db) as s:
        row = in_q.take_next_update(s)
        assert row is not None and row.event_key == "a1"


def test_processed_updates_are_forgotten_after_a_while(db: Engine) -> None:
    record(db, new("a1", "telegram:1"), new("a2", "telegram:1"), new("b1", "telegram:2"))
    assert claim_update(db) == "a1"
    with transaction(db) as s:
        assert in_q.forget_processed_updates(s, processed_before=utcnow() - timedelta(days=1)) == 0
        assert (
            in_q.forget_processed_updates(s, processed_before=utcnow() + timedelta(seconds=1)) == 1
        )
    # The key is free again (three days on, Telegram has long forgotten it too).
    assert record(db, new("a1", "telegram:1")) == 1
    assert [claim_update(db) for _ in range(4)] == ["a2", "b1", "a1", None]


@pytest.mark.postgres
def test_concurrent_claims_take_different_lanes_and_never_the_same_row(pg_db: Engine) -> None:
    """SKIP LOCKED: a second transaction passes over the locked head and its lane."""
    record(pg_db, new("a1", "telegram:1"), new("a2", "telegram:1"), new("b1", "telegram:2"))
    with transaction(pg_db) as first, transaction(pg_db) as second:
        one = in_q.claim_next_update(first)
        two = in_q.claim_next_update(second)
        assert one is not None and two is not None
        assert (one.event_key, two.event_key) == ("a1", "b1")
        with transaction(pg_db) as third:
            assert in_q.claim_next_update(third) is None  # a2 waits behind a1
        in_q.mark_processed(first, update_row=one)
        in_q.mark_processed(second, update_row=two)
    assert claim_update(pg_db) == "a2"


def _drain_inbox_concurrently(db: Engine, workers: int) -> list[tuple[str, str]]:
    """`workers` threads claim and process until nothing is left; (lane, key) in process order.

    Fails if two threads ever hold rows of one lane at the same time.
    """
    order: list[tuple[str, str]] = []
    busy: set[str] = set()
    guard = threading.Lock()
    errors: list[str] = []
    start = threading.Barrier(workers)

    def work() -> None:
        start.wait()
        idle = 0
        while idle < 3:
            with transaction(db) as s:
                row = in_q.claim_next_update(s)
                if row is None:
                    idle += 1
                    continue
                idle = 0
                with guard:
                    if row.lane in busy:
                        errors.append(f"two rows of {row.lane} at once")
                    busy.add(row.lane)
                    order.append((row.lane, row.event_key))
                in_q.mark_processed(s, update_row=row)
                with guard:
                    busy.discard(row.lane)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return order


def test_workers_in_parallel_process_each_update_once_in_lane_order(db: Engine) -> None:
    """Several claiming threads (PostgreSQL: row locks; SQLite: one writer) lose nothing,
    take nothing twice, and keep each lane's order."""
    lanes = [f"telegram:{n}" for n in range(6)]
    updates = [new(f"{lane}/{i:02d}", lane) for i in range(15) for lane in lanes]
    assert record(db, *updates) == len(updates)
    order = _drain_inbox_concurrently(db, workers=4)
    assert sorted(key for _, key in order) == sorted(u.event_key for u in updates)
    by_lane: dict[str, list[str]] = defaultdict(list)
    for lane, key in order:
        by_lane[lane].append(key)
    assert all(keys == sorted(keys) for keys in by_lane.values())
    with transaction(db) as s:
        assert in_q.pending_updates(s) == 0


# -- outbox: claiming ---------------------------------------------------------------------------

LEASE = timedelta(seconds=60)
CHANNELS = ("telegram", "slack")


def put(
    db: Engine,
    recipient: str,
    text: str,
    *,
    channel: str = "telegram",
    kind: str = out_q.KIND_MESSAGE,
    question_id: str | None = None,
) -> int:
    with transaction(db) as s:
        return out_q.enqueue(
            s,
            channel=channel,
            recipient=recipient,
            kind=kind,
            body={"text": text},
            question_id=question_id,
        )


def claim(
    db: Engine,
    *,
    worker: str = "w1",
    now: datetime | None = None,
    limit: int = 10,
    channels: tuple[str, ...] = CHANNELS,
    lanes: list[str] | None = None,
    exclude_lanes: tuple[str, ...] = (),
) -> list[str]:
    """Claim in a transaction of its own; the texts of the rows claimed, in order."""
    with transaction(db) as s:
        rows = out_q.claim_due(
            s,
            worker=worker,
            lease=LEASE,
            limit=limit,
            channels=channels,
            lanes=lanes,
            exclude_lanes=exclude_lanes,
            now=now,
        )
        return [r.body["text"] for r in rows]


def outbox_row(db: Engine, row_id: int) -> OutboxMessage:
    with transaction(db) as s:
        row = out_q.get_message(s, message_id=row_id)
        assert row is not None
        return row


def sent(db: Engine, row_id: int, platform_id: str | None = None) -> None:
    with transaction(db) as s:
        out_q.record_sent(s, message_id=row_id, platform_message_id=platform_id, platform_chat=None)


def test_enqueue_puts_the_row_in_its_recipients_lane(db: Engine) -> None:
    row = outbox_row(db, put(db, "42", "hi"))
    assert (row.channel, row.recipient, row.lane, row.kind) == (
        "telegram",
        "42",
        "telegram:42",
        "message",
    )
    assert (row.attempts, row.claimed_by, row.sent_at, row.failed_at) == (0, None, None, None)
    assert out_q.lane_of("slack", "U1") == "slack:U1"


def test_only_the_oldest_unsent_row_of_each_lane_is_claimed(db: Engine) -> None:
    a1, a2 = put(db, "1", "a1"), put(db, "1", "a2")
    b1 = put(db, "2", "b1")
    put(db, "3", "c1")
    assert claim(db, limit=2) == ["a1", "b1"]
    # The claimed heads hold their lanes; a2 is not a head.
    assert claim(db, worker="w2") == ["c1"]
    assert claim(db, worker="w2") == []
    sent(db, a1)
    assert claim(db, worker="w2") == ["a2"]
    with transaction(db) as s:
        out_q.record_failed(s, message_id=b1, error="refused")
        assert out_q.pending_in_lanes(s, lanes=["telegram:1", "telegram:2"]) == 1
    sent(db, a2)
    assert claim(db) == []
    with transaction(db) as s:
        assert out_q.pending_in_lanes(s, lanes=["telegram:1", "telegram:2"]) == 0


def cosmetic(db: Engine, recipient: str, text: str, kind: str = out_q.KIND_BUTTON) -> int:
    """A button answer (or close) row; its body carries `text` so `claim` can name it."""
    with transaction(db) as s:
        return out_q.enqueue(
            s, channel="telegram", recipient=recipient, kind=kind, body={"text": text}
        )


def test_a_cosmetic_head_brings_its_lane_up_to_the_next_message(db: Engine) -> None:
    # What a press queues: answer the button, close the old question, ask the next one.
    ids = [
        cosmetic(db, "1", "answer"),
        cosmetic(db, "1", "close", kind=out_q.KIND_CLOSE),
        put(db, "1", "next question"),
        put(db, "1", "after that"),
    ]
    put(db, "2", "b1")
    assert claim(db) == ["answer", "b1", "close", "next question"]
    assert claim(db, worker="w2") == []  # the lane is held: its head is claimed
    assert [outbox_row(db, i).claimed_by for i in ids] == ["w1", "w1", "w1", None]


def test_the_lane_stops_at_a_row_not_yet_due(db: Engine) -> None:
    cosmetic(db, "1", "answer")
    close = cosmetic(db, "1", "close", kind=out_q.KIND_CLOSE)
    put(db, "1", "next question")
    now = utcnow()
    with transaction(db) as s:  # the close waits (a retry): nothing after it may overtake it
        out_q.record_retry(s, message_id=close, error="x", not_before=now + timedelta(minutes=1))
    assert claim(db, now=now) == ["answer"]


def test_a_message_head_brings_nothing_more(db: Engine) -> None:
    put(db, "1", "q1")
    cosmetic(db, "1", "answer")
    assert claim(db) == ["q1"]


def test_claim_stamps_the_worker_and_its_lease(db: Engine) -> None:
    row_id = put(db, "1", "a1")
    now = utcnow()
    assert claim(db, worker="host:1:abc", now=now) == ["a1"]
    row = outbox_row(db, row_id)
    assert row.claimed_by == "host:1:abc" and row.claimed_until is not None
    assert abs(_naive(row.claimed_until) - _naive(now + LEASE)) < timedelta(seconds=1)


def test_a_claimed_row_is_not_claimed_again_until_its_lease_runs_out(db: Engine) -> None:
    row_id = put(db, "1", "a1")
    now = utcnow()
    assert claim(db, worker="w1", now=now) == ["a1"]
    assert claim(db, worker="w2", now=now + LEASE / 2) == []
    assert claim(db, worker="w2", now=now + LEASE + timedelta(seconds=1)) == ["a1"]
    assert outbox_row(db, row_id).claimed_by == "w2"


def test_a_retry_waits_until_not_before_and_holds_its_lane(db: Engine) -> None:
    a1, _ = put(db, "1", "a1"), put(db, "1", "a2")
    put(db, "2", "b1")
    assert claim(db, limit=1) == ["a1"]
    now = utcnow()
    with transaction(db) as s:
        wait = timedelta(seconds=10)
        assert out_q.record_retry(s, message_id=a1, error="flood", not_before=now + wait) == 1
    retried = outbox_row(db, a1)
    assert (retried.claimed_by, retried.claimed_until, retried.last_error) == (None, None, "flood")
    assert claim(db, now=now) == ["b1"]  # a1 not yet due, and a2 waits behind it
    assert claim(db, now=now + wait + timedelta(seconds=1)) == ["a1"]  # b1 is still claimed


def test_next_due_is_when_the_earliest_unsent_row_may_go(db: Engine) -> None:
    with transaction(db) as s:
        assert out_q.next_due(s, channels=CHANNELS) is None
    row_id = put(db, "1", "a1")
    later = utcnow() + LEASE
    with transaction(db) as s:
        out_q.record_retry(s, message_id=row_id, error="flood", not_before=later)
        due = out_q.next_due(s, channels=["telegram"])
        assert due is not None and abs(_naive(due) - _naive(later)) < timedelta(seconds=1)
        assert out_q.next_due(s, channels=["slack"]) is None
    sent(db, row_id)
    with transaction(db) as s:
        assert out_q.next_due(s, channels=CHANNELS) is None


def test_claims_are_limited_to_the_channels_and_lanes_asked_for(db: Engine) -> None:
    put(db, "42", "tg")
    put(db, "U1", "slack", channel="slack")
    put(db, "7", "tg7")
    assert claim(db, channels=("whatsapp",)) == []
    assert claim(db, channels=("slack",)) == ["slack"]
    assert claim(db, lanes=["telegram:7"]) == ["tg7"]
    assert claim(db, exclude_lanes=("telegram:42",)) == []  # the rest is claimed already
    assert claim(db) == ["tg"]


def test_released_claims_are_taken_at_once(db: Engine) -> None:
    put(db, "1", "a1")
    put(db, "2", "b1")
    assert claim(db, worker="dead", limit=1) == ["a1"]
    assert claim(db, worker="alive", limit=1) == ["b1"]
    with transaction(db) as s:
        assert sorted(out_q.claim_holders(s)) == ["alive", "dead"]
        assert out_q.release_claims(s, workers=[]) == 0
        assert out_q.release_claims(s, workers=["dead"]) == 1
        assert out_q.claim_holders(s) == ["alive"]
    assert claim(db, worker="next") == ["a1"]


def test_a_sent_row_keeps_the_platforms_ids_and_frees_its_lane(db: Engine) -> None:
    row_id = put(db, "1", "a1")
    claim(db)
    with transaction(db) as s:
        out_q.record_sent(s, message_id=row_id, platform_message_id="77", platform_chat="D1")
    row = outbox_row(db, row_id)
    assert (row.platform_message_id, row.platform_chat, row.attempts) == ("77", "D1", 1)
    assert row.sent_at is not None and (row.claimed_by, row.claimed_until) == (None, None)
    with transaction(db) as s:
        assert out_q.claim_holders(s) == []


def test_failing_a_lane_gives_up_its_unsent_rows_only(db: Engine) -> None:
    first = put(db, "1", "a1")
    put(db, "1", "a2")
    put(db, "1", "a3")
    put(db, "2", "b1")
    assert claim(db, limit=1) == ["a1"]
    sent(db, first)
    assert claim(db, limit=1) == ["a2"]
    with transaction(db) as s:
        assert out_q.fail_lane(s, lane="telegram:1", error="blocked " * 100) == 2
        assert out_q.fail_lane(s, lane="telegram:1", error="again") == 0
        assert out_q.pending_in_lanes(s, lanes=["telegram:1"]) == 0
        assert out_q.claim_holders(s) == []
        rows = s.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
    state = [(r.body["text"], r.sent_at is not None, r.failed_at is not None) for r in rows]
    assert state == [
        ("a1", True, False),
        ("a2", False, True),
        ("a3", False, True),
        ("b1", False, False),
    ]
    assert rows[1].last_error is not None and len(rows[1].last_error) == out_q.MAX_ERROR
    assert claim(db) == ["b1"]


@pytest.mark.postgres
def test_concurrent_outbox_claims_never_take_the_same_row(pg_db: Engine) -> None:
    for lane in ("1", "2", "3"):
        put(pg_db, lane, f"{lane}a")
        put(pg_db, lane, f"{lane}b")
    with transaction(pg_db) as first, transaction(pg_db) as second:
        one = out_q.claim_due(first, worker="w1", lease=LEASE, limit=2, channels=CHANNELS)
        two = out_q.claim_due(second, worker="w2", lease=LEASE, limit=2, channels=CHANNELS)
        assert [r.body["text"] for r in one] == ["1a", "2a"]
        assert [r.body["text"] for r in two] == ["3a"]  # locked heads skipped, no 1b or 2b


# -- outbox: questions with buttons --------------------------------------------------------------


def test_the_open_question_is_the_lanes_latest_live_one(db: Engine) -> None:
    lane = "telegram:1"
    with transaction(db) as s:
        assert out_q.open_question(s, lane=lane) is None
    put(db, "1", "plain text")
    put(db, "1", "close", kind=out_q.KIND_CLOSE, question_id="nps")
    with transaction(db) as s:
        assert out_q.open_question(s, lane=lane) is None  # no question with buttons
    nps = put(db, "1", "NPS?", question_id="nps")
    put(db, "2", "other lane", question_id="ces")
    with transaction(db) as s:
        current = out_q.open_question(s, lane=lane)
        assert current is not None and current.id == nps  # unsent counts: its buttons will show
    ces = put(db, "1", "CES?", question_id="ces")
    with transaction(db) as s:
        current = out_q.open_question(s, lane=lane)
        assert current is not None and current.id == ces


def test_closed_and_failed_questions_are_not_open(db: Engine) -> None:
    lane = "telegram:1"
    nps = put(db, "1", "NPS?", question_id="nps")
    ces = put(db, "1", "CES?", question_id="ces")
    with transaction(db) as s:
        out_q.record_failed(s, message_id=ces, error="refused")
        current = out_q.open_question(s, lane=lane)
        assert current is not None and current.id == nps
        out_q.mark_closed(s, row_id=current.id, label="9 " + "x" * 200)
        assert out_q.open_question(s, lane=lane) is None
    closed = outbox_row(db, nps)
    assert closed.closed_at is not None and closed.chosen_label == ("9 " + "x" * 200)[:128]
    with transaction(db) as s:
        out_q.mark_closed(s, row_id=nps, label=None)
    assert outbox_row(db, nps).chosen_label is None


def test_a_question_is_found_by_the_id_the_platform_gave_it(db: Engine) -> None:
    nps = put(db, "1", "NPS?", question_id="nps")
    close = put(db, "1", "close", kind=out_q.KIND_CLOSE)
    put(db, "2", "NPS?", question_id="nps")
    sent(db, nps, "5")
    sent(db, close, "5")  # not a message: never what a press refers to
    with transaction(db) as s:
        found = out_q.question_by_platform_id(s, lane="telegram:1", platform_message_id="5")
        assert found is not None and found.id == nps
        assert out_q.question_by_platform_id(s, lane="telegram:2", platform_message_id="5") is None
        assert out_q.question_by_platform_id(s, lane="telegram:1", platform_message_id="6") is None


def _id(row: InboxUpdate | OutboxMessage) -> int:
    assert row.id is not None
    return row.id


def _naive(moment: datetime) -> datetime:
    """UTC without tzinfo: SQLite gives stored times back naive, PostgreSQL aware."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
