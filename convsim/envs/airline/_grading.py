"""tau-bench's airline reward, recomputed from a conversation.

tau-bench gives reward 1 when the episode ended (the user simulator wrote ``###STOP###``
or the agent transferred to a human), the database after the agent's tool calls equals
the database after the task's ground-truth actions, and every required output string
appears in one of the agent's replies. These functions compute each part from convsim
types so they can be used as graders.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import ConfigError
from ...tools import ToolEnvironment, Toolset
from ...trace import AssistantMessage, Conversation, ToolCall, ToolMessage, UserMessage
from ._env import AirlineEnvironment

STOP_MARKER = "###STOP###"
"""What tau-bench's user simulator writes to end the conversation."""

RESPOND_ACTION = "respond"
"""tau-bench's name for an agent reply (not a tool call) in a task's action list."""


async def replay_calls(env: ToolEnvironment, calls: Iterable[ToolCall]) -> list[ToolMessage]:
    """Run ``calls`` in order on ``env``'s tools and return one result per call.

    Invalid calls and tool failures come back as error results, as they would to the
    agent; ``env`` is left in the state the calls produce.
    """
    return await Toolset(env.tools()).call_all(calls)


def action_calls(actions: Iterable[Mapping[str, Any]]) -> list[ToolCall]:
    """Ground-truth actions (``{"name", "kwargs"}``, as in tau-bench tasks) as tool calls.

    tau-bench's ``respond`` actions are replies, not tool calls, and are left out.
    """
    calls = []
    for i, action in enumerate(actions):
        name, kwargs = action.get("name"), action.get("kwargs", {})
        if not isinstance(name, str) or not isinstance(kwargs, dict):
            raise ConfigError(f"action {i}: expected {{name: string, kwargs: object}}")
        if name != RESPOND_ACTION:
            calls.append(ToolCall(id=f"action-{i}", name=name, arguments=kwargs))
    return calls


async def replay_actions(
    env: ToolEnvironment, actions: Iterable[Mapping[str, Any]], *, skip_terminal: bool = True
) -> list[ToolMessage]:
    """Run a task's ground-truth actions on ``env``, as tau-bench does to grade.

    Args:
        env: The environment to change, normally in its initial state.
        actions: ``{"name", "kwargs"}`` objects, in order.
        skip_terminal: Leave out calls of terminal tools (``transfer_to_human_agents``),
            which tau-bench does not replay.

    Returns:
        One result per action replayed.
    """
    toolset = Toolset(env.tools())
    calls = [
        c for c in action_calls(actions) if not (skip_terminal and toolset.is_terminal(c.name))
    ]
    return await toolset.call_all(calls)


async def expected_state_hash(
    actions: Iterable[Mapping[str, Any]], env: ToolEnvironment | None = None
) -> str:
    """The state hash after a task's ground-truth actions, starting from the initial state.

    Args:
        actions: The task's ``{"name", "kwargs"}`` actions.
        env: The environment to use; it is reset first. Defaults to a new
            :class:`AirlineEnvironment` on the bundled database.
    """
    if env is None:
        env = AirlineEnvironment()
    else:
        env.reset()
    await replay_actions(env, actions)
    return env.state_hash()


def agent_replies(conversation: Conversation) -> list[str]:
    """The text of the agent's replies: assistant messages that call no tool.

    tau-bench's agent takes an assistant message with a tool call as that call, so text
    next to a call was never a reply.
    """
    return [
        m.text
        for m in conversation.messages
        if isinstance(m, AssistantMessage) and not m.tool_calls
    ]


def outputs_found(conversation: Conversation, outputs: Iterable[str]) -> dict[str, bool]:
    """For each required output, whether some agent reply contains it.

    As in tau-bench, the comparison ignores case and the reply's commas, so ``"1000"``
    is found in ``"$1,000"``.
    """
    replies = [r.lower().replace(",", "") for r in agent_replies(conversation)]
    return {o: any(o.lower() in r for r in replies) for o in outputs}


def episode_ended(
    conversation: Conversation,
    terminal_tools: Collection[str] = ("transfer_to_human_agents",),
) -> bool:
    """Whether the conversation ended as tau-bench ends one, not by running out of steps.

    It ends when the user writes ``###STOP###`` or the agent calls a terminal tool;
    tau-bench grades only such episodes (a truncated one keeps reward 0).
    """
    if any(c.name in terminal_tools for c in conversation.tool_calls()):
        return True
    return any(isinstance(m, UserMessage) and STOP_MARKER in m.text for m in conversation.messages)


@dataclass(frozen=True, slots=True)
class TauBenchReward:
    """tau-bench's reward for one conversation, with its parts."""

    reward: float
    """1.0 when the episode ended, the state matches and every output was found; else 0.0."""
    ended: bool
    """The episode ended normally (see :func:`episode_ended`)."""
    state_matches: bool
    """The state after the agent's calls equals the state after the ground-truth actions."""
    outputs: dict[str, bool]
    """Each required output and whether an agent reply contains it."""
    state_hash: str
    """Hash of the state after the agent's calls."""
    expected_state_hash: str
    """Hash of the state after the ground-truth actions."""


async def tau_bench_reward(
    conversation: Conversation,
    task: Mapping[str, Any] | None = None,
    *,
    env_factory: Callable[[], ToolEnvironment] = AirlineEnvironment,
) -> TauBenchReward:
    """Recompute tau-bench's reward for a conversation from its tool calls and replies.

    Args:
        conversation: The conversation, with the agent's tool calls.
        task: The tau-bench task (``actions`` and ``outputs``). Defaults to
            ``conversation.metadata["task"]``, where the tau-bench importer keeps it.
        env_factory: Makes a fresh environment in the initial state; called twice.

    Raises:
        ConfigError: No task was given and the conversation carries none.
    """
    if task is None:
        found = conversation.metadata.get("task")
        if not isinstance(found, dict):
            raise ConfigError(
                f"conversation {conversation.id!r} has no tau-bench task in its metadata"
            )
        task = found
    raw_actions, outputs = task.get("actions", []), task.get("outputs", [])
    if not isinstance(raw_actions, list) or not isinstance(outputs, list):
        raise ConfigError("a tau-bench task's actions and outputs must be lists")
    actions = [a for a in raw_actions if isinstance(a, dict)]
    if len(actions) != len(raw_actions):
        raise ConfigError("each of a tau-bench task's actions must be an object")
    agent_env = env_factory()
    await replay_calls(agent_env, conversation.tool_calls())
    got = agent_env.state_hash()
    expected = await expected_state_hash(actions, env_factory())
    found_outputs = outputs_found(conversation, [str(o) for o in outputs])
    ended = episode_ended(conversation)
    success = ended and got == expected and all(found_outputs.values())
    return TauBenchReward(
        reward=1.0 if success else 0.0,
        ended=ended,
        state_matches=got == expected,
        outputs=found_outputs,
        state_hash=got,
        expected_state_hash=expected,
    )
