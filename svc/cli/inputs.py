"""Reading the CLI's JSON inputs and failing cleanly: bad input exits 2 with a message
naming the path and the rule, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

import typer

from ..jsonio import loads
from ..rating import Violation

BAD_INPUT = 2


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(BAD_INPUT)


def fail_violations(what: str, violations: Iterable[Violation]) -> NoReturn:
    lines = "\n".join(f"  {v.path}: {v.rule}" for v in violations)
    fail(f"{what}:\n{lines}")


def read_json(source: str) -> Any:
    """``source`` is a file path or ``-`` for standard input."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as error:
        fail(f"cannot read {source}: {error.strerror}")
    try:
        return loads(text)
    except ValueError as error:
        fail(f"{source} is not valid JSON: {error}")
