import random

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from convsim.agents import AgentContext, FunctionAgent, ScriptedAgent
from convsim.errors import RateLimited
from convsim.session import SessionConfig, TerminationReason, run_session
from convsim.tools import Toolset, tool
from convsim.trace import AssistantMessage, Conversation, ToolCall, ToolMessage, UserMessage
from convsim.users import Persona, ScriptedUser, UserTurn


@tool
def lookup(order: str) -> str:
    """Look up an order."""
    return f"order {order}: shipped"


@tool(terminal=True)
def transfer_to_human() -> str:
    """Hand over to a person."""
    return "transferred"


def reply_with_tool_then_text(conversation: Conversation) -> AssistantMessage:
    last = conversation.messages[-1]
    if isinstance(last, UserMessage):
        return AssistantMessage(
            tool_calls=[
                ToolCall(
                    id=f"c{len(conversation.messages)}", name="lookup", arguments={"order": "7"}
                )
            ]
        )
    assert isinstance(last, ToolMessage)
    return AssistantMessage(content=f"Status: {last.content}")


async def test_user_stop_after_script_with_tool_round_trips() -> None:
    result = await run_session(
        FunctionAgent(reply_with_tool_then_text, system_prompt="Be kind."),
        ScriptedUser(["Where is order 7?", "Thanks"]),
        conversation_id="c1",
        toolset=Toolset([lookup]),
    )
    assert result.termination == TerminationReason.USER_STOP
    roles = [m.role for m in result.conversation.messages]
    assert roles == ["system", "user", "assistant", "tool", "assistant"] * 1 + [
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert result.conversation.messages[4].content == "Status: order 7: shipped"
    assert len(result.conversation.turns()) == 2


async def test_agent_transfer_ends_the_conversation() -> None:
    agent = ScriptedAgent(
        [AssistantMessage(tool_calls=[ToolCall(id="t", name="transfer_to_human", arguments={})])]
    )
    result = await run_session(
        agent,
        ScriptedUser(["help", "more"]),
        conversation_id="c",
        toolset=Toolset([transfer_to_human]),
    )
    assert result.termination == TerminationReason.AGENT_TRANSFER
    assert result.conversation.messages[-1].content == "transferred"


async def test_agent_stop_max_turns_and_too_many_steps() -> None:
    stop = await run_session(ScriptedAgent([]), ScriptedUser(["hi"] * 5), conversation_id="c")
    assert stop.termination == TerminationReason.AGENT_STOP
    chatty = FunctionAgent(lambda c: "ok")
    capped = await run_session(
        chatty,
        ScriptedUser(["a", "b", "c", "d"]),
        conversation_id="c",
        config=SessionConfig(max_turns=2),
    )
    assert capped.termination == TerminationReason.MAX_TURNS
    assert len(capped.conversation.turns()) == 2

    def looping(c: Conversation) -> AssistantMessage:
        return AssistantMessage(
            tool_calls=[ToolCall(id=f"x{len(c.messages)}", name="lookup", arguments={"order": "1"})]
        )

    loop = await run_session(
        FunctionAgent(looping),
        ScriptedUser(["go"]),
        conversation_id="c",
        toolset=Toolset([lookup]),
        config=SessionConfig(max_agent_steps=3),
    )
    assert loop.termination == TerminationReason.AGENT_ERROR
    assert loop.error is not None and loop.error.type == "too_many_steps"


async def test_errors_are_recorded_not_raised() -> None:
    def broken(c: Conversation) -> str:
        raise RuntimeError("kaboom")

    result = await run_session(FunctionAgent(broken), ScriptedUser(["hi"]), conversation_id="c")
    assert result.termination == TerminationReason.AGENT_ERROR
    assert result.error is not None and result.error.message == "kaboom"
    assert [m.role for m in result.conversation.messages] == ["user"]

    class DeadUser:
        async def next_turn(self, conversation: Conversation, seed: int) -> UserTurn:
            raise RateLimited("still 429")

    infra = await run_session(FunctionAgent(lambda c: "x"), DeadUser(), conversation_id="c")
    assert infra.termination == TerminationReason.INFRASTRUCTURE_ERROR
    assert not infra.termination.counts_for_agent


async def test_call_and_conversation_timeouts() -> None:
    async def slow(c: Conversation) -> str:
        await anyio.sleep(5)
        return "late"

    per_call = await run_session(
        FunctionAgent(slow),
        ScriptedUser(["hi"]),
        conversation_id="c",
        config=SessionConfig(call_timeout=0.05),
    )
    assert per_call.termination == TerminationReason.AGENT_ERROR and per_call.error
    assert per_call.error.type == "timeout"
    whole = await run_session(
        FunctionAgent(slow),
        ScriptedUser(["hi"]),
        conversation_id="c",
        config=SessionConfig(call_timeout=None, conversation_timeout=0.05),
    )
    assert whole.termination == TerminationReason.TIMEOUT
    assert [m.role for m in whole.conversation.messages] == ["user"]


async def test_simulator_self_check_voids_the_run() -> None:
    class RoleBreaker:
        async def next_turn(self, conversation: Conversation, seed: int) -> UserTurn:
            return UserTurn(text="How can I help you today?")

    persona = Persona(name="p", goal="refund")
    result = await run_session(
        FunctionAgent(lambda c: "hi"), RoleBreaker(), conversation_id="c", persona=persona
    )
    assert result.termination == TerminationReason.VOIDED
    assert result.error is not None and "spoke as the agent" in result.error.message


async def test_duplicate_call_ids_in_one_reply_are_an_agent_error() -> None:
    dup = AssistantMessage(
        tool_calls=[ToolCall(id="same", name="lookup", arguments={"order": "1"})] * 2
    )
    result = await run_session(
        ScriptedAgent([dup]), ScriptedUser(["hi"]), conversation_id="c", toolset=Toolset([lookup])
    )
    assert result.termination == TerminationReason.AGENT_ERROR
    assert result.error is not None and result.error.type == "invalid_tool_calls"


def sampling_agent(conversation: Conversation, context: AgentContext) -> str:
    rng = random.Random(context.seed * 31 + len(conversation.messages))
    return f"answer {rng.randint(0, 10**9)}"


@settings(max_examples=25)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_same_seed_gives_the_same_transcript(seed: int) -> None:
    async def once() -> str:
        result = await run_session(
            FunctionAgent(sampling_agent),
            ScriptedUser(["a", "b", "c"]),
            conversation_id="c",
            seed=seed,
            config=SessionConfig(record_timing=False),
        )
        return "\n".join(m.model_dump_json() for m in result.conversation.messages)

    first = anyio.run(once)
    assert first == anyio.run(once)
    other = anyio.run(lambda: _run_with_seed(seed + 1))
    assert other != first


async def _run_with_seed(seed: int) -> str:
    result = await run_session(
        FunctionAgent(sampling_agent),
        ScriptedUser(["a", "b", "c"]),
        conversation_id="c",
        seed=seed,
        config=SessionConfig(record_timing=False),
    )
    return "\n".join(m.model_dump_json() for m in result.conversation.messages)


async def test_usage_is_accounted_by_party() -> None:
    from convsim.trace import Usage

    def priced(c: Conversation) -> AssistantMessage:
        return AssistantMessage(
            content="ok", usage=Usage(input_tokens=10, output_tokens=3, cost_usd=0.01)
        )

    class PricedUser:
        async def next_turn(self, conversation: Conversation, seed: int) -> UserTurn:
            done = sum(1 for m in conversation.messages if m.role == "user")
            return UserTurn(
                text=f"line {done}",
                stop=done == 2,
                usage=Usage(input_tokens=7, output_tokens=2, cost_usd=0.002),
            )

    result = await run_session(
        FunctionAgent(priced), PricedUser(), conversation_id="c", persona=None
    )
    assert result.usage["agent"] == Usage(input_tokens=20, output_tokens=6, cost_usd=0.02)
    user = result.usage["user"]
    assert (user.input_tokens, user.output_tokens) == (21, 6)
    assert user.cost_usd is not None and abs(user.cost_usd - 0.006) < 1e-12
