"""Every flow an admin can look at: those in flow files and those only published, each with its
live version and how many surveys were started on it (the desk's flow list).

A flow file that does not load is listed as a problem, not hidden: the list then shows the
flows that do load (from files or published), so one bad edit on disk does not blank the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot import flow_admin
from bot.errors import FlowError, FlowProblem
from bot.flow_catalog import FlowCatalog
from bot.flow_model import Flow
from storage.database import Database, transaction
from storage.flow_versions import published_flow_ids


@dataclass(frozen=True, slots=True)
class FlowSummary:
    """One flow as the list shows it. `path` is None for a flow that is only published;
    `live_version` is None for a file never published (no survey started on it yet)."""

    flow_id: str
    name: str
    path: str | None
    live_version: int | None
    versions: int
    surveys: int
    file_is_live: bool  # the file's content is the live version's (False: no file, or it differs)


def file_flows(dirs: Sequence[Path]) -> tuple[dict[str, Flow], list[FlowProblem]]:
    """The flows of the bundled and configured flow files by id, and the problems that kept
    them from loading (then no file flow is returned: the catalog loads whole or not at all)."""
    try:
        catalog = FlowCatalog.load(dirs)
    except FlowError as exc:
        return {}, list(exc.problems)
    return {flow.id: flow for flow in catalog.flows()}, []


def _name(db: Database, flow_id: str, live: int) -> str:
    try:
        return flow_admin.check_source(flow_admin.source_of(db, flow_id, live), flow_id).name
    except FlowError:  # stored under older rules that no longer pass: the id will do
        return flow_id


def flow_overview(db: Database, files: Mapping[str, Flow]) -> list[FlowSummary]:
    """Every flow of `files` or of the database, sorted by id."""
    with transaction(db) as session:
        published = set(published_flow_ids(session))
    found: list[FlowSummary] = []
    for flow_id in sorted(published | set(files)):
        stored = flow_admin.versions(db, flow_id) if flow_id in published else []
        live = stored[-1] if stored else None
        flow = files.get(flow_id)
        if flow is not None:
            name = flow.name
        else:
            name = _name(db, flow_id, live.version) if live is not None else flow_id
        found.append(
            FlowSummary(
                flow_id=flow_id,
                name=name,
                path=flow.path if flow is not None else None,
                live_version=live.version if live is not None else None,
                versions=len(stored),
                surveys=sum(v.surveys for v in stored),
                file_is_live=flow is not None
                and live is not None
                and live.checksum == flow.checksum,
            )
        )
    return found
