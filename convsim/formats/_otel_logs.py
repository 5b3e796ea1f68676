"""OTLP log records with GenAI events, joined to the spans they describe.

OpenTelemetry's own OpenAI instrumentation (``opentelemetry-instrumentation-openai-v2``)
records message content only as log records (``resourceLogs`` → ``scopeLogs`` →
``logRecords``): one ``gen_ai.{system,user,assistant,tool}.message`` record per input
message and one ``gen_ai.choice`` per answer, or, in the newer conventions, one
``gen_ai.client.inference.operation.details`` record carrying the span's attributes and
the messages. Each record names its span by ``traceId`` and ``spanId``.

The records are split into pieces of the span's trace, so the two-pass reader groups
them with the spans whatever file or order they come in, and the builder joins them to
their span: message events become the span's events (read like the events older
emitters put on spans), and operation details add attributes the span lacks. Records
whose span is not in the input become a call of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..datasets import RecordError
from ._base import expect_dict, expect_list
from ._grouped import Piece, Problem

LOG = "log"
"""``Piece.extra[2]`` of a log-record piece (span pieces have no third element)."""

MESSAGE_EVENTS = frozenset(
    {
        "gen_ai.system.message",
        "gen_ai.developer.message",
        "gen_ai.user.message",
        "gen_ai.assistant.message",
        "gen_ai.tool.message",
        "gen_ai.choice",
    }
)
DETAILS_EVENT = "gen_ai.client.inference.operation.details"
"""One record per call with the span's attributes and the messages (newer conventions)."""


@dataclass(slots=True)
class LogRecord:
    """One decoded log record."""

    piece: Piece
    trace: str
    span_id: str | None
    event: str
    """Event name: the record's ``eventName``, else its ``event.name`` attribute."""
    time: int | None
    """``timeUnixNano``, else ``observedTimeUnixNano``."""
    attrs: dict[str, Any]
    body: Any
    """The body as a raw OTLP ``AnyValue`` (decoded where it is used)."""


def split_logs(
    obj: dict[str, Any],
    number: int,
    problems: list[Problem],
    *,
    normalize_id: Any,
    hint_of: Any,
) -> list[Piece]:
    """Cut an ``ExportLogsServiceRequest`` into one piece per log record.

    A record without a trace id cannot be joined to anything and is reported as a
    problem (set aside), not guessed at.
    """
    pieces: list[Piece] = []
    for i, rl in enumerate(
        expect_list(obj.get("resourceLogs", obj.get("resource_logs")), "resourceLogs")
    ):
        where_rl = f"resourceLogs.{i}"
        scopes = rl.get("scopeLogs", rl.get("scope_logs")) if isinstance(rl, dict) else None
        if not isinstance(scopes, list):
            problems.append((f"{where_rl}.scopeLogs", "expected a list", {"resourceLogs": [rl]}))
            continue
        for j, sl in enumerate(scopes):
            where_sl = f"{where_rl}.scopeLogs.{j}"
            records = sl.get("logRecords", sl.get("log_records")) if isinstance(sl, dict) else None
            if not isinstance(records, list):
                problems.append((f"{where_sl}.logRecords", "expected a list of log records", sl))
                continue
            for k, rec in enumerate(records):
                where = f"{where_sl}.logRecords.{k}"
                if not isinstance(rec, dict):
                    problems.append((where, "expected a log record object", _wrap(rl, sl, [rec])))
                    continue
                trace = normalize_id(rec.get("traceId", rec.get("trace_id")), 16)
                if trace is None:
                    problems.append(
                        (
                            f"{where}.traceId",
                            "missing; a log record without a trace id cannot be joined to its "
                            "call (export the logs with their trace context)",
                            _wrap(rl, sl, [rec]),
                        )
                    )
                    continue
                hint = hint_of(rec.get("attributes"))
                span = normalize_id(rec.get("spanId", rec.get("span_id")), 8)
                pieces.append(
                    Piece(number, where, trace, rec, hint=hint, extra=(rl, sl, LOG), anchor=span)
                )
    return pieces


def decode_log(piece: Piece, *, normalize_id: Any, attributes: Any, nanos: Any) -> LogRecord:
    """Decode the parts of one log-record piece the builder needs."""
    rec = piece.data
    try:
        attrs = attributes(rec.get("attributes"), "attributes")
    except RecordError as e:
        raise RecordError(f"{piece.where}.{e.field}", e.message) from None
    event = rec.get("eventName", rec.get("event_name"))
    if not isinstance(event, str) or not event:
        named = attrs.get("event.name")
        event = named if isinstance(named, str) else ""
    time = nanos(rec.get("timeUnixNano", rec.get("time_unix_nano")))
    if time is None:
        time = nanos(rec.get("observedTimeUnixNano", rec.get("observed_time_unix_nano")))
    return LogRecord(
        piece=piece,
        trace=piece.unit,
        span_id=normalize_id(rec.get("spanId", rec.get("span_id")), 8),
        event=event,
        time=time,
        attrs=attrs,
        body=rec.get("body"),
    )


class LogEvent(dict[str, Any]):
    """A log record as an OTLP span event, with its attributes already decoded.

    The record's attributes were decoded once by :func:`decode_log`, and a chat span's
    message events repeat the whole history, so they are not decoded a second time from
    the OTLP form. ``decoded`` is None when the body could not be decoded here, and the
    span-event reader then decodes (and reports) it as usual.
    """

    decoded: dict[str, Any] | None = None


def as_span_event(log: LogRecord, any_value: Any) -> LogEvent:
    """The record as an OTLP span event, as older emitters wrote message events.

    The body travels as the ``event.body`` attribute, which the span-event reader
    already understands.
    """
    attrs = [
        {"key": k, "value": v}
        for k, v in _raw_attributes(log.piece.data)
        if k not in ("event.name", "event.body")
    ]
    decoded = {k: v for k, v in log.attrs.items() if k not in ("event.name", "event.body")}
    has_body = isinstance(log.body, dict) and bool(log.body)
    if has_body:
        attrs.append({"key": "event.body", "value": log.body})
    event = LogEvent(name=log.event, attributes=attrs)
    if log.time is not None:
        event["timeUnixNano"] = str(log.time)
    try:
        if has_body:
            decoded["event.body"] = any_value(log.body, "body")
    except RecordError:
        return event
    event.decoded = decoded
    return event


def _raw_attributes(rec: dict[str, Any]) -> list[tuple[str, Any]]:
    raw = rec.get("attributes")
    if not isinstance(raw, list):
        return []
    return [
        (kv["key"], kv.get("value", {}))
        for kv in raw
        if isinstance(kv, dict) and isinstance(kv.get("key"), str)
    ]


def _wrap(rl: Any, sl: Any, records: list[Any]) -> dict[str, Any]:
    scope: dict[str, Any] = {"logRecords": records}
    if isinstance(sl, dict) and isinstance(sl.get("scope"), dict):
        scope["scope"] = sl["scope"]
    res: dict[str, Any] = {"scopeLogs": [scope]}
    if isinstance(rl, dict) and isinstance(rl.get("resource"), dict):
        res["resource"] = rl["resource"]
    return {"resourceLogs": [res]}


def rewrap_logs(pieces: list[Piece]) -> list[Any]:
    """One ``ExportLogsServiceRequest`` per log piece's resource and scope."""
    out: dict[int, tuple[Any, dict[int, tuple[Any, list[Any]]]]] = {}
    for p in pieces:
        rl, sl, _ = p.extra
        entry = out.setdefault(id(rl), (rl, {}))
        entry[1].setdefault(id(sl), (sl, []))[1].append(p.data)
    resources: list[Any] = []
    for rl, scopes in out.values():
        scope_list: list[Any] = []
        for sl, records in scopes.values():
            scope: dict[str, Any] = {"logRecords": records}
            if isinstance(sl, dict) and isinstance(sl.get("scope"), dict):
                scope["scope"] = sl["scope"]
            scope_list.append(scope)
        res: dict[str, Any] = {"scopeLogs": scope_list}
        if isinstance(rl, dict) and isinstance(rl.get("resource"), dict):
            res["resource"] = rl["resource"]
        resources.append(res)
    return [{"resourceLogs": resources}] if resources else []


def check_body(value: Any, where: str) -> None:
    """Reject a body that is not an OTLP ``AnyValue`` object (a cut or hand-made record)."""
    if value is not None:
        expect_dict(value, where)
