"""Running `cxbot ARGS` in the test's process, as a user would from a shell."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.cli import main

# `cxbot ARGS` → (exit status, stdout, stderr), each stripped.
Run = Callable[..., tuple[int, str, str]]


def cli_runner(capsys: pytest.CaptureFixture[str]) -> Run:
    """A `Run` that calls the real entry point and captures what it printed."""

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out.strip(), err.strip()

    return run
