"""LLMUser: a persona-driven user played by a model, through convsim's model layer.

The model sees the conversation role-flipped (the agent's words arrive as ``user``, its
own earlier lines as ``assistant``) and answers with structured output: the message, an
explicit ``stop`` flag and a reason, never a magic string inside the text.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from .._llm import ModelClient, ModelRequest, complete_structured, parse_structured
from ..trace import AssistantMessage, Conversation, Usage, UserMessage, add_usage
from ._base import UserTurn
from ._persona import Persona

TURN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reason": {
            "type": "string",
            "description": "Private note: why you say this, or why you stop. Never shown.",
        },
        "message": {"type": "string", "description": "What you say to the agent next."},
        "stop": {"type": "boolean", "description": "True to end the conversation now."},
    },
    "required": ["reason", "message", "stop"],
    "additionalProperties": False,
}
"""Structured output the user model must return (reason first, so it thinks before it talks)."""

_VALIDATOR = Draft202012Validator(TURN_SCHEMA)


def system_prompt(persona: Persona) -> str:
    """The user model's instructions for one persona."""
    lines = [
        "You are role-playing a customer talking to a support agent. Stay in character: you",
        "are the customer, never the agent. Write one short message at a time, as a real",
        "person would type it.",
        "",
        f"Your goal: {persona.goal}",
    ]
    if persona.scenario:
        lines.append(f"Background: {persona.scenario}")
    if persona.persona:
        lines.append(f"Who you are: {persona.persona}")
    lines.append(
        f"Temperament: {persona.temperament}. Style: {persona.style}. "
        f"Expertise: {persona.expertise}. Write in language: {persona.language}."
    )
    if persona.known_facts:
        lines.append("Facts you know. Reveal each one only when the agent asks for it:")
        lines.extend(f"- {k}: {v}" for k, v in persona.known_facts.items())
    if persona.unknown_facts:
        lines.append("Things you do NOT know. If asked, say you don't know; never invent them:")
        lines.extend(f"- {f}" for f in persona.unknown_facts)
    lines += [
        "",
        "Never invent facts (ids, numbers, names, dates) that are not given above or told to",
        "you by the agent. Do not repeat your goal word for word.",
        f"If {persona.patience} agent replies in a row bring no progress, give up and stop.",
    ]
    if persona.stop.on_goal_met:
        lines.append(
            "When your goal is fully done (the agent confirms it has carried it out, not just"
            " that it will), set stop to true."
        )
    if persona.stop.on_transfer:
        lines.append("If the agent transfers you to a human, set stop to true.")
    lines.append(
        'Answer only with JSON: {"reason": "...", "message": "...", "stop": false}. The reason'
        " is private and never shown to the agent."
    )
    return "\n".join(lines)


def flipped_messages(persona: Persona, conversation: Conversation) -> list[dict[str, Any]]:
    """The conversation as the user model sees it: roles swapped, tool traffic hidden."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt(persona)}]
    for m in conversation.messages:
        if isinstance(m, AssistantMessage) and m.text:
            messages.append({"role": "user", "content": m.text})
        elif isinstance(m, UserMessage):
            messages.append({"role": "assistant", "content": m.text})
    if len(messages) == 1:
        messages.append(
            {"role": "user", "content": "(The agent is waiting. Start the conversation.)"}
        )
    return messages


class LLMUser:
    """A persona played by a model. Invalid structured output is re-asked once."""

    def __init__(
        self,
        persona: Persona,
        *,
        model: str,
        client: ModelClient,
        temperature: float | None = 0.7,
        api_base: str | None = None,
        api_key_env: str | None = None,
        reasks: int = 1,
    ) -> None:
        self.persona = persona
        self.model = model
        self.client = client
        self.temperature = temperature
        self.api_base = api_base
        self.api_key_env = api_key_env
        self.reasks = reasks

    async def next_turn(self, conversation: Conversation, seed: int) -> UserTurn:
        """Ask the model for the next user turn."""
        if self.persona.stop.phrases:
            last = next(
                (
                    m.text
                    for m in reversed(conversation.messages)
                    if isinstance(m, AssistantMessage)
                ),
                "",
            ).lower()
            for phrase in self.persona.stop.phrases:
                if phrase.lower() in last:
                    return UserTurn(text="", stop=True, reason=f"agent said {phrase!r}")
        turn, results = await complete_structured(
            self.client,
            ModelRequest(
                model=self.model,
                messages=flipped_messages(self.persona, conversation),
                temperature=self.temperature,
                seed=seed,
                api_base=self.api_base,
                api_key_env=self.api_key_env,
                party="user",
            ),
            schema=TURN_SCHEMA,
            name="user_turn",
            reasks=self.reasks,
        )
        usage = Usage(input_tokens=0, output_tokens=0, cost_usd=0.0)
        for r in results:
            add_usage(usage, r.message.usage, r.cost_usd)
        return UserTurn(text=turn["message"], stop=turn["stop"], reason=turn["reason"], usage=usage)


def parse_turn(raw: str) -> tuple[dict[str, Any] | None, str]:
    """Parse and validate a user model's JSON; (turn, "") or (None, what is wrong)."""
    return parse_structured(raw, _VALIDATOR)
