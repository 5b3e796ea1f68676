"""OpenAI Responses API objects to canonical conversations.

Accepted records (one per JSONL line, or the elements of a JSON array): response objects
(``{"id": "resp_…", "input": [...], "output": [...], ...}``), or logged calls
``{"request": {...}, "response": {...}}`` whose request supplies ``input`` and
``instructions``.

Responses are grouped into conversations by ``conversation`` (``"conv_…"`` or
``{"id": …}``), else by the root of their ``previous_response_id`` chain; a response
with neither is a conversation by itself. A chain is followed from its root; where two
responses continue the same one (a regenerated or edited turn) the latest continues the
conversation and the others are kept in ``metadata["branches"]`` and reported. Input
items that an earlier response already holds (same item id, or the whole history
re-sent) are not repeated.

Items map as: ``message`` → a message of its role (``input_text``/``output_text`` →
text, ``input_image``/``input_file`` → media); ``function_call`` → a tool call on the
assistant message (consecutive calls are one message: parallel calls);
``function_call_output`` → a :class:`ToolMessage` joined on ``call_id``; ``reasoning`` →
:class:`ReasoningPart` (summary text; ``encrypted_content`` as the signature). The
output items of one response are one assistant message carrying the response's id,
model, usage, status (as ``finish_reason``) and time. Built-in tool items and anything
else are kept verbatim as ``other`` parts and reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

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
    ToolMessage,
    Usage,
    UserMessage,
    UserSignals,
)
from ._base import content_fields, content_id, expect_dict, expect_list
from ._grouped import (
    Group,
    Note,
    Origin,
    Piece,
    Problem,
    SourceError,
    check_links,
    content_key,
    count,
    json_safe,
    read_grouped,
    text_of,
)

FORMAT = "responses"

_RESPONSE_MAPPED = frozenset(
    {
        "id",
        "object",
        "created_at",
        "completed_at",
        "model",
        "status",
        "incomplete_details",
        "previous_response_id",
        "conversation",
        "instructions",
        "input",
        "output",
        "usage",
        "metadata",
        "output_text",
    }
)
_ASSISTANT_SIDE = (
    "reasoning",
    "function_call",
    "custom_tool_call",
)

_Item = tuple[Message | None, Origin, tuple[str, ...]]
"""A converted input item: the message (None for a reference), its origin, its item ids."""


def read_responses(
    path: Path,
    *,
    report: ReadReport,
    rejects: RejectSink | None = None,
    keep_source: bool = False,
) -> Iterator[Conversation]:
    """Yield the conversations in a file of Responses API objects."""
    yield from read_grouped(
        path, ResponsesFormat(), report=report, rejects=rejects, keep_source=keep_source
    )


def _conversation_id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


class ResponsesFormat:
    """Splitting and building rules for Responses API objects (see :mod:`._grouped`)."""

    name = FORMAT
    default_key = "response_chain"

    def split(self, record: Any, number: int, problems: list[Problem]) -> list[Piece]:
        """One piece per record: the response, with its request's input merged in."""
        obj = expect_dict(record, "record")
        if "response" in obj or "request" in obj:
            response = dict(expect_dict(obj.get("response", {}), "response"))
            request = expect_dict(obj.get("request", {}), "request")
            for key in ("input", "instructions", "previous_response_id", "conversation"):
                if key in request and key not in response:
                    response[key] = request[key]
            where = "response"
        else:
            response, where = obj, "record"
        if "output" not in response and "input" not in response:
            raise RecordError(
                f"{where}.output", "missing (and no input); this is not a Responses API object"
            )
        rid = response.get("id")
        if rid is not None and not isinstance(rid, str):
            raise RecordError(f"{where}.id", "expected a string response id")
        unit = rid or content_id("resp", response)
        prev = response.get("previous_response_id")
        if prev is not None and not isinstance(prev, str):
            raise RecordError(f"{where}.previous_response_id", "expected a string")
        conv = _conversation_id(response.get("conversation"))
        hint = (0, "conversation", conv) if conv else None
        return [Piece(number, where, unit, response, hint=hint, link=prev or None, extra=record)]

    def rewrap(self, pieces: list[Piece]) -> list[Any]:
        """The original records."""
        return [p.extra for p in pieces]

    def build(self, group: Group, notes: list[Note]) -> Conversation:
        """Follow the chain (or creation order) and merge the responses' items."""
        return _Builder(group, notes).build()


def _created(piece: Piece) -> tuple[float, int]:
    value = piece.data.get("created_at")
    number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
    return number, piece.number


class _Builder:
    def __init__(self, group: Group, notes: list[Note]) -> None:
        self.group = group
        self.notes = notes
        self.kept: dict[str, int] = {}
        self.metadata: dict[str, JsonValue] = {}
        self.edits = 0
        self.retries = 0

    def build(self) -> Conversation:
        pieces: dict[str, Piece] = {}
        for p in self.group.pieces:
            if p.unit in pieces:
                if pieces[p.unit].data != p.data:
                    self.notes.append(
                        (
                            p.number,
                            f"{p.where}.id",
                            f"response {p.unit!r} appears again with "
                            "different content; the first copy is used",
                        )
                    )
                continue
            pieces[p.unit] = p
        children: dict[str, list[Piece]] = {}
        roots: list[Piece] = []
        for p in pieces.values():
            prev = p.link
            if prev is not None and prev in pieces and prev != p.unit:
                children.setdefault(prev, []).append(p)
            else:
                roots.append(p)
        visited: set[str] = set()
        main: list[Piece] = []
        forks: list[tuple[Piece, Piece, Piece]] = []  # (parent, main child, other child)

        def walk(start: Piece) -> list[Piece]:
            path: list[Piece] = []
            node: Piece | None = start
            while node is not None and node.unit not in visited:
                visited.add(node.unit)
                path.append(node)
                kids = sorted(
                    (k for k in children.get(node.unit, []) if k.unit not in visited), key=_created
                )
                node = kids[-1] if kids else None
                if node is not None:
                    forks.extend((path[-1], node, other) for other in kids[:-1])
            return path

        for root in sorted(roots, key=_created):
            main.extend(walk(root))
        for _, _, other in forks:
            visited.update(b.unit for b in self._subtree(other, children))
        for p in sorted(pieces.values(), key=_created):
            if p.unit not in visited:
                self.notes.append(
                    (
                        p.number,
                        f"{p.where}.previous_response_id",
                        f"the previous_response_id "
                        f"chain of {p.unit!r} loops; the chain is read from here",
                    )
                )
                main.extend(walk(p))
        messages, origins = self._sequence(main)
        branches: list[JsonValue] = []
        for parent, chosen, other in forks:
            branch_pieces = self._subtree(other, children)
            sub_messages, _ = self._sequence(branch_pieces, quiet=True)
            kind = self._fork_kind(chosen, other)
            branches.append(
                {
                    "after_response": parent.unit,
                    "kind": kind,
                    "responses": [b.unit for b in branch_pieces],
                    "messages": [
                        m.model_dump(mode="json", exclude_none=True) for m in sub_messages
                    ],
                }
            )
            self.notes.append(
                (
                    other.number,
                    f"{other.where}.previous_response_id",
                    f"responses {other.unit!r} "
                    f"and {chosen.unit!r} both continue {parent.unit!r} ({kind}); the later one "
                    f"continues the conversation, the other is kept in metadata.branches",
                )
            )
        if branches:
            self.metadata["branches"] = branches
        check_links(messages, origins)
        if self.kept:
            what = ", ".join(f"{k} ({n}x)" for k, n in sorted(self.kept.items()))
            first = self.group.pieces[0]
            self.notes.append((first.number, None, f"kept verbatim, no canonical field: {what}"))
        signals = UserSignals(edits=self.edits or None, retries=self.retries or None)
        return Conversation(
            id=self.group.key,
            messages=messages,
            metadata=self.metadata,
            signals=signals,
            provenance=Provenance(
                source_format=FORMAT,
                source_ids=[f"response:{u}" for u in self.group.units],
            ),
        )

    def _subtree(self, start: Piece, children: dict[str, list[Piece]]) -> list[Piece]:
        out: list[Piece] = []
        stack = [start]
        seen: set[str] = set()
        while stack:
            node = stack.pop()
            if node.unit in seen:
                continue
            seen.add(node.unit)
            out.append(node)
            stack.extend(sorted(children.get(node.unit, []), key=_created, reverse=True))
        return out

    def _fork_kind(self, chosen: Piece, other: Piece) -> str:
        try:
            a = self._items(chosen.data.get("input"), chosen, "input", quiet=True)
            b = self._items(other.data.get("input"), other, "input", quiet=True)
        except RecordError:
            return "diverged"
        if content_key([m for m, _, _ in a if m]) == content_key([m for m, _, _ in b if m]):
            self.retries += 1
            return "regenerated"
        self.edits += 1
        return "edited"

    # -- one sequence of responses -> messages -------------------------------------------

    def _sequence(
        self, responses: list[Piece], *, quiet: bool = False
    ) -> tuple[list[Message], list[Origin]]:
        out: list[tuple[Message, Origin]] = []
        seen: set[str] = set()
        instructions: str | None = None
        for p in responses:
            r = p.data
            instr = r.get("instructions")
            new: list[_Item] = []
            if isinstance(instr, str) and instr and instr != instructions:
                out.append(
                    (SystemMessage(content=instr), Origin(p.number, f"{p.where}.instructions"))
                )
                instructions = instr
            elif isinstance(instr, list):
                new.extend(self._items(instr, p, "instructions", quiet))
            new.extend(self._drop_resent(out, self._items(r.get("input"), p, "input", quiet)))
            for msg, origin, ids in new:
                if ids and all(i in seen for i in ids):
                    continue  # an item an earlier response already holds
                if msg is None:
                    if not quiet:
                        self._kept_note(
                            p, origin.where, "item_reference to an item not in this file"
                        )
                    continue
                seen.update(ids)
                out.append((msg, origin))
            out.append(self._output(p, seen, quiet=quiet))
        return [m for m, _ in out], [o for _, o in out]

    def _drop_resent(self, history: list[tuple[Message, Origin]], new: list[_Item]) -> list[_Item]:
        # A client that sends the whole history again (without item ids) repeats it.
        size = len(history)
        if not history or len(new) < size or any(m is None for m, _, _ in new[:size]):
            return new
        head = [m for m, _, _ in new[:size] if m is not None]
        if content_key(head) == content_key([m for m, _ in history]):
            return new[size:]
        return new

    def _items(self, raw: Any, p: Piece, field: str, quiet: bool = False) -> list[_Item]:
        where = f"{p.where}.{field}"
        if raw is None:
            return []
        if isinstance(raw, str):
            return [(UserMessage(content=raw), Origin(p.number, where), ())]
        items = expect_list(raw, where)
        out: list[_Item] = []
        run: list[tuple[int, dict[str, Any]]] = []

        def flush() -> None:
            if run:
                k0 = run[0][0]
                ids = tuple(i["id"] for _, i in run if isinstance(i.get("id"), str))
                msg = self._assistant(list(run), where, p, quiet)
                out.append((msg, Origin(p.number, f"{where}.{k0}"), ids))
                run.clear()

        for k, item in enumerate(items):
            it_where = f"{where}.{k}"
            try:
                it = expect_dict(item, it_where)
            except RecordError as e:
                raise SourceError(p.number, e.field, e.message) from None
            item_id = it.get("id")
            ids = (item_id,) if isinstance(item_id, str) else ()
            kind = it.get("type", "message" if "role" in it else None)
            if kind == "item_reference":
                flush()
                out.append((None, Origin(p.number, it_where), ids))
                continue
            if kind in _ASSISTANT_SIDE or (kind == "message" and it.get("role") == "assistant"):
                run.append((k, it))
                continue
            if isinstance(kind, str) and kind.endswith("_call") and kind != "function_call":
                run.append((k, it))  # built-in tools run on the assistant side
                continue
            flush()
            origin = Origin(p.number, it_where)
            try:
                out.append((self._input_item(it, kind, it_where, p, quiet), origin, ids))
            except RecordError as e:
                if isinstance(e, SourceError):
                    raise
                raise SourceError(p.number, e.field, e.message) from None
        flush()
        return out

    def _input_item(
        self, it: dict[str, Any], kind: Any, where: str, p: Piece, quiet: bool
    ) -> Message:
        if kind in ("function_call_output", "custom_tool_call_output"):
            call_id = it.get("call_id")
            if not isinstance(call_id, str) or not call_id:
                raise RecordError(f"{where}.call_id", "a function_call_output needs its call_id")
            output = it.get("output")
            if isinstance(output, list):
                parts = [
                    self._part(x, f"{where}.output.{i}", p, quiet) for i, x in enumerate(output)
                ]
                return ToolMessage(tool_call_id=call_id, **content_fields(parts))
            return ToolMessage(tool_call_id=call_id, content=text_of(output))
        if kind == "message":
            role = it.get("role")
            if role not in ("user", "system", "developer"):
                raise RecordError(f"{where}.role", f"unknown role {role!r}")
            fields = self._content(it.get("content"), f"{where}.content", p, quiet)
            extra = self._extra(it, {"type", "role", "content", "id", "status"}, where, p, quiet)
            if role == "user":
                return UserMessage(metadata=extra, **fields)
            return SystemMessage(developer=role == "developer", metadata=extra, **fields)
        if not quiet:
            self._kept_note(p, where, f"input item type {kind!r} has no canonical form")
        return UserMessage(parts=[OtherPart(source_type=str(kind), data=json_safe(it))])

    def _content(self, raw: Any, where: str, p: Piece, quiet: bool) -> dict[str, Any]:
        if raw is None:
            return {}
        if isinstance(raw, str):
            return {"content": raw}
        parts = [
            self._part(x, f"{where}.{i}", p, quiet) for i, x in enumerate(expect_list(raw, where))
        ]
        return content_fields(parts)

    def _part(self, raw: Any, where: str, p: Piece, quiet: bool) -> Part:
        part = expect_dict(raw, where)
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
            rest = {k: v for k, v in part.items() if k not in ("type", "text")}
            if not any(rest.values()):  # empty annotations/logprobs carry nothing
                return TextPart(text=part["text"])
        if kind == "input_image" and set(part) <= {"type", "image_url", "file_id", "detail"}:
            url, fid = part.get("image_url"), part.get("file_id")
            if (url is None or isinstance(url, str)) and (fid is None or isinstance(fid, str)):
                if part.get("detail") in (None, "auto"):
                    return MediaPart(modality="image", uri=url, file_id=fid)
        if kind == "input_file" and set(part) <= {"type", "file_id", "file_url"}:
            url, fid = part.get("file_url"), part.get("file_id")
            if (url is None or isinstance(url, str)) and (fid is None or isinstance(fid, str)):
                return MediaPart(modality="file", uri=url, file_id=fid)
        if not quiet:
            self._kept_note(p, where, f"content part type {kind!r} (or its fields) kept verbatim")
        return OtherPart(source_type=str(kind), data=json_safe(part))

    def _extra(
        self, it: dict[str, Any], known: set[str], where: str, p: Piece, quiet: bool
    ) -> dict[str, JsonValue]:
        extra = {k: json_safe(v) for k, v in it.items() if k not in known}
        if extra and not quiet:
            self._kept_note(p, where, f"item fields {', '.join(sorted(extra))} kept in metadata")
        return extra

    def _assistant(
        self, items: list[tuple[int, dict[str, Any]]], base: str, p: Piece, quiet: bool
    ) -> AssistantMessage:
        parts: list[Part] = []
        calls: list[ToolCall] = []
        item_ids: list[JsonValue] = []
        for k, it in items:
            where = f"{base}.{k}"
            kind = it.get("type", "message")
            if isinstance(it.get("id"), str):
                item_ids.append(it["id"])
            if kind in ("function_call", "custom_tool_call"):
                call_id, name = it.get("call_id"), it.get("name")
                if not isinstance(call_id, str) or not call_id:
                    raise SourceError(
                        p.number, f"{where}.call_id", "a function_call needs a call_id"
                    )
                if not isinstance(name, str) or not name:
                    raise SourceError(p.number, f"{where}.name", "a function_call needs a name")
                args = it.get("arguments", it.get("input"))
                if args is not None and not isinstance(args, str | dict):
                    args = text_of(args)
                calls.append(ToolCall.from_raw(call_id, name, args))
            elif kind == "reasoning":
                summary = it.get("summary") or []
                texts = (
                    [
                        s.get("text")
                        for s in summary
                        if isinstance(s, dict) and isinstance(s.get("text"), str)
                    ]
                    if isinstance(summary, list)
                    else []
                )
                content = it.get("content")
                if isinstance(content, list):
                    texts.extend(
                        c.get("text")
                        for c in content
                        if isinstance(c, dict) and isinstance(c.get("text"), str)
                    )
                enc = it.get("encrypted_content")
                signature = enc if isinstance(enc, str) else None
                text = "\n".join(cast(list[str], texts)) if texts else None
                parts.append(
                    ReasoningPart(
                        text=text,
                        signature=signature,
                        redacted=text is None and signature is not None,
                    )
                )
            elif kind == "message":
                fields = self._content(it.get("content"), f"{where}.content", p, quiet)
                if "content" in fields:
                    parts.append(TextPart(text=fields["content"]))
                parts.extend(fields.get("parts", []))
            else:
                if not quiet:
                    self._kept_note(
                        p,
                        where,
                        f"output item type {kind!r} (a built-in "
                        "tool) kept verbatim as an 'other' part",
                    )
                parts.append(OtherPart(source_type=str(kind), data=json_safe(it)))
        msg = AssistantMessage(tool_calls=calls, **content_fields(parts))
        if item_ids:
            msg.metadata["item_ids"] = item_ids
        return msg

    def _output(self, p: Piece, seen: set[str], *, quiet: bool) -> tuple[Message, Origin]:
        r = p.data
        where = f"{p.where}.output"
        raw = r.get("output") or []
        try:
            items = [expect_dict(x, f"{where}.{k}") for k, x in enumerate(expect_list(raw, where))]
        except RecordError as e:
            raise SourceError(p.number, e.field, e.message) from None
        for it in items:
            if isinstance(it.get("id"), str):
                seen.add(it["id"])
        msg = self._assistant(list(enumerate(items)), where, p, quiet)
        model = r.get("model")
        msg.model = model if isinstance(model, str) else None
        msg.id = p.unit if isinstance(r.get("id"), str) else None
        status = r.get("status")
        details = r.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        msg.finish_reason = (
            reason if isinstance(reason, str) else status if isinstance(status, str) else None
        )
        created = r.get("created_at")
        completed = r.get("completed_at")
        if isinstance(completed, int | float) and not isinstance(completed, bool):
            msg.timestamp = _unix(completed)
            if isinstance(created, int | float) and completed >= created:
                msg.latency_ms = (completed - created) * 1000.0
        elif isinstance(created, int | float) and not isinstance(created, bool):
            msg.timestamp = _unix(created)
        usage = r.get("usage")
        if isinstance(usage, dict):
            fields: dict[str, Any] = {}
            for name, value in (
                ("input_tokens", usage.get("input_tokens")),
                ("output_tokens", usage.get("output_tokens")),
                ("cache_read_tokens", _nested(usage, "input_tokens_details", "cached_tokens")),
                ("reasoning_tokens", _nested(usage, "output_tokens_details", "reasoning_tokens")),
            ):
                if count(value) is not None:
                    fields[name] = count(value)
            msg.usage = Usage(**fields) if fields else None
        meta = r.get("metadata")
        if isinstance(meta, dict) and not quiet:
            for k, v in meta.items():
                self.metadata.setdefault(str(k), json_safe(v))
        extra = {
            k: json_safe(v) for k, v in r.items() if k not in _RESPONSE_MAPPED and v is not None
        }
        if extra:
            msg.metadata["openai.response"] = extra
            if not quiet:
                self.kept["openai.response"] = self.kept.get("openai.response", 0) + 1
        return msg, Origin(p.number, where)

    def _kept_note(self, p: Piece, where: str, message: str) -> None:
        self.notes.append((p.number, where, message))


def _nested(obj: dict[str, Any], outer: str, inner: str) -> Any:
    value = obj.get(outer)
    return value.get(inner) if isinstance(value, dict) else None


def _unix(seconds: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
