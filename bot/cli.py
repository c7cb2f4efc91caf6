"""The `cxbot` command: chat, report, flows. Errors print one clear line and exit non-zero."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.api_commands import add_api_commands, apikeys_command, suppress_command
from bot.app import App, build_app, command_settings
from bot.channel_commands import (
    add_channel_commands,
    invite_command,
    serve_command,
    telegram_command,
)
from bot.config import Settings
from bot.desk_user_commands import add_user_commands, users_command
from bot.doctor import add_doctor_command, doctor_command
from bot.errors import CxbotError, FlowProblem
from bot.export_commands import add_export_commands, export_command
from bot.flow_commands import VERSION_COMMANDS, add_flow_version_commands, flow_version_command
from bot.flow_loader import validate_files
from bot.invitation_report import format_sections, invitation_sections
from bot.metrics import build_report, format_report
from bot.nlp_options import add_corrections_command, add_train_options
from bot.onnx_commands import add_export_onnx_command
from bot.privacy_commands import add_privacy_commands, customers_command
from bot.report_commands import add_trend_arguments, trend_command
from bot.sentiment_worker import SentimentWorker
from storage.database import transaction
from storage.errors import StorageError
from storage.reports import late_comment_count, score_answers
from web.errors import WebServerError

EXIT_OK, EXIT_ERROR = 0, 1
# What a command reports as one line: bot's own errors, and those of storage/ and web/, which
# import nothing of bot (the layer contracts in pyproject.toml) and so have their own classes.
USER_ERRORS = (CxbotError, StorageError, WebServerError)
log = logging.getLogger("cxbot")


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
    add_trend_arguments(report)

    flows = sub.add_parser("flows", parents=[common], help="check and list survey flows")
    flows_sub = flows.add_subparsers(dest="flows_command", required=True, metavar="ACTION")
    validate = flows_sub.add_parser("validate", help="check flow files; one line per problem")
    validate.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    flows_sub.add_parser("list", parents=[common], help="list the flows cxbot would load")
    add_flow_version_commands(flows_sub, common, _key_value)

    nlp = sub.add_parser("nlp", parents=[common], help="the sentiment model")
    nlp_sub = nlp.add_subparsers(dest="nlp_command", required=True, metavar="ACTION")
    classify = nlp_sub.add_parser(
        "classify", parents=[common], help="print label, confidence and text for each text"
    )
    classify.add_argument("texts", nargs="+", metavar="TEXT")
    classify.add_argument("--json", action="store_true", help="one JSON object per line")
    evaluate = nlp_sub.add_parser(
        "eval", parents=[common], help="score the model on a labelled JSONL file"
    )
    evaluate.add_argument("file", type=Path, metavar="FILE.jsonl")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument(
        "--language",
        default=None,
        metavar="CODE",
        help="evaluate this language's model (default: [sentiment] default_language's)",
    )
    train = nlp_sub.add_parser(
        "train", parents=[common], help="rebuild the shipped model from the shipped corpus"
    )
    train.add_argument(
        "--output",
        type=Path,
        default=None,
        help="folder for the trained model (default: a new folder in the data directory)",
    )
    train.add_argument("--seed", type=int, default=13)
    add_train_options(train)
    nlp_sub.add_parser(
        "score", parents=[common], help="label every stored text answer not labelled yet"
    )
    add_corrections_command(nlp_sub, common)
    add_export_onnx_command(nlp_sub, common)
    add_channel_commands(sub, common, _key_value)
    add_api_commands(sub, common)
    add_privacy_commands(sub, common)
    add_doctor_command(sub, common)
    add_export_commands(sub, common)
    add_user_commands(sub, common)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings for a command: --config, else CXBOT_CONFIG, else ./config.toml, else defaults."""
    return command_settings(getattr(args, "config", None))


def _chat(args: argparse.Namespace) -> int:
    app = build_app(settings_from(args))
    if app.settings.general.log_level != "DEBUG":
        # The terminal is the customer's screen here: only problems interrupt the conversation.
        logging.getLogger().setLevel(logging.WARNING)
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
        # The name the help promises: the login name unless --customer says otherwise.
        first_name=customer,
        locale=args.locale,
    )
    if not app.settings.sentiment.enabled:
        return await run_console(app.engine.handle, opening, user_id=customer)
    # Label free text while the customer types, the same way `cxbot serve` does.
    worker = SentimentWorker(db=app.db, settings=app.settings)
    app.engine.on_text_answer(worker.nudge)
    app.engine.use_sentiment_model(worker.classifier_within)
    task = asyncio.create_task(worker.run())
    try:
        code = await run_console(app.engine.handle, opening, user_id=customer)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    labelled = await worker.drain(timeout=app.settings.sentiment.drain_seconds)
    if labelled:
        log.info("labelled the sentiment of %d text answer(s)", labelled)
    return code


def _report(args: argparse.Namespace) -> int:
    if args.by is not None:
        return trend_command(settings_from(args), args)
    if args.since is not None or args.until is not None or args.plot is not None:
        raise CxbotError("--since, --until and --plot go with --by day|week|month")
    app = build_app(settings_from(args))
    try:
        with transaction(app.db) as session:
            rows = score_answers(session, flow_id=args.flow, channel=args.channel)
            late = late_comment_count(session, flow_id=args.flow, channel=args.channel)
            invited = invitation_sections(session, flow_id=args.flow, channel=args.channel)
        if args.flow is not None and not rows and not late and args.flow not in app.catalog.ids():
            # A typo would print an empty table; a flow since removed still has its answers.
            app.catalog.get(args.flow)  # raises UnknownFlowError, naming the known flows
    finally:
        app.close()
    report = build_report(rows, late_comments=late)
    if args.json:
        data = report.to_dict() | invited.to_dict()  # adds "touchpoints" and "funnel"
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(format_report(report))
        sections = format_sections(invited)
        if sections:
            print(f"\n{sections}")
    return EXIT_OK


def _flows(args: argparse.Namespace) -> int:
    if args.flows_command in VERSION_COMMANDS:
        return flow_version_command(settings_from(args), args)
    if args.flows_command == "validate":
        warnings: list[FlowProblem] = []
        problems = validate_files(args.paths, warnings=warnings)
        for problem in [*problems, *warnings]:
            print(problem)
        if problems:
            return EXIT_ERROR
        print(f"{len(args.paths)} flow file(s) valid", file=sys.stderr)
        return EXIT_OK
    from bot.flow_catalog import FlowCatalog

    settings = settings_from(args)
    for flow in FlowCatalog.load(settings.flows.dirs).flows():
        marker = "*" if flow.id == settings.flows.default else " "
        print(f"{marker} {flow.id:<24} {len(flow.questions):>2} questions  {flow.path}")
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    return export_command(settings_from(args), args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cxbot` console script."""
    args = _parser().parse_args(argv)
    from bot.nlp_commands import nlp_command

    handlers = {"chat": _chat, "report": _report, "flows": _flows, "nlp": nlp_command}
    handlers.update(serve=serve_command, invite=invite_command, telegram=telegram_command)
    handlers.update(apikeys=apikeys_command, suppress=suppress_command)
    handlers.update(customers=customers_command)
    handlers.update(doctor=doctor_command)
    handlers.update(export=_export)
    handlers.update(users=users_command)
    try:
        return handlers[args.command](args)
    except USER_ERRORS as exc:
        print(f"cxbot: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`cxbot report | head`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
