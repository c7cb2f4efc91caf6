"""The `cxbot` command: chat, report, flows. Errors print one clear line and exit non-zero."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.app import App, build_app, configure_logging
from bot.config import Settings, load_settings
from bot.errors import CxbotError
from bot.flow_loader import validate_files
from bot.metrics import build_report, format_report
from storage.database import transaction
from storage.reports import score_answers

EXIT_OK, EXIT_ERROR = 0, 1


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help="config file (default: $CXBOT_CONFIG, else ./config.toml if present)",
    )
    parser = argparse.ArgumentParser(
        prog="cxbot",
        description="Self-hosted feedback chatbot: NPS, CES and CSAT surveys in chat.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    chat = sub.add_parser("chat", parents=[common], help="answer a survey as a customer here")
    chat.add_argument("--flow", metavar="FLOW_ID", help="flow to run (default: the configured one)")
    chat.add_argument("--customer", metavar="NAME", help="who you are (default: your login name)")
    chat.add_argument("--locale", metavar="LANG", help="customer's language, e.g. en or es")
    chat.add_argument(
        "--context",
        metavar="KEY=VALUE",
        type=_key_value,
        nargs="*",
        default=[],
        help="interaction details for the flow's texts, e.g. order_id=A-1001",
    )

    report = sub.add_parser(
        "report", parents=[common], help="NPS, CES and CSAT from stored answers"
    )
    report.add_argument("--json", action="store_true", help="print one JSON object")
    report.add_argument("--flow", metavar="FLOW_ID", help="only this flow")
    report.add_argument("--channel", metavar="CHANNEL", help="only this channel")

    flows = sub.add_parser("flows", parents=[common], help="check and list survey flows")
    flows_sub = flows.add_subparsers(dest="flows_command", required=True, metavar="ACTION")
    validate = flows_sub.add_parser("validate", help="check flow files; one line per problem")
    validate.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    flows_sub.add_parser("list", parents=[common], help="list the flows cxbot would load")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(getattr(args, "config", None))
    configure_logging(settings)
    return settings


def _chat(args: argparse.Namespace) -> int:
    app = build_app(_settings(args))
    try:
        return asyncio.run(_chat_loop(app, args))
    finally:
        app.close()


async def _chat_loop(app: App, args: argparse.Namespace) -> int:
    from adapters.console import CHANNEL, run_console

    customer = args.customer or getpass.getuser()
    opening = await app.engine.begin(
        channel=CHANNEL,
        user_id=customer,
        flow_id=args.flow,
        context=dict(args.context),
        first_name=args.customer,
        locale=args.locale,
    )
    return await run_console(app.engine.handle, opening, user_id=customer)


def _report(args: argparse.Namespace) -> int:
    app = build_app(_settings(args))
    try:
        with transaction(app.db) as session:
            rows = score_answers(session, flow_id=args.flow, channel=args.channel)
    finally:
        app.close()
    report = build_report(rows)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(format_report(report))
    return EXIT_OK


def _flows(args: argparse.Namespace) -> int:
    if args.flows_command == "validate":
        problems = validate_files(args.paths)
        for problem in problems:
            print(problem)
        if problems:
            return EXIT_ERROR
        print(f"{len(args.paths)} flow file(s) valid", file=sys.stderr)
        return EXIT_OK
    from bot.flow_catalog import FlowCatalog

    settings = _settings(args)
    for flow in FlowCatalog.load(settings.flows.dirs).flows():
        marker = "*" if flow.id == settings.flows.default else " "
        print(f"{marker} {flow.id:<24} {len(flow.questions):>2} questions  {flow.path}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cxbot` console script."""
    args = _parser().parse_args(argv)
    handlers = {"chat": _chat, "report": _report, "flows": _flows}
    try:
        return handlers[args.command](args)
    except CxbotError as exc:
        print(f"cxbot: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
