"""Flow versions in the database: publish, diff, roll back, simulate — with surveys running
across a publish, on SQLite and PostgreSQL, and the `cxbot flows` commands as users call them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlmodel import select

from bot import flow_admin
from bot.app import App, build_app
from bot.errors import FlowError
from bot.flow_admin import FlowVersionError
from bot.flow_simulation import simulate
from storage.database import transaction
from storage.tables import Answer, Conversation
from tests.bot.test_engine import open_survey
from tests.fakes.cli_runner import Run, cli_runner

BUNDLED = Path(__file__).resolve().parents[2] / "flows" / "post_interaction.toml"
OLD_CES = "How easy was it to get your issue resolved?"
NEW_CES = "How easy was it to sort this out with us?"


def edited(old: str = OLD_CES, new: str = NEW_CES) -> str:
    text = BUNDLED.read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new)


async def test_a_survey_running_across_a_publish_keeps_its_version(any_db_app: App) -> None:
    app = any_db_app
    before = await open_survey(app, "ann")
    await before.push("9")
    await before.push("friendly staff")
    assert OLD_CES in before.pop_all()[-1].text
    done = flow_admin.publish_source(app.db, edited(), name="draft.toml", actor="cli:admin")
    assert (done.flow_id, done.version, done.created) == ("post_interaction", 2, True)
    # ann goes on with version 1; bob starts on version 2.
    await before.push("6")
    after = await open_survey(app, "bob")
    await after.push("9")
    await after.push("quick")
    assert NEW_CES in after.pop_all()[-1].text
    with transaction(app.db) as s:
        by_user = {c.customer_id: c.flow_version for c in s.exec(select(Conversation)).all()}
        answer_versions = sorted({(a.customer_id, a.flow_version) for a in s.exec(select(Answer))})
    assert sorted(by_user.values()) == [1, 2]
    assert {v for _, v in answer_versions} == {1, 2}
    assert len(answer_versions) == 2  # each survey's answers all carry its own version
    listed = flow_admin.versions(app.db, "post_interaction")
    assert [(v.version, v.origin, v.surveys, v.live) for v in listed] == [
        (1, "file", 1, False),
        (2, "publish", 1, True),
    ]


async def test_rollback_publishes_old_content_as_a_new_version(any_db_app: App) -> None:
    app = any_db_app
    await open_survey(app, "ann")  # the file's content becomes version 1
    flow_admin.publish_source(app.db, edited(), name="draft.toml", actor="cli:admin")
    patch = flow_admin.diff(app.db, "post_interaction", 1, 2)
    assert patch.startswith("--- post_interaction v1\n+++ post_interaction v2\n")
    assert f'-text = {{ en = "{OLD_CES}"' in patch or f"-{OLD_CES}" in patch or OLD_CES in patch
    assert flow_admin.diff(app.db, "post_interaction", 2, 2) == ""
    back = flow_admin.rollback(app.db, "post_interaction", 1, actor="cli:admin")
    assert (back.version, back.created) == (3, True)
    assert flow_admin.source_of(app.db, "post_interaction", 3) == BUNDLED.read_text("utf-8")
    again = flow_admin.rollback(app.db, "post_interaction", 1, actor="cli:admin")
    assert (again.version, again.created) == (3, False)  # already live: nothing stored
    survey = await open_survey(app, "cid")
    await survey.push("9")
    await survey.push("ok")
    assert OLD_CES in survey.pop_all()[-1].text
    with pytest.raises(FlowVersionError, match="no version 9; versions: 1–3"):
        flow_admin.diff(app.db, "post_interaction", 1, 9)
    with pytest.raises(FlowVersionError, match="no published version"):
        flow_admin.rollback(app.db, "nope", 1, actor="cli:admin")
    assert len(flow_admin.versions(app.db, "post_interaction")) == 3


async def test_an_unchanged_file_never_undoes_a_publish_in_another_process(
    any_db_app: App,
) -> None:
    app = any_db_app
    await open_survey(app, "ann")
    flow_admin.publish_source(app.db, edited(), name="draft.toml", actor="desk:ana@example.com")
    other = build_app(app.settings)  # a second process on the same database, same files
    try:
        survey = await open_survey(other, "bob")
        await survey.push("9")
        await survey.push("ok")
        assert NEW_CES in survey.pop_all()[-1].text
    finally:
        other.close()
    assert [v.version for v in flow_admin.versions(app.db, "post_interaction")] == [1, 2]


def test_an_invalid_flow_is_never_published(app: App) -> None:
    broken = edited().replace('type = "nps"', 'type = "stars"', 1)
    with pytest.raises(FlowError) as raised:
        flow_admin.publish_source(app.db, broken, name="draft.toml", actor="cli:admin")
    problem = raised.value.problems[0]
    assert problem.path == "draft.toml" and problem.line is not None
    assert broken.splitlines()[problem.line - 1].startswith("type")
    with pytest.raises(FlowVersionError):
        flow_admin.versions(app.db, "post_interaction")


async def test_a_flow_that_only_the_database_knows_can_be_started(app: App) -> None:
    text = edited().replace('id = "post_interaction"', 'id = "winback"', 1)
    assert flow_admin.publish_source(app.db, text, name="w.toml", actor="cli:a").version == 1
    survey = await open_survey(app, "ann", flow_id="winback")
    await survey.push("9")
    await survey.push("ok")
    assert NEW_CES in survey.pop_all()[-1].text


async def test_simulate_runs_the_draft_and_stores_nothing(app: App) -> None:
    flow = flow_admin.check_source(edited(), "draft.toml")
    out = io.StringIO()
    sent = await simulate(flow, app.settings, answers=io.StringIO("3\ntoo slow\n"), out=out)
    assert sent == 2
    shown = out.getvalue()
    assert "> 3\nSorry to hear that. What should we fix first?" in shown
    assert NEW_CES in shown
    with transaction(app.db) as s:
        assert s.exec(select(Conversation)).all() == []


# -- the commands -----------------------------------------------------------------------------


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Run:
    monkeypatch.setenv("CXBOT_GENERAL__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CXBOT_SENTIMENT__ENABLED", "false")
    monkeypatch.chdir(tmp_path)
    return cli_runner(capsys)


def test_flows_commands_publish_diff_rollback(run: Run, tmp_path: Path) -> None:
    draft = tmp_path / "draft.toml"
    draft.write_text(BUNDLED.read_text("utf-8"), encoding="utf-8")
    assert run("flows", "publish", str(draft))[:2] == (0, "1")
    draft.write_text(edited(), encoding="utf-8")
    code, out, err = run("flows", "publish", str(draft))
    assert (code, out) == (0, "2") and "published as version 2" in err
    code, out, _ = run("flows", "diff", "post_interaction", "1", "2")
    assert code == 0 and out.startswith("--- post_interaction v1") and "+" in out
    assert NEW_CES in out
    code, out, err = run("flows", "rollback", "post_interaction", "1")
    assert (code, out) == (0, "3") and "published as version 3" in err
    code, out, _ = run("flows", "versions", "post_interaction")
    assert code == 0 and "v3    live" in out and "rollback" in out
    code, _, err = run("flows", "diff", "post_interaction", "1", "7")
    assert code == 1 and "no version 7" in err
    code, _, err = run("flows", "rollback", "post_interaction", "42")
    assert code == 1 and "no version 42" in err
    draft.write_text(edited().replace('type = "nps"', 'type = "stars"', 1), encoding="utf-8")
    code, _, err = run("flows", "publish", str(draft))
    assert code == 1 and "draft.toml:" in err
    code, out, _ = run("flows", "versions", "post_interaction")
    assert out.count("\n") == 2  # still three versions
    code, _, err = run("flows", "publish", str(tmp_path / "missing.toml"))
    assert code == 1 and "file not found" in err


def test_flows_simulate_reads_answers_from_stdin(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    draft = tmp_path / "draft.toml"
    draft.write_text(edited(), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", io.StringIO("10\nall good\n"))
    code, out, err = run("flows", "simulate", str(draft))
    assert code == 0 and "nothing was stored" in err
    assert "> 10\nGreat to hear! What did you like most?" in out and NEW_CES in out
    assert not (tmp_path / "data" / "cxbot.db").exists()
