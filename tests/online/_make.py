"""Small conversation builders for the online-sampling tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from convsim.trace import (
    AssistantMessage,
    Conversation,
    Message,
    ToolCall,
    ToolMessage,
    Usage,
    UserMessage,
    UserSignals,
)


def convo(
    cid: str,
    *,
    tags: dict[str, str] | None = None,
    metadata: dict[str, Any] | None = None,
    tools: tuple[str, ...] = (),
    latency: float | None = None,
    tokens: int | None = None,
    at: datetime | None = None,
    **signals: Any,
) -> Conversation:
    """A conversation with just the features the sampler looks at."""
    messages: list[Message] = [UserMessage(content="hi", timestamp=at)]
    for n, name in enumerate(tools):
        messages.append(AssistantMessage(tool_calls=[ToolCall(id=f"t{n}", name=name)]))
        messages.append(ToolMessage(tool_call_id=f"t{n}", content="ok"))
    usage = Usage(input_tokens=tokens, output_tokens=0) if tokens is not None else None
    messages.append(AssistantMessage(content="done", latency_ms=latency, usage=usage))
    return Conversation(
        id=cid,
        messages=messages,
        tags=tags or {},
        metadata=metadata or {},
        signals=UserSignals(**signals),
    )


EXAMPLE = Path(__file__).parents[2] / "examples" / "sampling.yaml"
"""The shipped example policy."""

WINDOW_END = datetime(2026, 3, 31, 23, 0, tzinfo=UTC)
"""Timestamp of every message in :func:`mixed_window`."""


def mixed_window(n: int) -> list[Conversation]:
    """A window in which every rule of the example policy takes a good share.

    The features cycle with coprime periods, so they combine in every way and no
    feature lines up with the hash of the id.
    """
    return [
        convo(
            f"conv-{i:05d}",
            tags={"language": "en" if i % 4 else "fr"},
            metadata={"flow_started": "2026-03-15" if i % 7 == 0 else "2025-01-01"},
            tools=("lookup",) if i % 3 == 0 else (),
            latency=float(100 + i % 1009),
            tokens=1000 + i % 211,
            at=WINDOW_END,
            escalated=i % 53 == 0,
            thumbs="down" if i % 59 == 1 else None,
        )
        for i in range(n)
    ]
