"""Grading files of conversations: build the graders, stream, and summarise."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ._llm import ModelClient
from ._yaml import load_yaml_model
from .datasets import JsonlReader, ReadReport, RecordError, RejectSink
from .graders import (
    AnyGrader,
    CommitmentGuardrail,
    ForbiddenToolsGuardrail,
    FormatContractGuardrail,
    GradeOutput,
    MetadataMetrics,
    OutcomeChecks,
    PiiGuardrail,
    RubricJudge,
    default_signals,
    load_rubrics,
    run_graders,
)
from .store import ConversationResult
from .trace import Conversation, Score, ScoreFailure


class FormatContract(BaseModel):
    """A JSON Schema that assistant text or tool arguments must satisfy."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    target: Literal["assistant_text", "tool_arguments"] = "tool_arguments"
    """``assistant_text`` or ``tool_arguments``."""
    tool: str | None = None
    """For tool arguments: which tool (None: every tool)."""
    json_schema: dict[str, JsonValue] = Field(alias="schema")
    """The schema."""


class ChecksConfig(BaseModel):
    """The ``--checks`` file: deterministic checks to run besides rubric judges."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    expectations: list[dict[str, JsonValue]] = Field(default_factory=list)
    """Outcome checks applied to every conversation (see ``convsim.graders.outcome``)."""
    outcome: bool = True
    """Run the outcome checks carried by each conversation's metadata."""
    pii: bool = True
    """Flag PII in assistant output."""
    commitments: bool = True
    """Flag amounts, dates and ids the agent states without a source."""
    signals: bool = True
    """Detect implicit user signals (rephrasing, frustration, abandonment, ...)."""
    metadata: bool = True
    """Emit turns, tool calls, tool errors, latency, tokens and cost as continuous scores."""
    forbidden_tools: list[str] = Field(default_factory=list)
    """Tools the agent must never call."""
    forbidden_arguments: dict[str, dict[str, list[str]]] = Field(default_factory=dict)
    """Per tool, per argument: forbidden values (or regexes)."""
    format_contracts: list[FormatContract] = Field(default_factory=list)
    """JSON Schema contracts."""


def load_checks(path: str | os.PathLike[str]) -> ChecksConfig:
    """Load a ``--checks`` file."""
    return load_yaml_model(path, ChecksConfig, "checks", "checks")


def build_graders(
    *,
    checks: ChecksConfig | None = None,
    rubrics_path: str | os.PathLike[str] | None = None,
    judge_client: ModelClient | None = None,
    judge_model: str = "offline-rules",
    samples: int = 1,
    redact_pii: bool = False,
) -> list[AnyGrader]:
    """The graders a ``convsim grade`` run uses, deterministic ones first."""
    cfg = checks or ChecksConfig()
    graders: list[AnyGrader] = []
    if cfg.outcome or cfg.expectations:
        graders.append(OutcomeChecks(cfg.expectations))
    if cfg.pii:
        graders.append(PiiGuardrail())
    if cfg.commitments:
        graders.append(CommitmentGuardrail())
    if cfg.forbidden_tools or cfg.forbidden_arguments:
        graders.append(
            ForbiddenToolsGuardrail(set(cfg.forbidden_tools), dict(cfg.forbidden_arguments))
        )
    graders.extend(
        FormatContractGuardrail(
            dict(c.json_schema),
            target=c.target,
            tool=c.tool,
            # Score names must be unique per conversation; number the extra contracts.
            name="guardrail.format_contract" + (f".{i + 1}" if i else ""),
        )
        for i, c in enumerate(cfg.format_contracts)
    )
    if cfg.signals:
        graders.extend(default_signals())
    if cfg.metadata:
        graders.append(MetadataMetrics())
    if rubrics_path is not None:
        if judge_client is None:
            raise ValueError("rubric judges need a judge client")
        graders.extend(
            RubricJudge(
                r, client=judge_client, model=judge_model, samples=samples, redact_pii=redact_pii
            )
            for r in load_rubrics(rubrics_path)
        )
    return graders


def _parse_input(text: str) -> Conversation:
    """A line of canonical conversations or of run results (``convsim simulate --out``)."""
    if '"conversation"' in text and '"run_id"' in text:
        result = ConversationResult.model_validate_json(text)
        conv = result.conversation
        conv.metadata.setdefault("run_id", result.run_id)
        conv.metadata.setdefault("trial", result.trial)
        conv.metadata.setdefault("termination", result.termination)
        return conv
    from .datasets import ConversationAdapter

    return ConversationAdapter.validate_json(text)


def read_gradable(
    path: str | os.PathLike[str],
    *,
    rejects: RejectSink | None = None,
    report: ReadReport | None = None,
) -> JsonlReader[Conversation]:
    """Stream conversations from a canonical JSONL file or a run-results file."""
    return JsonlReader(path, _parse_input, rejects=rejects, report=report)


@dataclass(slots=True)
class GradeSummary:
    """Per-score aggregates of a grading pass."""

    conversations: int = 0
    """Conversations graded."""
    scores: int = 0
    """Scores produced."""
    failures: int = 0
    """Grader failures recorded."""
    by_name: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per score name: n, mean (pass rate for binary), failures, kind, judge model."""
    failures_by_type: dict[str, int] = field(default_factory=dict)
    """Failures by error type."""


class _Aggregate:
    def __init__(self) -> None:
        self.values: dict[str, list[float]] = defaultdict(list)
        self.labels: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.kind: dict[str, str] = {}
        self.judge: dict[str, str | None] = {}
        self.fail: dict[str, int] = defaultdict(int)

    def add(self, out: GradeOutput, summary: GradeSummary) -> None:
        if isinstance(out, ScoreFailure):
            summary.failures += 1
            self.fail[out.name] += 1
            summary.failures_by_type[out.error_type] = (
                summary.failures_by_type.get(out.error_type, 0) + 1
            )
            return
        summary.scores += 1
        self.kind[out.name] = out.kind
        self.judge[out.name] = out.judge_model
        if out.numeric is not None:
            self.values[out.name].append(out.numeric)
        else:
            self.labels[out.name][str(out.value)] += 1

    def finish(self, summary: GradeSummary) -> None:
        for name in sorted(set(self.kind) | set(self.fail)):
            vals = self.values.get(name, [])
            labels = self.labels.get(name, {})
            n = len(vals) + sum(labels.values())
            entry: dict[str, Any] = {
                "kind": self.kind.get(name),
                "n": n,
                "failures": self.fail.get(name, 0),
                "judge_model": self.judge.get(name),
            }
            if vals:
                entry["mean"] = round(sum(vals) / len(vals), 4)
            if labels:
                entry["labels"] = dict(sorted(labels.items()))
            summary.by_name[name] = entry


async def grade_conversations(
    conversations: Iterable[Conversation],
    graders: Sequence[AnyGrader],
    *,
    write: Callable[[GradeOutput], None],
    concurrency: int = 16,
) -> GradeSummary:
    """Grade a stream of conversations and hand every output to ``write``, in input order.

    Conversations are graded ``concurrency`` at a time (judges are I/O-bound), and the
    outputs are written in input order, so the same input gives the same output file.
    """
    summary = GradeSummary()
    agg = _Aggregate()
    async for outputs in _graded_in_order(conversations, graders, concurrency):
        summary.conversations += 1
        for out in outputs:
            agg.add(out, summary)
            write(out)
    agg.finish(summary)
    return summary


async def _graded_in_order(
    conversations: Iterable[Conversation], graders: Sequence[AnyGrader], concurrency: int
) -> AsyncIterator[list[GradeOutput]]:
    batch: list[Conversation] = []
    for conv in conversations:
        batch.append(conv)
        if len(batch) >= concurrency:
            for outputs in await _grade_batch(batch, graders):
                yield outputs
            batch = []
    if batch:
        for outputs in await _grade_batch(batch, graders):
            yield outputs


async def _grade_batch(
    batch: list[Conversation], graders: Sequence[AnyGrader]
) -> list[list[GradeOutput]]:
    results: list[list[GradeOutput]] = [[] for _ in batch]

    async def one(i: int, conv: Conversation) -> None:
        results[i] = await run_graders(conv, graders)

    async with anyio.create_task_group() as tg:
        for i, conv in enumerate(batch):
            tg.start_soon(one, i, conv)
    return results


def score_or_failure_line(out: GradeOutput) -> str:
    """The JSONL line for one output."""
    return out.model_dump_json(exclude_none=True)


def read_scores(
    path: str | os.PathLike[str], report: ReadReport | None = None
) -> JsonlReader[Score]:
    """Stream the scores of a ``convsim grade --out`` file."""

    def parse(text: str) -> Score:
        if '"error_type"' in text:
            raise RecordError(None, "a grader failure record, not a score")
        return Score.model_validate_json(text)

    return JsonlReader(Path(path), parse, report=report)
