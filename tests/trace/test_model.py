from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from convsim.datasets import dump_line
from convsim.trace import (
    AssistantMessage,
    Conversation,
    Message,
    Score,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    Usage,
    UserMessage,
    find_problems,
)
from tests.strategies import conversations, scores


def call(call_id: str, name: str = "lookup", **arguments: Any) -> ToolCall:
    return ToolCall(id=call_id, name=name, arguments=arguments)


def asking(*call_ids: str, **fields: Any) -> AssistantMessage:
    return AssistantMessage(tool_calls=[call(i) for i in call_ids], **fields)


def result(call_id: str, content: str = "ok", **fields: Any) -> ToolMessage:
    return ToolMessage(tool_call_id=call_id, content=content, **fields)


def rejection(conversation_id: str, messages: list[Message]) -> str:
    """The validation message for an invalid conversation (and check it is one error)."""
    with pytest.raises(ValidationError) as info:
        Conversation(id=conversation_id, messages=messages)
    errors = info.value.errors()
    assert len(errors) == 1
    assert errors[0]["type"] == "value_error"
    return str(errors[0]["msg"])


# --- structural validation -------------------------------------------------------------


def test_tool_result_without_matching_call_names_conversation_and_message() -> None:
    msg = rejection(
        "conv-7",
        [UserMessage(content="hi"), asking("a"), result("a"), result("zzz")],
    )
    assert "conversation 'conv-7', message 3 (tool)" in msg
    assert "'zzz'" in msg
    assert "answers no earlier, unanswered tool call" in msg


def test_tool_result_before_any_call_is_rejected() -> None:
    msg = rejection("c", [result("a"), asking("a")])
    assert "conversation 'c', message 0 (tool)" in msg


def test_call_id_reused_while_open_is_rejected() -> None:
    msg = rejection("c", [UserMessage(content="hi"), asking("a"), asking("a"), result("a")])
    assert "conversation 'c', message 2 (assistant)" in msg
    assert "tool call id 'a' reused while the call in message 1 is still unanswered" in msg


def test_parallel_calls_with_the_same_id_are_rejected() -> None:
    msg = rejection("c", [asking("a", "a"), result("a"), result("a")])
    assert "message 0 (assistant): tool call id 'a' reused" in msg


def test_duplicate_message_ids_are_rejected() -> None:
    msg = rejection(
        "c",
        [
            SystemMessage(content="be nice", id="m1"),
            UserMessage(content="hi", id="m2"),
            AssistantMessage(content="hello", id="m1"),
        ],
    )
    assert "conversation 'c', message 2 (assistant): duplicate message id 'm1' (first at 0)" in msg


def test_answering_an_already_answered_call_is_rejected() -> None:
    msg = rejection("c", [asking("a"), result("a"), result("a", "again")])
    assert "conversation 'c', message 2 (tool)" in msg
    assert "answers no earlier, unanswered tool call" in msg


def test_every_problem_is_reported_not_just_the_first() -> None:
    bad = Conversation.model_construct(
        id="c",
        messages=[result("x"), asking("a"), asking("a"), UserMessage(id="u"), UserMessage(id="u")],
    )
    problems = find_problems(bad)
    assert len(problems) == 3
    assert [p.split(":")[0] for p in problems] == [
        "conversation 'c', message 0 (tool)",
        "conversation 'c', message 2 (assistant)",
        "conversation 'c', message 4 (user)",
    ]


def test_call_id_may_be_reused_once_answered() -> None:
    # tau-bench's airline trajectories reuse call ids after the first call was answered.
    conversation = Conversation(
        id="tau",
        messages=[
            UserMessage(content="book it"),
            asking("call_0"),
            result("call_0", "first"),
            asking("call_0"),
            result("call_0", "second"),
        ],
    )
    assert find_problems(conversation) == []
    results = conversation.tool_results()
    assert {k: v.content for k, v in results.items()} == {0: "first", 1: "second"}


def test_missing_tool_result_is_allowed() -> None:
    # An unanswered call (the run was cut short) is data, not a broken trace.
    conversation = Conversation(id="c", messages=[UserMessage(content="hi"), asking("a")])
    assert conversation.tool_results() == {}


def test_validation_error_from_json_is_a_validation_error() -> None:
    line = json.dumps(
        {
            "id": "j",
            "messages": [{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "q"}],
        }
    )
    with pytest.raises(ValidationError, match=r"conversation 'j', message 1 \(tool\)"):
        Conversation.model_validate_json(line)


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        Conversation.model_validate({"id": "c", "mesages": []})
    assert info.value.errors()[0]["loc"] == ("mesages",)


# --- ToolCall.from_raw -------------------------------------------------------------------


def test_from_raw_dict() -> None:
    c = ToolCall.from_raw("1", "search", {"q": "paris", "n": 3})
    assert c.arguments == {"q": "paris", "n": 3}
    assert c.arguments_raw is None
    assert c.arguments_json() == '{"q":"paris","n":3}'


def test_from_raw_valid_json_object_string() -> None:
    c = ToolCall.from_raw("1", "search", '{"q": "Zürich", "filters": {"max": 2.5, "x": null}}')
    assert c.arguments == {"q": "Zürich", "filters": {"max": 2.5, "x": None}}
    assert c.arguments_raw is None
    assert c.arguments_json() == '{"q":"Zürich","filters":{"max":2.5,"x":null}}'


@pytest.mark.parametrize(
    "raw",
    ['{"q": "paris"', "{not json", "", "{'q': 1}", '{"a": 1} trailing'],
    ids=["truncated", "garbage", "empty", "single-quotes", "trailing"],
)
def test_from_raw_invalid_json_is_kept_raw(raw: str) -> None:
    c = ToolCall.from_raw("1", "search", raw)
    assert c.arguments is None
    assert c.arguments_raw == raw
    assert c.arguments_json() == raw


@pytest.mark.parametrize("raw", ["[1, 2]", '"text"', "42", "null", "true"])
def test_from_raw_json_that_is_not_an_object_is_kept_raw(raw: str) -> None:
    c = ToolCall.from_raw("1", "search", raw)
    assert c.arguments is None
    assert c.arguments_raw == raw


@pytest.mark.parametrize(
    "raw", ['{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}', '{"a": 1e999}']
)
def test_from_raw_non_finite_numbers_are_not_json(raw: str) -> None:
    # Python's json module accepts these, but they are not JSON and would be written back
    # as null, silently changing the call; they must be kept raw like any malformed call.
    c = ToolCall.from_raw("1", "search", raw)
    assert c.arguments is None
    assert c.arguments_raw == raw


def test_from_raw_none_means_no_arguments() -> None:
    c = ToolCall.from_raw("1", "ping", None)
    assert c.arguments == {}
    assert c.arguments_raw is None
    assert c.arguments_json() == "{}"


def test_unparsable_call_round_trips() -> None:
    c = ToolCall.from_raw("1", "search", '{"q": "par')
    conversation = Conversation(id="c", messages=[AssistantMessage(tool_calls=[c])])
    again = Conversation.model_validate_json(dump_line(conversation))
    assert again.tool_calls()[0].arguments is None
    assert again.tool_calls()[0].arguments_raw == '{"q": "par'


def test_tool_call_needs_id_and_name() -> None:
    with pytest.raises(ValidationError):
        ToolCall(id="", name="x")
    with pytest.raises(ValidationError):
        ToolCall(id="1", name="")


# --- Score ---------------------------------------------------------------------------


def score(value: Any, kind: str) -> Score:
    return Score.model_validate(
        {"conversation_id": "c", "name": "goal", "value": value, "kind": kind}
    )


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (1, "binary"),
        (0.0, "binary"),
        ("true", "binary"),
        (1.0, "categorical"),
        (True, "categorical"),
        (True, "ordinal"),
        ("3", "ordinal"),
        (False, "continuous"),
        ("0.5", "continuous"),
    ],
)
def test_score_value_must_match_kind(value: Any, kind: str) -> None:
    with pytest.raises(ValidationError, match=f"a {kind} score needs"):
        score(value, kind)


def test_score_binary_rejects_json_number() -> None:
    line = '{"conversation_id":"c","name":"goal","value":1,"kind":"binary"}'
    with pytest.raises(ValidationError, match="binary score needs true/false"):
        Score.model_validate_json(line)


def test_score_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValidationError):
        score(1.0, "likert")


@pytest.mark.parametrize(
    ("value", "kind", "numeric"),
    [
        (True, "binary", 1.0),
        (False, "binary", 0.0),
        (4, "ordinal", 4.0),
        (0.25, "continuous", 0.25),
        (-3.5, "continuous", -3.5),
        ("refund", "categorical", None),
    ],
)
def test_score_numeric(value: Any, kind: str, numeric: float | None) -> None:
    s = score(value, kind)
    assert s.numeric == numeric
    if numeric is not None:
        assert type(s.numeric) is float


def test_score_ordinal_keeps_number_and_rejects_negative_cost() -> None:
    assert score(3, "ordinal").value == 3.0
    with pytest.raises(ValidationError):
        Score(conversation_id="c", name="n", value=1.0, kind="continuous", cost_usd=-1)


@given(scores())
def test_generated_scores_round_trip(s: Score) -> None:
    line = dump_line(s)
    again = Score.model_validate_json(line)
    assert again == s
    assert dump_line(again) == line
    if s.kind == "categorical":
        assert s.numeric is None
    else:
        assert isinstance(s.numeric, float)


# --- turns, tool_results, usage ------------------------------------------------------


def support_conversation() -> Conversation:
    return Conversation(
        id="support",
        messages=[
            SystemMessage(content="You are a travel agent."),  # 0 preamble
            AssistantMessage(content="Hi! How can I help?"),  # 1 preamble
            UserMessage(content="Find me a flight."),  # 2 turn 0
            asking("a", "b", usage=Usage(input_tokens=100, output_tokens=10, cost_usd=0.01)),
            result("b", "flight B"),  # 4: parallel results answered out of order
            result("a", "flight A"),  # 5
            AssistantMessage(content="Two options.", usage=Usage(input_tokens=150)),  # 6
            UserMessage(content="Book A."),  # 7 turn 1
            asking("a", usage=Usage(output_tokens=5, cost_usd=0.002)),  # 8: id reused
            result("a", "booked", is_error=False),  # 9
            AssistantMessage(content="Done."),  # 10
            UserMessage(content="Thanks"),  # 11 turn 2 (no reply)
        ],
    )


def test_turns_split_on_user_messages() -> None:
    c = support_conversation()
    turns = c.turns()
    assert [t.index for t in turns] == [0, 1, 2]
    assert [t.start for t in turns] == [2, 7, 11]
    assert [len(t.messages) for t in turns] == [5, 4, 1]
    assert [t.user.content for t in turns] == ["Find me a flight.", "Book A.", "Thanks"]
    assert [m.content for m in turns[0].assistant_messages] == [None, "Two options."]
    assert [m.content for m in turns[1].assistant_messages] == [None, "Done."]
    assert turns[2].assistant_messages == []
    assert turns[0].messages == c.messages[2:7]


def test_preamble_is_everything_before_first_user_message() -> None:
    c = support_conversation()
    assert c.preamble() == c.messages[:2]
    no_user = Conversation(id="x", messages=[SystemMessage(content="s"), AssistantMessage()])
    assert no_user.turns() == []
    assert no_user.preamble() == no_user.messages
    assert Conversation(id="e").turns() == []
    assert Conversation(id="e").preamble() == []
    starts_with_user = Conversation(id="u", messages=[UserMessage(content="x")])
    assert starts_with_user.preamble() == []


def test_tool_results_link_by_call_position() -> None:
    c = support_conversation()
    calls = c.tool_calls()
    assert [x.id for x in calls] == ["a", "b", "a"]
    results = c.tool_results()
    assert {k: v.content for k, v in results.items()} == {
        0: "flight A",
        1: "flight B",
        2: "booked",
    }
    assert all(results[i].tool_call_id == calls[i].id for i in results)


def test_usage_sums_assistant_usage() -> None:
    total = support_conversation().usage()
    assert total.input_tokens == 250
    assert total.output_tokens == 15
    assert total.cost_usd == pytest.approx(0.012)


def test_usage_without_costs_has_no_cost() -> None:
    c = Conversation(
        id="c",
        messages=[
            UserMessage(content="hi"),
            AssistantMessage(content="a", usage=Usage(input_tokens=3, output_tokens=4)),
            AssistantMessage(content="b"),
        ],
    )
    total = c.usage()
    assert (total.input_tokens, total.output_tokens, total.cost_usd) == (3, 4, None)
    empty = Conversation(id="e").usage()
    assert (empty.input_tokens, empty.output_tokens, empty.cost_usd) == (0, 0, None)


def test_text_joins_content_and_text_parts() -> None:
    m = UserMessage(content="look", parts=[TextPart(text="line two"), TextPart(text="three")])
    assert m.text == "look\nline two\nthree"
    assert UserMessage().text == ""


def test_dump_omits_empty_fields() -> None:
    c = Conversation(id="c", messages=[UserMessage(content="hi"), AssistantMessage(content="yo")])
    assert json.loads(dump_line(c)) == {
        "schema_version": 1,
        "id": "c",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "yo"},
        ],
    }


# --- properties of generated conversations -----------------------------------------------


@given(conversations())
def test_round_trip_through_canonical_json(c: Conversation) -> None:
    line = dump_line(c)
    again = Conversation.model_validate_json(line)
    assert again == c
    assert dump_line(again) == line


@given(conversations())
def test_turns_partition_messages_after_preamble(c: Conversation) -> None:
    preamble = c.preamble()
    turns = c.turns()
    assert preamble + [m for t in turns for m in t.messages] == c.messages
    assert all(m.role != "user" for m in preamble)
    position = len(preamble)
    for n, t in enumerate(turns):
        assert t.index == n
        assert t.start == position
        assert t.user is c.messages[t.start]
        assert all(m.role != "user" for m in t.messages[1:])
        position += len(t.messages)
    assert position == len(c.messages)


@given(conversations())
def test_tool_results_answer_their_calls(c: Conversation) -> None:
    calls = c.tool_calls()
    results = c.tool_results()
    tool_messages = [m for m in c.messages if isinstance(m, ToolMessage)]
    assert len(results) == len(tool_messages)
    assert sorted(map(id, results.values())) == sorted(map(id, tool_messages))
    for position, message in results.items():
        assert calls[position].id == message.tool_call_id


@given(conversations(), st.data())
def test_dropping_a_calls_message_breaks_its_results(c: Conversation, data: st.DataObject) -> None:
    # Messages whose calls got an answer, found by call position.
    answered = set(c.tool_results())
    candidates: list[int] = []
    position = 0
    for i, m in enumerate(c.messages):
        if isinstance(m, AssistantMessage):
            span = range(position, position + len(m.tool_calls))
            if answered.intersection(span):
                candidates.append(i)
            position = span.stop
    if not candidates:
        assert find_problems(c) == []
        return
    drop = data.draw(st.sampled_from(candidates))
    broken = Conversation.model_construct(
        id=c.id, messages=[m for i, m in enumerate(c.messages) if i != drop]
    )
    problems = find_problems(broken)
    assert problems
    assert all(f"conversation {c.id!r}, message" in p for p in problems)
