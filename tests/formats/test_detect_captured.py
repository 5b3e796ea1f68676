"""Format detection on captured traces (``data/captured/README.md``)."""

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from convsim.cli import cli
from convsim.datasets import read_conversations
from convsim.formats import classify, detect_format
from tests.formats._helpers import DATA

CAPTURED = DATA / "captured"
TRACELOOP_LEGACY = CAPTURED / "traceloop_0.54.0_legacy_traces.jsonl"
OPENINFERENCE = CAPTURED / "openinference_openai_0.1.66_traces.jsonl"


def otlp(**attributes: str) -> dict[str, Any]:
    """One OTLP request holding one span with these string attributes."""
    attrs = [{"key": k, "value": {"stringValue": v}} for k, v in attributes.items()]
    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "chat", "attributes": attrs}
    return {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}


def test_traceloop_legacy_spans_are_otel_not_openinference(tmp_path: Path) -> None:
    # The file's spans carry llm.request.type, llm.usage.* and llm.request.functions.*.
    assert detect_format(TRACELOOP_LEGACY) == ("otel", 1)
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        cli, ["import", "auto", str(TRACELOOP_LEGACY), "--out", str(out), "--json", "-"]
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["kept"] >= 1 and report["read"] == report["kept"] + report["rejected"]
    convs = list(read_conversations(out))
    assert {c.provenance.source_format for c in convs if c.provenance} == {"otel"}
    texts = {m.content for c in convs for m in c.messages}
    assert "What's the weather in Paris?" in texts


def test_only_openinference_keys_mark_openinference() -> None:
    cases = [
        ({"openinference.span.kind": "LLM"}, "openinference"),
        ({"llm.input_messages.0.message.role": "user"}, "openinference"),
        ({"llm.output_messages.0.message.role": "assistant"}, "openinference"),
        # Traceloop's own llm.* keys next to gen_ai.* ones.
        ({"llm.request.type": "chat", "gen_ai.prompt.0.role": "user"}, "otel"),
        ({"llm.usage.total_tokens": "9", "traceloop.span.kind": "task"}, "otel"),
        ({"llm.request.functions.0.name": "get_weather"}, "otel"),
        ({"gen_ai.operation.name": "chat"}, "otel"),
    ]
    assert [classify(otlp(**attributes)) for attributes, _ in cases] == [f for _, f in cases]
    assert detect_format(OPENINFERENCE) == ("openinference", 1)
    records = [json.loads(line) for line in OPENINFERENCE.read_text().splitlines()]
    assert {classify(r) for r in records} == {"openinference"}
