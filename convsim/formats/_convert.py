"""Convert whole input files into one canonical JSONL dataset."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Protocol

from pydantic_core import PydanticSerializationError

from .._files import AtomicFile
from ..datasets import ReadReport, RecordIssue, RejectSink, dump_line
from ..errors import ConfigError
from ..trace import AssistantMessage, Conversation, UserMessage
from ._base import Importer


class ReadMany(Protocol):
    """Reads several input files as one input; see :class:`MultiFileImporter`."""

    def __call__(
        self,
        paths: Sequence[Path],
        *,
        report: ReadReport,
        rejects: RejectSink | None = None,
        keep_source: bool = False,
    ) -> Iterator[Conversation]:
        """Yield the valid conversations of all ``paths``; issues name their own file."""
        ...


class MultiFileImporter:
    """An :class:`Importer` whose records may refer to records in other input files.

    LangSmith feedback names its run by id, and the run is usually exported to another
    file than the feedback. Such an importer is an ordinary importer for one file, and
    :func:`import_files` hands it every input at once (``read_many``) so the records can
    be joined across files.
    """

    def __init__(self, read_many: ReadMany) -> None:
        self.read_many = read_many
        functools.update_wrapper(self, read_many)

    def __call__(
        self,
        path: Path,
        *,
        report: ReadReport,
        rejects: RejectSink | None = None,
        keep_source: bool = False,
    ) -> Iterator[Conversation]:
        """Yield the valid conversations of one file."""
        return self.read_many([path], report=report, rejects=rejects, keep_source=keep_source)


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
    A :class:`MultiFileImporter` reads all inputs in one go; any other importer reads
    them one by one.

    Raises:
        ConfigError: ``out`` is a directory.
        TraceImportError: an input is missing, a directory or empty.
    """
    if out.is_dir():
        raise ConfigError(
            f"--out {out}: is a directory; give a file name such as {out}/traces.jsonl"
        )
    total = ReadReport(file=", ".join(str(p) for p in paths))
    with AtomicFile(out) as target:
        writer = _Writer(target.open(), rejects)
        if isinstance(importer, MultiFileImporter):
            for conv in importer.read_many(
                paths, report=total, rejects=rejects, keep_source=keep_source
            ):
                source = conv.provenance.source_file if conv.provenance else None
                writer.add(conv, total, source or total.file)
        else:
            for path in paths:
                report = ReadReport(file=str(path))
                for conv in importer(path, report=report, rejects=rejects, keep_source=keep_source):
                    writer.add(conv, report, str(path))
                total.merge(report)
        if not total.kept:
            # Nothing importable leaves an earlier output of this name as it was.
            target.abandon()
    return total


class _Writer:
    """Checks each imported conversation and writes the good ones to the output."""

    def __init__(self, out: IO[str], rejects: RejectSink | None) -> None:
        self.out = out
        self.rejects = rejects
        self.first_seen: dict[str, str] = {}

    def add(self, conv: Conversation, report: ReadReport, file: str) -> None:
        """Write ``conv``, or move it from kept to rejected in ``report`` saying why."""
        line = conv.provenance.source_line if conv.provenance else None
        empty = _empty_problem(conv)
        if empty is not None:
            self._reject(conv, report, RecordIssue(file, line or 0, "messages", empty))
            return
        for where, doubt in _doubts(conv):
            report.warn(RecordIssue(file, line or 0, where, doubt))
        if conv.id in self.first_seen:
            message = (
                f"duplicate conversation id {conv.id!r} "
                f"(first at {self.first_seen[conv.id]}); ids must be unique"
            )
            self._reject(conv, report, RecordIssue(file, line or 0, "id", message))
            return
        try:
            text = dump_line(conv)
        except (PydanticSerializationError, UnicodeEncodeError) as e:
            # Text no file can hold (a lone UTF-16 surrogate the source's JSON escaped):
            # this record is set aside, the rest go on. ASCII escapes carry the bad text
            # into the rejects file as is.
            message = (
                f"conversation {conv.id!r} holds text that is not valid "
                f"Unicode ({_first_line(e)}); fix it at the source"
            )
            raw = json.dumps(conv.model_dump(mode="json"), ensure_ascii=True)
            self._reject(conv, report, RecordIssue(file, line or 0, None, message), raw)
            return
        self.first_seen[conv.id] = f"{file}:{line}" if line else file
        self.out.write(text)
        self.out.write("\n")

    def _reject(
        self, conv: Conversation, report: ReadReport, issue: RecordIssue, raw: str | None = None
    ) -> None:
        report.kept -= 1
        failed = conv.metadata.get("failed_calls")
        report.failed_calls -= len(failed) if isinstance(failed, list) else 0
        report.reject(issue)
        if self.rejects is not None:
            text = raw if raw is not None else dump_line(conv)
            self.rejects.write(text.encode() + b"\n")


def _empty_problem(conv: Conversation) -> str | None:
    """Why a conversation holds nothing to grade, or None.

    A capture without content (its models, tokens and timing only) and a conversation
    whose every call failed still say something: they are kept, and say so themselves
    (``metadata.content_captured``, ``metadata.failed_calls``).
    """
    if conv.metadata.get("content_captured") is False or conv.metadata.get("failed_calls"):
        return None
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
