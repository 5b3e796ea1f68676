import json
import subprocess
import sys

import pytest

from convsim.trace import AssistantMessage, Conversation, ToolCall, ToolMessage, UserMessage

CASSETTE = Conversation(
    id="refund-1",
    messages=[
        UserMessage(content="I want a refund for order 7."),
        AssistantMessage(tool_calls=[ToolCall(id="c1", name="refund", arguments={"order": "7"})]),
        ToolMessage(tool_call_id="c1", content='{"status": "refunded"}'),
        AssistantMessage(content="Your refund for order 7 is on its way."),
        UserMessage(content="Thanks! ###STOP###"),
    ],
    metadata={"termination": "user_stop"},
)

TESTS = """
import pytest
from convsim.trace import AssistantMessage, ToolCall

EXPECT = [{"type": "tool_called", "name": "refund", "arguments": {"order": "7"}}]

def good_agent(conversation):
    last = conversation.messages[-1]
    if last.role == "user":
        call = ToolCall(id="x", name="refund", arguments={"order": "7"})
        return AssistantMessage(tool_calls=[call])
    return "Your refund for order 7 is on its way."

def lazy_agent(conversation):
    return "Sorry, refunds are not possible."

@pytest.mark.anyio
@pytest.mark.convsim(cassette="refund.jsonl", conversation="refund-1", expect=EXPECT)
async def test_good(convsim_session):
    result = await convsim_session.run(good_agent)
    assert result.passed, result.explain()

@pytest.mark.anyio
@pytest.mark.convsim(cassette="refund.jsonl", conversation="refund-1", expect=EXPECT)
async def test_lazy(convsim_session):
    result = await convsim_session.run(lazy_agent)
    assert result.passed, result.explain()
"""


def test_cases_become_pytest_tests_with_a_grade_summary(pytester: pytest.Pytester) -> None:
    pytester.makefile(".jsonl", refund=CASSETTE.model_dump_json())
    pytester.makepyfile(test_cases=TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*convsim grades*", "*test_good*outcome*True*", "*test_lazy*outcome*False*"]
    )
    result.stdout.fnmatch_lines(["*outcome.tool_called: refund matched 0 time(s)*"])


def test_live_without_a_user_model_is_a_clear_failure(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", persona=json.dumps({"name": "p", "goal": "refund"}))
    pytester.makepyfile(
        test_live="""
import pytest

@pytest.mark.anyio
@pytest.mark.convsim(persona="persona.yaml")
async def test_live(convsim_session):
    await convsim_session.run(lambda c: "hi")
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--live")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*--live needs --convsim-user-model MODEL*"])


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, convsim.pytest_plugin; "
        "heavy = ('pydantic', 'anyio', 'litellm', 'httpx', 'scipy', 'numpy', 'convsim.trace'); "
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
