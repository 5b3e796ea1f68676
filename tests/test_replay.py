from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convsim._assets import tau_airline_runs
from convsim._llm import ScriptedClient
from convsim.agents import AgentContext, FunctionAgent
from convsim.datasets import ReadReport
from convsim.envs import AirlineEnvironment
from convsim.formats import read_tau_bench
from convsim.replay import (
    Cassette,
    ReplayOptions,
    ReplayReport,
    _turn_actions,
    canonical_arguments,
    compare,
    replay,
)
from convsim.runner import RunConfig
from convsim.store import SQLiteStore
from convsim.trace import (
    AssistantMessage,
    Conversation,
    Message,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from convsim.users import LLMUser, Persona
from tests.strategies import conversations

CHANGED_TOOL = "get_reservation_details"


@pytest.fixture(scope="module")
def recordings() -> list[Conversation]:
    return list(read_tau_bench(tau_airline_runs(), report=ReadReport(file="runs")))


def repeat_agent(recordings: list[Conversation], change: bool = False) -> FunctionAgent:
    scripts = {c.id: [m for m in c.messages if isinstance(m, AssistantMessage)] for c in recordings}

    def agent(conversation: Conversation, context: AgentContext) -> AssistantMessage:
        said = sum(1 for m in conversation.messages if isinstance(m, AssistantMessage))
        script = scripts[context.case_id]
        if said >= len(script):
            return AssistantMessage(finish_reason="end_conversation")
        reply = script[said].model_copy(deep=True)
        earlier = [c for m in script[:said] for c in m.tool_calls if c.name == CHANGED_TOOL]
        if change and not earlier:
            for call in reply.tool_calls:
                if call.name == CHANGED_TOOL and call.arguments is not None:
                    call.arguments["reservation_id"] = "ZZZZZZ"
        return reply

    return FunctionAgent(agent)


def config(run_id: str, **kw: Any) -> RunConfig:
    return RunConfig(
        run_id=run_id, kind="replay", agent="repeat", concurrency=16, progress=False, **kw
    )


def reports(store: SQLiteStore, run_id: str) -> dict[str, ReplayReport]:
    return {
        r.case_id: ReplayReport.model_validate(r.conversation.metadata["replay"])
        for r in store.results(run_id)
    }


async def test_repeating_the_recorded_agent_gives_zero_divergences(
    recordings: list[Conversation], tmp_path: Path
) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    summary = await replay(
        config("same"), recordings, repeat_agent(recordings), store=store, options=ReplayOptions()
    )
    assert summary.completed == 200 and "diverged" not in summary.terminations
    found = reports(store, "same")
    assert [cid for cid, r in found.items() if r.first is not None] == []
    assert sum(r.matched_calls for r in found.values()) == 1164
    assert all(r.unmatched_calls == 0 for r in found.values())


async def test_one_changed_argument_is_found_at_the_right_turn(
    recordings: list[Conversation], tmp_path: Path
) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    await replay(
        config("changed"),
        recordings,
        repeat_agent(recordings, change=True),
        store=store,
        options=ReplayOptions(policy="fail"),
    )
    found = reports(store, "changed")
    affected = 0
    for rec in recordings:
        turns = rec.turns()
        expected_turn = next(
            (
                t.index
                for t in turns
                for m in t.assistant_messages
                for c in m.tool_calls
                if c.name == CHANGED_TOOL
            ),
            None,
        )
        report = found[rec.id]
        if expected_turn is None:
            assert report.first is None, rec.id
            continue
        affected += 1
        assert report.first is not None, rec.id
        assert (report.first.turn, report.first.kind) == (expected_turn, "different_arguments"), (
            rec.id
        )
        assert '"reservation_id":"ZZZZZZ"' in report.first.actual
    assert affected > 100


async def test_same_inputs_and_seed_give_byte_identical_results(
    recordings: list[Conversation], tmp_path: Path
) -> None:
    outputs = []
    for n in range(2):
        store = SQLiteStore(tmp_path / f"s{n}.db")
        await replay(
            config("r", seed=3),
            recordings[:40],
            repeat_agent(recordings, change=True),
            store=store,
            options=ReplayOptions(policy="live", environment=AirlineEnvironment),
        )
        out = tmp_path / f"out{n}.jsonl"
        store.export_jsonl("results", out, run_id="r")
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] and len(outputs[0]) > 10_000


async def test_live_policy_runs_unmatched_calls_on_the_environment(
    recordings: list[Conversation], tmp_path: Path
) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    subset = [c for c in recordings if any(t.name == CHANGED_TOOL for t in c.tool_calls())][:10]
    summary = await replay(
        config("live"),
        subset,
        repeat_agent(recordings, change=True),
        store=store,
        options=ReplayOptions(policy="live", environment=AirlineEnvironment),
    )
    assert "diverged" not in summary.terminations
    for r in store.results("live"):
        report = ReplayReport.model_validate(r.conversation.metadata["replay"])
        assert report.unmatched_calls >= 1
        results = [m.content for m in r.conversation.messages if m.role == "tool"]
        # tau-bench's own wording for an unknown reservation id, kept for fidelity.
        assert "Error: user not found" in results


async def test_simulate_policy_hands_over_to_a_persona(
    recordings: list[Conversation], tmp_path: Path
) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    rec = next(c for c in recordings if c.tool_calls() and c.tool_calls()[0].name == CHANGED_TOOL)
    client = ScriptedClient(lambda req: '{"reason": "done", "message": "ok thanks", "stop": true}')

    def users(persona: Persona) -> LLMUser:
        assert "instruction" in str(rec.metadata["task"]) and persona.goal
        return LLMUser(persona, model="sim", client=client)

    await replay(
        config("sim"),
        [rec],
        repeat_agent(recordings, change=True),
        store=store,
        options=ReplayOptions(
            policy="simulate", environment=AirlineEnvironment, user_factory=users
        ),
    )
    (result,) = store.results("sim")
    assert result.termination == "user_stop"
    assert client.requests, "the simulated user took over after the divergence"


def test_lenient_matching_normalises_order_space_numbers_and_case() -> None:
    a = {"b": 2, "a": "New  York", "c": [1.0, {"Z": "x"}]}
    b = {"a": "new york", "c": [1, {"z": "X "}], "b": 2.0}
    assert canonical_arguments(a, lenient=True) == canonical_arguments(b, lenient=True)
    assert canonical_arguments(a, lenient=False) != canonical_arguments(b, lenient=False)
    assert canonical_arguments({"x": 1, "y": 2}, lenient=False) == canonical_arguments(
        {"y": 2, "x": 1}, lenient=False
    )


def test_compare_kinds_and_similarity() -> None:
    def conv(*turns: tuple[str, list[ToolCall], str]) -> Conversation:
        from convsim.trace import ToolMessage, UserMessage

        msgs: list[Any] = []
        for user, calls, text in turns:
            msgs.append(UserMessage(content=user))
            if calls:
                msgs.append(AssistantMessage(tool_calls=calls))
                msgs.extend(ToolMessage(tool_call_id=c.id, content="r") for c in calls)
            msgs.append(AssistantMessage(content=text))
        return Conversation(id="c", messages=msgs)

    call = ToolCall(id="1", name="find", arguments={"q": 1})
    base = conv(("hi", [call], "hello there"), ("bye", [], "goodbye"))
    other_tool = conv(
        ("hi", [ToolCall(id="1", name="seek", arguments={"q": 1})], "hello there"),
        ("bye", [], "goodbye"),
    )
    text = conv(("hi", [call], "hello there!"), ("bye", [], "goodbye"))
    short = conv(("hi", [call], "hello there"))
    assert compare(base, base).first is None
    r = compare(base, other_tool)
    assert r.first is not None and (r.first.turn, r.first.kind) == (0, "different_tool")
    r = compare(base, text)
    assert (
        r.first is not None
        and r.first.kind == "different_text"
        and 0.9 < (r.first.similarity or 0) < 1
    )
    r = compare(base, short)
    assert r.first is not None and (r.first.turn, r.first.kind) == (1, "missing_turn")
    r = compare(short, base)
    assert r.first is not None and r.first.kind == "extra_turn"


def test_cassette_stops_where_the_recorded_user_stopped(recordings: list[Conversation]) -> None:
    rec = recordings[0]
    cassette = Cassette.from_conversation(rec)
    assert cassette.system_prompt and cassette.system_prompt.startswith("# Airline Agent Policy")
    assert len(cassette.calls) == len(rec.tool_calls())
    assert all("###STOP###" not in t for t in cassette.user_turns)


def _actions_by_turns(conversation: Conversation) -> list[tuple[list[str], str]]:
    # The definition compare() works to: Conversation.turns(), each turn's tool calls in
    # order and its last text-only reply, trailing empty turns dropped.
    out = []
    for turn in conversation.turns():
        assistant = turn.assistant_messages
        calls = [
            f"{c.name}({canonical_arguments(c.arguments, lenient=False)})"
            for m in assistant
            for c in m.tool_calls
        ]
        texts = [m.text for m in assistant if m.text and not m.tool_calls]
        out.append((calls, texts[-1] if texts else ""))
    while out and out[-1] == ([], ""):
        out.pop()
    return out


@st.composite
def _dialogues(draw: st.DrawFn) -> Conversation:
    # Dense in what the turn split must get right: replies before the first user
    # message, several replies and calls in one turn, turns with nothing in them.
    messages: list[Message] = []
    for n, step in enumerate(draw(st.lists(st.sampled_from(["user", "say", "call"]), max_size=14))):
        text = draw(st.sampled_from(["", "ok", "Done.", "ok "]))
        if step == "user":
            messages.append(UserMessage(content=text or "hi"))
        elif step == "say":
            messages.append(AssistantMessage(content=text or None))
        else:
            call = ToolCall(id=f"c{n}", name=draw(st.sampled_from(["a", "b"])), arguments={"n": n})
            messages.append(AssistantMessage(content=text or None, tool_calls=[call]))
            messages.append(ToolMessage(tool_call_id=f"c{n}", content="r"))
    return Conversation(id="d", messages=messages)


@given(st.one_of(conversations(), _dialogues()))
@settings(max_examples=300, deadline=None)
def test_turn_actions_follow_the_turn_view(conversation: Conversation) -> None:
    assert _turn_actions(conversation) == _actions_by_turns(conversation)


async def test_the_candidate_is_offered_the_recorded_tool_definitions_verbatim(
    tmp_path: Path,
) -> None:
    from convsim.trace import ToolDefinition

    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    }
    weather = ToolDefinition(
        name="get_weather", description="Weather now.", parameters=schema, extra={"strict": True}
    )
    recording = Conversation(
        id="rec",
        tools=[weather],
        messages=[
            UserMessage(content="Weather in Paris?"),
            AssistantMessage(
                tool_calls=[ToolCall(id="c1", name="get_weather", arguments={"city": "Paris"})]
            ),
            ToolMessage(tool_call_id="c1", content='{"temp_c": 21}'),
            AssistantMessage(content="21 degrees."),
        ],
    )
    offered: list[list[dict[str, Any]]] = []

    def agent(conversation: Conversation, context: AgentContext) -> AssistantMessage:
        offered.append(context.tools)
        return AssistantMessage(finish_reason="end_conversation")

    store = SQLiteStore(tmp_path / "s.db")
    await replay(
        config("tools"), [recording], FunctionAgent(agent), store=store, options=ReplayOptions()
    )
    assert offered and offered[0] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather now.",
                "parameters": schema,
                "strict": True,
            },
        }
    ]
    (result,) = store.results("tools")
    assert result.conversation.tools == [weather]
