from typing import Any

import pytest

from convsim._assets import tau_airline_runs
from convsim.datasets import ReadReport
from convsim.formats import read_tau_bench
from convsim.graders import OutcomeChecks
from convsim.stats import pass_k_report
from convsim.trace import (
    AssistantMessage,
    Conversation,
    Score,
    ScoreFailure,
    ToolCall,
    ToolMessage,
    UserMessage,
)


def conv(*, metadata: dict[str, Any] | None = None) -> Conversation:
    return Conversation(
        id="c",
        messages=[
            UserMessage(content="Book me on HA1 for two, and tell me the total."),
            AssistantMessage(
                tool_calls=[
                    ToolCall(id="a", name="search", arguments={"from": "JFK"}),
                    ToolCall(
                        id="b",
                        name="book",
                        arguments={"flight": "HA1", "seats": 2, "meta": {"x": 1}},
                    ),
                ]
            ),
            ToolMessage(tool_call_id="a", content="[HA1]"),
            ToolMessage(tool_call_id="b", content='{"total": 1234.5}'),
            AssistantMessage(content="Booked! The total is $1,234.50."),
        ],
        metadata={"termination": "user_stop", **(metadata or {})},
    )


async def grade(
    expectations: list[dict[str, Any]], c: Conversation | None = None
) -> dict[str, Score | ScoreFailure]:
    out = await OutcomeChecks(expectations).grade(c or conv())
    return {o.name: o for o in out}


@pytest.mark.parametrize(
    ("expectation", "passed"),
    [
        ({"type": "tool_called", "name": "book"}, True),
        ({"type": "tool_called", "name": "cancel"}, False),
        ({"type": "tool_called", "name": "cancel", "called": False}, True),
        ({"type": "tool_called", "name": "book", "called": False}, False),
        (
            {
                "type": "tool_called",
                "name": "book",
                "arguments": {"flight": "HA1"},
                "match": "subset",
            },
            True,
        ),
        (
            {
                "type": "tool_called",
                "name": "book",
                "arguments": {"meta": {"x": 1}},
                "match": "subset",
            },
            True,
        ),
        (
            {
                "type": "tool_called",
                "name": "book",
                "arguments": {"flight": "HA2"},
                "match": "subset",
            },
            False,
        ),
        (
            {
                "type": "tool_called",
                "name": "book",
                "arguments": {"flight": "HA1"},
                "match": "exact",
            },
            False,
        ),
        (
            {
                "type": "tool_called",
                "name": "book",
                "match": "schema",
                "schema": {
                    "type": "object",
                    "properties": {"seats": {"minimum": 2}},
                    "required": ["seats"],
                },
            },
            True,
        ),
        ({"type": "tool_called", "name": "book", "max": 0}, False),
        ({"type": "tool_order", "names": ["search", "book"]}, True),
        ({"type": "tool_order", "names": ["book", "search"]}, False),
        ({"type": "tool_order", "names": ["search", "book"], "contiguous": True}, True),
        ({"type": "outputs_said", "outputs": ["1234.50"]}, True),
        ({"type": "outputs_said", "outputs": ["1234.50", "refund"]}, False),
        ({"type": "final_answer", "number": 1234.5, "tolerance": 0.01}, True),
        ({"type": "final_answer", "number": 1000, "tolerance": 1}, False),
        ({"type": "final_answer", "regex": r"total is \$[\d,.]+"}, True),
        ({"type": "final_answer", "exact": "Booked!"}, False),
        ({"type": "completed"}, True),
        ({"type": "completed", "terminations": ["agent_stop"]}, False),
        ({"type": "predicate", "target": "tests.graders.test_outcome:has_two_calls"}, True),
    ],
)
async def test_each_expectation_type(expectation: dict[str, Any], passed: bool) -> None:
    scores = await grade([expectation])
    own = scores[f"outcome.{expectation['type']}"]
    assert isinstance(own, Score) and own.value is passed and own.reason
    overall = scores["outcome"]
    assert isinstance(overall, Score) and overall.value is passed


def has_two_calls(c: Conversation) -> tuple[bool, str]:
    return len(c.tool_calls()) == 2, "two calls"


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "nonsense"},
        {"type": "tool_called"},
        {"type": "end_state", "environment": "no-such-env", "actions": []},
        {"type": "final_answer"},
        {"type": "predicate", "target": "nowhere:fn"},
    ],
)
async def test_broken_checks_are_failures_and_block_the_overall_verdict(
    bad: dict[str, Any],
) -> None:
    out = await OutcomeChecks([bad, {"type": "tool_called", "name": "book"}]).grade(conv())
    failures = [o for o in out if isinstance(o, ScoreFailure)]
    assert len(failures) == 1 and failures[0].error_type == "invalid_check"
    assert "outcome" not in {o.name for o in out}


async def test_missing_termination_is_a_failure_not_a_pass() -> None:
    c = conv().model_copy(update={"metadata": {}})
    out = await OutcomeChecks([{"type": "completed"}]).grade(c)
    assert isinstance(out[0], ScoreFailure) and "no termination" in out[0].message


async def test_reproduces_every_recorded_tau_bench_reward_and_pass_hat_k() -> None:
    convs = list(read_tau_bench(tau_airline_runs(), report=ReadReport(file="x")))
    checks = OutcomeChecks()
    outcomes: dict[str, list[bool]] = {}
    disagreements = []
    for c in convs:
        scores = {o.name: o for o in await checks.grade(c)}
        verdict = scores["outcome"]
        assert isinstance(verdict, Score)
        if verdict.value != (c.metadata["reward"] == 1.0):
            disagreements.append(c.id)
        outcomes.setdefault(c.tags["task"], []).append(verdict.value is True)
    assert disagreements == []
    report = pass_k_report(outcomes)
    assert [round(report.pass_hat(k), 3) for k in (1, 2, 3, 4)] == [0.420, 0.273, 0.220, 0.200]
