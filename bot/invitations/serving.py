"""The invitations' share of `cxbot serve`: the REST API under `/api/v1` and the scheduler."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from bot.api_keys import KeyChecker
from bot.app import App
from bot.invitations.scheduler import InvitationScheduler
from bot.invitations.service import Invitations
from bot.invitations.suppression import SuppressionList
from bot.privacy import PrivacyRequests
from web.api import API_MAX_BODY_BYTES, API_PREFIX, build_api
from web.server import Mount


@dataclass(frozen=True, slots=True)
class InvitationPlan:
    """The API to mount, and the scheduler to run (None: no channel to send on)."""

    mount: Mount
    invitations: Invitations
    scheduler: InvitationScheduler | None


def plan_invitations(
    app: App, *, channels: Collection[str], on_queued: Callable[[], None] | None = None
) -> InvitationPlan:
    """The API (always: it answers 422 for channels not configured here) and, when a channel is,
    the scheduler of its invitations; `on_queued` wakes the delivery worker."""
    invitations = Invitations(
        settings=app.settings,
        db=app.db,
        engine=app.engine,
        catalog=app.catalog,
        channels=channels,
        on_queued=on_queued,
    )
    api = build_api(
        invitations=invitations,
        keys=KeyChecker(app.db),
        suppressions=SuppressionList(app.db),
        privacy=PrivacyRequests(app.db),
    )
    scheduler = InvitationScheduler(db=app.db, invitations=invitations) if channels else None
    return InvitationPlan(
        mount=Mount(path=API_PREFIX, app=api, max_body_bytes=API_MAX_BODY_BYTES),
        invitations=invitations,
        scheduler=scheduler,
    )
