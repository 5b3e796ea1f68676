"""Stateful tool environments: tools that share state, with reset, snapshot and hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol, runtime_checkable

from ._tool import Tool


@runtime_checkable
class ToolEnvironment(Protocol):
    """Tools over shared state, so outcome checks can compare end states.

    Implementations need not inherit from anything. ``tools()`` returns tools bound to
    this instance's state; ``reset()`` restores the initial state; ``state_hash()`` is
    equal for two instances exactly when their states are equal.
    """

    def tools(self) -> list[Tool]:
        """The environment's tools, bound to its state."""
        ...

    def reset(self) -> None:
        """Restore the initial state."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """A JSON-serialisable copy of the current state."""
        ...

    def state_hash(self) -> str:
        """A hash of the current state."""
        ...


def hash_state(state: Any) -> str:
    """SHA-256 of a JSON state with keys sorted, so equal states hash equally."""
    encoded = json.dumps(state, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()
