"""OfflineJudge: a deterministic stand-in for a model judge, for demos and tests.

It answers convsim's rubric prompts without a model, from simple rules over the quoted
conversation. Its verdicts are plausible, reproducible and free, but they are rules, not
judgement: every score it produces is marked with ``judge_model="offline-rules"`` and
reported as uncalibrated until it is checked against human labels, like any judge.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .._llm import ModelRequest, ModelResult
from ..trace import AssistantMessage

_RUBRIC = re.compile(r"Rubric: (\w+) \(version")
_DATA = re.compile(r"<conversation_data>\n(.*)\n</conversation_data>", re.DOTALL)
_WRITE = re.compile(r"^(book|cancel|update|send|modify|exchange|return|create|delete)_")
_NEGATIVE = re.compile(
    r"\b(not|still|didn't|wrong|ridiculous|useless|frustrat\w*|annoy\w*)\b", re.I
)
_THANKS = re.compile(r"\b(thank|thanks|great|perfect|appreciate)\b", re.I)
_HUMAN = re.compile(r"\b(human|real person|representative|manager|supervisor)\b", re.I)
_CONFIRM = re.compile(r"\b(confirm|proceed|shall i|would you like me to|do you want me to)\b", re.I)
_RUDE = re.compile(r"\b(stupid|idiot|calm down|your fault)\b", re.I)


class OfflineJudge:
    """A :class:`convsim._llm.ModelClient` that grades with rules instead of a model."""

    model = "offline-rules"

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, request: ModelRequest) -> ModelResult:
        """Answer one rubric prompt."""
        self.calls += 1
        system = request.messages[0]["content"]
        rubric = _RUBRIC.search(system)
        data = _DATA.search(request.messages[1]["content"])
        messages = [json.loads(line) for line in data.group(1).splitlines()] if data else []
        name = rubric.group(1) if rubric else ""
        verdict, reasoning = _RULES.get(name, _default)(messages)
        reply = json.dumps({"reasoning": reasoning, "verdict": verdict})
        return ModelResult(message=AssistantMessage(content=reply, model=self.model), cost_usd=0.0)


def _texts(messages: list[dict[str, Any]], role: str) -> list[str]:
    return [str(m.get("content", "")) for m in messages if m["role"] == role and m.get("content")]


def _calls(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for m in messages for c in m.get("tool_calls", [])]


def _goal(messages: list[dict[str, Any]]) -> tuple[Any, str]:
    users = _texts(messages, "user")
    last = users[-1] if users else ""
    if last and _NEGATIVE.search(last) and not _THANKS.search(last):
        return "fail", f"the user's last message is negative: {last[:80]!r}"
    errors = [
        m
        for m in messages[-6:]
        if m["role"] == "tool" and str(m.get("content", "")).startswith("Error")
    ]
    if errors:
        return "fail", "the conversation ends with failing tool calls"
    return "pass", "no sign that the goal was left unmet"


def _policy(messages: list[dict[str, Any]]) -> tuple[Any, str]:
    for i, m in enumerate(messages):
        for call in m.get("tool_calls", []):
            if _WRITE.match(call["name"]):
                before = [x for x in messages[:i] if x["role"] == "assistant" and x.get("content")]
                if not before or not _CONFIRM.search(str(before[-1].get("content", ""))):
                    return "fail", f"message {i}: {call['name']} without asking for confirmation"
    return "pass", "every change was preceded by a confirmation request"


def _grounded(messages: list[dict[str, Any]]) -> tuple[Any, str]:
    seen = " ".join(str(m.get("content", "")) for m in messages if m["role"] in ("tool", "user"))
    for i, m in enumerate(messages):
        if m["role"] != "assistant" or not m.get("content"):
            continue
        for amount in re.findall(r"\$\s?(\d[\d,]*)", str(m["content"])):
            if amount.replace(",", "") not in seen.replace(",", ""):
                return "fail", f"message {i} states ${amount}, found in no tool result or user turn"
        seen += " " + str(m["content"])
    return "pass", "every amount stated appears in a tool result or user turn"


def _tone(messages: list[dict[str, Any]]) -> tuple[Any, str]:
    agent = _texts(messages, "assistant")
    if any(_RUDE.search(t) for t in agent):
        return 1, "the agent was rude"
    long = sum(1 for t in agent if len(t) > 900)
    if long > 2:
        return 3, "several very long replies"
    return 4, "polite and clear"


def _tools(messages: list[dict[str, Any]]) -> tuple[Any, str]:
    calls = [json.dumps(c, sort_keys=True) for c in _calls(messages)]
    repeated = max((calls.count(c) for c in set(calls)), default=0)
    if repeated >= 3:
        return "fail", "the same tool call was repeated three or more times"
    errors = sum(
        1 for m in messages if m["role"] == "tool" and str(m.get("content", "")).startswith("Error")
    )
    if errors >= 2:
        return "fail", f"{errors} tool calls failed"
    return "pass", "tool calls were distinct and succeeded"


def _escalation(messages: list[dict[str, Any]]) -> tuple[Any, str]:
    asked = any(_HUMAN.search(t) for t in _texts(messages, "user"))
    transferred = any("transfer" in c["name"] for c in _calls(messages))
    if transferred and asked:
        return "appropriate", "the user asked for a human and was transferred"
    if transferred:
        return "premature", "transferred although the user did not ask for a human"
    if asked:
        return "missed", "the user asked for a human and was not transferred"
    return "not_needed", "no escalation was asked for or made"


def _default(messages: list[dict[str, Any]]) -> tuple[Any, str]:
    return "pass", "no rule for this rubric; passing by default"


_RULES = {
    "goal_completion": _goal,
    "policy_adherence": _policy,
    "groundedness": _grounded,
    "tone": _tone,
    "tool_use": _tools,
    "escalation": _escalation,
}
