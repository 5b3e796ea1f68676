"""convsim's grades as OpenTelemetry ``gen_ai.evaluation.result`` events on the source spans.

A team's tracing backend already holds its production traces; what it lacks is the
grades. Each score becomes one OTLP log record (an event, as the GenAI conventions
define ``gen_ai.evaluation.result``) carrying the trace and span id of the model call
that produced the graded message, so the grade appears on that span. The ids come from
the conversation's ``provenance.message_sources``, which the OTLP importers record; a
conversation-level score lands on the conversation's last call.

The records are written as OTLP/JSON ``ExportLogsServiceRequest`` lines (the form a
Collector's file exporter writes) and can be sent to a collector over OTLP/HTTP.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .._version import __version__
from ..trace import Conversation, Score
from ._grouped import datetime_to_nanos
from .otel import score_attributes

EVENT = "gen_ai.evaluation.result"
BATCH = 1000
"""Log records per export request."""


@dataclass(slots=True)
class GradeExport:
    """What happened to each score."""

    exported: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    """Scores not exported, by reason."""


class SpanIndex:
    """Where each conversation's messages came from, for placing its scores."""

    def __init__(self, conversations: Iterable[Conversation]) -> None:
        self._sources: dict[str, dict[int, str]] = {}
        for conv in conversations:
            if conv.provenance is not None and conv.provenance.message_sources:
                self._sources[conv.id] = dict(conv.provenance.message_sources)

    def span_of(self, score: Score) -> tuple[str, str] | None:
        """(trace id, span id) for a score, or None when its conversation has none."""
        sources = self._sources.get(score.conversation_id)
        if not sources:
            return None
        key = score.message_index if score.message_index in sources else max(sources)
        trace, _, span = sources[key].partition("/")
        return (trace, span) if trace and span else None


def grade_requests(
    scores: Iterable[Score], index: SpanIndex, result: GradeExport
) -> Iterator[dict[str, Any]]:
    """OTLP JSON log export requests, up to :data:`BATCH` records each."""
    batch: list[dict[str, Any]] = []
    now = str(time.time_ns())
    for position, score in enumerate(scores):
        place = index.span_of(score)
        if place is None:
            result.skipped["its conversation has no source span ids"] += 1
            continue
        trace, span = place
        record: dict[str, Any] = {
            "timeUnixNano": str(datetime_to_nanos(score.created_at)) if score.created_at else now,
            "observedTimeUnixNano": now,
            "severityNumber": 9,
            "eventName": EVENT,
            "traceId": trace,
            "spanId": span,
            "attributes": score_attributes(score, position),
        }
        batch.append(record)
        result.exported += 1
        if len(batch) >= BATCH:
            yield _request(batch)
            batch = []
    if batch:
        yield _request(batch)


def _request(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "convsim"}}]
                },
                "scopeLogs": [
                    {"scope": {"name": "convsim", "version": __version__}, "logRecords": records}
                ],
            }
        ]
    }


def push(requests: Iterable[dict[str, Any]], endpoint: str, timeout: float = 30.0) -> int:
    """Send export requests to a collector over OTLP/HTTP (JSON); return how many.

    ``endpoint`` is the collector's base URL (``http://collector:4318``) or its logs
    URL (``.../v1/logs``).

    Raises:
        ConfigError: the collector refused a request or could not be reached; the
            message names the endpoint and the status.
    """
    import httpx

    from ..errors import ConfigError

    url = (
        endpoint if endpoint.rstrip("/").endswith("/v1/logs") else f"{endpoint.rstrip('/')}/v1/logs"
    )
    sent = 0
    with httpx.Client(timeout=timeout) as client:
        for request in requests:
            try:
                response = client.post(
                    url,
                    content=json.dumps(request, separators=(",", ":")).encode(),
                    headers={"content-type": "application/json"},
                )
            except httpx.HTTPError as e:
                raise ConfigError(f"{url}: cannot reach the collector ({e})") from None
            if response.status_code >= 300:
                raise ConfigError(
                    f"{url}: the collector answered {response.status_code} "
                    f"({response.text[:200]}); {sent} request(s) were accepted before"
                )
            sent += 1
    return sent
