"""``convsim demo``: the offline walk-through on bundled tau-bench data."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("convsim-demo"),
    show_default=True,
    help="Folder for the files the demo leaves behind.",
)
def demo_cmd(out: Path) -> None:
    """Run convsim offline on the bundled tau-bench airline conversations.

    Imports the 200 recorded conversations (50 tasks x 4 trials) into canonical JSONL
    and prints what is in them. Needs no network and no API key.
    """
    from .._assets import tau_airline_runs
    from ..datasets import ReadReport, dump_line
    from ..formats import read_tau_bench
    from .stats import file_stats, print_stats

    out.mkdir(parents=True, exist_ok=True)
    traces = out / "tau-airline.jsonl"
    report = ReadReport(file="bundled tau-bench airline runs")
    with traces.open("w", encoding="utf-8") as f:
        for conv in read_tau_bench(tau_airline_runs(), report=report):
            f.write(dump_line(conv) + "\n")
    click.echo(
        f"imported {report.kept} of {report.read} tau-bench airline conversations "
        f"({report.rejected} rejected) -> {traces}"
    )
    print_stats(file_stats(traces))
