"""Command-line options of `cxbot nlp train` and `cxbot nlp corrections export`."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day as YYYY-MM-DD, got {text!r}") from None


def add_train_options(train: argparse.ArgumentParser) -> None:
    """Corrections, before/after figures and quick-trial options of `cxbot nlp train`."""
    train.add_argument(
        "--with-corrections",
        type=Path,
        metavar="FILE",
        help="fold these label corrections (from `cxbot nlp corrections export`) into the "
        "training split and print before/after figures; texts in the dev split or an --eval "
        "file are refused",
    )
    train.add_argument(
        "--eval",
        type=Path,
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="also print before/after figures on these labelled JSONL files",
    )
    train.add_argument(
        "--epochs", type=_positive, metavar="N", help="fine-tuning epochs (default 3)"
    )
    train.add_argument(
        "--max-train-examples",
        type=_positive,
        metavar="N",
        help="a quick trial: train on a fixed random sample of N corpus rows (corrections are "
        "always all included); the shipped model uses every row",
    )
    train.add_argument(
        "--corpus",
        type=Path,
        metavar="DIR",
        help="folder holding train.jsonl and dev.jsonl (default: the shipped corpus, nlp/data/)",
    )


def add_corrections_command(
    nlp_sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register `cxbot nlp corrections export`."""
    corrections = nlp_sub.add_parser(
        "corrections", parents=[common], help="label corrections made by people"
    )
    actions = corrections.add_subparsers(
        dest="corrections_command", required=True, metavar="ACTION"
    )
    export = actions.add_parser(
        "export",
        parents=[common],
        help="write the newest correction of each answer as training data (corpus JSONL)",
    )
    export.add_argument(
        "--output", type=Path, metavar="FILE", help="write here (default: standard output)"
    )
    export.add_argument(
        "--since",
        type=_day,
        metavar="YYYY-MM-DD",
        help="only corrections made on or after this day (UTC)",
    )
