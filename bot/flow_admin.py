"""Publishing, listing, diffing and rolling back flow versions stored in the database.

The newest stored version of a flow is the live one, for every process on the database: new
surveys start on it; a survey already running keeps the version it started with, and every
answer records its version. A flow file's content is published when the file changes (at the
next survey start); `publish_source` publishes an admin's edit, `rollback` an older version's
content again as a new version. An invalid flow is never published.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime

from bot.errors import CxbotError
from bot.flow_loader import flow_warnings, load_flow_source
from bot.flow_model import Flow
from storage import flow_versions as flow_q
from storage.database import Database, transaction
from storage.flow_versions import VersionSummary


class FlowVersionError(CxbotError):
    """A version asked for does not exist (or a flow has none)."""


@dataclass(frozen=True, slots=True)
class Published:
    """The outcome of a publish or rollback: the live version, and whether it is new."""

    flow_id: str
    version: int
    created: bool


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One stored version as listings show it."""

    version: int
    checksum: str
    origin: str
    published_by: str | None
    published_at: datetime
    surveys: int
    live: bool

    def to_dict(self) -> dict[str, object]:
        """Plain data for JSON output."""
        return {
            "version": self.version,
            "checksum": self.checksum,
            "origin": self.origin,
            "published_by": self.published_by,
            "published_at": self.published_at.isoformat(),
            "surveys": self.surveys,
            "live": self.live,
        }


def check_source(text: str, name: str) -> Flow:
    """The flow in `text`, validated exactly as `cxbot flows validate` does (FlowError)."""
    return load_flow_source(text, name)


def publish_source(db: Database, text: str, *, name: str, actor: str) -> Published:
    """Validate and publish a flow's TOML as its new live version (nothing when identical).

    Raises FlowError listing every problem (with lines) when the flow is invalid: nothing is
    stored then.
    """
    flow = check_source(text, name)
    with transaction(db) as session:
        before = flow_q.latest_flow_version(session, flow_id=flow.id)
        stored = flow_q.publish_flow_version(
            session,
            flow_id=flow.id,
            checksum=flow.checksum,
            source=flow.source,
            origin="publish",
            published_by=actor,
        )
        created = before is None or before.version != stored.version
        return Published(flow_id=flow.id, version=stored.version, created=created)


def versions(db: Database, flow_id: str) -> list[VersionInfo]:
    """Every stored version of a flow, oldest first (FlowVersionError when it has none)."""
    with transaction(db) as session:
        found = flow_q.flow_versions(session, flow_id=flow_id)
    if not found:
        raise FlowVersionError(f"flow {flow_id!r} has no published version")
    live = found[-1].version
    return [_info(v, live) for v in found]


def _info(v: VersionSummary, live: int) -> VersionInfo:
    return VersionInfo(
        version=v.version,
        checksum=v.checksum,
        origin=v.origin,
        published_by=v.published_by,
        published_at=v.published_at,
        surveys=v.surveys,
        live=v.version == live,
    )


def source_of(db: Database, flow_id: str, version: int) -> str:
    """The TOML of one stored version (FlowVersionError naming the versions that exist)."""
    with transaction(db) as session:
        stored = flow_q.get_flow_version(session, flow_id=flow_id, version=version)
        if stored is not None:
            return stored.source
        known = [v.version for v in flow_q.flow_versions(session, flow_id=flow_id)]
    if not known:
        raise FlowVersionError(f"flow {flow_id!r} has no published version")
    raise FlowVersionError(f"flow {flow_id!r} has no version {version}; versions: {_ranges(known)}")


def _ranges(numbers: list[int]) -> str:
    return f"{numbers[0]}–{numbers[-1]}" if len(numbers) > 2 else ", ".join(map(str, numbers))


def diff(db: Database, flow_id: str, old: int, new: int) -> str:
    """A unified diff of two stored versions' TOML ("" when they are the same)."""
    before, after = source_of(db, flow_id, old), source_of(db, flow_id, new)
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"{flow_id} v{old}",
        tofile=f"{flow_id} v{new}",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def rollback(db: Database, flow_id: str, version: int, *, actor: str) -> Published:
    """Publish version `version`'s content again as a new live version.

    When that content is already live nothing is stored and the live version is returned.
    """
    source = source_of(db, flow_id, version)
    flow = check_source(source, f"<{flow_id} v{version}>")
    with transaction(db) as session:
        live = flow_q.latest_flow_version(session, flow_id=flow_id)
        stored = flow_q.publish_flow_version(
            session,
            flow_id=flow_id,
            checksum=flow.checksum,
            source=flow.source,
            origin="rollback",
            published_by=actor,
        )
        created = live is None or live.version != stored.version
        return Published(flow_id=flow_id, version=stored.version, created=created)


def warnings_of(flow: Flow) -> list[str]:
    """What works in a flow but deserves a look, one line each."""
    return [str(w) for w in flow_warnings(flow)]
