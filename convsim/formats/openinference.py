"""OpenInference spans (Arize Phoenix and other OpenInference tracers) to canonical.

Accepted records: Phoenix span objects (``{"name", "context": {"trace_id", "span_id"},
"parent_id", "span_kind", "start_time", "end_time", "status_code", "attributes",
"events", "annotations"}``), one per JSONL line or as a JSON array (also wrapped as
``{"data": [...]}`` or ``{"spans": [...]}``), and OTLP JSON exports whose spans carry
OpenInference attributes. Attributes may be flattened
(``llm.input_messages.0.message.role``) or nested (``{"llm": {"input_messages":
[{"message": {...}}]}}``), and column-style keys such as ``attributes.llm.model_name``
are accepted too: every form is unflattened to the nested one.

LLM spans give messages (``message.role``/``content``/``contents``/``tool_calls``/
``tool_call_id``/``name``), the model (``llm.model_name``), the finish reason
(``llm.finish_reason``), token counts (``llm.token_count.*``), cost (``llm.cost.total``)
and timing; the tools they offered (``llm.tools.N.tool.json_schema``) become
``Conversation.tools``. An LLM span that failed (ERROR status, no output messages) is
kept in ``metadata.failed_calls`` with its ``exception`` event's type and message, and
never displaces the conversation. TOOL spans attach to
their call by ``tool_call.id`` (else by ``tool.name``), with ``output.value`` as result
and an ERROR status as ``is_error``. Spans are grouped by ``session.id``, else by trace.
Annotations (``annotations.N.annotation.*`` attributes, or Phoenix ``annotations``
objects) become scores. History re-sent by each LLM span is merged as for OpenTelemetry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
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
from ._base import expect_dict, expect_list
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
    as_dict,
    attach_tool_runs,
    check_links,
    count,
    datetime_to_nanos,
    json_safe,
    kept_note,
    latency,
    merge_metadata,
    money,
    nanos_to_datetime,
    parse_iso,
    read_grouped,
    text_of,
)
from ._tools import merge_tools, tool_definition
from .otel import OtelFormat, _Span, attributes, nanos, normalize_id, span_order

FORMAT = "openinference"

_ROLES = {
    "system": "system",
    "developer": "developer",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "model": "assistant",
    "tool": "tool",
    "function": "tool",
}
_MESSAGE_KEYS = frozenset({"role", "content", "contents", "tool_calls", "tool_call_id", "name"})
# Attributes of LLM spans with a canonical home (as nested top-level keys).
_LLM_SKIPPED = ("input", "output", "session", "user", "openinference", "annotations")
_SOURCES = {"HUMAN": "human", "LLM": "model", "CODE": "rule"}
# LLM span attributes mapped to canonical fields, so not kept verbatim in metadata.
_LLM_MAPPED = (
    "llm.input_messages",
    "llm.output_messages",
    "llm.model_name",
    "llm.token_count",
    "llm.cost",
    "llm.finish_reason",
    "llm.tools",
)


def read_openinference(
    path: Path,
    *,
    report: ReadReport,
    rejects: RejectSink | None = None,
    keep_source: bool = False,
) -> Iterator[Conversation]:
    """Yield the conversations in an OpenInference span export (see the module docstring)."""
    yield from read_grouped(
        path, OpenInferenceFormat(), report=report, rejects=rejects, keep_source=keep_source
    )


def unflatten(value: Any, _depth: int = 0) -> Any:
    """Nest dotted keys (``a.b.0.c``) into dicts and lists, recursively.

    Dicts whose keys are all digits become lists ordered by index (gaps closed). A key
    that is both a value and a prefix of other keys keeps the value under ``""``.
    """
    if _depth > 200:
        raise RecordError(None, "attributes nested too deeply")
    if isinstance(value, list):
        return [unflatten(v, _depth + 1) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, raw in value.items():
        item = unflatten(raw, _depth + 1)
        parts = str(key).split(".")
        node = out
        for segment in parts[:-1]:
            child = node.get(segment)
            if not isinstance(child, dict):
                child = {} if child is None else {"": child}
                node[segment] = child
            node = child
        last = parts[-1]
        if last in node and isinstance(node[last], dict) and isinstance(item, dict):
            node[last].update(item)
        elif last in node and isinstance(node[last], dict):
            node[last][""] = item
        else:
            node[last] = item
    return _listify(out)


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        converted = {k: _listify(v) for k, v in node.items()}
        if converted and all(isinstance(k, str) and k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    if isinstance(node, list):
        return [_listify(v) for v in node]
    return node


def _get(node: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _flat(node: Any, prefix: str = "") -> dict[str, JsonValue]:
    """Nested attributes back to dotted keys (for keeping them verbatim)."""
    if isinstance(node, dict) and node:
        out: dict[str, JsonValue] = {}
        for k, v in node.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix and k else prefix or k))
        return out
    if isinstance(node, list) and node and all(isinstance(v, dict) for v in node):
        out = {}
        for i, v in enumerate(node):
            out.update(_flat(v, f"{prefix}.{i}"))
        return out
    return {prefix: json_safe(node)}


class OpenInferenceFormat:
    """Splitting and building rules for OpenInference spans (see :mod:`._grouped`)."""

    name = FORMAT
    default_key = "trace_id"

    def split(self, record: Any, number: int, problems: list[Problem]) -> list[Piece]:
        """One piece per span; OTLP records are split like OpenTelemetry ones."""
        obj = expect_dict(record, "record")
        if "resourceSpans" in obj or "resource_spans" in obj:
            pieces = OtelFormat().split(obj, number, problems)
            for p in pieces:
                p.extra = ("otlp", p.extra)
                p.hint = _otlp_session(p.data)
            return pieces
        spans: list[Any]
        prefix: str
        if isinstance(obj.get("data"), list) or isinstance(obj.get("spans"), list):
            key = "data" if isinstance(obj.get("data"), list) else "spans"
            spans, prefix = obj[key], f"{key}."
        else:
            spans, prefix = [obj], ""
        pieces = []
        for k, raw in enumerate(spans):
            where = f"{prefix}{k}" if prefix else "record"
            if not isinstance(raw, dict):
                problems.append((where, "expected a span object", raw))
                continue
            span = unflatten(raw)
            context = as_dict(span.get("context"))
            trace = normalize_id(context.get("trace_id", span.get("trace_id")), 16)
            span_id = normalize_id(context.get("span_id", span.get("span_id", span.get("id"))), 8)
            if trace is None:
                problems.append((f"{where}.context.trace_id", "missing or not a string", raw))
                continue
            if span_id is None:
                problems.append((f"{where}.context.span_id", "missing or not a string", raw))
                continue
            session = _get(span, "attributes", "session", "id")
            hint = (0, "session.id", session) if isinstance(session, str) and session else None
            pieces.append(Piece(number, where, trace, span, hint=hint, extra=("span", raw)))
        return pieces

    def rewrap(self, pieces: list[Piece]) -> list[Any]:
        """The original span records (OTLP pieces re-wrapped as OTLP)."""
        otlp = [p for p in pieces if p.extra[0] == "otlp"]
        out: list[Any] = [p.extra[1] for p in pieces if p.extra[0] == "span"]
        if otlp:
            copies = [Piece(p.number, p.where, p.unit, p.data, extra=p.extra[1]) for p in otlp]
            out.extend(OtelFormat().rewrap(copies))
        return out

    def build(self, group: Group, notes: list[Note]) -> Conversation:
        """Rebuild one conversation from its spans."""
        return _Builder(group, notes).build()


def _otlp_session(span: Any) -> tuple[int, str, str] | None:
    attrs = span.get("attributes") if isinstance(span, dict) else None
    for kv in attrs if isinstance(attrs, list) else []:
        if isinstance(kv, dict) and kv.get("key") == "session.id":
            value = kv.get("value")
            text = value.get("stringValue") if isinstance(value, dict) else None
            if isinstance(text, str) and text:
                return (0, "session.id", text)
    return None


def _time(value: Any) -> int | None:
    if isinstance(value, str) and not value.isdigit():
        parsed = parse_iso(value)
        return datetime_to_nanos(parsed) if parsed is not None else None
    return nanos(value)


def _decode(piece: Piece, order: int) -> _Span:
    if piece.extra[0] == "otlp":
        span = piece.data
        try:
            flat = attributes(span.get("attributes"), "attributes")
        except RecordError as e:
            raise SourceError(piece.number, f"{piece.where}.{e.field}", e.message) from None
        status = as_dict(span.get("status"))
        events = span.get("events") if isinstance(span.get("events"), list) else []
        decoded = {
            "name": span.get("name"),
            "parent_id": normalize_id(span.get("parentSpanId"), 8),
            "start": nanos(span.get("startTimeUnixNano")),
            "end": nanos(span.get("endTimeUnixNano")),
            "error": status.get("code") in (2, "STATUS_CODE_ERROR"),
            "message": status.get("message"),
            "attributes": unflatten(flat),
            "events": events,
            "span_id": normalize_id(span.get("spanId"), 8),
        }
    else:
        span = piece.data
        context = as_dict(span.get("context"))
        status = span.get("status_code")
        decoded = {
            "name": span.get("name"),
            "parent_id": normalize_id(span.get("parent_id"), 8),
            "start": _time(span.get("start_time")),
            "end": _time(span.get("end_time")),
            "error": isinstance(status, str) and status.upper() in ("ERROR", "STATUS_CODE_ERROR"),
            "message": span.get("status_message"),
            "attributes": as_dict(span.get("attributes")),
            "events": span.get("events") if isinstance(span.get("events"), list) else [],
            "span_id": normalize_id(context.get("span_id", span.get("span_id", span.get("id"))), 8),
        }
        if (
            "span_kind" in span
            and _get(decoded["attributes"], "openinference", "span", "kind") is None
        ):
            decoded["attributes"] = {
                **decoded["attributes"],
                "openinference": {"span": {"kind": span["span_kind"]}},
            }
    name, message = decoded["name"], decoded["message"]
    return _Span(
        piece=piece,
        trace=piece.unit,
        span_id=cast(str, decoded["span_id"]),
        parent=cast("str | None", decoded["parent_id"]),
        name=name if isinstance(name, str) else "",
        start=cast("int | None", decoded["start"]),
        end=cast("int | None", decoded["end"]),
        attrs=cast(dict[str, Any], decoded["attributes"]),
        events=cast(list[Any], decoded["events"]),
        error=bool(decoded["error"]),
        status_message=message if isinstance(message, str) and message else None,
        order=order,
    )


def _kind(s: _Span) -> str:
    kind = _get(s.attrs, "openinference", "span", "kind")
    return kind.upper() if isinstance(kind, str) else ""


class _Builder:
    def __init__(self, group: Group, notes: list[Note]) -> None:
        self.group = group
        self.notes = notes
        self.kept: dict[str, int] = {}
        self.metadata: dict[str, JsonValue] = {}
        self.history = History(self._convert, notes, normalize=_normalize)
        self.message_notes: dict[str, tuple[int, Origin]] = {}
        self.scores: list[Score] = []
        self.tools: list[ToolDefinition] = []

    def build(self) -> Conversation:
        spans: list[_Span] = []
        seen: set[tuple[str, str]] = set()
        for order, piece in enumerate(self.group.pieces):
            s = _decode(piece, order)
            if (s.trace, s.span_id) in seen:
                self.notes.append(
                    (piece.number, piece.where, f"span {s.span_id} repeats; the first copy is used")
                )
                continue
            seen.add((s.trace, s.span_id))
            spans.append(s)
        ordered = span_order(spans, self.notes)
        tools: list[_Span] = []
        for s in ordered:
            kind = _kind(s)
            if kind == "LLM":
                self._llm(s)
            elif kind == "TOOL":
                tools.append(s)
            user = _get(s.attrs, "user", "id")
            if isinstance(user, str):
                self.metadata.setdefault("user_id", user)
        messages = self.history.messages()
        origins = self.history.origins()
        if not messages:
            raise SourceError(
                self.group.pieces[0].number,
                None,
                "no messages: no LLM span carries llm.input_messages/llm.output_messages",
            )
        self._tools(tools, messages, origins)
        check_links(messages, origins)
        for s in ordered:
            self._annotations(s)
        if self.history.branches:
            self.metadata["branches"] = cast(JsonValue, self.history.branches)
        if self.history.failures:
            self.metadata["failed_calls"] = cast(JsonValue, self.history.failures)
        for problem, (n, origin) in self.message_notes.items():
            self.notes.append((origin.line, origin.where, f"{problem} ({n} message(s))"))
        note = kept_note(self.group.pieces[0].number, self.kept)
        if note:
            self.notes.append(note)
        source_ids = [f"trace:{t}" for t in self.group.units]
        if self.group.key_name != "trace_id":
            source_ids.insert(0, f"{self.group.key_name}:{self.group.key}")
        return Conversation(
            id=self.group.key,
            messages=messages,
            tools=self.tools,
            metadata=self.metadata,
            signals=UserSignals(
                edits=self.history.edits or None, retries=self.history.retries or None
            ),
            scores=self.scores,
            provenance=Provenance(source_format=FORMAT, source_ids=source_ids),
        )

    def _llm(self, s: _Span) -> None:
        llm = as_dict(s.attrs.get("llm"))
        self._offered_tools(s, llm)
        io: list[list[tuple[Any, Origin]]] = []
        for key in ("input_messages", "output_messages"):
            raw = llm.get(key)
            items = raw if isinstance(raw, list) else []
            io.append(
                [
                    (
                        item.get("message", item) if isinstance(item, dict) else item,
                        Origin(s.piece.number, f"{s.piece.where}.attributes.llm.{key}.{i}.message"),
                    )
                    for i, item in enumerate(items)
                ]
            )
        if s.error and not io[1]:
            self._failed(s, llm, io[0])
            return
        if not io[0] and not io[1]:
            return

        def apply(messages: list[Message], new: bool) -> None:
            target = next((m for m in reversed(messages) if isinstance(m, AssistantMessage)), None)
            if target is not None:
                self._call_details(s, llm, target)
                response_id = _response_id(s.attrs.get("output"))
                if new and target.id is None and response_id is not None:
                    target.id = response_id

        self.history.add_call(io[0], io[1], label=f"span {s.span_id}", apply=apply)

    def _call_details(self, s: _Span, llm: dict[str, Any], target: AssistantMessage) -> None:
        """Fill in what ``target`` lacks from the LLM span that wrote it."""
        model = llm.get("model_name")
        if target.model is None and isinstance(model, str):
            target.model = model
        reason = llm.get("finish_reason")
        if target.finish_reason is None and isinstance(reason, str) and reason:
            target.finish_reason = reason
        if target.usage is None:
            target.usage = _usage(llm)
        if target.timestamp is None:
            target.timestamp = nanos_to_datetime(s.end)
        if target.latency_ms is None:
            target.latency_ms = latency(nanos_to_datetime(s.start), nanos_to_datetime(s.end))
        extra = {
            k: v
            for k, v in _flat({k: v for k, v in s.attrs.items() if k not in _LLM_SKIPPED}).items()
            if not k.startswith(_LLM_MAPPED)
        }
        if extra:
            merge_metadata(target, "openinference.attributes", extra)
            self.kept["openinference.attributes"] = self.kept.get("openinference.attributes", 0) + 1

    def _offered_tools(self, s: _Span, llm: dict[str, Any]) -> None:
        """Add the tools an LLM span offered (``llm.tools.N.tool``) to the conversation's."""
        raw = llm.get("tools")
        offered: list[ToolDefinition] = []
        for i, item in enumerate(raw if isinstance(raw, list) else []):
            where = f"{s.piece.where}.attributes.llm.tools.{i}.tool"
            body = item.get("tool", item) if isinstance(item, dict) else item
            # OpenInference writes the whole OpenAI tool object as one JSON string.
            schema = body.get("json_schema") if isinstance(body, dict) else None
            if schema is not None:
                where += ".json_schema"
            tool, why = tool_definition(schema if schema is not None else body)
            if tool is None:
                self.notes.append((s.piece.number, where, f"{NOT_KEPT}{why}"))
                continue
            offered.append(tool)
        for name in merge_tools(self.tools, offered):
            self.notes.append(
                (
                    s.piece.number,
                    f"{s.piece.where}.attributes.llm.tools",
                    f"tool {name!r} is offered again with a different definition; "
                    "tools keeps the first one",
                )
            )

    def _failed(self, s: _Span, llm: dict[str, Any], inputs: list[tuple[Any, Origin]]) -> None:
        """Keep an LLM span that ended in an error without output (a 429, a timeout)."""
        error_type, message = _exception(s)
        details: dict[str, JsonValue] = {}
        model = llm.get("model_name") or _requested_model(llm)
        if isinstance(model, str) and model:
            details["model"] = model
        end = nanos_to_datetime(s.end)
        if end is not None:
            details["end_time"] = end.isoformat()
        self.history.add_failed_call(
            inputs,
            label=f"span {s.span_id}",
            error_type=error_type,
            message=message or s.status_message,
            details=details,
        )

    def _convert(self, raw: Any, origin: Origin) -> list[Message]:
        try:
            message, problems = message_from_openinference(raw, origin.where)
        except RecordError as e:
            raise SourceError(origin.line, e.field, e.message) from None
        except ValidationError as e:
            raise SourceError(origin.line, origin.where, str(e.errors()[0]["msg"])) from None
        for problem in problems:
            n, first = self.message_notes.get(problem, (0, origin))
            self.message_notes[problem] = (n + 1, first)
        return [message]

    def _tools(self, tools: list[_Span], messages: list[Message], origins: list[Origin]) -> None:
        runs: list[ToolRun] = []
        for s in tools:
            call_id = (
                _get(s.attrs, "tool_call", "id")
                or _get(s.attrs, "tool", "call_id")
                or _get(s.attrs, "tool", "id")
            )
            name = _get(s.attrs, "tool", "name") or s.name
            output = _get(s.attrs, "output", "value")
            result = text_of(output if not isinstance(output, dict) else output.get(""))
            if result is None and s.error:
                result = s.status_message
            extra = {
                k: v
                for k, v in _flat(s.attrs).items()
                if not k.startswith(
                    ("tool_call.id", "tool.name", "output.value", "openinference.", "session.id")
                )
            }
            runs.append(
                ToolRun(
                    call_id=call_id if isinstance(call_id, str) and call_id else None,
                    name=name if isinstance(name, str) else None,
                    result=result,
                    is_error=s.error,
                    timestamp=nanos_to_datetime(s.end),
                    latency_ms=latency(nanos_to_datetime(s.start), nanos_to_datetime(s.end)),
                    extra=extra,
                    origin=Origin(s.piece.number, f"{s.piece.where}.attributes.tool_call.id"),
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
            extra_key="openinference.attributes",
            unattached_key="openinference.unattached_tool_spans",
        )
        if kept:
            self.kept["openinference.attributes"] = (
                self.kept.get("openinference.attributes", 0) + kept
            )

    def _annotations(self, s: _Span) -> None:
        found: list[tuple[str, dict[str, Any]]] = []
        attr = s.attrs.get("annotations")
        for i, item in enumerate(attr if isinstance(attr, list) else []):
            ann = item.get("annotation", item) if isinstance(item, dict) else None
            if isinstance(ann, dict):
                found.append((f"{s.piece.where}.attributes.annotations.{i}", ann))
        record_level = s.piece.data.get("annotations") if s.piece.extra[0] == "span" else None
        for i, item in enumerate(record_level if isinstance(record_level, list) else []):
            if isinstance(item, dict):
                result = as_dict(item.get("result"))
                found.append((f"{s.piece.where}.annotations.{i}", {**item, **result}))
        index = self.history.output_index(f"span {s.span_id}")
        for where, ann in found:
            name = ann.get("name")
            if not isinstance(name, str) or not name:
                self.notes.append((s.piece.number, where, f"{NOT_KEPT}annotation without a name"))
                continue
            value, label = ann.get("score"), ann.get("label")
            explanation = ann.get("explanation")
            source = _SOURCES.get(str(ann.get("annotator_kind", "")).upper(), "human")
            base: dict[str, Any] = {
                "conversation_id": self.group.key,
                "message_index": index,
                "name": name,
                "reason": explanation if isinstance(explanation, str) else None,
                "source": source,
                "grader": "openinference",
            }
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.scores.append(Score(**base, value=float(value), kind="continuous"))
                if isinstance(label, str):
                    self.scores.append(
                        Score(**{**base, "name": f"{name}.label"}, value=label, kind="categorical")
                    )
            elif isinstance(label, str):
                self.scores.append(Score(**base, value=label, kind="categorical"))
            else:
                self.notes.append(
                    (s.piece.number, where, f"annotation {name!r} has no score or label")
                )


def _exception(s: _Span) -> tuple[str | None, str | None]:
    """(type, message) of the span's first ``exception`` event (OTLP or Phoenix form)."""
    for event in s.events:
        if not isinstance(event, dict) or event.get("name") != "exception":
            continue
        raw = event.get("attributes")
        try:
            attrs = attributes(raw, "attributes") if isinstance(raw, list) else as_dict(raw)
        except RecordError:
            continue
        nested = as_dict(attrs.get("exception"))
        kind = attrs.get("exception.type", nested.get("type"))
        message = attrs.get("exception.message", nested.get("message"))
        return (
            kind if isinstance(kind, str) and kind else None,
            message if isinstance(message, str) and message else None,
        )
    return None, None


def _requested_model(llm: dict[str, Any]) -> Any:
    # A failed call has no response, so no llm.model_name: the request names the model.
    params = llm.get("invocation_parameters")
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError:
            return None
    return params.get("model") if isinstance(params, dict) else None


def _normalize(raw: Any) -> Any:
    if isinstance(raw, dict):
        return {k: v for k, v in raw.items() if k in _MESSAGE_KEYS}
    return raw


def _usage(llm: dict[str, Any]) -> Usage | None:
    tokens = as_dict(llm.get("token_count"))
    fields: dict[str, Any] = {}
    for name, value in (
        ("input_tokens", tokens.get("prompt")),
        ("output_tokens", tokens.get("completion")),
        ("cache_read_tokens", _get(tokens, "prompt_details", "cache_read")),
        ("reasoning_tokens", _get(tokens, "completion_details", "reasoning")),
    ):
        if count(value) is not None:
            fields[name] = count(value)
    cost = money(_get(llm, "cost", "total"))
    if cost is not None:
        fields["cost_usd"] = cost
    return Usage(**fields) if fields else None


def _content_part(raw: Any, where: str, problems: list[str]) -> Part:
    item = raw.get("message_content", raw) if isinstance(raw, dict) else raw
    if isinstance(item, dict):
        kind = item.get("type")
        if kind == "text" and isinstance(item.get("text"), str) and set(item) <= {"type", "text"}:
            return TextPart(text=item["text"])
        url = _get(item, "image", "image", "url") or _get(item, "image", "url")
        if kind == "image" and isinstance(url, str):
            return MediaPart(modality="image", uri=url)
        if kind == "reasoning":
            text = item.get("text")
            sig = item.get("signature")
            enc = item.get("encrypted_content", item.get("data"))
            if (text is None or isinstance(text, str)) and (sig is None or isinstance(sig, str)):
                signature = sig if sig is not None else enc if isinstance(enc, str) else None
                return ReasoningPart(
                    text=text, signature=signature, redacted=text is None and signature is not None
                )
    problems.append("content parts without a canonical form kept verbatim")
    kind_name = item.get("type") if isinstance(item, dict) else None
    return OtherPart(source_type=str(kind_name), data=json_safe(raw))


def message_from_openinference(raw: Any, where: str) -> tuple[Message, list[str]]:
    """Convert one OpenInference message (nested form) to a canonical message.

    Raises:
        RecordError: naming the field that cannot be mapped.
    """
    m = expect_dict(raw, where)
    problems: list[str] = []
    role = _ROLES.get(str(m.get("role", "")).lower())
    if role is None:
        raise RecordError(f"{where}.role", f"unknown role {m.get('role')!r}")
    content = m.get("content")
    if content is not None and not isinstance(content, str):
        content = text_of(content)
        problems.append("non-text message content kept as JSON text")
    contents = m.get("contents")
    parts: list[Part] | None = None
    if contents is not None:
        parts = [
            _content_part(c, f"{where}.contents.{k}", problems)
            for k, c in enumerate(expect_list(contents, f"{where}.contents"))
        ]
    name = m.get("name")
    extra = {k: json_safe(v) for k, v in m.items() if k not in _MESSAGE_KEYS}
    if extra:
        problems.append(f"message fields {', '.join(sorted(extra))} kept in metadata")
    common: dict[str, Any] = {
        "content": content,
        "parts": parts,
        "name": name if isinstance(name, str) else None,
        "metadata": extra,
    }
    if role in ("system", "developer"):
        return SystemMessage(developer=role == "developer", **common), problems
    if role == "user":
        return UserMessage(**common), problems
    if role == "tool":
        call_id = m.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise RecordError(f"{where}.tool_call_id", "a tool message needs its call's id")
        return ToolMessage(tool_call_id=call_id, **common), problems
    calls: list[ToolCall] = []
    raw_calls = m.get("tool_calls")
    for k, c in enumerate(
        expect_list(raw_calls, f"{where}.tool_calls") if raw_calls is not None else []
    ):
        call = c.get("tool_call", c) if isinstance(c, dict) else None
        cw = f"{where}.tool_calls.{k}.tool_call"
        if not isinstance(call, dict):
            raise RecordError(cw, "expected an object")
        call_id = call.get("id")
        fn = as_dict(call.get("function"))
        name_ = fn.get("name")
        if not isinstance(call_id, str) or not call_id:
            raise RecordError(f"{cw}.id", "a tool call needs a non-empty string id")
        if not isinstance(name_, str) or not name_:
            raise RecordError(f"{cw}.function.name", "a tool call needs a function name")
        args = fn.get("arguments")
        if args is not None and not isinstance(args, str | dict):
            args = text_of(args)
        calls.append(ToolCall.from_raw(call_id, name_, args))
    return AssistantMessage(tool_calls=calls, **common), problems


def _response_id(output: Any) -> str | None:
    """The provider's response id in ``output.value`` (the raw response body), if any.

    Kept as the message id, as the OpenTelemetry reader keeps ``gen_ai.response.id``, so
    a reply can be found again across exports.
    """
    value = output.get("value") if isinstance(output, dict) else None
    if not isinstance(value, str) or not value.startswith("{"):
        return None
    try:
        body = json.loads(value)
    except (ValueError, RecursionError):
        return None
    rid = body.get("id") if isinstance(body, dict) else None
    return rid if isinstance(rid, str) and rid else None
