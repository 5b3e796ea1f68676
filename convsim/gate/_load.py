"""Loading a run for the gate: from a results file (plus scores) or from the store."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..datasets import JsonlReader, ReadReport
from ..errors import ConfigError
from ..session import TerminationReason
from ..store import ConversationResult, SQLiteStore
from ..trace import AssistantMessage, Score

ScoreValue = bool | float | str
"""A conversation-level score value as :class:`~convsim.trace.Score` holds it."""


class GateError(ConfigError):
    """Input the gate cannot compare; the message says what to fix."""


@dataclass(frozen=True)
class TrialRecord:
    """What the gate needs from one conversation of a run."""

    case_id: str
    """Case (or persona) the conversation came from."""
    trial: int
    """Trial number within the run."""
    seed: int | None
    """Seed the trial ran with, when known."""
    conversation_id: str
    """Id of the conversation; scores refer to it."""
    termination: str
    """Why the conversation ended."""
    counts_for_agent: bool
    """False for simulator and infrastructure errors and voided runs: they say nothing
    about the agent, so they are excluded from every rate and reported instead."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Cohort keys (vertical, persona, language, ...)."""
    scores: Mapping[str, ScoreValue] = field(default_factory=dict)
    """Conversation-level scores by name (the last one wins when a score is repeated)."""
    latency_ms: float | None = None
    """Time the agent took over the whole conversation: the sum of its messages'
    latencies; None when no message recorded one."""
    cost_usd: float | None = None
    """What the agent's model calls cost (user simulator and judges not included)."""


@dataclass(frozen=True)
class RunData:
    """One run's conversations, ready to compare."""

    run_id: str
    """Run name."""
    source: str
    """Where the run was read from (a file path, or ``store:RUN``)."""
    trials: tuple[TrialRecord, ...]
    """Every conversation of the run, in the order read."""
    notes: tuple[str, ...] = ()
    """Problems met while reading (unreadable lines, unmatched scores)."""

    def score_names(self) -> set[str]:
        """Names of the conversation-level scores present in the run."""
        return {name for t in self.trials for name in t.scores}


def counts_for_agent(termination: str) -> bool:
    """Whether a termination says something about the agent (unknown reasons do)."""
    try:
        return TerminationReason(termination).counts_for_agent
    except ValueError:
        return True


def _latency_ms(result: ConversationResult) -> float | None:
    values = [
        m.latency_ms
        for m in result.conversation.messages
        if isinstance(m, AssistantMessage) and m.latency_ms is not None
    ]
    return float(sum(values)) if values else None


def _cost_usd(result: ConversationResult) -> float | None:
    agent = result.usage.get("agent")
    if agent is not None and agent.cost_usd is not None:
        return agent.cost_usd
    return result.conversation.usage().cost_usd


def run_from_results(
    results: Iterable[ConversationResult],
    scores: Iterable[Score] = (),
    *,
    source: str,
    notes: Iterable[str] = (),
    graded: Iterable[Score] = (),
    graded_source: str | None = None,
) -> RunData:
    """Build a run from its results and the scores graded on them.

    Scores attach to conversations by conversation id (and trial, when the score has
    one). Scores that name another run are ignored. Scores carried inside the
    transcript (``conversation.scores``) count too; graded scores override them.
    Message-level scores are ignored: the gate compares whole conversations.

    Args:
        results: The run's results; all must share one run id.
        scores: Scores of the run's conversations (e.g. from the store).
        source: Where the run came from, for messages.
        notes: Reading problems to carry into the report.
        graded: Scores from a file the user named; they override ``scores``, and finding
            none of them for this run is an error rather than silence.
        graded_source: The file ``graded`` came from.

    Returns:
        The run.

    Raises:
        GateError: On no results, results of several runs, a repeated (case, trial), or
            scores that match none of the run's conversations.
    """
    items = list(results)
    if not items:
        raise GateError(f"{source}: no results; is this a run results file (convsim simulate)?")
    run_ids = sorted({r.run_id for r in items})
    if len(run_ids) > 1:
        raise GateError(
            f"{source} holds results of several runs ({', '.join(run_ids[:5])}); split the "
            "file by run, or keep the runs in the store and pass their run ids"
        )
    run_id = run_ids[0]
    seen: set[tuple[str, int]] = set()
    for r in items:
        if (r.case_id, r.trial) in seen:
            raise GateError(
                f"{source}: case {r.case_id!r} trial {r.trial} appears twice; remove the "
                "duplicate (was the file appended to twice?)"
            )
        seen.add((r.case_id, r.trial))

    by_key: dict[tuple[str, int], dict[str, ScoreValue]] = {}
    by_id: dict[str, list[tuple[str, int]]] = {}
    for r in items:
        key = (r.case_id, r.trial)
        by_key[key] = {s.name: s.value for s in r.conversation.scores if s.message_index is None}
        by_id.setdefault(r.conversation.id, []).append(key)

    def attach(batch: Iterable[Score]) -> tuple[int, int, int]:
        offered = matched = other_run = 0
        for s in batch:
            offered += 1
            if s.message_index is not None:
                continue
            if s.run_id is not None and s.run_id != run_id:
                other_run += 1
                continue
            keys = by_id.get(s.conversation_id, [])
            if len(keys) > 1 and s.trial is not None:
                keys = [k for k in keys if k[1] == s.trial]
            if len(keys) != 1:
                continue
            by_key[keys[0]][s.name] = s.value
            matched += 1
        return offered, matched, other_run

    attach(scores)
    offered, matched, other_run = attach(graded)
    all_notes = list(notes)
    if graded_source is not None and not matched:
        hint = f" ({other_run} belong to other runs)" if other_run else ""
        raise GateError(
            f"{graded_source}: none of its {offered} scores belong to run {run_id!r}'s "
            f"conversations{hint}; grade this run's results with "
            f"`convsim grade RESULTS --out SCORES`"
        )
    if graded_source is not None and other_run:
        all_notes.append(f"{graded_source}: {other_run} scores of other runs were ignored")

    trials = tuple(
        TrialRecord(
            case_id=r.case_id,
            trial=r.trial,
            seed=r.seed,
            conversation_id=r.conversation.id,
            termination=r.termination,
            counts_for_agent=counts_for_agent(r.termination),
            tags=dict(r.conversation.tags),
            scores=by_key[(r.case_id, r.trial)],
            latency_ms=_latency_ms(r),
            cost_usd=_cost_usd(r),
        )
        for r in items
    )
    return RunData(run_id=run_id, source=source, trials=trials, notes=tuple(all_notes))


def _read_scores(path: Path) -> tuple[list[Score], list[str]]:
    from ..grade import read_scores

    report = ReadReport(file=str(path))
    scores = list(read_scores(path, report=report))
    notes = (
        [f"{path}: {report.rejected} unreadable score lines skipped (first: {report.issues[0]})"]
        if report.rejected and report.issues
        else []
    )
    return scores, notes


def load_results_file(
    path: str | os.PathLike[str], *, scores: str | os.PathLike[str] | None = None
) -> RunData:
    """Load a run from a ``convsim simulate --out`` results file, plus optional scores.

    Args:
        path: The results JSONL (one :class:`~convsim.store.ConversationResult` a line).
        scores: A ``convsim grade --out`` scores JSONL of the same run.

    Returns:
        The run.

    Raises:
        GateError: When nothing usable can be read (see :func:`run_from_results`).
        TraceImportError: When a file is missing, a directory or empty.
    """
    p = Path(path)
    report = ReadReport(file=str(p))
    results = list(JsonlReader(p, ConversationResult.model_validate_json, report=report))
    notes: list[str] = []
    if report.rejected:
        first = f" (first: {report.issues[0]})" if report.issues else ""
        notes.append(
            f"{p}: {report.rejected} unreadable result lines skipped{first}; their "
            "conversations are missing from the comparison"
        )
    graded: list[Score] = []
    if scores is not None:
        graded, more = _read_scores(Path(scores))
        notes.extend(more)
    return run_from_results(
        results,
        source=str(p),
        notes=notes,
        graded=graded,
        graded_source=None if scores is None else str(scores),
    )


def load_store_run(
    store: SQLiteStore, run_id: str, *, scores: str | os.PathLike[str] | None = None
) -> RunData:
    """Load a run from the store: its results and the scores stored for it.

    Args:
        store: The open store.
        run_id: The run.
        scores: An extra scores JSONL; its scores override stored ones of the same name.

    Returns:
        The run.

    Raises:
        GateError: When the store has no results for the run.
    """
    results = list(store.results(run_id))
    if not results:
        known = [r.run_id for r in store.runs()][-10:]
        listed = ", ".join(known) if known else "none"
        raise GateError(
            f"no results for run {run_id!r} in {store.path} (recent runs: {listed}); pass a "
            "results file or another run id"
        )
    stored = list(store.scores(run_id=run_id))
    notes: list[str] = []
    extra: list[Score] = []
    if scores is not None:
        extra, notes = _read_scores(Path(scores))
    return run_from_results(
        results,
        stored,
        source=f"store:{run_id}",
        notes=notes,
        graded=extra,
        graded_source=None if scores is None else str(scores),
    )
