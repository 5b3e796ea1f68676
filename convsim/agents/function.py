"""FunctionAgent: any Python callable, sync or async, as the agent under test."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import anyio

from ..trace import AssistantMessage, Conversation
from ._base import AgentContext, as_assistant_message


class FunctionAgent:
    """Wrap ``fn(conversation)`` or ``fn(conversation, context)``.

    The function may be sync or async and may return an :class:`AssistantMessage`, a
    string, or an OpenAI message dict. Sync functions run on the event loop, since most
    test agents are quick; pass ``threaded=True`` for one that blocks.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        system_prompt: str | None = None,
        threaded: bool = False,
        name: str | None = None,
    ) -> None:
        self.fn = fn
        self.system_prompt = system_prompt
        self.threaded = threaded
        self.name = name or getattr(fn, "__name__", "function")
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        self._wants_context = len(params) >= 2

    async def respond(self, conversation: Conversation, context: AgentContext) -> AssistantMessage:
        """Call the function and normalise what it returns."""
        args: tuple[Any, ...] = (conversation, context) if self._wants_context else (conversation,)
        if self.threaded:
            value = await anyio.to_thread.run_sync(lambda: self.fn(*args))
        else:
            value = self.fn(*args)
        if inspect.isawaitable(value):
            value = await value
        return as_assistant_message(value)
