"""``convsim demo``: the whole loop, offline, on the bundled tau-bench airline data.

1. import the 200 recorded conversations (50 tasks x 4 trials);
2. grade them: outcome checks, guardrails, user signals, and rubric judges (the offline
   rule-based judge, or a real model with ``--judge-model``);
3. report pass^k by task;
4. simulate a handful of tau-airline personas with scripted users against a reference
   agent, on the airline tools;
5. replay the recordings against a changed agent and show where it diverges;
6. build two weekly windows with a documented injected change, and report drift;
7. fill the review queue from the second week and harvest one case into a dataset.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from ._assets import tau_airline_runs
from .agents import AgentContext, FunctionAgent
from .datasets import ReadReport, write_jsonl
from .formats import read_tau_bench
from .trace import AssistantMessage, Conversation, Score, ToolCall

DEMO_WRITE_TOOLS = ("book_reservation", "update_reservation_flights", "update_reservation_baggages")
"""Tools whose calls the demo's changed agent alters."""


@dataclass(slots=True)
class DemoResult:
    """Paths and headline numbers from a demo run."""

    out: Path
    """The output folder."""
    lines: list[str] = field(default_factory=list)
    """The printed summary."""
    files: dict[str, Path] = field(default_factory=dict)
    """Files left behind, by role."""
    numbers: dict[str, Any] = field(default_factory=dict)
    """Headline figures, for tests and ``--json``."""
    seconds: float = 0.0
    """Wall time."""

    def say(self, line: str) -> None:
        """Add a summary line."""
        self.lines.append(line)


def gold_agent(tasks: dict[str, dict[str, Any]]) -> FunctionAgent:
    """A reference agent that performs each task's gold actions, then says the outputs.

    It stands in for a well-behaved production agent so the simulated conversations have
    a known right answer; it is not a model.
    """

    def respond(conversation: Conversation, context: AgentContext) -> AssistantMessage:
        task = tasks[context.case_id]
        actions = [a for a in task["actions"] if a["name"] != "transfer_to_human_agents"]
        done = sum(
            len(m.tool_calls) for m in conversation.messages if isinstance(m, AssistantMessage)
        )
        if done < len(actions):
            action = actions[done]
            call = ToolCall(
                id=f"gold-{done}", name=action["name"], arguments=dict(action["kwargs"])
            )
            return AssistantMessage(tool_calls=[call])
        outputs = ", ".join(str(o) for o in task.get("outputs", []))
        return AssistantMessage(content=f"All done. {outputs}".strip())

    return FunctionAgent(respond)


def changed_agent(recordings: list[Conversation]) -> FunctionAgent:
    """The recorded agent with one change: write calls downgrade the cabin to basic economy.

    It is the "new prompt" under test in the replay step: everything it says and does is
    the recording, except that argument.
    """
    scripts = {c.id: [m for m in c.messages if isinstance(m, AssistantMessage)] for c in recordings}

    def respond(conversation: Conversation, context: AgentContext) -> AssistantMessage:
        said = sum(1 for m in conversation.messages if isinstance(m, AssistantMessage))
        script = scripts[context.case_id]
        if said >= len(script):
            return AssistantMessage(finish_reason="end_conversation")
        reply = script[said].model_copy(deep=True)
        for call in reply.tool_calls:
            if call.name in DEMO_WRITE_TOOLS and call.arguments and "cabin" in call.arguments:
                call.arguments["cabin"] = "basic_economy"
        return reply

    return FunctionAgent(respond)


def run_demo(
    out: Path,
    *,
    judge_model: str | None = None,
    personas: int = 5,
    progress: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run every step; files go under ``out``. Needs no network unless ``judge_model``."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(out=out)
    note = progress or (lambda _: None)
    store_path = out / "convsim.db"
    store_path.unlink(missing_ok=True)
    from .store import SQLiteStore

    with SQLiteStore(store_path) as store:
        note("importing")
        recordings = _import(result)
        note("grading")
        scores = anyio.run(lambda: _grade(result, recordings, judge_model))
        _pass_k(result, scores)
        note("simulating")
        anyio.run(lambda: _simulate(result, store, personas))
        note("replaying")
        anyio.run(lambda: _replay(result, store, recordings))
        note("drift")
        windows = _drift(result, scores, recordings)
        note("review and harvest")
        _harvest(result, store, windows)
    result.files["store"] = store_path
    result.seconds = time.perf_counter() - started
    return result


def _import(result: DemoResult) -> list[Conversation]:
    report = ReadReport(file="bundled tau-bench airline runs")
    recordings = list(read_tau_bench(tau_airline_runs(), report=report))
    path = result.out / "traces.jsonl"
    write_jsonl(path, recordings)
    result.files["traces"] = path
    calls = sum(len(c.tool_calls()) for c in recordings)
    result.numbers["imported"] = report.kept
    result.say(
        f"1. imported {report.kept} recorded conversations ({calls:,} tool calls, "
        f"{report.rejected} rejected) -> {path}"
    )
    return recordings


async def _grade(
    result: DemoResult, recordings: list[Conversation], judge_model: str | None
) -> list[Score]:
    from ._assets import shipped
    from .grade import build_graders, grade_conversations
    from .trace import ScoreFailure

    if judge_model:
        from ._llm import LiteLLMClient
        from .calls import ResponseCache

        client: Any = LiteLLMClient(cache=ResponseCache(result.out / "cache.db"))
    else:
        from .testing import OfflineJudge

        client = OfflineJudge()
    graders = build_graders(
        rubrics_path=shipped("rubrics"),
        judge_client=client,
        judge_model=judge_model or "offline-rules",
    )
    scores: list[Score] = []
    failures: list[ScoreFailure] = []

    def keep(out: Score | ScoreFailure) -> None:
        if isinstance(out, ScoreFailure):
            failures.append(out)
        else:
            scores.append(out)

    summary = await grade_conversations(recordings, graders, write=keep)
    path = result.out / "scores.jsonl"
    write_jsonl(path, scores)
    result.files["scores"] = path
    by = summary.by_name
    outcome = by["outcome"]["mean"]
    result.numbers.update(
        outcome_pass_rate=outcome,
        pii_pass_rate=by["guardrail.pii"]["mean"],
        judge_goal_completion=by.get("rubric.goal_completion", {}).get("mean"),
        grader_failures=len(failures),
    )
    result.say(
        f"2. graded them: outcome pass rate {outcome:.3f} (tau-bench recorded 0.420), "
        f"{summary.scores:,} scores, {len(failures)} grader failures; judges: "
        f"{judge_model or 'offline rules (uncalibrated)'} -> {path}"
    )
    return scores


def _pass_k(result: DemoResult, scores: list[Score]) -> None:
    from .stats import pass_k_report

    outcomes: dict[str, list[bool]] = {}
    for s in scores:
        if s.name == "outcome":
            outcomes.setdefault(s.tags.get("task", "?"), []).append(s.value is True)
    report = pass_k_report(outcomes)
    figures = {k: round(report.pass_hat(k), 3) for k in range(1, report.max_k + 1)}
    path = result.out / "pass_k.json"
    path.write_text(
        json.dumps(
            {
                "pass_hat_k": figures,
                "tasks": {t.task_id: {"n": t.n, "c": t.c, "label": t.label} for t in report.tasks},
            },
            indent=2,
        )
    )
    result.files["pass_k"] = path
    result.numbers["pass_hat_k"] = figures
    shown = " / ".join(f"{v:.3f}" for v in figures.values())
    result.say(
        f"3. pass^k for k=1..{report.max_k}: {shown} "
        f"({report.flaky_tasks} of {len(report.tasks)} tasks flaky) -> {path}"
    )


async def _simulate(result: DemoResult, store: Any, count: int) -> None:
    from ._assets import shipped
    from .envs import AirlineEnvironment
    from .graders import OutcomeChecks
    from .runner import RunConfig
    from .simulate import make_user_factory, simulate
    from .users import load_personas

    personas = load_personas(shipped("personas") / "tau-airline")[:count]
    tasks = {
        p.name: {k: v for e in p.expectations for k, v in e.items() if k in ("actions", "outputs")}
        for p in personas
    }
    config = RunConfig(
        run_id="demo-simulate",
        agent="gold-reference",
        environment="tau-airline",
        max_turns=12,
        trials=2,
        concurrency=8,
        progress=False,
    )
    summary = await simulate(
        config,
        personas,
        gold_agent(tasks),
        store=store,
        user_factory=make_user_factory("scripted"),
        environment=AirlineEnvironment,
    )
    checks = OutcomeChecks()
    passed = 0
    results = list(store.results("demo-simulate"))
    for r in results:
        outcome = [s for s in await checks.grade(r.conversation) if s.name == "outcome"]
        passed += bool(outcome and isinstance(outcome[0], Score) and outcome[0].value is True)
    path = result.out / "simulated.jsonl"
    store.export_jsonl("results", path, run_id="demo-simulate")
    result.files["simulated"] = path
    result.numbers["simulated"] = {"conversations": len(results), "passed": passed}
    ends = ", ".join(f"{k} {v}" for k, v in sorted(summary.terminations.items()))
    result.say(
        f"4. simulated {len(personas)} personas x 2 trials with scripted users against a "
        f"reference agent on the airline tools: {passed}/{len(results)} passed their outcome "
        f"checks ({ends}) -> {path}"
    )


async def _replay(result: DemoResult, store: Any, recordings: list[Conversation]) -> None:
    from .envs import AirlineEnvironment
    from .replay import ReplayOptions, replay, report_of
    from .reports import divergence_counts, replay_html
    from .runner import RunConfig

    config = RunConfig(
        run_id="demo-replay", kind="replay", agent="changed", concurrency=16, progress=False
    )
    await replay(
        config,
        recordings,
        changed_agent(recordings),
        store=store,
        options=ReplayOptions(policy="live", environment=AirlineEnvironment),
    )
    reports = [rep for r in store.results("demo-replay") if (rep := report_of(r)) is not None]
    html = result.out / "replay.html"
    html.write_text(
        replay_html(reports, title="Replay: recorded conversations vs the changed agent")
    )
    result.files["replay_html"] = html
    counts = divergence_counts(reports)
    diverged = sum(v for k, v in counts.items() if k != "none")
    result.numbers["replay"] = {
        "replayed": len(reports),
        "diverged": diverged,
        "first_divergence": counts,
    }
    kinds = ", ".join(f"{k} {v}" for k, v in counts.items() if k != "none")
    result.say(
        f"5. replayed {len(reports)} recordings against a changed agent (write calls downgrade "
        f"the cabin): {diverged} diverged ({kinds}) -> {html}"
    )


def _drift(
    result: DemoResult, scores: list[Score], recordings: list[Conversation]
) -> dict[str, list[Score]]:
    """Two weekly windows resampled from the graded data; week 2 has a documented change.

    The injected change: in week 2, conversations about cancellations ("intent" =
    cancel) lose their goal completion one time in three (a simulated prompt
    regression) and the agent's tone drops by one level for them. Nothing else changes.
    Each resampled conversation is a new one, by one of 800 returning users (the 50
    recorded tasks' users would make every copy of a task one user's).
    """
    rng = random.Random(7)
    intents = {c.id: _intent(c) for c in recordings}
    by_conv: dict[str, list[Score]] = {}
    for s in scores:
        by_conv.setdefault(s.conversation_id, []).append(s)
    ids = sorted(by_conv)
    windows: dict[str, list[Score]] = {"2026-W47": [], "2026-W48": []}
    for label, n in (("2026-W47", 1200), ("2026-W48", 1200)):
        for k in range(n):
            source = rng.choice(ids)
            conv_id = f"{label}-{k:05d}"
            broken = label == "2026-W48" and intents[source] == "cancel" and rng.random() < 1 / 3
            user = f"demo-user-{rng.randrange(800)}"
            for s in by_conv[source]:
                windows[label].append(_resampled(s, conv_id, label, intents[source], broken, user))
    paths = {}
    for label, window in windows.items():
        path = result.out / f"window-{label}.jsonl"
        write_jsonl(path, window)
        paths[label] = path
    result.files.update({f"window_{k}": v for k, v in paths.items()})
    result.numbers["windows"] = {k: len({s.conversation_id for s in v}) for k, v in windows.items()}

    from ._assets import shipped
    from .graders import load_rubrics
    from .reports.drift import drift_html
    from .stats.drift import Window, compare_windows, min_effects_from_rubrics

    report = compare_windows(
        Window.from_scores(windows["2026-W47"], "2026-W47"),
        Window.from_scores(windows["2026-W48"], "2026-W48"),
        by=("intent",),
        min_effects=min_effects_from_rubrics(load_rubrics(shipped("rubrics"))),
    )
    html, js, md = (result.out / f"drift.{ext}" for ext in ("html", "json", "md"))
    html.write_text(drift_html(report), encoding="utf-8")
    js.write_text(report.to_json(), encoding="utf-8")
    md.write_text(report.to_markdown(), encoding="utf-8")
    result.files.update(drift_html=html, drift_json=js, drift_md=md)
    alarms = [f"{a.metric} ({a.cohort_label})" for a in report.alarms]
    result.numbers["drift_alarms"] = alarms
    result.say(
        "6. compared two weekly windows of 1,200 conversations (resampled from the graded data; "
        "week 2 has an injected regression on cancellations): "
        f"{len(alarms)} alarm(s): {', '.join(alarms) or 'none'} -> {html}"
    )
    return windows


def _intent(conversation: Conversation) -> str:
    task = conversation.metadata.get("task")
    actions = task.get("actions") if isinstance(task, dict) else None
    names = (
        [a.get("name", "") for a in actions if isinstance(a, dict)]
        if isinstance(actions, list)
        else []
    )
    for prefix, intent in (("cancel", "cancel"), ("book", "book"), ("update", "change")):
        if any(str(n).startswith(prefix) for n in names):
            return intent
    return "other"


def _resampled(s: Score, conv_id: str, window: str, intent: str, broken: bool, user: str) -> Score:
    value: bool | float | str = s.value
    if broken and s.name in ("rubric.goal_completion", "outcome"):
        value = False
    if broken and s.name == "rubric.tone" and isinstance(value, float):
        value = max(1.0, value - 1.0)
    return s.model_copy(
        update={
            "conversation_id": conv_id,
            "window": window,
            "user_id": user,
            "value": value,
            "tags": {**s.tags, "intent": intent},
            "details": {**s.details, "source_conversation": s.conversation_id},
        }
    )


def _harvest(result: DemoResult, store: Any, windows: dict[str, list[Score]]) -> None:
    from .harvest import apply_decisions, fill_review_queue, harvest

    week = windows["2026-W48"]
    conv_ids = sorted({s.conversation_id for s in week})
    recordings = {c.id: c for c in read_tau_bench(tau_airline_runs(), report=ReadReport(file="x"))}
    # Each resampled conversation stands for its source recording; rebuild it under its id.
    source: dict[str, Score] = {}
    for s in week:
        source.setdefault(s.conversation_id, s)
    convs = []
    for cid in conv_ids:
        origin = _origin(source[cid], recordings)
        if origin is not None:
            convs.append(origin.model_copy(update={"id": cid}))
    queued = fill_review_queue(store, "2026-W48", convs, week, limit=10, score_name="rubric.tone")
    first = store.review_items("2026-W48", "pending")[0]
    apply_decisions(
        store,
        [{"id": first["id"], "decision": "confirm", "label": "demo-confirmed"}],
        reviewer="demo",
    )
    dataset = result.out / "dataset.jsonl"
    dataset.unlink(missing_ok=True)
    added, _ = harvest(store, dataset, window="2026-W48")
    result.files["dataset"] = dataset
    result.numbers["review"] = {"queued": queued, "harvested": added}
    result.say(
        f"7. queued the {queued} worst conversations of week 2 for review, confirmed one, "
        f"harvested {added} case into {dataset}"
    )


def _origin(score: Score, recordings: dict[str, Conversation]) -> Conversation | None:
    ref = score.details.get("source_conversation") if score.details else None
    if isinstance(ref, str):
        return recordings.get(ref)
    return None
