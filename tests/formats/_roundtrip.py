"""Conversations restricted to what one export format can express, for round-trip tests.

``tests/strategies.conversations`` generates every canonical field, and no trace format
can carry all of them, so each format gets a strategy limited to what it can say. What
is left out, and why:

* every format: ``provenance`` (re-import writes its own); message ``content`` together
  with ``parts``, and ``parts`` holding one lone text part (both are written as the same
  list of text blocks, and a lone text block reads back as ``content``); empty ``parts``.
* openai: message ids, times, latency, model, usage, finish reason, tool errors,
  reasoning parts, signals and scores (the Chat Completions message has no such fields).
  The exporter keeps message metadata as extra message keys, so metadata keys avoid
  the message's own keys.
* anthropic: the request body has no message names, ids, times, usage, model, finish
  reason or metadata; system messages only lead (they become ``system``) and carry only
  text; tool calls need object arguments (``tool_use.input`` is an object).
* otel: only assistant and tool messages have times (span times), and an assistant's
  latency needs its timestamp; when every span has a start time spans are ordered by it,
  so generated times never go backwards; only assistant messages have ids
  (``gen_ai.response.id``); times and score dates are after 1970 (OTLP times are unsigned
  nanoseconds); usage is never empty (no attributes would be written).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st
from pydantic import JsonValue

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
    ToolMessage,
    Usage,
    UserMessage,
)
from tests.strategies import json_objects, json_values, names, scores, short_text, signals

EPOCH = datetime(2001, 1, 1, tzinfo=UTC)

meta_keys = st.text(max_size=6).map(lambda s: "x_" + s)
message_metadata: st.SearchStrategy[dict[str, JsonValue]] = st.dictionaries(
    meta_keys, json_values, max_size=2
)
conversation_metadata: st.SearchStrategy[dict[str, JsonValue]] = st.dictionaries(
    meta_keys, json_values, max_size=3
)


def _other(kind: str) -> OtherPart:
    return OtherPart(source_type=kind, data={"type": kind, "payload": 1})


def _parts(draw: st.DrawFn, choices: list[st.SearchStrategy[Part]]) -> list[Part] | None:
    if draw(st.integers(min_value=0, max_value=3)) != 0:
        return None
    parts = draw(st.lists(st.one_of(*choices), min_size=1, max_size=3))
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        parts.append(_other("x_custom"))
    return parts


_text_parts: st.SearchStrategy[Part] = st.builds(TextPart, text=short_text)


def _content_fields(draw: st.DrawFn, choices: list[st.SearchStrategy[Part]]) -> dict[str, Any]:
    parts = _parts(draw, choices)
    if parts is not None:
        return {"parts": parts}
    return {"content": draw(st.none() | short_text)}


class _Calls:
    def __init__(self) -> None:
        self.open: list[str] = []
        self.next = 0

    def new(self) -> str:
        self.next += 1
        return f"call_{self.next}"


def _arguments(draw: st.DrawFn, raw_ok: bool) -> dict[str, Any]:
    if raw_ok and draw(st.integers(min_value=0, max_value=5)) == 0:
        return {"arguments": None, "arguments_raw": "{not json"}
    return {"arguments": draw(json_objects)}


@st.composite
def openai_conversations(draw: st.DrawFn) -> Conversation:
    """Conversations the Chat Completions record form expresses exactly."""
    calls = _Calls()
    messages: list[Message] = []
    part_choices: list[st.SearchStrategy[Part]] = [
        _text_parts,
        st.builds(MediaPart, modality=st.just("image"), uri=names),
        st.just(_other("input_audio")),
    ]
    for _ in range(draw(st.integers(min_value=0, max_value=8))):
        roles = ["system", "user", "assistant"] + (["tool", "tool"] if calls.open else [])
        role = draw(st.sampled_from(roles))
        common: dict[str, Any] = {
            "name": draw(st.none() | names),
            "metadata": draw(message_metadata),
            **_content_fields(draw, part_choices),
        }
        if role == "system":
            messages.append(SystemMessage(developer=draw(st.booleans()), **common))
        elif role == "user":
            messages.append(UserMessage(**common))
        elif role == "tool":
            call_id = draw(st.sampled_from(calls.open))
            calls.open.remove(call_id)
            messages.append(ToolMessage(tool_call_id=call_id, **common))
        else:
            new = [calls.new() for _ in range(draw(st.integers(min_value=0, max_value=3)))]
            calls.open.extend(new)
            tool_calls = [ToolCall(id=c, name=draw(names), **_arguments(draw, True)) for c in new]
            messages.append(AssistantMessage(tool_calls=tool_calls, **common))
    return Conversation(
        id=draw(names),
        messages=messages,
        tags=draw(st.dictionaries(names, short_text, max_size=2)),
        metadata=draw(st.dictionaries(names, json_values, max_size=2)),
    )


@st.composite
def anthropic_conversations(draw: st.DrawFn) -> Conversation:
    """Conversations an Anthropic request (plus id, tags, metadata) expresses exactly."""
    calls = _Calls()
    messages: list[Message] = [
        SystemMessage(content=draw(short_text), metadata=draw(message_metadata))
        for _ in range(draw(st.integers(min_value=0, max_value=2)))
    ]
    user_parts: list[st.SearchStrategy[Part]] = [
        _text_parts,
        st.builds(MediaPart, modality=st.just("image"), uri=names.map(lambda s: "https://" + s)),
        st.just(_other("x_block")),
    ]
    assistant_parts: list[st.SearchStrategy[Part]] = [
        _text_parts,
        st.builds(ReasoningPart, text=short_text, signature=st.none() | names),
        st.builds(ReasoningPart, redacted=st.just(True), signature=names),
        st.just(_other("server_tool_use")),
    ]
    for _ in range(draw(st.integers(min_value=0, max_value=8))):
        roles = ["user", "assistant"] + (["tool", "tool"] if calls.open else [])
        role = draw(st.sampled_from(roles))
        if role == "user":
            messages.append(UserMessage(**_content_fields(draw, user_parts)))
        elif role == "tool":
            call_id = draw(st.sampled_from(calls.open))
            calls.open.remove(call_id)
            messages.append(
                ToolMessage(
                    tool_call_id=call_id,
                    is_error=draw(st.booleans()),
                    **_content_fields(draw, [_text_parts]),
                )
            )
        else:
            new = [calls.new() for _ in range(draw(st.integers(min_value=0, max_value=3)))]
            calls.open.extend(new)
            tool_calls = [ToolCall(id=c, name=draw(names), **_arguments(draw, False)) for c in new]
            messages.append(
                AssistantMessage(tool_calls=tool_calls, **_content_fields(draw, assistant_parts))
            )
    return Conversation(
        id=draw(names),
        messages=messages,
        tags=draw(st.dictionaries(names, short_text, max_size=2)),
        metadata=draw(conversation_metadata),
    )


usages: st.SearchStrategy[Usage] = st.builds(
    Usage,
    input_tokens=st.integers(min_value=0, max_value=10**7),
    output_tokens=st.none() | st.integers(min_value=0, max_value=10**7),
    cache_read_tokens=st.none() | st.integers(min_value=0, max_value=10**6),
    reasoning_tokens=st.none() | st.integers(min_value=0, max_value=10**6),
    cost_usd=st.none() | st.floats(min_value=0, max_value=100, allow_nan=False),
)

otel_attribute_values = st.one_of(
    short_text, st.integers(min_value=-(2**62), max_value=2**62), st.booleans()
)


@st.composite
def otel_conversations(draw: st.DrawFn) -> Conversation:
    """Conversations an OTLP trace of chat and execute_tool spans expresses exactly."""
    calls = _Calls()
    clock = EPOCH + timedelta(seconds=draw(st.integers(min_value=0, max_value=10**9)))
    timed = draw(st.booleans())
    messages: list[Message] = []
    parts: list[st.SearchStrategy[Part]] = [
        _text_parts,
        st.builds(
            ReasoningPart,
            text=st.none() | short_text,
            signature=st.none() | names,
            redacted=st.booleans(),
        ),
        st.builds(
            MediaPart,
            modality=st.sampled_from(["image", "audio", "video", "file"]),
            mime_type=st.none() | st.just("image/png"),
            uri=st.none() | names,
            file_id=st.none() | names,
        ),
        st.just(_other("x_part")),
    ]
    response_ids: set[str] = set()

    def timing() -> dict[str, Any]:
        nonlocal clock
        if not timed or draw(st.integers(min_value=0, max_value=4)) == 0:
            return {}
        clock += timedelta(microseconds=draw(st.integers(min_value=0, max_value=10**7)))
        latency_us = draw(st.none() | st.integers(min_value=0, max_value=10**7))
        if latency_us is None:
            return {"timestamp": clock}
        return {
            "timestamp": clock + timedelta(microseconds=latency_us),
            "latency_ms": latency_us / 1000,
        }

    def span_attributes() -> dict[str, Any]:
        if draw(st.integers(min_value=0, max_value=3)) != 0:
            return {}
        attrs = draw(st.dictionaries(st.sampled_from(["x.a", "x.b"]), otel_attribute_values))
        return {"otel.attributes": attrs} if attrs else {}

    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        roles = ["system", "user", "assistant", "assistant"] + (["tool"] * 2 if calls.open else [])
        role = draw(st.sampled_from(roles))
        common: dict[str, Any] = {
            "name": draw(st.none() | names),
            "metadata": draw(message_metadata),
        }
        if role == "system":
            messages.append(
                SystemMessage(
                    developer=draw(st.booleans()), **common, **_content_fields(draw, parts)
                )
            )
        elif role == "user":
            messages.append(UserMessage(**common, **_content_fields(draw, parts)))
        elif role == "tool":
            call_id = draw(st.sampled_from(calls.open))
            calls.open.remove(call_id)
            common["metadata"] = {**common["metadata"], **span_attributes()}
            tool_parts = draw(st.none() | st.lists(st.one_of(*parts), min_size=1, max_size=2))
            messages.append(
                ToolMessage(
                    tool_call_id=call_id,
                    content=draw(st.none() | short_text),
                    parts=tool_parts,
                    is_error=draw(st.booleans()),
                    **common,
                    **timing(),
                )
            )
        else:
            new = [calls.new() for _ in range(draw(st.integers(min_value=0, max_value=3)))]
            calls.open.extend(new)
            rid = draw(st.none() | names)
            if rid in response_ids:
                rid = None
            if rid is not None:
                response_ids.add(rid)
            common["metadata"] = {**common["metadata"], **span_attributes()}
            messages.append(
                AssistantMessage(
                    id=rid,
                    tool_calls=[
                        ToolCall(id=c, name=draw(names), **_arguments(draw, True)) for c in new
                    ],
                    model=draw(st.none() | st.sampled_from(["gpt-4.1", "claude-x", "local/ü"])),
                    usage=draw(st.none() | usages),
                    finish_reason=draw(
                        st.none() | st.sampled_from(["stop", "tool_calls", "length"])
                    ),
                    **common,
                    **_content_fields(draw, parts),
                    **timing(),
                )
            )
    conversation_id = draw(names)
    score_list: list[Score] = []
    for score in draw(st.lists(scores(conversation_id), max_size=3)):
        created = score.created_at
        if created is not None and created.year < 1971:
            score = score.model_copy(update={"created_at": None})
        score_list.append(score)
    return Conversation(
        id=conversation_id,
        messages=messages,
        tags=draw(st.dictionaries(names, short_text, max_size=2)),
        metadata=draw(conversation_metadata),
        signals=draw(signals),
        scores=score_list,
    )
