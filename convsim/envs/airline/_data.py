"""The bundled tau-bench airline database and test tasks."""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

from ..._assets import asset_path


def airline_db_path() -> Path:
    """The bundled airline database: one gzip-compressed JSON object.

    Its keys are ``flights``, ``reservations`` and ``users``, each the corresponding
    tau-bench data file unchanged.
    """
    return asset_path("tau_bench", "airline_db.json.gz")


def airline_tasks_path() -> Path:
    """The bundled 50 airline test tasks (a JSON list)."""
    return asset_path("tau_bench", "airline_tasks_test.json")


def load_airline_db() -> dict[str, Any]:
    """A fresh copy of the airline database, free to modify."""
    db: dict[str, Any] = json.loads(_db_text())
    return db


def load_airline_tasks() -> list[dict[str, Any]]:
    """The airline test tasks, in ``task_index`` order.

    Each task has ``task_index``, ``annotator``, ``user_id``, ``instruction``,
    ``actions`` (ground-truth ``{name, kwargs}`` calls) and ``outputs`` (strings the agent
    must say).
    """
    tasks: list[dict[str, Any]] = json.loads(airline_tasks_path().read_text(encoding="utf-8"))
    return tasks


@cache
def _db_text() -> str:
    # Decompressed once per process: every environment starts from this text.
    with gzip.open(airline_db_path(), "rt", encoding="utf-8") as f:
        return f.read()
