"""Queries on published flow versions. The newest version of a flow is the live one: new
surveys start on it; a running survey keeps the version it started with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.tables import Conversation, FlowVersion


def latest_flow_version(session: Session, *, flow_id: str) -> FlowVersion | None:
    """The newest published version of a flow, if it was ever published."""
    stmt = (
        select(FlowVersion)
        .where(FlowVersion.flow_id == flow_id)
        .order_by(col(FlowVersion.version).desc())
    )
    return session.exec(stmt).first()


def get_flow_version(session: Session, *, flow_id: str, version: int) -> FlowVersion | None:
    """One published version of a flow."""
    stmt = select(FlowVersion).where(FlowVersion.flow_id == flow_id, FlowVersion.version == version)
    return session.exec(stmt).first()


def publish_flow_version(
    session: Session,
    *,
    flow_id: str,
    checksum: str,
    source: str,
    origin: str = "file",
    published_by: str | None = None,
) -> FlowVersion:
    """The live version when it has this content, else this content published as version N+1.

    Several turns (threads or processes) may publish the same new content at once: the loser
    of the race on (flow_id, version) reads the winner's row instead of failing its turn.
    """
    for _ in range(3):
        latest = latest_flow_version(session, flow_id=flow_id)
        if latest is not None and latest.checksum == checksum:
            return latest
        version = FlowVersion(
            flow_id=flow_id,
            version=1 if latest is None else latest.version + 1,
            checksum=checksum,
            source=source,
            origin=origin,
            published_by=published_by,
        )
        try:
            with session.begin_nested():  # a savepoint: losing the race undoes only this
                session.add(version)
                session.flush()
        except IntegrityError:
            continue
        return version
    raise RuntimeError(f"could not publish a version of flow {flow_id!r}: too many races")


def live_file_flow_version(
    session: Session, *, flow_id: str, checksum: str, source: str
) -> FlowVersion:
    """The live version of a flow that has a file: the file's content is published when it
    changed since the file was last published; otherwise the newest version stays live, even
    when it came from `flows publish` or a rollback (an unchanged file never undoes those).
    """
    latest = latest_flow_version(session, flow_id=flow_id)
    if latest is not None and latest.checksum == checksum:
        return latest  # the common case: one SELECT
    if latest is None:
        return publish_flow_version(session, flow_id=flow_id, checksum=checksum, source=source)
    last_file = session.exec(
        select(FlowVersion)
        .where(FlowVersion.flow_id == flow_id, FlowVersion.origin == "file")
        .order_by(col(FlowVersion.version).desc())
    ).first()
    if last_file is not None and last_file.checksum == checksum:
        return latest
    return publish_flow_version(session, flow_id=flow_id, checksum=checksum, source=source)


@dataclass(frozen=True, slots=True)
class VersionSummary:
    """One stored version of a flow, with how many surveys were started on it."""

    version: int
    checksum: str
    origin: str
    published_by: str | None
    published_at: datetime
    surveys: int


def flow_versions(session: Session, *, flow_id: str) -> list[VersionSummary]:
    """Every stored version of a flow, oldest first, with its survey count."""
    counts = dict(
        session.exec(
            select(Conversation.flow_version, func.count())
            .where(Conversation.flow_id == flow_id)
            .group_by(col(Conversation.flow_version))
        ).all()
    )
    rows = session.exec(
        select(FlowVersion).where(FlowVersion.flow_id == flow_id).order_by(col(FlowVersion.version))
    )
    return [
        VersionSummary(
            version=v.version,
            checksum=v.checksum,
            origin=v.origin,
            published_by=v.published_by,
            published_at=v.published_at,
            surveys=counts.get(v.version, 0),
        )
        for v in rows
    ]


def published_flow_ids(session: Session) -> list[str]:
    """The ids of every flow with a stored version, sorted."""
    return sorted(session.exec(select(FlowVersion.flow_id).distinct()).all())
