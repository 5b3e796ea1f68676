"""tau-bench's airline domain as a :class:`~convsim.tools.ToolEnvironment`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from ...errors import ConfigError
from ...tools import Tool
from ._data import load_airline_db
from ._state import AirlineState, InitialData
from ._tools import build_tools


class AirlineEnvironment:
    """The tau-bench airline database with its 14 tools, which read and change it.

    Every environment starts from its own copy of the database (the bundled one unless
    ``db`` is given); tools bound to it see only its changes. Creating one is cheap: the
    bundled database is read once per process and shared, and a record is copied only when
    a tool first writes to it.

    Tool results are the exact text tau-bench's tools return, so recorded tau-bench
    conversations replay to the same outputs, and tau-bench's reward check (the state after
    the agent's calls equals the state after the task's ground-truth actions) can be done
    with :meth:`state_hash`.

    Args:
        db: The initial database, ``{"flights": ..., "reservations": ..., "users": ...}``
            in tau-bench's format; it is copied. Defaults to the bundled database.
    """

    def __init__(self, db: Mapping[str, Any] | None = None) -> None:
        """Create an environment in the initial state."""
        if db is None:
            initial = _bundled()
        else:
            try:
                initial = InitialData(json.loads(json.dumps(dict(db), allow_nan=False)))
            except (TypeError, ValueError) as e:
                raise ConfigError(f"airline database is not JSON: {e}") from None
        self._state = AirlineState(initial)
        self._tools = build_tools(self._state)

    def tools(self) -> list[Tool]:
        """The 14 airline tools, bound to this environment, in tau-bench's order."""
        return list(self._tools)

    def reset(self) -> None:
        """Restore the initial database."""
        self._state.reset()

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of the database: ``{"flights", "reservations", "users"}``."""
        return self._state.snapshot()

    def state_hash(self) -> str:
        """A SHA-256 hash of the database, equal exactly when the databases are equal.

        It is built from per-record hashes, so it is cheap to compute repeatedly; compare
        it only with other environments' ``state_hash``, not with ``hash_state`` of a
        snapshot.
        """
        return self._state.digest()

    def tau_bench_hash(self) -> str:
        """The hash tau-bench computes for this database (``Env.get_data_hash``).

        tau-bench run records store it as ``reward_info.info.gt_data_hash``: the hash of
        the state after the task's ground-truth actions. It depends on the exact data, so
        records made before tau-bench renamed the users' ``province`` field to ``state``
        (2025-01-16) only match a database with the old field name.
        """
        return self._state.tau_bench_hash()


@cache
def _bundled() -> InitialData:
    return InitialData(load_airline_db())
