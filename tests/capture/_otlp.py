"""Finished spans and log records as an OpenTelemetry Collector's file exporter writes them.

One ``{"resourceSpans": [...]}`` or ``{"resourceLogs": [...]}`` object per line, encoded
with the SDK's own OTLP encoders; protobuf's JSON form gives trace and span ids in
base64, which the Collector writes as lowercase hex, so they are converted.
"""

from __future__ import annotations

import base64
import json
from typing import Any

_IDS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: base64.b64decode(v).hex() if k in _IDS and isinstance(v, str) else _hex_ids(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_hex_ids(v) for v in value]
    return value


def collector_line(request: Any) -> str:
    """One OTLP export request (a protobuf message) as a Collector JSON line."""
    from google.protobuf.json_format import MessageToDict

    data = MessageToDict(request, use_integers_for_enums=True)
    return json.dumps(_hex_ids(data), separators=(",", ":"), ensure_ascii=False)


def spans_line(spans: Any) -> str:
    """Finished SDK spans as one ``resourceSpans`` line."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return collector_line(encode_spans(spans))


def logs_line(logs: Any) -> str:
    """Finished SDK log records as one ``resourceLogs`` line."""
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs

    return collector_line(encode_logs(logs))
