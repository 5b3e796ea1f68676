from pathlib import Path

import pytest

from convsim._llm import ModelRequest, ScriptedClient
from convsim.errors import ConfigError, ModelCallError
from convsim.trace import AssistantMessage, Conversation, UserMessage
from convsim.users import (
    LLMUser,
    Persona,
    ScriptedUser,
    flipped_messages,
    load_persona,
    load_personas,
    void_reason,
)

ROOT = Path(__file__).parents[2]

PERSONA = Persona(
    name="refund",
    goal="You want a refund for order #W123.",
    known_facts={"order_id": "W123", "email": "ana@example.com"},
    unknown_facts=["the card number"],
    temperament="impatient",
)


def conv(*texts: tuple[str, str]) -> Conversation:
    msgs = [
        UserMessage(content=t) if r == "user" else AssistantMessage(content=t) for r, t in texts
    ]
    return Conversation(id="c", messages=msgs)


def test_all_shipped_tau_personas_validate() -> None:
    personas = load_personas(ROOT / "personas" / "tau-airline")
    assert len(personas) == 50
    p = next(p for p in personas if p.name == "tau-airline-00")
    assert p.known_facts == {"user_id": "mia_li_3668"}
    assert p.scripted_turns and [e["type"] for e in p.expectations] == [
        "completed",
        "end_state",
        "outputs_said",
    ]
    assert p.tags == {"domain": "airline", "task": "0"}


def test_bad_persona_names_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ngoal: g\npatience: 0\nstop:\n  on_goal_met: maybe\ncolour: red\n")
    with pytest.raises(ConfigError) as err:
        load_persona(bad)
    text = str(err.value)
    assert f"{bad}: patience: " in text
    assert f"{bad}: stop.on_goal_met: " in text
    assert f"{bad}: colour: Extra inputs are not permitted" in text
    assert "convsim schema persona" in text


def test_load_personas_reports_every_bad_file_and_duplicates(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: same\ngoal: g\n")
    (tmp_path / "b.yaml").write_text("name: same\ngoal: g\n")
    (tmp_path / "c.yaml").write_text("- not a mapping\n")
    with pytest.raises(ConfigError) as err:
        load_personas(tmp_path)
    assert "already used" in str(err.value) and "c.yaml: a persona file must hold a mapping" in str(
        err.value
    )


async def test_scripted_user_follows_the_conversation_not_call_count() -> None:
    user = ScriptedUser(["hi", "bye"])
    assert (await user.next_turn(conv(), 0)).text == "hi"
    assert (await user.next_turn(conv(("user", "hi"), ("assistant", "hello")), 0)).text == "bye"
    end = await user.next_turn(conv(("user", "hi"), ("user", "bye")), 0)
    assert end.stop and end.reason == "script finished"


def test_roles_are_flipped_and_tool_traffic_hidden() -> None:
    c = conv(("user", "I want a refund"), ("assistant", "Order id?"))
    msgs = flipped_messages(PERSONA, c)
    assert msgs[0]["role"] == "system" and "Reveal each one only when" in msgs[0]["content"]
    assert [m["role"] for m in msgs[1:]] == ["assistant", "user"]


async def test_llm_user_structured_output_and_one_reask() -> None:
    client = ScriptedClient(
        [
            "not json",
            '{"reason": "asked for id", "message": "It is W123", "stop": false}',
            '{"reason": "done", "message": "Thanks!", "stop": true}',
        ]
    )
    user = LLMUser(PERSONA, model="fake/user", client=client)
    turn = await user.next_turn(conv(("user", "refund please"), ("assistant", "Order id?")), seed=7)
    assert (turn.text, turn.stop, turn.reason) == ("It is W123", False, "asked for id")
    assert len(client.requests) == 2  # the invalid answer was re-asked once
    assert (
        "answer was invalid: the answer is not JSON" in client.requests[1].messages[-1]["content"]
    )
    req: ModelRequest = client.requests[0]
    assert req.party == "user" and req.seed == 7 and req.response_format is not None
    end = await user.next_turn(conv(), seed=8)
    assert end.stop and end.text == "Thanks!"


async def test_llm_user_gives_up_after_repeated_invalid_output() -> None:
    user = LLMUser(PERSONA, model="m", client=ScriptedClient(['{"message": 1}', "{}"]))
    with pytest.raises(ModelCallError, match="gave invalid output 2 times"):
        await user.next_turn(conv(), seed=0)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("   ", "empty user turn"),
        ("Hello! How can I help you today?", "spoke as the agent"),
        ("Thought: I should ask for a refund.\nI want a refund", "leaked its reasoning"),
        ("As the simulated user I want my refund", "leaked its reasoning"),
        ("My reservation is ZX9Q2P", "does not hold: ['ZX9Q2P']"),
        ("Email me at bob@evil.test", "does not hold: ['bob@evil.test']"),
    ],
)
def test_self_checks_void_bad_turns(text: str, reason: str) -> None:
    c = conv(
        ("user", "I want a refund for order W123"), ("assistant", "Sure, what is the order id?")
    )
    found = void_reason(text, PERSONA, c)
    assert found is not None and reason in found


@pytest.mark.parametrize(
    "text",
    [
        "It's W123.",
        "ana@example.com",
        "I don't know the card number, sorry.",
        "I have 2 bags and want to fly on May 20",
        "Yes, please go ahead with confirmation ABC123.",
    ],
)
def test_self_checks_pass_honest_turns(text: str) -> None:
    c = conv(
        ("user", "I want a refund for order W123"),
        ("assistant", "Your confirmation code will be ABC123. Shall I proceed?"),
    )
    assert void_reason(text, PERSONA, c) is None


def test_restart_is_detected() -> None:
    c = conv(("user", "Hi, I want a refund for my order please"), ("assistant", "Done, refunded."))
    reason = void_reason("Hi, I want a refund for my order please!", PERSONA, c)
    assert reason is not None and "restarted" in reason
