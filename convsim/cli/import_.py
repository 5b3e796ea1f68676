"""``convsim import FORMAT PATH... --out FILE``: convert traces to canonical JSONL."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import LazyFile, UsageFailure, write_json

FORMATS = (
    "auto",
    "openai",
    "tau-bench",
    "responses",
    "anthropic",
    "otel",
    "openinference",
    "langsmith",
    "langfuse",
)
SHOWN_ISSUES = 20

# Click keeps a paragraph that starts with "\b" (a backspace) exactly as written.
HELP = """Convert traces in FORMAT into canonical JSONL, one conversation per line.

Bad records never stop an import: each is reported as FILE:LINE: FIELD: PROBLEM,
copied to the rejects file, and the rest are kept. Exit code 2 when nothing at all
could be imported.

Span and run formats (otel, openinference, langsmith, langfuse, responses) group
records into conversations; there READ counts conversations plus records that could
not be read at all. LOSSY counts kept conversations where something had no canonical
field and was kept verbatim in metadata (or a branch was set aside); each is
described by a note.

\b
Formats:
  auto           detect from the first records; records of another format are
                 rejected, each with an issue
  openai         Chat Completions message lists: one conversation per JSONL line, a
                 JSON list of them, or {"id", "messages", "metadata", "tags"} objects
  tau-bench      tau-bench run records (JSON list with task_id, trial, reward, traj)
  responses      OpenAI Responses API objects, grouped by conversation or by
                 previous_response_id chain
  anthropic      Anthropic Messages requests, {"request", "response"} pairs or
                 response messages
  otel           OTLP JSON traces with OpenTelemetry GenAI attributes (one
                 ExportTraceServiceRequest per JSONL line streams in bounded memory)
  openinference  Arize Phoenix / OpenInference spans (flattened or nested
                 attributes, or OTLP JSON)
  langsmith      LangSmith run exports (and feedback), threads by
                 extra.metadata.thread_id
  langfuse       Langfuse traces with observations and scores, grouped by sessionId
"""


@click.command("import", help=HELP)
@click.argument("format", type=click.Choice(FORMATS))
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out", required=True, type=click.Path(path_type=Path), help="Canonical JSONL to write."
)
@click.option(
    "--rejects",
    type=click.Path(path_type=Path),
    help="Where rejected records are copied verbatim [default: OUT.rejects.jsonl].",
)
@click.option("--keep-source", is_flag=True, help="Keep each verbatim source record in provenance.")
@click.option(
    "--json", "json_out", metavar="FILE", help="Write the import report as JSON (- for stdout)."
)
def import_cmd(
    format: str,
    paths: tuple[Path, ...],
    out: Path,
    rejects: Path | None,
    keep_source: bool,
    json_out: str | None,
) -> None:
    """Convert traces in FORMAT into canonical JSONL (see ``HELP`` for the full text)."""
    from ..formats import IMPORTERS, import_files
    from ._paths import check_paths

    reject_path = rejects or out.with_name(out.name + ".rejects.jsonl")
    check_paths(
        inputs={f"{format} input ({i + 1})": p for i, p in enumerate(paths)},
        outputs={"canonical JSONL": out, "rejects file": reject_path, "JSON report": json_out},
    )
    sink = LazyFile(reject_path)
    try:
        report = import_files(
            IMPORTERS[format], list(paths), out, rejects=sink, keep_source=keep_source
        )
    except BaseException:
        sink.discard()
        raise
    sink.close()
    for issue in report.issues[:SHOWN_ISSUES]:
        click.echo(str(issue), err=True)
    if report.rejected > SHOWN_ISSUES:
        click.echo(f"... and {report.rejected - SHOWN_ISSUES} more", err=True)
    for note in report.notes[:SHOWN_ISSUES]:
        click.echo(f"note: {note}", err=True)
    if len(report.notes) > SHOWN_ISSUES:
        click.echo(f"... and {len(report.notes) - SHOWN_ISSUES} more notes", err=True)
    summary = (
        f"{format}: read {report.read}, kept {report.kept}, rejected {report.rejected} -> {out}"
    )
    if report.lossy:
        summary += f" ({report.lossy} lossy, see notes)"
    if report.failed_calls:
        summary += f"; {report.failed_calls} failed model call(s) kept in metadata.failed_calls"
    if sink.written:
        summary += f" (rejects: {reject_path})"
    click.echo(summary, err=True)
    if json_out:
        write_json(
            json_out,
            {
                "format": format,
                "inputs": [str(p) for p in paths],
                "out": str(out),
                "read": report.read,
                "kept": report.kept,
                "rejected": report.rejected,
                "lossy": report.lossy,
                "failed_calls": report.failed_calls,
                "rejects_file": str(reject_path) if sink.written else None,
                "issues": [
                    {"file": i.file, "line": i.line, "field": i.field, "message": i.message}
                    for i in report.issues
                ],
                "notes": [
                    {"file": i.file, "line": i.line, "field": i.field, "message": i.message}
                    for i in report.notes
                ],
            },
        )
    if report.kept == 0:
        raise UsageFailure("nothing importable: every record was rejected (see the errors above)")
