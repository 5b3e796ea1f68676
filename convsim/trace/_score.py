"""Score and failure records: what graders produce and the store keeps."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictBool, model_validator

ScoreKind = Literal["binary", "ordinal", "continuous", "categorical"]
"""How a score is measured; it also picks the statistical test used on it."""

ScoreSource = Literal["rule", "model", "human", "user"]
"""Who produced a score: a deterministic rule, a model judge, a human reviewer, the end user."""

_CONFIG = ConfigDict(extra="forbid", use_attribute_docstrings=True, allow_inf_nan=False)


class Score(BaseModel):
    """One grade of one conversation (or of one message in it)."""

    model_config = _CONFIG

    schema_version: Literal[1] = 1
    """Version of this schema."""
    conversation_id: str = Field(min_length=1)
    """Conversation the score is about."""
    message_index: int | None = Field(default=None, ge=0)
    """Index of the graded message, for turn-level scores; None for the whole conversation."""
    name: str = Field(min_length=1)
    """Metric name, e.g. ``goal_completion`` or ``pii_leak``."""
    value: StrictBool | float | str
    """A bool for binary scores, a number for ordinal and continuous, a label for categorical."""
    kind: ScoreKind
    """Measurement kind, which decides how the value is typed and tested."""
    reason: str | None = None
    """Why the grader gave this value."""
    source: ScoreSource = "rule"
    """Who produced the score."""
    grader: str = "unknown"
    """Name of the grader that produced the score."""
    grader_version: str | None = None
    """Grader version or content hash, so changed graders are never compared silently."""
    judge_model: str | None = None
    """Model used by a judge grader."""
    prompt_hash: str | None = None
    """Hash of the judge prompt, so a prompt change is visible in drift reports."""
    cost_usd: float | None = Field(default=None, ge=0)
    """What producing this score cost."""
    details: dict[str, JsonValue] = Field(default_factory=dict, exclude_if=lambda v: not v)
    """Grader-specific detail: per-check breakdown, judge agreement, matched spans."""
    run_id: str | None = None
    """Run the graded conversation belongs to, when it came from a run."""
    trial: int | None = Field(default=None, ge=0)
    """Trial number of the graded conversation within its run."""
    tags: dict[str, str] = Field(default_factory=dict, exclude_if=lambda v: not v)
    """Cohort keys of the graded conversation (vertical, language, ...), for drill-downs."""
    inclusion_prob: float | None = Field(default=None, gt=0, le=1)
    """Probability that online sampling picked this conversation; weights are its inverse."""
    window: str | None = None
    """Online window label (e.g. ``2026-W47``) the score belongs to."""
    sampling_rule: str | None = None
    """Sampling rule that picked the conversation for judging (``default``,
    ``trigger:escalated``, a rule name). Drift tests compare windows within each rule,
    so a rule whose rate changed between weeks is still compared like with like."""
    user_id: str | None = None
    """End user (or account) the conversation belongs to. One user's conversations are
    alike, so drift tests treat them as correlated rather than independent."""
    anchor: bool = Field(default=False, exclude_if=lambda v: not v)
    """A re-judgment of the fixed anchor set rather than part of the window's sample:
    drift compares the anchors' scores between windows to detect a judge that changed."""
    created_at: datetime | None = None
    """When the score was produced (UTC); None when unknown, e.g. for imported scores."""

    @model_validator(mode="after")
    def _value_matches_kind(self) -> Score:
        v = self.value
        if self.kind == "binary" and not isinstance(v, bool):
            raise ValueError(f"score {self.name!r}: a binary score needs true/false, got {v!r}")
        if self.kind in ("ordinal", "continuous") and (isinstance(v, bool | str)):
            raise ValueError(f"score {self.name!r}: a {self.kind} score needs a number, got {v!r}")
        if self.kind == "categorical" and not isinstance(v, str):
            raise ValueError(f"score {self.name!r}: a categorical score needs a label, got {v!r}")
        return self

    @property
    def numeric(self) -> float | None:
        """The value as a number (true = 1.0), or None for categorical labels."""
        if isinstance(self.value, str):
            return None
        return float(self.value)


_set_attribute = object.__setattr__
# The fields unchecked_score is given, which a validated score would count as set.
_GIVEN_FIELDS = frozenset(
    {
        "conversation_id",
        "message_index",
        "name",
        "value",
        "kind",
        "reason",
        "source",
        "grader",
        "grader_version",
        "details",
        "run_id",
        "trial",
        "tags",
        "inclusion_prob",
        "window",
        "user_id",
    }
)


def unchecked_score(
    *,
    conversation_id: str,
    message_index: int | None,
    name: str,
    value: bool | float | str,
    kind: ScoreKind,
    reason: str | None,
    source: ScoreSource,
    grader: str,
    grader_version: str | None,
    details: dict[str, JsonValue],
    run_id: str | None,
    trial: int | None,
    tags: dict[str, str],
    inclusion_prob: float | None,
    window: str | None,
    user_id: str | None,
) -> Score:
    """A :class:`Score` built from fields that are valid by construction, unvalidated.

    Validation costs about four times as much as building the score, and rule graders
    build several scores for every production conversation. The caller vouches for
    every field (types, ranges, JSON-only ``details``, a value that fits ``kind``) and
    hands over ``details`` and ``tags``: the score keeps those very objects.
    """
    score = Score.__new__(Score)
    # Serialisation follows the order of __dict__, so it lists every field in
    # declaration order, the way validation would.
    _set_attribute(
        score,
        "__dict__",
        {
            "schema_version": 1,
            "conversation_id": conversation_id,
            "message_index": message_index,
            "name": name,
            "value": value,
            "kind": kind,
            "reason": reason,
            "source": source,
            "grader": grader,
            "grader_version": grader_version,
            "judge_model": None,
            "prompt_hash": None,
            "cost_usd": None,
            "details": details,
            "run_id": run_id,
            "trial": trial,
            "tags": tags,
            "inclusion_prob": inclusion_prob,
            "window": window,
            "sampling_rule": None,
            "user_id": user_id,
            "anchor": False,
            "created_at": None,
        },
    )
    _set_attribute(score, "__pydantic_fields_set__", set(_GIVEN_FIELDS))
    _set_attribute(score, "__pydantic_extra__", None)
    _set_attribute(score, "__pydantic_private__", None)
    return score


class ScoreFailure(BaseModel):
    """A grader that could not produce a score. Never stored as a score of 0."""

    model_config = _CONFIG

    schema_version: Literal[1] = 1
    """Version of this schema."""
    conversation_id: str = Field(min_length=1)
    """Conversation the grader was working on."""
    message_index: int | None = Field(default=None, ge=0)
    """Message being graded, for turn-level graders."""
    name: str = Field(min_length=1)
    """Metric the grader would have produced."""
    grader: str = "unknown"
    """Grader that failed."""
    grader_version: str | None = None
    """Grader version or content hash."""
    error_type: str
    """Exception class or failure category (``invalid_output``, ``timeout``, ...)."""
    message: str
    """What went wrong."""
    run_id: str | None = None
    """Run the conversation belongs to, when it came from a run."""
    trial: int | None = Field(default=None, ge=0)
    """Trial number within the run."""
    created_at: datetime | None = None
    """When the failure happened (UTC), when known."""
