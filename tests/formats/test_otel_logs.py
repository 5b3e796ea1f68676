"""Traces and logs that do not match: each imports what it can, the rest has a location.

Built from a real capture (OpenTelemetry's OpenAI instrumentation in content mode: spans
in one file, message events as log records in another), then spoilt the ways exports
really go wrong.
"""

import json
from pathlib import Path
from typing import Any, cast

from convsim.datasets import ReadReport
from convsim.formats.otel import read_otel_files
from convsim.trace import Conversation, UserMessage

CAPTURED = Path(__file__).parent / "data" / "captured"
TRACES = CAPTURED / "otel_openai_v2_2.4b0_content_traces.jsonl"
LOGS = CAPTURED / "otel_openai_v2_2.4b0_content_logs.jsonl"


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _records(line: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for rl in line["resourceLogs"] for sl in rl["scopeLogs"] for r in sl["logRecords"]]


def _write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def _read(*paths: Path) -> tuple[list[Conversation], ReadReport]:
    report = ReadReport(file=str(paths[0]))
    return list(read_otel_files(list(paths), report=report)), report


def _users(conversations: list[Conversation]) -> set[str]:
    return {m.text for c in conversations for m in c.messages if isinstance(m, UserMessage)}


def test_the_capture_as_written_imports_whole() -> None:
    conversations, report = _read(TRACES, LOGS)
    assert (report.read, report.kept, report.rejected) == (4, 4, 0)
    assert "What's the weather in Paris?" in _users(conversations)
    assert all(c.metadata.get("content_captured") is not False for c in conversations)


def test_logs_without_traces_import_each_call_from_its_records() -> None:
    conversations, report = _read(LOGS)
    assert (report.kept, report.rejected) == (4, 0)
    assert "What's the weather in Paris?" in _users(conversations)
    assert any("span" in n.message and n.file == str(LOGS) for n in report.notes)


def test_traces_without_logs_import_the_structure_and_say_the_content_is_missing() -> None:
    conversations, report = _read(TRACES)
    assert (report.kept, report.rejected, report.failed_calls) == (4, 0, 1)
    answered = [c for c in conversations if c.messages]
    assert len(answered) == 3  # the fourth call failed (429) and is kept as a failed call
    assert all(c.metadata.get("content_captured") is False for c in answered)
    assert not _users(conversations)
    assert any("content was not captured" in n.message for n in report.notes)


def test_a_record_naming_another_span_becomes_a_call_of_its_own(tmp_path: Path) -> None:
    lines = _lines(LOGS)
    for record in _records(lines[0]):
        record["spanId"] = "00000000000000aa"
    logs = _write(tmp_path / "logs.jsonl", lines)
    conversations, report = _read(TRACES, logs)
    assert (report.kept, report.rejected) == (4, 0)
    assert "What's the weather in Paris?" in _users(conversations)
    assert any(n.file == str(logs) and n.line == 1 for n in report.notes)


def test_an_unknown_event_is_kept_and_located(tmp_path: Path) -> None:
    lines = _lines(LOGS)
    _records(lines[1])[0]["eventName"] = "acme.custom"
    logs = _write(tmp_path / "logs.jsonl", lines)
    conversations, report = _read(TRACES, logs)
    assert (report.kept, report.rejected) == (4, 0)
    kept = [
        c.metadata["otel.log_records"] for c in conversations if "otel.log_records" in c.metadata
    ]
    assert len(kept) == 1
    assert cast(list[dict[str, Any]], kept[0])[0]["event"] == "acme.custom"
    assert any(
        n.file == str(logs) and n.line == 2 and "acme.custom" in n.message for n in report.notes
    )


def test_a_record_without_a_trace_id_is_set_aside_with_its_place(tmp_path: Path) -> None:
    lines = _lines(LOGS)
    del _records(lines[2])[0]["traceId"]
    logs = _write(tmp_path / "logs.jsonl", lines)
    conversations, report = _read(TRACES, logs)
    assert report.rejected == 1 and report.kept == 4
    assert report.read == report.kept + report.rejected
    (issue,) = report.issues
    assert (issue.file, issue.line) == (str(logs), 3)
    assert issue.field is not None and issue.field.endswith("traceId")


def test_an_unreadable_line_in_either_file_is_located_in_that_file(tmp_path: Path) -> None:
    traces = tmp_path / "traces.jsonl"
    traces.write_text(TRACES.read_text() + "{not json\n")
    logs = tmp_path / "logs.jsonl"
    text = LOGS.read_text().splitlines(keepends=True)
    logs.write_text("".join([*text[:2], "[1, 2\n", *text[2:]]))
    conversations, report = _read(traces, logs)
    assert report.kept == 4 and report.rejected == 2
    assert {(i.file, i.line) for i in report.issues} == {(str(traces), 5), (str(logs), 3)}
    assert "What's the weather in Paris?" in _users(conversations)
