"""The simulated user: anything with an async ``next_turn`` method."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..trace import Conversation, Usage


@dataclass(frozen=True, slots=True)
class UserTurn:
    """What the simulated user does next: say something, or stop (with a reason)."""

    text: str
    """The message; may be empty only when ``stop`` is true."""
    stop: bool = False
    """True ends the conversation; an explicit field, never a magic string in the text."""
    reason: str | None = None
    """Why the user stopped (goal met, gave up, transferred, script finished, ...)."""
    usage: Usage | None = None
    """Tokens and cost of the simulator model calls that produced this turn."""


@runtime_checkable
class UserModel(Protocol):
    """A simulated user. Given the conversation so far, produce the next user turn."""

    async def next_turn(self, conversation: Conversation, seed: int) -> UserTurn:
        """Return the next turn; ``seed`` is derived from the run seed, case and turn."""
        ...
