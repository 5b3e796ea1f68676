"""Langfuse trace exports to canonical conversations.

Accepted records (JSONL or a JSON array; API pages ``{"data": [...]}`` are unpacked):
traces with their ``observations`` and ``scores`` (``TraceWithFullDetails``), and also
standalone observation records (with ``traceId`` and ``type``) and score records.

Traces are grouped by ``sessionId``, else each trace is a conversation. Observations
form a tree (``parentObservationId``) ordered by ``startTime``. GENERATION observations
carry the messages (OpenAI style: a message list or ``{"messages": [...]}`` as input, an
assistant message, a ``choices`` response or a string as output), the model,
``usageDetails`` and ``costDetails`` (→ :class:`Usage`) and timing. TOOL observations
attach to their call (by a ``tool_call_id`` in their input or metadata, else by name);
``level: ERROR`` marks a failed tool. Scores map by ``dataType``: NUMERIC → continuous,
CATEGORICAL → categorical, BOOLEAN → binary; a boolean user-feedback score (a name with
``feedback``, ``thumb`` or ``user``, from the API) also sets ``signals.thumbs``. History
re-sent on each generation is merged as for OpenTelemetry.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from pydantic import JsonValue, ValidationError

from ..datasets import ReadReport, RecordError, RejectSink
from ..trace import AssistantMessage, Conversation, Message, Provenance, Score, Usage, UserSignals
from ._base import expect_dict
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
from .openai import message_from_openai
from .otel import _Span, span_order

FORMAT = "langfuse"

_CORE = ("role", "content", "tool_calls", "tool_call_id", "name")
_NOISE: dict[str, Any] = {"refusal": None, "annotations": [], "audio": None, "function_call": None}
_OBSERVATION_TYPES = (
    "GENERATION",
    "SPAN",
    "EVENT",
    "AGENT",
    "TOOL",
    "CHAIN",
    "RETRIEVER",
    "EVALUATOR",
    "EMBEDDING",
    "GUARDRAIL",
)
_TRACE_MAPPED = frozenset({"id", "sessionId", "userId", "observations", "scores", "timestamp"})
_THUMBS_WORDS = ("feedback", "thumb", "user")


def read_langfuse(
    path: Path,
    *,
    report: ReadReport,
    rejects: RejectSink | None = None,
    keep_source: bool = False,
) -> Iterator[Conversation]:
    """Yield the sessions (or traces) in a Langfuse export (see the module docstring)."""
    yield from read_grouped(
        path, LangfuseFormat(), report=report, rejects=rejects, keep_source=keep_source
    )


class LangfuseFormat:
    """Splitting and building rules for Langfuse traces (see :mod:`._grouped`)."""

    name = FORMAT
    default_key = "trace_id"

    def split(self, record: Any, number: int, problems: list[Problem]) -> list[Piece]:
        """One piece per trace, standalone observation or standalone score."""
        obj = expect_dict(record, "record")
        items = (
            [(f"data.{i}", x) for i, x in enumerate(obj["data"])]
            if isinstance(obj.get("data"), list)
            else [("record", obj)]
        )
        pieces: list[Piece] = []
        for where, item in items:
            if not isinstance(item, dict):
                problems.append((where, "expected an object", item))
                continue
            session = item.get("sessionId")
            hint = (0, "sessionId", session) if isinstance(session, str) and session else None
            if "observations" in item or ("traceId" not in item and "dataType" not in item):
                tid = item.get("id")
                if not isinstance(tid, str) or not tid:
                    problems.append((f"{where}.id", "a trace needs a string id", item))
                    continue
                pieces.append(Piece(number, where, tid, item, hint=hint, extra="trace"))
                continue
            tid = item.get("traceId")
            kind = (
                "score"
                if ("dataType" in item or "value" in item)
                and item.get("type") not in _OBSERVATION_TYPES
                else "observation"
            )
            if isinstance(tid, str) and tid:
                pieces.append(Piece(number, where, tid, item, hint=hint, extra=kind))
            elif kind == "score" and hint is not None:
                pieces.append(
                    Piece(number, where, f"session:{session}", item, hint=hint, extra=kind)
                )
            else:
                problems.append(
                    (f"{where}.traceId", f"a standalone {kind} needs its traceId", item)
                )
        return pieces

    def rewrap(self, pieces: list[Piece]) -> list[Any]:
        """The original records."""
        return [p.data for p in pieces]

    def build(self, group: Group, notes: list[Note]) -> Conversation:
        """Rebuild one session from its traces."""
        return _Builder(group, notes).build()


def _normalize(raw: Any) -> Any:
    if isinstance(raw, dict):
        return {k: v for k, v in raw.items() if k in _CORE and v is not None}
    return raw


class _Builder:
    def __init__(self, group: Group, notes: list[Note]) -> None:
        self.group = group
        self.notes = notes
        self.kept: dict[str, int] = {}
        self.metadata: dict[str, JsonValue] = {}
        self.history = History(self._convert, notes, normalize=_normalize)
        self.message_notes: dict[str, tuple[int, Origin]] = {}
        self.thumbs: str | None = None

    def build(self) -> Conversation:
        traces: dict[str, Piece] = {}
        observations: dict[str, tuple[Piece, dict[str, Any], str]] = {}
        scores: list[tuple[Piece, dict[str, Any], str]] = []
        for p in self.group.pieces:
            if p.extra == "trace":
                if p.unit in traces:
                    self.notes.append(
                        (
                            p.number,
                            f"{p.where}.id",
                            f"trace {p.unit!r} repeats; the first copy is used",
                        )
                    )
                    continue
                traces[p.unit] = p
                obs = p.data.get("observations") or []
                for i, o in enumerate(obs if isinstance(obs, list) else []):
                    self._add_observation(observations, p, o, f"{p.where}.observations.{i}")
                sc = p.data.get("scores") or []
                scores.extend(
                    (p, s, f"{p.where}.scores.{i}")
                    for i, s in enumerate(sc if isinstance(sc, list) else [])
                    if isinstance(s, dict)
                )
            elif p.extra == "observation":
                self._add_observation(observations, p, p.data, p.where)
            else:
                scores.append((p, p.data, p.where))
        trace_start = {tid: parse_iso(t.data.get("timestamp")) for tid, t in traces.items()}
        spans: list[_Span] = []
        for order, (p, o, where) in enumerate(observations.values()):
            start, end = parse_iso(o.get("startTime")), parse_iso(o.get("endTime"))
            tid: str = o["traceId"] if isinstance(o.get("traceId"), str) else p.unit
            if start is None:
                start = trace_start.get(tid)
            parent = o.get("parentObservationId")
            spans.append(
                _Span(
                    piece=Piece(p.number, where, tid, o),
                    trace=tid,
                    span_id=o["id"],
                    parent=parent if isinstance(parent, str) else None,
                    name=str(o.get("name") or ""),
                    start=datetime_to_nanos(start) if start else None,
                    end=datetime_to_nanos(end) if end else None,
                    attrs=o,
                    events=[],
                    error=o.get("level") == "ERROR",
                    status_message=o.get("statusMessage")
                    if isinstance(o.get("statusMessage"), str)
                    else None,
                    order=order,
                )
            )
        ordered = span_order(spans, self.notes)
        tools: list[_Span] = []
        others: list[_Span] = []
        for s in ordered:
            kind = s.attrs.get("type")
            if kind == "GENERATION":
                self._generation(s)
            elif kind == "TOOL":
                tools.append(s)
            else:
                others.append(s)
        for s in others:
            self._other(s)
        messages = self.history.messages()
        origins = self.history.origins()
        if not messages:
            raise SourceError(
                self.group.pieces[0].number,
                None,
                "no messages: no GENERATION observation carries input or output messages",
            )
        self._tools(tools, messages, origins)
        check_links(messages, origins)
        converted = [s for p, raw, where in scores for s in self._score(p, raw, where)]
        first = next(iter(traces.values()), None)
        if first is not None:
            t = first.data
            if isinstance(t.get("userId"), str):
                self.metadata["user_id"] = t["userId"]
            info = {
                k: json_safe(v)
                for k, v in t.items()
                if k not in _TRACE_MAPPED and v not in (None, [], {})
            }
            if info:
                self.metadata["langfuse.trace"] = info
                self.kept["langfuse.trace"] = 1
        if self.history.branches:
            self.metadata["branches"] = cast(JsonValue, self.history.branches)
        for problem, (n, origin) in self.message_notes.items():
            self.notes.append((origin.line, origin.where, f"{problem} ({n} message(s))"))
        note = kept_note(self.group.pieces[0].number, self.kept)
        if note:
            self.notes.append(note)
        source_ids = [f"trace:{t}" for t in self.group.units if not t.startswith("session:")]
        if self.group.key_name != "trace_id":
            source_ids.insert(0, f"{self.group.key_name}:{self.group.key}")
        return Conversation(
            id=self.group.key,
            messages=messages,
            metadata=self.metadata,
            signals=UserSignals(
                thumbs=cast(Any, self.thumbs),
                edits=self.history.edits or None,
                retries=self.history.retries or None,
            ),
            scores=converted,
            provenance=Provenance(source_format=FORMAT, source_ids=source_ids),
        )

    def _add_observation(
        self,
        into: dict[str, tuple[Piece, dict[str, Any], str]],
        p: Piece,
        o: Any,
        where: str,
    ) -> None:
        if not isinstance(o, dict) or not isinstance(o.get("id"), str) or not o["id"]:
            self.notes.append(
                (
                    p.number,
                    f"{where}.id",
                    "observation without a string id skipped; kept in metadata['langfuse.skipped']",
                )
            )
            skipped = self.metadata.setdefault("langfuse.skipped", [])
            if isinstance(skipped, list):
                skipped.append(json_safe(o))
            return
        if o["id"] in into:
            if into[o["id"]][1] != o:
                self.notes.append(
                    (
                        p.number,
                        f"{where}.id",
                        f"observation {o['id']!r} repeats with different content; the first "
                        "copy is used",
                    )
                )
            return
        into[o["id"]] = (p, o, where)

    # -- messages ------------------------------------------------------------------------

    def _convert(self, raw: Any, origin: Origin) -> list[Message]:
        if not isinstance(raw, dict):
            raise SourceError(
                origin.line, origin.where, f"expected a message object, got {type(raw).__name__}"
            )
        core = {k: raw[k] for k in _CORE if k in raw}
        rest = {
            k: json_safe(v) for k, v in raw.items() if k not in _CORE and _NOISE.get(k, ...) != v
        }
        try:
            message = message_from_openai(core, origin.where)
        except RecordError as e:
            raise SourceError(origin.line, e.field, e.message) from None
        except ValidationError as e:
            raise SourceError(origin.line, origin.where, str(e.errors()[0]["msg"])) from None
        if rest:
            message.metadata.update(rest)
            problem = f"message fields {', '.join(sorted(rest))} kept in metadata"
            n, first = self.message_notes.get(problem, (0, origin))
            self.message_notes[problem] = (n + 1, first)
        return [message]

    def _messages(
        self, value: Any, where: str, line: int, *, output: bool
    ) -> list[tuple[Any, Origin]]:
        if isinstance(value, dict) and isinstance(value.get("messages"), list):
            value, where = value["messages"], f"{where}.messages"
        if output and isinstance(value, dict) and isinstance(value.get("choices"), list):
            choices = value["choices"]
            first = choices[0] if choices else None
            msg = first.get("message") if isinstance(first, dict) else None
            if isinstance(msg, dict):
                return [
                    (
                        dict(msg, role=msg.get("role", "assistant")),
                        Origin(line, f"{where}.choices.0.message"),
                    )
                ]
            return []
        if isinstance(value, str):
            role = "assistant" if output else "user"
            return [({"role": role, "content": value}, Origin(line, where))]
        if isinstance(value, dict) and (
            "role" in value or (output and ("content" in value or "tool_calls" in value))
        ):
            msg = value if "role" in value else dict(value, role="assistant")
            return [(msg, Origin(line, where))]
        if isinstance(value, list) and all(isinstance(m, dict) and "role" in m for m in value):
            return [(m, Origin(line, f"{where}.{i}")) for i, m in enumerate(value)]
        return []

    def _generation(self, s: _Span) -> None:
        o = s.attrs
        line, where = s.piece.number, s.piece.where
        ins = self._messages(o.get("input"), f"{where}.input", line, output=False)
        outs = self._messages(o.get("output"), f"{where}.output", line, output=True)
        if not ins and not outs:
            if o.get("input") is not None or o.get("output") is not None:
                self.notes.append(
                    (
                        line,
                        f"{where}.input",
                        f"{NOT_KEPT}generation input/output is not a message list",
                    )
                )
            return

        def apply(msgs: list[Message], new: bool) -> None:
            target = next((m for m in reversed(msgs) if isinstance(m, AssistantMessage)), None)
            if target is None:
                return
            if target.model is None and isinstance(o.get("model"), str):
                target.model = o["model"]
            choices = as_dict(o.get("output")).get("choices")
            first = choices[0] if isinstance(choices, list) and choices else None
            reason = first.get("finish_reason") if isinstance(first, dict) else None
            if target.finish_reason is None and isinstance(reason, str):
                target.finish_reason = reason
            if target.usage is None:
                target.usage = _usage(o)
            start, end = parse_iso(o.get("startTime")), parse_iso(o.get("endTime"))
            if target.timestamp is None:
                target.timestamp = end
            if target.latency_ms is None:
                target.latency_ms = latency(start, end)
            extra = {
                k: json_safe(o[k])
                for k in (
                    "modelParameters",
                    "level",
                    "statusMessage",
                    "promptId",
                    "metadata",
                    "completionStartTime",
                )
                if o.get(k) not in (None, {}, [], "", "DEFAULT")
            }
            for key in ("input", "output"):
                value = o.get(key)
                if isinstance(value, dict) and isinstance(value.get("messages"), list):
                    rest = {k: json_safe(v) for k, v in value.items() if k != "messages"}
                    if rest:
                        extra[key] = rest
            if extra:
                merge_metadata(target, "langfuse.observation", extra)
                self.kept["langfuse.observation"] = self.kept.get("langfuse.observation", 0) + 1

        self.history.add_call(ins, outs, label=f"observation {s.span_id}", apply=apply)

    def _other(self, s: _Span) -> None:
        o = s.attrs
        ins = self._messages(o.get("input"), f"{s.piece.where}.input", s.piece.number, output=False)
        outs = self._messages(
            o.get("output"), f"{s.piece.where}.output", s.piece.number, output=True
        )
        if not ins or not all("role" in m for m, _ in ins):
            return
        try:
            placed = self.history.extend_if_continued(ins + outs, f"observation {s.span_id}")
        except RecordError:
            placed = False
        if placed is False:
            self.notes.append(
                (
                    s.piece.number,
                    f"{s.piece.where}.input",
                    f"{NOT_KEPT}observation {s.span_id} holds messages that neither continue "
                    "nor repeat the conversation",
                )
            )

    # -- tools and scores ----------------------------------------------------------------

    def _tools(self, tools: list[_Span], messages: list[Message], origins: list[Origin]) -> None:
        runs: list[ToolRun] = []
        for s in tools:
            o = s.attrs
            call_id = None
            for container in (o.get("metadata"), o.get("input")):
                if isinstance(container, dict) and isinstance(container.get("tool_call_id"), str):
                    call_id = container["tool_call_id"]
                    break
            result = text_of(o.get("output"))
            if result is None and s.error:
                result = s.status_message
            start, end = parse_iso(o.get("startTime")), parse_iso(o.get("endTime"))
            runs.append(
                ToolRun(
                    call_id=call_id or None,
                    name=s.name or None,
                    result=result,
                    is_error=s.error,
                    timestamp=end,
                    latency_ms=latency(start, end),
                    extra={},
                    origin=Origin(s.piece.number, f"{s.piece.where}.metadata.tool_call_id"),
                    label=f"tool observation {s.span_id}",
                    raw=o,
                )
            )
        attach_tool_runs(
            runs,
            messages,
            origins,
            branches=self.history.branches,
            notes=self.notes,
            metadata=self.metadata,
            extra_key="langfuse.observation",
            unattached_key="langfuse.unattached_tool_observations",
        )

    def _score(self, p: Piece, raw: dict[str, Any], where: str) -> list[Score]:
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            self.notes.append((p.number, f"{where}.name", f"{NOT_KEPT}score without a name"))
            return []
        data_type = raw.get("dataType")
        value = raw.get("value")
        string_value = raw.get("stringValue")
        source = raw.get("source")
        thumbs_like = any(w in name.lower() for w in _THUMBS_WORDS)
        who = {"ANNOTATION": "human", "EVAL": "model"}.get(
            str(source), "user" if thumbs_like else "rule"
        )
        comment = raw.get("comment")
        obs = raw.get("observationId")
        base: dict[str, Any] = {
            "conversation_id": self.group.key,
            "message_index": self.history.output_index(f"observation {obs}")
            if isinstance(obs, str)
            else None,
            "name": name,
            "reason": comment if isinstance(comment, str) else None,
            "source": who,
            "grader": "langfuse",
            "created_at": parse_iso(raw.get("timestamp")),
        }
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        try:
            if data_type == "BOOLEAN":
                flag = (
                    bool(value)
                    if numeric or isinstance(value, bool)
                    else str(string_value).lower() == "true"
                )
                if thumbs_like and source in (None, "API"):
                    self.thumbs = "up" if flag else "down"
                return [Score(**base, value=flag, kind="binary")]
            if data_type == "CATEGORICAL" or (data_type is None and isinstance(value, str)):
                label = string_value if isinstance(string_value, str) else value
                if not isinstance(label, str):
                    label = str(label)
                return [Score(**base, value=label, kind="categorical")]
            if isinstance(value, int | float) and not isinstance(value, bool):
                return [Score(**base, value=float(value), kind="continuous")]
        except ValidationError as e:
            self.notes.append(
                (p.number, where, f"{NOT_KEPT}score {name!r}: {e.errors()[0]['msg']}")
            )
            return []
        self.notes.append((p.number, f"{where}.value", f"score {name!r} has no usable value"))
        return []


def _usage(o: dict[str, Any]) -> Usage | None:
    details = as_dict(o.get("usageDetails"))
    legacy = as_dict(o.get("usage"))
    fields: dict[str, Any] = {}
    for name, keys in (
        ("input_tokens", ("input", "promptTokens", "prompt_tokens")),
        ("output_tokens", ("output", "completionTokens", "completion_tokens")),
        (
            "cache_read_tokens",
            ("cache_read_input_tokens", "input_cached_tokens", "input_cache_read"),
        ),
        ("reasoning_tokens", ("output_reasoning_tokens", "output_reasoning", "reasoning_tokens")),
    ):
        for key in keys:
            value = details.get(key, legacy.get(key, o.get(key)))
            if count(value) is not None:
                fields[name] = count(value)
                break
    costs = as_dict(o.get("costDetails"))
    cost = money(costs.get("total", o.get("calculatedTotalCost", o.get("totalCost"))))
    if cost is not None:
        fields["cost_usd"] = cost
    return Usage(**fields) if fields else None
