"""Agents under test: a Protocol and adapters for callables, HTTP endpoints and models."""

from ._base import END_CONVERSATION, Agent, AgentContext, as_assistant_message
from ._spec import AgentFile, agent_files, load_agent
from .function import FunctionAgent
from .http import HttpAgent
from .litellm import LiteLLMAgent
from .scripted import ScriptedAgent

__all__ = [
    "END_CONVERSATION",
    "Agent",
    "AgentContext",
    "AgentFile",
    "FunctionAgent",
    "HttpAgent",
    "LiteLLMAgent",
    "ScriptedAgent",
    "agent_files",
    "as_assistant_message",
    "load_agent",
]
