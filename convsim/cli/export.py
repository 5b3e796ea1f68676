"""``convsim export FORMAT INPUT --out FILE``: write canonical conversations in a trace format."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import UsageFailure, replace_atomically

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

    if out.is_dir():
        raise UsageFailure(f"--out {out}: is a directory; give a file name")
    reader = read_conversations(input)
    tmp = out.with_name(out.name + ".partial")
    written = 0
    lossy = 0
    losses: list[str] = []
    try:
        with tmp.open("w", encoding="utf-8") as f:
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
        replace_atomically(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    report = reader.report
    for issue in report.issues[:SHOWN_ISSUES]:
        click.echo(str(issue), err=True)
    for item in losses[:SHOWN_ISSUES]:
        click.echo(f"not carried by {format}: {item}", err=True)
    summary = f"{format}: read {report.read}, wrote {written}, skipped {report.rejected} -> {out}"
    if lossy:
        summary += f" ({lossy} conversations lost fields {format} cannot carry)"
    click.echo(summary, err=True)
    if written == 0:
        raise UsageFailure("nothing exported: no readable conversation in the input")
