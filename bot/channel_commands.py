"""The channel commands of `cxbot`: `serve`, `invite` and `telegram link`.

Kept apart from bot/cli.py so that `cxbot chat` and `cxbot report` never import the channel SDKs
or the web server; those are imported inside the command functions.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from bot.app import build_app, command_settings
from bot.config import Settings
from bot.errors import CxbotError

EXIT_OK = 0
Command = Callable[[argparse.Namespace], int]


def add_channel_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    key_value: Callable[[str], tuple[str, str]],
) -> None:
    """Register `serve`, `invite` and `telegram` on the `cxbot` parser."""
    sub.add_parser(
        "serve",
        parents=[common],
        help="run every configured channel and the HTTP server until Ctrl-C / SIGTERM",
    )
    invite = sub.add_parser(
        "invite",
        parents=[common],
        help="start a survey with a customer now, or invite many from a CSV file (--csv)",
    )
    # Required unless --csv gives everything (checked in invite_command, with this usage).
    invite.set_defaults(invite_parser=invite)
    invite.add_argument("--channel", choices=["telegram", "slack"])
    invite.add_argument(
        "--user",
        metavar="ID",
        help="the customer's id (Telegram: chat id; Slack: member id U…)",
    )
    invite.add_argument(
        "--flow", metavar="FLOW_ID", help="flow to run (default: the configured one)"
    )
    invite.add_argument(
        "--context",
        metavar="KEY=VALUE",
        type=key_value,
        nargs="*",
        default=[],
        help="interaction details for the flow's texts, e.g. ticket_id=T-42",
    )
    invite.add_argument(
        "--touchpoint",
        metavar="NAME",
        help="what happened (purchase, refund, … or one of [touchpoints]): its flow and rules",
    )
    invite.add_argument(
        "--csv",
        type=Path,
        metavar="FILE",
        help="invite every row of this CSV file (columns channel, user_id, touchpoint, "
        "interaction_id; optional flow_id, send_after, time_zone; others are context)",
    )
    invite.add_argument(
        "--result",
        type=Path,
        metavar="FILE",
        help="with --csv: where each row's outcome goes (default: FILE.results.csv beside it)",
    )
    invite.add_argument(
        "--source",
        metavar="NAME",
        help="with --csv: the invitations' source; interaction ids are unique within it "
        "(default: csv)",
    )
    telegram = sub.add_parser("telegram", parents=[common], help="Telegram helpers")
    telegram_sub = telegram.add_subparsers(dest="telegram_command", required=True, metavar="ACTION")
    link = telegram_sub.add_parser(
        "link", parents=[common], help="print a deep link that starts a survey"
    )
    link.add_argument("--flow", metavar="FLOW_ID", help="flow to run (default: the configured one)")
    link.add_argument("--context", metavar="KEY=VALUE", type=key_value, nargs="*", default=[])
    link.add_argument(
        "--bot",
        metavar="USERNAME",
        help="the bot's username (default: asked from Telegram when a token is configured)",
    )


def _settings(args: argparse.Namespace) -> Settings:
    settings = command_settings(getattr(args, "config", None))
    if settings.general.log_level != "DEBUG":
        # httpx logs every Bot API request at INFO (a line per long poll); keep its problems.
        logging.getLogger("httpx").setLevel(logging.WARNING)
    return settings


def serve_command(args: argparse.Namespace) -> int:
    """`cxbot serve`."""
    from bot.serve import Serving, background_tasks, run_serve

    app = build_app(_settings(args))

    def announce(serving: Serving) -> None:
        if serving.channels:
            channels = ", ".join(serving.channels)
            print(f"cxbot: serving {channels}; HTTP on {serving.url}", file=sys.stderr)
        else:
            print(
                "cxbot: no chat channel is configured (set [telegram] token or [slack] "
                "bot_token, e.g. with CXBOT_TELEGRAM__TOKEN); serving only "
                f"{serving.url}/healthz",
                file=sys.stderr,
            )
        print("cxbot: press Ctrl-C to stop", file=sys.stderr)

    try:
        run_serve(app, tasks=background_tasks(app), on_ready=announce)
    finally:
        app.close()
    print("cxbot: stopped", file=sys.stderr)
    return EXIT_OK


def invite_command(args: argparse.Namespace) -> int:
    """`cxbot invite`: print what happened; exit 0 sent, 3 withheld by a rule, 4 unreachable.
    With `--csv`: exit 0 every row accepted, 2 some refused (`bot.invitations.csv_command`)."""
    from bot.invitations.command import invite_on_slack, invite_on_telegram

    if args.csv is not None:
        return _invite_csv(args)
    if args.result is not None or args.source is not None:
        args.invite_parser.error("--result and --source go with --csv")
    if args.channel is None or args.user is None:
        args.invite_parser.error("the following arguments are required: --channel, --user")
    app = build_app(_settings(args))
    inviter = invite_on_slack if args.channel == "slack" else invite_on_telegram
    try:
        result = asyncio.run(
            inviter(
                app,
                user_id=args.user,
                flow_id=args.flow,
                context=dict(args.context),
                touchpoint=args.touchpoint,
            )
        )
    finally:
        app.close()
    print(result.message)
    return result.exit_status


def _invite_csv(args: argparse.Namespace) -> int:
    """`cxbot invite --csv FILE`: every row of the file through the invitation service."""
    from bot.invitations.csv_command import run_csv_import

    given = [
        option
        for option, value in (
            ("--channel", args.channel),
            ("--user", args.user),
            ("--flow", args.flow),
            ("--touchpoint", args.touchpoint),
            ("--context", args.context or None),
        )
        if value is not None
    ]
    if given:
        args.invite_parser.error(
            f"--csv takes every invitation from the file; {', '.join(given)} would be ignored "
            "(use the file's columns)"
        )
    app = build_app(_settings(args))
    try:
        return run_csv_import(
            app,
            path=args.csv,
            result=args.result,
            source=args.source,
            out=sys.stdout,
            err=sys.stderr,
        )
    finally:
        app.close()


def telegram_command(args: argparse.Namespace) -> int:
    """`cxbot telegram link`: the start payload and, when the bot is known, the t.me link."""
    from adapters.telegram_links import DeepLinkError, deep_link, encode_start_payload
    from bot.flow_catalog import FlowCatalog

    settings = _settings(args)
    flow = FlowCatalog.load(settings.flows.dirs).get(args.flow or settings.flows.default)
    try:
        payload = encode_start_payload(flow.id, dict(args.context))
    except DeepLinkError as exc:
        raise CxbotError(str(exc)) from None
    username = args.bot or _bot_username(settings)
    if username is None:
        print(payload)
        print(
            "cxbot: no bot username (pass --bot or configure [telegram] token); the link is "
            f"https://t.me/<bot>?start={payload}",
            file=sys.stderr,
        )
    else:
        print(deep_link(username, payload))
    return EXIT_OK


def _bot_username(settings: Settings) -> str | None:
    from adapters.retrying import RetryPolicy
    from adapters.telegram_delivery import call_api
    from bot.channels import build_telegram_bot, telegram_token

    if telegram_token(settings) is None:
        return None
    bot = build_telegram_bot(settings)

    async def ask() -> str:
        await call_api(bot.initialize, what="getMe", policy=RetryPolicy(attempts=3))
        try:
            return str(bot.username)
        finally:
            await bot.shutdown()

    return asyncio.run(ask())
