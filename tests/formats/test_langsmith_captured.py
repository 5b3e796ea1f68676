"""LangSmith runs and feedback as the real SDK writes them (``data/captured/README.md``)."""

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from convsim.cli import cli
from convsim.datasets import read_conversations
from convsim.formats.langsmith import parse_error
from convsim.trace import AssistantMessage, Conversation, ToolDefinition, ToolMessage, Usage
from tests.formats._helpers import DATA

CAPTURED = DATA / "captured"
RUNS = CAPTURED / "langsmith_0.15.1_runs.jsonl"
FEEDBACK = CAPTURED / "langsmith_0.15.1_feedback.jsonl"
CHAIN_RUN = "01a252dd-cc83-7a6f-8a88-7607e639c83f"
FAILED_RUN = "01a252dd-cce4-7d59-a0ca-0899c4aa589b"
GET_WEATHER = ToolDefinition(
    name="get_weather",
    description="Get the current weather for a city.",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name, e.g. Paris"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
        },
        "required": ["city"],
        "additionalProperties": False,
    },
    extra={"strict": True},
)


def import_langsmith(out: Path, *paths: Path) -> tuple[list[Conversation], dict[str, Any]]:
    """Run ``convsim import langsmith PATHS --json -``; the conversations and the report."""
    result = CliRunner().invoke(
        cli, ["import", "langsmith", *map(str, paths), "--out", str(out), "--json", "-"]
    )
    assert result.exit_code == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["read"] == report["kept"] + report["rejected"]
    return list(read_conversations(out)), report


def check_thread(conv: Conversation) -> None:
    """Everything the captured thread holds, message by message."""
    assert conv.id == "sess-1"
    assert [(m.role, m.content) for m in conv.messages] == [
        ("system", "You are a helpful weather assistant."),
        ("user", "What's the weather in Paris?"),
        ("assistant", None),
        ("tool", '{"temp_c": 21}'),
        ("assistant", "It is sunny in Paris."),
    ]
    call, result, answer = conv.messages[2], conv.messages[3], conv.messages[4]
    assert isinstance(call, AssistantMessage) and isinstance(answer, AssistantMessage)
    assert [(c.id, c.name, c.arguments) for c in call.tool_calls] == [
        ("call_abc123", "get_weather", {"city": "Paris"})
    ]
    assert isinstance(result, ToolMessage) and result.tool_call_id == "call_abc123"
    assert not result.is_error
    # wrap_openai moves the response's usage to outputs.usage_metadata.
    assert call.usage == Usage(
        input_tokens=82, output_tokens=17, cache_read_tokens=4, reasoning_tokens=2
    )
    assert answer.usage == Usage(
        input_tokens=120, output_tokens=9, cache_read_tokens=4, reasoning_tokens=2
    )
    assert (call.finish_reason, answer.finish_reason) == ("tool_calls", "stop")
    assert call.model == answer.model == "gpt-4o-mini-2024-07-18"
    assert not call.metadata and not answer.metadata  # the SDK's empty fields are not kept
    assert conv.tools == [GET_WEATHER]
    assert "branches" not in conv.metadata  # the failed call displaced nothing
    assert conv.metadata["failed_calls"] == [
        {
            "call": f"run {FAILED_RUN}",
            "error_type": "RateLimitError",
            "message": "Error code: 429 - Rate limit reached for gpt-4o-mini in organization "
            "org-test on requests per min (RPM): Limit 3, Used 3, Requested 1.",
            "model": "gpt-4o-mini",
            "end_time": "2026-12-07T23:36:37.397764+00:00",
            "inputs": [{"role": "user", "content": "FAIL429"}],
        }
    ]


def check_feedback(conv: Conversation) -> None:
    (score,) = conv.scores
    assert (score.name, score.value, score.kind, score.reason) == (
        "correctness",
        1.0,
        "continuous",
        "good",
    )
    assert score.conversation_id == "sess-1"
    assert score.message_index is None  # on the chain run: the whole conversation


@pytest.mark.parametrize("feedback_first", [False, True])
def test_runs_and_feedback_files_are_joined_in_either_order(
    tmp_path: Path, feedback_first: bool
) -> None:
    paths = (FEEDBACK, RUNS) if feedback_first else (RUNS, FEEDBACK)
    (conv,), report = import_langsmith(tmp_path / "out.jsonl", *paths)
    check_thread(conv)
    check_feedback(conv)
    assert (report["read"], report["kept"], report["rejected"]) == (1, 1, 0)
    assert report["failed_calls"] == 1 and report["issues"] == []
    (failed_note,) = [n for n in report["notes"] if "failed" in n["message"]]
    assert failed_note["file"] == str(RUNS) and failed_note["line"] == 4
    assert "RateLimitError" in failed_note["message"]


def test_feedback_in_the_same_file_as_its_runs(tmp_path: Path) -> None:
    both = tmp_path / "export.jsonl"
    both.write_bytes(FEEDBACK.read_bytes() + RUNS.read_bytes())
    (conv,), report = import_langsmith(tmp_path / "out.jsonl", both)
    check_thread(conv)
    check_feedback(conv)
    assert (report["read"], report["kept"], report["failed_calls"]) == (1, 1, 1)


def test_feedback_for_a_run_in_no_file_is_rejected_with_its_place(tmp_path: Path) -> None:
    feedback = [json.loads(line) for line in FEEDBACK.read_text().splitlines()]
    stray = {**feedback[0], "id": "fb-stray", "run_id": "run-nobody-exported"}
    path = tmp_path / "feedback.jsonl"
    path.write_text(json.dumps(feedback[0]) + "\n" + json.dumps(stray) + "\n")
    (conv,), report = import_langsmith(tmp_path / "out.jsonl", RUNS, path)
    check_feedback(conv)
    assert (report["read"], report["kept"], report["rejected"]) == (2, 1, 1)
    (issue,) = report["issues"]
    assert (issue["file"], issue["line"], issue["field"]) == (str(path), 2, "record.run_id")
    assert "'run-nobody-exported'" in issue["message"]
    assert "in none of the files" in issue["message"]
    assert "no messages" not in issue["message"]
    rejected = (tmp_path / "out.jsonl.rejects.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in rejected] == ["fb-stray"]


def test_feedback_on_a_run_left_out_finds_its_trace(tmp_path: Path) -> None:
    feedback = json.loads(FEEDBACK.read_text())
    on_trace = {**feedback, "run_id": "run-not-exported", "trace_id": CHAIN_RUN}
    path = tmp_path / "feedback.jsonl"
    path.write_text(json.dumps(on_trace) + "\n")
    (conv,), report = import_langsmith(tmp_path / "out.jsonl", path, RUNS)
    check_feedback(conv)
    assert (report["read"], report["rejected"]) == (1, 0)


def test_auto_joins_the_files_too(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        cli, ["import", "auto", str(FEEDBACK), str(RUNS), "--out", str(out), "--json", "-"]
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["read"], report["kept"], report["failed_calls"]) == (1, 1, 1)
    (conv,) = read_conversations(out)
    check_thread(conv)
    check_feedback(conv)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            "RateLimitError('Error code: 429 - slow down')\n\nTraceback (most recent call last):"
            "\nopenai.RateLimitError: Error code: 429 - slow down\n",
            ("RateLimitError", "Error code: 429 - slow down"),
        ),
        ("TimeoutError()", ("TimeoutError", None)),
        ("KeyError('a', 'b')", ("KeyError", "'a', 'b'")),
        ("openai.APIError: upstream closed", ("openai.APIError", "upstream closed")),
        ("the model went away", (None, "the model went away")),
        ("", (None, None)),
    ],
)
def test_error_text_gives_type_and_message(
    error: str, expected: tuple[str | None, str | None]
) -> None:
    assert parse_error(error) == expected
