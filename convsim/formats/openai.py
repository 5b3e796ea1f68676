"""OpenAI Chat Completions message lists, to and from canonical conversations.

Accepted records (one per JSONL line, or the elements of a JSON array):

* a bare message list: ``[{"role": "user", ...}, ...]``;
* an object ``{"messages": [...]}`` with optional ``id`` (or ``conversation_id``),
  ``metadata`` and ``tags``; this is also what :func:`to_openai_record` writes.

A JSON array whose elements are messages is read as one conversation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from ..datasets import ReadReport, RecordError, RejectSink
from ..trace import (
    AssistantMessage,
    Conversation,
    MediaPart,
    Message,
    OtherPart,
    Part,
    Provenance,
    ReasoningPart,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolDefinition,
    ToolMessage,
    UserMessage,
)
from ._base import content_id, expect_dict, expect_list, read_json_records
from ._export import LAYOUT, Export, Losses, message_path, part_path, verbatim_block
from ._tools import merge_tools, tool_definition

_ROLES = ("system", "developer", "user", "assistant", "tool")
_KNOWN_KEYS = {
    "role",
    "content",
    "name",
    "tool_calls",
    "tool_call_id",
}


def read_openai(
    path: Path,
    *,
    report: ReadReport,
    rejects: RejectSink | None = None,
    keep_source: bool = False,
) -> Iterator[Conversation]:
    """Yield the conversations in an OpenAI chat-messages file (JSONL or a JSON array)."""

    def convert(record: Any, number: int) -> Conversation:
        conv = conversation_from_openai(record, source_file=str(path), source_line=number)
        if keep_source and conv.provenance is not None:
            conv.provenance.record = record
        return conv

    yield from read_json_records(
        path, convert, report=report, rejects=rejects, regroup=_one_conversation_if_messages
    )


def _one_conversation_if_messages(records: list[Any]) -> list[Any]:
    if records and all(isinstance(r, dict) and "role" in r for r in records):
        return [records]
    return records


def conversation_from_openai(
    record: Any,
    *,
    source_file: str | None = None,
    source_line: int | None = None,
    conversation_id: str | None = None,
) -> Conversation:
    """Convert one OpenAI-format record (message list or ``{"messages": ...}``) to canonical.

    Raises:
        RecordError: naming the field that cannot be mapped.
        pydantic.ValidationError: when the result breaks the canonical rules (for
            example a tool result whose call id matches no call).
    """
    metadata: dict[str, JsonValue] = {}
    tags: dict[str, str] = {}
    tools: list[ToolDefinition] = []
    if isinstance(record, list):
        raw_messages: list[Any] = record
        prefix = ""
    else:
        obj = expect_dict(record, "record")
        raw_messages = expect_list(obj.get("messages"), "messages")
        prefix = "messages."
        conversation_id = conversation_id or _str_or_none(
            obj.get("id") or obj.get("conversation_id")
        )
        if "metadata" in obj:
            metadata = expect_dict(obj["metadata"], "metadata")
        if "tags" in obj:
            raw_tags = expect_dict(obj["tags"], "tags")
            tags = {str(k): str(v) for k, v in raw_tags.items()}
        tools = _tools(obj.get("tools"))
    messages = [message_from_openai(m, f"{prefix}{i}") for i, m in enumerate(raw_messages)]
    return Conversation(
        id=conversation_id or content_id("openai", raw_messages),
        messages=messages,
        metadata=metadata,
        tags=tags,
        tools=tools,
        provenance=Provenance(
            source_format="openai", source_file=source_file, source_line=source_line
        ),
    )


def _tools(raw: Any) -> list[ToolDefinition]:
    """The request's ``tools``; a definition that cannot be read rejects the record."""
    if raw is None:
        return []
    out: list[ToolDefinition] = []
    for i, item in enumerate(expect_list(raw, "tools")):
        tool, why = tool_definition(item)
        if tool is None:
            raise RecordError(
                f"tools.{i}", f"{why}; give {{type: function, function: {{name, ...}}}}"
            )
        merge_tools(out, [tool])
    return out


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | int):
        raise RecordError("id", f"expected a string id, got {type(value).__name__}")
    return str(value)


def message_from_openai(raw: Any, where: str) -> Message:
    """Convert one chat-completions message; ``where`` names it in errors."""
    m = expect_dict(raw, where)
    role = m.get("role")
    if role not in _ROLES:
        raise RecordError(
            f"{where}.role",
            f"unknown role {role!r}; expected one of {', '.join(_ROLES)}",
        )
    content, parts = _content_from_openai(m.get("content"), f"{where}.content")
    name = m.get("name")
    if name is not None and not isinstance(name, str):
        raise RecordError(f"{where}.name", "expected a string")
    extra: dict[str, JsonValue] = {k: v for k, v in m.items() if k not in _KNOWN_KEYS}
    common: dict[str, Any] = {"content": content, "parts": parts, "name": name, "metadata": extra}
    if role in ("system", "developer"):
        return SystemMessage(developer=role == "developer", **common)
    if role == "user":
        return UserMessage(**common)
    if role == "tool":
        call_id = m.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise RecordError(f"{where}.tool_call_id", "a tool message needs its call's id")
        return ToolMessage(tool_call_id=call_id, **common)
    calls_raw = m.get("tool_calls") or []
    calls = [
        _tool_call_from_openai(c, f"{where}.tool_calls.{k}")
        for k, c in enumerate(expect_list(calls_raw, f"{where}.tool_calls"))
    ]
    if m.get("tool_calls") is not None and not calls:
        extra["tool_calls"] = []
    return AssistantMessage(tool_calls=calls, **common)


def _tool_call_from_openai(raw: Any, where: str) -> ToolCall:
    c = expect_dict(raw, where)
    fn = expect_dict(c.get("function"), f"{where}.function")
    call_id, name = c.get("id"), fn.get("name")
    if not isinstance(call_id, str) or not call_id:
        raise RecordError(f"{where}.id", "a tool call needs a non-empty string id")
    if not isinstance(name, str) or not name:
        raise RecordError(f"{where}.function.name", "a tool call needs a function name")
    args = fn.get("arguments")
    if args is not None and not isinstance(args, str | dict):
        raise RecordError(f"{where}.function.arguments", "expected a JSON string")
    return ToolCall.from_raw(call_id, name, args)


def _content_from_openai(raw: Any, where: str) -> tuple[str | None, list[Part] | None]:
    if raw is None or isinstance(raw, str):
        return raw, None
    items = expect_list(raw, where)
    parts: list[Part] = []
    for k, item in enumerate(items):
        p = expect_dict(item, f"{where}.{k}")
        kind = p.get("type")
        if kind == "text" and isinstance(p.get("text"), str) and len(p) == 2:
            parts.append(TextPart(text=p["text"]))
        elif kind == "image_url" and isinstance(p.get("image_url"), dict) and len(p) == 2:
            url = p["image_url"].get("url")
            if isinstance(url, str) and len(p["image_url"]) == 1:
                parts.append(MediaPart(modality="image", uri=url))
            else:
                parts.append(OtherPart(source_type="image_url", data=p))
        else:
            parts.append(OtherPart(source_type=str(kind), data=p))
    return None, parts


def to_openai_messages(
    conversation: Conversation, *, for_api: bool = False
) -> list[dict[str, Any]]:
    """The conversation's messages in Chat Completions form.

    With ``for_api`` the messages are fit to send to a provider: message metadata is
    left out and text parts are flattened to strings.
    """
    return [_message_to_openai(m, for_api=for_api) for m in conversation.messages]


def to_openai_record(conversation: Conversation) -> dict[str, Any]:
    """The conversation as one ``{"id", "messages", "metadata", "tags", "tools"}`` record.

    ``tools`` holds the tool definitions in Chat Completions form, as fine-tuning files
    and requests do. :func:`export_openai` also says what the record leaves out.
    """
    record: dict[str, Any] = {"id": conversation.id, "messages": to_openai_messages(conversation)}
    if conversation.metadata:
        record["metadata"] = conversation.metadata
    if conversation.tags:
        record["tags"] = conversation.tags
    if conversation.tools:
        record["tools"] = [t.openai() for t in conversation.tools]
    return record


def export_openai(conversation: Conversation) -> Export:
    """The conversation's record, and the canonical fields the record cannot carry.

    A Chat Completions message has no id, times, model, usage, finish reason, error
    flag or reasoning, and the record has no place for signals or scores; each is
    reported when the conversation sets it. Message metadata travels as extra message
    keys, so a key named like a message field (``role``, ``name``, ...) is left out and
    reported.
    """
    record = to_openai_record(conversation)
    losses = Losses()
    losses.fields(conversation, "signals", "scores")
    if conversation.tools:
        losses.tools(conversation.tools, record["tools"])
    for m in conversation.messages:
        _message_losses(m, losses)
    return Export(records=[record], lost=losses.sorted())


_NO_OPENAI_FIELD = ("id", "timestamp", "latency_ms", "model", "usage", "finish_reason", "is_error")


def _message_losses(m: Message, losses: Losses) -> None:
    losses.message_fields(m, *_NO_OPENAI_FIELD)
    if any(not _metadata_key_fits(m, k, v) for k, v in m.metadata.items()):
        losses.add(message_path("metadata"))
    if isinstance(m, AssistantMessage):
        for c in m.tool_calls:
            losses.arguments(c, c.arguments_json())
    if m.parts is None:
        return
    if m.content is not None:
        losses.add(LAYOUT)  # written as a leading text part; it reads back as one
    for p in m.parts:
        if not _part_survives(p):
            losses.add(part_path(p))


def _metadata_key_fits(m: Message, key: str, value: JsonValue) -> bool:
    # Metadata keys become message keys, and the reader takes the known ones as message
    # fields. An explicit empty tool_calls list is the exception: the reader keeps it
    # as metadata, so a file read in writes back the same.
    if key not in _KNOWN_KEYS:
        return True
    empty_calls = key == "tool_calls" and value == []
    return empty_calls and isinstance(m, AssistantMessage) and not m.tool_calls


def _part_survives(p: Part) -> bool:
    if isinstance(p, TextPart):
        return True
    if isinstance(p, MediaPart):
        # image_url holds nothing but the URL.
        url_only = p.uri is not None and p.mime_type is None and p.file_id is None
        return p.modality == "image" and url_only
    if isinstance(p, OtherPart):
        # Written verbatim; read back as an other part unless it looks like text or an image.
        return verbatim_block(p) and p.source_type not in ("text", "image_url")
    return False  # a Chat Completions message has no reasoning content


def _message_to_openai(m: Message, *, for_api: bool = False) -> dict[str, Any]:
    role = "developer" if isinstance(m, SystemMessage) and m.developer else m.role
    out: dict[str, Any] = {"role": role}
    if for_api:
        role = "system" if role == "developer" else role
        out = {"role": role, "content": m.text if m.parts is not None else m.content}
    elif m.parts is not None:
        # One content slot: text set beside the parts goes first, as a text part.
        lead = [TextPart(text=m.content)] if m.content is not None else []
        out["content"] = _content_to_openai([*lead, *m.parts])
    else:
        out["content"] = m.content
    if m.name is not None:
        out["name"] = m.name
    if isinstance(m, AssistantMessage) and m.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments_json()},
            }
            for c in m.tool_calls
        ]
    if isinstance(m, ToolMessage):
        out["tool_call_id"] = m.tool_call_id
    if not for_api:
        for key, value in m.metadata.items():
            if _metadata_key_fits(m, key, value):
                out.setdefault(key, value)
    return out


def _content_to_openai(parts: list[Part]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in parts:
        if isinstance(p, TextPart):
            out.append({"type": "text", "text": p.text})
        elif isinstance(p, MediaPart) and p.modality == "image" and p.uri is not None:
            out.append({"type": "image_url", "image_url": {"url": p.uri}})
        elif isinstance(p, OtherPart) and isinstance(p.data, dict):
            out.append(dict(p.data))
        elif isinstance(p, ReasoningPart):
            out.append({"type": "reasoning", "text": p.text})
        else:
            out.append({"type": p.type, **json.loads(p.model_dump_json(exclude_none=True))})
    return out
