"""The flow pages (admins): list, editor, validate, simulate, publish, diff and roll back.

The app here has a flow directory of its own holding `tiny` (its name carries markup, to check
escaping); `tiny` v1 is live from its file with one survey started on it. Every test asserts on
what the page shows and what is stored (bot.flow_admin.versions / source_of).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import flow_admin
from bot.app import App, build_app
from bot.config import Settings
from bot.desk_users import DeskAccount
from tests.web.desk.conftest import ADMIN, Desk

TINY = """\
id = "tiny"
name = "Tiny <b>survey</b>"
# a comment that closes the editor: </textarea><script>alert(1)</script>

[[questions]]
id = "nps"
type = "nps"
text = "How likely are you to recommend us?"

[[questions]]
id = "why"
type = "text"
optional = true
when = { question = "nps", lte = 6 }
text = "Sorry! What went wrong?"

[[questions]]
id = "liked"
type = "text"
optional = true
text = "What did you like?"
"""
WHEN = 'when = { question = "nps", lte = 6 }'
BROKEN = TINY.replace(WHEN, WHEN.replace("nps", "npz"))  # a question that does not exist
BAD_LINE = TINY.splitlines().index(WHEN) + 1  # 14
FIXED = TINY.replace("Sorry! What went wrong?", "Sorry to hear that. What should we fix first?")
ACTOR = f"desk:{ADMIN}"
FLOW_ROW = r'<tr>\s*<td data-label="Flow"><a href="/desk/flows/(\w+)">.*?</tr>'


@pytest.fixture
def app(settings: Settings, tmp_path: Path) -> Iterator[App]:
    """The wired app with a flow directory holding `tiny`; tiny v1 live, one survey on it."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "tiny.toml").write_text(TINY, encoding="utf-8")
    with_dir = settings.model_copy(
        update={"flows": settings.flows.model_copy(update={"dirs": [flows]})}
    )
    application = build_app(with_dir)
    yield application
    application.close()


@pytest.fixture
async def started(app: App) -> App:
    await app.engine.begin(channel="telegram", user_id="7", flow_id="tiny")
    return app


def stored(desk: Desk, flow_id: str = "tiny") -> list[tuple[int, str, str | None, int]]:
    """(version, origin, published_by, surveys) of each stored version."""
    try:
        found = flow_admin.versions(desk.app.db, flow_id)
    except flow_admin.FlowVersionError:
        return []
    return [(v.version, v.origin, v.published_by, v.surveys) for v in found]


def editor_text(page: str) -> str:
    """The editor textarea's value as a browser reads it (the first newline is dropped)."""
    found = re.search(r'<textarea id="source"[^>]*>\n(.*?)</textarea>', page, re.S)
    assert found is not None, "no editor on the page"
    return html.unescape(found.group(1))


def form(source: str, **extra: str) -> dict[str, str]:
    return {"source": source, "base": "1", **extra}


FORMS = {
    "/desk/flows/tiny/validate": form(TINY),
    "/desk/flows/tiny/simulate": form(TINY, answers="3"),
    "/desk/flows/tiny/publish": form(FIXED),
    "/desk/flows/tiny/rollback": {"version": "1"},
}


# -- who may see the pages ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/desk/flows", "/desk/flows/tiny", "/desk/flows/tiny/diff"])
async def test_support_users_are_refused_the_flow_pages(
    as_support: Desk, started: App, path: str
) -> None:
    answer = await as_support.client.get(path)
    assert answer.status_code == 403
    assert "This page is for admins only" in answer.text
    queue = await as_support.client.get("/desk/queue")
    assert 'href="/desk/flows"' not in queue.text
    assert 'href="/desk/analytics"' in queue.text  # analytics is for everyone


@pytest.mark.parametrize("path", sorted(FORMS))
async def test_support_users_are_refused_flow_forms_and_nothing_is_stored(
    as_support: Desk, started: App, path: str
) -> None:
    answer = await as_support.post(path, FORMS[path])
    assert answer.status_code == 403
    assert stored(as_support) == [(1, "file", None, 1)]


@pytest.mark.parametrize("path", sorted(FORMS))
async def test_flow_forms_without_the_csrf_token_are_403(
    as_admin: Desk, started: App, path: str
) -> None:
    answer = await as_admin.client.post(path, data=FORMS[path])
    assert answer.status_code == 403
    assert "security token" in answer.text
    assert stored(as_admin) == [(1, "file", None, 1)]


async def test_strangers_are_sent_to_sign_in(desk: Desk) -> None:
    answer = await desk.client.get("/desk/flows/tiny")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/desk/login?next=")
    posted = await desk.client.post("/desk/flows/tiny/publish", data=form(FIXED))
    assert posted.status_code == 401


# -- the list and the page ----------------------------------------------------------------------


async def test_the_list_shows_file_and_published_flows_with_versions_and_surveys(
    as_admin: Desk, started: App
) -> None:
    # A flow that exists only in the database (published from elsewhere, no file here).
    other = TINY.replace('id = "tiny"', 'id = "elsewhere"').replace("Tiny <b>", "Else <i>")
    flow_admin.publish_source(as_admin.app.db, other, name="other.toml", actor="cli:ops")
    page = await as_admin.client.get("/desk/flows")
    assert page.status_code == 200
    assert 'href="/desk/flows"' in page.text and 'aria-current="page">Flows' in page.text
    rows = {m.group(1): m.group(0) for m in re.finditer(FLOW_ROW, page.text, re.S)}
    assert set(rows) == {"elsewhere", "post_interaction", "post_purchase", "tiny"}
    assert "v1" in rows["tiny"] and '<td data-label="Surveys">1</td>' in rows["tiny"]
    assert "Tiny &lt;b&gt;survey&lt;/b&gt;" in rows["tiny"]  # the name as text
    assert "published only" in rows["elsewhere"] and "Else &lt;i&gt;" in rows["elsewhere"]
    assert "not published yet" in rows["post_purchase"]
    assert "default" in rows["post_interaction"]


async def test_a_flow_file_broken_on_disk_is_named_and_published_flows_still_listed(
    as_admin: Desk, started: App
) -> None:
    (started.settings.flows.dirs[0] / "tiny.toml").write_text(BROKEN, encoding="utf-8")
    page = await as_admin.client.get("/desk/flows")
    assert page.status_code == 200
    assert "The flow files do not load, so only published flows are listed" in page.text
    assert f"tiny.toml:{BAD_LINE}:" in page.text and "npz" in page.text
    rows = {m.group(1): m.group(0) for m in re.finditer(FLOW_ROW, page.text, re.S)}
    assert set(rows) == {"tiny"}  # the bundled flows load with the rest, or not at all
    assert "published only" in rows["tiny"] and "v1" in rows["tiny"]
    flow_page = await as_admin.client.get("/desk/flows/tiny")
    assert flow_page.status_code == 200
    assert editor_text(flow_page.text) == TINY  # the live version, from the database


async def test_the_flow_page_shows_versions_and_the_live_toml_escaped(
    as_admin: Desk, started: App
) -> None:
    flow_admin.publish_source(as_admin.app.db, FIXED, name="x", actor="cli:ops")
    page = await as_admin.client.get("/desk/flows/tiny")
    assert page.status_code == 200
    assert editor_text(page.text) == FIXED  # byte for byte: publishing it unchanged is a no-op
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;/textarea&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    versions = page.text[page.text.index('<table class="list versions">') :]
    versions = versions[: versions.index("</table>")]
    assert versions.index("v2") < versions.index("v1")  # newest first
    assert "Cli ops" in versions  # actors as people read them
    assert "Roll back to v1" in versions and "Roll back to v2" not in versions  # v2 is live
    assert "a flow file" in versions  # v1 came from the file


async def test_the_page_can_open_an_older_version_in_the_editor(
    as_admin: Desk, started: App
) -> None:
    flow_admin.publish_source(as_admin.app.db, FIXED, name="x", actor="cli:ops")
    page = await as_admin.client.get("/desk/flows/tiny?from=1")
    assert page.status_code == 200
    assert editor_text(page.text) == TINY
    assert "The editor holds version 1" in page.text
    missing = await as_admin.client.get("/desk/flows/tiny?from=9")
    assert missing.status_code == 404
    assert "has no version 9; versions: 1, 2" in missing.text
    bad = await as_admin.client.get("/desk/flows/tiny?from=two")
    assert bad.status_code == 400


async def test_an_unpublished_file_flow_opens_with_its_file(as_admin: Desk) -> None:
    page = await as_admin.client.get("/desk/flows/tiny")
    assert page.status_code == 200
    assert "Not published yet" in page.text
    assert editor_text(page.text) == TINY
    assert 'name="base" value=""' in page.text


@pytest.mark.parametrize("flow_id", ["nothing_here", "Not-An-Id", "..%2F..%2Fetc"])
async def test_unknown_flows_are_404(as_admin: Desk, flow_id: str) -> None:
    answer = await as_admin.client.get(f"/desk/flows/{flow_id}")
    assert answer.status_code == 404
    posted = await as_admin.post(f"/desk/flows/{flow_id}/publish", form(TINY), page="/desk/flows")
    assert posted.status_code == 404
    assert stored(as_admin) == []


# -- validate and simulate ----------------------------------------------------------------------


async def test_validate_shows_each_problem_at_its_line_and_keeps_the_draft(
    as_admin: Desk, started: App
) -> None:
    typed = BROKEN.replace("\n", "\r\n")  # as a browser sends a textarea
    answer = await as_admin.post("/desk/flows/tiny/validate", form(typed), page="/desk/flows/tiny")
    assert answer.status_code == 422
    assert "Not valid: the flow has 1 problem" in answer.text
    problem = re.search(r'<a href="#line-(\d+)" data-line="\d+">Line \d+</a>: ([^<]*)', answer.text)
    assert problem is not None
    assert problem.group(1) == str(BAD_LINE) == "14"
    assert "npz" in html.unescape(problem.group(2))
    assert editor_text(answer.text) == BROKEN  # kept as typed
    assert f'<li id="line-{BAD_LINE}" class="bad">' in answer.text  # the numbered copy marks it
    assert stored(as_admin) == [(1, "file", None, 1)]


async def test_validate_says_a_valid_flow_is_valid(as_admin: Desk, started: App) -> None:
    answer = await as_admin.post("/desk/flows/tiny/validate", form(FIXED), page="/desk/flows/tiny")
    assert answer.status_code == 200
    assert "The flow is valid." in answer.text
    assert editor_text(answer.text) == FIXED
    assert stored(as_admin) == [(1, "file", None, 1)]


async def test_a_draft_of_another_flow_id_is_refused_at_its_id_line(
    as_admin: Desk, started: App
) -> None:
    renamed = TINY.replace('id = "tiny"', 'id = "huge"')
    answer = await as_admin.post("/desk/flows/tiny/publish", form(renamed), page="/desk/flows/tiny")
    assert answer.status_code == 422
    assert 'data-line="1">Line 1</a>: the id is &#34;huge&#34; but this page edits' in answer.text
    assert stored(as_admin) == [(1, "file", None, 1)]
    assert stored(as_admin, "huge") == []


async def test_simulate_runs_the_draft_with_the_answers_and_stores_nothing(
    as_admin: Desk, started: App
) -> None:
    answer = await as_admin.post(
        "/desk/flows/tiny/simulate",
        form(FIXED, answers="3\r\n<b>slow</b> app\r\n", locale=""),
        page="/desk/flows/tiny",
    )
    assert answer.status_code == 200, answer.text
    said = [
        (who, html.unescape(text))
        for who, text in re.findall(
            r'<li class="msg from-(\w+)"><div class="msg-meta">[^<]*</div>'
            r'<div class="msg-text">(.*?)</div></li>',
            answer.text,
            re.S,
        )
    ]
    assert said[0][0] == "bot" and "How likely are you to recommend us?" in said[0][1]
    assert said[1] == ("customer", "3")
    assert said[2] == ("bot", "Sorry to hear that. What should we fix first?")  # the draft's text
    assert said[3] == ("customer", "<b>slow</b> app")  # shown as text
    assert said[4] == ("bot", "What did you like?")
    assert "Simulated the draft with 2 answers; nothing was stored." in answer.text
    assert editor_text(answer.text) == FIXED
    assert "<b>slow</b>" not in answer.text
    assert stored(as_admin) == [(1, "file", None, 1)]  # no version, no survey


async def test_simulating_an_invalid_draft_shows_its_problems(as_admin: Desk, started: App) -> None:
    answer = await as_admin.post(
        "/desk/flows/tiny/simulate", form(BROKEN, answers="3"), page="/desk/flows/tiny"
    )
    assert answer.status_code == 422
    assert "Nothing was simulated" in answer.text
    assert f'data-line="{BAD_LINE}"' in answer.text


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"locale": "<script>"}, "is not a language tag"),
        ({"answers": "x\n" * 201}, "201 answers; the simulator takes 200 at most"),
        ({"source": "x" * 200_001}, "the most is 200,000"),
        ({"base": "one"}, "is not a version number"),
    ],
)
async def test_bad_editor_fields_are_400(
    as_admin: Desk, started: App, fields: dict[str, str], says: str
) -> None:
    answer = await as_admin.post(
        "/desk/flows/tiny/simulate", {**form(TINY, answers="3"), **fields}, page="/desk/flows"
    )
    assert answer.status_code == 400
    assert says in html.unescape(answer.text)
    assert stored(as_admin) == [(1, "file", None, 1)]


# -- publish ------------------------------------------------------------------------------------


async def test_publish_stores_a_new_version_by_the_desk_user(as_admin: Desk, started: App) -> None:
    answer = await as_admin.post(
        "/desk/flows/tiny/publish", form(FIXED.replace("\n", "\r\n")), page="/desk/flows/tiny"
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/desk/flows/tiny"
    assert stored(as_admin) == [(1, "file", None, 1), (2, "publish", ACTOR, 0)]
    assert flow_admin.source_of(as_admin.app.db, "tiny", 2) == FIXED  # LF, as files are
    page = await as_admin.client.get("/desk/flows/tiny")
    assert "Published tiny as version 2; new surveys start on it." in page.text
    assert editor_text(page.text) == FIXED
    # The running survey keeps v1; a new one starts on v2.
    await as_admin.app.engine.begin(channel="telegram", user_id="8", flow_id="tiny")
    assert stored(as_admin) == [(1, "file", None, 1), (2, "publish", ACTOR, 1)]


async def test_publishing_the_live_content_again_changes_nothing(
    as_admin: Desk, started: App
) -> None:
    answer = await as_admin.post("/desk/flows/tiny/publish", form(TINY), page="/desk/flows")
    assert answer.status_code == 303
    page = await as_admin.client.get("/desk/flows/tiny")
    assert "Nothing changed: this content is already live as version 1." in page.text
    assert stored(as_admin) == [(1, "file", None, 1)]


async def test_an_invalid_flow_is_never_published(as_admin: Desk, started: App) -> None:
    answer = await as_admin.post("/desk/flows/tiny/publish", form(BROKEN), page="/desk/flows")
    assert answer.status_code == 422
    assert "Nothing was published: the flow has 1 problem" in answer.text
    assert f'data-line="{BAD_LINE}"' in answer.text
    assert editor_text(answer.text) == BROKEN
    assert stored(as_admin) == [(1, "file", None, 1)]


async def test_a_publish_over_a_version_published_meanwhile_is_409(
    as_admin: Desk, started: App
) -> None:
    flow_admin.publish_source(as_admin.app.db, FIXED, name="x", actor="cli:ops")
    draft = TINY.replace("What did you like?", "What did you like most?")
    answer = await as_admin.post(
        "/desk/flows/tiny/publish", form(draft, base="1"), page="/desk/flows"
    )
    assert answer.status_code == 409
    assert "version 2 went live since this editor was opened (by cli:ops)" in answer.text
    assert editor_text(answer.text) == draft
    assert 'name="base" value="2"' in answer.text  # publishing again is a decision made
    assert [v[0] for v in stored(as_admin)] == [1, 2]


async def test_publishing_a_file_flow_never_published_makes_version_1(
    as_admin: Desk, admin: DeskAccount
) -> None:
    answer = await as_admin.post(
        "/desk/flows/tiny/publish", {"source": FIXED, "base": ""}, page="/desk/flows"
    )
    assert answer.status_code == 303
    assert stored(as_admin) == [(1, "publish", ACTOR, 0)]


# -- diff and rollback --------------------------------------------------------------------------


async def test_the_diff_of_two_versions_is_escaped_text_with_styled_lines(
    as_admin: Desk, started: App
) -> None:
    changed = FIXED.replace("What did you like?", "What did you <em>like</em>?")
    flow_admin.publish_source(as_admin.app.db, changed, name="x", actor="cli:ops")
    page = await as_admin.client.get("/desk/flows/tiny/diff?old=1&new=2")
    assert page.status_code == 200
    assert '<span class="diff-file">--- tiny v1</span>' in page.text
    assert '<span class="diff-file">+++ tiny v2</span>' in page.text
    assert '<span class="diff-remove">-text = &#34;Sorry! What went wrong?&#34;</span>' in page.text
    assert (
        '<span class="diff-add">+text = &#34;What did you &lt;em&gt;like&lt;/em&gt;?&#34;</span>'
        in page.text
    )
    assert "<em>" not in page.text
    same = await as_admin.client.get("/desk/flows/tiny/diff?old=2&new=2")
    assert "have the same content" in same.text


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ("old=1&new=7", 404, "flow &#39;tiny&#39; has no version 7; versions: 1"),
        ("old=1", 400, "Version new= is missing"),
        ("old=x&new=1", 400, "Version old= is &#39;x&#39;"),
    ],
)
async def test_diffs_of_unknown_versions_are_refused(
    as_admin: Desk, started: App, query: str, status: int, says: str
) -> None:
    answer = await as_admin.client.get(f"/desk/flows/tiny/diff?{query}")
    assert answer.status_code == status
    assert says in answer.text


async def test_rollback_publishes_the_old_content_as_a_new_version(
    as_admin: Desk, started: App
) -> None:
    flow_admin.publish_source(as_admin.app.db, FIXED, name="x", actor="cli:ops")
    answer = await as_admin.post(
        "/desk/flows/tiny/rollback", {"version": "1"}, page="/desk/flows/tiny"
    )
    assert answer.status_code == 303
    assert stored(as_admin) == [
        (1, "file", None, 1),
        (2, "publish", "cli:ops", 0),
        (3, "rollback", ACTOR, 0),
    ]
    assert flow_admin.source_of(as_admin.app.db, "tiny", 3) == TINY
    page = await as_admin.client.get("/desk/flows/tiny")
    assert "Version 1&#39;s content is live again as version 3." in page.text
    assert editor_text(page.text) == TINY
    again = await as_admin.post("/desk/flows/tiny/rollback", {"version": "3"}, page="/desk/flows")
    assert again.status_code == 303
    page = await as_admin.client.get("/desk/flows/tiny")
    assert "is already live (version 3)" in page.text
    assert len(stored(as_admin)) == 3


@pytest.mark.parametrize(
    ("version", "status", "says"),
    [
        ("5", 404, "Nothing was rolled back: flow &#39;tiny&#39; has no version 5"),
        ("v1", 400, "not a version number"),
    ],
)
async def test_a_rollback_to_a_missing_version_changes_nothing(
    as_admin: Desk, started: App, version: str, status: int, says: str
) -> None:
    answer = await as_admin.post(
        "/desk/flows/tiny/rollback", {"version": version}, page="/desk/flows"
    )
    assert answer.status_code == status
    assert says in answer.text
    assert stored(as_admin) == [(1, "file", None, 1)]
