"""Errors raised by the sentiment package."""

from __future__ import annotations

from collections.abc import Sequence


class NlpError(Exception):
    """Base class for every error raised by ``nlp``."""


class ModelLoadError(NlpError):
    """No sentiment model could be loaded; ``attempts`` lists (location, reason) pairs."""

    def __init__(self, summary: str, attempts: Sequence[tuple[str, str]] = ()) -> None:
        self.attempts: list[tuple[str, str]] = list(attempts)
        lines = [summary]
        lines.extend(f"  - {where}: {why}" for where, why in self.attempts)
        super().__init__("\n".join(lines))


class EvalFileError(NlpError):
    """An evaluation file could not be read; the message names the file and line."""
