"""Format detection for ``convsim import auto``.

The format is taken from the first record that looks like one of the known formats.
Every other record is then checked too (cheaply: by a key the chosen format always has,
and fully when that key is missing); a record of another known format is rejected with
an issue naming it and the format it looks like, never read as the wrong format.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from ..datasets import ReadReport, RecordIssue, RejectSink, check_input_file, open_input
from ..errors import TraceImportError
from ..trace import Conversation
from ._base import Importer
from ._convert import MultiFileImporter
from ._grouped import file_layout
from .anthropic import read_anthropic
from .langfuse import read_langfuse
from .langsmith import read_langsmith
from .openai import read_openai
from .openinference import read_openinference
from .otel import read_otel
from .responses import read_responses
from .tau_bench import read_tau_bench

SNIFF_RECORDS = 20
"""How many leading records are looked at to choose the format."""

_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    # Span exports can be huge: a line with the format's own top-level key is taken as
    # that format without parsing it. Other formats' records are classified in full.
    "otel": (b'"resourceSpans"', b'"resource_spans"', b'"resourceLogs"', b'"resource_logs"'),
    "openinference": (b'"openinference.span.kind"',),
}
_OI_KIND = "openinference.span.kind"
_OI_MESSAGES = ("llm.input_messages.", "llm.output_messages.")
_ANTHROPIC_BLOCKS = (
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "image",
    "document",
)
_OBSERVATION_TYPES = (
    "GENERATION",
    "SPAN",
    "EVENT",
    "AGENT",
    "TOOL",
    "CHAIN",
    "RETRIEVER",
    "EVALUATOR",
)


def _readers() -> dict[str, Importer]:
    return {
        "openai": read_openai,
        "tau-bench": read_tau_bench,
        "responses": read_responses,
        "anthropic": read_anthropic,
        "otel": read_otel,
        "openinference": read_openinference,
        "langsmith": read_langsmith,
        "langfuse": read_langfuse,
    }


def _otlp_is_openinference(obj: dict[str, Any]) -> bool:
    """Whether an OTLP request holds OpenInference spans rather than OTel GenAI ones.

    Only OpenInference's own keys count: ``openinference.span.kind`` and the flattened
    ``llm.input_messages.*``/``llm.output_messages.*``. Other ``llm.*`` keys do not:
    Traceloop (OpenLLMetry) writes ``llm.request.type``, ``llm.usage.*`` and
    ``llm.request.functions.*`` next to its ``gen_ai.*`` attributes, and the otel
    reader is the one that understands those spans.
    """
    for rs in obj.get("resourceSpans") or obj.get("resource_spans") or []:
        scopes = rs.get("scopeSpans") or rs.get("scope_spans") or [] if isinstance(rs, dict) else []
        for ss in scopes if isinstance(scopes, list) else []:
            spans = ss.get("spans") if isinstance(ss, dict) else None
            for span in (spans if isinstance(spans, list) else [])[:50]:
                attrs = span.get("attributes") if isinstance(span, dict) else None
                for kv in attrs if isinstance(attrs, list) else []:
                    key = kv.get("key") if isinstance(kv, dict) else None
                    if isinstance(key, str) and _is_openinference_key(key):
                        return True
    return False


def _is_openinference_key(key: str) -> bool:
    return key == _OI_KIND or key.startswith(_OI_MESSAGES)


def _anthropic_content(messages: Any) -> bool:
    for m in messages if isinstance(messages, list) else []:
        content = m.get("content") if isinstance(m, dict) else None
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") in _ANTHROPIC_BLOCKS:
                return True
    return False


def classify(record: Any) -> str | None:
    """The format a parsed record looks like, or None when it is not recognisable."""
    if not isinstance(record, dict):
        return None
    keys = record.keys()
    if "resourceSpans" in keys or "resource_spans" in keys:
        return "openinference" if _otlp_is_openinference(record) else "otel"
    if "resourceLogs" in keys or "resource_logs" in keys:
        return "otel"  # GenAI events as log records (OpenTelemetry's own instrumentation)
    if "traj" in keys and "task_id" in keys:
        return "tau-bench"
    if "run_type" in keys or "dotted_order" in keys or isinstance(record.get("runs"), list):
        return "langsmith"
    if "key" in keys and "run_id" in keys:
        return "langsmith"
    if "observations" in keys or ("traceId" in keys and record.get("type") in _OBSERVATION_TYPES):
        return "langfuse"
    for wrapper in ("data", "spans"):
        items = record.get(wrapper)
        if isinstance(items, list) and items:
            inner = classify(items[0])
            if inner in ("langfuse", "openinference"):
                return inner
    if (
        "context" in keys
        and isinstance(record.get("context"), dict)
        and "span_id" in record["context"]
    ):
        return "openinference"
    if any(isinstance(k, str) and k.startswith("context.span_id") for k in keys):
        return "openinference"
    if record.get("object") == "response" or "previous_response_id" in keys:
        return "responses"
    if record.get("type") == "message" and record.get("role") == "assistant":
        return "anthropic"
    if "request" in keys or "response" in keys:
        response = record.get("response")
        request = record.get("request")
        if isinstance(response, dict) and (
            "output" in response or response.get("object") == "response"
        ):
            return "responses"
        if isinstance(request, dict) and "input" in request:
            return "responses"
        if isinstance(response, dict) and (
            response.get("type") == "message" or "stop_reason" in response
        ):
            return "anthropic"
        if isinstance(request, dict) and "messages" in request:
            return (
                "anthropic"
                if "system" in request or _anthropic_content(request["messages"])
                else None
            )
        return None
    if "input" in keys and isinstance(record.get("output"), list):
        return "responses"
    if isinstance(record.get("messages"), list):
        if "system" in keys or "max_tokens" in keys or _anthropic_content(record["messages"]):
            return "anthropic"
        return "openai"
    return None


def _iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open_input(path) as f:
        yield from enumerate(f, start=1)


def _load_whole(path: Path) -> Any:
    with open_input(path) as f:
        try:
            return json.loads(f.read().decode("utf-8-sig"))
        except (ValueError, RecursionError, UnicodeDecodeError):
            return None


def _is_message_list(records: list[Any]) -> bool:
    return bool(records) and all(isinstance(r, dict) and "role" in r for r in records)


def detect_format(path: Path) -> tuple[str, int]:
    """(format name, record number it was detected from) for a file.

    Raises:
        TraceImportError: the file is unreadable or its first records match no format.
    """
    check_input_file(path)
    layout = file_layout(path)
    tried = 0
    if layout != "jsonl":
        whole = _load_whole(path)
        if isinstance(whole, list):
            if _is_message_list(whole):
                return "openai", 1
            for number, record in enumerate(whole[:SNIFF_RECORDS], start=1):
                tried += 1
                fmt = classify(record)
                if fmt is not None:
                    return fmt, number
        else:
            tried = 1
            fmt = classify(whole)
            if fmt is not None:
                return fmt, 1
    else:
        for number, line in _iter_lines(path):
            if not line.strip():
                continue
            tried += 1
            try:
                record = json.loads(line.decode("utf-8-sig"))
            except (ValueError, RecursionError, UnicodeDecodeError):
                record = None
            fmt = classify(record)
            if fmt is not None:
                return fmt, number
            if tried >= SNIFF_RECORDS:
                break
    names = ", ".join(_readers())
    raise TraceImportError(
        f"{path}: cannot tell the trace format from the first {tried} record(s); "
        f"name it instead of auto (one of: {names})"
    )


def _mismatch(fmt: str, line: bytes) -> str | None:
    if any(sig in line for sig in _SIGNATURES.get(fmt, ())):
        return None
    try:
        record = json.loads(line.decode("utf-8-sig"))
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None  # the importer reports unreadable lines itself
    other = classify(record)
    return other if other is not None and other != fmt else None


def read_auto_files(
    paths: Sequence[Path],
    *,
    report: ReadReport,
    rejects: RejectSink | None = None,
    keep_source: bool = False,
) -> Iterator[Conversation]:
    """Detect the format of each file from its first records and import it.

    Records of another known format are rejected (one issue each, naming the format they
    look like); the rest are read by the detected format's importer. Files of one format
    whose importer joins records across files (LangSmith runs and their feedback) are
    read together when none of them holds records of another format.

    Raises:
        TraceImportError: the format of a file cannot be detected.
    """
    detected = [detect_format(path) for path in paths]
    together = _read_together(paths, [fmt for fmt, _ in detected])
    grouped = {j for group in together.values() for j in group}
    for i, path in enumerate(paths):
        group = together.get(i)
        if group is not None:
            reader = cast(MultiFileImporter, _readers()[detected[i][0]])
            yield from reader.read_many(
                [paths[j] for j in group], report=report, rejects=rejects, keep_source=keep_source
            )
        elif i not in grouped:
            fmt, first = detected[i]
            yield from _read_one(
                path, fmt, first, report=report, rejects=rejects, keep_source=keep_source
            )


read_auto = MultiFileImporter(read_auto_files)
"""Detect the format of a file and import it; see :func:`read_auto_files`."""


def _read_together(paths: Sequence[Path], formats: list[str]) -> dict[int, list[int]]:
    """Files to read as one input: {index of the first: indexes of all}, by format."""
    by_format: dict[str, list[int]] = {}
    for i, fmt in enumerate(formats):
        if isinstance(_readers()[fmt], MultiFileImporter):
            by_format.setdefault(fmt, []).append(i)
    out: dict[int, list[int]] = {}
    for fmt, indexes in by_format.items():
        # A file with records of another format must be filtered first, which only a
        # file on its own can be: such files are read one by one.
        if len(indexes) > 1 and not any(_foreign(paths[i], fmt).bad for i in indexes):
            out[indexes[0]] = indexes
    return out


@dataclasses.dataclass(slots=True)
class _Foreign:
    """Records of a file that look like another format than the one detected."""

    in_array: bool
    bad: dict[int, str] = dataclasses.field(default_factory=dict[int, str])
    """Record number: the format it looks like."""
    texts: dict[int, bytes] = dataclasses.field(default_factory=dict[int, bytes])
    """JSON array records only: the text of each bad record, for the rejects file."""
    lines: list[bytes] | None = None
    """JSON array records only: one JSONL line per record, blank for the bad ones."""


def _foreign(path: Path, fmt: str) -> _Foreign:
    layout = file_layout(path)
    found = _Foreign(in_array=layout == "array")
    if found.in_array:
        whole = _load_whole(path)
        records = whole if isinstance(whole, list) else []
        if not _is_message_list(records):
            found.lines = []
            for number, record in enumerate(records, start=1):
                other = classify(record)
                text = json.dumps(record, ensure_ascii=False).encode() + b"\n"
                if other is not None and other != fmt:
                    found.bad[number] = other
                    found.texts[number] = text
                    found.lines.append(b"\n")
                else:
                    found.lines.append(text)
    elif layout == "jsonl":
        for number, line in _iter_lines(path):
            if line.strip():
                other = _mismatch(fmt, line)
                if other is not None:
                    found.bad[number] = other
    return found


def _read_one(
    path: Path,
    fmt: str,
    first: int,
    *,
    report: ReadReport,
    rejects: RejectSink | None,
    keep_source: bool,
) -> Iterator[Conversation]:
    reader = _readers()[fmt]
    found = _foreign(path, fmt)
    in_array = found.in_array
    where = f"record {first}" if in_array else f"line {first}"
    for number, other in found.bad.items():
        if rejects is not None and number in found.texts:
            rejects.write(found.texts[number])
        report.read += 1
        report.reject(
            RecordIssue(
                str(path),
                number,
                None,
                f"looks like {other}, but the file was read as {fmt} (detected from {where}); "
                f"import these records separately with format {other}",
                in_array=in_array,
            )
        )
    if not found.bad:
        yield from reader(path, report=report, rejects=rejects, keep_source=keep_source)
        return
    yield from _read_filtered(
        path,
        reader,
        found.bad,
        found.lines,
        in_array,
        report=report,
        rejects=rejects,
        keep_source=keep_source,
    )


def _read_filtered(
    path: Path,
    reader: Importer,
    bad: dict[int, str],
    lines: list[bytes] | None,
    in_array: bool,
    *,
    report: ReadReport,
    rejects: RejectSink | None,
    keep_source: bool,
) -> Iterator[Conversation]:
    # Blank lines keep every other record's line number; the temporary file's name is
    # replaced by the real one in issues and provenance.
    fd, tmp_name = tempfile.mkstemp(suffix=".jsonl", prefix="convsim-auto-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            if lines is not None:
                out.writelines(lines)
            else:
                for number, line in _iter_lines(path):
                    if number in bad:
                        if rejects is not None:
                            rejects.write(line if line.endswith(b"\n") else line + b"\n")
                        out.write(b"\n")
                    else:
                        out.write(line if line.endswith(b"\n") else line + b"\n")
        inner = ReadReport(file=str(path))
        fix: Callable[[RecordIssue], RecordIssue] = lambda i: dataclasses.replace(  # noqa: E731
            i, file=str(path), in_array=in_array
        )
        for conv in reader(tmp, report=inner, rejects=rejects, keep_source=keep_source):
            if conv.provenance is not None:
                conv.provenance.source_file = str(path)
            yield conv
        inner.issues = [fix(i) for i in inner.issues]
        inner.notes = [fix(i) for i in inner.notes]
        report.merge(inner)
    finally:
        tmp.unlink(missing_ok=True)
