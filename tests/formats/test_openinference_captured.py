"""OpenInference spans as ``openinference-instrumentation-openai`` writes them.

See ``data/captured/README.md`` for how the file was made.
"""

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from convsim.cli import cli
from convsim.datasets import read_conversations
from convsim.trace import (
    AssistantMessage,
    Conversation,
    MessageAdapter,
    ToolDefinition,
    ToolMessage,
    Usage,
)
from tests.formats._helpers import DATA

TRACES = DATA / "captured" / "openinference_openai_0.1.66_traces.jsonl"
RATE_LIMITED = (
    "Error code: 429 - Rate limit reached for gpt-4o-mini in organization org-test on "
    "requests per min (RPM): Limit 3, Used 3, Requested 1."
)


def import_openinference(tmp_path: Path) -> tuple[Conversation, dict[str, Any]]:
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        cli, ["import", "openinference", str(TRACES), "--out", str(out), "--json", "-"]
    )
    assert result.exit_code == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["read"] == report["kept"] + report["rejected"]
    (conv,) = read_conversations(out)
    return conv, report


def test_the_tool_turn_with_usage_finish_reasons_and_tools(tmp_path: Path) -> None:
    conv, report = import_openinference(tmp_path)
    assert conv.id == "sess-1"
    assert (report["read"], report["kept"], report["rejected"]) == (1, 1, 0)
    # The streaming span starts a new question in the same session, so the tool turn
    # before it is kept as a branch.
    branches = conv.metadata["branches"]
    assert isinstance(branches, list) and len(branches) == 1
    branch = branches[0]
    assert isinstance(branch, dict) and (branch["kind"], branch["at"]) == ("edited", 1)
    assert isinstance(branch["messages"], list)
    question, call, result, answer = map(MessageAdapter.validate_python, branch["messages"])
    assert [(m.role, m.content) for m in (question, call, result, answer)] == [
        ("user", "What's the weather in Paris?"),
        ("assistant", None),
        ("tool", '{"temp_c": 21}'),
        ("assistant", "It is sunny in Paris."),
    ]
    assert isinstance(call, AssistantMessage) and isinstance(answer, AssistantMessage)
    assert isinstance(result, ToolMessage) and result.tool_call_id == "call_weather0001"
    assert [(c.id, c.name, c.arguments) for c in call.tool_calls] == [
        ("call_weather0001", "get_weather", {"city": "Paris"})
    ]
    assert (call.finish_reason, answer.finish_reason) == ("tool_calls", "stop")
    assert call.model == answer.model == "gpt-4o-mini-2024-07-18"
    assert call.usage == Usage(
        input_tokens=82, output_tokens=17, cache_read_tokens=0, reasoning_tokens=0
    )
    assert answer.usage == Usage(
        input_tokens=120, output_tokens=8, cache_read_tokens=64, reasoning_tokens=3
    )
    for m in (call, answer):  # mapped attributes are not kept twice
        kept = m.metadata["openinference.attributes"]
        assert isinstance(kept, dict)
        assert not any(k.startswith(("llm.finish_reason", "llm.tools")) for k in kept)
    assert conv.tools == [
        ToolDefinition(
            name="get_weather",
            description="Get the current weather for a city.",
            parameters={
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name, e.g. Paris"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
                "additionalProperties": False,
            },
        )
    ]


def test_the_streamed_answer_is_the_main_line(tmp_path: Path) -> None:
    conv, _ = import_openinference(tmp_path)
    assert [(m.role, m.content) for m in conv.messages] == [
        ("system", "You are a helpful weather assistant."),
        ("user", "Just tell me: is it sunny in Paris?"),
        ("assistant", "It is sunny in Paris."),
    ]
    streamed = conv.messages[2]
    assert isinstance(streamed, AssistantMessage)
    assert streamed.finish_reason == "stop" and streamed.model == "gpt-4o-mini-2024-07-18"
    assert streamed.usage == Usage(
        input_tokens=120, output_tokens=8, cache_read_tokens=64, reasoning_tokens=3
    )


def test_the_failed_call_is_kept_and_counted(tmp_path: Path) -> None:
    conv, report = import_openinference(tmp_path)
    assert conv.metadata["failed_calls"] == [
        {
            "call": "span bf268d557bce54e7",
            "error_type": "openai.RateLimitError",
            "message": RATE_LIMITED,
            "model": "gpt-4o-mini",
            "end_time": "2026-12-07T23:36:15.389615+00:00",
            "inputs": [{"role": "user", "content": "FAIL429 please"}],
        }
    ]
    assert "FAIL429 please" not in [m.content for m in conv.messages]
    assert report["failed_calls"] == 1
    (note,) = [n for n in report["notes"] if "failed" in n["message"]]
    assert (note["file"], note["line"]) == (str(TRACES), 4)
