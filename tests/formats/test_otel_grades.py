"""Grades go back to the tracing backend on the spans the conversations came from.

The captured OpenTelemetry traces and logs are imported, graded with deterministic
checks, and exported as ``gen_ai.evaluation.result`` events; a loopback OTLP/HTTP
receiver decodes what arrives with ``opentelemetry-proto``. Every event names a span
of the original capture, and importing the capture with the events gives the grades
back as scores on the right messages.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from convsim.cli import cli
from convsim.datasets import read_conversations
from convsim.grade import read_scores
from convsim.testing import LoopbackServer

DATA = Path(__file__).parent / "data" / "captured"
TRACES = DATA / "otel_openai_v2_2.4b0_content_traces.jsonl"
LOGS = DATA / "otel_openai_v2_2.4b0_content_logs.jsonl"


class Receiver(LoopbackServer):
    """A loopback OTLP/HTTP logs endpoint that decodes every request it gets."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.paths.append(self.path)
                receiver.requests.append(decode(body, self.headers.get("content-type", "")))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return self.origin


def decode(body: bytes, content_type: str) -> Any:
    """An OTLP/HTTP JSON body as the protobuf request (OTLP JSON ids are hex, not base64)."""
    from google.protobuf.json_format import Parse
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    assert content_type == "application/json"
    data = json.loads(body)
    for rl in data["resourceLogs"]:
        for sl in rl["scopeLogs"]:
            for rec in sl["logRecords"]:
                for key in ("traceId", "spanId"):
                    rec[key] = base64.b64encode(bytes.fromhex(rec[key])).decode()
    return Parse(json.dumps(data), ExportLogsServiceRequest())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, list(args))
    return r.exit_code, r.output


def test_grades_land_on_the_source_spans_and_come_back_as_scores(
    receiver: Receiver, tmp_path: Path
) -> None:
    convs, scores, events = tmp_path / "c.jsonl", tmp_path / "s.jsonl", tmp_path / "e.jsonl"
    assert run("import", "otel", str(TRACES), str(LOGS), "--out", str(convs))[0] == 0
    assert run("grade", str(convs), "--out", str(scores))[0] == 0
    graded = list(read_scores(scores))
    code, out = run(
        "export", "otel", str(convs), "--grades", str(scores), "--out", str(events),
        "--endpoint", receiver.url, "--json", "-",
    )  # fmt: skip
    assert code == 0, out
    # Every score is an event; every event sits on a span of the capture.
    sources = {
        c.id: dict(c.provenance.message_sources) for c in read_conversations(convs) if c.provenance
    }
    spans_in_capture = {
        (span["traceId"], span["spanId"])
        for line in TRACES.read_text().splitlines()
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    }
    assert receiver.paths == ["/v1/logs"]
    (request,) = receiver.requests
    records = [r for rl in request.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    assert len(records) == len(graded) > 0
    for score, record in zip(graded, records, strict=True):
        place = (record.trace_id.hex(), record.span_id.hex())
        assert place in spans_in_capture
        conv_sources = sources[score.conversation_id]
        key = score.message_index if score.message_index in conv_sources else max(conv_sources)
        assert "/".join(place) == conv_sources[key]
        assert record.event_name == "gen_ai.evaluation.result"
        attrs = {a.key: a.value for a in record.attributes}
        assert attrs["gen_ai.evaluation.name"].string_value == score.name
    # The events file is what was sent, and importing it with the capture brings the
    # grades back onto the conversations.
    (line,) = events.read_text().splitlines()
    assert decode(line.encode(), "application/json") == request
    back = tmp_path / "back.jsonl"
    assert run("import", "otel", str(TRACES), str(LOGS), str(events), "--out", str(back))[0] == 0
    returned = {
        (s.conversation_id, s.name, s.value) for c in read_conversations(back) for s in c.scores
    }
    assert returned == {(s.conversation_id, s.name, s.value) for s in graded}


def test_grades_of_conversations_without_spans_are_refused_with_the_reason(
    tmp_path: Path,
) -> None:
    convs, scores = tmp_path / "c.jsonl", tmp_path / "s.jsonl"
    convs.write_text(
        '{"id": "a", "messages": [{"role": "user", "content": "hi"}, '
        '{"role": "assistant", "content": "hello"}]}\n'
    )
    assert run("grade", str(convs), "--out", str(scores))[0] == 0
    code, out = run(
        "export", "otel", str(convs), "--grades", str(scores), "--out", str(tmp_path / "e.jsonl")
    )
    assert code == 2 and "its conversation has no source span ids" in out
    assert not (tmp_path / "e.jsonl").exists()
