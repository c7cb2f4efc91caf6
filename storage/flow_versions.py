"""Queries on published flow versions."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.tables import FlowVersion


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
    session: Session, *, flow_id: str, checksum: str, source: str
) -> FlowVersion:
    """The stored version with this content, publishing it as version N+1 when it changed.

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
        )
        try:
            with session.begin_nested():  # a savepoint: losing the race undoes only this
                session.add(version)
                session.flush()
        except IntegrityError:
            continue
        return version
    raise RuntimeError(f"could not publish a version of flow {flow_id!r}: too many races")
