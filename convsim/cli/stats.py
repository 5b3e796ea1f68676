"""``convsim stats FILE``: what is in a canonical conversation file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._common import UsageFailure, write_json


@click.command("stats")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--json", "json_out", metavar="FILE", help="Write the statistics as JSON (- for stdout)."
)
def stats_cmd(file: Path, json_out: str | None) -> None:
    """Show counts by tag, turns, tool calls, tokens and cost for a canonical JSONL FILE."""
    from ._paths import check_paths

    check_paths(inputs={"conversations": file}, outputs={"JSON summary": json_out})
    stats = file_stats(file)
    if json_out:
        write_json(json_out, stats)
    if json_out != "-":
        print_stats(stats)


def file_stats(file: Path) -> dict[str, Any]:
    """Statistics of a canonical JSONL file, with the reader's counts included."""
    from ..datasets import conversation_stats, read_conversations

    reader = read_conversations(file)
    stats = conversation_stats(reader)
    rep = reader.report
    stats["file"] = {
        "path": str(file),
        "read": rep.read,
        "kept": rep.kept,
        "rejected": rep.rejected,
    }
    for issue in rep.issues[:20]:
        click.echo(str(issue), err=True)
    if rep.kept == 0:
        raise UsageFailure(
            f"{file}: no valid conversations (read {rep.read}, rejected {rep.rejected})"
        )
    return stats


def print_stats(stats: dict[str, Any]) -> None:
    """Render statistics as terminal tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    f = stats["file"]
    overview = Table(title=f"{f['path']}", show_header=False, title_justify="left")
    overview.add_row("conversations", f"{stats['conversations']:,}")
    if f["rejected"]:
        overview.add_row("rejected lines", f"{f['rejected']:,}")
    overview.add_row("messages", ", ".join(f"{k} {v:,}" for k, v in stats["messages"].items()))
    t = stats["turns"]
    overview.add_row(
        "turns", f"{t['total']:,} (mean {t['mean']}, median {t['median']}, max {t['max']})"
    )
    tc = stats["tool_calls"]
    overview.add_row(
        "tool calls",
        f"{tc['total']:,} ({tc['per_conversation']} per conversation; "
        f"{tc['unanswered']} unanswered, {tc['errors']} errors, "
        f"{tc['unparsable_arguments']} unparsable)",
    )
    tok = stats["tokens"]
    overview.add_row("tokens", f"input {tok['input']:,}, output {tok['output']:,}")
    cost = stats["cost_usd"]
    overview.add_row(
        "cost", f"${cost['total']:.4f} over {cost['conversations_with_cost']} conversations"
    )
    console.print(overview)
    if stats["tags"]:
        tags = Table(title="by tag", title_justify="left")
        tags.add_column("tag")
        tags.add_column("values (conversations)")
        for key, values in stats["tags"].items():
            shown = list(values.items())[:12]
            more = f" ... +{len(values) - 12}" if len(values) > 12 else ""
            tags.add_row(key, ", ".join(f"{v} ({n})" for v, n in shown) + more)
        console.print(tags)
    if stats["scores"]:
        scores = Table(title="attached scores", title_justify="left")
        scores.add_column("score")
        scores.add_column("n", justify="right")
        scores.add_column("mean", justify="right")
        for name, s in stats["scores"].items():
            scores.add_row(name, str(s["n"]), f"{s['mean']:.3f}")
        console.print(scores)
    tools = Table(title="tool calls by tool", title_justify="left")
    tools.add_column("tool")
    tools.add_column("calls", justify="right")
    for name, count in list(stats["tool_calls"]["by_tool"].items())[:15]:
        tools.add_row(name, f"{count:,}")
    console.print(tools)
