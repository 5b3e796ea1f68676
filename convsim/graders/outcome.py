"""Outcome checks: grade a conversation against a reference (offline).

Expectations are plain JSON objects with a ``type``, carried by the evaluation case, the
persona, or ``conversation.metadata["expectations"]``:

* ``completed``: the conversation ended normally (``terminations``, default user stop,
  agent stop or transfer), per ``metadata["termination"]``;
* ``tool_called``: ``name``, optional ``arguments`` matched ``exact`` / ``subset`` /
  ``schema`` (``match``), ``min`` / ``max`` times, or ``called: false`` for must-not-call;
* ``tool_order``: the ``names`` occur in this order among the calls (``contiguous`` to
  forbid other calls in between);
* ``outputs_said``: every string in ``outputs`` appears in what the agent told the user
  (case and commas ignored, as tau-bench does; ``replies_only`` skips messages that also
  call tools);
* ``end_state``: replaying the agent's calls and the gold ``actions`` on two fresh copies
  of ``environment`` gives equal state hashes;
* ``final_answer``: the last agent reply equals ``exact``, matches ``regex``, or contains
  ``number`` within ``tolerance``;
* ``predicate``: ``target`` names ``module:function(conversation) -> bool | (bool, str)``.

Each expectation yields a binary ``outcome.<type>`` score (or the name given as
``score``; repeats get ``.2``, ``.3``, ...), and the
conjunction of all of them the ``outcome`` score. A check that cannot run (an unknown
environment, a malformed expectation) is a failure record, and the ``outcome`` score is
then not produced: a broken check never passes or fails a conversation silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import JsonValue

from .._imports import load_object
from ..envs import environment_factory
from ..errors import ConfigError
from ..tools import ToolEnvironment, Toolset
from ..trace import AssistantMessage, Conversation, Score, ToolCall
from ._base import GradeOutput, ScoreBuilder, config_hash

DEFAULT_COMPLETED = ("user_stop", "agent_stop", "agent_transfer")
"""Terminations that count as a normal end."""

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


class CheckError(Exception):
    """An expectation that cannot be evaluated (it is malformed, or its target is missing)."""


class OutcomeChecks:
    """Grades conversations against their expectations.

    Args:
        expectations: Checks applied to every conversation, in addition to those in
            ``conversation.metadata["expectations"]``.
        environments: Environment factories by name; defaults to convsim's registry.
    """

    name = "outcome"

    def __init__(
        self,
        expectations: Sequence[Mapping[str, Any]] = (),
        *,
        environments: Mapping[str, Callable[[], ToolEnvironment]] | None = None,
    ) -> None:
        self.expectations = [dict(e) for e in expectations]
        self.environments = dict(environments or {})
        self.version = config_hash("outcome-v1", self.expectations)
        self._expected_hashes: dict[str, str] = {}

    async def grade(self, conversation: Conversation) -> list[GradeOutput]:
        """One score per expectation plus the overall ``outcome``."""
        found = conversation.metadata.get("expectations")
        own = [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []
        expectations: list[dict[str, Any]] = [*self.expectations, *own]
        b = ScoreBuilder(self.name, self.version, conversation)
        if not expectations:
            return []
        verdicts: list[bool] = []
        broken = False
        seen: dict[str, int] = {}
        for i, exp in enumerate(expectations):
            kind = str(exp.get("type", ""))
            base = str(exp.get("score") or f"outcome.{kind or 'unknown'}")
            # Score names must be unique per conversation (the store keys on them).
            seen[base] = seen.get(base, 0) + 1
            name = base if seen[base] == 1 else f"{base}.{seen[base]}"
            try:
                ok, reason, details = await self._check(kind, exp, conversation)
            except CheckError as e:
                b.failure(name, "invalid_check", f"expectation {i} ({kind or 'no type'}): {e}")
                broken = True
                continue
            b.score(name, ok, "binary", reason, details=details)
            verdicts.append(ok)
        if not broken:
            passed = all(verdicts)
            failed = [s.name for s in b.out if isinstance(s, Score) and s.value is False]
            b.score(
                "outcome",
                passed,
                "binary",
                "all expectations met" if passed else f"failed: {', '.join(failed)}",
            )
        return b.out

    async def _check(
        self, kind: str, exp: dict[str, Any], conv: Conversation
    ) -> tuple[bool, str, dict[str, JsonValue]]:
        if kind == "completed":
            return _completed(exp, conv)
        if kind == "tool_called":
            return _tool_called(exp, conv)
        if kind == "tool_order":
            return _tool_order(exp, conv)
        if kind == "outputs_said":
            return _outputs_said(exp, conv)
        if kind == "end_state":
            return await self._end_state(exp, conv)
        if kind == "final_answer":
            return _final_answer(exp, conv)
        if kind == "predicate":
            return _predicate(exp, conv)
        raise CheckError(
            f"unknown expectation type {kind!r}; use completed, tool_called, tool_order, "
            "outputs_said, end_state, final_answer or predicate"
        )

    def _factory(self, name: str) -> Callable[[], ToolEnvironment]:
        if name in self.environments:
            return self.environments[name]
        try:
            return environment_factory(name)
        except ConfigError as e:
            raise CheckError(str(e)) from None

    async def _end_state(
        self, exp: dict[str, Any], conv: Conversation
    ) -> tuple[bool, str, dict[str, JsonValue]]:
        env_name = exp.get("environment")
        actions = exp.get("actions")
        if not isinstance(env_name, str) or not isinstance(actions, list):
            raise CheckError("end_state needs 'environment' (a name) and 'actions' (a list)")
        factory = self._factory(env_name)
        gold_calls = _action_calls(actions)
        key = config_hash(env_name, actions)
        expected = self._expected_hashes.get(key)
        if expected is None:
            gold = factory()
            tools = Toolset(gold.tools())
            # Terminal tools (a transfer) end the conversation but do not change state;
            # tau-bench leaves them out of the gold replay too.
            await tools.call_all(c for c in gold_calls if not tools.is_terminal(c.name))
            expected = gold.state_hash()
            self._expected_hashes[key] = expected
        agent_env = factory()
        results = await Toolset(agent_env.tools()).call_all(conv.tool_calls())
        got = agent_env.state_hash()
        ok = got == expected
        errors = sum(1 for r in results if (r.content or "").startswith("Error"))
        reason = "end state matches the reference" if ok else "end state differs from the reference"
        return (
            ok,
            reason,
            {"state_hash": got, "expected_state_hash": expected, "tool_errors": errors},
        )


def _completed(exp: dict[str, Any], conv: Conversation) -> tuple[bool, str, dict[str, JsonValue]]:
    allowed = exp.get("terminations") or list(DEFAULT_COMPLETED)
    termination = conv.metadata.get("termination")
    if not isinstance(termination, str):
        raise CheckError("the conversation records no termination (metadata.termination)")
    ok = termination in allowed
    return ok, f"ended by {termination}", {"termination": termination}


def _tool_called(exp: dict[str, Any], conv: Conversation) -> tuple[bool, str, dict[str, JsonValue]]:
    name = exp.get("name")
    if not isinstance(name, str):
        raise CheckError("tool_called needs a tool 'name'")
    match = exp.get("match", "subset")
    want = exp.get("arguments")
    schema = exp.get("schema")
    if match not in ("exact", "subset", "schema"):
        raise CheckError(f"match must be exact, subset or schema, not {match!r}")
    if match == "schema":
        if not isinstance(schema, dict):
            raise CheckError("match: schema needs a 'schema' object")
        validator = Draft202012Validator(schema)
    hits = 0
    for call in conv.tool_calls():
        if call.name != name:
            continue
        args = call.arguments
        if want is None and match != "schema":
            hits += 1
        elif args is None:
            continue
        elif match == "exact" and args == want:
            hits += 1
        elif match == "subset" and isinstance(want, dict) and _is_subset(want, args):
            hits += 1
        elif match == "schema" and validator.is_valid(args):
            hits += 1
    must_call = exp.get("called", True)
    low = int(exp.get("min", 1))
    high = exp.get("max")
    if must_call:
        ok = hits >= low and (high is None or hits <= int(high))
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        reason = f"{name} matched {hits} time(s), expected {bound}"
    else:
        ok = hits == 0
        reason = f"{name} must not be called with these arguments; matched {hits} time(s)"
    return ok, reason, {"matches": hits}


def _is_subset(want: Any, got: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(got, dict) and all(
            k in got and _is_subset(v, got[k]) for k, v in want.items()
        )
    return bool(want == got)


def _tool_order(exp: dict[str, Any], conv: Conversation) -> tuple[bool, str, dict[str, JsonValue]]:
    names = exp.get("names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise CheckError("tool_order needs 'names', a list of tool names")
    called = [c.name for c in conv.tool_calls()]
    if exp.get("contiguous"):
        k = len(names)
        ok = any(called[i : i + k] == names for i in range(len(called) - k + 1)) if k else True
    else:
        it = iter(called)
        ok = all(any(c == n for c in it) for n in names)
    return ok, f"calls in order: {called}", {"called": list(called)}


def _outputs_said(
    exp: dict[str, Any], conv: Conversation
) -> tuple[bool, str, dict[str, JsonValue]]:
    outputs = exp.get("outputs")
    if not isinstance(outputs, list):
        raise CheckError("outputs_said needs 'outputs', a list of strings")
    replies = [
        m.text.lower().replace(",", "")
        for m in conv.messages
        if isinstance(m, AssistantMessage) and not (exp.get("replies_only") and m.tool_calls)
    ]
    found: dict[str, JsonValue] = {
        str(o): any(str(o).lower().replace(",", "") in r for r in replies) for o in outputs
    }
    missing = [o for o, hit in found.items() if not hit]
    ok = not missing
    return ok, "all outputs said" if ok else f"never said: {missing}", {"found": found}


def _final_answer(
    exp: dict[str, Any], conv: Conversation
) -> tuple[bool, str, dict[str, JsonValue]]:
    last = next(
        (m.text for m in reversed(conv.messages) if isinstance(m, AssistantMessage) and m.text), ""
    )
    if "exact" in exp:
        ok = last.strip() == str(exp["exact"]).strip()
        return ok, f"final answer {'equals' if ok else 'differs from'} the reference", {}
    if "regex" in exp:
        try:
            ok = re.search(str(exp["regex"]), last) is not None
        except re.error as e:
            raise CheckError(f"invalid regex: {e}") from None
        return ok, f"final answer {'matches' if ok else 'does not match'} {exp['regex']!r}", {}
    if "number" in exp:
        target, tol = float(exp["number"]), float(exp.get("tolerance", 0.0))
        numbers = [float(n.replace(",", "")) for n in _NUMBER.findall(last)]
        ok = any(abs(n - target) <= tol for n in numbers)
        return ok, f"numbers in final answer: {numbers}", {"numbers": list(numbers)}
    raise CheckError("final_answer needs 'exact', 'regex' or 'number'")


def _predicate(exp: dict[str, Any], conv: Conversation) -> tuple[bool, str, dict[str, JsonValue]]:
    target = exp.get("target")
    if not isinstance(target, str) or ":" not in target:
        raise CheckError("predicate needs 'target': 'module:function'")
    try:
        fn = load_object(target, "predicate")
    except ConfigError as e:
        raise CheckError(str(e)) from None
    result = fn(conv)
    if isinstance(result, tuple):
        ok, reason = bool(result[0]), str(result[1])
    else:
        ok, reason = bool(result), f"{target} returned {result!r}"
    return ok, reason, {}


def _action_calls(actions: list[Any]) -> list[ToolCall]:
    calls = []
    for i, action in enumerate(actions):
        if not isinstance(action, dict) or not isinstance(action.get("name"), str):
            raise CheckError(f"action {i}: expected {{name, kwargs}}")
        if action["name"] == "respond":  # tau-bench's "say something" action changes nothing
            continue
        kwargs = action.get("kwargs", action.get("arguments", {}))
        if not isinstance(kwargs, dict):
            raise CheckError(f"action {i}: kwargs must be an object")
        calls.append(ToolCall(id=f"gold-{i}", name=action["name"], arguments=kwargs))
    return calls
