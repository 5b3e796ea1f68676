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
conversation. Token counts, cost, model and timing come from the run; feedback becomes
scores. History re-sent on each LLM run is merged as for OpenTelemetry.
"""

from __future__ import annotations

from collections.abc import Iterator
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
    ToolMessage,
    Usage,
    UserSignals,
)
from ._base import expect_dict
from ._grouped import (
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
_OPENAI_NOISE: dict[str, Any] = {
    "refusal": None,
    "annotations": [],
    "audio": None,
    "function_call": None,
}


def read_langsmith(
    path: Path,
    *,
    report: ReadReport,
    rejects: RejectSink | None = None,
    keep_source: bool = False,
) -> Iterator[Conversation]:
    """Yield the threads in a LangSmith run export (see the module docstring)."""
    yield from read_grouped(
        path, LangSmithFormat(), report=report, rejects=rejects, keep_source=keep_source
    )


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
            if k not in _CORE and _OPENAI_NOISE.get(k, ...) != v
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
                run_id = item.get("run_id")
                if not isinstance(run_id, str) or not run_id:
                    problems.append((f"{where}.run_id", "feedback needs the id of its run", item))
                    continue
                fid = item.get("id") if isinstance(item.get("id"), str) else f"{number}:{where}"
                pieces.append(
                    Piece(number, where, f"feedback:{fid}", item, link=run_id, extra="feedback")
                )
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
                Piece(number, where, unit, item, hint=_thread(item), aliases=(run_id,), extra="run")
            )
        return pieces

    def rewrap(self, pieces: list[Piece]) -> list[Any]:
        """The original run and feedback records."""
        return [p.data for p in pieces]

    def build(self, group: Group, notes: list[Note]) -> Conversation:
        """Rebuild one thread from its runs."""
        return _Builder(group, notes).build()


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

    def build(self) -> Conversation:
        runs: dict[str, Piece] = {}
        feedback: list[Piece] = []
        for p in self.group.pieces:
            if p.extra == "feedback":
                feedback.append(p)
                continue
            rid = p.data["id"]
            if rid in runs:
                self.notes.append(
                    (p.number, f"{p.where}.id", f"run {rid!r} repeats; the first copy is used")
                )
                continue
            runs[rid] = p
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
            ordered = sorted(spans, key=lambda s: (_order_key(s.attrs), s.order))
        else:
            ordered = span_order(spans, self.notes)
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
                self.group.pieces[0].number,
                None,
                "no messages: no llm run carries input or output messages",
            )
        self._tools(tools, messages, origins)
        check_links(messages, origins)
        scores = [s for p in feedback for s in self._feedback(p)]
        root = next((s for s in ordered if not s.parent), None)
        if root is not None:
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
        if self.history.branches:
            self.metadata["branches"] = cast(JsonValue, self.history.branches)
        for problem, (n, origin) in self.message_notes.items():
            self.notes.append((origin.line, origin.where, f"{problem} ({n} message(s))"))
        note = kept_note(self.group.pieces[0].number, self.kept)
        if note:
            self.notes.append(note)
        source_ids = [f"trace:{t}" for t in self.group.units if not t.startswith("feedback:")]
        if self.group.key_name != "trace_id":
            source_ids.insert(0, f"{self.group.key_name}:{self.group.key}")
        return Conversation(
            id=self.group.key,
            messages=messages,
            metadata=self.metadata,
            signals=UserSignals(
                edits=self.history.edits or None, retries=self.history.retries or None
            ),
            scores=scores,
            provenance=Provenance(source_format=FORMAT, source_ids=source_ids),
        )

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
        where = s.piece.where
        line = s.piece.number
        inputs = as_dict(r.get("inputs"))
        outputs = as_dict(r.get("outputs"))
        ins: list[tuple[Any, Origin]] = []
        messages = inputs.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], list):
            if len(messages) > 1:
                self.notes.append(
                    (line, f"{where}.inputs.messages", "batched prompts: only the first is used")
                )
            messages = messages[0]
            prefix = f"{where}.inputs.messages.0"
        else:
            prefix = f"{where}.inputs.messages"
        if isinstance(messages, list):
            ins = [(m, Origin(line, f"{prefix}.{i}")) for i, m in enumerate(messages)]
        elif isinstance(inputs.get("prompts"), list):
            ins = [
                ({"role": "user", "content": p}, Origin(line, f"{where}.inputs.prompts.{i}"))
                for i, p in enumerate(inputs["prompts"])
            ]
        outs = self._outputs(outputs, where, line)
        if not ins and not outs:
            return

        def apply(msgs: list[Message], new: bool) -> None:
            target = next((m for m in reversed(msgs) if isinstance(m, AssistantMessage)), None)
            if target is None:
                return
            extra = as_dict(r.get("extra"))
            meta = as_dict(extra.get("metadata"))
            params = as_dict(extra.get("invocation_params"))
            response = as_dict(r.get("outputs"))
            choices = response.get("choices")
            first = choices[0] if isinstance(choices, list) and choices else None
            reason = first.get("finish_reason") if isinstance(first, dict) else None
            if target.finish_reason is None and isinstance(reason, str):
                target.finish_reason = reason
            model = (
                response.get("model")
                or meta.get("ls_model_name")
                or params.get("model")
                or params.get("model_name")
            )
            if target.model is None and isinstance(model, str):
                target.model = model
            if target.usage is None:
                target.usage = _usage(
                    r.get("prompt_tokens"),
                    r.get("completion_tokens"),
                    None,
                    None,
                    r.get("total_cost"),
                )
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

        self.history.add_call(ins, outs, label=f"run {s.span_id}", apply=apply)

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
                    f"chain run {s.span_id} holds messages that neither continue nor repeat the "
                    "conversation; not used",
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
            self.notes.append((p.number, f"{p.where}.key", "feedback without a key skipped"))
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


def _normalize(raw: Any) -> Any:
    try:
        core, _ = lc_to_openai(raw)
    except RecordError:
        return raw
    return core
