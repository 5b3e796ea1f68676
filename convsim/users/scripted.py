"""ScriptedUser: canned user turns, for deterministic runs, tests and replay."""

from __future__ import annotations

from collections.abc import Sequence

from ..trace import Conversation
from ._base import UserTurn


class ScriptedUser:
    """Say the scripted turns in order, then stop.

    The position comes from the number of user messages already in the conversation, so
    one instance can serve many conversations at once and a retried agent call never
    skips a line.
    """

    def __init__(self, turns: Sequence[str], *, stop_reason: str = "script finished") -> None:
        self.turns = list(turns)
        self.stop_reason = stop_reason

    async def next_turn(self, conversation: Conversation, seed: int) -> UserTurn:
        """The next scripted line, or a stop when the script is used up."""
        said = sum(1 for m in conversation.messages if m.role == "user")
        if said >= len(self.turns):
            return UserTurn(text="", stop=True, reason=self.stop_reason)
        return UserTurn(text=self.turns[said])
