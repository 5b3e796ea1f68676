"""The airline environment against tau-bench's 200 recorded gpt-4o conversations.

The recordings predate one data change: on 2025-01-16 (tau-bench commit 404f33e) the
users' address key ``province`` was renamed ``state``, in place, values unchanged. The
bundled database is the current one, so its ``get_user_details`` results differ from the
recorded ones by exactly that key name; ``recording_era_db`` undoes the rename, and
against it every recorded result and every recorded ground-truth hash reproduces.
"""

import hashlib
import json
import time
import warnings
from collections import Counter
from typing import Any

import pytest

from convsim._assets import tau_airline_runs
from convsim.datasets import ReadReport
from convsim.envs import AirlineEnvironment
from convsim.envs.airline import (
    TOOL_NAMES,
    action_calls,
    agent_replies,
    episode_ended,
    expected_state_hash,
    load_airline_db,
    load_airline_tasks,
    outputs_found,
    replay_actions,
    replay_calls,
    tau_bench_reward,
)
from convsim.errors import ConfigError
from convsim.formats import read_tau_bench
from convsim.tools import ToolEnvironment, Toolset
from convsim.trace import AssistantMessage, Conversation, ToolCall, UserMessage

RECORDED_CALLS = 1164
GET_USER_DETAILS_CALLS = 120


@pytest.fixture(scope="module")
def runs() -> list[Conversation]:
    convs = list(read_tau_bench(tau_airline_runs(), report=ReadReport(file="runs")))
    assert len(convs) == 200
    return convs


@pytest.fixture(scope="module")
def recording_era_db() -> dict[str, Any]:
    db = load_airline_db()
    for user in db["users"].values():
        user["address"] = {
            ("province" if k == "state" else k): v for k, v in user["address"].items()
        }
    return db


def _call(name: str, n: int = 0, **arguments: Any) -> ToolCall:
    return ToolCall(id=f"c{n}", name=name, arguments=arguments)


async def _run(env: AirlineEnvironment, name: str, **arguments: Any) -> str:
    (result,) = await replay_calls(env, [_call(name, **arguments)])
    assert result.content is not None
    return result.content


# --- replaying the recorded conversations ---------------------------------------------------


async def test_recorded_calls_reproduce_on_the_bundled_database(
    runs: list[Conversation],
) -> None:
    exact = 0
    renamed: Counter[str] = Counter()
    for conv in runs:
        env = AirlineEnvironment()
        recorded = conv.tool_results()
        results = await replay_calls(env, conv.tool_calls())
        for pos, (call, result) in enumerate(zip(conv.tool_calls(), results, strict=True)):
            assert result.tool_call_id == call.id and result.name == call.name
            if result.content == recorded[pos].content:
                exact += 1
                continue
            # The only known difference: users read before the province -> state rename.
            old = recorded[pos].content or ""
            assert call.name == "get_user_details", (conv.id, pos)
            assert '"province": ' in old
            assert old.replace('"province": ', '"state": ') == result.content, (conv.id, pos)
            renamed[call.name] += 1
    assert exact + sum(renamed.values()) == RECORDED_CALLS
    # Every get_user_details call found a user, so every one shows an address.
    assert renamed == {"get_user_details": GET_USER_DETAILS_CALLS}
    assert exact == RECORDED_CALLS - GET_USER_DETAILS_CALLS


async def test_recorded_calls_and_ground_truth_hashes_reproduce_on_the_recording_era_db(
    runs: list[Conversation], recording_era_db: dict[str, Any]
) -> None:
    agent_env = AirlineEnvironment(recording_era_db)
    gold_env = AirlineEnvironment(recording_era_db)
    exact = 0
    gold_hashes: dict[int, str] = {}
    checked = 0
    for conv in runs:
        agent_env.reset()
        recorded = conv.tool_results()
        results = await replay_calls(agent_env, conv.tool_calls())
        exact += sum(r.content == recorded[pos].content for pos, r in enumerate(results))
        info: Any = conv.metadata.get("reward_info")
        if info is None or "gt_data_hash" not in info["info"]:
            continue
        details = info["info"]
        task: Any = conv.metadata["task"]
        task_id = int(conv.metadata["task_id"])  # type: ignore[arg-type]
        if task_id not in gold_hashes:
            gold_env.reset()
            await replay_actions(gold_env, task["actions"])
            gold_hashes[task_id] = gold_env.tau_bench_hash()
        # tau-bench's own hash of the ground-truth state, byte for byte.
        assert gold_hashes[task_id] == details["gt_data_hash"], conv.id
        assert (agent_env.tau_bench_hash() == details["gt_data_hash"]) == details["r_actions"]
        checked += 1
    assert exact == RECORDED_CALLS
    # 5 runs hit the step limit (no reward_info); 13 record the outputs check instead.
    assert checked == 182


async def test_recomputed_rewards_match_all_200_recorded_rewards(
    runs: list[Conversation],
) -> None:
    parts: Counter[tuple[bool, bool, bool]] = Counter()
    for conv in runs:
        result = await tau_bench_reward(conv)
        assert result.reward == conv.metadata["reward"], conv.id
        info: Any = conv.metadata.get("reward_info")
        if info is not None:
            assert info["reward"] == result.reward
            if "r_actions" in info["info"]:
                assert bool(info["info"]["r_actions"]) == result.state_matches, conv.id
            else:
                assert info["info"]["outputs"] == result.outputs, conv.id
        else:
            assert not result.ended, conv.id
        parts[(result.ended, result.state_matches, all(result.outputs.values()))] += 1
    assert sum(r for (ended, state, out), r in parts.items() if ended and state and out) == 84
    # task46-trial3 ran out of steps with a matching state: only the end check zeroes it.
    assert parts[(False, True, True)] == 1


def test_every_recorded_tool_is_defined(runs: list[Conversation]) -> None:
    used = {c.name for conv in runs for c in conv.tool_calls()}
    assert used == set(TOOL_NAMES)
    assert len(TOOL_NAMES) == 14


def test_bundled_tasks_are_the_tasks_that_were_run(runs: list[Conversation]) -> None:
    tasks = load_airline_tasks()
    assert [t["task_index"] for t in tasks] == list(range(50))
    reworded = set()
    for conv in runs:
        ran: Any = conv.metadata["task"]
        task = tasks[int(conv.metadata["task_id"])]  # type: ignore[arg-type]
        assert (task["user_id"], task["actions"], task["outputs"]) == (
            ran["user_id"],
            ran["actions"],
            ran["outputs"],
        )
        if task["instruction"] != ran["instruction"]:
            reworded.add(task["task_index"])
    assert reworded == set(range(37))


# --- the environment -------------------------------------------------------------------------


def test_implements_the_tool_environment_protocol() -> None:
    env = AirlineEnvironment()
    assert isinstance(env, ToolEnvironment)
    tools = env.tools()
    assert [t.name for t in tools] == list(TOOL_NAMES)
    assert [t.name for t in tools if t.terminal] == ["transfer_to_human_agents"]
    for t in tools:
        assert t.description
        assert t.parameters["type"] == "object"
        assert set(t.parameters["required"]) <= set(t.parameters["properties"])
    book = Toolset(tools).tools["book_reservation"].parameters
    assert book["properties"]["cabin"]["enum"] == ["basic_economy", "economy", "business"]
    assert book["properties"]["payment_methods"]["items"]["required"] == ["payment_id", "amount"]
    assert len(book["required"]) == 11
    json.dumps(Toolset(tools).openai_schemas())


async def test_reset_snapshot_and_hash() -> None:
    env = AirlineEnvironment()
    initial = env.state_hash()
    snapshot = env.snapshot()
    assert snapshot == load_airline_db()
    json.dumps(snapshot)
    assert AirlineEnvironment().state_hash() == initial

    await _run(env, "cancel_reservation", reservation_id="4WQ150")
    changed = env.state_hash()
    assert changed != initial
    # The hash depends only on the content, not on how the state was reached.
    assert AirlineEnvironment(env.snapshot()).state_hash() == changed
    assert env.snapshot()["reservations"]["4WQ150"]["status"] == "cancelled"
    assert "status" not in snapshot["reservations"]["4WQ150"]
    snapshot_after = env.snapshot()
    snapshot_after["users"].clear()
    assert env.state_hash() == changed

    env.reset()
    assert env.state_hash() == initial
    assert env.snapshot() == snapshot


async def test_environments_do_not_share_changes() -> None:
    a, b = AirlineEnvironment(), AirlineEnvironment()
    await _run(a, "send_certificate", user_id="mia_li_3668", amount=100)
    assert (
        "certificate_3221322"
        in json.loads(await _run(a, "get_user_details", user_id="mia_li_3668"))["payment_methods"]
    )
    assert (
        "certificate_3221322"
        not in json.loads(await _run(b, "get_user_details", user_id="mia_li_3668"))[
            "payment_methods"
        ]
    )
    assert a.state_hash() != b.state_hash()
    assert b.state_hash() == AirlineEnvironment().state_hash()


def test_tau_bench_hash_matches_a_direct_computation() -> None:
    def hashable(value: Any) -> Any:
        if isinstance(value, dict):
            return tuple((k, hashable(v)) for k, v in sorted(value.items()))
        if isinstance(value, list):
            return tuple(hashable(v) for v in value)
        return value

    def direct(db: Any) -> str:
        return hashlib.sha256(str(hashable(db)).encode()).hexdigest()

    small = {
        "flights": {},
        "reservations": {"R1": {"reservation_id": "R1", "user_id": "u", "flights": []}},
        "users": {
            "u": {"payment_methods": {}, "reservations": ["R1"]},
            "v": {"payment_methods": {}, "reservations": []},
        },
    }
    env = AirlineEnvironment(small)
    assert env.tau_bench_hash() == direct(small)
    env.tools()  # binding tools must not change anything
    assert env.tau_bench_hash() == direct(env.snapshot())


async def test_tau_bench_hash_follows_writes() -> None:
    env = AirlineEnvironment()
    await _run(env, "send_certificate", user_id="mia_li_3668", amount=100)
    snapshot = env.snapshot()
    assert env.tau_bench_hash() == AirlineEnvironment(snapshot).tau_bench_hash()
    assert env.tau_bench_hash() != AirlineEnvironment().tau_bench_hash()


def test_rejects_a_database_of_the_wrong_shape() -> None:
    with pytest.raises(ConfigError, match="exactly the keys"):
        AirlineEnvironment({"flights": {}, "users": {}})
    with pytest.raises(ConfigError, match="must be a JSON object"):
        AirlineEnvironment({"flights": [], "reservations": {}, "users": {}})
    with pytest.raises(ConfigError, match="not JSON"):
        AirlineEnvironment({"flights": {}, "reservations": {}, "users": {"u": object()}})


# --- tools -----------------------------------------------------------------------------------


async def test_lookup_errors_use_tau_bench_wording() -> None:
    env = AirlineEnvironment()
    assert await _run(env, "get_user_details", user_id="nobody_0000") == "Error: user not found"
    # tau-bench says "user" for a missing reservation too.
    assert await _run(env, "get_reservation_details", reservation_id="NOPE00") == (
        "Error: user not found"
    )
    assert await _run(env, "cancel_reservation", reservation_id="NOPE00") == (
        "Error: reservation not found"
    )
    assert await _run(env, "send_certificate", user_id="nobody_0000", amount=5) == (
        "Error: user not found"
    )
    assert env.state_hash() == AirlineEnvironment().state_hash()


async def test_schema_rejects_invalid_arguments() -> None:
    env = AirlineEnvironment()
    toolset = Toolset(env.tools())
    bad = [
        _call("get_user_details"),
        _call(
            "update_reservation_baggages",
            reservation_id="4WQ150",
            total_baggages="2",
            nonfree_baggages=0,
            payment_id="gift_card_3576581",
        ),
        _call(
            "book_reservation",
            user_id="mia_li_3668",
            origin="JFK",
            destination="LAX",
            flight_type="one_way",
            cabin="first",
            flights=[],
            passengers=[],
            payment_methods=[],
            total_baggages=0,
            nonfree_baggages=0,
            insurance="no",
        ),
        _call(
            "update_reservation_passengers",
            reservation_id="4WQ150",
            passengers=[{"first_name": "A"}],
        ),
    ]
    for call in bad:
        result = await toolset.call(call)
        assert result.is_error
        assert (result.content or "").startswith(f"Error: invalid arguments for {call.name!r}")
    assert "'first' is not one of" in ((await toolset.call(bad[2])).content or "")
    assert env.state_hash() == AirlineEnvironment().state_hash()


def _booking(**overrides: Any) -> dict[str, Any]:
    # mia_li_3668 holds certificate_4856383 (100) and certificate_7504069 (250).
    booking: dict[str, Any] = {
        "user_id": "mia_li_3668",
        "origin": "JFK",
        "destination": "SEA",
        "flight_type": "one_way",
        "cabin": "economy",
        "flights": [{"flight_number": "HAT069", "date": "2024-05-20"}],
        "passengers": [{"first_name": "Mia", "last_name": "Li", "dob": "1990-04-05"}],
        "payment_methods": [{"payment_id": "credit_card_4421486", "amount": 0}],
        "total_baggages": 0,
        "nonfree_baggages": 0,
        "insurance": "no",
    }
    booking.update(overrides)
    return booking


async def _economy_price(env: AirlineEnvironment) -> int:
    found = json.loads(
        await _run(env, "search_direct_flight", origin="JFK", destination="SEA", date="2024-05-20")
    )
    (flight,) = [f for f in found if f["flight_number"] == "HAT069"]
    price: int = flight["prices"]["economy"]
    return price


async def test_book_reservation_checks_balances_and_totals() -> None:
    env = AirlineEnvironment()
    initial = env.state_hash()
    price = await _economy_price(env)
    pay_cert = [{"payment_id": "certificate_4856383", "amount": price}]
    assert price > 100
    assert await _run(env, "book_reservation", **_booking(payment_methods=pay_cert)) == (
        "Error: not enough balance in payment method certificate_4856383"
    )
    assert await _run(env, "book_reservation", **_booking()) == (
        f"Error: payment amount does not add up, total price is {price}, but paid 0"
    )
    with_extras = _booking(insurance="yes", nonfree_baggages=2)
    assert await _run(env, "book_reservation", **with_extras) == (
        f"Error: payment amount does not add up, total price is {price + 30 + 100}, but paid 0"
    )
    assert (
        await _run(
            env,
            "book_reservation",
            **_booking(flights=[{"flight_number": "HAT999", "date": "2024-05-20"}]),
        )
        == "Error: flight HAT999 not found"
    )
    assert env.state_hash() == initial


async def test_book_reservation_charges_and_generates_ids() -> None:
    env = AirlineEnvironment()
    price = await _economy_price(env)
    pay = [
        {"payment_id": "certificate_7504069", "amount": 100},
        {"payment_id": "credit_card_4421486", "amount": price - 100},
    ]
    booking = _booking(payment_methods=pay)
    first = json.loads(await _run(env, "book_reservation", **booking))
    assert first["reservation_id"] == "HATHAT"
    assert first["flights"] == [
        {
            "flight_number": "HAT069",
            "date": "2024-05-20",
            "price": price,
            "origin": "JFK",
            "destination": "SEA",
        }
    ]
    assert first["payment_history"] == pay and first["created_at"] == "2024-05-15T15:00:00"
    user = json.loads(await _run(env, "get_user_details", user_id="mia_li_3668"))
    # The certificate is used up whole although only 100 of its 250 were taken.
    assert "certificate_7504069" not in user["payment_methods"]
    assert user["reservations"][-1] == "HATHAT"

    # The stored booking does not share objects with the call's arguments.
    pay[1]["amount"] = 0
    assert json.loads(await _run(env, "get_reservation_details", reservation_id="HATHAT")) == first
    cancelled = json.loads(await _run(env, "cancel_reservation", reservation_id="HATHAT"))
    assert cancelled["status"] == "cancelled"
    assert [p["amount"] for p in cancelled["payment_history"]] == [
        100,
        price - 100,
        -100,
        -(price - 100),
    ]
    assert len(booking["payment_methods"]) == 2

    again = _booking(payment_methods=[{"payment_id": "credit_card_4421486", "amount": price}])
    assert json.loads(await _run(env, "book_reservation", **again))["reservation_id"] == "HATHAU"


async def test_changes_to_a_reservation_cannot_use_certificates_or_empty_gift_cards() -> None:
    env = AirlineEnvironment()
    reservation = json.loads(await _run(env, "get_reservation_details", reservation_id="4WQ150"))
    user = reservation["user_id"]
    wallet = json.loads(await _run(env, "get_user_details", user_id=user))["payment_methods"]
    env_cert = AirlineEnvironment()
    await _run(env_cert, "send_certificate", user_id=user, amount=50)
    result = await _run(
        env_cert,
        "update_reservation_baggages",
        reservation_id="4WQ150",
        total_baggages=6,
        nonfree_baggages=1,
        payment_id="certificate_3221322",
    )
    assert result == "Error: certificate cannot be used to update reservation"
    gift = next(k for k, v in wallet.items() if v["source"] == "gift_card")
    too_many = wallet[gift]["amount"] // 50 + 1
    result = await _run(
        env,
        "update_reservation_baggages",
        reservation_id="4WQ150",
        total_baggages=5 + too_many,
        nonfree_baggages=too_many,
        payment_id=gift,
    )
    assert result == "Error: gift card balance is not enough"
    updated = json.loads(
        await _run(
            env,
            "update_reservation_baggages",
            reservation_id="4WQ150",
            total_baggages=6,
            nonfree_baggages=1,
            payment_id=gift,
        )
    )
    assert updated["payment_history"][-1] == {"payment_id": gift, "amount": 50}
    after = json.loads(await _run(env, "get_user_details", user_id=user))["payment_methods"]
    assert after[gift]["amount"] == wallet[gift]["amount"] - 50


async def test_send_certificate_issues_three_fixed_ids() -> None:
    env = AirlineEnvironment()
    messages = [
        await _run(env, "send_certificate", user_id="mia_li_3668", amount=a)
        for a in (50, 75.5, 10, 1)
    ]
    assert messages[:3] == [
        "Certificate certificate_3221322 added to user mia_li_3668 with amount 50.",
        "Certificate certificate_3221323 added to user mia_li_3668 with amount 75.5.",
        "Certificate certificate_3221324 added to user mia_li_3668 with amount 10.",
    ]
    assert messages[3].startswith("Error: ")


async def test_update_passengers_requires_the_same_count() -> None:
    env = AirlineEnvironment()
    reservation = json.loads(await _run(env, "get_reservation_details", reservation_id="4WQ150"))
    assert len(reservation["passengers"]) == 3
    one = [{"first_name": "A", "last_name": "B", "dob": "2000-01-01"}]
    assert await _run(
        env, "update_reservation_passengers", reservation_id="4WQ150", passengers=one
    ) == ("Error: number of passengers does not match")
    three = one * 3
    updated = json.loads(
        await _run(env, "update_reservation_passengers", reservation_id="4WQ150", passengers=three)
    )
    assert updated["passengers"] == three


@pytest.mark.parametrize(
    "expression",
    [
        "2 + 2",
        "1/3",
        "(100 - 15) * 3",
        "2 ** 10",
        "7 // 2",
        "-5.5 + .5",
        "1/0",
        "1.0/0",
        "(",
        "",
        "3 +",
        "01",
        "()",
        "...",
        "(2)(3)",
        "2 ** -1",
        "0 ** -1",
    ],
)
def test_calculate_matches_python_arithmetic(expression: str) -> None:
    # The reference is what tau-bench does: Python's own evaluation, without builtins.
    # Compiling "(2)(3)" warns; under pytest's -W error that would turn into an error
    # tau-bench never saw.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            expected = str(round(float(eval(expression, {"__builtins__": {}}, {})), 2))
    except Exception as e:
        expected = f"Error: {e}"
    env = AirlineEnvironment()
    tool = Toolset(env.tools()).tools["calculate"]
    assert tool.fn(expression=expression) == expected


def test_calculate_refuses_other_characters_and_huge_powers() -> None:
    tool = Toolset(AirlineEnvironment().tools()).tools["calculate"]
    assert tool.fn(expression="__import__('os')") == "Error: invalid characters in expression"
    assert tool.fn(expression="2 + x") == "Error: invalid characters in expression"
    started = time.perf_counter()
    assert tool.fn(expression="9 ** 9 ** 9") == "Error: int too large to convert to float"
    # Evaluating it would take minutes; the refusal is immediate.
    assert time.perf_counter() - started < 5


# --- grading helpers -------------------------------------------------------------------------


def _conversation(*messages: Any) -> Conversation:
    return Conversation(id="c", messages=list(messages))


def test_outputs_found_ignores_case_commas_and_text_beside_tool_calls() -> None:
    conv = _conversation(
        UserMessage(content="hi"),
        AssistantMessage(
            content="That is 23,553 dollars", tool_calls=[_call("think", thought="x")]
        ),
        AssistantMessage(content="The total is $1,000 and SEVEN."),
    )
    assert agent_replies(conv) == ["The total is $1,000 and SEVEN."]
    assert outputs_found(conv, ["1000", "seven", "23553"]) == {
        "1000": True,
        "seven": True,
        "23553": False,
    }


def test_episode_ended() -> None:
    assert episode_ended(_conversation(UserMessage(content="thanks ###STOP###")))
    assert not episode_ended(_conversation(UserMessage(content="thanks")))
    transfer = AssistantMessage(tool_calls=[_call("transfer_to_human_agents", summary="s")])
    assert episode_ended(_conversation(UserMessage(content="help"), transfer))


async def test_expected_state_hash_skips_terminal_and_respond_actions() -> None:
    actions = [
        {"name": "send_certificate", "kwargs": {"user_id": "mia_li_3668", "amount": 50}},
        {"name": "respond", "kwargs": {"content": "done"}},
        {"name": "transfer_to_human_agents", "kwargs": {"summary": "s"}},
    ]
    assert [c.name for c in action_calls(actions)] == [
        "send_certificate",
        "transfer_to_human_agents",
    ]
    env = AirlineEnvironment()
    results = await replay_actions(env, actions)
    assert [r.name for r in results] == ["send_certificate"]
    expected = env.state_hash()
    assert await expected_state_hash(actions) == expected
    # A given environment is reset first, so its earlier changes do not count.
    assert await expected_state_hash(actions, env) == expected
    with pytest.raises(ConfigError):
        action_calls([{"name": 3}])


async def test_tau_bench_reward_needs_a_task() -> None:
    with pytest.raises(ConfigError, match="no tau-bench task"):
        await tau_bench_reward(_conversation(UserMessage(content="hi")))
