"""Self-checks on simulated user turns.

A simulator that breaks role, leaks its reasoning, restarts the conversation, goes
silent or invents facts makes the run say nothing about the agent. These checks void
such a run (it is excluded from pass rates, with its reason) rather than fail it.
"""

from __future__ import annotations

import difflib
import re

from ..trace import AssistantMessage, Conversation, SystemMessage, ToolMessage, UserMessage
from ._persona import Persona

_RESTART_MIN_CHARS = 24

_ROLE_BREAK = re.compile(
    r"(\bhow (can|may) i (help|assist) you\b|\bas an ai\b|\bi am an ai\b|\bi'm an ai\b"
    r"|\blanguage model\b|^\s*(assistant|agent)\s*:)",
    re.IGNORECASE | re.MULTILINE,
)
_LEAK = re.compile(
    r"(^\s*(thought|thinking|reasoning|analysis|internal)\s*:|<\s*/?\s*(thinking|reasoning)\s*>"
    r"|\bmy (instructions|persona|goal description|system prompt)\b|\bas the (simulated )?user\b"
    r"|###\s*stop\s*###)",
    re.IGNORECASE | re.MULTILINE,
)
# Things a user can only know if told: ids, long numbers, emails. Ordinary words and
# small numbers ("2 bags") are not policed; that would void honest runs.
_FACT = re.compile(
    r"\b[\w.+-]+@[\w-]+\.[\w.]+\b|\b(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{6,}\b|\b\d{4,}\b"
)


def void_reason(text: str, persona: Persona | None, conversation: Conversation) -> str | None:
    """Why this user turn voids the run, or None when it passes every check."""
    if not text.strip():
        return "empty user turn"
    if _ROLE_BREAK.search(text):
        return "the simulated user spoke as the agent"
    if _LEAK.search(text):
        return "the simulated user leaked its reasoning or instructions"
    earlier = [m.text for m in conversation.messages if isinstance(m, UserMessage)]
    # Short lines ("yes", "ok, thanks") repeat honestly; only a long opener coming back
    # signals a restart.
    if earlier and len(earlier[0]) >= _RESTART_MIN_CHARS and _similar(text, earlier[0]):
        return "the simulated user restarted the conversation"
    if persona is not None:
        invented = invented_facts(text, persona, conversation)
        if invented:
            return f"the simulated user volunteered facts the persona does not hold: {invented}"
    return None


def invented_facts(text: str, persona: Persona, conversation: Conversation) -> list[str]:
    """Identifier-like tokens in ``text`` that neither the persona nor the agent supplied."""
    known = " ".join(
        [persona.goal, persona.scenario or "", persona.persona or ""]
        + list(persona.known_facts.values())
        + list(persona.known_facts.keys())
        + [
            m.text
            for m in conversation.messages
            if isinstance(m, AssistantMessage | ToolMessage | SystemMessage | UserMessage)
        ]
    ).lower()
    found = []
    for match in _FACT.finditer(text):
        token = match.group(0)
        if token.lower() not in known:
            found.append(token)
    return found


def _similar(a: str, b: str) -> bool:
    a_norm, b_norm = " ".join(a.lower().split()), " ".join(b.lower().split())
    if a_norm == b_norm:
        return True
    # The cheap upper bounds rule out almost every pair before the quadratic ratio().
    m = difflib.SequenceMatcher(None, a_norm, b_norm)
    return m.real_quick_ratio() > 0.9 and m.quick_ratio() > 0.9 and m.ratio() > 0.9
