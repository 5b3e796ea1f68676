"""The agent under test: anything with an async ``respond`` method."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..trace import AssistantMessage, Conversation

END_CONVERSATION = "end_conversation"
"""``finish_reason`` an agent sets on its reply to end the conversation itself."""


@dataclass(frozen=True, slots=True)
class AgentContext:
    """What the runtime tells the agent besides the conversation."""

    tools: list[dict[str, Any]] = field(default_factory=list)
    """Tools available this conversation, in OpenAI ``tools=[...]`` form."""
    seed: int = 0
    """Seed for this (case, trial), for agents that sample."""
    case_id: str = ""
    """Case being run."""
    trial: int = 0
    """Trial number."""


@runtime_checkable
class Agent(Protocol):
    """An agent: given the conversation so far, produce the next assistant message.

    The reply may carry tool calls; the runtime executes them and calls ``respond``
    again with the results appended. Set ``finish_reason`` to
    :data:`END_CONVERSATION` to end the conversation. No base class is needed.
    """

    async def respond(self, conversation: Conversation, context: AgentContext) -> AssistantMessage:
        """Return the next assistant message."""
        ...


def as_assistant_message(value: Any) -> AssistantMessage:
    """Accept what user code naturally returns: a message, a string, or an OpenAI dict."""
    if isinstance(value, AssistantMessage):
        return value
    if isinstance(value, str):
        return AssistantMessage(content=value)
    if isinstance(value, dict):
        from .._llm import message_from_openai_reply

        return message_from_openai_reply(value, value.get("finish_reason"))
    raise TypeError(
        f"an agent must return an AssistantMessage, a string or an OpenAI message dict, "
        f"not {type(value).__name__}"
    )
