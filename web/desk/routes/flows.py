"""`/desk/flows` (admins): every flow with its live version; a flow's versions, its TOML in an
editor that validates (each problem at its line), simulates (the draft answered as a customer,
nothing stored), publishes, diffs two versions and rolls back (bot.flow_admin).

The simulator is stateless: each Simulate posts the draft and every answer typed so far, and the
server runs the conversation again from the start on a throwaway database. An invalid draft is
never published: the editor comes back (422) with the draft as typed and each problem at its
line. A publish names the live version the editor was opened on; when another one went live
since, nothing is published (409) and the editor says so, the draft kept.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from fastapi import APIRouter
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from bot import flow_admin
from bot.config import Settings
from bot.desk_users import DeskAccount
from bot.errors import FlowError, FlowProblem
from bot.flow_model import IDENTIFIER, Flow
from bot.flow_overview import file_flows, flow_overview
from bot.flow_simulation import simulate
from storage.database import Database
from web.desk.auth import AdminOnly, CheckedForm
from web.desk.context import desk_of
from web.desk.errors import DeskRefusal
from web.desk.forms import row_id
from web.desk.pages import back_to, render

router = APIRouter()

MAX_SOURCE = 200_000  # characters of TOML; the bundled flows are ~5,000
MAX_ANSWERS = 200  # lines the simulator answers
MAX_ANSWER_TEXT = 20_000
DRAFT = "draft"  # the "path" problems of the editor's text are reported under
_FLOW_ID = re.compile(IDENTIFIER)
_LOCALE = re.compile(r"^[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8}){0,3}$")
_ID_LINE = re.compile(r"^\s*id\s*=", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Known:
    """What is stored and on disk of one flow: its versions (oldest first) and its file."""

    flow_id: str
    versions: list[flow_admin.VersionInfo]
    file: Flow | None

    @property
    def live(self) -> int | None:
        """The live version's number; None when never published."""
        return self.versions[-1].version if self.versions else None


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the transcript: who said it, and what."""

    who: str  # "customer" / "bot"
    text: str


@dataclass(frozen=True, slots=True)
class Editor:
    """The editor's state: the draft as typed and what the last action found."""

    source: str
    base: int | None
    problems: Sequence[FlowProblem] = ()
    warnings: Sequence[str] = ()
    notice: str | None = None
    error: str | None = None
    transcript: Sequence[Line] | None = None
    answers: str = ""
    locale: str = ""


def _known(db: Database, settings: Settings, flow_id: str) -> Known | None:
    files, _ = file_flows(settings.flows.dirs)
    try:
        stored = flow_admin.versions(db, flow_id)
    except flow_admin.FlowVersionError:
        stored = []
    file = files.get(flow_id)
    if not stored and file is None:
        return None
    return Known(flow_id=flow_id, versions=stored, file=file)


async def _flow(request: Request, flow_id: str) -> Known:
    """The flow of the path; 404 when no file defines it and it was never published."""
    desk = desk_of(request)
    found = None
    if _FLOW_ID.fullmatch(flow_id):
        found = await asyncio.to_thread(_known, desk.db, desk.app_settings, flow_id)
    if found is None:
        raise DeskRefusal(404, f"There is no flow {flow_id!r}.", back="/flows")
    return found


@router.get("/flows")
async def flows_page(request: Request, account: AdminOnly) -> Response:
    """Every flow, from files and published, with its live version and survey count."""
    desk = desk_of(request)
    files, problems = await asyncio.to_thread(file_flows, desk.app_settings.flows.dirs)
    summaries = await asyncio.to_thread(flow_overview, desk.db, files)
    return render(
        request,
        "flows.html",
        account=account,
        nav="flows",
        flows=summaries,
        problems=problems,
        default=desk.app_settings.flows.default,
    )


def _editor_page(
    request: Request, account: DeskAccount, known: Known, editor: Editor, *, status: int = 200
) -> Response:
    return render(
        request,
        "flow.html",
        account=account,
        nav="flows",
        flow=known,
        editor=editor,
        lines=editor.source.split("\n") if editor.problems else [],
        bad_lines={p.line for p in editor.problems if p.line is not None},
        status=status,
    )


@router.get("/flows/{flow_id}")
async def flow_page(request: Request, account: AdminOnly, flow_id: str) -> Response:
    """A flow's versions and its live TOML in the editor (`?from=N`: version N's TOML)."""
    known = await _flow(request, flow_id)
    start = request.query_params.get("from", "").strip()
    if start:
        version = row_id(start)
        if version is None:
            raise DeskRefusal(400, f"from={start!r} is not a version number.", back="/flows")
        source = await _source(request, known, version)
        notice = f"The editor holds version {version}; publishing it makes a new version."
    elif known.live is not None:
        source = await _source(request, known, known.live)
        notice = None
    else:
        assert known.file is not None  # _flow: a file, when nothing is published
        source, notice = known.file.source, "Not published yet: the editor holds the file."
    return _editor_page(
        request, account, known, Editor(source=source, base=known.live, notice=notice)
    )


async def _source(request: Request, known: Known, version: int) -> str:
    try:
        return await asyncio.to_thread(
            flow_admin.source_of, desk_of(request).db, known.flow_id, version
        )
    except flow_admin.FlowVersionError as exc:
        raise DeskRefusal(404, f"{exc}.", back=f"/flows/{known.flow_id}") from None


def _draft_text(form: FormData) -> str:
    """The editor's TOML as typed: browsers send a textarea's lines ending in CRLF; a flow file
    ends them in LF, and the checksum (what is live) must not depend on the browser."""
    value = form.get("source", "")
    if not isinstance(value, str):
        raise DeskRefusal(400, "The flow must be text, not a file.")
    if len(value) > MAX_SOURCE:
        raise DeskRefusal(
            400, f"The flow is {len(value):,} characters long; the most is {MAX_SOURCE:,}."
        )
    return value.replace("\r\n", "\n").replace("\r", "\n")


def _base(form: FormData) -> int | None:
    value = form.get("base", "")
    if not isinstance(value, str):
        raise DeskRefusal(400, "The editor's base version must be a number.")
    if not value.strip():
        return None
    number = row_id(value)
    if number is None:
        raise DeskRefusal(400, f"The editor's base version {value!r} is not a version number.")
    return number


def _checked(text: str, flow_id: str) -> tuple[Flow | None, list[FlowProblem]]:
    """The draft as a flow, or the problems that keep it from being one (a draft of another
    flow id among them: this page publishes only its own flow)."""
    if not text.strip():
        return None, [FlowProblem(DRAFT, None, "the flow is empty")]
    try:
        flow = flow_admin.check_source(text, DRAFT)
    except FlowError as exc:
        return None, list(exc.problems)
    if flow.id != flow_id:
        found = _ID_LINE.search(text)
        line = text.count("\n", 0, found.start()) + 1 if found else None
        message = (
            f'the id is "{flow.id}" but this page edits "{flow_id}": keep the id '
            "(a new flow starts as a flow file)"
        )
        return None, [FlowProblem(DRAFT, line, message)]
    return flow, []


def _invalid(
    request: Request, account: DeskAccount, known: Known, editor: Editor, what: str
) -> Response:
    count = len(editor.problems)
    error = f"{what}: the flow has {count} problem{'' if count == 1 else 's'}, listed below."
    return _editor_page(request, account, known, replace(editor, error=error), status=422)


@router.post("/flows/{flow_id}/validate")
async def validate(
    request: Request, account: AdminOnly, form: CheckedForm, flow_id: str
) -> Response:
    """Check the draft as `cxbot flows validate` does; each problem at its line (422)."""
    known = await _flow(request, flow_id)
    text = _draft_text(form)
    flow, problems = await asyncio.to_thread(_checked, text, flow_id)
    editor = Editor(source=text, base=_base(form), problems=problems)
    if flow is None:
        return _invalid(request, account, known, editor, "Not valid")
    warnings = flow_admin.warnings_of(flow)
    notice = "The flow is valid." + (" Worth a look:" if warnings else "")
    return _editor_page(request, account, known, replace(editor, notice=notice, warnings=warnings))


def _answers(form: FormData) -> tuple[str, list[str]]:
    value = form.get("answers", "")
    if not isinstance(value, str):
        raise DeskRefusal(400, "The answers must be text, not a file.")
    if len(value) > MAX_ANSWER_TEXT:
        raise DeskRefusal(
            400, f"The answers are {len(value):,} characters long; the most is {MAX_ANSWER_TEXT:,}."
        )
    typed = value.replace("\r\n", "\n").replace("\r", "\n")
    lines = typed.splitlines()
    if len(lines) > MAX_ANSWERS:
        raise DeskRefusal(400, f"{len(lines)} answers; the simulator takes {MAX_ANSWERS} at most.")
    return typed, lines


def _locale(form: FormData) -> str:
    value = form.get("locale", "")
    if not isinstance(value, str):
        raise DeskRefusal(400, "The language must be text.")
    value = value.strip()
    if value and (len(value) > 35 or not _LOCALE.fullmatch(value)):
        raise DeskRefusal(
            400, f"Language {value[:40]!r} is not a language tag such as es or pt-BR."
        )
    return value


def _run_simulation(flow: Flow, settings: Settings, answers: list[str], locale: str) -> list[Line]:
    """The conversation on the engine, in a loop of its own (this is a worker thread): the
    simulator's throwaway database is made and migrated synchronously, which must not stall
    the loop serving everyone else."""
    out = io.StringIO()
    feed = io.StringIO("".join(f"{a}\n" for a in answers))
    asyncio.run(simulate(flow, settings, answers=feed, out=out, locale=locale or None))
    transcript: list[Line] = []
    for row in out.getvalue().splitlines():
        if row.startswith("> "):
            transcript.append(Line("customer", row[2:]))
        elif row == ">":
            transcript.append(Line("customer", ""))
        elif transcript and transcript[-1].who == "bot":  # one bubble per run of bot lines
            transcript[-1] = Line("bot", f"{transcript[-1].text}\n{row}")
        else:
            transcript.append(Line("bot", row))
    return transcript


@router.post("/flows/{flow_id}/simulate")
async def simulate_draft(
    request: Request, account: AdminOnly, form: CheckedForm, flow_id: str
) -> Response:
    """Answer the draft as a customer (the answers typed so far, from the start); nothing is
    stored."""
    known = await _flow(request, flow_id)
    text = _draft_text(form)
    typed, answers = _answers(form)
    locale = _locale(form)
    flow, problems = await asyncio.to_thread(_checked, text, flow_id)
    editor = Editor(source=text, base=_base(form), problems=problems, answers=typed, locale=locale)
    if flow is None:
        return _invalid(request, account, known, editor, "Nothing was simulated")
    settings = desk_of(request).app_settings
    transcript = await asyncio.to_thread(_run_simulation, flow, settings, answers, locale)
    notice = (
        f"Simulated the draft with {len(answers)} answer{'' if len(answers) == 1 else 's'}; "
        "nothing was stored."
    )
    return _editor_page(
        request, account, known, replace(editor, transcript=transcript, notice=notice)
    )


@router.post("/flows/{flow_id}/publish")
async def publish(
    request: Request, account: AdminOnly, form: CheckedForm, flow_id: str
) -> Response:
    """Validate the draft and make it the live version; an invalid one is never published."""
    known = await _flow(request, flow_id)
    text = _draft_text(form)
    base = _base(form)
    flow, problems = await asyncio.to_thread(_checked, text, flow_id)
    editor = Editor(source=text, base=base, problems=problems)
    if flow is None:
        return _invalid(request, account, known, editor, "Nothing was published")
    if known.live != base:
        live = known.versions[-1]
        error = (
            f"Nothing was published: version {live.version} went live since this editor was "
            f"opened (by {live.published_by or 'a flow file'}). Your draft is kept below: "
            f"compare it with version {live.version} and publish again."
        )
        return _editor_page(
            request, account, known, replace(editor, base=known.live, error=error), status=409
        )
    db = desk_of(request).db
    try:
        done = await asyncio.to_thread(
            flow_admin.publish_source, db, text, name=DRAFT, actor=account.actor
        )
    except FlowError as exc:  # _checked passed it a moment ago; kept for safety all the same
        editor = replace(editor, problems=list(exc.problems))
        return _invalid(request, account, known, editor, "Nothing was published")
    if done.created:
        message = f"Published {flow_id} as version {done.version}; new surveys start on it."
    else:
        message = f"Nothing changed: this content is already live as version {done.version}."
    return back_to(request, f"/flows/{flow_id}", message)


@router.post("/flows/{flow_id}/rollback")
async def roll_back(
    request: Request, account: AdminOnly, form: CheckedForm, flow_id: str
) -> Response:
    """Publish an earlier version's content again, as a new version."""
    known = await _flow(request, flow_id)
    given = form.get("version", "")
    version = row_id(given) if isinstance(given, str) else None
    back = f"/flows/{flow_id}"
    if version is None:
        raise DeskRefusal(400, f"Version {str(given)[:40]!r} is not a version number.", back=back)
    db = desk_of(request).db
    try:
        done = await asyncio.to_thread(
            flow_admin.rollback, db, known.flow_id, version, actor=account.actor
        )
    except flow_admin.FlowVersionError as exc:
        raise DeskRefusal(404, f"Nothing was rolled back: {exc}.", back=back) from None
    except FlowError as exc:
        found = "; ".join(_problem_text(p) for p in exc.problems)
        raise DeskRefusal(
            422,
            f"Nothing was rolled back: version {version} does not pass today's checks ({found}).",
            back=back,
        ) from None
    if done.created:
        message = f"Version {version}'s content is live again as version {done.version}."
    else:
        message = (
            f"Nothing changed: version {version}'s content is already live "
            f"(version {done.version})."
        )
    return back_to(request, back, message)


def _problem_text(problem: FlowProblem) -> str:
    return f"line {problem.line}: {problem.message}" if problem.line else problem.message


def _version_param(request: Request, name: str, back: str) -> int:
    given = request.query_params.get(name, "").strip()
    version = row_id(given) if given else None
    if version is None:
        shown = f"{given[:40]!r}" if given else "missing"
        raise DeskRefusal(400, f"Version {name}= is {shown}: give a version number.", back=back)
    return version


@dataclass(frozen=True, slots=True)
class DiffLine:
    """One line of a unified diff and how to show it: add, remove, hunk, file or same."""

    kind: str
    text: str


def diff_lines(text: str) -> list[DiffLine]:
    """A unified diff's lines, each with its kind (for styling; shown as text, never markup)."""
    found: list[DiffLine] = []
    for line in text.splitlines():
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "remove"
        else:
            kind = "same"
        found.append(DiffLine(kind, line))
    return found


@router.get("/flows/{flow_id}/diff")
async def diff_page(request: Request, account: AdminOnly, flow_id: str) -> Response:
    """The unified diff of two stored versions (`?old=V1&new=V2`)."""
    known = await _flow(request, flow_id)
    back = f"/flows/{flow_id}"
    old, new = _version_param(request, "old", back), _version_param(request, "new", back)
    try:
        text = await asyncio.to_thread(flow_admin.diff, desk_of(request).db, flow_id, old, new)
    except flow_admin.FlowVersionError as exc:
        raise DeskRefusal(404, f"No diff: {exc}.", back=back) from None
    return render(
        request,
        "flow_diff.html",
        account=account,
        nav="flows",
        flow=known,
        old=old,
        new=new,
        lines=diff_lines(text),
    )
