"""``convsim demo``: the whole loop offline on bundled tau-bench data, in under a minute."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import write_json


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("convsim-demo"),
    show_default=True,
    help="Folder for the files the demo leaves behind.",
)
@click.option(
    "--judge-model",
    metavar="MODEL",
    help="Use a real litellm judge model instead of the offline rule-based judge.",
)
@click.option(
    "--json", "json_out", metavar="FILE", help="Write the headline numbers as JSON (- for stdout)."
)
def demo_cmd(out: Path, judge_model: str | None, json_out: str | None) -> None:
    """Run convsim's whole loop offline on the bundled tau-bench airline conversations.

    Imports the 200 recorded conversations, grades them (outcome checks, guardrails,
    user signals, rubric judges), reports pass^k by task, simulates personas against a
    reference agent, replays the recordings against a changed agent, reports drift
    between two weekly windows with an injected regression, and harvests a reviewed
    failure into a dataset. Needs no network and no API key (unless --judge-model).
    """
    from ..demo import run_demo

    result = run_demo(
        out, judge_model=judge_model, progress=lambda step: click.echo(f"... {step}", err=True)
    )
    for line in result.lines:
        click.echo(line)
    html = [str(p) for k, p in result.files.items() if k.endswith("_html")]
    click.echo(f"done in {result.seconds:.1f}s; open the reports: {', '.join(html)}")
    if json_out:
        write_json(
            json_out,
            {
                "seconds": round(result.seconds, 2),
                "numbers": result.numbers,
                "files": {k: str(v) for k, v in result.files.items()},
            },
        )
