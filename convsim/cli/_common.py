"""Helpers shared by the CLI commands: clean errors, JSON output, output files."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .._files import AtomicFile

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
    """Write ``payload`` as JSON to a file (replaced in one step), or to stdout for ``-``."""
    text = json.dumps(payload, indent=2, ensure_ascii=False, default=str)
    if target == "-":
        sys.stdout.write(text + "\n")
        return
    from ._paths import output_file, write_text_atomically

    write_text_atomically(output_file(Path(target), "JSON summary"), text + "\n")


def os_error_line(e: OSError) -> str:
    """One line for a file-system error: the path, and what the system said of it."""
    import errno

    where = f"{e.filename}: " if e.filename else ""
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return (
            f"{where}no space left to write (disk full or file too large); the previous "
            "outputs are unchanged, and a run resumes with --resume once there is room"
        )
    if isinstance(e, IsADirectoryError):
        return f"{where}is a directory; give a file"
    if isinstance(e, NotADirectoryError):
        return f"{where}a part of this path is a file, not a folder"
    if isinstance(e, PermissionError):
        return f"{where}permission denied"
    if isinstance(e, FileNotFoundError):
        return f"{where}no such file or folder"
    return f"{where}{e.strerror or e}"


class LazyFile:
    """A binary output opened on first write, so an empty rejects file is never created.

    It is written to a temporary file beside it and renamed into place by
    :meth:`close`; :meth:`discard` (after a failure) removes the temporary file and
    leaves any earlier file of that name as it was.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = AtomicFile(path, "wb")
        self.written = 0

    def write(self, data: bytes, /) -> int:
        """Write raw bytes, opening the file first if needed."""
        self.written += 1
        return int(self._file.open().write(data))

    def close(self) -> None:
        """Finish the file: put it in place if anything was written."""
        self._file.commit()

    def discard(self) -> None:
        """Drop what was written; an earlier file of this name stays as it was."""
        self._file.discard()


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
