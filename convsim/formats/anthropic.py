"""Anthropic Messages API payloads, to and from canonical conversations.

Accepted records (one per JSONL line, or the elements of a JSON array):

* a request: ``{"model", "system", "messages", ...}``, optionally with ``id``, ``tags``
  and ``metadata`` (what :func:`to_anthropic_record` writes);
* a logged call: ``{"request": {...}, "response": {...}}``, where the response message
  becomes the last assistant message, with its ``usage``, ``model``, ``stop_reason``
  (as ``finish_reason``) and ``id``;
* a bare response message (``{"type": "message", "role": "assistant", ...}``).

``system`` becomes leading system messages (one per text block). Content blocks map as
``text`` → text, ``thinking``/``redacted_thinking`` → :class:`ReasoningPart`,
``tool_use`` → :class:`ToolCall`, ``image``/``document`` → :class:`MediaPart`. Tool
results are user-role messages in this API: each ``tool_result`` block becomes its own
:class:`ToolMessage` (``is_error`` kept), in order, and the other blocks of that user
message become user messages around them. Anything else is kept verbatim (unknown blocks
as ``other`` parts, unknown fields in metadata) and reported as a note.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from ..datasets import ReadReport, RecordError, RecordIssue, RejectSink
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
    Usage,
    UserMessage,
)
from ._base import content_fields, content_id, expect_dict, expect_list, read_json_records
from ._export import LAYOUT, MESSAGES, Export, Losses, message_path, part_path, verbatim_block
from ._grouped import count, file_layout, json_safe
from ._tools import merge_tools, tool_definition

FORMAT = "anthropic"

_MESSAGE_KEYS = frozenset({"role", "content"})
_RECORD_KEYS = frozenset({"id", "system", "messages", "metadata", "tags"})
_BLOCK_KEYS = {
    "text": {"type", "text"},
    "thinking": {"type", "thinking", "signature"},
    "redacted_thinking": {"type", "data"},
    "tool_use": {"type", "id", "name", "input"},
    "tool_result": {"type", "tool_use_id", "content", "is_error"},
    "image": {"type", "source"},
    "document": {"type", "source"},
}
_USAGE_MAPPED = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_input_tokens": "cache_read_tokens",
}

Notes = list[tuple[str | None, str]]


def read_anthropic(
    path: Path,
    *,
    report: ReadReport,
    rejects: RejectSink | None = None,
    keep_source: bool = False,
) -> Iterator[Conversation]:
    """Yield one conversation per Anthropic request, logged call or response record."""
    in_array = file_layout(path) == "array"

    def convert(record: Any, number: int) -> tuple[Conversation, Notes, int]:
        notes: Notes = []
        conv = conversation_from_anthropic(
            record, source_file=str(path), source_line=number, notes=notes
        )
        if keep_source and conv.provenance is not None:
            conv.provenance.record = json_safe(record)
        return conv, notes, number

    for conv, notes, number in read_json_records(path, convert, report=report, rejects=rejects):
        report.keep_noted(
            [RecordIssue(str(path), number, f, m, in_array=in_array) for f, m in notes]
        )
        yield conv


def conversation_from_anthropic(
    record: Any,
    *,
    source_file: str | None = None,
    source_line: int | None = None,
    notes: Notes | None = None,
) -> Conversation:
    """Convert one Anthropic record (see the module docstring) to canonical.

    Raises:
        RecordError: naming the field that cannot be mapped.
        pydantic.ValidationError: when the result breaks the canonical rules (for
            example a tool result whose call id matches no call).
    """
    notes = notes if notes is not None else []
    obj = expect_dict(record, "record")
    response: dict[str, Any] | None = None
    prefix = ""
    if "request" in obj or "response" in obj:
        request = expect_dict(obj.get("request", {}), "request")
        if obj.get("response") is not None:
            response = expect_dict(obj["response"], "response")
        prefix = "request."
        others = {k: json_safe(v) for k, v in obj.items() if k not in ("request", "response")}
        if others:
            notes.append((None, f"fields {', '.join(sorted(others))} kept in metadata"))
    elif obj.get("type") == "message" and obj.get("role") == "assistant":
        request, response, others = {}, obj, {}
    else:
        request, others = obj, {}
    messages: list[Message] = []
    if "system" in request:
        messages.extend(_system(request["system"], f"{prefix}system", notes))
    if "messages" in request or response is None:
        raw_messages = expect_list(request.get("messages"), f"{prefix}messages")
        for i, m in enumerate(raw_messages):
            messages.extend(message_from_anthropic(m, f"{prefix}messages.{i}", notes))
    if response is not None:
        messages.append(_response(response, "response" if prefix else "record", notes))
    metadata: dict[str, JsonValue] = {}
    if "metadata" in request:
        metadata.update(expect_dict(json_safe(request["metadata"]), f"{prefix}metadata"))
    tools = _tools(request.get("tools"))
    params = {
        k: json_safe(v)
        for k, v in request.items()
        if k not in _RECORD_KEYS and not (k == "tools" and tools is not None)
    }
    if params:
        metadata["anthropic.request"] = params
        notes.append(
            (
                f"{prefix}{next(iter(params))}" if len(params) == 1 else None,
                f"request parameters {', '.join(sorted(params))} kept verbatim in "
                "metadata['anthropic.request']",
            )
        )
    if others:
        metadata["anthropic.record"] = others
    tags: dict[str, str] = {}
    if "tags" in request:
        tags = {str(k): str(v) for k, v in expect_dict(request["tags"], "tags").items()}
    raw_id = request.get("id", obj.get("id") if prefix else None)
    if raw_id is not None and not isinstance(raw_id, str | int):
        raise RecordError(f"{prefix}id", "expected a string id")
    return Conversation(
        id=str(raw_id) if raw_id is not None and raw_id != "" else content_id(FORMAT, record),
        messages=messages,
        metadata=metadata,
        tags=tags,
        tools=tools or [],
        provenance=Provenance(
            source_format=FORMAT, source_file=source_file, source_line=source_line
        ),
    )


def _tools(raw: Any) -> list[ToolDefinition] | None:
    """The request's tool definitions; None when one cannot be read (kept verbatim)."""
    if not isinstance(raw, list):
        return None
    out: list[ToolDefinition] = []
    for item in raw:
        tool, _ = tool_definition(item)
        if tool is None:
            return None
        merge_tools(out, [tool])
    return out


def _system(raw: Any, where: str, notes: Notes) -> list[Message]:
    if isinstance(raw, str):
        return [SystemMessage(content=raw)]
    out: list[Message] = []
    for i, block in enumerate(expect_list(raw, where)):
        b = expect_dict(block, f"{where}.{i}")
        if b.get("type") == "text" and isinstance(b.get("text"), str):
            extra = {k: json_safe(v) for k, v in b.items() if k not in ("type", "text")}
            if extra:
                notes.append(
                    (f"{where}.{i}", f"block fields {', '.join(sorted(extra))} kept in metadata")
                )
            out.append(SystemMessage(content=b["text"], metadata=extra))
        else:
            notes.append((f"{where}.{i}", f"system block type {b.get('type')!r} kept verbatim"))
            out.append(
                SystemMessage(parts=[OtherPart(source_type=str(b.get("type")), data=json_safe(b))])
            )
    return out


def _response(raw: dict[str, Any], where: str, notes: Notes) -> AssistantMessage:
    role = raw.get("role", "assistant")
    if role != "assistant":
        raise RecordError(f"{where}.role", f"a response must be an assistant message, got {role!r}")
    (msg,) = message_from_anthropic(
        {"role": "assistant", "content": raw.get("content", [])}, where, notes
    )
    assert isinstance(msg, AssistantMessage)
    model, stop, rid = raw.get("model"), raw.get("stop_reason"), raw.get("id")
    msg.model = model if isinstance(model, str) else None
    msg.finish_reason = stop if isinstance(stop, str) else None
    msg.id = rid if isinstance(rid, str) and rid else None
    usage = raw.get("usage")
    if isinstance(usage, dict):
        fields: dict[str, Any] = {}
        extra: dict[str, JsonValue] = {}
        for k, v in usage.items():
            if k in _USAGE_MAPPED and count(v) is not None:
                fields[_USAGE_MAPPED[k]] = count(v)
            elif v is not None:
                extra[k] = json_safe(v)
        msg.usage = Usage(**fields) if fields else None
        if extra:
            msg.metadata["anthropic.usage"] = extra
            notes.append(
                (f"{where}.usage", f"usage fields {', '.join(sorted(extra))} kept in metadata")
            )
    known = {"id", "type", "role", "content", "model", "stop_reason", "usage", "stop_sequence"}
    extra_fields = {k: json_safe(v) for k, v in raw.items() if k not in known}
    if raw.get("stop_sequence") is not None:
        extra_fields["stop_sequence"] = json_safe(raw["stop_sequence"])
    if extra_fields:
        msg.metadata.update(extra_fields)
        notes.append((where, f"response fields {', '.join(sorted(extra_fields))} kept in metadata"))
    return msg


def _media(block: dict[str, Any], where: str) -> MediaPart | None:
    source = block.get("source")
    if not isinstance(source, dict):
        return None
    modality = "image" if block.get("type") == "image" else "file"
    kind = source.get("type")
    if kind == "base64" and set(source) <= {"type", "media_type", "data"}:
        mime, data = source.get("media_type"), source.get("data")
        if isinstance(mime, str) and isinstance(data, str):
            return MediaPart(modality=modality, mime_type=mime, uri=f"data:{mime};base64,{data}")
    if kind == "url" and set(source) == {"type", "url"} and isinstance(source.get("url"), str):
        return MediaPart(modality=modality, uri=source["url"])
    if (
        kind == "file"
        and set(source) == {"type", "file_id"}
        and isinstance(source.get("file_id"), str)
    ):
        return MediaPart(modality=modality, file_id=source["file_id"])
    return None


def _block(b: dict[str, Any], where: str, notes: Notes) -> Part:
    kind = b.get("type")
    allowed = _BLOCK_KEYS.get(kind) if isinstance(kind, str) else None
    if allowed is not None and set(b) <= allowed:
        if kind == "text" and isinstance(b.get("text"), str):
            return TextPart(text=b["text"])
        if kind == "thinking" and isinstance(b.get("thinking"), str):
            sig = b.get("signature")
            if sig is None or isinstance(sig, str):
                return ReasoningPart(text=b["thinking"], signature=sig)
        if kind == "redacted_thinking" and isinstance(b.get("data"), str):
            return ReasoningPart(redacted=True, signature=b["data"])
        if kind in ("image", "document"):
            media = _media(b, where)
            if media is not None:
                return media
    notes.append(
        (where, f"content block type {kind!r} (or its fields) has no canonical form; kept verbatim")
    )
    return OtherPart(source_type=str(kind), data=json_safe(b))


def _tool_result(b: dict[str, Any], where: str, notes: Notes) -> ToolMessage:
    call_id = b.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise RecordError(f"{where}.tool_use_id", "a tool_result needs the id of its tool_use")
    is_error = b.get("is_error", False)
    if not isinstance(is_error, bool):
        raise RecordError(f"{where}.is_error", "expected true or false")
    content = b.get("content")
    fields: dict[str, Any] = {}
    if isinstance(content, str):
        fields["content"] = content
    elif content is not None:
        blocks = expect_list(content, f"{where}.content")
        parts = [
            _block(expect_dict(x, f"{where}.content.{k}"), f"{where}.content.{k}", notes)
            for k, x in enumerate(blocks)
        ]
        fields = content_fields(parts)
    return ToolMessage(tool_call_id=call_id, is_error=is_error, **fields)


def message_from_anthropic(raw: Any, where: str, notes: Notes | None = None) -> list[Message]:
    """Convert one Anthropic message to canonical messages (several when it holds results).

    Raises:
        RecordError: naming the field that cannot be mapped.
    """
    notes = notes if notes is not None else []
    m = expect_dict(raw, where)
    role = m.get("role")
    if role not in ("user", "assistant"):
        raise RecordError(f"{where}.role", f"unknown role {role!r}; expected user or assistant")
    extra = {k: json_safe(v) for k, v in m.items() if k not in _MESSAGE_KEYS}
    if extra:
        notes.append((where, f"message fields {', '.join(sorted(extra))} kept in metadata"))
    content = m.get("content")
    if isinstance(content, str):
        cls = UserMessage if role == "user" else AssistantMessage
        return [cls(content=content, metadata=extra)]
    blocks = expect_list(content, f"{where}.content")
    if role == "assistant":
        return [_assistant(blocks, where, extra, notes)]
    out: list[Message] = []
    run: list[Part] = []
    for k, block in enumerate(blocks):
        b = expect_dict(block, f"{where}.content.{k}")
        if b.get("type") == "tool_result":
            if run:
                out.append(UserMessage(metadata=dict(extra), **content_fields(run)))
                run = []
            out.append(_tool_result(b, f"{where}.content.{k}", notes))
        else:
            run.append(_block(b, f"{where}.content.{k}", notes))
    if run or not out:
        out.append(UserMessage(metadata=dict(extra), **content_fields(run)))
    return out


def _assistant(
    blocks: list[Any], where: str, extra: dict[str, JsonValue], notes: Notes
) -> AssistantMessage:
    parts: list[Part] = []
    calls: list[ToolCall] = []
    interleaved = False
    for k, block in enumerate(blocks):
        b = expect_dict(block, f"{where}.content.{k}")
        if b.get("type") == "tool_result":
            # Kept as a note it would leave its tool_use unanswered; it is a malformed
            # record, not a lossy one.
            raise RecordError(
                f"{where}.content.{k}",
                "a tool_result block in an assistant message; tool results come from the "
                "user role in the Messages API",
            )
        if b.get("type") == "tool_use" and set(b) <= _BLOCK_KEYS["tool_use"]:
            call_id, name, args = b.get("id"), b.get("name"), b.get("input")
            if not isinstance(call_id, str) or not call_id:
                raise RecordError(f"{where}.content.{k}.id", "a tool_use needs a non-empty id")
            if not isinstance(name, str) or not name:
                raise RecordError(f"{where}.content.{k}.name", "a tool_use needs a name")
            if args is not None and not isinstance(args, dict | str):
                args = json.dumps(json_safe(args))
                notes.append((f"{where}.content.{k}.input", "input is not an object; kept raw"))
            calls.append(ToolCall.from_raw(call_id, name, args))
        else:
            if calls:
                interleaved = True
            parts.append(_block(b, f"{where}.content.{k}", notes))
    if interleaved:
        extra["anthropic.content"] = json_safe(blocks)
        notes.append(
            (
                f"{where}.content",
                "content blocks follow a tool_use; the block order is kept only in "
                "metadata['anthropic.content']",
            )
        )
    return AssistantMessage(tool_calls=calls, metadata=extra, **content_fields(parts))


# --------------------------------------------------------------------------------------
# Writing


def _part_to_block(p: Part) -> dict[str, Any]:
    if isinstance(p, TextPart):
        return {"type": "text", "text": p.text}
    if isinstance(p, ReasoningPart):
        if p.redacted:
            return {"type": "redacted_thinking", "data": p.signature or ""}
        block: dict[str, Any] = {"type": "thinking", "thinking": p.text or ""}
        if p.signature is not None:
            block["signature"] = p.signature
        return block
    if isinstance(p, MediaPart):
        kind = "image" if p.modality == "image" else "document"
        if p.file_id is not None:
            return {"type": kind, "source": {"type": "file", "file_id": p.file_id}}
        uri = p.uri or ""
        if uri.startswith("data:") and ";base64," in uri:
            mime, data = uri[5:].split(";base64,", 1)
            return {"type": kind, "source": {"type": "base64", "media_type": mime, "data": data}}
        return {"type": kind, "source": {"type": "url", "url": uri}}
    if isinstance(p.data, dict) and p.data.get("type") == p.source_type:
        return dict(p.data)
    return {"type": p.source_type, "data": p.data}


def _blocks(m: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if m.content is not None:
        blocks.append({"type": "text", "text": m.content})
    blocks.extend(_part_to_block(p) for p in m.parts or [])
    return blocks


_REQUEST_PARAMS = "anthropic.request"
_NO_MESSAGE_FIELD = ("id", "timestamp", "latency_ms", "name")
_NO_RESPONSE_FIELD = ("model", "usage", "finish_reason")


def to_anthropic_request(
    conversation: Conversation, *, lost: list[str] | None = None
) -> dict[str, Any]:
    """The conversation as an Anthropic Messages API request body.

    Leading system messages become ``system``; consecutive tool results are merged into
    one user message of ``tool_result`` blocks; tool definitions become ``tools``.
    Request parameters kept at import (``metadata["anthropic.request"]``) are restored.
    When ``lost`` is given, the canonical field paths the record cannot carry are
    appended to it (see :func:`export_anthropic`).
    """
    body: dict[str, Any] = dict(_request_params(conversation))
    if conversation.tools:
        body["tools"] = [_tool_to_anthropic(t) for t in conversation.tools]
    system, rest = _leading_system(conversation.messages)
    if system:
        body["system"] = _system_to_anthropic(system)
    body["messages"] = _messages_to_anthropic(rest)
    if lost is not None:
        lost.extend(_losses(conversation).sorted())
    return body


def to_anthropic_record(
    conversation: Conversation, *, lost: list[str] | None = None
) -> dict[str, Any]:
    """The request body plus ``id``, ``tags`` and ``metadata``, as :func:`read_anthropic` reads.

    ``metadata`` here is the conversation's metadata, not the API's ``metadata`` field.
    ``lost`` is filled as in :func:`to_anthropic_request`.
    """
    record: dict[str, Any] = {"id": conversation.id}
    record.update(to_anthropic_request(conversation, lost=lost))
    metadata = {k: v for k, v in conversation.metadata.items() if k != _REQUEST_PARAMS}
    if metadata:
        record["metadata"] = metadata
    if conversation.tags:
        record["tags"] = conversation.tags
    return record


def export_anthropic(conversation: Conversation) -> Export:
    """The conversation's record, and the canonical fields the record cannot carry.

    A request's messages have only a role and content blocks: message ids, times,
    names and metadata are reported, and so are an assistant's model, usage and finish
    reason (a request holds no response), a system message after the start (sent as
    user text), signals and scores. Leading system messages keep their metadata as
    fields of their text block.
    """
    return Export(records=[to_anthropic_record(conversation)], lost=_losses(conversation).sorted())


def _request_params(conversation: Conversation) -> dict[str, Any]:
    # Keys the record writes itself would overwrite them, or be overwritten.
    params = conversation.metadata.get(_REQUEST_PARAMS)
    if not isinstance(params, dict):
        return {}
    taken = _RECORD_KEYS | ({"tools"} if conversation.tools else set())
    return {k: v for k, v in params.items() if k not in taken}


def _tool_to_anthropic(tool: ToolDefinition) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    if tool.parameters is not None:
        out["input_schema"] = tool.parameters
    for key, value in tool.extra.items():
        out.setdefault(key, value)  # extra fields never replace the definition's own
    return out


def _leading_system(messages: list[Message]) -> tuple[list[SystemMessage], list[Message]]:
    system: list[SystemMessage] = []
    for m in messages:
        if not isinstance(m, SystemMessage):
            break
        system.append(m)
    return system, messages[len(system) :]


def _system_to_anthropic(system: list[SystemMessage]) -> str | list[dict[str, Any]]:
    first = system[0]
    if len(system) == 1 and not first.metadata and first.parts is None:
        if first.content is not None:
            return first.content  # the short form, as most requests write it
    blocks: list[dict[str, Any]] = []
    for s in system:
        if s.content is not None:
            extra = {k: v for k, v in s.metadata.items() if k not in ("type", "text")}
            blocks.append({"type": "text", "text": s.content, **extra})
        blocks.extend(_part_to_block(p) for p in s.parts or [])
    return blocks


def _messages_to_anthropic(messages: list[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        if isinstance(m, ToolMessage):
            _add_tool_result(out, _tool_result_block(m))
        elif isinstance(m, AssistantMessage):
            out.append({"role": "assistant", "content": _assistant_content(m)})
        else:
            # The API has no system turn after the start: a later one is sent as user text.
            simple = m.parts is None and m.content is not None
            out.append({"role": "user", "content": m.content if simple else _blocks(m)})
    return out


def _tool_result_block(m: ToolMessage) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.tool_call_id}
    if m.parts is not None:
        block["content"] = _blocks(m)
    elif m.content is not None:
        block["content"] = m.content
    if m.is_error:
        block["is_error"] = True
    return block


def _add_tool_result(out: list[dict[str, Any]], block: dict[str, Any]) -> None:
    # Results of one round of calls share a user message, as the API expects.
    prev = out[-1] if out else None
    if (
        prev is not None
        and prev["role"] == "user"
        and isinstance(prev["content"], list)
        and prev["content"]
        and all(b.get("type") == "tool_result" for b in prev["content"])
    ):
        prev["content"].append(block)
    else:
        out.append({"role": "user", "content": [block]})


def _assistant_content(m: AssistantMessage) -> str | list[dict[str, Any]]:
    if m.parts is None and not m.tool_calls and m.content is not None:
        return m.content
    blocks = _blocks(m)
    blocks.extend(
        {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments or {}}
        for c in m.tool_calls
    )
    return blocks


# -- what the record cannot carry -------------------------------------------------------


def _losses(conversation: Conversation) -> Losses:
    losses = Losses()
    losses.fields(conversation, "signals", "scores")
    if _REQUEST_PARAMS in conversation.metadata:
        params = _request_params(conversation)
        if not params or params != conversation.metadata[_REQUEST_PARAMS]:
            losses.add("metadata")
    if conversation.tools:
        losses.tools(conversation.tools, [_tool_to_anthropic(t) for t in conversation.tools])
    system, rest = _leading_system(conversation.messages)
    for s in system:
        losses.message_fields(s, *_NO_MESSAGE_FIELD, "developer")
        _system_losses(s, losses)
    for m in rest:
        _message_losses(m, losses)
    return losses


def _system_losses(s: SystemMessage, losses: Losses) -> None:
    if s.parts is None:
        if s.content is None:
            losses.add(MESSAGES)  # no text, no block: the message is dropped
        elif {"type", "text"} & set(s.metadata):
            losses.add(message_path("metadata"))
        return
    if s.content is not None or len(s.parts) != 1:
        losses.add(MESSAGES)  # every block reads back as a system message of its own
        return
    if s.metadata:
        losses.add(message_path("metadata"))  # only text written from content carries it
    (p,) = s.parts
    if isinstance(p, TextPart):
        losses.add(LAYOUT)
    elif not (isinstance(p, OtherPart) and verbatim_block(p) and p.source_type != "text"):
        losses.add(part_path(p))  # the reader keeps a non-text system block as an other part


def _message_losses(m: Message, losses: Losses) -> None:
    losses.message_fields(m, *_NO_MESSAGE_FIELD, *_NO_RESPONSE_FIELD)
    if m.metadata:
        losses.add(message_path("metadata"))
    if isinstance(m, SystemMessage):
        losses.add(message_path("role"))
        losses.message_fields(m, "developer")
    if isinstance(m, AssistantMessage):
        for c in m.tool_calls:
            losses.arguments(c, c.arguments or {})
    if m.parts is None:
        return  # content alone is a string or a text block, and reads back as content
    lone_text = len(m.parts) == 1 and isinstance(m.parts[0], TextPart)
    if m.content is not None or not m.parts or lone_text:
        losses.add(LAYOUT)  # the reader makes one text block content, and no blocks nothing
    for p in m.parts:
        _part_losses(p, losses)


def _part_losses(p: Part, losses: Losses) -> None:
    if isinstance(p, ReasoningPart):
        if p.redacted and p.text is not None:
            losses.add(part_path(p, "text"))  # redacted_thinking holds only the opaque data
        if p.redacted and p.signature is None:
            losses.add(part_path(p, "signature"))  # the data is required; written empty
        if not p.redacted and p.text is None:
            losses.add(part_path(p, "text"))  # thinking text is required; written empty
    elif isinstance(p, MediaPart):
        if not _media_survives(p):
            losses.add(part_path(p))
    elif isinstance(p, OtherPart):
        if p.source_type in ("tool_use", "tool_result"):
            losses.add(MESSAGES)  # read back as a tool call or a tool result
        elif not (verbatim_block(p) and p.source_type not in _BLOCK_KEYS):
            losses.add(part_path(p))


def _media_survives(p: MediaPart) -> bool:
    # image and document blocks hold one source: a file id, base64 data or a URL.
    if p.modality not in ("image", "file"):
        return False
    if p.file_id is not None:
        return p.uri is None and p.mime_type is None
    if p.uri is None:
        return False
    if p.uri.startswith("data:") and ";base64," in p.uri:
        return p.mime_type == p.uri[5:].split(";base64,", 1)[0]
    return p.mime_type is None
