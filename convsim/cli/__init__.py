"""The ``convsim`` command line. Each command lives in its own module.

Command modules import only click at the top; heavy imports happen inside the command
functions, so ``convsim --help`` stays fast.
"""

from __future__ import annotations

import sqlite3
from typing import NoReturn

import click

from .._version import __version__
from ..errors import ConvsimError
from ._common import UsageFailure, os_error_line
from .compare import compare_cmd
from .demo import demo_cmd
from .drift import drift_cmd
from .export import export_cmd
from .grade import grade_cmd
from .import_ import import_cmd
from .online import online_cmd
from .replay import replay_cmd
from .review import harvest_cmd, review_cmd
from .schema import schema_cmd
from .simulate import simulate_cmd
from .stats import stats_cmd


class _Group(click.Group):
    """Turns convsim's own errors, and what the system says of a path, into one line.

    Configuration errors and file-system errors on the paths a user gave (a folder where
    a file belongs, a read-only folder, a full disk, a file that is not UTF-8 text) exit
    with code 2 and one line naming the path; Ctrl-C exits 130, as shells expect.
    """

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except BaseExceptionGroup as group:
            # A task group (the run's workers, the store's writer) wraps what failed in
            # it; the user's error inside is reported like any other.
            leaf = _first_leaf(group)
            if isinstance(leaf, KeyboardInterrupt):
                _interrupted()
            raise _user_error(leaf) or group from None
        except KeyboardInterrupt:
            _interrupted()
        except (ConvsimError, OSError, sqlite3.DatabaseError, UnicodeDecodeError) as e:
            raise _user_error(e) or e from None


def _interrupted() -> NoReturn:
    click.echo("interrupted; finished work is kept (resume runs with --resume)", err=True)
    raise SystemExit(130) from None


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


_STORE_ERRORS = {
    sqlite3.SQLITE_FULL: "the disk holding the store is full",
    sqlite3.SQLITE_IOERR: "the store could not be read or written (a full or failing disk?)",
    sqlite3.SQLITE_BUSY: "another process held the store locked for too long; try again",
    sqlite3.SQLITE_LOCKED: "another process held the store locked for too long; try again",
    sqlite3.SQLITE_READONLY: "the store is read-only (the file or its folder)",
    sqlite3.SQLITE_PERM: "permission denied on the store",
    sqlite3.SQLITE_CANTOPEN: "the store cannot be opened (a missing or read-only folder?)",
    sqlite3.SQLITE_CORRUPT: "the store is damaged; recover it with: sqlite3 STORE .recover",
    sqlite3.SQLITE_NOTADB: "the --store file is not a SQLite database",
}


def _user_error(e: BaseException) -> BaseException | None:
    """The one-line failure a user error becomes, or None for a bug (keep its traceback)."""
    if isinstance(e, ConvsimError):
        return UsageFailure(str(e))
    if isinstance(e, BrokenPipeError):
        return None  # `convsim ... | head`: click's own handling exits quietly
    if isinstance(e, OSError):
        return UsageFailure(os_error_line(e))
    if isinstance(e, sqlite3.DatabaseError):
        # Only what the disk, the file or another process did; a wrong query is a bug.
        what = _STORE_ERRORS.get(getattr(e, "sqlite_errorcode", -1) & 0xFF)
        if what is None:
            return None
        return UsageFailure(
            f"{what} ({e}); what was committed before is kept, and a run resumes with "
            "--resume once the cause is fixed"
        )
    if isinstance(e, UnicodeDecodeError):
        return UsageFailure(f"a file is not UTF-8 text ({e.reason} at byte {e.start})")
    return None


@click.group(
    cls=_Group,
    context_settings={"auto_envvar_prefix": "CONVSIM", "help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="convsim")
def cli() -> None:
    """Simulate, replay and grade whole LLM-agent conversations, tool calls included.

    Exit codes: 0 ok, 1 a check failed, 2 usage or configuration error, 3 an
    inconclusive gate, 130 interrupted.
    """


for _command in (
    compare_cmd,
    demo_cmd,
    drift_cmd,
    export_cmd,
    grade_cmd,
    harvest_cmd,
    import_cmd,
    online_cmd,
    replay_cmd,
    review_cmd,
    schema_cmd,
    simulate_cmd,
    stats_cmd,
):
    # Raw docstrings carry click's "\b" no-rewrap marker as two characters; click wants
    # the single backspace character.
    if _command.help:
        _command.help = _command.help.replace("\\b\n", "\b\n")
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="convsim")


__all__ = ["cli", "main"]
