"""Shared output helpers: one rich console, `--json` printing, and turning errors into exit codes."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console

from fyp.commands.unreachable import unreachable_message

__all__ = ["console", "err_console", "fail_cleanly", "print_error", "print_json"]

console = Console()
err_console = Console(stderr=True)


def _default(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return str(value)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=_default, indent=2, sort_keys=True) + "\n")


@contextmanager
def fail_cleanly(*errors: type[BaseException]) -> Iterator[None]:
    """Print expected errors as one red message and exit 1, instead of a traceback."""
    try:
        yield
    except errors as exc:
        print_error(exc)
        raise typer.Exit(1) from exc


def print_error(exc: BaseException) -> None:
    """`exc` as one red line on stderr, naming the service for a refused connection."""
    err_console.print(f"[bold red]error:[/] {unreachable_message(exc) or exc}", highlight=False)
