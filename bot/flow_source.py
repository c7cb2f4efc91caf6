"""Finding the line of a flow file that wrote a given key, table or array item.

`tomllib` gives no positions for values, so `SourceLocator` scans the source lines for table
headers (`[[questions]]`, `[[questions.next]]`, `[context]`) and `key =` lines and maps a path
such as `("questions", 2, "type")` to the line that wrote it. It only finds lines; parsing stays
with `tomllib`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

Loc = tuple[str | int, ...]
"""A path into a flow document, such as `("questions", 2, "next", 0, "goto")`."""


@dataclass
class _ScanState:
    multiline: str | None = None  # the closing delimiter of an open multi-line string
    depth: int = 0  # open brackets of a value that spans lines


def _scan_value(text: str, state: _ScanState) -> None:
    """Track strings, comments and bracket depth across `text` (part of one line)."""
    i, n = 0, len(text)
    while i < n:
        if state.multiline is not None:
            end = text.find(state.multiline, i)
            if end == -1:
                return
            i = end + 3
            state.multiline = None
            continue
        ch = text[i]
        if ch == "#":
            return
        if text.startswith(('"""', "'''"), i):
            state.multiline = text[i : i + 3]
            i += 3
            continue
        if ch in "\"'":
            i += 1
            while i < n and text[i] != ch:
                i += 2 if ch == '"' and text[i] == "\\" else 1
            i += 1
            continue
        if ch in "[{":
            state.depth += 1
        elif ch in "]}":
            state.depth -= 1
        i += 1


def _split_key(key: str) -> list[str]:
    """`questions.next` → ["questions", "next"]; `"a.b".c` → ["a.b", "c"]."""
    parts: list[str] = []
    for m in re.finditer(r'\s*("(?:[^"\\]|\\.)*"|\'[^\']*\'|[A-Za-z0-9_-]+)\s*(?:\.|$)', key):
        token = m.group(1)
        parts.append(token[1:-1] if token[:1] in "\"'" else token)
    return parts


_KEY_LINE = re.compile(r'^\s*((?:"(?:[^"\\]|\\.)*"|\'[^\']*\'|[A-Za-z0-9_.\- ])+?)\s*=(.*)$')
_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


class SourceLocator:
    """Maps a path into a flow document (`("questions", 2, "next", 0, "goto")`) to a line."""

    def __init__(self, source: str) -> None:
        self._lines: dict[Loc, int] = {}
        self._array_index: dict[Loc, int] = {}
        table: Loc = ()
        state = _ScanState()
        array_path: Loc = ()
        item = 0
        for number, line in enumerate(source.splitlines(), start=1):
            if state.multiline is not None:
                _scan_value(line, state)
                continue
            stripped = line.strip()
            if state.depth > 0:
                # Inside an array that spans lines: an item opening at depth 1 gets its own line,
                # so `choices = [ {id = "a", ...}, {id = "b", ...} ]` points at each choice.
                if state.depth == 1 and (stripped[:1] in "{\"'[" or stripped[:1].isdigit()):
                    self._lines.setdefault((*array_path, item), number)
                    item += 1
                _scan_value(line, state)
                continue
            if not stripped or stripped.startswith("#"):
                continue
            header = _HEADER.match(line)
            if header and not _KEY_LINE.match(line):
                keys = _split_key(header.group(2))
                if header.group(1) == "[[":
                    parent = self._resolve(keys[:-1])
                    array = (*parent, keys[-1])
                    index = self._array_index.get(array, -1) + 1
                    self._array_index[array] = index
                    table = (*array, index)
                else:
                    table = self._resolve(keys)
                # `[questions.next.if.not]` also defines `if` (implicitly) on this line.
                for end in range(1, len(table) + 1):
                    self._lines.setdefault(table[:end], number)
                continue
            key_line = _KEY_LINE.match(line)
            if key_line is None:
                continue
            path = (*table, *_split_key(key_line.group(1)))
            self._lines.setdefault(path, number)
            _scan_value(key_line.group(2), state)
            if state.depth > 0:
                array_path, item = path, 0

    def _resolve(self, keys: Sequence[str]) -> Loc:
        # A key naming an array of tables refers to its latest element, as in TOML itself.
        path: Loc = ()
        for key in keys:
            path = (*path, key)
            if path in self._array_index:
                path = (*path, self._array_index[path])
        return path

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The line of `loc`, or of its nearest enclosing key or table; None when unknown."""
        for end in range(len(loc), 0, -1):
            line = self._lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None


__all__ = ["Loc", "SourceLocator"]
