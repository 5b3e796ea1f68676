"""Traces written by the real instrumentation libraries import whole.

Each test drives the OpenAI SDK against the loopback model server through one library,
in one capture mode, in a fresh process (``tests/capture/_drive.py``), records what the
library writes with its own exporters, imports it with ``convsim import auto`` and
checks every message, tool call and result, token count, finish reason, tool definition
and the refused call against what the server actually said.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from convsim.cli import cli
from convsim.datasets import read_conversations
from convsim.testing import FakeOpenAIServer
from convsim.trace import AssistantMessage, Conversation, ToolMessage
from tests.capture._drive import QUESTION, RESULT, SYSTEM, TOOLS
from tests.capture._langsmith_sink import LangSmithSink

ROOT = Path(__file__).parents[2]
ANSWER = "It is sunny in Paris."
CALL = {"id": "call_w1", "name": "get_weather", "arguments": {"city": "Paris"}}


def respond(body: dict[str, Any]) -> dict[str, Any]:
    messages = body.get("messages", [])
    if body.get("tools") and messages and messages[-1].get("role") == "user":
        call = {"name": CALL["name"], "arguments": json.dumps(CALL["arguments"])}
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": CALL["id"], "type": "function", "function": call}],
        }
    return {"role": "assistant", "content": ANSWER}


def refuse(body: dict[str, Any]) -> int | None:
    messages = body.get("messages", [])
    return 429 if messages and "FAIL429" in str(messages[-1].get("content")) else None


MODES = {
    "otel-openai-v2/default": {},
    "otel-openai-v2/content": {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"},
    "otel-openai-v2/experimental": {
        "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT",
    },
    "traceloop/default": {"TRACELOOP_TELEMETRY": "false"},
    "traceloop/events": {"TRACELOOP_TELEMETRY": "false"},
    "traceloop/no-content": {"TRACELOOP_TELEMETRY": "false", "TRACELOOP_TRACE_CONTENT": "false"},
    "openinference/default": {},
    "langsmith/default": {},
}
_GENAI_ENV = ("OTEL_", "TRACELOOP_", "LANGSMITH_", "LANGCHAIN_")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(respond, fail=refuse) as s:
        yield s


def capture(capture_mode: str, server: FakeOpenAIServer, out: Path) -> list[Path]:
    """Run one capture; return the files it wrote, for ``convsim import``."""
    library, mode = capture_mode.split("/")
    env = {k: v for k, v in os.environ.items() if not k.startswith(_GENAI_ENV)}
    env.update(MODES[capture_mode], PYTHONPATH=str(ROOT))
    before = len(server.responses)
    if library == "langsmith":
        with LangSmithSink() as sink:
            env.update(
                LANGSMITH_TRACING="true",
                LANGSMITH_ENDPOINT=sink.url,
                LANGSMITH_API_KEY="ls-test",
                LANGSMITH_PROJECT="capture",
            )
            _drive(library, mode, server, out, env)
            files = list(sink.write(out))
    else:
        _drive(library, mode, server, out, env)
        files = [p for p in (out / "traces.jsonl", out / "logs.jsonl") if p.exists()]
    assert len(server.responses) - before == 3, "the conversation did not run through"
    return files


def _drive(
    library: str, mode: str, server: FakeOpenAIServer, out: Path, env: dict[str, str]
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.capture._drive", library, mode, server.url, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-4000:]


def import_all(files: list[Path], out: Path) -> tuple[list[Conversation], dict[str, Any]]:
    result = CliRunner().invoke(
        cli, ["import", "auto", *map(str, files), "--out", str(out), "--json", "-"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["read"] == report["kept"] + report["rejected"]
    return list(read_conversations(out)), report


def answered(convs: list[Conversation], text: str | None) -> AssistantMessage:
    """The assistant message of a reply (found by the server's response id)."""
    for conv in convs:
        for m in conv.messages:
            if isinstance(m, AssistantMessage) and m.id == text:
                return m
    raise AssertionError(f"no assistant message with id {text!r}")


@pytest.mark.parametrize("capture_mode", sorted(MODES))
def test_real_library_capture_imports_whole(
    capture_mode: str, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    start = len(server.responses)
    files = capture(capture_mode, server, tmp_path)
    convs, report = import_all(files, tmp_path / "imported.jsonl")
    library = capture_mode.split("/")[0]
    replies = server.responses[start:]
    content = capture_mode not in ("otel-openai-v2/default", "traceloop/no-content")

    # Token counts, finish reasons and models of every reply, as the server sent them,
    # found by the response id each import keeps.
    by_reply = {r["id"]: answered(convs, r["id"]) for r in replies}
    assert len(by_reply) == 3
    for reply in replies:
        message = by_reply[reply["id"]]
        assert message.usage is not None
        assert message.usage.input_tokens == reply["usage"]["prompt_tokens"]
        assert message.usage.output_tokens == reply["usage"]["completion_tokens"]
        assert message.finish_reason == reply["choices"][0]["finish_reason"]
        assert message.model is not None and message.model.startswith("gpt-4o-mini")

    # The refused call is kept, counted and named.
    assert report["failed_calls"] == 1 and report["rejected"] == 0
    failures = [c.metadata["failed_calls"] for c in convs if "failed_calls" in c.metadata]
    assert len(failures) == 1 and isinstance(failures[0], list) and len(failures[0]) == 1
    (failure,) = failures[0]
    assert isinstance(failure, dict) and "RateLimitError" in str(failure["error_type"])

    if not content:
        assert all(c.metadata.get("content_captured") is False for c in convs if c.messages)
        return
    # The tool conversation, message by message.
    tool_conv = next(c for c in convs if any(isinstance(m, ToolMessage) for m in c.messages))
    roles = [m.role for m in tool_conv.messages]
    assert roles == ["system", "user", "assistant", "tool", "assistant"], roles
    system, user, call, result, answer = tool_conv.messages
    assert (system.content, user.content) == (SYSTEM, QUESTION)
    assert isinstance(call, AssistantMessage)
    ((made,),) = [call.tool_calls]
    assert (made.id, made.name, made.arguments) == (CALL["id"], CALL["name"], CALL["arguments"])
    assert isinstance(result, ToolMessage)
    assert (result.tool_call_id, result.content) == (CALL["id"], RESULT)
    assert answer.content == ANSWER
    # Tool definitions, where the library records them at all.
    if library != "otel-openai-v2" and capture_mode != "traceloop/events":
        (tool,) = tool_conv.tools
        function = TOOLS[0]["function"]
        assert (tool.name, tool.description) == (function["name"], function["description"])
        assert tool.parameters == function["parameters"]
    # The refused user message is in its conversation, the streamed answer in its own.
    assert any(
        m.role == "user" and "FAIL429" in (m.content or "") for c in convs for m in c.messages
    )
    assert any(m.role == "assistant" and m.content == ANSWER for c in convs for m in c.messages)
    if library in ("traceloop", "openinference", "langsmith"):
        assert {c.id for c in convs} >= {"sess-1", "sess-2", "sess-3"}
    if library == "traceloop":
        assert tool_conv.tags["user_id"] == "user-42" and tool_conv.tags["customer"] == "acme"
        assert tool_conv.metadata["user_id"] == "user-42"
    if library == "langsmith":
        (score,) = [s for c in convs for s in c.scores if s.name == "correctness"]
        assert score.value == 1 and score.conversation_id == "sess-1"
