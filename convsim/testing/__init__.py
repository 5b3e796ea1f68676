"""Test doubles that ship with convsim: a loopback OpenAI-compatible server and friends.

The agent and user doubles live with their kind (``convsim.agents.FunctionAgent``,
``convsim.agents.ScriptedAgent``, ``convsim.users.ScriptedUser``,
``convsim._llm.ScriptedClient``); this package holds what needs a network socket.
"""

from ._server import FAULT_KINDS, FakeOpenAIServer, Responder, echo_responder

__all__ = ["FAULT_KINDS", "FakeOpenAIServer", "Responder", "echo_responder"]
