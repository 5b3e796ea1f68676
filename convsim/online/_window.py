"""Grade one online window: sample, run the graders, store, and fill the review queue."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..grade import grade_conversations
from ..graders import AnyGrader, GradeOutput
from ..store import SQLiteStore, WindowScore
from ..trace import Conversation, Score, ScoreFailure
from ._anchors import choose_anchors, stamp_anchor_scores
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
    anchor_scores: list[Score] = field(default_factory=list)
    """This window's judgments of the anchor set (marked ``anchor``)."""
    anchors: int = 0
    """Conversations in the anchor set the judges saw again."""
    anchors_added: int = 0
    """Of those, how many this window added to the set."""


async def grade_window(
    read: Callable[[], Iterable[Conversation]],
    policy: SamplingPolicy,
    *,
    window: str,
    checks: Sequence[AnyGrader],
    judges: Sequence[AnyGrader],
    store: SQLiteStore | None = None,
    review_top: int = 0,
    concurrency: int = 16,
    anchors: Sequence[Conversation] | None = None,
    anchor_judges: Sequence[AnyGrader] | None = None,
) -> WindowResult:
    """Sample a window with ``policy``, grade it, and optionally store and queue the worst.

    ``read`` is called more than once (to decide, to grade, to draw anchors), so the
    window is streamed instead of held in memory. Deterministic ``checks`` run on every
    conversation; the ``judges`` only on the conversations the policy sampled and the
    budget allowed, and again on the anchor set.

    The anchor set (``policy.anchors``) is ``anchors`` when given; otherwise, with a
    store, the set kept there, topped up from this window to its size. Pass
    ``anchor_judges`` that bypass any response cache: a cached answer would hide the
    very judge change the anchors are there to catch (default: ``judges``).
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
    anchor_set = list(anchors) if anchors is not None else []
    if anchors is None and judges and store is not None and policy.anchors.size:
        anchor_set = store.anchor_set()
        missing = policy.anchors.size - len(anchor_set)
        if missing > 0:
            have = {c.id for c in anchor_set}
            new = choose_anchors(read(), missing, salt=policy.salt, exclude=have)
            result.anchors_added = store.add_anchors(window, new)
            anchor_set = store.anchor_set()
    if judges and anchor_set:
        before = len(raw)
        await grade_conversations(
            anchor_set, anchor_judges or judges, write=keep, concurrency=concurrency
        )
        result.anchor_scores = stamp_anchor_scores(raw[before:], window)
        result.anchors = len(anchor_set)
    if store is not None:
        store.write_batch(
            [WindowScore(window=window, score=s) for s in result.scores + result.anchor_scores]
        )
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
