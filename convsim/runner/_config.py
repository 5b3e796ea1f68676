"""Run configuration, its hash (for --resume), and the unit of work."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ..calls import redact_json

# Settings that change how fast a run goes but not what it produces; a resumed run may
# change them freely.
_NOT_HASHED = {"run_id", "concurrency", "progress"}


class RunConfig(BaseModel):
    """Everything that determines a run's results."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    run_id: str = Field(min_length=1)
    """Run name; results are stored under (run, case, trial)."""
    kind: Literal["simulate", "replay"] = "simulate"
    """What the run does."""
    agent: str
    """Agent spec as given on the command line."""
    user: str = "scripted"
    """``scripted`` or the litellm model that plays the user."""
    environment: str | None = None
    """Tool environment, e.g. ``tau-airline``."""
    source: str = ""
    """Personas path or traces file the cases come from."""
    source_hash: str = ""
    """Content hash of the cases, so edited personas are caught on resume."""
    trials: int = Field(default=1, ge=1)
    """Trials per case."""
    concurrency: int = Field(default=8, ge=1)
    """Conversations in flight at once (not hashed: safe to change on resume)."""
    seed: int = 0
    """Base seed; each (case, trial) derives its own."""
    max_turns: int = Field(default=10, ge=1)
    """User turns per conversation."""
    call_timeout: float | None = 120.0
    """Seconds per agent or user call."""
    conversation_timeout: float | None = 900.0
    """Seconds per conversation."""
    options: dict[str, JsonValue] = Field(default_factory=dict)
    """Mode-specific settings (replay mode, divergence policy, ...)."""
    progress: bool = True
    """Show a progress bar on a terminal (not hashed)."""

    def hashed_fields(self) -> dict[str, JsonValue]:
        """The settings that the config hash covers, secrets redacted.

        An agent spec may be a URL with credentials (``http://user:KEY@host/v1``), and a
        system prompt may quote a key: what is stored and hashed keeps neither, so a
        rotated key does not count as a changed configuration.
        """
        data: dict[str, JsonValue] = self.model_dump(mode="json", exclude=_NOT_HASHED)
        return {k: redact_json(v) for k, v in data.items()}

    def config_hash(self) -> str:
        """Hash of the settings that determine results."""
        blob = json.dumps(self.hashed_fields(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class WorkUnit:
    """One (case, trial): plain data, so any executor (local or remote) can run it."""

    case_id: str
    """Case to run."""
    trial: int
    """Trial number."""
    seed: int
    """Seed derived from the run seed, case and trial."""


def unit_seed(base: int, case_id: str, trial: int) -> int:
    """A stable 32-bit seed for one (case, trial), independent of scheduling order."""
    digest = hashlib.sha256(f"{base}:{case_id}:{trial}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def plan_units(case_ids: list[str], trials: int, base_seed: int) -> list[WorkUnit]:
    """Every (case, trial) in a stable order."""
    return [
        WorkUnit(case_id=c, trial=t, seed=unit_seed(base_seed, c, t))
        for c in case_ids
        for t in range(trials)
    ]
