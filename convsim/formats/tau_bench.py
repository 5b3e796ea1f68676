"""tau-bench run records (``EnvRunResult``) to canonical conversations.

A run file is a JSON list of records with ``task_id``, ``trial``, ``reward``, ``info`` and
``traj`` (an OpenAI chat message list). The task id and trial become metadata and tags,
the task's user becomes metadata ``user_id``, and the reward becomes a binary
``reward`` score, so pass^k can be computed from the imported data alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from ..datasets import ReadReport, RecordError, RejectSink
from ..trace import Conversation, Provenance, Score
from ._base import expect_dict, expect_list, read_json_records
from .openai import conversation_from_openai

_DOMAINS = ("airline", "retail", "telecom")


STOP_MARKER = "###STOP###"
"""What tau-bench's user simulator writes to end a conversation."""

TERMINAL_TOOLS = frozenset({"transfer_to_human_agents"})
"""tau-bench tools whose call ends the episode."""


def task_expectations(task: dict[str, Any], domain: str) -> list[JsonValue]:
    """A tau-bench task as convsim outcome checks.

    tau-bench's reward is the conjunction of these three: the episode ended normally, the
    tool environment's end state equals the one the gold actions produce, and every
    required output was said to the user.
    """
    return [
        {"type": "completed"},
        {"type": "end_state", "environment": f"tau-{domain}", "actions": task.get("actions", [])},
        {"type": "outputs_said", "outputs": task.get("outputs", []), "replies_only": True},
    ]


def _termination(conversation: Conversation) -> str:
    # tau-bench ends an episode when the user writes the stop marker or the agent calls a
    # terminal tool; anything else ran out of steps.
    if any(m.role == "user" and STOP_MARKER in m.text for m in conversation.messages):
        return "user_stop"
    if any(c.name in TERMINAL_TOOLS for c in conversation.tool_calls()):
        return "agent_transfer"
    return "max_steps"


def guess_domain(path: Path) -> str:
    """The tau-bench domain named in a run file's name (``gpt-4o-airline.json``)."""
    name = path.name.lower()
    return next((d for d in _DOMAINS if d in name), "unknown")


def read_tau_bench(
    path: Path,
    *,
    report: ReadReport,
    rejects: RejectSink | None = None,
    keep_source: bool = False,
    domain: str | None = None,
) -> Iterator[Conversation]:
    """Yield one conversation per run record in a tau-bench results file."""
    dom = domain or guess_domain(path)

    def convert(record: Any, number: int) -> Conversation:
        conv = conversation_from_tau_bench(record, domain=dom, source_file=str(path), number=number)
        if keep_source and conv.provenance is not None:
            conv.provenance.record = record
        return conv

    yield from read_json_records(path, convert, report=report, rejects=rejects)


def conversation_from_tau_bench(
    record: Any, *, domain: str, source_file: str | None = None, number: int | None = None
) -> Conversation:
    """Convert one tau-bench run record."""
    r = expect_dict(record, "record")
    task_id, trial, reward = r.get("task_id"), r.get("trial"), r.get("reward")
    if not isinstance(task_id, int) or isinstance(task_id, bool):
        raise RecordError("task_id", "expected an integer task index")
    if not isinstance(trial, int) or isinstance(trial, bool):
        raise RecordError("trial", "expected an integer trial number")
    if not isinstance(reward, int | float) or isinstance(reward, bool):
        raise RecordError("reward", "expected a number (0.0 or 1.0)")
    traj = expect_list(r.get("traj"), "traj")
    info = expect_dict(r.get("info", {}), "info")
    conv_id = f"tau-{domain}-task{task_id}-trial{trial}"
    try:
        base = conversation_from_openai(traj, conversation_id=conv_id)
    except RecordError as e:
        raise RecordError(f"traj.{e.field}" if e.field else "traj", e.message) from None
    metadata: dict[str, JsonValue] = {"task_id": task_id, "trial": trial, "reward": reward}
    task = info.get("task")
    if isinstance(task, dict):
        metadata["task"] = task
        metadata["expectations"] = task_expectations(task, domain)
        # The task's user is the customer of the domain's database: the id drift reports
        # cluster by, like the user ids other importers read.
        if isinstance(task.get("user_id"), str) and task["user_id"]:
            metadata["user_id"] = task["user_id"]
    metadata["termination"] = _termination(base)
    for key in ("source", "user_cost", "reward_info"):
        if key in info:
            metadata[key] = info[key]
    reward_score = Score(
        conversation_id=conv_id,
        name="reward",
        value=reward >= 1.0,
        kind="binary",
        reason="reward recorded by tau-bench",
        source="rule",
        grader="tau-bench",
        trial=trial,
    )
    return base.model_copy(
        update={
            "metadata": metadata,
            "tags": {"domain": domain, "task": str(task_id)},
            "scores": [reward_score],
            "provenance": Provenance(
                source_format="tau-bench",
                source_ids=[f"task:{task_id}", f"trial:{trial}"],
                source_file=source_file,
                source_line=number,
            ),
        }
    )
