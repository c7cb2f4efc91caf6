"""`cxbot apikeys create|list|revoke` and `cxbot suppress add|remove|list`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime

from bot.api_keys import Scope, create_key, list_keys, revoke_keys
from bot.app import App, build_app, command_settings
from bot.errors import CxbotError
from bot.invitations.suppression import SuppressionList, parse_customer

EXIT_OK = 0


def add_api_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register `apikeys` and `suppress` on the `cxbot` parser."""
    keys = sub.add_parser("apikeys", parents=[common], help="keys of the REST API (/api/v1)")
    keys_sub = keys.add_subparsers(dest="apikeys_command", required=True, metavar="ACTION")
    create = keys_sub.add_parser(
        "create", parents=[common], help="make a key; it is printed once, on the last line"
    )
    create.add_argument(
        "--scope",
        required=True,
        choices=[s.value for s in Scope],
        help="invite: send invitations; admin: also keep the suppression list",
    )
    create.add_argument(
        "--name",
        help="who uses it, e.g. helpdesk (the source of its invitations; default: from its prefix)",
    )
    keys_sub.add_parser("list", parents=[common], help="name, prefix, scope, created, last used")
    revoke = keys_sub.add_parser("revoke", parents=[common], help="revoke a key for good")
    revoke.add_argument(
        "key", metavar="NAME|PREFIX", help="a key's prefix (cxk_…), or a name: all its keys"
    )

    suppress = sub.add_parser(
        "suppress", parents=[common], help="the suppression list: customers never invited"
    )
    supp_sub = suppress.add_subparsers(dest="suppress_command", required=True, metavar="ACTION")
    add = supp_sub.add_parser("add", parents=[common], help="never invite this customer")
    add.add_argument("customer", metavar="CHANNEL:ID", help="e.g. telegram:123456789")
    add.add_argument("--note", help="why, for the people reading the list")
    remove = supp_sub.add_parser("remove", parents=[common], help="invite this customer again")
    remove.add_argument("customer", metavar="CHANNEL:ID")
    listing = supp_sub.add_parser("list", parents=[common], help="print the list")
    listing.add_argument("--channel", choices=["telegram", "slack"], help="only this channel")


def _with_app(args: argparse.Namespace, work: Callable[[App], int]) -> int:
    app = build_app(command_settings(getattr(args, "config", None)))
    try:
        return work(app)
    finally:
        app.close()


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value is not None else "-"


def apikeys_command(args: argparse.Namespace) -> int:
    """`cxbot apikeys …`."""

    def create(app: App) -> int:
        new = create_key(app.db, scope=Scope(args.scope), name=args.name)
        key = new.stored
        print(
            f"created API key '{key.name}' (scope {key.scope}, prefix {key.prefix}); it is "
            "shown only now — store it in the calling system's secrets:"
        )
        print(new.key)
        return EXIT_OK

    def listing(app: App) -> int:
        keys = list_keys(app.db)
        if not keys:
            print("no API keys (cxbot apikeys create --scope invite --name NAME)", file=sys.stderr)
            return EXIT_OK
        rows = [("NAME", "PREFIX", "SCOPE", "CREATED (UTC)", "LAST USED", "REVOKED")]
        rows += [
            (
                k.name,
                k.prefix,
                k.scope,
                _when(k.created_at),
                _when(k.last_used_at),
                _when(k.revoked_at),
            )
            for k in keys
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        return EXIT_OK

    def revoke(app: App) -> int:
        revoked = revoke_keys(app.db, name_or_prefix=args.key)
        if not revoked:
            raise CxbotError(f"no active API key with prefix or name {args.key!r}")
        for key in revoked:
            print(f"revoked API key '{key.name}' ({key.prefix})")
        return EXIT_OK

    actions = {"create": create, "list": listing, "revoke": revoke}
    return _with_app(args, actions[args.apikeys_command])


def suppress_command(args: argparse.Namespace) -> int:
    """`cxbot suppress …`."""

    def add(app: App) -> int:
        channel, user_id = parse_customer(args.customer)
        entries = SuppressionList(app.db)
        if entries.add(channel, user_id, note=args.note, by="cli"):
            print(f"suppressed {channel}:{user_id}: no invitation will reach them")
        else:
            entry = entries.get(channel, user_id)
            since = f" since {entry.created_at:%Y-%m-%d}" if entry is not None else ""
            print(f"{channel}:{user_id} was already suppressed{since}")
        return EXIT_OK

    def remove(app: App) -> int:
        channel, user_id = parse_customer(args.customer)
        if not SuppressionList(app.db).remove(channel, user_id):
            raise CxbotError(f"{channel}:{user_id} is not on the suppression list")
        print(f"removed {channel}:{user_id} from the suppression list")
        return EXIT_OK

    def listing(app: App) -> int:
        entries = SuppressionList(app.db).entries(channel=args.channel)
        if not entries:
            print("the suppression list is empty", file=sys.stderr)
        for e in entries:
            note = f"  {e.note}" if e.note else ""
            print(f"{e.channel}:{e.external_id}  {e.created_at:%Y-%m-%d}  {e.created_by}{note}")
        return EXIT_OK

    actions = {"add": add, "remove": remove, "list": listing}
    return _with_app(args, actions[args.suppress_command])
