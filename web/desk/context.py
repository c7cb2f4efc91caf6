"""What every desk route needs, kept on the desk application's state (no globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request
from starlette.templating import Jinja2Templates

from bot.config import DeskSettings, Settings
from bot.desk_work import DeskWork
from bot.login_limit import LoginLimiter
from storage.database import Database


@dataclass(frozen=True, slots=True)
class DeskContext:
    """The database, settings, review work, templates, sign-in limiter and clock of one desk."""

    db: Database
    settings: DeskSettings
    work: DeskWork
    templates: Jinja2Templates
    limiter: LoginLimiter
    clock: Callable[[], datetime]
    prefix: str  # where the desk is mounted ("/desk")
    app_settings: Settings  # cxbot's whole settings: flow directories, the simulator's engine


def desk_of(request: Request) -> DeskContext:
    """The context of the desk application serving `request`."""
    context: DeskContext = request.app.state.desk
    return context


def base_path(request: Request) -> str:
    """Where the desk is mounted ("/desk"): links and redirects are built from it.

    The mount path as configured, not the request's `root_path`: inside `/desk/static` that is
    "/desk/static", and an error there must still link to the desk's own pages.
    """
    return desk_of(request).prefix
