"""The grader protocol and the loop that runs graders without ever losing a failure."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import JsonValue

from ..trace import Conversation, Score, ScoreFailure, ScoreKind, ScoreSource
from ..trace._score import unchecked_score

GradeOutput = Score | ScoreFailure
"""What a grader produces: scores, or failure records (never a silent 0)."""


@runtime_checkable
class Grader(Protocol):
    """Anything that grades a conversation.

    ``name`` and ``version`` are stamped on every score, so a changed grader is never
    compared silently with its old self. Implementations need not inherit from anything.
    """

    name: str
    """Grader name."""
    version: str
    """Version or content hash of the grader's configuration."""

    async def grade(self, conversation: Conversation) -> Sequence[GradeOutput]:
        """Scores (and failures) for one conversation."""
        ...


@runtime_checkable
class SyncGrader(Protocol):
    """A deterministic grader that needs no I/O; called without an event-loop hop."""

    name: str
    """Grader name."""
    version: str
    """Version or content hash."""

    def grade_sync(self, conversation: Conversation) -> Sequence[GradeOutput]:
        """Scores (and failures) for one conversation."""
        ...


AnyGrader = Grader | SyncGrader
"""Either kind of grader."""


def config_hash(*parts: Any) -> str:
    """A short, stable hash of a grader's configuration, used as its version."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def _stamps(
    conversation: Conversation,
) -> tuple[str | None, int | None, float | None, str | None, str | None]:
    """The run id, trial, inclusion probability, window and user id, when valid.

    All but the user come from the metadata; the user is metadata ``user_id`` (where
    the importers put it), else the tag ``user_id``.
    """
    meta = conversation.metadata
    run = meta.get("run_id")
    trial = meta.get("trial")
    prob = meta.get("inclusion_prob")
    window = meta.get("window")
    user = meta.get("user_id")
    if not (isinstance(user, str) and user):
        user = conversation.tags.get("user_id") or None
    return (
        run if isinstance(run, str) else None,
        trial if isinstance(trial, int) and not isinstance(trial, bool) else None,
        float(prob) if isinstance(prob, int | float) and 0 < prob <= 1 else None,
        window if isinstance(window, str) else None,
        user,
    )


def rule_score(
    grader: SyncGrader,
    conversation: Conversation,
    value: bool,
    reason: str,
    details: dict[str, JsonValue],
) -> Score:
    """The conversation-level binary score of a built-in rule grader, unvalidated.

    The guardrails and signals run on all traffic, and validating a score costs about
    four times what building it does. Their values are bools and their ``details`` JSON
    built afresh for each score, so the score keeps ``details`` as given; a property
    test checks that every score they build survives validation unchanged. What comes
    from the conversation is checked here: a score that would not validate is built
    through :class:`ScoreBuilder` instead, which raises as it always has.
    """
    run, trial, prob, window, user = _stamps(conversation)
    if value.__class__ is not bool or (trial is not None and trial < 0) or not conversation.id:
        # Not what the caller vouched for (a negative trial in the metadata, a field
        # assigned after validation): validate, and fail as the builder would.
        builder = ScoreBuilder(grader.name, grader.version, conversation)
        return builder.score(grader.name, value, "binary", reason, details=details)
    return unchecked_score(
        conversation_id=conversation.id,
        message_index=None,
        name=grader.name,
        value=value,
        kind="binary",
        reason=reason,
        source="rule",
        grader=grader.name,
        grader_version=grader.version,
        details=details,
        run_id=run,
        trial=trial,
        # A copy: the score must never share the conversation's dict.
        tags=dict(conversation.tags),
        inclusion_prob=prob,
        window=window,
        user_id=user,
    )


@dataclass(slots=True)
class ScoreBuilder:
    """Stamps grader identity and conversation context on scores and failures."""

    grader: str
    """Grader name."""
    version: str
    """Grader version."""
    conversation: Conversation
    """Conversation being graded."""
    source: ScoreSource = "rule"
    """Who produces the scores."""
    out: list[GradeOutput] = field(default_factory=list)
    """Everything built so far."""

    def score(
        self,
        name: str,
        value: bool | float | str,
        kind: ScoreKind,
        reason: str | None = None,
        *,
        message_index: int | None = None,
        **extra: Any,
    ) -> Score:
        """Add a score for the conversation (or one of its messages)."""
        run, trial, prob, window, user = _stamps(self.conversation)
        s = Score(
            conversation_id=self.conversation.id,
            message_index=message_index,
            name=name,
            value=value,
            kind=kind,
            reason=reason,
            source=self.source,
            grader=self.grader,
            grader_version=self.version,
            trial=trial,
            run_id=run,
            # Validation copies the dict, so the score never shares the conversation's.
            tags=self.conversation.tags,
            inclusion_prob=prob,
            window=window,
            user_id=user,
            **extra,
        )
        self.out.append(s)
        return s

    def failure(self, name: str, error_type: str, message: str) -> ScoreFailure:
        """Add a failure record: the grader could not produce ``name``."""
        f = ScoreFailure(
            conversation_id=self.conversation.id,
            name=name,
            grader=self.grader,
            grader_version=self.version,
            error_type=error_type,
            message=message,
        )
        self.out.append(f)
        return f


async def run_graders(
    conversation: Conversation, graders: Iterable[AnyGrader]
) -> list[GradeOutput]:
    """Run every grader on one conversation; a grader that raises becomes a failure record."""
    out: list[GradeOutput] = []
    for g in graders:
        try:
            if isinstance(g, SyncGrader):
                out.extend(g.grade_sync(conversation))
            else:
                out.extend(await g.grade(conversation))
        except Exception as e:
            out.append(_failure(conversation, g, e))
    return out


def grade_sync(conversation: Conversation, graders: Iterable[SyncGrader]) -> list[GradeOutput]:
    """Run deterministic graders on one conversation, with the same failure handling."""
    out: list[GradeOutput] = []
    for g in graders:
        try:
            out.extend(g.grade_sync(conversation))
        except Exception as e:
            out.append(_failure(conversation, g, e))
    return out


def _failure(conversation: Conversation, grader: AnyGrader, error: Exception) -> ScoreFailure:
    # A crashing grader is recorded, never turned into a score of 0 and never fatal.
    return ScoreFailure(
        conversation_id=conversation.id,
        name=grader.name,
        grader=grader.name,
        grader_version=grader.version,
        error_type=type(error).__name__,
        message=str(error)[:2000],
    )
