"""Synthetic runs for the gate tests: results and scores built in code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from convsim.datasets import write_jsonl
from convsim.store import ConversationResult
from convsim.trace import AssistantMessage, Conversation, Score, Usage, UserMessage


def result(
    run_id: str,
    case: str,
    trial: int,
    *,
    vertical: str | None = "retail",
    termination: str = "user_stop",
    seed: int | None = None,
    latency_ms: float | None = 100.0,
    cost_usd: float | None = 0.01,
    agent_cost_usd: float | None = None,
    inline: dict[str, bool | float] | None = None,
) -> ConversationResult:
    """One conversation; ``inline`` scores travel inside the transcript."""
    conv_id = f"{case}#{trial}"
    tags = {"vertical": vertical} if vertical is not None else {}
    conv = Conversation(
        id=conv_id,
        messages=[
            UserMessage(content="hello"),
            AssistantMessage(
                content="hi",
                latency_ms=latency_ms,
                usage=Usage(cost_usd=cost_usd) if cost_usd is not None else None,
            ),
        ],
        tags=tags,
        scores=[
            Score(
                conversation_id=conv_id,
                name=name,
                value=value,
                kind="binary" if isinstance(value, bool) else "continuous",
            )
            for name, value in (inline or {}).items()
        ],
    )
    usage = {"agent": Usage(cost_usd=agent_cost_usd)} if agent_cost_usd is not None else {}
    return ConversationResult(
        run_id=run_id,
        case_id=case,
        trial=trial,
        seed=seed,
        termination=termination,
        conversation=conv,
        usage=usage,
    )


def score(
    run_id: str | None, case: str, trial: int, value: bool | float, name: str = "outcome"
) -> Score:
    """A graded score of one conversation, as ``convsim grade`` writes it."""
    return Score(
        conversation_id=f"{case}#{trial}",
        name=name,
        value=value,
        kind="binary" if isinstance(value, bool) else "continuous",
        run_id=run_id,
        trial=trial,
    )


def write_run(
    directory: Path,
    run_id: str,
    outcomes: Mapping[str, Sequence[bool]],
    *,
    verticals: dict[str, str] | None = None,
    seeds: bool = False,
) -> tuple[Path, Path]:
    """Write a results file and a scores file; return their paths."""
    results: list[ConversationResult] = []
    scores: list[Score] = []
    for case, trials in outcomes.items():
        for t, passed in enumerate(trials):
            vertical = (verticals or {}).get(case, "retail")
            results.append(
                result(run_id, case, t, vertical=vertical, seed=1000 + t if seeds else None)
            )
            scores.append(score(run_id, case, t, passed))
    res_path = directory / f"{run_id}.jsonl"
    score_path = directory / f"{run_id}.scores.jsonl"
    write_jsonl(res_path, results)
    write_jsonl(score_path, scores)
    return res_path, score_path
