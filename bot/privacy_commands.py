"""`cxbot customers erase|export CHANNEL:ID`: privacy requests from the command line."""

from __future__ import annotations

import argparse
import json
import sys

from bot.app import build_app, command_settings
from bot.invitations.suppression import parse_customer
from bot.privacy import erase_customer, export_customer

EXIT_OK = 0


def add_privacy_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register `customers` on the `cxbot` parser."""
    customers = sub.add_parser(
        "customers", parents=[common], help="privacy requests: erase or export a customer"
    )
    actions = customers.add_subparsers(dest="customers_command", required=True, metavar="ACTION")
    erase = actions.add_parser(
        "erase",
        parents=[common],
        help="delete their personal data and free text, keep anonymous scores, never invite",
    )
    erase.add_argument("customer", metavar="CHANNEL:ID", help="e.g. telegram:123456789")
    export = actions.add_parser(
        "export", parents=[common], help="print everything stored about them as JSON"
    )
    export.add_argument("customer", metavar="CHANNEL:ID", help="e.g. slack:U012ABCDEF")


def customers_command(args: argparse.Namespace) -> int:
    """`cxbot customers …`."""
    channel, user_id = parse_customer(args.customer)
    app = build_app(command_settings(getattr(args, "config", None)))
    try:
        if args.customers_command == "export":
            data = export_customer(app.db, channel=channel, user_id=user_id)
            print(json.dumps(data, indent=2, ensure_ascii=False))
            return EXIT_OK
        done = erase_customer(app.db, channel=channel, user_id=user_id, by="cli")
    finally:
        app.close()
    lines = done.lines()
    if lines:
        print(f"erased {channel}:{user_id}; rows changed per table:")
        for line in lines:
            print(f"  {line}")
    else:
        print(f"nothing stored about {channel}:{user_id}", file=sys.stderr)
    state = "added to" if done.suppressed else "already on"
    print(f"{channel}:{user_id} {state} the suppression list: never invited again")
    return EXIT_OK
