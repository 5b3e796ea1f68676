"""Helpers shared by the CLI commands: clean errors, JSON output, output files."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

FC = TypeVar("FC", bound=Callable[..., Any] | click.Command)

# The same path as convsim.store.DEFAULT_STORE_PATH (a test keeps them equal): importing
# the store here would double the CLI's start-up time for a constant.
DEFAULT_STORE = Path(".convsim") / "convsim.db"
"""The store every command uses unless ``--store`` (or ``CONVSIM_STORE``) says otherwise."""


def store_option(help: str = "SQLite store file.") -> Callable[[FC], FC]:
    """The ``--store`` option, shared by every command that reads or writes the store."""
    return click.option(
        "--store",
        "store_path",
        type=click.Path(path_type=Path),
        default=DEFAULT_STORE,
        envvar="CONVSIM_STORE",
        show_envvar=True,
        show_default=True,
        help=help,
    )


class UsageFailure(click.ClickException):
    """A user mistake: printed as one line, exit code 2, never a traceback."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        """Print ``error: message`` on stderr."""
        click.echo(f"error: {self.format_message()}", err=True)


def write_json(target: str, payload: Any) -> None:
    """Write ``payload`` as JSON to a file, or to stdout when ``target`` is ``-``."""
    text = json.dumps(payload, indent=2, ensure_ascii=False, default=str)
    if target == "-":
        sys.stdout.write(text + "\n")
        return
    Path(target).write_text(text + "\n", encoding="utf-8")


class LazyFile:
    """A binary file opened on first write, so an empty rejects file is never created."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: Any = None
        self.written = 0

    def write(self, data: bytes, /) -> int:
        """Write raw bytes, opening the file first if needed."""
        if self._f is None:
            self._f = self.path.open("wb")
        self.written += 1
        return int(self._f.write(data))

    def close(self) -> None:
        """Close the file if it was opened."""
        if self._f is not None:
            self._f.close()


def replace_atomically(tmp: Path, target: Path) -> None:
    """Move a finished temporary file over ``target`` in one step."""
    os.replace(tmp, target)


class EndpointClient:
    """A model client that points every request at ``--judge-api-base`` when given."""

    def __init__(self, inner: Any, api_base: str | None) -> None:
        self.inner = inner
        self.api_base = api_base

    async def complete(self, request: Any) -> Any:
        """Send the request, to the endpoint unless the request names its own."""
        if self.api_base and request.api_base is None:
            from dataclasses import replace

            request = replace(request, api_base=self.api_base)
        return await self.inner.complete(request)
