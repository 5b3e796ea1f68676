"""The ``convsim`` command line. Each command lives in its own module.

Command modules import only click at the top; heavy imports happen inside the command
functions, so ``convsim --help`` stays fast.
"""

from __future__ import annotations

import click

from .._version import __version__
from ..errors import ConvsimError
from ._common import UsageFailure
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
    """Turns convsim's own errors into one-line messages with exit code 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ConvsimError as e:
            raise UsageFailure(str(e)) from None


@click.group(
    cls=_Group,
    context_settings={"auto_envvar_prefix": "CONVSIM", "help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="convsim")
def cli() -> None:
    """Simulate, replay and grade whole LLM-agent conversations, tool calls included.

    Exit codes: 0 ok, 1 a check failed, 2 usage or configuration error.
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
