"""convsim: simulate, replay and grade whole LLM-agent conversations.

The names below are imported lazily, on first use, so ``import convsim`` (and the pytest
plugin, which every pytest session of every user loads) costs almost nothing. The
subpackages (``convsim.trace``, ``convsim.agents``, ``convsim.graders``, ...) hold the
rest of the public API.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._llm import LiteLLMClient, ModelClient, ModelRequest, ModelResult
    from .agents import Agent, AgentContext, FunctionAgent, HttpAgent, LiteLLMAgent, ScriptedAgent
    from .datasets import EvalCase, JsonlReader, ReadReport, read_conversations, write_jsonl
    from .errors import ConfigError, ConvsimError, TraceImportError
    from .graders import Grader, OutcomeChecks, Rubric, RubricJudge
    from .session import SessionConfig, SessionResult, TerminationReason, run_session
    from .store import SQLiteStore, store_writer
    from .tools import Tool, ToolEnvironment, Toolset, tool
    from .trace import (
        AssistantMessage,
        Conversation,
        Score,
        ScoreFailure,
        SystemMessage,
        ToolCall,
        ToolMessage,
        Turn,
        UserMessage,
    )
    from .users import LLMUser, Persona, ScriptedUser

_LAZY: dict[str, str] = {
    "LiteLLMClient": "._llm",
    "ModelClient": "._llm",
    "ModelRequest": "._llm",
    "ModelResult": "._llm",
    "Agent": ".agents",
    "AgentContext": ".agents",
    "FunctionAgent": ".agents",
    "HttpAgent": ".agents",
    "LiteLLMAgent": ".agents",
    "ScriptedAgent": ".agents",
    "EvalCase": ".datasets",
    "JsonlReader": ".datasets",
    "ReadReport": ".datasets",
    "read_conversations": ".datasets",
    "write_jsonl": ".datasets",
    "ConfigError": ".errors",
    "ConvsimError": ".errors",
    "TraceImportError": ".errors",
    "Grader": ".graders",
    "OutcomeChecks": ".graders",
    "Rubric": ".graders",
    "RubricJudge": ".graders",
    "SessionConfig": ".session",
    "SessionResult": ".session",
    "TerminationReason": ".session",
    "run_session": ".session",
    "SQLiteStore": ".store",
    "store_writer": ".store",
    "Tool": ".tools",
    "ToolEnvironment": ".tools",
    "Toolset": ".tools",
    "tool": ".tools",
    "AssistantMessage": ".trace",
    "Conversation": ".trace",
    "Score": ".trace",
    "ScoreFailure": ".trace",
    "SystemMessage": ".trace",
    "ToolCall": ".trace",
    "ToolMessage": ".trace",
    "Turn": ".trace",
    "UserMessage": ".trace",
    "LLMUser": ".users",
    "Persona": ".users",
    "ScriptedUser": ".users",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'convsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "Agent",
    "AgentContext",
    "AssistantMessage",
    "ConfigError",
    "Conversation",
    "ConvsimError",
    "EvalCase",
    "FunctionAgent",
    "Grader",
    "HttpAgent",
    "JsonlReader",
    "LLMUser",
    "LiteLLMAgent",
    "LiteLLMClient",
    "ModelClient",
    "ModelRequest",
    "ModelResult",
    "OutcomeChecks",
    "Persona",
    "ReadReport",
    "Rubric",
    "RubricJudge",
    "SQLiteStore",
    "Score",
    "ScoreFailure",
    "ScriptedAgent",
    "ScriptedUser",
    "SessionConfig",
    "SessionResult",
    "SystemMessage",
    "TerminationReason",
    "Tool",
    "ToolCall",
    "ToolEnvironment",
    "ToolMessage",
    "Toolset",
    "TraceImportError",
    "Turn",
    "UserMessage",
    "__version__",
    "read_conversations",
    "run_session",
    "store_writer",
    "tool",
    "write_jsonl",
]
