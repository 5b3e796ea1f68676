"""Convert whole input files into one canonical JSONL dataset."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pydantic_core import PydanticSerializationError

from .._files import AtomicFile
from ..datasets import ReadReport, RecordIssue, RejectSink, dump_line
from ..errors import ConfigError
from ..trace import AssistantMessage, Conversation, UserMessage
from ._base import Importer


def import_files(
    importer: Importer,
    paths: Sequence[Path],
    out: Path,
    *,
    rejects: RejectSink | None = None,
    keep_source: bool = False,
) -> ReadReport:
    """Read every input with ``importer`` and write the valid conversations to ``out``.

    The output is written to a temporary file and moved into place at the end, so an
    interrupted import never leaves a half-written dataset. Conversation ids must be
    unique across all inputs; a repeated id is rejected, naming where it first appeared.

    Raises:
        ConfigError: ``out`` is a directory.
        TraceImportError: an input is missing, a directory or empty.
    """
    if out.is_dir():
        raise ConfigError(
            f"--out {out}: is a directory; give a file name such as {out}/traces.jsonl"
        )
    total = ReadReport(file=", ".join(str(p) for p in paths))
    first_seen: dict[str, str] = {}
    with AtomicFile(out) as target:
        f = target.open()
        for path in paths:
            report = ReadReport(file=str(path))
            for conv in importer(path, report=report, rejects=rejects, keep_source=keep_source):
                line = conv.provenance.source_line if conv.provenance else None
                empty = _empty_problem(conv)
                if empty is not None:
                    report.kept -= 1
                    report.reject(RecordIssue(str(path), line or 0, "messages", empty))
                    if rejects is not None:
                        rejects.write(dump_line(conv).encode() + b"\n")
                    continue
                for where, doubt in _doubts(conv):
                    report.warn(RecordIssue(str(path), line or 0, where, doubt))
                if conv.id in first_seen:
                    report.kept -= 1
                    report.reject(
                        RecordIssue(
                            str(path),
                            line or 0,
                            "id",
                            f"duplicate conversation id {conv.id!r} "
                            f"(first at {first_seen[conv.id]}); ids must be unique",
                        )
                    )
                    if rejects is not None:
                        rejects.write(dump_line(conv).encode() + b"\n")
                    continue
                try:
                    text = dump_line(conv)
                except (PydanticSerializationError, UnicodeEncodeError) as e:
                    # Text no file can hold (a lone UTF-16 surrogate the source's
                    # JSON escaped): this record is set aside, the rest go on.
                    report.kept -= 1
                    report.reject(
                        RecordIssue(
                            str(path),
                            line or 0,
                            None,
                            f"conversation {conv.id!r} holds text that is not valid "
                            f"Unicode ({_first_line(e)}); fix it at the source",
                        )
                    )
                    if rejects is not None:
                        # ASCII escapes carry the bad text into the rejects file as is.
                        raw = json.dumps(conv.model_dump(mode="json"), ensure_ascii=True)
                        rejects.write(raw.encode() + b"\n")
                    continue
                first_seen[conv.id] = f"{path}:{line}" if line else str(path)
                f.write(text)
                f.write("\n")
            total.merge(report)
        if not total.kept:
            # Nothing importable leaves an earlier output of this name as it was.
            target.abandon()
    return total


def _empty_problem(conv: Conversation) -> str | None:
    """Why a conversation holds nothing to grade, or None."""
    if not conv.messages:
        return "no messages"
    for m in conv.messages:
        if m.content or m.parts:
            return None
        if isinstance(m, AssistantMessage) and m.tool_calls:
            return None
    return "every message is empty: no text, no parts, no tool calls"


def _doubts(conv: Conversation) -> list[tuple[str, str]]:
    """What is kept but worth a look: empty user turns, tool arguments that are not JSON."""
    out: list[tuple[str, str]] = []
    for i, m in enumerate(conv.messages):
        if isinstance(m, UserMessage) and not m.content and not m.parts:
            out.append((f"messages.{i}.content", "a user message with no content, kept empty"))
        if isinstance(m, AssistantMessage):
            for k, call in enumerate(m.tool_calls):
                if call.arguments_raw is not None:
                    out.append(
                        (
                            f"messages.{i}.tool_calls.{k}.arguments",
                            "not a JSON object; kept as the raw text (arguments_raw)",
                        )
                    )
    return out


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0][:200]
