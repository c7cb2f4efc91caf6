"""NPS, CES and CSAT arithmetic and grouping."""

from __future__ import annotations

from bot.metrics import build_report, ces, csat, format_report, nps
from storage.reports import ScoreRow


def row(kind: str, value: int, flow: str = "f", channel: str = "console", scale=None) -> ScoreRow:  # type: ignore[no-untyped-def]
    lo, hi = scale or {"nps": (0, 10), "ces": (1, 7), "csat": (1, 5)}[kind]
    return ScoreRow(flow, channel, kind, value, lo, hi)


def test_nps_is_promoters_minus_detractors_in_percent() -> None:
    summary = nps([10, 9, 8, 7, 6, 0])
    assert (summary.promoters, summary.passives, summary.detractors, summary.n) == (2, 2, 2, 6)
    assert summary.score == 0.0
    assert nps([10, 10, 10, 3]).score == 50.0
    assert nps([]).score is None


def test_csat_counts_four_and_five_as_satisfied() -> None:
    assert csat([5, 4, 3, 1]).score == 50.0
    assert csat([]).score is None


def test_ces_mean() -> None:
    assert ces([7, 6, 5]).mean == 6.0


def test_ces_on_other_scales_is_rescaled_to_seven_points() -> None:
    report = build_report([row("ces", 5, scale=(1, 5)), row("ces", 1, scale=(1, 5))])
    assert report.overall.ces.mean == 4.0  # 7 and 1


def test_report_groups_by_flow_and_channel() -> None:
    rows = [
        row("nps", 10, flow="a", channel="telegram"),
        row("nps", 0, flow="b", channel="slack"),
        row("csat", 5, flow="a", channel="telegram"),
    ]
    report = build_report(rows)
    assert report.overall.nps.score == 0.0
    assert report.by_flow["a"].nps.score == 100.0
    assert report.by_channel["slack"].nps.detractors == 1
    data = report.to_dict()
    assert set(data) == {"nps", "ces", "csat", "by_flow", "by_channel", "late_comments"}
    assert data["csat"] == {"score": 100.0, "satisfied": 1, "n": 1}
    table = format_report(report)
    assert "flow: a" in table and "channel: telegram" in table


def test_late_comments_are_counted_beside_the_scores_not_in_them() -> None:
    report = build_report([row("nps", 10)], late_comments=2)
    assert report.overall.nps.n == 1
    assert report.to_dict()["late_comments"] == 2
    assert "Late comments (after the thanks or after a survey closed, not scored): 2." in (
        format_report(report)
    )
