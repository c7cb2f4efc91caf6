"""The NPS / CES / CSAT trend: margins of error against hand-computed cases, buckets across time
zones, and `cxbot report --by … --json` as users call it."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import build_app
from bot.config import load_settings
from bot.trends import Period, bucket_start, build_trend, mean_moe, nps_moe, share_moe
from storage.database import transaction
from storage.reports import ScoreRow
from storage.tables import Answer, Conversation, Customer
from tests.fakes.cli_runner import Run, cli_runner


def row(kind: str, value: int, at: datetime, scale: tuple[int, int] | None = None) -> ScoreRow:
    low, high = scale or {"nps": (0, 10), "ces": (1, 7), "csat": (1, 5)}[kind]
    return ScoreRow("f", "telegram", kind, value, low, high, answered_at=at)


MONDAY = datetime(2026, 11, 2, 12, tzinfo=UTC)


def test_nps_margin_matches_the_variance_formula_by_hand() -> None:
    # 5 promoters, 2 passives, 3 detractors: p = .5, d = .3, NPS 20;
    # var = .5 + .3 - (.5 - .3)^2 = .76; moe = 100 * 1.96 * sqrt(.76 / 10) = 54.03
    values = [10, 9, 9, 10, 9, 8, 7, 0, 5, 6]
    trend = build_trend([row("nps", v, MONDAY) for v in values], by=Period.WEEK)
    point = trend.series[0].nps
    assert (point.score, point.n, point.promoters, point.detractors) == (20.0, 10, 5, 3)
    assert point.moe == pytest.approx(100 * 1.959964 * math.sqrt(0.076), abs=0.01)
    assert nps_moe(5, 3, 10) == pytest.approx(54.03, abs=0.01)


def test_ces_and_csat_margins_by_hand() -> None:
    # CES 1..7 twice: mean 4, sample sd = sqrt(56 / 13) = 2.0755; moe = 1.96 * sd / sqrt(14)
    ces = [1, 2, 3, 4, 5, 6, 7] * 2
    assert mean_moe([float(v) for v in ces]) == pytest.approx(1.0872, abs=1e-3)
    # CSAT 8 of 12 satisfied: 66.7%; moe = 100 * 1.96 * sqrt(2/3 * 1/3 / 12) = 26.67
    csat = [5, 4, 4, 5, 5, 4, 4, 5, 1, 2, 3, 3]
    assert share_moe(8, 12) == pytest.approx(26.67, abs=0.01)
    rows = [row("ces", v, MONDAY) for v in ces] + [row("csat", v, MONDAY) for v in csat]
    point = build_trend(rows, by=Period.MONTH).series[0]
    assert (point.ces.mean, point.ces.n) == (4.0, 14)
    assert point.ces.moe == pytest.approx(1.0872, abs=1e-3)
    assert (point.csat.score, point.csat.n) == (66.7, 12)
    assert point.csat.moe == pytest.approx(26.67, abs=0.01)


def test_ces_on_another_scale_is_rescaled_to_one_to_seven() -> None:
    point = build_trend([row("ces", 5, MONDAY, scale=(1, 5))], by=Period.DAY).series[0]
    assert point.ces.mean == 7.0


def test_too_few_answers_have_a_score_but_no_margin() -> None:
    rows = [row("nps", 10, MONDAY), row("nps", 3, MONDAY)]
    point = build_trend(rows, by=Period.DAY).series[0]
    assert (point.nps.score, point.nps.n, point.nps.moe) == (0.0, 2, None)
    assert build_trend(rows, by=Period.DAY, min_n=2).series[0].nps.moe is not None


def test_buckets_follow_local_days_in_the_time_zone() -> None:
    # Sunday 23:30 UTC is Monday 00:30 in Berlin: a different week there.
    late_sunday = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)
    rows = [row("nps", 10, late_sunday)]
    assert build_trend(rows, by=Period.WEEK).series[0].start == date(2026, 11, 23)
    berlin = build_trend(rows, by=Period.WEEK, zone="Europe/Berlin")
    assert berlin.series[0].start == date(2026, 11, 30)
    # And 02:00 UTC on the 1st is still the previous month in New York.
    first = datetime(2026, 12, 1, 2, tzinfo=UTC)
    ny = build_trend([row("csat", 5, first)], by=Period.MONTH, zone="America/New_York")
    assert ny.series[0].start == date(2026, 11, 1)


def test_series_is_oldest_first_with_empty_buckets_between() -> None:
    rows = [row("nps", 9, MONDAY + timedelta(weeks=2)), row("nps", 0, MONDAY)]
    series = build_trend(rows, by=Period.WEEK).series
    assert [p.start for p in series] == [date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16)]
    assert [p.nps.n for p in series] == [1, 0, 1]
    assert series[1].nps.score is None and series[1].nps.moe is None


def test_months_roll_over_the_year() -> None:
    assert bucket_start(date(2026, 12, 31), Period.MONTH) == date(2026, 12, 1)
    rows = [row("nps", 9, datetime(2026, 12, 5, tzinfo=UTC)), row("nps", 9, datetime(2027, 1, 5))]
    assert [p.start for p in build_trend(rows, by=Period.MONTH).series] == [
        date(2026, 12, 1),
        date(2027, 1, 1),
    ]


# -- the command -----------------------------------------------------------------------------


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Run:
    monkeypatch.setenv("CXBOT_GENERAL__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CXBOT_SENTIMENT__ENABLED", "false")
    return cli_runner(capsys)


def store(answers: list[tuple[str, int, datetime]]) -> None:
    """Stored score answers of one customer's completed survey, answered at the given times."""
    app = build_app(load_settings())
    try:
        with transaction(app.db) as session:
            customer = Customer(channel="telegram", external_id="42")
            session.add(customer)
            session.flush()
            assert customer.id is not None
            conv = Conversation(
                customer_id=customer.id,
                channel="telegram",
                flow_id="f",
                flow_version=1,
                state="completed",
            )
            session.add(conv)
            session.flush()
            assert conv.id is not None
            for kind, value, at in answers:
                low, high = {"nps": (0, 10), "ces": (1, 7), "csat": (1, 5)}[kind]
                session.add(
                    Answer(
                        conversation_id=conv.id,
                        customer_id=customer.id,
                        channel="telegram",
                        flow_id="f",
                        flow_version=1,
                        question_id=kind,
                        question_type=kind,
                        raw_text=str(value),
                        value_int=value,
                        scale_min=low,
                        scale_max=high,
                        answered_at=at,
                    )
                )
    finally:
        app.close()


def test_report_by_week_json_follows_the_contract(run: Run) -> None:
    week1 = [("nps", v, MONDAY) for v in [10, 9, 9, 10, 9, 8, 7, 0, 5, 6]]
    week2 = [("nps", 10, MONDAY + timedelta(days=7)), ("ces", 6, MONDAY + timedelta(days=8))]
    store(week1 + week2)
    code, out, err = run("report", "--by", "week", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["by"] == "week"
    first, second = data["series"]
    assert first["start"] == "2026-11-02" and second["start"] == "2026-11-09"
    assert first["nps"]["score"] == 20.0 and first["nps"]["n"] == 10
    assert first["nps"]["moe"] == pytest.approx(54.03, abs=0.01)
    assert first["ces"] == {"mean": None, "n": 0, "moe": None}
    assert first["csat"] == {"score": None, "n": 0, "moe": None}
    assert second["nps"]["moe"] is None and second["ces"]["mean"] == 6.0
    code, out, _ = run("report", "--by", "day", "--since", "2026-11-09", "--json")
    assert code == 0
    days = json.loads(out)["series"]
    assert [d["start"] for d in days] == ["2026-11-09", "2026-11-10"]
    code, out, _ = run("report", "--by", "month")
    assert code == 0 and "2026-11-01" in out and "±54.0 n=11" not in out


def test_report_trend_refuses_impossible_input(run: Run) -> None:
    code, _, err = run("report", "--by", "week", "--since", "2026-12-01", "--until", "2026-11-01")
    assert code == 1 and "after --until" in err
    code, _, err = run("report", "--by", "week", "--tz", "Mars/Olympus")
    assert code == 1 and "unknown time zone" in err
    with pytest.raises(SystemExit) as exited:
        run("report", "--by", "week", "--since", "yesterday")
    assert exited.value.code == 2
    code, _, err = run("report", "--since", "2026-11-01")
    assert code == 1 and "--by" in err


def test_report_of_an_empty_range_is_an_empty_series(run: Run) -> None:
    code, out, _ = run("report", "--by", "week", "--json")
    assert code == 0 and json.loads(out)["series"] == []
    code, out, _ = run("report", "--by", "week")
    assert code == 0 and "no answers in this range" in out


def test_plot_draws_png_and_svg_and_refuses_other_files(run: Run, tmp_path: Path) -> None:
    weeks = [
        ("nps", v, MONDAY + timedelta(weeks=w))
        for w in range(4)
        for v in [10, 9, 9, 10, 9, 8, 7, 0, 5, 6][: 10 - w * 3]
    ]
    store([*weeks, ("csat", 4, MONDAY), ("ces", 5, MONDAY)])
    png, svg = tmp_path / "trend.png", tmp_path / "trend.svg"
    code, out, err = run("report", "--by", "week", "--plot", str(png))
    assert code == 0 and f"trend drawn to {png}" in err and "2026-11-02" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert run("report", "--by", "week", "--plot", str(svg), "--json")[0] == 0
    drawing = svg.read_text(encoding="utf-8")
    assert drawing.lstrip().startswith("<?xml") and "<svg" in drawing
    code, _, err = run("report", "--by", "week", "--plot", str(tmp_path / "trend.gif"))
    assert code == 1 and "must end in .png or .svg" in err
    code, _, err = run("report", "--plot", str(png))
    assert code == 1 and "go with --by" in err
    code, _, err = run(
        "report",
        "--by",
        "week",
        "--since",
        "2030-01-01",
        "--until",
        "2030-01-01",
        "--plot",
        str(tmp_path / "empty.png"),
    )
    assert code == 1 and not (tmp_path / "empty.png").exists()
