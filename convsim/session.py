"""One conversation: user ⇄ agent ⇄ tools until a termination reason is reached."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import anyio
from pydantic import JsonValue

from .agents import END_CONVERSATION, Agent, AgentContext
from .calls import redact_secrets
from .errors import InfrastructureFailure
from .store import ErrorInfo
from .tools import Toolset
from .trace import (
    AssistantMessage,
    Conversation,
    Message,
    Provenance,
    SystemMessage,
    Usage,
    UserMessage,
    UserSignals,
    add_usage,
)
from .users import Persona, UserModel, void_reason


class TerminationReason(StrEnum):
    """Why a conversation ended."""

    USER_STOP = "user_stop"
    """The simulated user ended it (goal met, gave up, script finished)."""
    AGENT_STOP = "agent_stop"
    """The agent ended it."""
    AGENT_TRANSFER = "agent_transfer"
    """The agent called a terminal tool, e.g. a transfer to a human."""
    MAX_TURNS = "max_turns"
    """The user-turn limit was reached."""
    TIMEOUT = "timeout"
    """The conversation's time limit was reached."""
    AGENT_ERROR = "agent_error"
    """The agent raised, returned something invalid, or looped without answering."""
    SIMULATOR_ERROR = "simulator_error"
    """The user model failed (invalid output after a re-ask, or a permanent error)."""
    INFRASTRUCTURE_ERROR = "infrastructure_error"
    """A provider stayed unavailable after every retry."""
    VOIDED = "voided"
    """A simulator self-check failed; the run says nothing about the agent."""
    DIVERGED = "diverged"
    """Replay: the candidate left the recording and the divergence policy is ``fail``."""

    @property
    def counts_for_agent(self) -> bool:
        """False for endings that say nothing about the agent (excluded from pass rates)."""
        return self not in (
            TerminationReason.SIMULATOR_ERROR,
            TerminationReason.INFRASTRUCTURE_ERROR,
            TerminationReason.VOIDED,
        )


@dataclass(slots=True)
class SessionConfig:
    """Limits and options for one conversation."""

    max_turns: int = 10
    """User turns before the conversation is cut off."""
    max_agent_steps: int = 25
    """Agent messages allowed in a row without handing the turn back to the user."""
    call_timeout: float | None = 120.0
    """Seconds allowed for one agent or user-model call, its retries included. Each attempt
    has its own, shorter limit (``ATTEMPT_TIMEOUT_S``, 45 s), so a hung attempt is retried
    within this budget."""
    conversation_timeout: float | None = 900.0
    """Seconds allowed for the whole conversation."""
    self_checks: bool = True
    """Run the simulator self-checks on every user turn."""
    record_timing: bool = True
    """Record timestamps and latencies; off for byte-identical replays."""


@dataclass(slots=True)
class SessionResult:
    """A finished conversation and how it ended."""

    conversation: Conversation
    """The transcript."""
    termination: TerminationReason
    """Why it ended."""
    error: ErrorInfo | None = None
    """Details for error and voided endings."""
    usage: dict[str, Usage] = field(default_factory=dict)
    """Tokens and cost by party (``agent``, ``user``)."""
    duration_s: float = 0.0
    """Wall time."""


class EndConversation(Exception):
    """Raise from a tool (or a toolset) to end the conversation with a given reason.

    Replay raises it when the candidate agent diverges under the ``fail`` policy.
    """

    def __init__(self, reason: TerminationReason, error: ErrorInfo | None = None) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.error = error


async def run_session(
    agent: Agent,
    user: UserModel,
    *,
    conversation_id: str,
    toolset: Toolset | None = None,
    config: SessionConfig | None = None,
    persona: Persona | None = None,
    system_prompt: str | None = None,
    prefix: Sequence[Message] = (),
    case_id: str = "",
    trial: int = 0,
    seed: int = 0,
    tags: dict[str, str] | None = None,
    metadata: dict[str, JsonValue] | None = None,
) -> SessionResult:
    """Run one conversation to its end and return the transcript and the reason.

    Failures inside the conversation never raise: they end it with an error reason and
    the transcript so far. Only cancellation propagates.
    """
    cfg = config or SessionConfig()
    tools = toolset or Toolset([])
    context = AgentContext(tools=tools.openai_schemas(), seed=seed, case_id=case_id, trial=trial)
    messages: list[Message] = list(prefix)
    prompt = system_prompt or getattr(agent, "system_prompt", None)
    if prompt and not any(isinstance(m, SystemMessage) for m in messages):
        messages.insert(0, SystemMessage(content=prompt))
    usage: dict[str, Usage] = {}
    started = time.perf_counter()
    outcome = EndConversation(
        TerminationReason.TIMEOUT, ErrorInfo(type="timeout", message="conversation time limit")
    )
    with anyio.move_on_after(cfg.conversation_timeout):
        try:
            await _converse(
                agent, user, tools, context, cfg, messages, usage, persona, seed, conversation_id
            )
        except EndConversation as e:
            outcome = e
    conversation = Conversation(
        id=conversation_id,
        messages=messages,
        tags=dict(tags or {}),
        metadata={"case_id": case_id, "trial": trial, "seed": seed, **(metadata or {})},
        provenance=Provenance(source_format="simulated", source_ids=[case_id] if case_id else []),
    )
    return SessionResult(
        conversation=conversation,
        termination=outcome.reason,
        error=outcome.error,
        usage=usage,
        duration_s=time.perf_counter() - started,
    )


async def _converse(
    agent: Agent,
    user: UserModel,
    tools: Toolset,
    context: AgentContext,
    cfg: SessionConfig,
    messages: list[Message],
    usage: dict[str, Usage],
    persona: Persona | None,
    seed: int,
    conversation_id: str,
) -> None:
    turns = 0
    while True:
        if turns >= cfg.max_turns:
            raise EndConversation(TerminationReason.MAX_TURNS)
        view = _view(conversation_id, messages)
        turn = await _call(
            user.next_turn(view, seed * 1000 + turns),
            cfg,
            TerminationReason.SIMULATOR_ERROR,
        )
        if turn.usage is not None:
            add_usage(usage.setdefault("user", Usage()), turn.usage)
        if turn.stop:
            if turn.text.strip():
                messages.append(UserMessage(content=turn.text, timestamp=_now(cfg)))
            raise EndConversation(TerminationReason.USER_STOP)
        if cfg.self_checks:
            reason = void_reason(turn.text, persona, view)
            if reason is not None:
                messages.append(UserMessage(content=turn.text, timestamp=_now(cfg)))
                raise EndConversation(
                    TerminationReason.VOIDED, ErrorInfo(type="simulator_check", message=reason)
                )
        messages.append(UserMessage(content=turn.text, timestamp=_now(cfg)))
        turns += 1
        await _agent_turn(agent, tools, context, cfg, messages, usage, conversation_id)


async def _agent_turn(
    agent: Agent,
    tools: Toolset,
    context: AgentContext,
    cfg: SessionConfig,
    messages: list[Message],
    usage: dict[str, Usage],
    conversation_id: str,
) -> None:
    for _ in range(cfg.max_agent_steps):
        view = _view(conversation_id, messages)
        started = time.perf_counter()
        reply = await _call(agent.respond(view, context), cfg, TerminationReason.AGENT_ERROR)
        if not isinstance(reply, AssistantMessage):
            raise EndConversation(
                TerminationReason.AGENT_ERROR,
                ErrorInfo(type="TypeError", message=f"agent returned {type(reply).__name__}"),
            )
        if cfg.record_timing:
            reply.timestamp = _now(cfg)
            reply.latency_ms = reply.latency_ms or round((time.perf_counter() - started) * 1000, 3)
        else:
            reply.timestamp = None
            reply.latency_ms = None
        if reply.usage is not None:
            add_usage(usage.setdefault("agent", Usage()), reply.usage)
        ids = [c.id for c in reply.tool_calls]
        if len(ids) != len(set(ids)):
            raise EndConversation(
                TerminationReason.AGENT_ERROR,
                ErrorInfo(type="invalid_tool_calls", message=f"duplicate tool call ids {ids}"),
            )
        ending = reply.finish_reason == END_CONVERSATION
        if reply.content or reply.tool_calls or not ending:
            messages.append(reply)
        if not reply.tool_calls:
            if ending:
                raise EndConversation(TerminationReason.AGENT_STOP)
            return
        results = await tools.call_all(reply.tool_calls)
        messages.extend(results)
        if any(tools.is_terminal(c.name) for c in reply.tool_calls):
            raise EndConversation(TerminationReason.AGENT_TRANSFER)
        if ending:
            raise EndConversation(TerminationReason.AGENT_STOP)
    raise EndConversation(
        TerminationReason.AGENT_ERROR,
        ErrorInfo(
            type="too_many_steps",
            message=f"the agent took {cfg.max_agent_steps} steps without answering the user",
        ),
    )


async def _call(awaitable: Any, cfg: SessionConfig, failure: TerminationReason) -> Any:
    """Await an agent or user call, turning its failures into an ending."""
    try:
        with anyio.fail_after(cfg.call_timeout):
            return await awaitable
    except TimeoutError:
        raise EndConversation(
            failure, ErrorInfo(type="timeout", message=f"no reply within {cfg.call_timeout:g}s")
        ) from None
    except InfrastructureFailure as e:
        raise EndConversation(
            TerminationReason.INFRASTRUCTURE_ERROR,
            ErrorInfo(type=type(e).__name__, message=redact_secrets(str(e))),
        ) from None
    except Exception as e:
        # User code may raise anything; it is recorded, never allowed to kill the batch.
        # Its message may quote an endpoint URL or a key: both are redacted.
        raise EndConversation(
            failure, ErrorInfo(type=type(e).__name__, message=redact_secrets(str(e))[:2000])
        ) from None


_NO_SIGNALS = UserSignals()


def _view(conversation_id: str, messages: list[Message]) -> Conversation:
    """The conversation so far, for the agent and the user model, without re-validation.

    Every field is given so pydantic computes no defaults: this runs twice per turn of
    every conversation and must stay cheap.
    """
    return Conversation.model_construct(
        schema_version=1,
        id=conversation_id,
        messages=list(messages),
        tags={},
        metadata={},
        signals=_NO_SIGNALS,
        scores=[],
        provenance=None,
    )


def _now(cfg: SessionConfig) -> datetime | None:
    return datetime.now(UTC) if cfg.record_timing else None
