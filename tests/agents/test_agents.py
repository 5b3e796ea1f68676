import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from convsim._llm import LiteLLMClient, ScriptedClient
from convsim.agents import (
    AgentContext,
    FunctionAgent,
    HttpAgent,
    LiteLLMAgent,
    ScriptedAgent,
    load_agent,
)
from convsim.calls import ATTEMPT_TIMEOUT_S, RetryPolicy
from convsim.errors import AgentHTTPError, AgentUnavailable, ConfigError
from convsim.session import SessionConfig, run_session
from convsim.testing import FakeOpenAIServer
from convsim.trace import AssistantMessage, Conversation, UserMessage
from convsim.users import ScriptedUser

CONV = Conversation(id="c", messages=[UserMessage(content="hello")])
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
FAST = RetryPolicy(max_attempts=8, base_delay=0.001, max_delay=0.02)


def tool_responder(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("tools") and body["messages"][-1]["role"] == "user":
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "f", "arguments": '{"x": 1}'},
                }
            ],
        }
    return {"role": "assistant", "content": "done"}


async def test_function_agent_sync_async_and_context() -> None:
    async def a(conversation: Conversation, context: AgentContext) -> dict[str, Any]:
        return {"role": "assistant", "content": f"seed {context.seed}"}

    assert (await FunctionAgent(lambda c: "hi").respond(CONV, AgentContext())).content == "hi"
    assert (await FunctionAgent(a).respond(CONV, AgentContext(seed=4))).content == "seed 4"
    with pytest.raises(TypeError, match="must return"):
        await FunctionAgent(lambda c: 42).respond(CONV, AgentContext())


async def test_scripted_agent_serves_many_conversations() -> None:
    agent = ScriptedAgent(["one", "two"])
    assert (await agent.respond(CONV, AgentContext())).content == "one"
    later = CONV.model_copy(update={"messages": [*CONV.messages, AssistantMessage(content="one")]})
    assert (await agent.respond(later, AgentContext())).content == "two"


async def test_http_agent_over_a_real_loopback_server_with_tools() -> None:
    with FakeOpenAIServer(tool_responder) as server:
        agent = HttpAgent(server.url, system_prompt="You are terse.", retry=FAST)
        reply = await agent.respond(CONV, AgentContext(tools=TOOLS))
        assert reply.tool_calls[0].id == "call_9" and reply.tool_calls[0].arguments == {"x": 1}
        sent_usage = server.responses[0]["usage"]
        assert reply.usage is not None
        assert reply.usage.input_tokens == sent_usage["prompt_tokens"]
        assert reply.usage.output_tokens == sent_usage["completion_tokens"]
        sent = server.bodies[0]
        assert sent["messages"][0] == {"role": "system", "content": "You are terse."}
        assert sent["tools"] == TOOLS


async def test_http_agent_retries_faults_and_honours_retry_after() -> None:
    with FakeOpenAIServer(fault_rate=0.5, faults=("429", "500", "malformed"), seed=3) as server:
        agent = HttpAgent(server.url, retry=FAST)
        for _ in range(10):
            assert (await agent.respond(CONV, AgentContext())).content == "echo: hello"
        assert sum(server.injected.values()) > 0
        assert agent.retries == sum(server.injected.values())


async def test_http_agent_permanent_and_exhausted_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        key = request.headers.get("authorization", "")
        return httpx.Response(401, text=f"bad key {key}")

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    agent = HttpAgent("http://agent.test/v1", client=client, api_key_env="TEST_AGENT_API_KEY")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TEST_AGENT_API_KEY", "sk-verysecretvalue1")
        with pytest.raises(AgentHTTPError) as err:
            await agent.respond(CONV, AgentContext())
    assert err.value.status_code == 401 and "sk-verysecretvalue1" not in str(err.value)
    with FakeOpenAIServer(fault_rate=1.0, faults=("500",)) as server:
        with pytest.raises(AgentUnavailable):
            await HttpAgent(
                server.url, retry=RetryPolicy(max_attempts=3, base_delay=0.001)
            ).respond(CONV, AgentContext())
        assert server.requests == 3


async def test_litellm_agent_through_litellm_and_a_loopback_server() -> None:
    with FakeOpenAIServer(tool_responder, fault_rate=0.3, faults=("429", "500"), seed=1) as server:
        client = LiteLLMClient(retry=FAST, timeout=10)
        agent = LiteLLMAgent("openai/fake-model", client=client, api_base=server.url)
        for _ in range(4):
            reply = await agent.respond(CONV, AgentContext(tools=TOOLS, seed=1))
            assert reply.tool_calls[0].name == "f" and reply.tool_calls[0].arguments == {"x": 1}
        assert client.stats.calls["agent"] == 4
        assert client.stats.retries == sum(server.injected.values())
        assert server.bodies[-1]["tools"][0]["function"]["name"] == "f"


async def test_litellm_agent_with_scripted_client() -> None:
    client = ScriptedClient(["hi there"])
    agent = LiteLLMAgent("m", client=client, system_prompt="sys")
    assert (await agent.respond(CONV, AgentContext(seed=9))).content == "hi there"
    assert client.requests[0].messages[0] == {"role": "system", "content": "sys"}
    assert client.requests[0].seed == 9


def test_load_agent_specs(tmp_path: Path) -> None:
    py = tmp_path / "my_agent.py"
    py.write_text("def agent(conversation):\n    return 'from file'\n")
    assert isinstance(load_agent(f"{py}:agent"), FunctionAgent)
    assert isinstance(load_agent("http://127.0.0.1:9/v1"), HttpAgent)
    assert isinstance(
        load_agent("litellm:openai/x", client_factory=lambda: ScriptedClient([])), LiteLLMAgent
    )
    yml = tmp_path / "agent.yaml"
    yml.write_text(
        json.dumps({"kind": "python", "target": "my_agent.py:agent", "system_prompt": "p"})
    )
    agent = load_agent(str(yml))
    assert isinstance(agent, FunctionAgent) and agent.system_prompt == "p"
    for bad, message in [
        ("nocolon", "not understood"),
        ("no_such_module_xyz:f", "not found"),
        (f"{py}:missing", "has no attribute"),
        (str(tmp_path / "missing.yaml"), "no such agent file"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_agent(bad)
    yml.write_text("kind: python\nbogus: 1\n")
    with pytest.raises(ConfigError, match="bogus"):
        load_agent(str(yml))


def first_request_hangs(seconds: float) -> Any:
    """A responder whose first request stalls (a hung provider), later ones answer."""
    seen: list[int] = []

    def respond(body: dict[str, Any]) -> dict[str, Any]:
        seen.append(1)
        if len(seen) == 1:
            time.sleep(seconds)
        return {"role": "assistant", "content": "answered"}

    return respond


def test_the_default_attempt_limit_leaves_the_call_budget_room_to_retry() -> None:
    budget = SessionConfig().call_timeout
    assert budget is not None and budget >= 2 * ATTEMPT_TIMEOUT_S + RetryPolicy().max_delay
    assert HttpAgent("http://127.0.0.1:9/v1").timeout == ATTEMPT_TIMEOUT_S
    assert LiteLLMClient().timeout == ATTEMPT_TIMEOUT_S


@pytest.mark.parametrize("kind", ["http", "litellm"])
async def test_a_hung_attempt_is_retried_within_the_call_budget(kind: str) -> None:
    # The defaults scaled down 100-fold: 0.45 s per attempt inside a 1.2 s budget.
    with FakeOpenAIServer(first_request_hangs(3.0)) as server:
        agent: Any = (
            HttpAgent(server.url, timeout=0.45, retry=FAST)
            if kind == "http"
            else LiteLLMAgent(
                "openai/m", client=LiteLLMClient(timeout=0.45, retry=FAST), api_base=server.url
            )
        )
        result = await run_session(
            agent, ScriptedUser(["hi"]), conversation_id="c", config=SessionConfig(call_timeout=1.2)
        )
        assert result.error is None and result.termination.counts_for_agent
        assert result.conversation.messages[-1].content == "answered"
        assert server.requests == 2
