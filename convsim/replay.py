"""Replay captured conversations against a candidate agent, honestly about divergence.

A *cassette* is made from a recorded conversation: its user turns, its tool calls with
their results, and its assistant messages. In ``turns`` mode the recorded user turns are
fed to the candidate one by one; each tool call the candidate makes is answered from the
recording when its name and canonicalised arguments match a recorded call. When a call
matches nothing, the divergence policy decides:

* ``fail``: stop, and record the divergence;
* ``live``: run the call on the real tool environment (kept in step with the recording
  by also applying every matched recorded call to it);
* ``simulate``: run it live, and from then on let a persona-driven user, seeded from the
  recording, continue the conversation instead of the recorded user turns.

Every replayed conversation gets a divergence report: the first diverging turn, its kind
(a different tool, different arguments, different text, an extra or a missing turn), a
similarity for text turns, and a side-by-side diff.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, JsonValue

from .agents import Agent
from .runner import RunConfig, RunSummary, WorkUnit, plan_units, run_units
from .session import EndConversation, SessionConfig, TerminationReason, run_session
from .store import ConversationResult, ErrorInfo, SQLiteStore
from .tools import ToolEnvironment, Toolset
from .trace import (
    AssistantMessage,
    Conversation,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from .users import Persona, UserModel, UserTurn

ReplayMode = Literal["as-is", "turns"]
"""``as-is`` grades the recording itself; ``turns`` re-drives it against a candidate."""

DivergencePolicy = Literal["fail", "live", "simulate"]
"""What to do when the candidate makes a tool call the recording cannot answer."""

DivergenceKind = Literal[
    "different_tool", "different_arguments", "different_text", "extra_turn", "missing_turn"
]
"""How a replayed turn differs from the recorded one."""

STOP_MARKERS = ("###STOP###",)
"""Stop markers recorded user simulators leave in their last message; never replayed."""


# -- argument matching ----------------------------------------------------------------


def canonical_arguments(arguments: dict[str, Any] | None, *, lenient: bool) -> str:
    """A canonical JSON form of tool arguments for matching.

    Strict matching sorts keys and removes whitespace only. Lenient matching also treats
    ``2``, ``2.0`` and ``"2"``-free number formatting alike, and ignores letter case and
    surrounding or repeated whitespace in strings.
    """
    if arguments is None:
        return "<unparsable>"
    return _CANONICAL.encode(_normalise(arguments) if lenient else arguments)


# One encoder for every call: ``json.dumps`` with options builds a new one each time,
# which costs more than encoding a typical argument dict.
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k).lower(): _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        f = float(value)
        return int(f) if math.isfinite(f) and f.is_integer() else round(f, 9)
    if isinstance(value, str):
        return " ".join(value.split()).lower()
    return value


# -- cassettes ------------------------------------------------------------------------


@dataclass(slots=True)
class Cassette:
    """What a recorded conversation offers a replay."""

    conversation: Conversation
    """The recording."""
    system_prompt: str | None
    """The recorded system prompt, given to the candidate unless it brings its own."""
    user_turns: list[str]
    """The recorded user messages up to the one that ended the conversation."""
    closing: str | None
    """Text of the user message that carried a stop marker (marker removed), if any."""
    calls: list[tuple[ToolCall, ToolMessage]]
    """Every recorded tool call with its recorded result, in order."""
    final_tools: frozenset[str]
    """Tools whose call ended the recording by a transfer (nothing but its result followed)."""

    @classmethod
    def from_conversation(cls, conversation: Conversation) -> Cassette:
        """Build a cassette from a recorded conversation."""
        results = conversation.tool_results()
        calls = [(c, results[i]) for i, c in enumerate(conversation.tool_calls()) if i in results]
        system = next((m.text for m in conversation.messages if isinstance(m, SystemMessage)), None)
        turns: list[str] = []
        closing = None
        for m in conversation.messages:
            if isinstance(m, UserMessage):
                text = m.text
                stopped = any(marker in text for marker in STOP_MARKERS)
                for marker in STOP_MARKERS:
                    text = text.replace(marker, "")
                if stopped:
                    # The recorded user ended here; the agent never answered this message.
                    closing = text.strip()
                    break
                if text.strip():
                    turns.append(text.strip())
        last = conversation.messages[-1] if conversation.messages else None
        # Only a recording known to have ended by a transfer marks its last tool as
        # terminal; a recording cut off by a step limit also ends on a tool result.
        transferred = conversation.metadata.get("termination") == "agent_transfer"
        final = frozenset(c.name for c, r in calls if r is last and transferred)
        return cls(
            conversation=conversation,
            system_prompt=system,
            user_turns=turns,
            closing=closing,
            calls=calls,
            final_tools=final,
        )


class ReplayToolset(Toolset):
    """Answers tool calls from a cassette; unmatched calls follow the divergence policy."""

    def __init__(
        self,
        cassette: Cassette,
        *,
        policy: DivergencePolicy,
        lenient: bool,
        environment: ToolEnvironment | None,
        schemas: list[dict[str, Any]] | None = None,
    ) -> None:
        live = Toolset(environment.tools()) if environment is not None else None
        super().__init__(list(live.tools.values()) if live is not None else [])
        self.cassette = cassette
        self.policy = policy
        self.lenient = lenient
        self.live = live
        self._schemas = schemas
        self._used: set[int] = set()
        # Canonical keys of the recorded calls, computed once: every candidate call is
        # compared against them.
        self._keys = [
            (recorded.name, canonical_arguments(recorded.arguments, lenient=lenient))
            for recorded, _ in cassette.calls
        ]
        self.matched = 0
        self.unmatched: list[ToolCall] = []
        self.diverged = False

    def openai_schemas(self) -> list[dict[str, Any]]:
        """The tools the recording was offered, verbatim, else the live environment's.

        The candidate must see what production saw: the recorded definitions (names,
        descriptions, schemas) come first. Without them, a live environment's schemas
        are offered, else the recorded calls' names with an open schema.
        """
        if self._schemas is not None:
            return self._schemas
        recorded = [dict(t.openai()) for t in self.cassette.conversation.tools]
        defined = {t.name for t in self.cassette.conversation.tools}
        if not recorded and self.live is not None:
            return self.live.openai_schemas()
        names = sorted({c.name for c, _ in self.cassette.calls} - defined)
        return recorded + [
            {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
            for n in names
        ]

    def is_terminal(self, name: str) -> bool:
        """Terminal per the live environment, else when the recording ended on this tool."""
        if self.live is not None:
            return self.live.is_terminal(name)
        return name in self.cassette.final_tools

    async def call(self, call: ToolCall) -> ToolMessage:
        """The recorded result of a matching call, else the divergence policy."""
        wanted = (call.name, canonical_arguments(call.arguments, lenient=self.lenient))
        for i, key in enumerate(self._keys):
            if key != wanted or i in self._used:
                continue
            result = self.cassette.calls[i][1]
            self._used.add(i)
            self.matched += 1
            if self.live is not None:
                # Keep the live environment in step, so a later unmatched call sees the
                # state the recording had reached: replay includes tool side effects.
                await self.live.call(call)
            return result.model_copy(update={"tool_call_id": call.id})
        self.unmatched.append(call)
        self.diverged = True
        if self.policy == "fail" or self.live is None:
            why = "no live environment to run it on" if self.policy != "fail" else "policy fail"
            raise EndConversation(
                TerminationReason.DIVERGED,
                ErrorInfo(
                    type="unmatched_tool_call",
                    message=f"{call.name}({call.arguments_json()}) matches no recorded call "
                    f"({why})",
                ),
            )
        return await self.live.call(call)


class ReplayUser:
    """Says the recorded user turns; after a divergence under ``simulate``, a persona does."""

    def __init__(
        self,
        cassette: Cassette,
        toolset: ReplayToolset,
        fallback: UserModel | None,
    ) -> None:
        self.cassette = cassette
        self.toolset = toolset
        self.fallback = fallback

    async def next_turn(self, conversation: Conversation, seed: int) -> UserTurn:
        """The next recorded turn, or the simulated user's once the replay has diverged."""
        if self.toolset.diverged and self.fallback is not None:
            return await self.fallback.next_turn(conversation, seed)
        said = sum(1 for m in conversation.messages if isinstance(m, UserMessage))
        if said >= len(self.cassette.user_turns):
            return UserTurn(
                text=self.cassette.closing or "", stop=True, reason="recorded turns finished"
            )
        return UserTurn(text=self.cassette.user_turns[said])


def persona_from_recording(conversation: Conversation) -> Persona:
    """A persona seeded deterministically from a recording's metadata and user turns.

    The goal comes from a task instruction in the metadata when there is one (tau-bench
    keeps it under ``task.instruction``), else from the first user message; known facts
    are the metadata's ``user_id`` and the ids the user stated.
    """
    meta = conversation.metadata
    task = meta.get("task")
    goal = None
    known: dict[str, str] = {}
    if isinstance(task, dict):
        instruction = task.get("instruction")
        goal = instruction if isinstance(instruction, str) else None
        user_id = task.get("user_id")
        if isinstance(user_id, str):
            known["user_id"] = user_id
    users = [m.text for m in conversation.messages if isinstance(m, UserMessage)]
    if goal is None:
        goal = users[0] if users else "Get help with your request."
    return Persona(
        name=f"replay-{abs(hash(conversation.id)) % 10**8:08d}",
        goal=goal,
        known_facts=known,
        scripted_turns=[u for u in users if u.strip()],
    )


# -- divergence report ----------------------------------------------------------------


class Divergence(BaseModel):
    """One way a replayed turn differs from the recorded one."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    turn: int
    """0-based turn (user message) index."""
    kind: DivergenceKind
    """How it differs."""
    expected: str
    """What the recording has (tool call, or text)."""
    actual: str
    """What the candidate did."""
    similarity: float | None = None
    """Text similarity in [0, 1] for text turns."""


class ReplayReport(BaseModel):
    """Divergence report for one replayed conversation."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    conversation_id: str
    """The recording's id."""
    first: Divergence | None = None
    """The first divergence, or None when the candidate followed the recording."""
    divergences: list[Divergence] = []
    """Every divergence, in turn order."""
    matched_calls: int = 0
    """Candidate tool calls answered from the recording."""
    unmatched_calls: int = 0
    """Candidate tool calls the recording could not answer."""
    text_similarity: float | None = None
    """Mean similarity of the candidate's replies to the recorded ones."""


def _turn_actions(conversation: Conversation) -> list[tuple[list[str], str]]:
    """Per turn: the agent's tool calls (``name(args)``) and its final reply text.

    Trailing turns where the agent did nothing (the user's closing message) are left
    out: they carry nothing to compare.
    """
    # One pass over the messages, as this runs for both sides of every replayed
    # conversation. A user message opens a turn; messages before the first one belong
    # to no turn, as in Conversation.turns().
    out: list[tuple[list[str], str]] = []
    calls: list[str] = []
    reply = ""
    started = False
    for m in conversation.messages:
        if isinstance(m, UserMessage):
            if started:
                out.append((calls, reply))
            started = True
            calls, reply = [], ""
        elif started and isinstance(m, AssistantMessage):
            if m.tool_calls:
                calls.extend(
                    f"{c.name}({canonical_arguments(c.arguments, lenient=False)})"
                    for c in m.tool_calls
                )
            else:
                text = m.content if m.parts is None else m.text
                if text:
                    reply = text
    if started:
        out.append((calls, reply))
    while out and out[-1] == ([], ""):
        out.pop()
    return out


def compare(
    recorded: Conversation, replayed: Conversation, *, text_threshold: float = 1.0
) -> ReplayReport:
    """Align the two conversations turn by turn and list how they differ.

    Tool calls are compared by name, then arguments; reply text by similarity (a
    difference is reported when similarity is below ``text_threshold``, default: any
    difference at all).
    """
    rec, rep = _turn_actions(recorded), _turn_actions(replayed)
    found: list[Divergence] = []
    sims: list[float] = []
    for t in range(max(len(rec), len(rep))):
        if t >= len(rep):
            found.append(Divergence(turn=t, kind="missing_turn", expected=_show(rec[t]), actual=""))
            continue
        if t >= len(rec):
            found.append(Divergence(turn=t, kind="extra_turn", expected="", actual=_show(rep[t])))
            continue
        (rcalls, rtext), (pcalls, ptext) = rec[t], rep[t]
        call_div = _first_call_difference(rcalls, pcalls)
        if call_div is not None:
            kind, expected, actual = call_div
            found.append(Divergence(turn=t, kind=kind, expected=expected, actual=actual))
        sim = 1.0 if rtext == ptext else difflib.SequenceMatcher(None, rtext, ptext).ratio()
        sims.append(sim)
        if sim < text_threshold:
            found.append(
                Divergence(
                    turn=t,
                    kind="different_text",
                    expected=rtext,
                    actual=ptext,
                    similarity=round(sim, 4),
                )
            )
    return ReplayReport(
        conversation_id=recorded.id,
        first=found[0] if found else None,
        divergences=found,
        text_similarity=round(sum(sims) / len(sims), 4) if sims else None,
    )


def _first_call_difference(
    recorded: list[str], replayed: list[str]
) -> tuple[DivergenceKind, str, str] | None:
    for i in range(max(len(recorded), len(replayed))):
        r = recorded[i] if i < len(recorded) else ""
        p = replayed[i] if i < len(replayed) else ""
        if r == p:
            continue
        if not r or not p or r.split("(", 1)[0] != p.split("(", 1)[0]:
            return "different_tool", r, p
        return "different_arguments", r, p
    return None


def _show(action: tuple[list[str], str]) -> str:
    calls, text = action
    return "; ".join([*calls, text] if text else calls)


def report_of(result: ConversationResult) -> ReplayReport | None:
    """The divergence report stored with a replayed result (None for as-is replays)."""
    found = result.conversation.metadata.get("replay")
    if isinstance(found, dict) and "conversation_id" in found:
        return ReplayReport.model_validate(found)
    return None


def side_by_side(report: ReplayReport, width: int = 60) -> str:
    """A plain-text side-by-side view of every divergence (for the terminal)."""
    lines = [
        f"{report.conversation_id}: "
        + (
            "no divergence"
            if report.first is None
            else f"first divergence at turn {report.first.turn} ({report.first.kind})"
        )
    ]
    for d in report.divergences:
        lines.append(
            f"  turn {d.turn}: {d.kind}"
            + (f" (similarity {d.similarity})" if d.similarity is not None else "")
        )
        left = _wrap(d.expected or "(nothing)", width)
        right = _wrap(d.actual or "(nothing)", width)
        lines.append(f"    {'recorded':<{width}} | candidate")
        for i in range(max(len(left), len(right))):
            a = left[i] if i < len(left) else ""
            b = right[i] if i < len(right) else ""
            lines.append(f"    {a:<{width}} | {b}")
    return "\n".join(lines)


def _wrap(text: str, width: int) -> list[str]:
    out: list[str] = []
    for para in text.splitlines() or [""]:
        while len(para) > width:
            out.append(para[:width])
            para = para[width:]
        out.append(para)
    return out[:12] + (["..."] if len(out) > 12 else [])


# -- running --------------------------------------------------------------------------


@dataclass(slots=True)
class ReplayOptions:
    """How to replay."""

    mode: ReplayMode = "turns"
    """``turns`` or ``as-is``."""
    policy: DivergencePolicy = "fail"
    """What to do on an unmatched tool call."""
    lenient: bool = True
    """Lenient argument matching."""
    environment: Callable[[], ToolEnvironment] | None = None
    """Live tool environment for the ``live`` and ``simulate`` policies."""
    user_factory: Callable[[Persona], UserModel] | None = None
    """Simulated user for the ``simulate`` policy."""
    max_turns: int = 50
    """Safety cap on user turns (the recording sets the real length)."""
    extra: dict[str, JsonValue] = field(default_factory=dict)
    """Anything else recorded in the run config."""


async def replay(
    config: RunConfig,
    recordings: Sequence[Conversation],
    agent: Agent | None,
    *,
    store: SQLiteStore,
    options: ReplayOptions,
    resume: bool = False,
) -> RunSummary:
    """Replay every recording ``config.trials`` times through the simulation runner.

    Results are stored like simulation results; each conversation's metadata carries its
    divergence report under ``replay``. Timing is not recorded, so the same inputs and
    seed give byte-identical results.
    """
    by_id = {c.id: c for c in recordings}
    session_config = SessionConfig(
        max_turns=options.max_turns,
        # Recordings set the pace; a recorded agent may take many tool steps in one turn.
        max_agent_steps=100,
        call_timeout=config.call_timeout,
        conversation_timeout=config.conversation_timeout,
        self_checks=options.policy == "simulate",
        record_timing=False,
    )

    async def execute(unit: WorkUnit) -> ConversationResult:
        recording = by_id[unit.case_id]
        if options.mode == "as-is" or agent is None:
            conv = recording.model_copy(deep=True)
            conv.metadata["replay"] = {"mode": "as-is"}
            termination = str(recording.metadata.get("termination", "recorded"))
            return ConversationResult(
                run_id=config.run_id,
                case_id=unit.case_id,
                trial=unit.trial,
                seed=unit.seed,
                termination=termination,
                conversation=conv,
            )
        cassette = Cassette.from_conversation(recording)
        env = options.environment() if options.environment is not None else None
        toolset = ReplayToolset(
            cassette, policy=options.policy, lenient=options.lenient, environment=env
        )
        fallback = None
        if options.policy == "simulate":
            if options.user_factory is None:
                raise ValueError("the simulate policy needs a user factory")
            fallback = options.user_factory(persona_from_recording(recording))
        session = await run_session(
            agent,
            ReplayUser(cassette, toolset, fallback),
            conversation_id=f"{recording.id}#replay{unit.trial}",
            toolset=toolset,
            config=session_config,
            system_prompt=None if getattr(agent, "system_prompt", None) else cassette.system_prompt,
            case_id=unit.case_id,
            trial=unit.trial,
            seed=unit.seed,
            tags=dict(recording.tags),
            metadata={k: v for k, v in recording.metadata.items() if k in ("expectations", "task")},
        )
        conv = session.conversation
        conv.tools = list(recording.tools)
        report = compare(recording, conv)
        report.matched_calls = toolset.matched
        report.unmatched_calls = len(toolset.unmatched)
        conv.metadata["termination"] = session.termination.value
        conv.metadata["replay"] = report.model_dump(mode="json")
        return ConversationResult(
            run_id=config.run_id,
            case_id=unit.case_id,
            trial=unit.trial,
            seed=unit.seed,
            termination=session.termination.value,
            error=session.error,
            conversation=conv,
            usage=session.usage,
        )

    units = plan_units(list(by_id), config.trials, config.seed)
    return await run_units(config, units, execute, store=store, resume=resume)
