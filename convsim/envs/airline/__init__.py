"""tau-bench's airline domain: its database, tools, test tasks and reward check.

:class:`AirlineEnvironment` holds the airline database and the 14 tools tau-bench's
agents use, with the same schemas and the same result text, so recorded tau-bench
conversations replay exactly. The grading functions recompute tau-bench's reward: the
state after the agent's tool calls must equal the state after the task's ground-truth
actions, and the agent must have said every required output.
"""

from ._data import airline_db_path, airline_tasks_path, load_airline_db, load_airline_tasks
from ._env import AirlineEnvironment
from ._grading import (
    RESPOND_ACTION,
    STOP_MARKER,
    TauBenchReward,
    action_calls,
    agent_replies,
    episode_ended,
    expected_state_hash,
    outputs_found,
    replay_actions,
    replay_calls,
    tau_bench_reward,
)
from ._tools import TOOL_NAMES

__all__ = [
    "RESPOND_ACTION",
    "STOP_MARKER",
    "TOOL_NAMES",
    "AirlineEnvironment",
    "TauBenchReward",
    "action_calls",
    "agent_replies",
    "airline_db_path",
    "airline_tasks_path",
    "episode_ended",
    "expected_state_hash",
    "load_airline_db",
    "load_airline_tasks",
    "outputs_found",
    "replay_actions",
    "replay_calls",
    "tau_bench_reward",
]
