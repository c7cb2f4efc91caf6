"""`cxbot flows publish|versions|diff|rollback|simulate`: flow versions from the command line.

`publish FILE` prints the live version number (new, or the existing one when the content is
already live); `rollback ID VERSION` publishes the old content as a new version and prints its
number; `diff ID V1 V2` prints a unified diff and exits 0; `versions ID [--json]` lists every
version with its survey count; `simulate FILE` answers the draft from standard input (one
message per line) with nothing stored. Problems are one clear line each and exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path

from bot import flow_admin
from bot.app import build_app
from bot.config import Settings
from bot.errors import FlowError, FlowProblem
from bot.flow_simulation import simulate


def add_flow_version_commands(
    flows_sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    common: argparse.ArgumentParser,
    key_value: Callable[[str], tuple[str, str]],
) -> None:
    """The version subcommands of `cxbot flows`."""
    publish = flows_sub.add_parser(
        "publish", parents=[common], help="validate a flow file and make it the live version"
    )
    publish.add_argument("path", type=Path, metavar="FILE")
    listing = flows_sub.add_parser(
        "versions", parents=[common], help="every published version of a flow"
    )
    listing.add_argument("flow_id", metavar="ID")
    listing.add_argument("--json", action="store_true", help="one JSON object")
    diff = flows_sub.add_parser(
        "diff", parents=[common], help="unified diff of two published versions"
    )
    diff.add_argument("flow_id", metavar="ID")
    diff.add_argument("old", type=int, metavar="V1")
    diff.add_argument("new", type=int, metavar="V2")
    rollback = flows_sub.add_parser(
        "rollback", parents=[common], help="publish an earlier version's content again"
    )
    rollback.add_argument("flow_id", metavar="ID")
    rollback.add_argument("version", type=int, metavar="VERSION")
    sim = flows_sub.add_parser(
        "simulate",
        parents=[common],
        help="answer a flow file as a customer (lines from standard input); nothing stored",
    )
    sim.add_argument("path", type=Path, metavar="FILE")
    sim.add_argument("--locale", metavar="LANG", help="the customer's language, e.g. es")
    sim.add_argument(
        "--context",
        metavar="KEY=VALUE",
        type=key_value,
        nargs="*",
        default=[],
        help="interaction details for the texts (default: the flow's sample [context])",
    )


VERSION_COMMANDS = frozenset({"publish", "versions", "diff", "rollback", "simulate"})


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FlowError([FlowProblem(str(path), None, "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowError([FlowProblem(str(path), None, f"cannot read: {exc}")]) from None


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def flow_version_command(settings: Settings, args: argparse.Namespace) -> int:
    """Run one version subcommand (FlowError / FlowVersionError are the caller's one line)."""
    action = args.flows_command
    if action == "simulate":
        flow = flow_admin.check_source(_read(args.path), str(args.path))
        for warning in flow_admin.warnings_of(flow):
            print(f"warning: {warning}", file=sys.stderr)
        context = dict(args.context) or None
        asyncio.run(
            simulate(
                flow,
                settings,
                answers=sys.stdin,
                out=sys.stdout,
                locale=args.locale,
                context=context,
            )
        )
        print("simulation over: nothing was stored", file=sys.stderr)
        return 0
    app = build_app(settings)
    try:
        if action == "publish":
            text = _read(args.path)
            done = flow_admin.publish_source(app.db, text, name=str(args.path), actor=_actor())
            note = "published as version" if done.created else "already live as version"
            print(done.version)
            print(f"flow {done.flow_id}: {note} {done.version}", file=sys.stderr)
        elif action == "versions":
            found = flow_admin.versions(app.db, args.flow_id)
            if args.json:
                print(
                    json.dumps({"flow_id": args.flow_id, "versions": [v.to_dict() for v in found]})
                )
            else:
                for v in found:
                    live = "live" if v.live else "    "
                    who = f" by {v.published_by}" if v.published_by else ""
                    print(
                        f"v{v.version:<4} {live}  {v.published_at:%Y-%m-%d %H:%M}  "
                        f"{v.origin:<8} {v.surveys:>6} surveys  {v.checksum[:12]}{who}"
                    )
        elif action == "diff":
            sys.stdout.write(flow_admin.diff(app.db, args.flow_id, args.old, args.new))
        elif action == "rollback":
            done = flow_admin.rollback(app.db, args.flow_id, args.version, actor=_actor())
            print(done.version)
            if done.created:
                note = f"version {args.version}'s content published as version {done.version}"
            else:
                note = f"version {args.version}'s content is already live (version {done.version})"
            print(f"flow {args.flow_id}: {note}", file=sys.stderr)
    finally:
        app.close()
    return 0
