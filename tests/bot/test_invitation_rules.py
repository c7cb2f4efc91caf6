"""The fatigue rules, pure: order, per-touchpoint overrides, sampling, quiet hours across zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.config import Settings, load_settings
from bot.invitations.rules import Reason, Rules, rules_for, sampled_in, send_time, withheld
from storage.invitations import InvitationFacts

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def settings(**env: str) -> Settings:
    return load_settings(
        None, environ={f"CXBOT_INVITATIONS__{k.upper()}": v for k, v in env.items()}
    )


def rules(**env: str) -> Rules:
    return rules_for(settings(**env), None)


def decide(facts: InvitationFacts, r: Rules | None = None, interaction: str = "i-1") -> str | None:
    result = withheld(
        facts, r or rules(), flow_id="post_interaction", interaction_id=interaction, now=NOW
    )
    return result.reason if result is not None else None


def test_a_new_customer_may_be_invited() -> None:
    assert decide(InvitationFacts(known=False)) is None


def test_each_rule_withholds_with_its_reason_and_the_first_one_wins() -> None:
    days = timedelta(days=1)
    assert decide(InvitationFacts(known=True, opted_out_at=NOW - days, suppressed=True)) == (
        Reason.OPTED_OUT
    )
    assert decide(InvitationFacts(known=True, unreachable_at=NOW - days)) == Reason.UNREACHABLE
    assert decide(InvitationFacts(known=False, suppressed=True)) == Reason.SUPPRESSED
    assert decide(InvitationFacts(known=True, last_surveyed_at=NOW - days)) == Reason.COOLDOWN


def test_the_cooldown_counts_days_across_flows_and_zero_turns_it_off() -> None:
    facts = InvitationFacts(known=True, last_surveyed_at=NOW - timedelta(days=29, hours=23))
    assert decide(facts) == Reason.COOLDOWN  # the default: 30 days
    older = InvitationFacts(known=True, last_surveyed_at=NOW - timedelta(days=30))
    assert decide(older) is None
    assert decide(facts, rules(cooldown_days="0")) is None


def test_quiet_days_is_the_cooldowns_old_name() -> None:
    r = rules(quiet_days="7")
    assert r.cooldown_days == 7
    facts = InvitationFacts(known=True, last_surveyed_at=NOW - timedelta(days=3))
    result = withheld(facts, r, flow_id="f", interaction_id="i", now=NOW)
    assert result is not None and "([invitations] quiet_days = 7)" in result.detail
    assert rules(quiet_days="7", cooldown_days="2").cooldown_days == 2  # the new name wins


def test_the_recontact_period_is_per_flow() -> None:
    r = rules(cooldown_days="0", recontact_days="90")
    same_flow = InvitationFacts(
        known=True,
        last_surveyed_at=NOW - timedelta(days=40),
        last_flow_surveyed_at=NOW - timedelta(days=40),
    )
    other_flow = InvitationFacts(known=True, last_surveyed_at=NOW - timedelta(days=40))
    assert decide(same_flow, r) == Reason.RECONTACT
    assert decide(other_flow, r) is None
    result = withheld(same_flow, r, flow_id="post_purchase", interaction_id="i", now=NOW)
    assert result is not None and result.detail == (
        "was sent survey 'post_purchase' on 2027-01-20, within the recontact period "
        "([invitations] recontact_days = 90)"
    )


def test_a_touchpoint_overrides_the_rules_it_sets_and_keeps_the_others() -> None:
    s = Settings.model_validate(
        {
            "invitations": {"recontact_days": 60, "quiet_hours": "22:00-07:00"},
            "touchpoints": {"refund": {"cooldown_days": 3, "sample_percent": 50}},
        }
    )
    refund = rules_for(s, "refund")
    assert (refund.cooldown_days, refund.sample_percent, refund.recontact_days) == (3, 50.0, 60)
    assert str(refund.quiet_hours) == "22:00-07:00"
    assert refund.key("cooldown_days") == "[touchpoints.refund] cooldown_days"
    assert refund.key("recontact_days") == "[invitations] recontact_days"
    purchase = rules_for(s, "purchase")
    assert (purchase.cooldown_days, purchase.sample_percent) == (30, 100.0)


def test_sampling_is_deterministic_per_interaction_and_close_to_its_rate() -> None:
    ids = [f"ticket-{n}" for n in range(20_000)]
    picked = [i for i in ids if sampled_in(i, 10.0)]
    assert picked == [i for i in ids if sampled_in(i, 10.0)]  # the same every time
    assert 0.09 < len(picked) / len(ids) < 0.11
    # A larger sample keeps everyone a smaller one took (a rate raised later loses nobody).
    assert set(picked) <= {i for i in ids if sampled_in(i, 25.0)}
    assert all(sampled_in(i, 100.0) for i in ids[:500])
    assert not any(sampled_in(i, 0.0) for i in ids[:500])


def test_an_interaction_outside_the_sample_is_withheld_and_says_so() -> None:
    r = rules(sample_percent="10")
    outside = next(f"t-{n}" for n in range(1000) if not sampled_in(f"t-{n}", 10.0))
    result = withheld(InvitationFacts(known=False), r, flow_id="f", interaction_id=outside, now=NOW)
    assert result is not None and result.reason == Reason.SAMPLED_OUT
    assert "([invitations] sample_percent = 10)" in result.detail


# -- quiet hours ----------------------------------------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.mark.parametrize(
    ("utc", "zone", "expected_utc"),
    [
        # 22:30 in Berlin (CET, +1) is quiet: 08:00 the next morning, which is CEST (+2) after
        # the night of 28 March 2027 — 06:00 UTC, not 07:00.
        (datetime(2027, 3, 27, 21, 30), BERLIN, datetime(2027, 3, 28, 6, 0)),
        # The same instant is 17:30 in New York: sent at once.
        (datetime(2027, 3, 27, 21, 30), NEW_YORK, datetime(2027, 3, 27, 21, 30)),
        # ...and 06:30 in Tokyo, before the window ends: 08:00 JST is 23:00 UTC.
        (datetime(2027, 3, 27, 21, 30), TOKYO, datetime(2027, 3, 27, 23, 0)),
        # Autumn: 23:00 CEST on 30 October; the clock goes back in the night → 08:00 CET.
        (datetime(2027, 10, 30, 21, 0), BERLIN, datetime(2027, 10, 31, 7, 0)),
        # Just after the window: not moved.
        (datetime(2027, 6, 1, 6, 0), BERLIN, datetime(2027, 6, 1, 6, 0)),
    ],
)
def test_quiet_hours_move_the_send_in_the_customers_zone(
    utc: datetime, zone: ZoneInfo, expected_utc: datetime
) -> None:
    r = rules(quiet_hours="21:00-08:00")
    requested = utc.replace(tzinfo=UTC)
    when = send_time(requested, rules=r, zone=zone)
    assert when.at == expected_utc.replace(tzinfo=UTC)
    assert when.moved == (when.at != requested)
    if when.moved:
        assert when.detail is not None and "21:00-08:00" in when.detail
        assert when.at.astimezone(zone).hour == 8


def test_without_quiet_hours_nothing_moves() -> None:
    night = datetime(2027, 3, 27, 23, 0, tzinfo=UTC)
    assert send_time(night, rules=rules(), zone=BERLIN).at == night
