"""Malformed records each importer has mishandled: located, set aside, the rest kept.

Every case here once lost a valid record, kept a bogus one, or kept a doubtful one
without a word. The rule: the bad record is named (file, line or record, field) and set
aside in the rejects file; every valid record is kept; read = kept + rejected.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from convsim.cli import cli
from convsim.datasets import read_conversations

GOOD = {
    "id": "good",
    "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
}


def run_import(fmt: str, path: Path, tmp: Path) -> tuple[int, str, list[str], list[str]]:
    out = tmp / "out.jsonl"
    r = CliRunner().invoke(cli, ["import", fmt, str(path), "--out", str(out), "--json", "-"])
    kept = [c.id for c in read_conversations(out)] if out.exists() else []
    rejects = tmp / "out.jsonl.rejects.jsonl"
    rejected = rejects.read_text().splitlines() if rejects.exists() else []
    return r.exit_code, r.output, kept, rejected


def counts(output: str) -> dict[str, int]:
    report = json.loads(output[output.index("{") :])
    assert report["read"] == report["kept"] + report["rejected"], report
    return report  # type: ignore[no-any-return]


def test_a_lone_surrogate_is_set_aside_and_the_valid_lines_kept(tmp_path: Path) -> None:
    # "\ud83d" alone is half an emoji: valid JSON, not valid Unicode. It used to fail at
    # write time with a traceback and lose every valid line of the file.
    bad = '{"id": "s1", "messages": [{"role": "user", "content": "hi \\ud83d there"}]}'
    pair = '{"id": "s2", "messages": [{"role": "user", "content": "ok \\ud83d\\ude00"}]}'
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([json.dumps(GOOD), bad, pair]) + "\n")
    code, output, kept, rejected = run_import("openai", path, tmp_path)
    assert code == 0 and kept == ["good", "s2"]
    assert "in.jsonl:2: conversation 's1' holds text that is not valid Unicode" in output
    assert counts(output)["rejected"] == 1 and '"s1"' in rejected[0]


def test_an_array_element_nested_too_deeply_is_stepped_over(tmp_path: Path) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    path = tmp_path / "in.json"
    after = json.dumps(GOOD).replace("good", "after")
    path.write_text(f'[{json.dumps(GOOD)}, {{"id": "d", "messages": {deep}}}, {after}]')
    code, output, kept, rejected = run_import("openai", path, tmp_path)
    # The record after the deep one used to be lost without being counted.
    assert code == 0 and kept == ["good", "after"]
    assert "record 2: JSON nested too deeply to read" in output
    assert counts(output)["rejected"] == 1 and len(rejected) == 1


def test_a_message_list_with_a_deep_message_is_not_kept_shortened(tmp_path: Path) -> None:
    # A bare message list whose second message cannot be read: the conversation is set
    # aside whole, never kept as the system message alone.
    deep = "[" * 50_000 + "]" * 50_000
    path = tmp_path / "in.json"
    path.write_text(f'[{{"role": "system", "content": "sys"}}, {deep}]')
    code, output, kept, _ = run_import("openai", path, tmp_path)
    assert code == 2 and kept == []
    assert "messages.1: JSON nested too deeply to read; the whole message list" in output


def test_jsonl_of_message_lists_is_read_line_by_line(tmp_path: Path) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    path = tmp_path / "in.jsonl"
    path.write_text(
        f'[{{"role": "system", "content": "sys"}}, {deep}]\n'
        '[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]\n'
    )
    code, output, kept, _ = run_import("openai", path, tmp_path)
    assert code == 0 and len(kept) == 1
    assert "in.jsonl:1: JSON nested too deeply to read" in output


def test_empty_conversations_are_set_aside_and_empty_turns_noted(tmp_path: Path) -> None:
    lines = [
        {
            "id": "n1",
            "messages": [{"role": "user", "content": None}, {"role": "assistant", "content": None}],
        },  # fmt: skip
        {
            "id": "n2",
            "messages": [{"role": "user", "content": None}, {"role": "assistant", "content": "ok"}],
        },  # fmt: skip
        GOOD,
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    code, output, kept, rejected = run_import("openai", path, tmp_path)
    assert code == 0 and kept == ["n2", "good"]
    assert "in.jsonl:1: messages: every message is empty" in output
    assert "in.jsonl:2: messages.0.content: a user message with no content, kept empty" in output
    assert len(rejected) == 1 and '"n1"' in rejected[0]


def test_tool_arguments_that_are_not_json_are_kept_with_a_note(tmp_path: Path) -> None:
    record = {
        "id": "a1",
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "t1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{not json"},
                    }
                ],
            },  # fmt: skip
            {"role": "tool", "tool_call_id": "t1", "content": "r"},
            {"role": "assistant", "content": "done"},
        ],
    }
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(record) + "\n")
    code, output, kept, _ = run_import("openai", path, tmp_path)
    assert code == 0 and kept == ["a1"]
    assert "messages.1.tool_calls.0.arguments: not a JSON object; kept as the raw text" in output


def test_an_anthropic_tool_result_inside_an_assistant_message_is_set_aside(tmp_path: Path) -> None:
    bad = {
        "id": "x1",
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "tu1", "name": "f", "input": {}},
                    {"type": "tool_result", "tool_use_id": "tu1", "content": "r"},
                ],
            },  # fmt: skip
        ],
    }
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in (bad, GOOD)) + "\n")
    code, output, kept, rejected = run_import("anthropic", path, tmp_path)
    assert code == 0 and kept == ["good"]
    assert "in.jsonl:1: messages.1.content.1: a tool_result block in an assistant message" in output
    assert len(rejected) == 1
