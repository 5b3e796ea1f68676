"""Streaming JSONL reading and writing with per-line error reports.

A bad line never stops a read: it is reported as ``file:line: field: problem``, copied
verbatim to the rejects file when one is given, and the reader moves on. The counts
always add up: ``read == kept + rejected``.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from ..errors import TraceImportError

T = TypeVar("T")

DEFAULT_MAX_LINE_BYTES = 32 * 1024 * 1024
"""Lines longer than this are rejected without being held in memory whole."""

LINE_LIMIT_ENV = "CONVSIM_MAX_LINE_BYTES"
"""Environment variable that raises (or lowers) the line limit of every reader."""


def line_limit(default: int = DEFAULT_MAX_LINE_BYTES) -> int:
    """The line limit: ``CONVSIM_MAX_LINE_BYTES`` when set, else ``default``.

    An environment variable rather than an option on each command: every command reads
    JSONL, some through several readers, and one knob should reach them all.
    """
    raw = os.environ.get(LINE_LIMIT_ENV, "").strip()
    if not raw:
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise TraceImportError(
            f"{LINE_LIMIT_ENV}={raw!r} is not a number of bytes: set it to a positive "
            "integer such as 134217728 (128 MiB)"
        )
    return value


MAX_KEPT_ISSUES = 1000
"""Issues kept in a report; later ones are counted, not stored."""

_BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 20


class RejectSink(Protocol):
    """Where rejected records are copied: any binary writer."""

    def write(self, data: bytes, /) -> object:
        """Write raw bytes."""
        ...


def open_input(path: Path) -> gzip.GzipFile | io.BufferedReader:
    """Open an input file for binary reading, decompressing ``.gz`` files transparently."""
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return path.open("rb")


class RecordError(Exception):
    """Raised by a record parser to reject one record, naming the offending field."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class RecordIssue:
    """One problem with one input record."""

    file: str
    """File the record came from."""
    line: int
    """1-based line (or record) number."""
    field: str | None
    """Dotted path of the offending field, when one can be named."""
    message: str
    """What is wrong, and where possible how to fix it."""
    in_array: bool = False
    """True when ``line`` counts records of a JSON array rather than lines."""
    lost: bool = False
    """For a note on a kept record: something of it was not kept anywhere (the record is
    lossy). Notes about what was kept verbatim or set aside are not losses."""

    def __str__(self) -> str:
        where = f"{self.file}: record {self.line}" if self.in_array else f"{self.file}:{self.line}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


@dataclass(slots=True)
class ReadReport:
    """Counts and issues from reading one input."""

    file: str
    """The input file."""
    read: int = 0
    """Records seen (blank lines are not records)."""
    kept: int = 0
    """Records that parsed and validated."""
    rejected: int = 0
    """Records set aside."""
    issues: list[RecordIssue] = field(default_factory=list[RecordIssue])
    """The first :data:`MAX_KEPT_ISSUES` problems."""
    lossy: int = 0
    """Kept records that lost something: a note says what was not kept anywhere (fields
    kept verbatim in metadata, or branches set aside, are not losses)."""
    notes: list[RecordIssue] = field(default_factory=list[RecordIssue])
    """The first :data:`MAX_KEPT_ISSUES` non-fatal issues of kept records (see ``lossy``)."""
    failed_calls: int = 0
    """Model calls that failed (no answer) in kept conversations, each kept in the
    conversation's ``metadata.failed_calls``."""

    def reject(self, issue: RecordIssue) -> None:
        """Count a rejected record and keep its issue."""
        self.rejected += 1
        if len(self.issues) < MAX_KEPT_ISSUES:
            self.issues.append(issue)

    def keep_noted(self, notes: list[RecordIssue]) -> None:
        """Record the notes of one kept record; counts it as lossy when one is a loss.

        The record itself is counted in ``kept`` by the caller, as for any kept record.
        """
        if not notes:
            return
        self.lossy += any(n.lost for n in notes)
        room = MAX_KEPT_ISSUES - len(self.notes)
        self.notes.extend(notes[: max(room, 0)])

    def warn(self, issue: RecordIssue) -> None:
        """Note something doubtful about a kept record (it stays kept, and not lossy)."""
        if len(self.notes) < MAX_KEPT_ISSUES:
            self.notes.append(issue)

    def merge(self, other: ReadReport) -> None:
        """Add another report's counts, issues and notes to this one."""
        self.read += other.read
        self.kept += other.kept
        self.rejected += other.rejected
        self.lossy += other.lossy
        self.failed_calls += other.failed_calls
        room = MAX_KEPT_ISSUES - len(self.issues)
        self.issues.extend(other.issues[: max(room, 0)])
        room = MAX_KEPT_ISSUES - len(self.notes)
        self.notes.extend(other.notes[: max(room, 0)])


def check_input_file(path: Path) -> None:
    """Raise :class:`TraceImportError` unless ``path`` is a readable, non-empty file."""
    if not path.exists():
        raise TraceImportError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise TraceImportError(f"{path}: is a directory; pass the files inside it instead")
    if path.stat().st_size == 0:
        raise TraceImportError(f"{path}: the file is empty; nothing to read")


def describe_parse_error(err: Exception) -> tuple[str | None, str]:
    """Explain why a record could not be parsed: (field path or None, message).

    Errors that are not about the record's content (bugs) are re-raised.
    """
    if isinstance(err, RecordError):
        return err.field, err.message
    if isinstance(err, ValidationError):
        return describe_validation_error(err)
    if isinstance(err, json.JSONDecodeError):
        return None, f"invalid JSON ({err.msg} at column {err.colno}); is the line truncated?"
    if isinstance(err, RecursionError):
        return None, "JSON nested too deeply to read"
    if isinstance(err, ValueError):  # documented as a way for parsers to reject a record
        return None, str(err)
    raise err


_UNION_TAGS = {"system", "user", "assistant", "tool", "text", "media", "reasoning", "other"}


def _without_tags(loc: tuple[int | str, ...]) -> list[int | str]:
    # pydantic puts the discriminator value of a tagged union into the path
    # (messages.0.user.content); users know the field as messages.0.content.
    out: list[int | str] = []
    for item in loc:
        if item in _UNION_TAGS and out and isinstance(out[-1], int):
            continue
        out.append(item)
    return out


def describe_validation_error(err: ValidationError, limit: int = 3) -> tuple[str | None, str]:
    """Turn a pydantic error into (dotted field path of the first error, message)."""
    details = err.errors(include_url=False)
    first_field: str | None = None
    parts: list[str] = []
    for d in details[:limit]:
        loc = ".".join(str(x) for x in _without_tags(d["loc"]))
        if first_field is None and loc:
            first_field = loc
        msg = d["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc and loc != first_field else msg)
    if len(details) > limit:
        parts.append(f"... and {len(details) - limit} more errors")
    return first_field, "; ".join(parts)


class JsonlReader(Generic[T]):
    """Iterate over the valid records of a JSONL file, one line at a time.

    Memory does not grow with the file: lines are read one by one, and a line longer
    than ``max_line_bytes`` is streamed to the rejects file instead of being held.

    Args:
        path: The JSONL file.
        parse: A pydantic ``TypeAdapter``, or a function from one line's text to a record
            that raises :class:`RecordError`, ``ValidationError`` or ``ValueError``.
        rejects: Binary file that receives every rejected line verbatim.
        max_line_bytes: Longest line accepted (default: :func:`line_limit`).
        report: Report to add counts and issues to (a new one by default).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        parse: TypeAdapter[T] | Callable[[str], T],
        *,
        rejects: RejectSink | None = None,
        max_line_bytes: int | None = None,
        report: ReadReport | None = None,
    ) -> None:
        self.path = Path(path)
        self.parse: Callable[[str], T] = (
            parse.validate_json if isinstance(parse, TypeAdapter) else parse
        )
        self.rejects = rejects
        self.max_line_bytes = max_line_bytes if max_line_bytes is not None else line_limit()
        self.report = report if report is not None else ReadReport(file=str(self.path))
        self.line = 0
        """Number of the line being parsed, for parsers that need it."""

    def __iter__(self) -> Iterator[T]:
        check_input_file(self.path)
        name = str(self.path)
        with open_input(self.path) as f:
            lineno = 0
            while True:
                raw = f.readline(self.max_line_bytes + 1)
                if not raw:
                    break
                lineno += 1
                self.line = lineno
                if len(raw) > self.max_line_bytes and not raw.endswith(b"\n"):
                    self.report.read += 1
                    size = self._skip_long_line(f, raw)
                    self.report.reject(
                        RecordIssue(
                            name,
                            lineno,
                            None,
                            f"line is {size:,} bytes, over the {self.max_line_bytes:,}-byte "
                            f"limit; if the record is real, raise the limit with {LINE_LIMIT_ENV}",
                        )
                    )
                    continue
                if lineno == 1 and raw.startswith(_BOM):
                    raw = raw[len(_BOM) :]
                body = raw.rstrip(b"\r\n")
                if not body.strip():
                    continue
                self.report.read += 1
                record = self._parse(name, lineno, body, raw)
                if record is not None:
                    self.report.kept += 1
                    yield record

    def _parse(self, name: str, lineno: int, body: bytes, raw: bytes) -> T | None:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            self._set_aside(raw)
            self.report.reject(
                RecordIssue(
                    name, lineno, None, f"invalid UTF-8 at byte {e.start}; re-encode as UTF-8"
                )
            )
            return None
        try:
            return self.parse(text)
        except Exception as e:
            fld, msg = describe_parse_error(e)  # re-raises anything that is a bug, not bad input
            self._set_aside(raw)
            self.report.reject(RecordIssue(name, lineno, fld, msg))
            return None

    def _set_aside(self, raw: bytes) -> None:
        if self.rejects is not None:
            self.rejects.write(raw if raw.endswith(b"\n") else raw + b"\n")

    def _skip_long_line(self, f: gzip.GzipFile | io.BufferedReader, head: bytes) -> int:
        size = len(head)
        self._set_aside_chunk(head)
        while not head.endswith(b"\n"):
            head = f.readline(_CHUNK)
            if not head:
                self._set_aside_chunk(b"\n")
                break
            size += len(head)
            self._set_aside_chunk(head)
        return size

    def _set_aside_chunk(self, chunk: bytes) -> None:
        if self.rejects is not None:
            self.rejects.write(chunk)


def write_jsonl(path: str | os.PathLike[str], records: Iterable[BaseModel]) -> int:
    """Write records as compact JSONL (empty fields omitted); return how many were written."""
    n = 0
    with Path(path).open("wb") as f:
        for r in records:
            f.write(dump_line(r).encode())
            f.write(b"\n")
            n += 1
    return n


def dump_line(record: BaseModel) -> str:
    """One record as the JSONL line :func:`write_jsonl` would write (without the newline)."""
    return record.model_dump_json(exclude_none=True)
