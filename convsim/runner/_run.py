"""The local anyio executor: bounded concurrency, one store writer, resume, progress."""

from __future__ import annotations

import sqlite3
import subprocess
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from ..calls import redact_secrets
from ..errors import RunBusy
from ..store import (
    HEARTBEAT_S,
    LEASE_TTL_S,
    ConversationResult,
    ErrorInfo,
    RunRecord,
    SQLiteStore,
    StoreItem,
    store_writer,
)
from ..trace import Conversation, Provenance, Usage, add_usage
from ._config import RunConfig, WorkUnit
from ._progress import Progress

Execute = Callable[[WorkUnit], Awaitable[ConversationResult]]
"""Runs one unit of work; must record failures in the result rather than raise."""


@dataclass(slots=True)
class RunSummary:
    """What a run did."""

    run_id: str
    """The run."""
    planned: int
    """Units in the plan."""
    skipped: int
    """Units already finished in an earlier, resumed attempt."""
    completed: int
    """Units run now."""
    terminations: dict[str, int] = field(default_factory=dict)
    """Units run now, by termination reason."""
    usage: dict[str, Usage] = field(default_factory=dict)
    """Tokens and cost of the units run now, by party."""
    wall_s: float = 0.0
    """Wall time."""


async def run_units(
    config: RunConfig,
    units: Sequence[WorkUnit],
    execute: Execute,
    *,
    store: SQLiteStore,
    resume: bool = False,
    dataset: str | None = None,
) -> RunSummary:
    """Run every unit not already stored, ``config.concurrency`` at a time.

    Results go to one writer task; a unit's result is committed as soon as possible, so
    a killed run loses at most the conversations in flight, and ``resume`` picks up
    exactly the missing (case, trial) keys.

    Raises:
        StoreError: the run exists and ``resume`` is false.
        ResumeMismatch: the stored run's config hash differs (the message shows the diff).
    """
    record = RunRecord(
        run_id=config.run_id,
        kind=config.kind,
        config_hash=config.config_hash(),
        config=config.hashed_fields(),
        # A URL spec may carry credentials (http://user:KEY@host/v1): never stored.
        agent_spec=redact_secrets(config.agent),
        dataset=dataset or config.source,
        dataset_version=config.source_hash or None,
        git_sha=git_sha(),
        started_at=datetime.now(UTC),
    )
    # The lease first: what is already done is read only once no one else is running it.
    store.acquire_run(config.run_id)
    try:
        done = store.start_run(record, resume=resume)
        return await _run_todo(config, units, done, execute, store)
    finally:
        store.release_run(config.run_id)


async def _run_todo(
    config: RunConfig,
    units: Sequence[WorkUnit],
    done: set[tuple[str, int]],
    execute: Execute,
    store: SQLiteStore,
) -> RunSummary:
    todo = [u for u in units if (u.case_id, u.trial) not in done]
    summary = RunSummary(
        run_id=config.run_id, planned=len(units), skipped=len(units) - len(todo), completed=0
    )
    terminations: Counter[str] = Counter()
    started = time.perf_counter()
    progress = Progress(total=len(todo), enabled=config.progress)
    slots = anyio.Semaphore(config.concurrency)

    async def one(unit: WorkUnit, send: MemoryObjectSendStream[StoreItem]) -> None:
        async with send:
            try:
                result = await _execute_safely(execute, unit, config.run_id)
                await send.send(result)
            finally:
                slots.release()
            summary.completed += 1
            terminations[result.termination] += 1
            for party, used in result.usage.items():
                add_usage(summary.usage.setdefault(party, Usage()), used)
            progress.advance(
                result.termination, sum(u.cost_usd or 0.0 for u in result.usage.values())
            )

    # Its own thread slot: sync agents can fill anyio's default pool for longer than the
    # lease lives.
    beat_thread = anyio.CapacityLimiter(1)

    async def heartbeat() -> None:
        while True:
            await anyio.sleep(HEARTBEAT_S)
            try:
                held = await anyio.to_thread.run_sync(
                    store.renew_run, config.run_id, limiter=beat_thread
                )
            except sqlite3.OperationalError:
                continue  # busy or locked for now; the lease outlives a few missed beats
            if not held:
                raise RunBusy(
                    f"run {config.run_id!r}: this process was not heard from for "
                    f"{LEASE_TTL_S:.0f}s and another process has taken the run over; "
                    "stopping here so as not to repeat its work (what finished is stored)"
                )

    with progress:
        async with anyio.create_task_group() as beats:
            beats.start_soon(heartbeat)
            async with store_writer(store) as send, anyio.create_task_group() as tg:
                for unit in todo:
                    # Back-pressure before spawning: at most `concurrency` tasks exist at
                    # once, so memory stays flat however many units are planned.
                    await slots.acquire()
                    tg.start_soon(one, unit, send.clone())
            beats.cancel_scope.cancel()
    store.finish_run(config.run_id)
    summary.terminations = dict(terminations)
    summary.wall_s = time.perf_counter() - started
    return summary


def git_sha(cwd: str | None = None) -> str | None:
    """The current commit, so an experiment records which code produced it (None outside git)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and len(sha) >= 7 else None


async def _execute_safely(execute: Execute, unit: WorkUnit, run_id: str) -> ConversationResult:
    try:
        return await execute(unit)
    except Exception as e:
        # A bug in an executor must not lose the unit: it is stored as an error result.
        return ConversationResult(
            run_id=run_id,
            case_id=unit.case_id,
            trial=unit.trial,
            seed=unit.seed,
            termination="infrastructure_error",
            error=ErrorInfo(
                type=type(e).__name__,
                message=redact_secrets(f"{e}\n{''.join(traceback.format_exception(e))[-2000:]}"),
            ),
            conversation=Conversation(
                id=f"{unit.case_id}#{unit.trial}",
                provenance=Provenance(source_format="simulated", source_ids=[unit.case_id]),
            ),
        )
