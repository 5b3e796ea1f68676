"""Shared plumbing for format readers: JSON arrays, single objects and JSONL alike."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ..datasets import (
    DEFAULT_MAX_LINE_BYTES,
    JsonlReader,
    ReadReport,
    RecordError,
    RecordIssue,
    RejectSink,
    check_input_file,
    describe_parse_error,
    open_input,
)
from ..errors import TraceImportError
from ..trace import Conversation, Part, TextPart

T = TypeVar("T")

_WS = " \t\r\n"


class Importer(Protocol):
    """Reads one source format into canonical conversations.

    Implementations never raise on a bad record: they add a :class:`RecordIssue` to the
    report, write the record to ``rejects`` and go on with the next one.
    """

    def __call__(
        self,
        path: Path,
        *,
        report: ReadReport,
        rejects: RejectSink | None = None,
        keep_source: bool = False,
    ) -> Iterator[Conversation]:
        """Yield the valid conversations in ``path``."""
        ...


def content_id(prefix: str, payload: Any) -> str:
    """A stable id derived from content, for sources that carry no conversation id."""
    digest = hashlib.sha256(
        json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()
    return f"{prefix}-{digest[:16]}"


def content_fields(parts: list[Part]) -> dict[str, Any]:
    """Message fields for converted parts: ``content`` for a lone text part, else ``parts``.

    No parts give no fields.
    """
    if not parts:
        return {}
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        return {"content": parts[0].text}
    return {"parts": parts}


def expect_dict(value: Any, field: str) -> dict[str, Any]:
    """Return ``value`` if it is a JSON object, else reject the record naming ``field``."""
    if not isinstance(value, dict):
        raise RecordError(field, f"expected an object, got {type(value).__name__}")
    return value


def expect_list(value: Any, field: str) -> list[Any]:
    """Return ``value`` if it is a JSON array, else reject the record naming ``field``."""
    if not isinstance(value, list):
        raise RecordError(field, f"expected a list, got {type(value).__name__}")
    return value


def read_json_records(
    path: Path,
    convert: Callable[[Any, int], T],
    *,
    report: ReadReport,
    rejects: RejectSink | None = None,
    max_line_bytes: int | None = None,
    regroup: Callable[[list[Any]], list[Any]] | None = None,
) -> Iterator[T]:
    """Yield ``convert(record, number)`` for each record of a JSON array, object or JSONL file.

    A JSON array is read element by element, so a truncated file still yields every
    complete record before the cut. Anything else is read as JSONL, unless the whole file
    is one multi-line JSON object. ``number`` is the 1-based line or array position.
    ``regroup`` may merge the elements of a JSON array before conversion, for formats
    where a top-level array can also be one record (a bare message list).
    """
    check_input_file(path)
    with open_input(path) as f:
        head = f.read(4096).removeprefix(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"[") and not _jsonl_of_arrays(path):
        yield from _read_array(path, convert, report=report, rejects=rejects, regroup=regroup)
        return
    single = _single_object(path, head)
    if single is not None:
        yield from _convert_all([single], path, convert, report, rejects)
        return

    def parse(text: str) -> T:
        return convert(json.loads(text), reader.line)

    reader = JsonlReader(path, parse, rejects=rejects, max_line_bytes=max_line_bytes, report=report)
    yield from reader


def _single_object(path: Path, head: bytes) -> Any:
    """The file's one JSON object when it is pretty-printed over many lines, else None.

    The whole first line is read (not just the first block), so JSONL whose lines are
    long is recognised as JSONL without loading the file.
    """
    if not head.startswith(b"{"):
        return None
    with open_input(path) as f:
        first_line = f.readline(DEFAULT_MAX_LINE_BYTES)
    try:
        json.loads(first_line.removeprefix(b"\xef\xbb\xbf"))
        return None
    except (ValueError, RecursionError):
        pass
    try:
        with open_input(path) as f:
            return json.loads(f.read().decode("utf-8-sig"))
    except (ValueError, RecursionError):
        return None


def _read_array(
    path: Path,
    convert: Callable[[Any, int], T],
    *,
    report: ReadReport,
    rejects: RejectSink | None,
    regroup: Callable[[list[Any]], list[Any]] | None,
) -> Iterator[T]:
    try:
        with open_input(path) as f:
            text = f.read().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise TraceImportError(
            f"{path}: invalid UTF-8 at byte {e.start}; re-encode the file as UTF-8"
        ) from None
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    number = 0
    records: list[Any] = []
    # Elements that could not be read, kept until the end: if the array turns out to be
    # one bare message list, a broken message breaks the whole conversation.
    broken: list[tuple[int, str, str]] = []
    while True:
        pos = _skip_ws(text, pos)
        if pos >= len(text):
            broken.append((number + 1, "file ends inside the array; it looks truncated", ""))
            break
        if text[pos] == "]":
            break
        try:
            record, pos = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError) as e:
            _, msg = describe_parse_error(e)
            end = _value_end(text, pos)
            number += 1
            broken.append((number, msg, text[pos : end if end is not None else len(text)]))
            if end is None:
                break
            pos = end
        else:
            number += 1
            records.append(record)
        pos = _skip_ws(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos += 1
    merged = regroup(records) if regroup is not None else records
    if broken and regroup is not None and len(merged) == 1 and merged[0] is records:
        # One conversation whose messages are the elements: a broken message makes the
        # whole conversation unreadable, never a shorter one.
        report.read += 1
        first = broken[0]
        report.reject(
            RecordIssue(
                str(path),
                1,
                f"messages.{first[0] - 1}",
                f"{first[1]}; the whole message list is set aside",
                in_array=True,
            )
        )
        if rejects is not None:
            rejects.write(text.encode() + b"\n")
        return
    for index, msg, raw in broken:
        report.read += 1
        report.reject(RecordIssue(str(path), index, None, msg, in_array=True))
        if rejects is not None and raw:
            rejects.write(raw.encode() + b"\n")
    yield from _convert_all(merged, path, convert, report, rejects, in_array=True)


def _value_end(text: str, pos: int) -> int | None:
    """Where the JSON value starting at ``pos`` ends, without parsing it.

    Brackets are counted and strings skipped, so a value nested too deeply for the JSON
    parser can still be stepped over and the elements after it read. None when the text
    ends inside the value.
    """
    depth = 0
    i = pos
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            if depth == 0:
                return i
            continue
        if c in "[{":
            depth += 1
        elif c in "]}":
            if depth == 0:
                return i
            depth -= 1
            if depth == 0:
                return i + 1
        elif c == "," and depth == 0:
            return i
        i += 1
    return None


def _jsonl_of_arrays(path: Path) -> bool:
    """Whether a file that starts with ``[`` is JSONL whose lines are arrays.

    A bare message list per line reads as JSONL when its first line is one whole value
    and more follows on later lines; otherwise the file is one JSON array.
    """
    with open_input(path) as f:
        first = f.readline(DEFAULT_MAX_LINE_BYTES).decode("utf-8-sig", errors="replace")
        more = f.read(4096).strip()
    body = first.strip()
    end = _value_end(body, 0)
    return bool(more) and end is not None and end == len(body)


def _convert_all(
    records: list[Any],
    path: Path,
    convert: Callable[[Any, int], T],
    report: ReadReport,
    rejects: RejectSink | None,
    *,
    in_array: bool = False,
) -> Iterator[T]:
    for number, record in enumerate(records, start=1):
        report.read += 1
        try:
            converted = convert(record, number)
        except Exception as e:
            fld, msg = describe_parse_error(e)
            report.reject(RecordIssue(str(path), number, fld, msg, in_array=in_array))
            if rejects is not None:
                rejects.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
            continue
        report.kept += 1
        yield converted


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WS:
        pos += 1
    return pos
