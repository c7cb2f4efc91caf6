"""Folding people's label corrections into the training split, without touching held-out data.

A corrections file is JSONL in the corpus format (``{"text", "label", "source"}``, as written by
``cxbot nlp corrections export``). Corrections whose text is also in the dev split (or in an
evaluation file) are refused from training: a model trained on them would be scored on its own
training data, and the before/after figures would flatter it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nlp.errors import EvalFileError
from nlp.evaluation import check_label, jsonl_records


@dataclass(frozen=True, slots=True)
class Correction:
    """One row of a corrections file; ``line`` is its 1-based line number."""

    text: str
    label: str
    source: str
    line: int


@dataclass(frozen=True, slots=True)
class FoldedCorrections:
    """The corrections to train on, and those refused because held-out data has their text."""

    train: list[Correction]
    refused: list[Correction]

    @property
    def rows(self) -> list[tuple[str, str]]:
        """The accepted corrections as ``(text, label)`` training rows."""
        return [(c.text, c.label) for c in self.train]


def read_corrections(path: str | os.PathLike[str]) -> list[Correction]:
    """Read a corrections file; EvalFileError names the file and line of the first bad row."""
    p = Path(path)
    rows: list[Correction] = []
    for lineno, record in jsonl_records(p):
        text, source = record.get("text"), record.get("source")
        if not isinstance(text, str) or not text.strip():
            raise EvalFileError(f'{p}:{lineno}: "text" must be a non-empty string')
        label = check_label(p, lineno, record.get("label"))
        if source is not None and not isinstance(source, str):
            raise EvalFileError(f'{p}:{lineno}: "source" must be a string when given')
        rows.append(Correction(text, label, source or f"{p.name}:{lineno}", lineno))
    if not rows:
        raise EvalFileError(f"{p}: no corrections in the file")
    return rows


def text_key(text: str) -> str:
    """What makes two texts "the same" here: case and spacing do not count."""
    return " ".join(text.split()).casefold()


def fold_corrections(
    corrections: Sequence[Correction], held_out: Iterable[str]
) -> FoldedCorrections:
    """Split corrections into those to train on and those whose text is held out."""
    keys = {text_key(t) for t in held_out}
    train = [c for c in corrections if text_key(c.text) not in keys]
    refused = [c for c in corrections if text_key(c.text) in keys]
    return FoldedCorrections(train=train, refused=refused)
