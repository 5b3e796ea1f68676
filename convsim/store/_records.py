"""Records the store keeps about runs and their conversations."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ..trace import Conversation, Usage

_CONFIG = ConfigDict(extra="forbid", use_attribute_docstrings=True)

RunKind = Literal["simulate", "replay", "grade", "online", "import"]
"""What produced a run."""


class RunRecord(BaseModel):
    """One run: a simulation, a replay, a grading pass or an online window."""

    model_config = _CONFIG

    schema_version: Literal[1] = 1
    """Version of this schema."""
    run_id: str = Field(min_length=1)
    """Unique run name."""
    kind: RunKind
    """What produced the run."""
    config_hash: str
    """Hash of the run's configuration; ``--resume`` refuses a run whose hash changed."""
    config: dict[str, JsonValue] = Field(default_factory=dict)
    """The configuration itself, so a resume mismatch can show the difference."""
    agent_spec: str | None = None
    """Agent under test, as given on the command line."""
    dataset: str | None = None
    """Dataset name or path."""
    dataset_version: str | None = None
    """Dataset content hash or version."""
    window: str | None = None
    """Online window label, for online runs."""
    git_sha: str | None = None
    """Commit of the working directory the run was started from, when it is a git checkout."""
    started_at: datetime
    """When the run started (UTC)."""
    finished_at: datetime | None = None
    """When the run finished (UTC); None while running or after a crash."""


class ErrorInfo(BaseModel):
    """Why a conversation ended in error."""

    model_config = _CONFIG

    type: str
    """Exception class or failure category."""
    message: str
    """What happened."""


class ConversationResult(BaseModel):
    """The outcome of one (case, trial) unit of work."""

    model_config = _CONFIG

    schema_version: Literal[1] = 1
    """Version of this schema."""
    run_id: str
    """Run this result belongs to."""
    case_id: str
    """Evaluation case or persona the conversation came from."""
    trial: int = Field(ge=0)
    """Trial number, 0-based."""
    seed: int | None = None
    """Seed the trial ran with."""
    termination: str
    """Why the conversation ended (user_stop, agent_stop, max_turns, timeout, ...errors)."""
    error: ErrorInfo | None = None
    """Details when the conversation ended in an error."""
    conversation: Conversation
    """The transcript."""
    duration_s: float | None = Field(default=None, ge=0)
    """Wall time of the conversation."""
    usage: dict[str, Usage] = Field(default_factory=dict)
    """Tokens and cost split by party: ``agent``, ``user``, ``judge``."""

    @property
    def key(self) -> tuple[str, str, int]:
        """The (run, case, trial) key results are stored under."""
        return (self.run_id, self.case_id, self.trial)
