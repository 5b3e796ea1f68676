"""The canonical conversation model.

Every importer maps into :class:`Conversation` and every grader reads it. Messages are
the source of truth; turns are a derived view (:meth:`Conversation.turns`), so importers
never have to invent turn boundaries.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, model_validator

from ._score import Score

SCHEMA_VERSION: Literal[1] = 1
"""Version of the canonical trace schema written by this release."""

_MODEL_CONFIG = ConfigDict(extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False)


def _empty(value: object) -> bool:
    # Written files omit empty collections and false flags; readers restore the defaults,
    # so canonical JSONL stays small and diffs well.
    return not value


class Usage(BaseModel):
    """Token usage and cost of one model call."""

    model_config = _MODEL_CONFIG

    input_tokens: int | None = Field(default=None, ge=0)
    """Prompt tokens billed for the call."""
    output_tokens: int | None = Field(default=None, ge=0)
    """Completion tokens billed for the call."""
    cache_read_tokens: int | None = Field(default=None, ge=0)
    """Prompt tokens served from the provider's prompt cache, when reported."""
    reasoning_tokens: int | None = Field(default=None, ge=0)
    """Hidden reasoning tokens, when reported."""
    cost_usd: float | None = Field(default=None, ge=0)
    """Cost of the call in US dollars, as reported by the source or computed on import."""


def add_usage(total: Usage, usage: Usage | None, cost_usd: float | None = None) -> None:
    """Add one call's tokens and cost to a running total (in place).

    ``cost_usd`` overrides the call's own cost when the caller knows better (for example
    a price computed after the call).
    """
    if usage is not None:
        total.input_tokens = (total.input_tokens or 0) + (usage.input_tokens or 0)
        total.output_tokens = (total.output_tokens or 0) + (usage.output_tokens or 0)
    cost = cost_usd if cost_usd is not None else (usage.cost_usd if usage is not None else None)
    if cost is not None:
        total.cost_usd = (total.cost_usd or 0.0) + cost


class TextPart(BaseModel):
    """A plain-text content part."""

    model_config = _MODEL_CONFIG

    type: Literal["text"] = "text"
    text: str
    """The text."""


class MediaPart(BaseModel):
    """An image, audio clip or file attached to a message."""

    model_config = _MODEL_CONFIG

    type: Literal["media"] = "media"
    modality: Literal["image", "audio", "video", "file"]
    """What kind of media this is."""
    mime_type: str | None = None
    """MIME type, when known."""
    uri: str | None = None
    """Where the media lives (URL or data URI)."""
    file_id: str | None = None
    """Provider-side file id, when the media was uploaded."""


class ReasoningPart(BaseModel):
    """Model reasoning that the provider exposed (or redacted)."""

    model_config = _MODEL_CONFIG

    type: Literal["reasoning"] = "reasoning"
    text: str | None = None
    """Visible reasoning text or summary."""
    signature: str | None = None
    """Provider signature that lets the reasoning be sent back verbatim."""
    redacted: bool = Field(default=False, exclude_if=_empty)
    """True when the provider returned only an opaque, redacted blob."""


class OtherPart(BaseModel):
    """A content part the canonical model has no type for, kept verbatim."""

    model_config = _MODEL_CONFIG

    type: Literal["other"] = "other"
    source_type: str
    """The part's type name in its source format."""
    data: JsonValue = None
    """The part exactly as the source had it."""


Part = Annotated[TextPart | MediaPart | ReasoningPart | OtherPart, Field(discriminator="type")]
"""A structured content part, for messages that are more than plain text."""


def _finite_number(token: str) -> float:
    # json.loads accepts NaN, Infinity and overflowing numbers, which are not JSON and
    # would be written back as null; treat them as malformed so the raw string is kept.
    value = float(token)
    if not math.isfinite(value):
        raise ValueError(f"{token} is not a finite JSON number")
    return value


class ToolCall(BaseModel):
    """A tool (function) call requested by the assistant."""

    model_config = _MODEL_CONFIG

    id: str = Field(min_length=1)
    """Call id; the tool result that answers this call carries the same id."""
    name: str = Field(min_length=1)
    """Name of the tool."""
    arguments: dict[str, JsonValue] | None = None
    """Arguments parsed as a JSON object; None when the model sent something unparsable."""
    arguments_raw: str | None = None
    """The argument string exactly as sent, kept only when it is not a valid JSON object."""

    @classmethod
    def from_raw(cls, id: str, name: str, raw: str | dict[str, Any] | None) -> ToolCall:
        """Build a call from a provider's argument payload (a JSON string or an object).

        A string that does not decode to a JSON object is kept verbatim in
        ``arguments_raw`` so graders can report the malformed call instead of losing it.
        """
        if raw is None or isinstance(raw, dict):
            return cls(id=id, name=name, arguments=raw if raw is not None else {})
        try:
            parsed = json.loads(raw, parse_constant=_finite_number, parse_float=_finite_number)
        except ValueError:
            return cls(id=id, name=name, arguments=None, arguments_raw=raw)
        if not isinstance(parsed, dict):
            return cls(id=id, name=name, arguments=None, arguments_raw=raw)
        return cls(id=id, name=name, arguments=parsed)

    def arguments_json(self) -> str:
        """The arguments as a compact JSON string (the raw string when unparsable)."""
        if self.arguments is None:
            return self.arguments_raw or ""
        return json.dumps(self.arguments, ensure_ascii=False, separators=(",", ":"))


class ToolDefinition(BaseModel):
    """A tool the agent was offered, as the source recorded it.

    Replay offers the candidate exactly these definitions, so an LLM under test sees the
    descriptions and schemas production saw, not just the names.
    """

    model_config = _MODEL_CONFIG

    name: str = Field(min_length=1)
    """Name the model calls the tool by."""
    description: str | None = None
    """What the tool does, as the model was told."""
    parameters: dict[str, JsonValue] | None = None
    """JSON Schema of the arguments (OpenAI ``parameters``, Anthropic ``input_schema``)."""
    extra: dict[str, JsonValue] = Field(default_factory=dict, exclude_if=_empty)
    """Other fields of the definition, verbatim (``strict``, a provider's tool type)."""

    def openai(self) -> dict[str, JsonValue]:
        """The definition in OpenAI ``tools=[...]`` form."""
        function: dict[str, JsonValue] = {"name": self.name}
        if self.description is not None:
            function["description"] = self.description
        if self.parameters is not None:
            function["parameters"] = self.parameters
        function.update(self.extra)
        return {"type": "function", "function": function}


class _MessageBase(BaseModel):
    model_config = _MODEL_CONFIG

    content: str | None = None
    """The message text. None when the message carries only tool calls or parts."""
    parts: list[Part] | None = None
    """Structured content (images, reasoning, ...) when the source had more than text."""
    name: str | None = None
    """Optional participant name, as some APIs allow."""
    id: str | None = None
    """Message id in the source system, when it had one."""
    timestamp: datetime | None = None
    """When the message was created (UTC)."""
    latency_ms: float | None = Field(default=None, ge=0)
    """Time taken to produce this message, in milliseconds."""
    metadata: dict[str, JsonValue] = Field(default_factory=dict, exclude_if=_empty)
    """Free-form source fields with no canonical home."""

    @property
    def text(self) -> str:
        """The message's text: ``content`` plus any text parts, joined by newlines."""
        pieces = [self.content] if self.content else []
        if self.parts:
            pieces.extend(p.text for p in self.parts if isinstance(p, TextPart))
        return "\n".join(pieces)


class SystemMessage(_MessageBase):
    """Instructions to the agent (a system or developer prompt)."""

    role: Literal["system"] = "system"
    developer: bool = Field(default=False, exclude_if=_empty)
    """True when the source called this a developer message (OpenAI's newer name)."""


class UserMessage(_MessageBase):
    """A message from the user (or the simulated user)."""

    role: Literal["user"] = "user"


class AssistantMessage(_MessageBase):
    """A message from the agent, possibly requesting tool calls."""

    role: Literal["assistant"] = "assistant"
    tool_calls: list[ToolCall] = Field(default_factory=list, exclude_if=_empty)
    """Tool calls requested in this message, in order; several means parallel calls."""
    model: str | None = None
    """Model that produced this message."""
    usage: Usage | None = None
    """Tokens and cost of the model call that produced this message."""
    finish_reason: str | None = None
    """Why generation stopped (stop, length, tool_calls, content_filter, ...)."""


class ToolMessage(_MessageBase):
    """The result of one tool call, linked to it by ``tool_call_id``."""

    role: Literal["tool"] = "tool"
    tool_call_id: str = Field(min_length=1)
    """Id of the call this result answers."""
    is_error: bool = Field(default=False, exclude_if=_empty)
    """True when the tool failed; the content then holds the error text."""


Message = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")
]
"""Any message, discriminated on ``role``."""

MessageAdapter: TypeAdapter[Message] = TypeAdapter(Message)
"""Validates a single message from a dict or JSON."""


class UserSignals(BaseModel):
    """What the user's own behaviour says about the conversation."""

    model_config = _MODEL_CONFIG

    thumbs: Literal["up", "down"] | None = None
    """Explicit thumbs feedback."""
    csat: int | None = Field(default=None, ge=1, le=5)
    """Customer satisfaction on a 1-5 scale."""
    retries: int | None = Field(default=None, ge=0)
    """How many times the user regenerated an answer."""
    edits: int | None = Field(default=None, ge=0)
    """How many times the user edited an earlier message."""
    abandoned: bool | None = None
    """The user left without the conversation reaching an end."""
    escalated: bool | None = None
    """The conversation was handed to a human."""


def _no_signals(signals: UserSignals) -> bool:
    return signals == UserSignals()


class Provenance(BaseModel):
    """Where a conversation came from."""

    model_config = _MODEL_CONFIG

    source_format: str
    """Importer that produced it (openai, tau-bench, otel, ...) or ``simulated``."""
    source_ids: list[str] = Field(default_factory=list, exclude_if=_empty)
    """Ids of the source records (trace ids, run ids, ...)."""
    source_file: str | None = None
    """File the conversation was read from."""
    source_line: int | None = Field(default=None, ge=1)
    """Line (JSONL) or record number (JSON list) in that file, 1-based."""
    message_sources: dict[int, str] = Field(default_factory=dict, exclude_if=_empty)
    """The source record behind each assistant message, by message index: for OTLP
    traces ``TRACE_ID/SPAN_ID`` of the call that produced it. Grades exported back to the
    tracing backend land on these spans."""
    record: JsonValue = None
    """The verbatim source record, kept only when requested at import."""


class Conversation(BaseModel):
    """One whole conversation: every user, assistant, tool and system message.

    Validation rejects what would break graders later: a tool result that answers no
    earlier call, a call id reused while the first call is still open, duplicate message
    ids, and a result that answers an already-answered call.
    """

    model_config = _MODEL_CONFIG

    schema_version: Literal[1] = SCHEMA_VERSION
    """Version of this schema; readers upgrade older versions."""
    id: str = Field(min_length=1)
    """Stable conversation id, unique within a dataset."""
    messages: list[Message] = Field(default_factory=list)
    """Messages in order; the source of truth for everything else."""
    tags: dict[str, str] = Field(default_factory=dict, exclude_if=_empty)
    """Cohort keys used for drill-downs, e.g. ``vertical``, ``language``, ``persona``."""
    metadata: dict[str, JsonValue] = Field(default_factory=dict, exclude_if=_empty)
    """Free-form fields from the source (task ids, user ids, ...)."""
    tools: list[ToolDefinition] = Field(default_factory=list, exclude_if=_empty)
    """Tool definitions the agent was offered, in the order first offered."""
    signals: UserSignals = Field(default_factory=UserSignals, exclude_if=_no_signals)
    """Implicit and explicit user feedback."""
    scores: list[Score] = Field(default_factory=list, exclude_if=_empty)
    """Scores that arrived with the trace (rewards, annotations, user feedback)."""
    provenance: Provenance | None = None
    """Where the conversation came from."""

    @model_validator(mode="after")
    def _check_links(self) -> Conversation:
        problems = find_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def turns(self) -> list[Turn]:
        """Split the conversation into turns.

        A turn is one user message and everything up to the next user message. Messages
        before the first user message (system prompts, an agent greeting) are not part of
        any turn; see :meth:`preamble`.
        """
        starts = [i for i, m in enumerate(self.messages) if m.role == "user"]
        if not starts:
            return []
        ends = [*starts[1:], len(self.messages)]
        return [
            Turn(index=n, start=s, messages=self.messages[s:e])
            for n, (s, e) in enumerate(zip(starts, ends, strict=True))
        ]

    def preamble(self) -> list[Message]:
        """Messages before the first user message."""
        for i, m in enumerate(self.messages):
            if m.role == "user":
                return self.messages[:i]
        return list(self.messages)

    def tool_calls(self) -> list[ToolCall]:
        """Every tool call in order of appearance."""
        return [c for m in self.messages if isinstance(m, AssistantMessage) for c in m.tool_calls]

    def tool_results(self) -> dict[int, ToolMessage]:
        """Map each tool call, by its position in :meth:`tool_calls`, to its result."""
        open_calls: dict[str, int] = {}
        linked: dict[int, ToolMessage] = {}
        position = 0
        for m in self.messages:
            if isinstance(m, AssistantMessage):
                for c in m.tool_calls:
                    open_calls[c.id] = position
                    position += 1
            elif isinstance(m, ToolMessage):
                linked[open_calls.pop(m.tool_call_id)] = m
        return linked

    def usage(self) -> Usage:
        """Usage summed over every assistant message that reports it."""
        total = Usage(input_tokens=0, output_tokens=0, cost_usd=0.0)
        seen_cost = False
        for m in self.messages:
            if isinstance(m, AssistantMessage) and m.usage is not None:
                total.input_tokens = (total.input_tokens or 0) + (m.usage.input_tokens or 0)
                total.output_tokens = (total.output_tokens or 0) + (m.usage.output_tokens or 0)
                if m.usage.cost_usd is not None:
                    seen_cost = True
                    total.cost_usd = (total.cost_usd or 0.0) + m.usage.cost_usd
        if not seen_cost:
            total.cost_usd = None
        return total


@dataclass(frozen=True, slots=True)
class Turn:
    """A derived view: one user message and everything up to the next user message."""

    index: int
    """0-based turn number."""
    start: int
    """Index of the turn's user message in ``Conversation.messages``."""
    messages: list[Message]
    """The user message followed by the agent's replies and tool traffic."""

    @property
    def user(self) -> UserMessage:
        """The user message that opens the turn."""
        first = self.messages[0]
        assert isinstance(first, UserMessage)
        return first

    @property
    def assistant_messages(self) -> list[AssistantMessage]:
        """The agent's messages in this turn."""
        return [m for m in self.messages if isinstance(m, AssistantMessage)]


def find_problems(conversation: Conversation) -> list[str]:
    """List the structural problems that would break graders, each naming its message.

    Tool call ids may be reused once their earlier call has been answered: recorded
    traces do this (tau-bench's airline runs reuse ids), and linking by the most recent
    open call keeps them unambiguous.
    """
    problems: list[str] = []
    open_calls: dict[str, int] = {}
    seen_ids: dict[str, int] = {}
    for i, m in enumerate(conversation.messages):
        where = f"conversation {conversation.id!r}, message {i} ({m.role})"
        if m.id is not None:
            if m.id in seen_ids:
                problems.append(
                    f"{where}: duplicate message id {m.id!r} (first at {seen_ids[m.id]})"
                )
            else:
                seen_ids[m.id] = i
        if isinstance(m, AssistantMessage):
            for c in m.tool_calls:
                if c.id in open_calls:
                    problems.append(
                        f"{where}: tool call id {c.id!r} reused while the call in message "
                        f"{open_calls[c.id]} is still unanswered"
                    )
                open_calls[c.id] = i
        elif isinstance(m, ToolMessage):
            if m.tool_call_id not in open_calls:
                problems.append(
                    f"{where}: tool result for call id {m.tool_call_id!r} answers no earlier, "
                    "unanswered tool call"
                )
            else:
                del open_calls[m.tool_call_id]
    return problems
