"""Reading flow TOML files into `Flow` models, with every problem reported as `PATH:LINE: message`.

Loading runs in three stages; each reports all of its problems at once, and a flow loads whole or
not at all:

1. TOML syntax (`tomllib`); a syntax error stops here, as nothing after it can be trusted.
2. Shape and types (pydantic, strict, unknown keys forbidden), after pre-checks for what pydantic
   would accept or explain badly. Union errors are folded into one message about what the admin
   actually wrote. See `bot.flow_shape`.
3. Meaning: ids, scales, choices, branches and conditions, reachability, locales and template
   fields — checks that need the whole flow. See `bot.flow_checks`.

`tomllib` gives no positions for values; `bot.flow_source.SourceLocator` maps each problem's path
back to the line that wrote it.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path

from pydantic import ValidationError

from bot.errors import FlowError, FlowProblem
from bot.flow_checks import MAX_ID_LENGTH, MAX_SCALE_POINTS, check_flow, locale_warnings
from bot.flow_model import Flow
from bot.flow_shape import LOADER_FIELDS, pre_checks, shape_problems
from bot.flow_source import SourceLocator

_TOML_AT_LINE = re.compile(r"\s*\(at line (\d+), column \d+\)\s*$")
_TOML_AT_END = re.compile(r"\s*\(at end of document\)\s*$")


# --------------------------------------------------------------------------------------------
# Public API


def load_flow_source(text: str, path: str) -> Flow:
    """Parse and validate one flow; raises `FlowError` listing every problem found.

    The returned flow carries `source` (the text), `path` and `checksum` (sha256 hex of the text).
    """
    locator = SourceLocator(text)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FlowError([_syntax_problem(exc, text, path)]) from None

    problems = [
        FlowProblem(path, locator.line_of(loc), message) for loc, message in pre_checks(raw)
    ]
    for key in LOADER_FIELDS:
        raw.pop(key, None)
    try:
        # Strict JSON-mode validation: no "yes" → True or "5" → 5 coercion, while enum values
        # such as `type = "nps"` still validate. Dates were reported above and become strings.
        flow = Flow.model_validate_json(json.dumps(raw, default=str), strict=True)
    except ValidationError as exc:
        problems += [
            FlowProblem(path, locator.line_of(loc), message)
            for loc, message in shape_problems(exc, raw)
        ]
        raise FlowError(_ordered(problems)) from None
    problems += [
        FlowProblem(path, locator.line_of(loc), message) for loc, message in check_flow(flow)
    ]
    if problems:
        raise FlowError(_ordered(problems))
    checksum = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return flow.model_copy(update={"source": text, "path": path, "checksum": checksum})


def load_flow_file(path: Path) -> Flow:
    """Read and load one flow file; unreadable or non-UTF-8 files raise `FlowError` too."""
    return load_flow_source(read_flow_text(path), str(path))


def read_flow_text(path: Path) -> str:
    """The text of a flow file, or `FlowError` saying why it cannot be read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FlowError([FlowProblem(str(path), None, "no such file")]) from None
    except IsADirectoryError:
        raise FlowError([FlowProblem(str(path), None, "is a directory, not a flow file")]) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise FlowError([FlowProblem(str(path), None, f"cannot read file: {reason}")]) from None
    try:
        # utf-8-sig: editors on Windows like to start files with a byte-order mark.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        message = (
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} cannot be decoded);"
            " save the file as UTF-8"
        )
        raise FlowError([FlowProblem(str(path), line, message)]) from None


def validate_files(
    paths: Sequence[Path], *, warnings: list[FlowProblem] | None = None
) -> list[FlowProblem]:
    """Every problem in every given file (directories mean their `*.toml`), plus flow ids that
    more than one file defines. An empty list means all files are valid. The valid flows'
    warnings (see `flow_warnings`) are appended to `warnings` when given."""
    problems: list[FlowProblem] = []
    first_seen: dict[str, Flow] = {}
    for path in _expand(paths, problems):
        try:
            flow = load_flow_file(path)
        except FlowError as exc:
            problems += exc.problems
            continue
        if warnings is not None:
            warnings += flow_warnings(flow)
        other = first_seen.setdefault(flow.id, flow)
        if other is not flow:
            problems.append(duplicate_flow_problem(flow, other))
    return problems


def flow_warnings(flow: Flow) -> list[FlowProblem]:
    """What works but deserves a look (a declared language the bot's own words lack)."""
    locator = SourceLocator(flow.source)
    return [
        FlowProblem(flow.path, locator.line_of(loc), f"warning: {message}")
        for loc, message in locale_warnings(flow)
    ]


def duplicate_flow_problem(flow: Flow, other: Flow) -> FlowProblem:
    """The problem reported when `flow` reuses the id of the already loaded `other`."""
    line = SourceLocator(flow.source).line_of(("id",))
    return FlowProblem(flow.path, line, f"flow id '{flow.id}' is already defined in {other.path}")


def _expand(paths: Sequence[Path], problems: list[FlowProblem]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.toml"))
            if not found:
                problems.append(FlowProblem(str(path), None, "directory has no *.toml flow files"))
            yield from found
        else:
            yield path


def _ordered(problems: list[FlowProblem]) -> list[FlowProblem]:
    seen: set[tuple[int | None, str]] = set()
    unique = []
    for p in problems:
        if (p.line, p.message) not in seen:
            seen.add((p.line, p.message))
            unique.append(p)
    # Stable: problems on one line keep the order they were found in; unknown lines go last.
    return sorted(unique, key=lambda p: (p.line is None, p.line or 0))


def _syntax_problem(exc: tomllib.TOMLDecodeError, text: str, path: str) -> FlowProblem:
    message = str(exc)
    line: int | None = None
    if m := _TOML_AT_LINE.search(message):
        line = int(m.group(1))
        message = message[: m.start()]
    elif m := _TOML_AT_END.search(message):
        # Lines end at "\n" only, as editors and tomllib's own line numbers count them
        # (splitlines() would also split at a bare "\r" and name a line past the end).
        line = max(1, len(text.rstrip("\n").split("\n")))
        message = message[: m.start()] + " at end of file"
    return FlowProblem(path, line, f"invalid TOML: {message}")


__all__ = [
    "MAX_ID_LENGTH",
    "MAX_SCALE_POINTS",
    "SourceLocator",
    "duplicate_flow_problem",
    "load_flow_file",
    "load_flow_source",
    "read_flow_text",
    "validate_files",
]
