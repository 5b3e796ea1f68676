"""``convsim export FORMAT INPUT --out FILE``: write canonical conversations in a trace format."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._common import UsageFailure, write_json

if TYPE_CHECKING:
    from ..formats._export import Export
    from ..trace import Conversation

EXPORT_FORMATS = ("openai", "anthropic", "otel")
SHOWN_ISSUES = 20


@click.command("export")
@click.argument("format", type=click.Choice(EXPORT_FORMATS))
@click.argument("input", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="JSONL file to write.")
@click.option(
    "--json", "json_out", metavar="FILE", help="Write the export report as JSON (- for stdout)."
)
@click.option(
    "--grades",
    type=click.Path(path_type=Path),
    help="otel only: write these scores (convsim grade/online --out) as "
    "gen_ai.evaluation.result events on the spans INPUT was imported from, instead of "
    "new traces.",
)
@click.option(
    "--endpoint",
    metavar="URL",
    help="With --grades: also send the events to this OTLP/HTTP collector "
    "(e.g. http://collector:4318).",
)
def export_cmd(
    format: str,
    input: Path,
    out: Path,
    json_out: str | None,
    grades: Path | None,
    endpoint: str | None,
) -> None:
    r"""Write the conversations of a canonical JSONL INPUT in FORMAT, one record per line.

    Unreadable input lines are reported and skipped. For openai and anthropic, every
    canonical field a conversation sets that FORMAT cannot carry is counted per field
    ("not carried by FORMAT: messages[].usage (14 conversations), scores (3)"); the
    JSON report holds the same counts under "lost". otel does not report losses yet.

    \b
    Formats:
      openai     {"id", "messages", "metadata", "tags", "tools"} with Chat Completions
                 messages
      anthropic  Messages API request bodies (with "tools") plus "id", "tags" and
                 "metadata"
      otel       one OTLP JSON ExportTraceServiceRequest (one trace) per conversation,
                 with chat and execute_tool spans and gen_ai.evaluation.result events;
                 with --grades, OTLP JSON log requests holding one evaluation event per
                 score, on the trace and span ids the conversation was imported from
    """
    import json

    from ..datasets import read_conversations
    from ._paths import atomic_output, check_paths

    if grades is not None or endpoint is not None:
        if format != "otel" or grades is None:
            raise UsageFailure("--grades (and --endpoint) go with: convsim export otel")
        _export_grades(input, grades, out, json_out, endpoint)
        return

    check_paths(inputs={"conversations": input}, outputs={"export": out, "JSON report": json_out})
    export = _exporter(format)
    reader = read_conversations(input)
    written = 0
    lost: Counter[str] = Counter()
    lossy = 0
    with atomic_output(out) as f:
        for conv in reader:
            result = export(conv)
            for record in result.records:
                f.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
                f.write("\n")
            written += 1
            lost.update(result.lost)
            lossy += bool(result.lost)
        if written == 0:
            # Raised before the rename: an earlier export of this name stays as it was.
            for issue in reader.report.issues[:SHOWN_ISSUES]:
                click.echo(str(issue), err=True)
            raise UsageFailure("nothing exported: no readable conversation in the input")
    report = reader.report
    for issue in report.issues[:SHOWN_ISSUES]:
        click.echo(str(issue), err=True)
    if lost:
        click.echo(f"not carried by {format}: {_loss_summary(lost)}", err=True)
    summary = f"{format}: read {report.read}, wrote {written}, skipped {report.rejected} -> {out}"
    if lossy:
        summary += f" ({_conversations(lossy)} lost fields {format} cannot carry)"
    click.echo(summary, err=True)
    if json_out:
        write_json(
            json_out,
            {
                "format": format,
                "input": str(input),
                "out": str(out),
                "read": report.read,
                "written": written,
                "rejected": report.rejected,
                "lossy": lossy if format in _LOSS_REPORTING else None,
                "lost": dict(_by_count(lost)) if format in _LOSS_REPORTING else None,
            },
        )


def _export_grades(
    conversations: Path, grades: Path, out: Path, json_out: str | None, endpoint: str | None
) -> None:
    """Scores as evaluation events on their conversations' source spans."""
    import json

    from ..datasets import ReadReport, read_conversations
    from ..formats.otel_grades import GradeExport, SpanIndex, grade_requests, push
    from ..grade import read_scores
    from ._paths import atomic_output, check_paths

    check_paths(
        inputs={"conversations": conversations, "grades": grades},
        outputs={"events": out, "JSON report": json_out},
    )
    index = SpanIndex(read_conversations(conversations))
    read = ReadReport(file=str(grades))
    result = GradeExport()
    requests: list[dict[str, object]] = []
    with atomic_output(out) as f:
        for request in grade_requests(read_scores(grades, report=read), index, result):
            f.write(json.dumps(request, separators=(",", ":")) + "\n")
            requests.append(request)
        if not result.exported:
            why = "; ".join(f"{n} {reason}" for reason, n in result.skipped.items())
            raise UsageFailure(
                f"{grades}: no grade could be placed on a span ({read.kept} scores read"
                + (f"; {why}" if why else "")
                + "): give the conversations as imported from OTLP traces"
            )
    for issue in read.issues[:SHOWN_ISSUES]:
        click.echo(str(issue), err=True)
    sent = push(requests, endpoint) if endpoint else 0
    skipped = sum(result.skipped.values())
    click.echo(
        f"otel grades: {result.exported} events -> {out}"
        + (f", sent to {endpoint} in {sent} request(s)" if endpoint else "")
        + (f"; {skipped} score(s) not placed: {dict(result.skipped)}" if skipped else ""),
        err=True,
    )
    if json_out:
        write_json(
            json_out,
            {
                "format": "otel",
                "grades": str(grades),
                "out": str(out),
                "read": read.read,
                "rejected": read.rejected,
                "exported": result.exported,
                "skipped": dict(result.skipped),
                "sent_requests": sent,
            },
        )


_LOSS_REPORTING = ("openai", "anthropic")
"""Formats whose exporter names every canonical field it cannot carry."""


def _exporter(format: str) -> Callable[[Conversation], Export]:
    from ..formats import EXPORTERS
    from ..formats._export import Export
    from ..formats.anthropic import export_anthropic
    from ..formats.openai import export_openai

    if format == "openai":
        return export_openai
    if format == "anthropic":
        return export_anthropic
    # The otel exporter has no loss report: its records go out with nothing counted,
    # and the JSON report says null rather than claiming nothing was lost.
    plain = EXPORTERS[format]
    return lambda conv: Export(records=[plain(conv)], lost=[])


def _by_count(lost: Counter[str]) -> list[tuple[str, int]]:
    """Fields by how many conversations lost them, most first, then by name."""
    return sorted(lost.items(), key=lambda item: (-item[1], item[0]))


def _loss_summary(lost: Counter[str]) -> str:
    """``messages[].usage (14 conversations), scores (3), ...``."""
    items = _by_count(lost)
    first, n = items[0]
    rest = [f"{field} ({count})" for field, count in items[1:]]
    return ", ".join([f"{first} ({_conversations(n)})", *rest])


def _conversations(n: int) -> str:
    return f"{n} conversation" if n == 1 else f"{n} conversations"
