"""Canonical → openai / anthropic → canonical: every field survives or is reported lost.

The conversations generated here set every canonical field: model, usage, finish
reason, times, latency, tool errors, reasoning with signatures, media and other parts,
message names, ids and metadata, scores, signals, tags, metadata and tool definitions.
After export and re-import each field equals the original or its path is in the
exporter's loss report, and the report names only fields the conversation sets.

What survives is :data:`SURVIVAL` (``kept``: always, never reported; ``lost``: always
reported when set; ``partly``: reported exactly when not carried), and the table in
docs/formats.md ("What an export keeps") must say the same. In short:

* openai keeps ids, tags, metadata, tool definitions, roles, developer flags, names,
  tool calls, text parts and images by URL; it loses message ids, times, latency,
  model, usage, finish reason, ``is_error``, reasoning, signals and scores. Message
  metadata is kept unless a key is a message field's name.
* anthropic keeps ids, tags, metadata, tool definitions, tool calls, ``is_error``, text,
  images, documents and reasoning with its signature (but in a leading system
  message); it loses message ids, names, times, latency, developer flags, model, usage,
  finish reason, signals and scores, and message metadata except on leading system
  messages. A system message after the start is sent as user text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import JsonValue

from convsim.formats import conversation_from_anthropic, conversation_from_openai
from convsim.formats._export import ARGUMENTS, Export, is_set
from convsim.formats._tools import tool_definition
from convsim.formats.anthropic import export_anthropic
from convsim.formats.openai import export_openai
from convsim.trace import (
    AssistantMessage,
    Conversation,
    MediaPart,
    Message,
    OtherPart,
    Part,
    ReasoningPart,
    Score,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolDefinition,
    ToolMessage,
    Usage,
    UserMessage,
    UserSignals,
)
from tests.strategies import conversations, json_objects, names, short_text

FORMATS = ("openai", "anthropic")
EXPORT: dict[str, Callable[[Conversation], Export]] = {
    "openai": export_openai,
    "anthropic": export_anthropic,
}
READ: dict[str, Callable[[Any], Conversation]] = {
    "openai": conversation_from_openai,
    "anthropic": conversation_from_anthropic,
}

KEPT, LOST, PARTLY = "kept", "lost", "partly"
SURVIVAL: dict[str, tuple[str, str]] = {
    # path: (openai, anthropic)
    "id": (KEPT, KEPT),
    "tags": (KEPT, KEPT),
    "metadata": (KEPT, PARTLY),
    "tools": (PARTLY, PARTLY),
    "signals": (LOST, LOST),
    "scores": (LOST, LOST),
    "messages": (KEPT, PARTLY),
    "messages[].role": (KEPT, PARTLY),
    "messages[].developer": (KEPT, LOST),
    "messages[].name": (KEPT, LOST),
    "messages[].id": (LOST, LOST),
    "messages[].timestamp": (LOST, LOST),
    "messages[].latency_ms": (LOST, LOST),
    "messages[].metadata": (PARTLY, PARTLY),
    "messages[].content": (PARTLY, PARTLY),
    "messages[].parts[text]": (KEPT, KEPT),
    "messages[].parts[media]": (PARTLY, PARTLY),
    "messages[].parts[reasoning]": (LOST, PARTLY),
    "messages[].parts[reasoning].text": (LOST, PARTLY),
    "messages[].parts[reasoning].signature": (LOST, PARTLY),
    "messages[].parts[other]": (PARTLY, PARTLY),
    "messages[].tool_calls": (KEPT, KEPT),
    ARGUMENTS: (PARTLY, PARTLY),
    "messages[].model": (LOST, LOST),
    "messages[].usage": (LOST, LOST),
    "messages[].finish_reason": (LOST, LOST),
    "messages[].is_error": (LOST, KEPT),
}
"""Which canonical fields survive each format's round trip (see the module docstring)."""

_CONVERSATION_FIELDS = ("tags", "metadata", "tools", "signals", "scores")
_MESSAGE_FIELDS = (
    "developer",
    "name",
    "id",
    "timestamp",
    "latency_ms",
    "metadata",
    "model",
    "usage",
    "finish_reason",
    "is_error",
)

# -- generated conversations ----------------------------------------------------------

_media = st.builds(
    MediaPart,
    modality=st.sampled_from(["image", "image", "file", "audio"]),
    mime_type=st.none() | st.just("image/png"),
    uri=st.one_of(
        st.none(),
        names.map(lambda s: "https://" + s),
        st.just("data:image/png;base64,iVBORw0KGgo="),
    ),
    file_id=st.none() | names,
)
_reasoning = st.builds(
    ReasoningPart,
    text=st.none() | short_text,
    signature=st.none() | names,
    redacted=st.booleans(),
)
_other = st.one_of(
    st.sampled_from(["x_block", "input_audio", "server_tool_use"]).map(
        lambda kind: OtherPart(source_type=kind, data={"type": kind, "payload": 1})
    ),
    st.builds(OtherPart, source_type=st.just("x_raw"), data=st.integers()),
)
_parts: st.SearchStrategy[list[Part]] = st.lists(
    st.one_of(st.builds(TextPart, text=short_text), _media, _reasoning, _other), max_size=3
)
# Keys a format may take for its own fields, among ordinary ones.
_message_metadata = st.one_of(
    json_objects,
    st.sampled_from([{"name": "n"}, {"type": "t"}, {"tool_calls": []}, {"cache_control": {}}]),
)
_tool_definitions = st.builds(
    ToolDefinition,
    name=names,
    description=st.none() | short_text,
    parameters=st.none() | st.just({"type": "object", "properties": {}}),
    extra=st.sampled_from([{}, {"strict": True}, {"type": "custom"}, {"type": "function"}]),
)


def _enrich(draw: st.DrawFn, m: Message) -> Message:
    update: dict[str, Any] = {}
    if draw(st.integers(min_value=0, max_value=2)) == 0:
        update["parts"] = draw(_parts)
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        update["metadata"] = draw(_message_metadata)
    return m.model_copy(update=update)


@st.composite
def rich_conversations(draw: st.DrawFn) -> Conversation:
    """Conversations that set every canonical field, with parts of every kind."""
    conv = draw(conversations(max_messages=8))
    metadata = dict(conv.metadata)
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        # Request parameters an Anthropic import keeps; "id" is one the record owns.
        params: list[JsonValue] = [{"max_tokens": 64}, {"id": "x"}]
        metadata["anthropic.request"] = draw(st.sampled_from(params))
    tools = draw(st.lists(_tool_definitions, max_size=3, unique_by=lambda t: t.name))
    return conv.model_copy(
        update={
            "messages": [_enrich(draw, m) for m in conv.messages],
            "metadata": metadata,
            "tools": tools,
            "provenance": None,
        }
    )


# -- comparing a conversation with its round trip -------------------------------------


def _field(m: Message, name: str) -> Any:
    # A field the other role lacks compares as its default (a system message read back
    # as a user message has no developer flag: False).
    info = type(m).model_fields.get(name)
    if info is None:
        return False if name in ("developer", "is_error") else None
    return getattr(m, name)


def _pieces(m: Message) -> list[Part]:
    lead: list[Part] = [TextPart(text=m.content)] if m.content is not None else []
    return [*lead, *(m.parts or [])]


def _part_differences(before: list[Part], after: list[Part]) -> set[str]:
    if len(before) == len(after):
        out: set[str] = set()
        for p, q in zip(before, after, strict=True):
            if p == q:
                continue
            if isinstance(p, ReasoningPart) and isinstance(q, ReasoningPart):
                out |= {
                    f"messages[].parts[reasoning].{f}"
                    for f in ("text", "signature", "redacted")
                    if getattr(p, f) != getattr(q, f)
                }
            else:
                out.add(f"messages[].parts[{p.type}]")
        return out
    left = list(after)
    missing = set()
    for p in before:
        if p in left:
            left.remove(p)
        else:
            missing.add(f"messages[].parts[{p.type}]")
    return missing or {"messages[].content"}


def _message_differences(a: Message, b: Message) -> set[str]:
    out = {"messages[].role"} if a.role != b.role else set()
    out |= {f"messages[].{f}" for f in _MESSAGE_FIELDS if _field(a, f) != _field(b, f)}
    calls_a, calls_b = _field(a, "tool_calls") or [], _field(b, "tool_calls") or []
    if [(c.id, c.name) for c in calls_a] != [(c.id, c.name) for c in calls_b]:
        out.add("messages[].tool_calls")
    elif calls_a != calls_b:
        out.add(ARGUMENTS)
    if (a.content, a.parts) != (b.content, b.parts):
        pa, pb = _pieces(a), _pieces(b)
        out |= _part_differences(pa, pb) if pa != pb else {"messages[].content"}
    return out


def differences(before: Conversation, after: Conversation) -> set[str]:
    """Canonical paths whose values differ between a conversation and its round trip."""
    out = {f for f in ("id", *_CONVERSATION_FIELDS) if getattr(before, f) != getattr(after, f)}
    if len(before.messages) != len(after.messages):
        return out | {"messages"}
    for a, b in zip(before.messages, after.messages, strict=True):
        out |= _message_differences(a, b)
    return out


def present(conv: Conversation) -> set[str]:
    """Canonical paths the conversation sets (a part kind's fields with the part)."""
    out = {"id"} | {f for f in _CONVERSATION_FIELDS if is_set(getattr(conv, f))}
    for m in conv.messages:
        out |= {"messages", "messages[].role", "messages[].content"}
        out |= {f"messages[].{f}" for f in _MESSAGE_FIELDS if is_set(_field(m, f))}
        if isinstance(m, AssistantMessage) and m.tool_calls:
            out |= {"messages[].tool_calls", ARGUMENTS}
        for p in m.parts or []:
            out.add(f"messages[].parts[{p.type}]")
            if isinstance(p, ReasoningPart):
                out |= {"messages[].parts[reasoning].text", "messages[].parts[reasoning].signature"}
    return out


def covered(path: str, lost: list[str]) -> bool:
    """Whether a reported path accounts for ``path`` (itself, or a path containing it)."""
    return any(
        path == p or path.startswith(p + ".") or (p == "messages" and path.startswith(p))
        for p in lost
    )


def round_trip(fmt: str, conv: Conversation) -> tuple[Conversation, list[str]]:
    """Export, serialise and read back; returns the conversation and the loss report."""
    result = EXPORT[fmt](conv)
    (record,) = json.loads(json.dumps(result.records))
    tools: list[ToolDefinition] | None = None
    if not _reader_reads_tools(fmt):
        # The readers do not parse `tools` yet: check the written definitions with the
        # shared parser they will use, and keep the reader from seeing them.
        tools = [d for d, _ in map(tool_definition, record.pop("tools", [])) if d is not None]
    back = READ[fmt](record)
    if tools is not None:
        back = back.model_copy(update={"tools": tools})
    return back, result.lost


def _reader_reads_tools(fmt: str) -> bool:
    probe = Conversation(id="probe", tools=[ToolDefinition(name="t")])
    (record,) = EXPORT[fmt](probe).records
    return READ[fmt](json.loads(json.dumps(record))).tools == probe.tools


# -- the properties -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(conv=rich_conversations())
def test_every_field_survives_or_is_reported(fmt: str, conv: Conversation) -> None:
    back, lost = round_trip(fmt, conv)
    unreported = {d for d in differences(conv, back) if not covered(d, lost)}
    assert not unreported, f"changed without a report: {sorted(unreported)}; reported {lost}"
    assert set(lost) <= present(conv), "reported a field the conversation does not set"
    assert set(lost) <= set(SURVIVAL), "reported a path the survival table does not list"
    column = FORMATS.index(fmt)
    for path in present(conv):
        mark = SURVIVAL.get(path, (KEPT, KEPT))[column]
        if mark == KEPT:
            assert path not in lost, f"{path} is always kept by {fmt}"
        elif mark == LOST:
            assert covered(path, lost), f"{path} is never carried by {fmt}"


def everything_set() -> Conversation:
    """One conversation setting every field a format may lose."""
    when = datetime(2026, 3, 7, 8, 0, tzinfo=UTC)
    return Conversation(
        id="c1",
        messages=[
            SystemMessage(content="Be brief.", metadata={"cache_control": {"type": "ephemeral"}}),
            UserMessage(content="Weather in Lisbon?", id="m1", timestamp=when),
            AssistantMessage(
                parts=[ReasoningPart(text="Check first.", signature="sig")],
                tool_calls=[ToolCall(id="call_1", name="get_weather", arguments={"city": "L"})],
                model="gpt-4.1",
                usage=Usage(input_tokens=10, output_tokens=5, cost_usd=0.01),
                finish_reason="tool_calls",
                timestamp=when,
                latency_ms=120.0,
            ),
            ToolMessage(tool_call_id="call_1", content="timeout", is_error=True),
            AssistantMessage(content="I could not check.", name="agent"),
        ],
        tags={"vertical": "travel"},
        metadata={"user_id": "u1"},
        tools=[ToolDefinition(name="get_weather", parameters={"type": "object"})],
        signals=UserSignals(thumbs="down"),
        scores=[Score(conversation_id="c1", name="ok", value=False, kind="binary", grader="g")],
    )


def test_a_conversation_witheverything_set_set_names_each_loss() -> None:
    conv = everything_set()
    assert export_openai(conv).lost == [
        "messages[].finish_reason",
        "messages[].id",
        "messages[].is_error",
        "messages[].latency_ms",
        "messages[].model",
        "messages[].parts[reasoning]",
        "messages[].timestamp",
        "messages[].usage",
        "scores",
        "signals",
    ]
    assert export_anthropic(conv).lost == [
        "messages[].finish_reason",
        "messages[].id",
        "messages[].latency_ms",
        "messages[].model",
        "messages[].name",
        "messages[].timestamp",
        "messages[].usage",
        "scores",
        "signals",
    ]
    (record,) = export_anthropic(conv).records
    assert record["system"] == [
        {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}
    ]
    assert record["tools"] == [{"name": "get_weather", "input_schema": {"type": "object"}}]
    assert record["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "Check first.",
        "signature": "sig",
    }


def test_openai_record_carries_tools_and_keeps_message_fields_its_own() -> None:
    conv = Conversation(
        id="c",
        messages=[UserMessage(content="hi", metadata={"name": "not a name", "x": 1})],
        tools=[ToolDefinition(name="t", description="d", extra={"strict": True})],
    )
    result = export_openai(conv)
    (record,) = result.records
    assert record["tools"] == [
        {"type": "function", "function": {"name": "t", "description": "d", "strict": True}}
    ]
    assert record["messages"] == [{"role": "user", "content": "hi", "x": 1}]
    assert result.lost == ["messages[].metadata"]


def test_anthropic_record_keeps_its_id_over_restored_request_parameters() -> None:
    conv = Conversation(id="c", metadata={"anthropic.request": {"id": "other", "max_tokens": 9}})
    result = export_anthropic(conv)
    (record,) = result.records
    assert record["id"] == "c" and record["max_tokens"] == 9
    assert result.lost == ["metadata"]


def test_docs_table_matches_the_survival_table() -> None:
    text = (Path(__file__).parents[2] / "docs" / "formats.md").read_text()
    section = text.split("## What an export keeps", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, ...]] = {}
    for line in section.splitlines():
        match = re.match(r"\| `([^`]+)` \|(.*)\|\s*$", line)
        if match:
            cells = [c.strip() for c in match.group(2).split("|")]
            rows[match.group(1)] = tuple(re.split(r"[\s:(]", c, maxsplit=1)[0] for c in cells)
    assert rows == SURVIVAL
