import json
from pathlib import Path

from convsim.datasets import ReadReport
from convsim.formats import conversation_from_openai, read_openai, to_openai_messages
from convsim.trace import MediaPart, OtherPart, SystemMessage, TextPart, ToolMessage

WEATHER = [
    {"role": "system", "content": "You are a travel agent."},
    {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Rome"'},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "rainy, 14C"},
    {"role": "tool", "tool_call_id": "call_2", "content": "error: bad arguments"},
    {"role": "assistant", "content": "Paris is rainy; I could not check Rome."},
]


def test_parallel_calls_and_unparsable_arguments() -> None:
    conv = conversation_from_openai(
        {"id": "c1", "messages": WEATHER, "tags": {"vertical": "travel"}}
    )
    assert conv.id == "c1" and conv.tags == {"vertical": "travel"}
    paris, rome = conv.tool_calls()
    assert paris.arguments == {"city": "Paris"}
    assert rome.arguments is None and rome.arguments_raw == '{"city": "Rome"'
    results = conv.tool_results()
    assert isinstance(results[1], ToolMessage) and results[1].content == "error: bad arguments"
    assert conv.messages[1].parts == [TextPart(text="Weather in Paris and Rome?")]
    assert len(conv.turns()) == 1 and len(conv.turns()[0].messages) == 5


def test_export_reproduces_the_messages() -> None:
    conv = conversation_from_openai(WEATHER)
    exported = to_openai_messages(conv)
    # The one difference: re-encoded arguments are compact JSON; the unparsable
    # string comes back exactly as sent.
    assert exported[2]["tool_calls"][1]["function"]["arguments"] == '{"city": "Rome"'
    assert exported == WEATHER
    assert conversation_from_openai(exported).messages == conv.messages


def test_developer_role_images_and_unknown_parts_survive() -> None:
    msgs = [
        {"role": "developer", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "https://example.test/a.png"}},
                {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}},
            ],
        },
    ]
    conv = conversation_from_openai(msgs)
    assert isinstance(conv.messages[0], SystemMessage) and conv.messages[0].developer
    parts = conv.messages[1].parts
    assert parts is not None
    assert isinstance(parts[0], MediaPart) and parts[0].uri == "https://example.test/a.png"
    assert isinstance(parts[1], OtherPart) and parts[1].source_type == "input_audio"
    assert to_openai_messages(conv) == msgs


def test_ids_are_stable_when_the_source_has_none() -> None:
    assert conversation_from_openai(WEATHER).id == conversation_from_openai(WEATHER).id
    assert conversation_from_openai(WEATHER).id != conversation_from_openai(WEATHER[:2]).id


def test_jsonl_file_with_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "chats.jsonl"
    lines = [
        json.dumps({"id": "ok1", "messages": WEATHER}),
        json.dumps({"id": "bad-role", "messages": [{"role": "bot", "content": "x"}]}),
        json.dumps(
            {"id": "no-call", "messages": [{"role": "tool", "tool_call_id": "z", "content": "1"}]}
        ),
        json.dumps({"id": "ok2", "messages": WEATHER[:2]})[:-5],
        json.dumps(WEATHER[:2]),
    ]
    path.write_text("\n".join(lines) + "\n")
    report = ReadReport(file=str(path))
    convs = list(read_openai(path, report=report))
    assert [c.id for c in convs][0] == "ok1" and len(convs) == 2
    assert (report.read, report.kept, report.rejected) == (5, 2, 3)
    issues = [str(i) for i in report.issues]
    assert issues[0] == (
        f"{path}:2: messages.0.role: unknown role 'bot'; expected one of system, developer, "
        "user, assistant, tool"
    )
    assert issues[1].startswith(f"{path}:3: ") and "'z'" in issues[1] and "message 0" in issues[1]
    assert issues[2].startswith(f"{path}:4: invalid JSON")


def test_a_json_list_of_messages_is_one_conversation(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(WEATHER, indent=2))
    report = ReadReport(file=str(path))
    (conv,) = read_openai(path, report=report)
    assert len(conv.messages) == len(WEATHER)


def test_a_pretty_printed_object_is_one_conversation(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"id": "pretty", "messages": WEATHER}, indent=2))
    report = ReadReport(file=str(path))
    (conv,) = read_openai(path, report=report)
    assert conv.id == "pretty"
