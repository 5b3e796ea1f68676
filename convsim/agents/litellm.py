"""LiteLLMAgent: a bare model, with a system prompt and tools, as the agent under test."""

from __future__ import annotations

from .._llm import ModelClient, ModelRequest
from ..formats.openai import to_openai_messages
from ..trace import AssistantMessage, Conversation, SystemMessage
from ._base import AgentContext


class LiteLLMAgent:
    """Any litellm model as the agent; every call goes through convsim's model layer."""

    def __init__(
        self,
        model: str,
        *,
        client: ModelClient,
        system_prompt: str | None = None,
        temperature: float | None = None,
        api_base: str | None = None,
        api_key_env: str | None = None,
    ) -> None:
        self.model = model
        self.client = client
        self.system_prompt = system_prompt
        self.temperature = temperature
        self.api_base = api_base
        self.api_key_env = api_key_env

    async def respond(self, conversation: Conversation, context: AgentContext) -> AssistantMessage:
        """Ask the model for the next message."""
        messages = to_openai_messages(conversation, for_api=True)
        first = conversation.messages[0] if conversation.messages else None
        if self.system_prompt and not isinstance(first, SystemMessage):
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        result = await self.client.complete(
            ModelRequest(
                model=self.model,
                messages=messages,
                tools=context.tools or None,
                temperature=self.temperature,
                seed=context.seed,
                api_base=self.api_base,
                api_key_env=self.api_key_env,
                party="agent",
            )
        )
        return result.message
