"""`cxbot doctor`: check what `cxbot serve` needs, and say what is wrong and how to fix it.

Checks, in order: the configuration loads; the database answers and its schema is at the newest
migration; the sentiment model loads (when enabled); each configured channel's credentials work
against its configured endpoint (Telegram `getMe` at `[telegram] base_url`, Slack `auth.test` at
`[slack] base_url`). Nothing is written: the database is not migrated, no message is sent.
Exit status 0 when every check passes, 1 otherwise. Secrets are never printed: errors name the
endpoint without the token.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

from bot.app import command_settings
from bot.config import Settings, resolve_config_path
from bot.errors import CxbotError
from bot.sentiment_worker import default_loader
from storage.database import create_db_engine, ping
from storage.errors import StorageError
from storage.schema_status import schema_status

EXIT_OK, EXIT_PROBLEMS = 0, 1
HTTP_TIMEOUT = 10.0

ModelLoader = Callable[[Settings], object]  # raises when the model cannot be loaded


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's outcome: `ok` None means skipped (not configured)."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""


def add_doctor_command(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register `cxbot doctor` on the command's subparsers."""
    sub.add_parser(
        "doctor",
        parents=[common],
        help="check configuration, database, model and channel credentials",
    )


def doctor_command(args: argparse.Namespace) -> int:
    """`cxbot doctor`: print every finding; 0 when all is well, 1 otherwise."""
    findings = diagnose(getattr(args, "config", None))
    return report(findings, sys.stdout)


def report(findings: list[Finding], out: TextIO) -> int:
    """Print one line per finding (and its fix); the exit status they add up to."""
    marks = {True: "ok  ", False: "FAIL", None: "skip"}
    for f in findings:
        out.write(f"{marks[f.ok]}  {f.name}: {f.detail}\n")
        if f.ok is False and f.fix:
            out.write(f"      fix: {f.fix}\n")
    failed = sum(f.ok is False for f in findings)
    out.write("all checks passed\n" if not failed else f"{failed} check(s) failed\n")
    return EXIT_PROBLEMS if failed else EXIT_OK


def diagnose(
    config_path: Path | None,
    *,
    load_model: ModelLoader | None = None,
) -> list[Finding]:
    """Run every check; a configuration that does not load stops the others."""
    try:
        settings = command_settings(config_path)
    except CxbotError as exc:
        return [
            Finding(
                "configuration",
                False,
                str(exc),
                "correct the keys named above (config.example.toml documents each one)",
            )
        ]
    path = resolve_config_path(config_path, os.environ)
    source = str(path) if path is not None else "defaults and environment"
    findings = [Finding("configuration", True, f"valid ({source})")]
    findings.append(_database(settings))
    findings.append(_model(settings, load_model or _load_configured_model))
    findings += asyncio.run(_channels(settings))
    return findings


def _database(settings: Settings) -> Finding:
    try:
        engine = create_db_engine(settings.database_url)
    except StorageError as exc:
        return Finding("database", False, str(exc), "set [database] url to a valid URL")
    try:
        ping(engine)
        status = schema_status(engine)
    except StorageError as exc:
        return Finding(
            "database",
            False,
            str(exc),
            "start the database server or correct [database] url (user, password, host, name)",
        )
    finally:
        engine.dispose()
    if status.current is None:
        return Finding(
            "database",
            False,
            "reachable, but no cxbot tables yet",
            "run any cxbot command that opens the database (e.g. `cxbot report`): it migrates",
        )
    if not status.at_head:
        return Finding(
            "database",
            False,
            f"schema at migration {status.current}, this version needs {status.head}",
            "run `cxbot report` (or restart `cxbot serve`) once: commands migrate on start",
        )
    return Finding("database", True, f"reachable, schema at the newest migration ({status.head})")


def _load_configured_model(settings: Settings) -> object:
    return default_loader(settings.sentiment)()


def _model(settings: Settings, load: ModelLoader) -> Finding:
    if not settings.sentiment.enabled:
        return Finding("sentiment model", None, "[sentiment] enabled = false")
    which = settings.sentiment.model or "the shipped model"
    try:
        load(settings)
    except Exception as exc:  # any failure to load is the finding itself
        return Finding(
            "sentiment model",
            False,
            f"{which} does not load: {exc}",
            "set [sentiment] model to a local model folder (empty: the shipped one), set"
            " allow_download = true for a hub id, or enabled = false to run without labels",
        )
    return Finding("sentiment model", True, f"{which} loads")


async def _channels(settings: Settings) -> list[Finding]:
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        found = [await _telegram(settings, http), await _slack(settings, http)]
        if settings.slack.bot_token is not None and settings.slack.mode == "socket":
            found.append(await _slack_app_token(settings, http))
        return found


async def _telegram(settings: Settings, http: httpx.AsyncClient) -> Finding:
    token = settings.telegram.token
    if token is None:
        return Finding("telegram", None, "no [telegram] token: channel off")
    base = settings.telegram.base_url
    try:
        response = await http.get(f"{base}{token.get_secret_value()}/getMe")
    except httpx.HTTPError as exc:
        return Finding(
            "telegram",
            False,
            f"cannot reach {base}…/getMe: {type(exc).__name__}",
            "check the network and [telegram] base_url (default https://api.telegram.org/bot)",
        )
    body = _json(response)
    if response.status_code == 401 or response.status_code == 404:
        return Finding(
            "telegram",
            False,
            f"{base}…/getMe refused the token ({response.status_code})",
            "set [telegram] token to the token @BotFather gave you (/mybots → API Token)",
        )
    result = body.get("result") if body.get("ok") else None
    if not isinstance(result, dict):
        return Finding(
            "telegram",
            False,
            f"{base}…/getMe answered {response.status_code} without a bot",
            "check [telegram] base_url: it must point at the Bot API (…/bot)",
        )
    return Finding("telegram", True, f"token accepted: @{result.get('username', '?')}")


async def _slack(settings: Settings, http: httpx.AsyncClient) -> Finding:
    token = settings.slack.bot_token
    if token is None:
        return Finding("slack", None, "no [slack] bot_token: channel off")
    url = settings.slack.base_url.rstrip("/") + "/auth.test"
    try:
        response = await http.post(
            url, headers={"Authorization": f"Bearer {token.get_secret_value()}"}
        )
    except httpx.HTTPError as exc:
        return Finding(
            "slack",
            False,
            f"cannot reach {url}: {type(exc).__name__}",
            "check the network and [slack] base_url (default https://slack.com/api/)",
        )
    body = _json(response)
    if body.get("ok") is True:
        who = f"{body.get('user', '?')} in {body.get('team', '?')}"
        return Finding("slack", True, f"bot token accepted: {who}")
    error = body.get("error") or f"HTTP {response.status_code}"
    return Finding(
        "slack",
        False,
        f"auth.test refused the bot token: {error}",
        "set [slack] bot_token to the app's Bot User OAuth Token (xoxb-…, OAuth & Permissions)",
    )


async def _slack_app_token(settings: Settings, http: httpx.AsyncClient) -> Finding:
    # apps.connections.open only hands out a websocket URL; nothing connects to it here.
    token = settings.slack.app_token
    if token is None:  # refused by the configuration already; kept for the type checker
        return Finding("slack app token", False, "no [slack] app_token", "set [slack] app_token")
    url = settings.slack.base_url.rstrip("/") + "/apps.connections.open"
    try:
        response = await http.post(
            url, headers={"Authorization": f"Bearer {token.get_secret_value()}"}
        )
    except httpx.HTTPError as exc:
        return Finding("slack app token", False, f"cannot reach {url}: {type(exc).__name__}")
    body = _json(response)
    if body.get("ok") is True:
        return Finding("slack app token", True, "Socket Mode connection allowed")
    error = body.get("error") or f"HTTP {response.status_code}"
    return Finding(
        "slack app token",
        False,
        f"apps.connections.open refused the app token: {error}",
        "set [slack] app_token to an app-level token (xapp-…) with the connections:write"
        " scope (Basic Information → App-Level Tokens), and turn Socket Mode on",
    )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
