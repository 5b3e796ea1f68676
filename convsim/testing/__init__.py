"""Test doubles that ship with convsim: a loopback OpenAI-compatible server and friends.

The agent and user doubles live with their kind (``convsim.agents.FunctionAgent``,
``convsim.agents.ScriptedAgent``, ``convsim.users.ScriptedUser``); this package holds
the model-side doubles: a scripted model client, an offline rule-based judge, and a
loopback OpenAI-compatible server.
"""

from .._llm import ScriptedClient
from ._judge import OfflineJudge
from ._server import FAULT_KINDS, FakeOpenAIServer, Responder, echo_responder

__all__ = [
    "FAULT_KINDS",
    "FakeOpenAIServer",
    "OfflineJudge",
    "Responder",
    "ScriptedClient",
    "echo_responder",
]
