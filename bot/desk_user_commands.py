"""`cxbot users add|list|disable|enable|reset`: the people who sign in to the web desk."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TextIO

from bot.app import App, build_app, command_settings
from bot.desk_users import (
    MIN_PASSWORD,
    DeskAccount,
    add_user,
    get_user,
    list_users,
    normal_email,
    reset_password,
    set_disabled,
)
from bot.errors import DeskUserError
from storage.tables import DeskRole

EXIT_OK = 0


def add_user_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register `users` on the `cxbot` parser."""
    users = sub.add_parser("users", parents=[common], help="people who sign in to the web desk")
    users_sub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    password_note = (
        "the password is read from standard input (its first line) when that is not a "
        "terminal, else asked for twice"
    )
    add = users_sub.add_parser(
        "add",
        parents=[common],
        help="make a desk user",
        description=f"Make a desk user; {password_note}.",
    )
    add.add_argument("email", metavar="EMAIL")
    add.add_argument(
        "--role",
        required=True,
        choices=[r.value for r in DeskRole],
        help="support: reviews and replies; admin: also manages users and API keys",
    )
    listing = users_sub.add_parser("list", parents=[common], help="e-mail, role, state, sign-ins")
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    disable = users_sub.add_parser(
        "disable", parents=[common], help="stop a user signing in; ends their sessions"
    )
    disable.add_argument("email", metavar="EMAIL")
    enable = users_sub.add_parser("enable", parents=[common], help="let a disabled user in again")
    enable.add_argument("email", metavar="EMAIL")
    reset = users_sub.add_parser(
        "reset",
        parents=[common],
        help="set a new password; ends the user's sessions",
        description=f"Set a user's new password; {password_note}.",
    )
    reset.add_argument("email", metavar="EMAIL")


def read_password(stdin: TextIO, ask: Callable[[str], str] | None = None) -> str:
    """The new password: the first line of `stdin` (its line ending removed) when it is not a
    terminal, so scripts can pipe it in; else asked for twice without echo (`ask`, default
    `getpass.getpass`)."""
    if not stdin.isatty():
        line = stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise DeskUserError(
                "no password on standard input: pipe it in as the first line "
                "(e.g. printf '%s\\n' \"$PASSWORD\" | cxbot users add …)"
            )
        return password
    ask = ask or getpass.getpass
    password = ask(f"New password (at least {MIN_PASSWORD} characters): ")
    if ask("Repeat it: ") != password:
        raise DeskUserError("the two passwords differ; nothing was changed")
    return password


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value is not None else "-"


def _json_when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _as_json(user: DeskAccount) -> dict[str, object]:
    return {
        "email": user.email,
        "role": user.role,
        "disabled": user.disabled,
        "created_at": _json_when(user.created_at),
        "last_login_at": _json_when(user.last_login_at),
    }


def users_command(args: argparse.Namespace) -> int:
    """`cxbot users …`."""

    def add(app: App) -> int:
        # Refuse a bad or taken address before asking for a password at a terminal.
        if get_user(app.db, email=normal_email(args.email)) is not None:
            raise DeskUserError(f"there is already a desk user {normal_email(args.email)}")
        password = read_password(sys.stdin)
        user = add_user(app.db, email=args.email, role=args.role, password=password)
        print(f"added desk user {user.email} ({user.role}); they sign in at /desk/login")
        return EXIT_OK

    def listing(app: App) -> int:
        users = list_users(app.db)
        if args.json:
            print(json.dumps({"users": [_as_json(u) for u in users]}))
            return EXIT_OK
        if not users:
            print("no desk users (cxbot users add EMAIL --role admin)", file=sys.stderr)
            return EXIT_OK
        rows = [("EMAIL", "ROLE", "STATE", "CREATED (UTC)", "LAST SIGN-IN")]
        rows += [
            (
                u.email,
                u.role,
                "disabled" if u.disabled else "active",
                _when(u.created_at),
                _when(u.last_login_at),
            )
            for u in users
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        return EXIT_OK

    def disable(app: App) -> int:
        user = set_disabled(app.db, email=args.email, disabled=True)
        print(f"disabled desk user {user.email}: they cannot sign in, their sessions have ended")
        return EXIT_OK

    def enable(app: App) -> int:
        user = set_disabled(app.db, email=args.email, disabled=False)
        print(f"enabled desk user {user.email}: they can sign in again")
        return EXIT_OK

    def reset(app: App) -> int:
        if get_user(app.db, email=normal_email(args.email)) is None:
            raise DeskUserError(
                f"no desk user {args.email.strip()!r} (cxbot users list shows them)"
            )
        password = read_password(sys.stdin)
        user = reset_password(app.db, email=args.email, password=password)
        print(f"new password set for {user.email}; their sessions have ended")
        return EXIT_OK

    actions: dict[str, Callable[[App], int]] = {
        "add": add,
        "list": listing,
        "disable": disable,
        "enable": enable,
        "reset": reset,
    }
    app = build_app(command_settings(getattr(args, "config", None)))
    try:
        return actions[args.users_command](app)
    finally:
        app.close()
