"""Simulated users: personas, a model-played user, a scripted user, and self-checks."""

from ._base import UserModel, UserTurn
from ._checks import invented_facts, void_reason
from ._persona import Persona, StopRules, iter_persona_files, load_persona, load_personas
from .scripted import ScriptedUser
from .simulator import TURN_SCHEMA, LLMUser, flipped_messages, parse_turn, system_prompt

__all__ = [
    "TURN_SCHEMA",
    "LLMUser",
    "Persona",
    "ScriptedUser",
    "StopRules",
    "UserModel",
    "UserTurn",
    "flipped_messages",
    "invented_facts",
    "iter_persona_files",
    "load_persona",
    "load_personas",
    "parse_turn",
    "system_prompt",
    "void_reason",
]
