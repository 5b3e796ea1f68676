"""Grade one online window: sample, run the graders, store, and fill the review queue."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..grade import grade_conversations
from ..graders import AnyGrader, GradeOutput, RubricJudge
from ..store import SQLiteStore, WindowScore
from ..trace import Conversation, Score, ScoreFailure
from ._policy import SamplingPolicy
from ._sampler import Decision, SamplingReport, decide, stamp_scores, summarize


@dataclass(slots=True)
class WindowResult:
    """What grading one window did."""

    window: str
    """The window label."""
    decisions: list[Decision]
    """One sampling decision per conversation."""
    report: SamplingReport
    """Sampled share per rule, budget skips, cost."""
    scores: list[Score] = field(default_factory=list)
    """Every score, stamped with the window and (for judges) the inclusion probability."""
    failures: list[ScoreFailure] = field(default_factory=list)
    """Grader failures."""
    queued: int = 0
    """Conversations added to the review queue."""


async def grade_window(
    read: Callable[[], Iterable[Conversation]],
    policy: SamplingPolicy,
    *,
    window: str,
    checks: Sequence[AnyGrader],
    judges: Sequence[RubricJudge],
    store: SQLiteStore | None = None,
    review_top: int = 0,
    concurrency: int = 16,
) -> WindowResult:
    """Sample a window with ``policy``, grade it, and optionally store and queue the worst.

    ``read`` is called twice (once to decide, once to grade), so the window is streamed
    instead of held in memory. Deterministic ``checks`` run on every conversation; the
    ``judges`` only on the conversations the policy sampled and the budget allowed.
    """
    decisions = decide(read(), policy)
    by_id = {d.conversation_id: d for d in decisions}
    result = WindowResult(window=window, decisions=decisions, report=summarize(decisions))
    raw: list[Score] = []

    def keep(out: GradeOutput) -> None:
        if isinstance(out, ScoreFailure):
            result.failures.append(out)
        else:
            raw.append(out)

    def judged() -> Iterable[Conversation]:
        for conv in read():
            d = by_id.get(conv.id)
            if d is not None and d.judged:
                yield conv

    await grade_conversations(read(), checks, write=keep, concurrency=concurrency)
    if judges:
        await grade_conversations(judged(), judges, write=keep, concurrency=concurrency)
    result.scores = stamp_scores(raw, decisions, window=window)
    if store is not None:
        store.write_batch([WindowScore(window=window, score=s) for s in result.scores])
        if result.failures:
            store.write_batch(result.failures)
        if review_top:
            from ..harvest import fill_review_queue

            result.queued = fill_review_queue(
                store, window, read(), result.scores, limit=review_top
            )
    return result


def conversations_from(path: str | os.PathLike[str]) -> Callable[[], Iterable[Conversation]]:
    """A re-readable source of the conversations in a canonical JSONL file."""
    from ..datasets import read_conversations

    def read() -> Iterable[Conversation]:
        return read_conversations(Path(path))

    return read
