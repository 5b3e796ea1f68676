"""The grader protocol and the loop that runs graders without ever losing a failure."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

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


_NO_DETAILS: dict[str, Any] = {}


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
    validate: bool = True
    """Validate each score. A rule grader whose details are valid by construction (JSON
    values only, built afresh for each score, which keeps them) may turn this off for
    its binary scores: building a score unvalidated is about four times cheaper. Only
    a binary score with a ``bool`` value and no extra field but a ``details`` dict
    skips validation; anything else is validated as usual."""

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
        meta = self.conversation.metadata
        trial = meta.get("trial")
        run = meta.get("run_id")
        prob = meta.get("inclusion_prob")
        window = meta.get("window")
        tags = self.conversation.tags
        trial = trial if isinstance(trial, int) and not isinstance(trial, bool) else None
        run = run if isinstance(run, str) else None
        prob = float(prob) if isinstance(prob, int | float) and 0 < prob <= 1 else None
        window = window if isinstance(window, str) else None
        s: Score
        if (
            not self.validate
            and kind == "binary"
            and value.__class__ is bool
            and extra.keys() <= {"details"}
            and extra.get("details", _NO_DETAILS).__class__ is dict
        ):
            s = unchecked_score(
                conversation_id=self.conversation.id,
                message_index=message_index,
                name=name,
                value=value,
                kind=kind,
                reason=reason,
                source=self.source,
                grader=self.grader,
                grader_version=self.version,
                details=extra.get("details"),
                run_id=run,
                trial=trial,
                # The score must never share the conversation's dict.
                tags=dict(tags),
                inclusion_prob=prob,
                window=window,
            )
        else:
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
                tags=tags,
                inclusion_prob=prob,
                window=window,
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
