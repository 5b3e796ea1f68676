"""LangSmith run exports to canonical conversations.

Accepted records (JSONL or a JSON array; also ``{"runs": [...], "feedback": [...]}``):
runs (``id``, ``trace_id``, ``parent_run_id``, ``dotted_order``, ``run_type``,
``start_time``, ``end_time``, ``inputs``, ``outputs``, ``extra``, ``error``, ...) and
feedback records (``key``, ``score``, ``value``, ``comment``, ``run_id``, ...).

Runs are grouped into threads by ``extra.metadata.thread_id``, ``session_id`` or
``conversation_id`` (the top-level ``session_id`` is the *project*, not the thread), else
by ``trace_id``, and ordered by ``dotted_order``. LLM runs give the messages, in any of
the forms tracers write: LangChain-serialised messages (``{"lc": 1, "type":
"constructor", "id": [..., "HumanMessage"], "kwargs": {...}}`` or ``{"type": "human",
"data": {...}}``, often as a list of lists) with ``outputs.generations``, or raw OpenAI
request/response payloads. Tool runs attach to their call (by the tool message's
``tool_call_id`` or the tool name); chain runs that carry the message state extend the
conversation. Token counts (``outputs.usage_metadata``, else
``extra.metadata.usage_metadata``), cost, model, finish reason and timing come from the
run, the tools offered (``inputs.tools``) become ``Conversation.tools``, and an LLM run
that failed (an ``error`` and no output) is kept in ``metadata.failed_calls``. History
re-sent on each LLM run is merged as for OpenTelemetry.

Feedback becomes scores on the conversation that holds its run (by ``run_id``, else by
``trace_id``), wherever the run is: runs and feedback exported to separate files are
joined when the files are imported together. Feedback whose run is in none of the files
is rejected, naming its file and line. Put the feedback file first when the runs file is
large: a conversation is held in memory until its last record has been read.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from pydantic import JsonValue, ValidationError

from ..datasets import ReadReport, RecordError, RejectSink
from ..trace import (
    AssistantMessage,
    Conversation,
    Message,
    Provenance,
    Score,
    ToolDefinition,
    ToolMessage,
    Usage,
    UserSignals,
)
from ._base import expect_dict
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
    parse_iso,
    read_grouped,
    text_of,
)
from ._tools import merge_tools, tool_definition
from .openai import message_from_openai
from .otel import _Span, span_order

FORMAT = "langsmith"

_THREAD_KEYS = ("thread_id", "session_id", "conversation_id")
_LC_ROLES = {
    "human": "user",
    "humanmessage": "user",
    "humanmessagechunk": "user",
    "ai": "assistant",
    "aimessage": "assistant",
    "aimessagechunk": "assistant",
    "system": "system",
    "systemmessage": "system",
    "tool": "tool",
    "toolmessage": "tool",
    "function": "tool",
    "functionmessage": "tool",
    "chat": "chat",
    "chatmessage": "chat",
}
_CORE = ("role", "content", "tool_calls", "tool_call_id", "name")
_LC_MAPPED = frozenset(
    {"content", "tool_calls", "tool_call_id", "name", "type", "role", "additional_kwargs"}
)
# Fields the OpenAI SDK writes on every response message; empty, they say nothing.
_OPENAI_NOISE = frozenset({"refusal", "annotations", "audio", "function_call"})
# The first line of a Python exception as LangSmith stores it: ``Name('text')`` (repr)
# or ``module.Name: text`` (traceback style).
_ERROR_REPR = re.compile(r"([A-Za-z_][\w.]*)\((.*)\)")
_ERROR_LINE = re.compile(r"([A-Za-z_][\w.]*): (.*)")
# Piece kinds: a feedback record gets a second piece linking it to its trace, so that
# feedback on a run missing from the export still finds the run's conversation.
_RUN, _FEEDBACK, _FEEDBACK_BY_TRACE = "run", "feedback", "feedback-by-trace"


def read_langsmith_files(
    paths: Sequence[Path],
    *,
    report: ReadReport,
    rejects: RejectSink | None = None,
    keep_source: bool = False,
) -> Iterator[Conversation]:
    """Yield the threads in LangSmith run exports read as one (see the module docstring).

    Feedback in one file attaches to runs in another; issues and notes name the file and
    line of the record they are about.
    """
    yield from read_grouped(
        list(paths), LangSmithFormat(), report=report, rejects=rejects, keep_source=keep_source
    )


read_langsmith = MultiFileImporter(read_langsmith_files)
"""Yield the threads in a LangSmith run export; see :func:`read_langsmith_files`."""


def lc_to_openai(raw: Any) -> tuple[dict[str, Any], dict[str, JsonValue]]:
    """A LangChain-serialised (or OpenAI) message as (OpenAI core fields, other fields).

    Raises:
        RecordError: when ``raw`` is not a message.
    """
    if not isinstance(raw, dict):
        raise RecordError(None, f"expected a message object, got {type(raw).__name__}")
    if "role" in raw and "lc" not in raw:
        plain = {k: raw[k] for k in _CORE if k in raw}
        rest = {
            k: json_safe(v)
            for k, v in raw.items()
            if k not in _CORE and not (k in _OPENAI_NOISE and v in (None, []))
        }
        return plain, rest
    if raw.get("lc") == 1 and isinstance(raw.get("id"), list) and raw["id"]:
        kind = str(raw["id"][-1])
        data = as_dict(raw.get("kwargs"))
    elif isinstance(raw.get("type"), str):
        kind = raw["type"]
        data = as_dict(raw.get("data")) or raw
    else:
        raise RecordError(None, "not a LangChain or OpenAI message (no role, type or lc id)")
    role = _LC_ROLES.get(kind.lower())
    if role is None:
        raise RecordError("type", f"unknown LangChain message type {kind!r}")
    if role == "chat":
        role = str(data.get("role", "user"))
    core: dict[str, Any] = {"role": role, "content": data.get("content")}
    if isinstance(data.get("name"), str):
        core["name"] = data["name"]
    if role == "tool":
        core["tool_call_id"] = data.get("tool_call_id")
    calls = data.get("tool_calls")
    extra_kwargs = as_dict(data.get("additional_kwargs"))
    if isinstance(calls, list) and calls:
        core["tool_calls"] = [
            {
                "id": c.get("id"),
                "type": "function",
                "function": {"name": c.get("name"), "arguments": c.get("args")},
            }
            if isinstance(c, dict) and "args" in c
            else c
            for c in calls
        ]
    elif isinstance(extra_kwargs.get("tool_calls"), list) and extra_kwargs["tool_calls"]:
        core["tool_calls"] = extra_kwargs["tool_calls"]
    rest = {
        k: json_safe(v) for k, v in data.items() if k not in _LC_MAPPED and v not in (None, {}, [])
    }
    leftover = {k: json_safe(v) for k, v in extra_kwargs.items() if k != "tool_calls"}
    if leftover:
        rest["additional_kwargs"] = leftover
    return core, rest


def _thread(run: dict[str, Any]) -> tuple[int, str, str] | None:
    extra = run.get("extra")
    meta = extra.get("metadata") if isinstance(extra, dict) else None
    if not isinstance(meta, dict):
        return None
    for prio, key in enumerate(_THREAD_KEYS):
        value = meta.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return (prio, f"extra.metadata.{key}", str(value))
    return None


class LangSmithFormat:
    """Splitting and building rules for LangSmith runs (see :mod:`._grouped`)."""

    name = FORMAT
    default_key = "trace_id"

    def split(self, record: Any, number: int, problems: list[Problem]) -> list[Piece]:
        """One piece per run or feedback record."""
        obj = expect_dict(record, "record")
        items: list[tuple[str, Any]]
        if isinstance(obj.get("runs"), list) or isinstance(obj.get("feedback"), list):
            items = [(f"runs.{i}", r) for i, r in enumerate(obj.get("runs") or [])]
            items += [(f"feedback.{i}", f) for i, f in enumerate(obj.get("feedback") or [])]
        else:
            items = [("record", obj)]
        pieces: list[Piece] = []
        for where, item in items:
            if not isinstance(item, dict):
                problems.append((where, "expected an object", item))
                continue
            if "run_type" not in item and "key" in item and "run_id" in item:
                pieces.extend(_feedback_pieces(item, number, where, problems))
                continue
            run_id = item.get("id")
            if not isinstance(run_id, str) or not run_id:
                problems.append((f"{where}.id", "a run needs a string id", item))
                continue
            trace = item.get("trace_id")
            if trace is not None and not isinstance(trace, str):
                problems.append((f"{where}.trace_id", "expected a string", item))
                continue
            parent = item.get("parent_run_id")
            unit = trace or (run_id if not parent else None)
            if unit is None:
                problems.append(
                    (f"{where}.trace_id", "missing on a child run; the run cannot be placed", item)
                )
                continue
            pieces.append(
                Piece(number, where, unit, item, hint=_thread(item), aliases=(run_id,), extra=_RUN)
            )
        return pieces

    def rewrap(self, pieces: list[Piece]) -> list[Any]:
        """The original run and feedback records."""
        return [p.data for p in pieces if p.extra != _FEEDBACK_BY_TRACE]

    def build(self, group: Group, notes: list[Note]) -> Conversation:
        """Rebuild one thread from its runs."""
        return _Builder(group, notes).build()


def _feedback_pieces(
    item: dict[str, Any], number: int, where: str, problems: list[Problem]
) -> list[Piece]:
    """The pieces of one feedback record: one linked to its run, one to its trace."""
    run_id = item.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        problems.append((f"{where}.run_id", "feedback needs the id of its run", item))
        return []
    fid = item.get("id") if isinstance(item.get("id"), str) else f"{number}:{where}"
    unit = f"feedback:{fid}"
    pieces = [Piece(number, where, unit, item, link=run_id, extra=_FEEDBACK)]
    trace = item.get("trace_id")
    if isinstance(trace, str) and trace and trace != run_id:
        pieces.append(Piece(number, where, unit, item, link=trace, extra=_FEEDBACK_BY_TRACE))
    return pieces


def _order_key(run: dict[str, Any]) -> str:
    dotted = run.get("dotted_order")
    return dotted if isinstance(dotted, str) else ""


class _Builder:
    def __init__(self, group: Group, notes: list[Note]) -> None:
        self.group = group
        self.notes = notes
        self.kept: dict[str, int] = {}
        self.metadata: dict[str, JsonValue] = {}
        self.history = History(self._convert, notes, normalize=_normalize)
        self.message_notes: dict[str, tuple[int, Origin]] = {}
        self.tools: list[ToolDefinition] = []
        self.changed_tools: dict[str, Origin] = {}

    def build(self) -> Conversation:
        runs, feedback = self._sort_pieces()
        if not runs:
            raise _orphan(feedback[0] if feedback else self.group.pieces[0])
        first_line = next(iter(runs.values())).number
        ordered = self._ordered_spans(runs)
        tools: list[_Span] = []
        chains: list[_Span] = []
        for s in ordered:
            kind = s.attrs.get("run_type")
            if kind == "llm":
                self._llm(s)
            elif kind == "tool":
                tools.append(s)
            elif kind == "chain":
                chains.append(s)
        for s in chains:
            self._chain(s)
        messages = self.history.messages()
        origins = self.history.origins()
        if not messages:
            raise SourceError(
                first_line, None, "no messages: no llm run carries input or output messages"
            )
        self._tools(tools, messages, origins)
        check_links(messages, origins)
        scores = [s for p in feedback for s in self._feedback(p)]
        root = next((s for s in ordered if not s.parent), None)
        if root is not None:
            self._root_metadata(root)
        if self.history.branches:
            self.metadata["branches"] = cast(JsonValue, self.history.branches)
        if self.history.failures:
            self.metadata["failed_calls"] = cast(JsonValue, self.history.failures)
        self._report(first_line)
        source_ids = [f"trace:{t}" for t in self.group.units if not t.startswith("feedback:")]
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
            scores=scores,
            provenance=Provenance(source_format=FORMAT, source_ids=source_ids),
        )

    def _sort_pieces(self) -> tuple[dict[str, Piece], list[Piece]]:
        """The runs by id (first copy of each) and the feedback records."""
        runs: dict[str, Piece] = {}
        feedback: list[Piece] = []
        for p in self.group.pieces:
            if p.extra == _FEEDBACK:
                feedback.append(p)
                continue
            if p.extra != _RUN:
                continue
            rid = p.data["id"]
            if rid in runs:
                self.notes.append(
                    (p.number, f"{p.where}.id", f"run {rid!r} repeats; the first copy is used")
                )
                continue
            runs[rid] = p
        return runs, feedback

    def _ordered_spans(self, runs: dict[str, Piece]) -> list[_Span]:
        spans: list[_Span] = []
        for order, p in enumerate(runs.values()):
            r = p.data
            start, end = parse_iso(r.get("start_time")), parse_iso(r.get("end_time"))
            parent = r.get("parent_run_id")
            spans.append(
                _Span(
                    piece=p,
                    trace=p.unit,
                    span_id=r["id"],
                    parent=parent if isinstance(parent, str) else None,
                    name=str(r.get("name", "")),
                    start=datetime_to_nanos(start) if start else None,
                    end=datetime_to_nanos(end) if end else None,
                    attrs=r,
                    events=[],
                    error=r.get("status") == "error" or bool(r.get("error")),
                    status_message=r.get("error") if isinstance(r.get("error"), str) else None,
                    order=order,
                )
            )
        if all(isinstance(s.attrs.get("dotted_order"), str) for s in spans):
            return sorted(spans, key=lambda s: (_order_key(s.attrs), s.order))
        return span_order(spans, self.notes)

    def _root_metadata(self, root: _Span) -> None:
        info = {
            k: json_safe(root.attrs[k])
            for k in ("name", "tags", "session_id")
            if root.attrs.get(k) not in (None, [], "")
        }
        extra = root.attrs.get("extra")
        meta = extra.get("metadata") if isinstance(extra, dict) else None
        if isinstance(meta, dict):
            rest = {k: json_safe(v) for k, v in meta.items() if k not in _THREAD_KEYS}
            if rest:
                info["metadata"] = rest
        if info:
            self.metadata["langsmith"] = info
            self.kept["langsmith"] = 1

    def _report(self, first_line: int) -> None:
        """Turn what was counted while building into notes."""
        for problem, (n, origin) in self.message_notes.items():
            self.notes.append((origin.line, origin.where, f"{problem} ({n} message(s))"))
        for name, origin in self.changed_tools.items():
            self.notes.append(
                (
                    origin.line,
                    origin.where,
                    f"tool {name!r} is offered again with a different definition; "
                    "tools keeps the first one",
                )
            )
        note = kept_note(first_line, self.kept)
        if note:
            self.notes.append(note)

    # -- messages ------------------------------------------------------------------------

    def _convert(self, raw: Any, origin: Origin) -> list[Message]:
        try:
            core, rest = lc_to_openai(raw)
            message = message_from_openai(core, origin.where)
        except RecordError as e:
            field = (
                f"{origin.where}.{e.field}"
                if e.field and not e.field.startswith(origin.where)
                else e.field or origin.where
            )
            raise SourceError(origin.line, field, e.message) from None
        except ValidationError as e:
            raise SourceError(origin.line, origin.where, str(e.errors()[0]["msg"])) from None
        meta = rest.get("response_metadata")
        usage = rest.get("usage_metadata")
        if isinstance(message, AssistantMessage):
            if isinstance(meta, dict):
                meta = dict(meta)
                reason = meta.pop("finish_reason", meta.pop("stop_reason", None))
                model = meta.pop("model_name", meta.pop("model", None))
                if isinstance(reason, str):
                    message.finish_reason = reason
                if isinstance(model, str):
                    message.model = model
                if meta:
                    rest["response_metadata"] = meta
                else:
                    del rest["response_metadata"]
            if isinstance(usage, dict):
                message.usage = _usage(
                    usage.get("input_tokens"),
                    usage.get("output_tokens"),
                    _nested(usage, "input_token_details", "cache_read"),
                    _nested(usage, "output_token_details", "reasoning"),
                    None,
                )
                del rest["usage_metadata"]
        if isinstance(message, ToolMessage) and rest.get("status") in ("success", "error"):
            message.is_error = rest.pop("status") == "error"
        if rest:
            message.metadata.update(rest)
            problem = f"message fields {', '.join(sorted(rest))} kept in metadata"
            n, first = self.message_notes.get(problem, (0, origin))
            self.message_notes[problem] = (n + 1, first)
        return [message]

    def _llm(self, s: _Span) -> None:
        r = s.attrs
        line = s.piece.number
        self._offered_tools(s)
        ins = self._inputs(s)
        outs = self._outputs(as_dict(r.get("outputs")), s.piece.where, line)
        if s.error and not outs:
            self._failed(s, ins)
            return
        if not ins and not outs:
            return

        def apply(msgs: list[Message], new: bool) -> None:
            target = next((m for m in reversed(msgs) if isinstance(m, AssistantMessage)), None)
            if target is not None:
                self._call_details(r, target)
                response_id = as_dict(r.get("outputs")).get("id")
                # The provider's response id, as the OpenTelemetry reader keeps it: a reply
                # can then be found again across exports.
                if new and target.id is None and isinstance(response_id, str) and response_id:
                    target.id = response_id

        self.history.add_call(ins, outs, label=f"run {s.span_id}", apply=apply)

    def _inputs(self, s: _Span) -> list[tuple[Any, Origin]]:
        """The messages an LLM run was given, with where each came from."""
        where, line = s.piece.where, s.piece.number
        inputs = as_dict(s.attrs.get("inputs"))
        messages = inputs.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], list):
            if len(messages) > 1:
                self.notes.append(
                    (line, f"{where}.inputs.messages", f"{NOT_KEPT}batched prompts after the first")
                )
            messages = messages[0]
            prefix = f"{where}.inputs.messages.0"
        else:
            prefix = f"{where}.inputs.messages"
        if isinstance(messages, list):
            return [(m, Origin(line, f"{prefix}.{i}")) for i, m in enumerate(messages)]
        if isinstance(inputs.get("prompts"), list):
            return [
                ({"role": "user", "content": p}, Origin(line, f"{where}.inputs.prompts.{i}"))
                for i, p in enumerate(inputs["prompts"])
            ]
        return []

    def _call_details(self, r: dict[str, Any], target: AssistantMessage) -> None:
        """Model, finish reason, usage, timing and parameters of the run that wrote ``target``.

        Only what the message does not have yet is filled in: a message re-sent by a
        later run keeps the details of the run that produced it.
        """
        params = as_dict(as_dict(r.get("extra")).get("invocation_params"))
        outputs = as_dict(r.get("outputs"))
        choices = outputs.get("choices")
        first = choices[0] if isinstance(choices, list) and choices else None
        reason = first.get("finish_reason") if isinstance(first, dict) else None
        if target.finish_reason is None and isinstance(reason, str):
            target.finish_reason = reason
        model = _model(r)
        if target.model is None and model is not None:
            target.model = model
        if target.usage is None:
            target.usage = _run_usage(r)
        start, end = parse_iso(r.get("start_time")), parse_iso(r.get("end_time"))
        if target.timestamp is None:
            target.timestamp = end
        if target.latency_ms is None:
            target.latency_ms = latency(start, end)
        if params:
            merge_metadata(
                target,
                "langsmith.invocation_params",
                {k: json_safe(v) for k, v in params.items()},
            )
            self.kept["langsmith.invocation_params"] = (
                self.kept.get("langsmith.invocation_params", 0) + 1
            )

    def _offered_tools(self, s: _Span) -> None:
        """Add the tools an LLM run offered (``inputs.tools``) to the conversation's."""
        inputs = as_dict(s.attrs.get("inputs"))
        field = "inputs.tools"
        raw = inputs.get("tools")
        if raw is None:
            # LangChain models bound to tools record them with the call's parameters.
            field = "extra.invocation_params.tools"
            raw = as_dict(as_dict(s.attrs.get("extra")).get("invocation_params")).get("tools")
        if not isinstance(raw, list):
            return
        offered: list[ToolDefinition] = []
        for i, item in enumerate(raw):
            where = f"{s.piece.where}.{field}.{i}"
            tool, why = tool_definition(item)
            if tool is None:
                self.notes.append((s.piece.number, where, f"{NOT_KEPT}{why}"))
                continue
            offered.append(tool)
        for name in merge_tools(self.tools, offered):
            self.changed_tools.setdefault(name, Origin(s.piece.number, f"{s.piece.where}.{field}"))

    def _failed(self, s: _Span, ins: list[tuple[Any, Origin]]) -> None:
        """Keep an LLM run that returned nothing but an error (a 429, a timeout)."""
        error_type, message = parse_error(s.attrs.get("error"))
        details: dict[str, JsonValue] = {}
        model = _model(s.attrs)
        if model is not None:
            details["model"] = model
        end = parse_iso(s.attrs.get("end_time"))
        if end is not None:
            details["end_time"] = end.isoformat()
        self.history.add_failed_call(
            ins,
            label=f"run {s.span_id}",
            error_type=error_type,
            message=message,
            details=details,
        )

    def _outputs(self, outputs: dict[str, Any], where: str, line: int) -> list[tuple[Any, Origin]]:
        gens = outputs.get("generations")
        if isinstance(gens, list) and gens:
            first = gens[0]
            if isinstance(first, list):
                first = first[0] if first else None
            if isinstance(first, dict):
                origin = Origin(line, f"{where}.outputs.generations.0.0")
                if isinstance(first.get("message"), dict):
                    return [(first["message"], Origin(line, f"{origin.where}.message"))]
                if isinstance(first.get("text"), str):
                    return [({"role": "assistant", "content": first["text"]}, origin)]
        choices = outputs.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            msg = choices[0].get("message")
            if isinstance(msg, dict):
                return [
                    (
                        dict(msg, role=msg.get("role", "assistant")),
                        Origin(line, f"{where}.outputs.choices.0.message"),
                    )
                ]
        for key in ("message", "output"):
            msg = outputs.get(key)
            if isinstance(msg, dict) and ("role" in msg or "lc" in msg or "type" in msg):
                return [(msg, Origin(line, f"{where}.outputs.{key}"))]
        return []

    def _chain(self, s: _Span) -> None:
        # LangGraph-style chains hold the message state: the outputs have the whole list
        # (the inputs are a prefix of it), so the outputs are used when present.
        r = s.attrs
        combined: list[tuple[Any, Origin]] = []
        for name in ("outputs", "inputs"):
            msgs = as_dict(r.get(name)).get("messages")
            if isinstance(msgs, list) and msgs and all(isinstance(m, dict) for m in msgs):
                combined = [
                    (m, Origin(s.piece.number, f"{s.piece.where}.{name}.messages.{i}"))
                    for i, m in enumerate(msgs)
                ]
                break
        if not combined:
            return
        try:
            placed = self.history.extend_if_continued(combined, f"run {s.span_id}")
        except RecordError:
            placed = False
        if placed is False:
            self.notes.append(
                (
                    s.piece.number,
                    combined[0][1].where,
                    f"{NOT_KEPT}chain run {s.span_id} holds messages that neither continue nor "
                    "repeat the conversation",
                )
            )

    # -- tools and feedback --------------------------------------------------------------

    def _tools(self, tools: list[_Span], messages: list[Message], origins: list[Origin]) -> None:
        runs: list[ToolRun] = []
        for s in tools:
            r = s.attrs
            inputs = as_dict(r.get("inputs"))
            outputs = as_dict(r.get("outputs"))
            out = outputs.get("output", outputs if outputs else None)
            call_id = inputs.get("tool_call_id")
            result: str | None = None
            if isinstance(out, dict) and ("lc" in out or "type" in out):
                try:
                    core, _ = lc_to_openai(out)
                    call_id = call_id or core.get("tool_call_id")
                    result = text_of(core.get("content"))
                except RecordError:
                    result = text_of(out)
            else:
                result = text_of(out)
            if result is None and s.error:
                result = s.status_message
            start, end = parse_iso(r.get("start_time")), parse_iso(r.get("end_time"))
            runs.append(
                ToolRun(
                    call_id=call_id if isinstance(call_id, str) and call_id else None,
                    name=s.name or None,
                    result=result,
                    is_error=s.error,
                    timestamp=end,
                    latency_ms=latency(start, end),
                    extra={},
                    origin=Origin(s.piece.number, f"{s.piece.where}.outputs.output.tool_call_id"),
                    label=f"tool run {s.span_id}",
                    raw=r,
                )
            )
        attach_tool_runs(
            runs,
            messages,
            origins,
            branches=self.history.branches,
            notes=self.notes,
            metadata=self.metadata,
            extra_key="langsmith",
            unattached_key="langsmith.unattached_tool_runs",
        )

    def _feedback(self, p: Piece) -> list[Score]:
        f = p.data
        key = f.get("key")
        if not isinstance(key, str) or not key:
            self.notes.append((p.number, f"{p.where}.key", f"{NOT_KEPT}feedback without a key"))
            return []
        score, value, comment = f.get("score"), f.get("value"), f.get("comment")
        source_info = f.get("feedback_source")
        kind_name = source_info.get("type") if isinstance(source_info, dict) else None
        source = {"model": "model", "app": "user", "auto_eval": "model"}.get(
            str(kind_name), "human"
        )
        base: dict[str, Any] = {
            "conversation_id": self.group.key,
            "message_index": self.history.output_index(f"run {f.get('run_id')}"),
            "name": key,
            "reason": comment if isinstance(comment, str) else None,
            "source": source,
            "grader": "langsmith",
            "created_at": parse_iso(f.get("created_at")),
        }
        out: list[Score] = []
        if isinstance(score, bool):
            out.append(Score(**base, value=score, kind="binary"))
        elif isinstance(score, int | float):
            out.append(Score(**base, value=float(score), kind="continuous"))
        if isinstance(value, str) and value:
            out.append(
                Score(
                    **{**base, "name": f"{key}.value" if out else key},
                    value=value,
                    kind="categorical",
                )
            )
        if f.get("correction") is not None or (value is not None and not isinstance(value, str)):
            self.notes.append(
                (
                    p.number,
                    p.where,
                    f"feedback {key!r}: correction or structured value has no canonical field",
                )
            )
        if not out:
            self.notes.append((p.number, p.where, f"feedback {key!r} has no score or value"))
        return out


def _nested(obj: dict[str, Any], outer: str, inner: str) -> Any:
    value = obj.get(outer)
    return value.get(inner) if isinstance(value, dict) else None


def _usage(inp: Any, out: Any, cache: Any, reasoning: Any, cost: Any) -> Usage | None:
    fields: dict[str, Any] = {}
    for name, value in (
        ("input_tokens", inp),
        ("output_tokens", out),
        ("cache_read_tokens", cache),
        ("reasoning_tokens", reasoning),
    ):
        if count(value) is not None:
            fields[name] = count(value)
    if money(cost) is not None:
        fields["cost_usd"] = money(cost)
    return Usage(**fields) if fields else None


def _run_usage(r: dict[str, Any]) -> Usage | None:
    """Token counts of an LLM run, from wherever its tracer put them.

    The SDK's ``wrap_openai`` moves the response's usage to ``outputs.usage_metadata``
    (copied to ``extra.metadata.usage_metadata``); a raw response keeps ``usage``; a
    LangSmith export adds ``prompt_tokens``/``completion_tokens`` and cost on the run.
    """
    outputs = as_dict(r.get("outputs"))
    meta = as_dict(as_dict(r.get("extra")).get("metadata"))
    cost = r.get("total_cost")
    for found in (outputs.get("usage_metadata"), meta.get("usage_metadata")):
        if isinstance(found, dict):
            usage = _usage(
                found.get("input_tokens"),
                found.get("output_tokens"),
                _nested(found, "input_token_details", "cache_read"),
                _nested(found, "output_token_details", "reasoning"),
                cost,
            )
            if usage is not None:
                return usage
    raw = outputs.get("usage")
    if isinstance(raw, dict):
        usage = _usage(
            raw.get("prompt_tokens"),
            raw.get("completion_tokens"),
            _nested(raw, "prompt_tokens_details", "cached_tokens"),
            _nested(raw, "completion_tokens_details", "reasoning_tokens"),
            cost,
        )
        if usage is not None:
            return usage
    return _usage(r.get("prompt_tokens"), r.get("completion_tokens"), None, None, cost)


def _model(r: dict[str, Any]) -> str | None:
    """The model of an LLM run: the one the response named, else the one requested."""
    extra = as_dict(r.get("extra"))
    params = as_dict(extra.get("invocation_params"))
    for value in (
        as_dict(r.get("outputs")).get("model"),
        as_dict(extra.get("metadata")).get("ls_model_name"),
        params.get("model"),
        params.get("model_name"),
        as_dict(r.get("inputs")).get("model"),
    ):
        if isinstance(value, str) and value:
            return value
    return None


def parse_error(error: Any) -> tuple[str | None, str | None]:
    """(exception type, message) from a run's ``error`` text; its first line is used.

    LangSmith stores ``repr(exception)`` followed by the traceback, so the first line
    reads ``RateLimitError('Error code: 429 - ...')``; ``Name: text`` is read too. Text
    in neither form is the message, with no type.
    """
    if not isinstance(error, str) or not error.strip():
        return None, None
    first = error.strip().splitlines()[0].strip()
    found = _ERROR_REPR.fullmatch(first)
    if found is not None:
        return found[1], _repr_text(found[2])
    found = _ERROR_LINE.fullmatch(first)
    if found is not None:
        return found[1], found[2].strip() or None
    return None, first


def _repr_text(args: str) -> str | None:
    # The arguments of an exception's repr: one string literal is unquoted, anything
    # else (several arguments, numbers) is kept as written.
    if not args:
        return None
    try:
        value = ast.literal_eval(args)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return args
    return value if isinstance(value, str) and value else args


def _orphan(p: Piece) -> SourceError:
    """The error for feedback whose run is in none of the files read."""
    f = p.data
    trace = f.get("trace_id")
    also = f" (trace {trace!r})" if isinstance(trace, str) and trace else ""
    return SourceError(
        p.number,
        f"{p.where}.run_id",
        f"feedback {f.get('key')!r} is for run {f.get('run_id')!r}{also}, which is in none "
        "of the files read; import it in one command with the runs file that holds its run",
    )


def _normalize(raw: Any) -> Any:
    try:
        core, _ = lc_to_openai(raw)
    except RecordError:
        return raw
    return core
