"""OpenTelemetry GenAI traces as OTLP JSON, to and from canonical conversations.

Input: OTLP JSON ``ExportTraceServiceRequest`` objects (``resourceSpans`` →
``scopeSpans`` → ``spans``), one per JSONL line (the streaming form, read with bounded
memory), a JSON array of them, or one JSON document. Ids may be hex or base64; times are
``*UnixNano`` strings or numbers; attribute values are OTLP ``AnyValue`` objects.

What is read:

* chat spans (``gen_ai.operation.name`` ``chat``/``generate_content``/``text_completion``)
  with ``gen_ai.input.messages``/``gen_ai.output.messages`` (JSON strings or structured)
  and ``gen_ai.system_instructions``; older emitters' per-message span events
  (``gen_ai.user.message`` ..., ``gen_ai.choice``) and OpenLLMetry's flattened
  ``gen_ai.prompt.N.*``/``gen_ai.completion.N.*`` attributes;
* ``execute_tool`` spans, attached to their call by ``gen_ai.tool.call.id``: they add the
  result (when no later chat span re-sent it), ``is_error`` from the span status, and
  timing;
* agent spans (``invoke_agent``): their messages extend the conversation when they
  continue it (this is how trailing user messages are exported);
* ``gen_ai.evaluation.result`` span events, as scores.

Spans are grouped into conversations by ``gen_ai.conversation.id``, else ``session.id``,
else the trace id. Every chat span re-sends the history, so each conversation is rebuilt
from its span tree in start-time order, repeated history is matched and dropped, and a
history that diverges (an edit or a regenerated answer) is kept in
``metadata["branches"]`` and reported. Timing gives assistant ``timestamp`` (span end)
and ``latency_ms``; usage attributes give :class:`~convsim.trace.Usage`.

Output: :func:`to_otel_request` writes one trace per conversation: an ``invoke_agent``
root span, one ``chat`` span per assistant message (its history as input, the message as
output), one ``execute_tool`` span per tool result, and scores as
``gen_ai.evaluation.result`` events.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from pydantic import JsonValue, ValidationError

from ..datasets import ReadReport, RecordError, RejectSink
from ..trace import (
    AssistantMessage,
    Conversation,
    MediaPart,
    Message,
    OtherPart,
    Part,
    Provenance,
    ReasoningPart,
    Score,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolDefinition,
    ToolMessage,
    Usage,
    UserMessage,
    UserSignals,
)
from ._base import content_fields, expect_dict, expect_list
from ._convert import MultiFileImporter
from ._grouped import (
    NOT_KEPT,
    Group,
    History,
    Note,
    Origin,
    Piece,
    Problem,
    SourceError,
    ToolRun,
    attach_tool_runs,
    check_links,
    count,
    datetime_to_nanos,
    json_safe,
    merge_metadata,
    money,
    nanos_to_datetime,
    read_grouped,
    text_of,
)
from ._otel_logs import (
    DETAILS_EVENT,
    MESSAGE_EVENTS,
    LogEvent,
    LogRecord,
    as_span_event,
    decode_log,
    rewrap_logs,
    split_logs,
)
from ._tools import merge_tools, tool_definition

FORMAT = "otel"

CHAT_OPERATIONS = (
    "chat",
    "generate_content",
    "text_completion",
    "completion",
)
AGENT_OPERATIONS = (
    "invoke_agent",
    "invoke_workflow",
    "create_agent",
)
_HINTS = {
    "gen_ai.conversation.id": 0,
    "session.id": 1,
    # Traceloop (OpenLLMetry) keeps the app's session in an association property; one
    # trace may hold several sessions (a batch workflow), so the trace id is no key.
    "traceloop.association.properties.session_id": 2,
}
_ASSOCIATION = "traceloop.association.properties."
_ENTITY_KINDS = ("workflow", "task", "agent")
_STATUS_ERROR = (2, "STATUS_CODE_ERROR")
_HEX = re.compile(r"[0-9a-fA-F]+")
_INDEXED = re.compile(r"gen_ai\.(prompt|completion)\.(\d+)\.(.+)")
_FUNCTION = re.compile(r"llm\.request\.functions\.(\d+)\.(name|description|parameters)")

_LEGACY_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.developer.message": "developer",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}

# Attributes of chat spans with a canonical home; everything else is kept verbatim in
# the assistant message's metadata["otel.attributes"].
_CHAT_MAPPED = frozenset(
    {
        "gen_ai.operation.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.response.id",
        "gen_ai.response.finish_reasons",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.prompt_tokens",
        "gen_ai.usage.completion_tokens",
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.usage.cost",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.conversation.id",
        "session.id",
        "gen_ai.tool.definitions",
        "error.type",
    }
)
_TOOL_MAPPED = frozenset(
    {
        "gen_ai.operation.name",
        "gen_ai.tool.name",
        "gen_ai.tool.call.id",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.conversation.id",
        "session.id",
        "error.type",
    }
)
_AGENT_MAPPED = frozenset(
    {
        "gen_ai.operation.name",
        "gen_ai.conversation.id",
        "session.id",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "convsim.tags",
        "convsim.metadata",
        "convsim.signals",
    }
)
_MESSAGE_KEYS = frozenset({"role", "parts", "name", "finish_reason"})
_PART_KEYS = {
    "text": {"type", "content"},
    "reasoning": {"type", "content", "signature", "redacted"},
    "tool_call": {"type", "id", "name", "arguments"},
    "tool_call_response": {"type", "id", "response", "result"},
    "blob": {"type", "modality", "mime_type", "content"},
    "uri": {"type", "modality", "mime_type", "uri"},
    "file": {"type", "modality", "mime_type", "file_id", "uri"},
}
_MODALITIES = ("image", "audio", "video", "file")
_SCORE_KINDS = ("binary", "ordinal", "continuous", "categorical")
_SCORE_SOURCES = ("rule", "model", "human", "user")


# --------------------------------------------------------------------------------------
# Reading


def read_otel_files(
    paths: Sequence[Path],
    *,
    report: ReadReport,
    rejects: RejectSink | None = None,
    keep_source: bool = False,
) -> Iterator[Conversation]:
    """Yield the conversations in OTLP JSON trace and log exports (see the module docstring).

    The files are read as one input, so log records join the spans they describe
    whichever file holds them and in whatever order the files are given.
    """
    yield from read_grouped(
        list(paths), OtelFormat(), report=report, rejects=rejects, keep_source=keep_source
    )


read_otel = MultiFileImporter(read_otel_files)
"""Yield the conversations of OTLP JSON traces (and logs); see :func:`read_otel_files`."""


def normalize_id(value: Any, size: int) -> str | None:
    """A trace (16-byte) or span (8-byte) id as lowercase hex; base64 ids are converted.

    Other non-empty strings are kept as they are; anything else gives None.
    """
    if not isinstance(value, str) or not value:
        return None
    if len(value) == 2 * size and _HEX.fullmatch(value):
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value
    return raw.hex() if len(raw) == size else value


def any_value(value: Any, where: str) -> Any:
    """Decode one OTLP JSON ``AnyValue`` into plain Python."""
    v = expect_dict(value, where)
    for key, alt in (("stringValue", "string_value"), ("boolValue", "bool_value")):
        if key in v or alt in v:
            return v.get(key, v.get(alt))
    if "intValue" in v or "int_value" in v:
        raw = v.get("intValue", v.get("int_value"))
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise RecordError(where, f"intValue must be an integer, got {raw!r}")
        try:
            return int(raw)
        except ValueError:
            raise RecordError(where, f"intValue must be an integer, got {raw!r}") from None
    if "doubleValue" in v or "double_value" in v:
        raw = v.get("doubleValue", v.get("double_value"))
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise RecordError(where, f"doubleValue must be a number, got {raw!r}")
        try:
            return json_safe(float(raw))
        except ValueError:
            raise RecordError(where, f"doubleValue must be a number, got {raw!r}") from None
    if "arrayValue" in v or "array_value" in v:
        arr = expect_dict(v.get("arrayValue", v.get("array_value")), f"{where}.arrayValue")
        values = expect_list(arr.get("values", []), f"{where}.arrayValue.values")
        return [any_value(x, f"{where}.arrayValue.values.{i}") for i, x in enumerate(values)]
    if "kvlistValue" in v or "kvlist_value" in v:
        kv = expect_dict(v.get("kvlistValue", v.get("kvlist_value")), f"{where}.kvlistValue")
        return attributes(kv.get("values", []), f"{where}.kvlistValue.values")
    if "bytesValue" in v or "bytes_value" in v:
        return v.get("bytesValue", v.get("bytes_value"))
    return None


def attributes(raw: Any, where: str) -> dict[str, Any]:
    """Decode an OTLP attribute list ``[{key, value}]`` into a dict (last key wins)."""
    if raw is None:
        return {}
    items = expect_list(raw, where)
    out: dict[str, Any] = {}
    for i, item in enumerate(items):
        kv = expect_dict(item, f"{where}.{i}")
        key = kv.get("key")
        if not isinstance(key, str):
            raise RecordError(f"{where}.{i}.key", "an attribute needs a string key")
        value = kv.get("value", {})
        if type(value) is dict and len(value) == 1:  # fast path for the common scalars
            text = value.get("stringValue")
            if type(text) is str:
                out[key] = text
                continue
        out[key] = any_value(value, f"{where}[{key}]")
    return out


def event_attributes(event: dict[str, Any], where: str) -> dict[str, Any]:
    """A span event's attributes as a dict; log records arrive already decoded."""
    if isinstance(event, LogEvent) and event.decoded is not None:
        return event.decoded
    return attributes(event.get("attributes"), where)


def _hint(attrs: Any) -> tuple[int, str, str] | None:
    if not isinstance(attrs, list):
        return None
    best: tuple[int, str, str] | None = None
    for kv in attrs:
        if not isinstance(kv, dict):
            continue
        key = kv.get("key")
        prio = _HINTS.get(key) if isinstance(key, str) else None
        if prio is None or (best is not None and best[0] <= prio):
            continue
        val = kv.get("value")
        text = val.get("stringValue", val.get("string_value")) if isinstance(val, dict) else None
        if isinstance(text, str) and text:
            best = (prio, cast(str, key), text)
    return best


def nanos(value: Any) -> int | None:
    """A ``*UnixNano`` value (string or number) as an int; None when unset, 0 or invalid."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value or None
    if isinstance(value, str) and value.isdigit():
        return int(value) or None
    return None


_TIMED = (
    ("resourceSpans", "scopeSpans", "spans", ("startTimeUnixNano",)),
    ("resourceLogs", "scopeLogs", "logRecords", ("timeUnixNano", "observedTimeUnixNano")),
)
"""Where :meth:`OtelFormat.order_key` looks for times (the collector's camelCase form)."""


@dataclass(slots=True)
class _Span:
    piece: Piece
    trace: str
    span_id: str
    parent: str | None
    name: str
    start: int | None
    end: int | None
    attrs: dict[str, Any]
    events: list[Any]
    error: bool
    status_message: str | None
    order: int
    children: list[_Span] = field(default_factory=list["_Span"])

    @property
    def label(self) -> str:
        return f"span {self.span_id}"

    def field(self, name: str) -> str:
        return f"{self.piece.where}.attributes[{name}]"


def _wrap(rs: dict[str, Any], ss: dict[str, Any], spans: list[Any]) -> dict[str, Any]:
    scope: dict[str, Any] = {"spans": spans}
    if isinstance(ss.get("scope"), dict):
        scope["scope"] = ss["scope"]
    res: dict[str, Any] = {"scopeSpans": [scope]}
    if isinstance(rs.get("resource"), dict):
        res["resource"] = rs["resource"]
    return {"resourceSpans": [res]}


class OtelFormat:
    """Splitting and building rules for OTLP JSON traces (see :mod:`._grouped`)."""

    name = FORMAT
    default_key = "trace_id"

    def split(self, record: Any, number: int, problems: list[Problem]) -> list[Piece]:
        """Cut an OTLP export into one piece per span or log record."""
        obj = expect_dict(record, "record")
        rs_list = obj.get("resourceSpans", obj.get("resource_spans"))
        has_logs = "resourceLogs" in obj or "resource_logs" in obj
        if rs_list is None and not has_logs:
            raise RecordError(
                "resourceSpans",
                "missing; this is neither an OTLP JSON trace export nor a log export "
                "(resourceLogs)",
            )
        pieces: list[Piece] = []
        if has_logs:
            pieces += split_logs(obj, number, problems, normalize_id=normalize_id, hint_of=_hint)
        if rs_list is None:
            return pieces
        for i, rs in enumerate(expect_list(rs_list, "resourceSpans")):
            where_rs = f"resourceSpans.{i}"
            if not isinstance(rs, dict):
                problems.append((where_rs, "expected an object", {"resourceSpans": [rs]}))
                continue
            resource = rs.get("resource")
            res_hint = _hint(resource.get("attributes")) if isinstance(resource, dict) else None
            scopes = rs.get(
                "scopeSpans", rs.get("scope_spans", rs.get("instrumentationLibrarySpans"))
            )
            if not isinstance(scopes, list):
                problems.append(
                    (f"{where_rs}.scopeSpans", "expected a list", {"resourceSpans": [rs]})
                )
                continue
            for j, ss in enumerate(scopes):
                where_ss = f"{where_rs}.scopeSpans.{j}"
                spans = ss.get("spans") if isinstance(ss, dict) else None
                if not isinstance(ss, dict) or not isinstance(spans, list):
                    problems.append((f"{where_ss}.spans", "expected a list of spans", ss))
                    continue
                for k, span in enumerate(spans):
                    where = f"{where_ss}.spans.{k}"
                    if not isinstance(span, dict):
                        problems.append((where, "expected a span object", _wrap(rs, ss, [span])))
                        continue
                    trace = normalize_id(span.get("traceId", span.get("trace_id")), 16)
                    if trace is None:
                        problems.append(
                            (
                                f"{where}.traceId",
                                "missing or not a string; the span cannot be placed in a trace",
                                _wrap(rs, ss, [span]),
                            )
                        )
                        continue
                    span_id = normalize_id(span.get("spanId", span.get("span_id")), 8)
                    if span_id is None:
                        problems.append(
                            (f"{where}.spanId", "missing or not a string", _wrap(rs, ss, [span]))
                        )
                        continue
                    hint = _hint(span.get("attributes")) or res_hint
                    pieces.append(
                        Piece(number, where, trace, span, hint=hint, extra=(rs, ss), own=span_id)
                    )
        return pieces

    def order_key(self, record: Any) -> int | None:
        """The earliest span start or log time in an export, in Unix nanoseconds.

        Traces and logs written to separate files are merged by it, so a call's spans
        and its log records are read close together.
        """
        if not isinstance(record, dict):
            return None
        best: int | None = None
        for outer, inner, items, fields in _TIMED:
            groups = record.get(outer)
            if not isinstance(groups, list):
                continue
            for group in groups:
                scopes = group.get(inner) if isinstance(group, dict) else None
                for scope in scopes if isinstance(scopes, list) else ():
                    entries = scope.get(items) if isinstance(scope, dict) else None
                    for entry in entries if isinstance(entries, list) else ():
                        if not isinstance(entry, dict):
                            continue
                        for name in fields:
                            t = nanos(entry.get(name))
                            if t is not None:
                                if best is None or t < best:
                                    best = t
                                break
        return best

    def rewrap(self, pieces: list[Piece]) -> list[Any]:
        """The source records holding the pieces: one trace export, one log export."""
        logs = rewrap_logs([p for p in pieces if len(p.extra) == 3])
        spans = [p for p in pieces if len(p.extra) == 2]
        return (self._rewrap_spans(spans) if spans else []) + logs

    def _rewrap_spans(self, pieces: list[Piece]) -> list[Any]:
        resources: dict[
            int, tuple[dict[str, Any], dict[int, tuple[dict[str, Any], list[Any]]]]
        ] = {}
        for p in pieces:
            rs, ss = p.extra
            entry = resources.setdefault(id(rs), (rs, {}))
            entry[1].setdefault(id(ss), (ss, []))[1].append(p.data)
        out: list[Any] = []
        for rs, scopes in resources.values():
            scope_list: list[Any] = []
            for ss, spans in scopes.values():
                scope: dict[str, Any] = {"spans": spans}
                if isinstance(ss.get("scope"), dict):
                    scope["scope"] = ss["scope"]
                scope_list.append(scope)
            res: dict[str, Any] = {"scopeSpans": scope_list}
            if isinstance(rs.get("resource"), dict):
                res["resource"] = rs["resource"]
            out.append(res)
        return [{"resourceSpans": out}]

    def build(self, group: Group, notes: list[Note]) -> Conversation:
        """Rebuild one conversation from its spans."""
        return _Builder(group, notes).build()


def _decode_span(piece: Piece, order: int) -> _Span:
    span = piece.data
    try:
        attrs = attributes(span.get("attributes"), "attributes")
        events = span.get("events") or []
        if not isinstance(events, list):
            raise RecordError("events", "expected a list")
        status = span.get("status") or {}
        if not isinstance(status, dict):
            raise RecordError("status", "expected an object")
    except RecordError as e:
        raise SourceError(piece.number, f"{piece.where}.{e.field}", e.message) from None
    name = span.get("name")
    code = status.get("code")
    message = status.get("message")
    return _Span(
        piece=piece,
        trace=piece.unit,
        span_id=cast(str, normalize_id(span.get("spanId", span.get("span_id")), 8)),
        parent=normalize_id(span.get("parentSpanId", span.get("parent_span_id")), 8),
        name=name if isinstance(name, str) else "",
        start=nanos(span.get("startTimeUnixNano", span.get("start_time_unix_nano"))),
        end=nanos(span.get("endTimeUnixNano", span.get("end_time_unix_nano"))),
        attrs=attrs,
        events=events,
        error=code in _STATUS_ERROR,
        status_message=message if isinstance(message, str) and message else None,
        order=order,
    )


def _sorted_by_start(spans: list[_Span]) -> list[_Span]:
    # Start-time order when every span has a start time; file order otherwise, so spans
    # without times (and exporters that write them in order) keep their order.
    if all(s.start is not None for s in spans):
        return sorted(spans, key=lambda s: (s.start, s.order))
    return sorted(spans, key=lambda s: s.order)


def span_order(spans: list[_Span], notes: list[Note]) -> list[_Span]:
    """Spans in tree pre-order, roots and siblings by start time; cycles are broken."""
    by_id: dict[tuple[str, str], _Span] = {(s.trace, s.span_id): s for s in spans}
    roots: list[_Span] = []
    for s in spans:
        parent = by_id.get((s.trace, s.parent)) if s.parent else None
        if parent is None or parent is s:
            roots.append(s)
        else:
            parent.children.append(s)
    order: list[_Span] = []
    visited: set[int] = set()

    def visit(root: _Span) -> None:
        stack = [root]
        while stack:
            s = stack.pop()
            if id(s) in visited:
                continue
            visited.add(id(s))
            order.append(s)
            if s.children:
                stack.extend(reversed(_sorted_by_start(s.children)))

    for root in _sorted_by_start(roots):
        visit(root)
    if len(order) < len(spans):
        for s in spans:
            if id(s) not in visited:
                notes.append(
                    (
                        s.piece.number,
                        f"{s.piece.where}.parentSpanId",
                        f"the parent chain of span {s.span_id} loops; treated as a root",
                    )
                )
                visit(s)
    return order


class _Builder:
    """Builds one conversation from the spans of one group."""

    def __init__(self, group: Group, notes: list[Note]) -> None:
        self.group = group
        self.notes = notes
        self.kept: dict[str, int] = {}
        self.unreadable: list[JsonValue] = []
        self.history = History(self._convert, notes, normalize=_normalize)
        self.metadata: dict[str, JsonValue] = {}
        self.tags: dict[str, str] = {}
        self.signals: UserSignals | None = None
        self.ranked_scores: list[tuple[int | None, Score]] = []
        self.silent_chat_spans = 0
        self.message_notes: dict[str, tuple[int, Origin]] = {}
        self.scores: list[Score] = []
        self.tools: list[ToolDefinition] = []
        self.content_absent = 0
        self.unrecorded_replies = 0
        self.calls: list[_Span] = []
        self.failed: list[_Span] = []
        self.silent: list[_Span] = []

    # -- entry point -------------------------------------------------------------------

    def build(self) -> Conversation:
        spans: list[_Span] = []
        seen: dict[tuple[str, str], _Span] = {}
        duplicates: list[JsonValue] = []
        logs: list[LogRecord] = []
        for order, piece in enumerate(self.group.pieces):
            if len(piece.extra) == 3:
                try:
                    logs.append(
                        decode_log(
                            piece, normalize_id=normalize_id, attributes=attributes, nanos=nanos
                        )
                    )
                except RecordError as e:
                    raise SourceError(piece.number, e.field, e.message) from None
                continue
            span = _decode_span(piece, order)
            key = (span.trace, span.span_id)
            if key in seen:
                if seen[key].piece.data != piece.data:
                    duplicates.append(json_safe(piece.data))
                    self.notes.append(
                        (
                            piece.number,
                            f"{piece.where}.spanId",
                            f"span {span.span_id} appears again with different content; the "
                            "first copy is used, this one is kept in "
                            "metadata['otel.duplicate_spans']",
                        )
                    )
                continue
            seen[key] = span
            spans.append(span)
        if duplicates:
            self.metadata["otel.duplicate_spans"] = duplicates
        if logs:
            spans += self._join_logs(logs, seen, len(self.group.pieces))
        ordered = span_order(spans, self.notes)

        tools: list[_Span] = []
        agents: list[_Span] = []
        for s in ordered:
            op = s.attrs.get("gen_ai.operation.name")
            self._associations(s)
            kind = s.attrs.get("traceloop.span.kind")
            if (
                op == "execute_tool"
                or kind == "tool"
                or (op is None and s.name.startswith("execute_tool"))
            ):
                tools.append(s)
            elif op is None and kind in _ENTITY_KINDS:
                self._entity(s)
            elif op in AGENT_OPERATIONS or (op is None and s.name.startswith("invoke_agent")):
                agents.append(s)
            elif op in CHAT_OPERATIONS or op is None:
                self._chat(s)
        for s in agents:
            self._agent(s)
        messages = self.history.messages()
        origins = self.history.origins()
        if not messages and self.silent:
            messages, origins = self._structure_only()
        # A group whose every call failed is kept: its failures are the record.
        if not messages and not self.history.failures:
            first = self.group.pieces[0]
            raise SourceError(
                first.number,
                None,
                "no messages: no span carries gen_ai.input.messages/gen_ai.output.messages "
                "(enable message content capture in the instrumentation, e.g. "
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true)",
            )
        self._attach_tools(tools, messages, origins)
        self._fix_duplicate_ids(messages, origins)
        check_links(messages, origins)
        for s in ordered:
            self._scores(s)
        # Scores written by convsim carry their position; others keep span order.
        if all(rank is not None for rank, _ in self.ranked_scores):
            self.ranked_scores.sort(key=lambda pair: cast(int, pair[0]))
        self.scores = [score for _, score in self.ranked_scores]
        return self._conversation(messages)

    # -- chat spans ----------------------------------------------------------------------

    def _chat(self, s: _Span) -> None:
        self._tool_definitions(s)
        inputs, outputs = self._span_messages(s)
        if s.error and not outputs:
            # A call that failed (a 429, a timeout) answered nothing: kept as a failure,
            # with the user message it was sent, never as a silent gap.
            self.history.add_failed_call(
                inputs,
                label=s.label,
                error_type=_text(s.attrs.get("error.type")) or self._exception_type(s),
                message=s.status_message or self._exception_message(s),
                details=self._failure_details(s),
            )
            self.failed.append(s)
            return
        if not inputs and not outputs:
            if s.attrs.get("gen_ai.operation.name") in CHAT_OPERATIONS or _is_llm_span(s):
                self.silent_chat_spans += 1
                self.silent.append(s)
            return
        if (
            inputs
            and not outputs
            and (s.attrs.get("gen_ai.operation.name") in CHAT_OPERATIONS or _is_llm_span(s))
        ):
            # The call answered, but its answer was not recorded (a streamed reply in
            # Traceloop's event mode): an empty reply keeps its model, tokens and timing.
            outputs = [({"role": "assistant", "parts": []}, Origin(s.piece.number, s.piece.where))]
            self.unrecorded_replies += 1

        def apply(messages: list[Message], new: bool) -> None:
            self._apply_chat(s, messages, new)

        self.history.add_call(inputs, outputs, label=s.label, apply=apply)
        self.calls.append(s)

    def _apply_chat(self, s: _Span, messages: list[Message], new: bool) -> None:
        target = next((m for m in reversed(messages) if isinstance(m, AssistantMessage)), None)
        if target is None:
            return
        a = s.attrs
        model = a.get("gen_ai.response.model") or a.get("gen_ai.request.model")
        if target.model is None and isinstance(model, str):
            target.model = model
        if target.usage is None:
            target.usage = self._usage(s)
        if target.finish_reason is None:
            reasons = a.get("gen_ai.response.finish_reasons")
            if isinstance(reasons, list) and reasons and isinstance(reasons[0], str):
                target.finish_reason = reasons[0]
            elif isinstance(reasons, str):
                target.finish_reason = reasons
        if target.timestamp is None and s.end is not None:
            target.timestamp = nanos_to_datetime(s.end)
        if target.latency_ms is None and s.end is not None and s.start is not None:
            if s.end >= s.start:
                target.latency_ms = (s.end - s.start) / 1e6
        response_id = a.get("gen_ai.response.id")
        if target.id is None and isinstance(response_id, str) and response_id and new:
            target.id = response_id
        extra = {
            k: json_safe(v)
            for k, v in a.items()
            if k not in _CHAT_MAPPED
            and not k.startswith(
                ("gen_ai.prompt.", "gen_ai.completion.", "llm.request.functions.", _ASSOCIATION)
            )
        }
        if extra:
            merge_metadata(target, "otel.attributes", extra)
            self._kept("otel.attributes")

    def _usage(self, s: _Span) -> Usage | None:
        a = s.attrs
        fields: dict[str, Any] = {}
        for name, keys in (
            ("input_tokens", ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")),
            ("output_tokens", ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")),
            ("cache_read_tokens", ("gen_ai.usage.cache_read.input_tokens",)),
            ("reasoning_tokens", ("gen_ai.usage.reasoning.output_tokens",)),
        ):
            for key in keys:
                if key in a:
                    value = count(a[key])
                    if value is None:
                        self._unreadable(s, key, a[key], "is not a non-negative integer")
                    else:
                        fields[name] = value
                    break
        if "gen_ai.usage.cost" in a:
            cost = money(a["gen_ai.usage.cost"])
            if cost is None:
                self._unreadable(s, "gen_ai.usage.cost", a["gen_ai.usage.cost"], "is not a cost")
            else:
                fields["cost_usd"] = cost
        return Usage(**fields) if fields else None

    def _span_messages(self, s: _Span) -> tuple[list[tuple[Any, Origin]], list[tuple[Any, Origin]]]:
        a = s.attrs
        line = s.piece.number
        inputs: list[tuple[Any, Origin]] = []
        outputs: list[tuple[Any, Origin]] = []
        if "gen_ai.system_instructions" in a:
            parts = self._json_attr(s, "gen_ai.system_instructions", text_ok=True)
            if isinstance(parts, str):
                parts = [{"type": "text", "content": parts}]
            if isinstance(parts, list):
                inputs.append(
                    (
                        {"role": "system", "parts": parts},
                        Origin(line, s.field("gen_ai.system_instructions")),
                    )
                )
        for key, target in (("gen_ai.input.messages", inputs), ("gen_ai.output.messages", outputs)):
            if key not in a:
                continue
            value = self._json_attr(s, key)
            if value is None:
                continue
            if not isinstance(value, list):
                self._unreadable(s, key, value, "is not a list of messages")
                continue
            target.extend((m, Origin(line, f"{s.field(key)}.{i}")) for i, m in enumerate(value))
        if inputs or outputs:
            return inputs, outputs
        legacy_in, legacy_out = self._legacy_events(s)
        if legacy_in or legacy_out:
            return legacy_in, legacy_out
        return self._openllmetry(s)

    def _json_attr(self, s: _Span, key: str, *, text_ok: bool = False) -> Any:
        value = s.attrs[key]
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            if text_ok:
                return value
            self._unreadable(s, key, value, "is not valid JSON (cut by an attribute length limit?)")
            return None

    def _unreadable(self, s: _Span, key: str, value: Any, problem: str) -> None:
        self.unreadable.append({"span": s.span_id, "attribute": key, "value": json_safe(value)})
        self.notes.append(
            (
                s.piece.number,
                s.field(key),
                f"{problem}; kept verbatim in metadata['otel.unreadable'] and not used",
            )
        )

    def _legacy_events(self, s: _Span) -> tuple[list[tuple[Any, Origin]], list[tuple[Any, Origin]]]:
        inputs: list[tuple[Any, Origin]] = []
        outputs: list[tuple[Any, Origin]] = []
        pending: list[str] = []
        for i, event in enumerate(s.events):
            if not isinstance(event, dict):
                continue
            name = event.get("name")
            role = _LEGACY_EVENTS.get(name) if isinstance(name, str) else None
            if role is None and name != "gen_ai.choice":
                continue
            where = f"{s.piece.where}.events.{i}"
            try:
                attrs = event_attributes(event, f"{where}.attributes")
            except RecordError as e:
                raise SourceError(s.piece.number, e.field, e.message) from None
            body = attrs.get("event.body", attrs.get("body", attrs.get("gen_ai.event.content")))
            if isinstance(body, str):
                try:
                    body = json.loads(body)
                except (ValueError, RecursionError):
                    body = {"content": body}
            data = body if isinstance(body, dict) else attrs
            origin = Origin(s.piece.number, where)
            if role is None:
                message = data.get("message", data)
                if isinstance(message, str):
                    try:
                        message = json.loads(message)
                    except (ValueError, RecursionError):
                        message = {"content": message}
                if not isinstance(message, dict):
                    message = {}
                msg = dict(message)
                msg.setdefault("role", "assistant")
                if "tool_calls" in data and "tool_calls" not in msg:
                    # Traceloop puts the calls beside the message, not in it.
                    msg["tool_calls"] = data["tool_calls"]
                converted = openai_to_otel(msg)
                reason = data.get("finish_reason")
                if isinstance(reason, str):
                    converted["finish_reason"] = reason
                outputs.append((converted, origin))
            else:
                msg = {
                    k: v for k, v in data.items() if k in ("content", "tool_calls", "id", "name")
                }
                msg["role"] = role
                if role == "tool":
                    msg["tool_call_id"] = data.get("id", data.get("tool_call_id"))
                    msg.pop("id", None)
                    if not msg["tool_call_id"] and pending:
                        # Traceloop's tool events carry no id: they answer the calls of the
                        # assistant message before them, in order.
                        msg["tool_call_id"] = pending.pop(0)
                    elif msg["tool_call_id"] in pending:
                        pending.remove(msg["tool_call_id"])
                for k in ("tool_calls",):
                    if isinstance(msg.get(k), str):
                        try:
                            msg[k] = json.loads(msg[k])
                        except (ValueError, RecursionError):
                            pass
                if role == "assistant" and isinstance(msg.get("tool_calls"), list):
                    pending = [
                        c["id"]
                        for c in msg["tool_calls"]
                        if isinstance(c, dict) and isinstance(c.get("id"), str)
                    ]
                inputs.append((openai_to_otel(msg), origin))
        return inputs, outputs

    def _openllmetry(self, s: _Span) -> tuple[list[tuple[Any, Origin]], list[tuple[Any, Origin]]]:
        grouped: dict[str, dict[int, dict[str, Any]]] = {"prompt": {}, "completion": {}}
        for key, value in s.attrs.items():
            m = _INDEXED.fullmatch(key)
            if m is None:
                continue
            kind, index, rest = m.group(1), int(m.group(2)), m.group(3)
            entry = grouped[kind].setdefault(index, {})
            call = re.fullmatch(r"tool_calls\.(\d+)\.(.+)", rest)
            if call is not None:
                calls = entry.setdefault("_calls", {})
                calls.setdefault(int(call.group(1)), {})[call.group(2)] = value
            else:
                entry[rest] = value
        result: list[list[tuple[Any, Origin]]] = []
        for kind in ("prompt", "completion"):
            out: list[tuple[Any, Origin]] = []
            for index in sorted(grouped[kind]):
                flat = grouped[kind][index]
                msg: dict[str, Any] = {
                    "role": flat.get("role", "assistant" if kind == "completion" else "user")
                }
                if "content" in flat:
                    msg["content"] = flat["content"]
                if "tool_call_id" in flat:
                    msg["tool_call_id"] = flat["tool_call_id"]
                calls = flat.get("_calls", {})
                if calls:
                    msg["tool_calls"] = [
                        {
                            "id": c.get("id"),
                            "function": {"name": c.get("name"), "arguments": c.get("arguments")},
                        }
                        for _, c in sorted(calls.items())
                    ]
                converted = openai_to_otel(msg)
                if isinstance(flat.get("finish_reason"), str):
                    converted["finish_reason"] = flat["finish_reason"]
                out.append(
                    (
                        converted,
                        Origin(
                            s.piece.number, f"{s.piece.where}.attributes[gen_ai.{kind}.{index}]"
                        ),
                    )
                )
            result.append(out)
        return result[0], result[1]

    # -- log records, structure-only calls, Traceloop ----------------------------------

    def _join_logs(
        self, logs: list[LogRecord], spans: dict[tuple[str, str], _Span], order: int
    ) -> list[_Span]:
        """Attach log records to their spans; records of absent spans become calls."""
        by_span: dict[tuple[str, str | None], list[LogRecord]] = {}
        for log in logs:
            by_span.setdefault((log.trace, log.span_id), []).append(log)
        made: list[_Span] = []
        unknown: list[JsonValue] = []
        for (trace, span_id), records in by_span.items():
            records.sort(key=lambda r: (r.time is None, r.time or 0, r.piece.number))
            target = spans.get((trace, span_id)) if span_id is not None else None
            if target is None:
                first = records[0]
                times = [r.time for r in records if r.time is not None]
                target = _Span(
                    piece=first.piece,
                    trace=trace,
                    span_id=span_id or f"log{first.piece.number}",
                    parent=None,
                    name="chat",
                    start=min(times) if times else None,
                    end=max(times) if times else None,
                    attrs={},
                    events=[],
                    error=False,
                    status_message=None,
                    order=order + len(made),
                )
                made.append(target)
            for log in records:
                if log.event == DETAILS_EVENT:
                    for key, value in log.attrs.items():
                        target.attrs.setdefault(key, value)
                    if "error.type" in log.attrs and target in made:
                        target.error = True
                elif log.event in MESSAGE_EVENTS:
                    if not (isinstance(log.body, dict) and log.body):
                        self.content_absent += 1
                    target.events.append(as_span_event(log, any_value))
                elif log.event == "gen_ai.evaluation.result":
                    # Grades sent as events (convsim export otel --grades, or another
                    # evaluator) become the span's scores like span events do.
                    target.events.append(as_span_event(log, any_value))
                else:
                    unknown.append({"event": log.event, "record": json_safe(log.piece.data)})
                    self.notes.append(
                        (
                            log.piece.number,
                            f"{log.piece.where}.eventName",
                            f"log record with event {log.event or '(none)'!r} is not a GenAI "
                            "message event; kept in metadata['otel.log_records']",
                        )
                    )
        if unknown:
            self.metadata["otel.log_records"] = unknown
        if made:
            self.notes.append(
                (
                    made[0].piece.number,
                    None,
                    f"{len(made)} call(s) known only from log records (their spans are not in "
                    "the input): rebuilt from the records, with the timing the records give",
                )
            )
        return made

    def _structure_only(self) -> tuple[list[Message], list[Origin]]:
        """One assistant message per chat span when no span or record carries content.

        Model, tokens, finish reason and timing still make cost and latency drift work;
        the conversation says that its content was not captured.
        """
        messages: list[Message] = []
        origins: list[Origin] = []
        for s in self.silent:
            message = AssistantMessage(content=None)
            self._apply_chat(s, [message], True)
            messages.append(message)
            origins.append(Origin(s.piece.number, s.piece.where))
        self.content_absent += len(self.silent)
        self.silent_chat_spans = 0
        return messages, origins

    def _tool_definitions(self, s: _Span) -> None:
        offered: list[ToolDefinition] = []
        raw = s.attrs.get("gen_ai.tool.definitions")
        if raw is not None:
            value = self._json_attr(s, "gen_ai.tool.definitions")
            for i, item in enumerate(value if isinstance(value, list) else []):
                tool, why = tool_definition(item)
                if tool is None:
                    self.notes.append(
                        (
                            s.piece.number,
                            f"{s.field('gen_ai.tool.definitions')}.{i}",
                            f"{NOT_KEPT}{why}",
                        )
                    )
                else:
                    offered.append(tool)
        functions: dict[int, dict[str, Any]] = {}
        for key, value in s.attrs.items():
            m = _FUNCTION.fullmatch(key)
            if m is not None:
                functions.setdefault(int(m.group(1)), {})[m.group(2)] = value
        for _, fields in sorted(functions.items()):
            tool, _ = tool_definition(fields)
            if tool is not None:
                offered.append(tool)
        for name in merge_tools(self.tools, offered):
            self.notes.append(
                (
                    s.piece.number,
                    s.field("gen_ai.tool.definitions"),
                    f"tool {name!r} offered again with a different definition; the first is kept",
                )
            )

    def _associations(self, s: _Span) -> None:
        for key, value in s.attrs.items():
            if not key.startswith(_ASSOCIATION) or value is None:
                continue
            name = key.removeprefix(_ASSOCIATION)
            if name == "session_id":
                continue
            self.tags.setdefault(name, str(value))
            if name == "user_id":
                self.metadata.setdefault("user_id", str(value))

    def _entity(self, s: _Span) -> None:
        entities = self.metadata.setdefault("otel.entities", [])
        if isinstance(entities, list):
            entities.append(
                {
                    "span": s.span_id,
                    "name": s.name,
                    "kind": json_safe(s.attrs.get("traceloop.span.kind")),
                    "attributes": {k: json_safe(v) for k, v in s.attrs.items()},
                }
            )
        workflow = s.attrs.get("traceloop.workflow.name")
        if isinstance(workflow, str) and workflow:
            self.tags.setdefault("workflow", workflow)

    def _failure_details(self, s: _Span) -> dict[str, JsonValue]:
        details: dict[str, JsonValue] = {"span": s.span_id}
        model = s.attrs.get("gen_ai.request.model")
        if isinstance(model, str):
            details["model"] = model
        when = nanos_to_datetime(s.end or s.start)
        if when is not None:
            details["time"] = when.isoformat()
        return details

    def _exception_type(self, s: _Span) -> str | None:
        for event in s.events:
            if isinstance(event, dict) and event.get("name") == "exception":
                try:
                    attrs = attributes(event.get("attributes"), "attributes")
                except RecordError:
                    continue
                kind = attrs.get("exception.type")
                if isinstance(kind, str):
                    return kind.rsplit(".", 1)[-1]
        return None

    # -- message conversion --------------------------------------------------------------

    def _convert(self, raw: Any, origin: Origin) -> list[Message]:
        try:
            messages, extra = message_from_otel(raw, origin.where)
        except RecordError as e:
            raise SourceError(origin.line, e.field, e.message) from None
        except ValidationError as e:
            raise SourceError(origin.line, origin.where, str(e.errors()[0]["msg"])) from None
        for problem in extra:
            n, first = self.message_notes.get(problem, (0, origin))
            self.message_notes[problem] = (n + 1, first)
        return messages

    # -- agent spans ---------------------------------------------------------------------

    def _agent(self, s: _Span) -> None:
        a = s.attrs
        if "convsim.tags" in a:
            tags = self._json_attr(s, "convsim.tags")
            if isinstance(tags, dict):
                self.tags.update({str(k): str(v) for k, v in tags.items()})
        if "convsim.metadata" in a:
            meta = self._json_attr(s, "convsim.metadata")
            if isinstance(meta, dict):
                for k, v in meta.items():
                    self.metadata.setdefault(str(k), json_safe(v))
        if "convsim.signals" in a and self.signals is None:
            sig = self._json_attr(s, "convsim.signals")
            try:
                self.signals = UserSignals.model_validate(sig)
            except ValidationError:
                self._unreadable(s, "convsim.signals", sig, "is not a valid signals object")
        extra = {k: json_safe(v) for k, v in a.items() if k not in _AGENT_MAPPED}
        if extra:
            bucket = self.metadata.setdefault("otel.agent_attributes", {})
            if isinstance(bucket, dict):
                for k, v in extra.items():
                    bucket.setdefault(k, v)
            self._kept("otel.agent_attributes")
        inputs, outputs = self._span_messages(s)
        placed = self.history.extend_if_continued(inputs + outputs, s.label)
        if placed is False:
            unplaced = self.metadata.setdefault("otel.unplaced_messages", [])
            if isinstance(unplaced, list):
                unplaced.append(
                    {"span": s.span_id, "messages": [json_safe(m) for m, _ in inputs + outputs]}
                )
            self.notes.append(
                (
                    s.piece.number,
                    s.field("gen_ai.input.messages"),
                    f"the messages of agent span {s.span_id} neither continue nor repeat the "
                    "conversation; kept in metadata['otel.unplaced_messages']",
                )
            )

    # -- tool spans ----------------------------------------------------------------------

    def _attach_tools(
        self, tools: list[_Span], messages: list[Message], origins: list[Origin]
    ) -> None:
        runs: list[ToolRun] = []
        for s in tools:
            a = s.attrs
            call_id = a.get("gen_ai.tool.call.id")
            tool_name = a.get("gen_ai.tool.name", a.get("traceloop.entity.name"))
            result = text_of(a.get("gen_ai.tool.call.result"))
            if result is None and s.error:
                result = s.status_message or self._exception_message(s)
            runs.append(
                ToolRun(
                    call_id=call_id if isinstance(call_id, str) and call_id else None,
                    name=tool_name if isinstance(tool_name, str) else None,
                    result=result,
                    is_error=s.error or "error.type" in a,
                    timestamp=nanos_to_datetime(s.end),
                    latency_ms=(
                        (s.end - s.start) / 1e6
                        if s.end is not None and s.start is not None and s.end >= s.start
                        else None
                    ),
                    extra={k: json_safe(v) for k, v in a.items() if k not in _TOOL_MAPPED},
                    origin=Origin(s.piece.number, s.field("gen_ai.tool.call.id")),
                    label=f"tool span {s.span_id}",
                    raw=s.piece.data,
                )
            )
        kept = attach_tool_runs(
            runs,
            messages,
            origins,
            branches=self.history.branches,
            notes=self.notes,
            metadata=self.metadata,
            extra_key="otel.attributes",
            unattached_key="otel.unattached_tool_spans",
        )
        if kept:
            self.kept["otel.attributes"] = self.kept.get("otel.attributes", 0) + kept

    def _exception_message(self, s: _Span) -> str | None:
        for event in s.events:
            if isinstance(event, dict) and event.get("name") == "exception":
                try:
                    attrs = attributes(event.get("attributes"), "attributes")
                except RecordError:
                    continue
                message = attrs.get("exception.message")
                if isinstance(message, str):
                    return message
        return None

    # -- scores ------------------------------------------------------------------------

    def _scores(self, s: _Span) -> None:
        for i, event in enumerate(s.events):
            if not isinstance(event, dict) or event.get("name") != "gen_ai.evaluation.result":
                continue
            where = f"{s.piece.where}.events.{i}"
            try:
                attrs = event_attributes(event, f"{where}.attributes")
                time_ns = nanos(event.get("timeUnixNano", event.get("time_unix_nano")))
                scores = self._score(attrs, s, time_ns)
            except (RecordError, ValidationError) as e:
                self.unreadable.append({"span": s.span_id, "event": json_safe(event)})
                msg = e.message if isinstance(e, RecordError) else str(e.errors()[0]["msg"])
                self.notes.append(
                    (
                        s.piece.number,
                        where,
                        f"evaluation event not imported ({msg}); kept in "
                        "metadata['otel.unreadable']",
                    )
                )
                continue
            position = attrs.get("convsim.score.position")
            rank = (
                position if isinstance(position, int) and not isinstance(position, bool) else None
            )
            self.ranked_scores.extend((rank, score) for score in scores)

    def _score(self, a: dict[str, Any], s: _Span, time_ns: int | None) -> list[Score]:
        """Scores of one evaluation event.

        Events written by convsim name their kind. Others are continuous when they have a
        numeric value and categorical when they only have a label; an event with both
        gives a continuous score and a categorical one named ``NAME.label``.
        """
        name = a.get("gen_ai.evaluation.name")
        if not isinstance(name, str) or not name:
            raise RecordError("gen_ai.evaluation.name", "missing")
        value = a.get("gen_ai.evaluation.score.value")
        label = a.get("gen_ai.evaluation.score.label")
        kind = a.get("convsim.score.kind")
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        inferred = kind not in _SCORE_KINDS
        if inferred:
            kind = "continuous" if numeric else "categorical"
        result: bool | float | str
        if kind == "binary":
            if isinstance(label, str) and label in ("true", "false"):
                result = label == "true"
            else:
                result = bool(value)
        elif kind == "categorical":
            if not isinstance(label, str):
                raise RecordError("gen_ai.evaluation.score.label", "a label is needed")
            result = label
        else:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RecordError("gen_ai.evaluation.score.value", "a number is needed")
            result = float(value)
        index = a.get("convsim.score.message_index")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            index = self.history.output_index(s.label)
        source = a.get("convsim.score.source")
        reason = a.get("gen_ai.evaluation.explanation")
        fields: dict[str, Any] = {
            "conversation_id": self.group.key,
            "message_index": index,
            "name": name,
            "value": result,
            "kind": kind,
            "reason": reason if isinstance(reason, str) else None,
            "source": source if source in _SCORE_SOURCES else "model",
            "created_at": nanos_to_datetime(time_ns),
        }
        for key in ("grader", "grader_version", "judge_model", "prompt_hash", "run_id"):
            v = a.get(f"convsim.score.{key}")
            if isinstance(v, str):
                fields[key] = v
        if "grader" not in fields:
            fields["grader"] = "otel"
        cost = money(a.get("convsim.score.cost_usd"))
        if cost is not None:
            fields["cost_usd"] = cost
        trial = a.get("convsim.score.trial")
        if isinstance(trial, int) and not isinstance(trial, bool) and trial >= 0:
            fields["trial"] = trial
        scores = [Score(**fields)]
        if inferred and numeric and isinstance(label, str):
            scores.append(
                Score(**{**fields, "name": f"{name}.label", "value": label, "kind": "categorical"})
            )
        elif kind == "categorical" and numeric:
            self.notes.append(
                (
                    s.piece.number,
                    s.piece.where,
                    f"{NOT_KEPT}score {name!r}: numeric value {value} of a categorical score",
                )
            )
        return scores

    # -- assembling ----------------------------------------------------------------------

    def _fix_duplicate_ids(self, messages: list[Message], origins: list[Origin]) -> None:
        seen: set[str] = set()
        for m, o in zip(messages, origins, strict=True):
            if m.id is None:
                continue
            if m.id in seen:
                m.metadata.setdefault("response_id", m.id)
                self.notes.append(
                    (o.line, o.where, f"response id {m.id!r} repeats; kept in metadata only")
                )
                m.id = None
            else:
                seen.add(m.id)

    def _kept(self, key: str) -> None:
        self.kept[key] = self.kept.get(key, 0) + 1

    def _conversation(self, messages: list[Message]) -> Conversation:
        first = self.group.pieces[0]
        rs = first.extra[0]
        resource = rs.get("resource") if isinstance(rs, dict) else None
        if isinstance(resource, dict) and resource.get("attributes"):
            try:
                res_attrs = attributes(resource.get("attributes"), "resource.attributes")
            except RecordError:
                res_attrs = {"raw": json_safe(resource.get("attributes"))}
            if res_attrs:
                self.metadata.setdefault("otel.resource", json_safe(res_attrs))
                self._kept("otel.resource")
        if self.unreadable:
            self.metadata["otel.unreadable"] = self.unreadable
        if self.history.branches:
            self.metadata["branches"] = cast(JsonValue, self.history.branches)
        if self.history.failures:
            self.metadata["failed_calls"] = cast(JsonValue, self.history.failures)
        if self.content_absent:
            self.metadata["content_captured"] = False
            self.notes.append(
                (
                    first.number,
                    None,
                    "message content was not captured (turn it on: "
                    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT for OpenTelemetry's "
                    "instrumentations, TRACELOOP_TRACE_CONTENT for Traceloop's): the calls' "
                    "structure, models, tokens and timing are imported without their text",
                )
            )
        if self.unrecorded_replies:
            self.notes.append(
                (
                    first.number,
                    None,
                    f"{self.unrecorded_replies} call(s) recorded their input but not their "
                    "answer: each answer is an empty assistant message that keeps the call's "
                    "model, tokens and timing",
                )
            )
        for m in messages:
            # The GenAI conventions say tool_call where OpenAI says tool_calls.
            if isinstance(m, AssistantMessage) and m.finish_reason == "tool_call":
                m.finish_reason = "tool_calls"
        if self.silent_chat_spans:
            self.notes.append(
                (
                    first.number,
                    None,
                    f"{self.silent_chat_spans} chat span(s) carry no messages; their usage "
                    "and timing are not attributed to any message",
                )
            )
        if self.kept:
            what = ", ".join(f"{k} ({n}x)" for k, n in sorted(self.kept.items()))
            self.notes.append((first.number, None, f"kept verbatim, no canonical field: {what}"))
        signals = self.signals or UserSignals()
        if self.history.edits and signals.edits is None:
            signals.edits = self.history.edits
        if self.history.retries and signals.retries is None:
            signals.retries = self.history.retries
        for problem, (n, origin) in self.message_notes.items():
            self.notes.append((origin.line, origin.where, f"{problem} ({n} message(s))"))
        source_ids = [f"trace:{t}" for t in self.group.units]
        if self.group.key_name != "trace_id":
            source_ids.insert(0, f"{self.group.key_name}:{self.group.key}")
        sources: dict[int, str] = {}
        for call in self.calls:
            index = self.history.output_index(call.label)
            if index is not None:
                sources.setdefault(index, f"{call.trace}/{call.span_id}")
        # A failed call answered nothing; it stands behind the message it was sent.
        at = {f.get("call"): f.get("after_message") for f in self.history.failures}
        for call in self.failed:
            after = at.get(call.label)
            if isinstance(after, int) and after >= 0:
                sources.setdefault(after, f"{call.trace}/{call.span_id}")
        return Conversation(
            id=self.group.key,
            messages=messages,
            tags=self.tags,
            metadata=self.metadata,
            signals=signals,
            scores=self.scores,
            tools=self.tools,
            provenance=Provenance(
                source_format=FORMAT, source_ids=source_ids, message_sources=sources
            ),
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _is_llm_span(s: _Span) -> bool:
    # Traceloop's legacy spans name their kind in llm.request.type, not the operation.
    return s.attrs.get("llm.request.type") in ("chat", "completion")


def _normalize(raw: Any) -> Any:
    if isinstance(raw, dict) and "finish_reason" in raw:
        return {k: v for k, v in raw.items() if k != "finish_reason"}
    return raw


def openai_to_otel(msg: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-style message dict (``content``, ``tool_calls``) in OTel message form."""
    role = msg.get("role")
    parts: list[Any] = []
    content = msg.get("content")
    if msg.get("tool_call_id") is not None or role == "tool":
        parts.append(
            {"type": "tool_call_response", "id": msg.get("tool_call_id"), "response": content}
        )
    elif isinstance(content, str):
        parts.append({"type": "text", "content": content})
    elif isinstance(content, list):
        for item in content:
            if (
                isinstance(item, dict)
                and item.get("type") == "text"
                and isinstance(item.get("text"), str)
            ):
                parts.append({"type": "text", "content": item["text"]})
            else:
                parts.append(item)
    calls = msg.get("tool_calls")
    if isinstance(calls, list):
        for c in calls:
            if not isinstance(c, dict):
                parts.append(c)
                continue
            fn: dict[str, Any] = c["function"] if isinstance(c.get("function"), dict) else c
            parts.append(
                {
                    "type": "tool_call",
                    "id": c.get("id"),
                    "name": fn.get("name"),
                    "arguments": fn.get("arguments"),
                }
            )
    out: dict[str, Any] = {"role": role, "parts": parts}
    if isinstance(msg.get("name"), str):
        out["name"] = msg["name"]
    return out


# --------------------------------------------------------------------------------------
# OTel message schema <-> canonical messages


def _part_to_canonical(part: Any, where: str, problems: list[str]) -> Part:
    if not isinstance(part, dict):
        problems.append("part is not an object; kept verbatim as an 'other' part")
        return OtherPart(source_type=type(part).__name__, data=json_safe(part))
    kind = part.get("type")
    allowed = _PART_KEYS.get(kind) if isinstance(kind, str) else None
    if allowed is None or not set(part) <= allowed:
        problems.append(f"part type {kind!r} (or its fields) has no canonical form; kept verbatim")
        return OtherPart(source_type=str(kind), data=json_safe(part))
    if kind == "text":
        text = part.get("content")
        if isinstance(text, str):
            return TextPart(text=text)
    elif kind == "reasoning":
        text, sig, red = part.get("content"), part.get("signature"), part.get("redacted", False)
        if (
            (text is None or isinstance(text, str))
            and (sig is None or isinstance(sig, str))
            and isinstance(red, bool)
        ):
            return ReasoningPart(text=text, signature=sig, redacted=red)
    else:
        modality = part.get("modality")
        mime = part.get("mime_type")
        if modality is None and isinstance(mime, str):
            modality = next((m for m in _MODALITIES if mime.startswith(m + "/")), "file")
        if modality in _MODALITIES and (mime is None or isinstance(mime, str)):
            if kind == "blob":
                data = part.get("content")
                if isinstance(data, str):
                    return MediaPart(
                        modality=modality,
                        mime_type=mime,
                        uri=f"data:{mime or 'application/octet-stream'};base64,{data}",
                    )
            else:
                uri, file_id = part.get("uri"), part.get("file_id")
                if (uri is None or isinstance(uri, str)) and (
                    file_id is None or isinstance(file_id, str)
                ):
                    if kind == "uri" or file_id is not None:
                        return MediaPart(
                            modality=modality, mime_type=mime, uri=uri, file_id=file_id
                        )
    problems.append(f"part type {kind!r} has unexpected values; kept verbatim")
    return OtherPart(source_type=str(kind), data=json_safe(part))


def message_from_otel(raw: Any, where: str) -> tuple[list[Message], list[str]]:
    """Convert one OTel GenAI message (``{role, parts, name}``) to canonical messages.

    ``tool_call_response`` parts become one :class:`ToolMessage` each (in order), so a user
    message that carries tool results is split. Returns the messages and notes about what
    was kept verbatim.

    Raises:
        RecordError: naming the field that cannot be mapped.
    """
    m = expect_dict(raw, where)
    problems: list[str] = []
    role = m.get("role")
    if role not in ("system", "developer", "user", "assistant", "tool"):
        raise RecordError(f"{where}.role", f"unknown role {role!r}")
    raw_parts = m.get("parts")
    if raw_parts is None and "content" in m:
        content = m.get("content")
        raw_parts = [{"type": "text", "content": content}] if isinstance(content, str) else []
    parts_list = expect_list(raw_parts if raw_parts is not None else [], f"{where}.parts")
    name = m.get("name")
    if name is not None and not isinstance(name, str):
        raise RecordError(f"{where}.name", "expected a string")
    extra: dict[str, JsonValue] = {
        k: json_safe(v)
        for k, v in m.items()
        if k not in _MESSAGE_KEYS and not (k == "content" and "parts" not in m)
    }
    if extra:
        problems.append(f"message fields {', '.join(sorted(extra))} kept in metadata")
    finish = m.get("finish_reason")
    common: dict[str, Any] = {"name": name, "metadata": extra}
    if role in ("system", "developer"):
        parts = [
            _part_to_canonical(p, f"{where}.parts.{i}", problems) for i, p in enumerate(parts_list)
        ]
        return [
            SystemMessage(developer=role == "developer", **common, **content_fields(parts))
        ], problems
    if role == "assistant":
        calls: list[ToolCall] = []
        parts = []
        for i, p in enumerate(parts_list):
            if (
                isinstance(p, dict)
                and p.get("type") == "tool_call"
                and set(p) <= _PART_KEYS["tool_call"]
            ):
                call_id, call_name = p.get("id"), p.get("name")
                if not isinstance(call_id, str) or not call_id:
                    raise RecordError(
                        f"{where}.parts.{i}.id", "a tool call needs a non-empty string id"
                    )
                if not isinstance(call_name, str) or not call_name:
                    raise RecordError(f"{where}.parts.{i}.name", "a tool call needs a name")
                args = p.get("arguments")
                if args is not None and not isinstance(args, str | dict):
                    args = json.dumps(json_safe(args))
                calls.append(ToolCall.from_raw(call_id, call_name, args))
            else:
                parts.append(_part_to_canonical(p, f"{where}.parts.{i}", problems))
        msg = AssistantMessage(
            tool_calls=calls,
            finish_reason=finish if isinstance(finish, str) else None,
            **common,
            **content_fields(parts),
        )
        return [msg], problems
    # user and tool messages: tool_call_response parts become tool messages
    out: list[Message] = []
    run: list[Part] = []
    current: ToolMessage | None = None

    def flush_user() -> None:
        if run:
            out.append(UserMessage(**common, **content_fields(list(run))))
            run.clear()

    for i, p in enumerate(parts_list):
        if (
            isinstance(p, dict)
            and p.get("type") == "tool_call_response"
            and set(p) <= _PART_KEYS["tool_call_response"]
        ):
            call_id = p.get("id")
            if not isinstance(call_id, str) or not call_id:
                raise RecordError(f"{where}.parts.{i}.id", "a tool result needs its call's id")
            flush_user()
            current = ToolMessage(
                tool_call_id=call_id,
                content=text_of(p["response"] if "response" in p else p.get("result")),
                **common,
            )
            out.append(current)
            continue
        part = _part_to_canonical(p, f"{where}.parts.{i}", problems)
        if current is not None:
            current.parts = [*(current.parts or []), part]
        elif role == "tool":
            raise RecordError(
                f"{where}.parts.{i}", "a tool message must start with a tool_call_response part"
            )
        else:
            run.append(part)
    flush_user()
    if not out:
        if role == "tool":
            raise RecordError(f"{where}.parts", "a tool message needs a tool_call_response part")
        out.append(UserMessage(**common))
    return out, problems


def _part_to_otel(p: Part) -> dict[str, Any]:
    if isinstance(p, TextPart):
        return {"type": "text", "content": p.text}
    if isinstance(p, ReasoningPart):
        out: dict[str, Any] = {"type": "reasoning", "content": p.text}
        if p.signature is not None:
            out["signature"] = p.signature
        if p.redacted:
            out["redacted"] = True
        return out
    if isinstance(p, MediaPart):
        out = {"type": "file" if p.file_id is not None else "uri", "modality": p.modality}
        if p.mime_type is not None:
            out["mime_type"] = p.mime_type
        if p.file_id is not None:
            out["file_id"] = p.file_id
        if p.uri is not None:
            out["uri"] = p.uri
        return out
    if isinstance(p.data, dict) and p.data.get("type") == p.source_type:
        return dict(p.data)
    return {"type": p.source_type, "data": p.data}


def message_to_otel(m: Message) -> dict[str, Any]:
    """One canonical message in OTel GenAI message form (without ``finish_reason``)."""
    role = "developer" if isinstance(m, SystemMessage) and m.developer else m.role
    parts: list[dict[str, Any]] = []
    if isinstance(m, ToolMessage):
        parts.append({"type": "tool_call_response", "id": m.tool_call_id, "response": m.content})
    elif m.content is not None:
        parts.append({"type": "text", "content": m.content})
    parts.extend(_part_to_otel(p) for p in m.parts or [])
    if isinstance(m, AssistantMessage):
        parts.extend(
            {
                "type": "tool_call",
                "id": c.id,
                "name": c.name,
                "arguments": c.arguments if c.arguments is not None else c.arguments_raw,
            }
            for c in m.tool_calls
        )
    out: dict[str, Any] = {"role": role, "parts": parts}
    if m.name is not None:
        out["name"] = m.name
    for key, value in m.metadata.items():
        if key != "otel.attributes":
            out.setdefault(key, value)
    return out


# --------------------------------------------------------------------------------------
# Writing


def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, str):
        return {"stringValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [_value(x) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": _value(x)} for k, x in v.items()]}}
    return {}


def _attrs(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in values.items() if v is not None]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _times(timestamp: Any, latency_ms: float | None) -> tuple[str, str]:
    # OTLP uses 0 for "unknown": a message without a latency gets no start time.
    if timestamp is None:
        return "0", "0"
    end = datetime_to_nanos(timestamp)
    if latency_ms is None:
        return "0", str(end)
    return str(end - round(latency_ms * 1e6)), str(end)


def score_attributes(score: Score, position: int) -> list[dict[str, Any]]:
    """A score as ``gen_ai.evaluation.result`` attributes (OTLP JSON), as this reader reads.

    ``position`` keeps the scores' order when they are read back.
    """
    a: dict[str, Any] = {"gen_ai.evaluation.name": score.name}
    if isinstance(score.value, bool):
        a["gen_ai.evaluation.score.value"] = 1.0 if score.value else 0.0
        a["gen_ai.evaluation.score.label"] = "true" if score.value else "false"
    elif isinstance(score.value, str):
        a["gen_ai.evaluation.score.label"] = score.value
    else:
        a["gen_ai.evaluation.score.value"] = float(score.value)
    a["gen_ai.evaluation.explanation"] = score.reason
    a["convsim.score.kind"] = score.kind
    a["convsim.score.source"] = score.source
    a["convsim.score.grader"] = score.grader
    for key in ("grader_version", "judge_model", "prompt_hash", "run_id", "cost_usd", "trial"):
        a[f"convsim.score.{key}"] = getattr(score, key)
    a["convsim.score.message_index"] = score.message_index
    a["convsim.score.position"] = position
    return _attrs(a)


def _score_event(score: Score, position: int) -> dict[str, Any]:
    event: dict[str, Any] = {
        "name": "gen_ai.evaluation.result",
        "attributes": score_attributes(score, position),
    }
    event["timeUnixNano"] = str(datetime_to_nanos(score.created_at)) if score.created_at else "0"
    return event


def to_otel_request(conversation: Conversation) -> dict[str, Any]:
    """One conversation as an OTLP JSON ``ExportTraceServiceRequest`` holding one trace.

    The trace has an ``invoke_agent`` root span (conversation id, tags, metadata and
    signals; the full message list too when messages follow the last assistant message),
    a ``chat`` span per assistant message and an ``execute_tool`` span per tool result.
    Conversation-level scores are events on the root span; message-level scores are
    events on the chat span that produced the message (or the root span).
    """
    conv = conversation
    trace_id = hashlib.sha256(conv.id.encode()).hexdigest()[:32]
    counter = iter(range(1, 1 << 62))

    def new_id() -> str:
        return f"{next(counter):016x}"

    root_id = new_id()

    def child_span(m: Message, name: str, kind: int, a: dict[str, Any]) -> dict[str, Any]:
        # Attributes the source span had beyond those derived here ride along, never
        # overriding them.
        extra = m.metadata.get("otel.attributes")
        if isinstance(extra, dict):
            for k, v in extra.items():
                a.setdefault(k, v)
        start, end = _times(m.timestamp, m.latency_ms)
        return {
            "traceId": trace_id,
            "spanId": new_id(),
            "parentSpanId": root_id,
            "name": name,
            "kind": kind,
            "startTimeUnixNano": start,
            "endTimeUnixNano": end,
            "attributes": _attrs(a),
        }

    otel_messages = [message_to_otel(m) for m in conv.messages]
    spans: list[dict[str, Any]] = []
    span_of_message: dict[int, dict[str, Any]] = {}
    call_names: dict[str, str] = {}
    last_assistant = -1
    for i, m in enumerate(conv.messages):
        if isinstance(m, AssistantMessage):
            last_assistant = i
            for c in m.tool_calls:
                call_names[c.id] = c.name
            output = dict(otel_messages[i])
            if m.finish_reason is not None:
                output["finish_reason"] = m.finish_reason
            a: dict[str, Any] = {"gen_ai.operation.name": "chat"}
            if m.model is not None:
                a["gen_ai.request.model"] = m.model
                a["gen_ai.response.model"] = m.model
            if m.id is not None:
                a["gen_ai.response.id"] = m.id
            if m.finish_reason is not None:
                a["gen_ai.response.finish_reasons"] = [m.finish_reason]
            if m.usage is not None:
                u = m.usage
                a["gen_ai.usage.input_tokens"] = u.input_tokens
                a["gen_ai.usage.output_tokens"] = u.output_tokens
                a["gen_ai.usage.cache_read.input_tokens"] = u.cache_read_tokens
                a["gen_ai.usage.reasoning.output_tokens"] = u.reasoning_tokens
                a["gen_ai.usage.cost"] = u.cost_usd
            a["gen_ai.conversation.id"] = conv.id
            a["gen_ai.input.messages"] = _dumps(otel_messages[:i])
            a["gen_ai.output.messages"] = _dumps([output])
            span = child_span(m, f"chat {m.model}" if m.model else "chat", 3, a)
            spans.append(span)
            span_of_message[i] = span
        elif isinstance(m, ToolMessage):
            name = call_names.get(m.tool_call_id, "tool")
            a = {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": name,
                "gen_ai.tool.call.id": m.tool_call_id,
                "gen_ai.tool.call.result": m.content,
                "gen_ai.conversation.id": conv.id,
            }
            if m.is_error:
                a["error.type"] = "tool_error"
            span = child_span(m, f"execute_tool {name}", 1, a)
            if m.is_error:
                span["status"] = {"code": 2}
            spans.append(span)
    metadata = dict(conv.metadata)
    resource_attrs = metadata.pop("otel.resource", None)
    agent_attrs = metadata.pop("otel.agent_attributes", None)
    root_attrs: dict[str, Any] = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.conversation.id": conv.id,
    }
    if conv.tags:
        root_attrs["convsim.tags"] = _dumps(conv.tags)
    if metadata:
        root_attrs["convsim.metadata"] = _dumps(metadata)
    if conv.signals != UserSignals():
        root_attrs["convsim.signals"] = conv.signals.model_dump_json(exclude_none=True)
    if last_assistant < len(conv.messages) - 1:
        root_attrs["gen_ai.input.messages"] = _dumps(otel_messages)
    if isinstance(agent_attrs, dict):
        for k, v in agent_attrs.items():
            root_attrs.setdefault(k, v)
    root_events: list[dict[str, Any]] = []
    for position, score in enumerate(conv.scores):
        target = (
            span_of_message.get(score.message_index) if score.message_index is not None else None
        )
        event = _score_event(score, position)
        if target is not None:
            target.setdefault("events", []).append(event)
        else:
            root_events.append(event)
    starts = [int(s["startTimeUnixNano"]) for s in spans if s["startTimeUnixNano"] != "0"]
    ends = [int(s["endTimeUnixNano"]) for s in spans if s["endTimeUnixNano"] != "0"]
    root: dict[str, Any] = {
        "traceId": trace_id,
        "spanId": root_id,
        "name": "invoke_agent",
        "kind": 1,
        "startTimeUnixNano": str(min(starts)) if starts and len(starts) == len(spans) else "0",
        "endTimeUnixNano": str(max(ends)) if ends and len(ends) == len(spans) else "0",
        "attributes": _attrs(root_attrs),
    }
    if root_events:
        root["events"] = root_events
    resource: dict[str, Any] = {
        "attributes": _attrs(resource_attrs) if isinstance(resource_attrs, dict) else []
    }
    return {
        "resourceSpans": [
            {
                "resource": resource,
                "scopeSpans": [{"scope": {"name": "convsim"}, "spans": [root, *spans]}],
            }
        ]
    }
