"""ScriptedAgent: canned replies, for tests and deterministic demos."""

from __future__ import annotations

from collections.abc import Sequence

from ..trace import AssistantMessage, Conversation
from ._base import AgentContext, as_assistant_message


class ScriptedAgent:
    """Reply with the scripted messages in order, one per ``respond`` call.

    The position is derived from the number of assistant messages already in the
    conversation, so one instance can serve many conversations at once. When the script
    runs out the agent ends the conversation.
    """

    def __init__(
        self,
        replies: Sequence[str | AssistantMessage],
        *,
        system_prompt: str | None = None,
    ) -> None:
        self.replies = [as_assistant_message(r) for r in replies]
        self.system_prompt = system_prompt

    async def respond(self, conversation: Conversation, context: AgentContext) -> AssistantMessage:
        """The next scripted reply."""
        done = sum(1 for m in conversation.messages if m.role == "assistant")
        if done >= len(self.replies):
            return AssistantMessage(content="", finish_reason="end_conversation")
        return self.replies[done].model_copy(deep=True)
