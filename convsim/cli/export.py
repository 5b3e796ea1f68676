"""``convsim export FORMAT INPUT --out FILE``: write canonical conversations in a trace format."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import UsageFailure

EXPORT_FORMATS = ("openai", "anthropic", "otel")
SHOWN_ISSUES = 20


@click.command("export")
@click.argument("format", type=click.Choice(EXPORT_FORMATS))
@click.argument("input", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="JSONL file to write.")
def export_cmd(format: str, input: Path, out: Path) -> None:
    r"""Write the conversations of a canonical JSONL INPUT in FORMAT, one record per line.

    Unreadable input lines are reported and skipped. What a format cannot carry is
    counted and summarised on stderr (anthropic: message ids, times, usage, ...).

    \b
    Formats:
      openai     {"id", "messages", "metadata", "tags"} with Chat Completions messages
      anthropic  Messages API request bodies plus "id", "tags" and "metadata"
      otel       one OTLP JSON ExportTraceServiceRequest (one trace) per conversation,
                 with chat and execute_tool spans and gen_ai.evaluation.result events
    """
    import json

    from ..datasets import read_conversations
    from ..formats import EXPORTERS, to_anthropic_record
    from ._paths import atomic_output, check_paths

    check_paths(inputs={"conversations": input}, outputs={"export": out})
    reader = read_conversations(input)
    written = 0
    lossy = 0
    losses: list[str] = []
    with atomic_output(out) as f:
        for conv in reader:
            if format == "anthropic":
                lost: list[str] = []
                record = to_anthropic_record(conv, lost=lost)
                if lost:
                    lossy += 1
                    losses.extend(f"{conv.id}: {item}" for item in lost[:3])
            else:
                record = EXPORTERS[format](conv)
            f.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
            f.write("\n")
            written += 1
        if written == 0:
            # Raised before the rename: an earlier export of this name stays as it was.
            for issue in reader.report.issues[:SHOWN_ISSUES]:
                click.echo(str(issue), err=True)
            raise UsageFailure("nothing exported: no readable conversation in the input")
    report = reader.report
    for issue in report.issues[:SHOWN_ISSUES]:
        click.echo(str(issue), err=True)
    for item in losses[:SHOWN_ISSUES]:
        click.echo(f"not carried by {format}: {item}", err=True)
    summary = f"{format}: read {report.read}, wrote {written}, skipped {report.rejected} -> {out}"
    if lossy:
        summary += f" ({lossy} conversations lost fields {format} cannot carry)"
    click.echo(summary, err=True)
