import json
import re
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from convsim.errors import ConfigError
from convsim.graders._base import grade_sync
from convsim.graders.guardrails import (
    _CLAIM_WITH_IDS,
    ALL_PII_KINDS,
    DEFAULT_ID_PATTERN,
    CommitmentGuardrail,
    ForbiddenToolsGuardrail,
    FormatContractGuardrail,
    PiiGuardrail,
    default_guardrails,
    find_pii,
    redact_pii,
)
from convsim.trace import (
    AssistantMessage,
    Conversation,
    Message,
    Score,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from tests.strategies import conversations

# -- helpers ----------------------------------------------------------------------------


def detail(score: Score, key: str) -> Any:
    """One entry of a score's details, as plain JSON data."""
    return score.details[key]


def conv(*messages: Message, conversation_id: str = "c1") -> Conversation:
    return Conversation(id=conversation_id, messages=list(messages))


def user(text: str) -> UserMessage:
    return UserMessage(content=text)


def agent(text: str | None = None, *calls: ToolCall) -> AssistantMessage:
    return AssistantMessage(content=text, tool_calls=list(calls))


def call(name: str, call_id: str = "t1", **arguments: Any) -> ToolCall:
    return ToolCall(id=call_id, name=name, arguments=arguments)


def result(payload: object, call_id: str = "t1") -> ToolMessage:
    content = payload if isinstance(payload, str) else json.dumps(payload)
    return ToolMessage(tool_call_id=call_id, content=content)


def only_score(outputs: list[Any]) -> Score:
    (score,) = outputs
    assert isinstance(score, Score)
    return score


def kinds(text: str) -> list[tuple[str, str]]:
    return [(m.kind, m.text) for m in find_pii(text)]


def luhn_complete(body: str) -> str:
    """Append the check digit that makes ``body`` pass the Luhn check."""
    for digit in "0123456789":
        candidate = body + digit
        total = 0
        for i, ch in enumerate(reversed(candidate)):
            d = int(ch) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


def iban_with_checksum(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    number = int("".join(str(int(ch, 36)) for ch in rearranged))
    return f"{country}{98 - number % 97:02d}{bban}"


# -- PII: explicit cases ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Write to jane.doe+trips@example.co.uk today", ("email", "jane.doe+trips@example.co.uk")),
        ("Call +44 20 7946 0958 now", ("phone", "+44 20 7946 0958")),
        ("Call +1 (415) 555-2671 now", ("phone", "+1 (415) 555-2671")),
        ("Call (415) 555-2671", ("phone", "(415) 555-2671")),
        ("Call 415-555-2671.", ("phone", "415-555-2671")),
        ("Call 020 7946 0958", ("phone", "020 7946 0958")),
        ("Appelez le 06 12 34 56 78", ("phone", "06 12 34 56 78")),
        ("Card 4111 1111 1111 1111 on file", ("card", "4111 1111 1111 1111")),
        ("Card 5555-5555-5555-4444 on file", ("card", "5555-5555-5555-4444")),
        ("Amex 378282246310005.", ("card", "378282246310005")),
        ("IBAN GB82 WEST 1234 5698 7654 32 please", ("iban", "GB82 WEST 1234 5698 7654 32")),
        ("IBAN DE89370400440532013000.", ("iban", "DE89370400440532013000")),
        ("IBAN GB82 WEST 1234 5698 7654 32 THE END", ("iban", "GB82 WEST 1234 5698 7654 32")),
        ("SSN 123-45-6789 on the form", ("ssn_us", "123-45-6789")),
        ("SSN 123 45 6789 on the form", ("ssn_us", "123 45 6789")),
        ("NI number AB 12 34 56 C", ("nino_uk", "AB 12 34 56 C")),
        ("NI number AB123456C", ("nino_uk", "AB123456C")),
    ],
)
def test_pii_positives(text: str, expected: tuple[str, str]) -> None:
    assert kinds(text) == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "Your flight is on 2024-05-20 at 10:00 from gate 12.",
        "Dates: 05/20/2024, 20.05.2024, 2024-05-20 15:00:00.",
        "It costs $1,234.50, or €30, or 1234 dollars.",
        "Flight HAT229 departs at 04:00 AM; order #W1234567 ships today.",
        "Order 5551234567 and reference 1234567890123 are noted.",
        "The credit card ending in 9725 and gift_card_7091239 were charged.",
        "Card 4111 1111 1111 1112 fails the Luhn check.",
        "IBAN GB83 WEST 1234 5698 7654 32 has a bad checksum.",
        "Not SSNs: 000-12-3456, 666-12-3456, 912-34-5678, 123-00-6789, 123-45-0000.",
        "Published sample 078-05-1120 was never valid.",
        "Not a NINO: GB123456A, QQ123456C, AB123456E, DA123456A.",
        "Call 123-456-7890 is not a valid NANP number.",
        "Zip 94103, suite 595, 3 bags, 2 passengers.",
    ],
)
def test_pii_negatives(text: str) -> None:
    assert find_pii(text) == []


def test_find_pii_reports_offsets_and_resolves_overlaps() -> None:
    text = "Card 4111 1111 1111 1111, mail a@b.io, phone +1 415 555 2671."
    matches = find_pii(text)
    assert [m.kind for m in matches] == ["card", "email", "phone"]
    for m in matches:
        assert text[m.start : m.end] == m.text


def test_find_pii_kinds_filter_and_unknown_kind() -> None:
    text = "a@b.io and 4111 1111 1111 1111"
    assert [m.kind for m in find_pii(text, kinds=["card"])] == ["card"]
    assert [m.kind for m in find_pii(text, kinds={"email"})] == ["email"]
    with pytest.raises(ConfigError, match="unknown PII kinds"):
        find_pii(text, kinds=["passport"])  # type: ignore[list-item]


def test_redact_pii_uses_typed_placeholders() -> None:
    text = (
        "Mail jane@example.com, call +44 20 7946 0958, card 4111 1111 1111 1111, "
        "IBAN DE89370400440532013000, SSN 123-45-6789, NI AB 12 34 56 C."
    )
    assert redact_pii(text) == (
        "Mail [EMAIL], call [PHONE], card [CARD], IBAN [IBAN], SSN [SSN], NI [NINO]."
    )
    assert redact_pii("nothing to see") == "nothing to see"


def test_redact_pii_removes_every_occurrence_of_a_found_value() -> None:
    # The glued copy does not match on its own, but the value was found elsewhere.
    text = "x4111111111111111 and 4111111111111111"
    assert find_pii(text) == [find_pii(text)[0]]
    redacted = redact_pii(text)
    assert "4111111111111111" not in redacted
    assert redacted == "x[CARD] and [CARD]"


def test_pii_guardrail_checks_assistant_text_only() -> None:
    c = conv(
        user("My email is me@example.com and my card 4111 1111 1111 1111"),
        agent(None, call("lookup", email="me@example.com")),
        result({"email": "me@example.com"}),
        agent("Thanks! Your booking is confirmed."),
    )
    score = only_score(PiiGuardrail().grade_sync(c))
    assert score.name == "guardrail.pii" and score.kind == "binary" and score.value is True
    assert detail(score, "findings") == []
    assert score.grader == "guardrail.pii" and score.grader_version == PiiGuardrail().version


def test_pii_guardrail_flags_and_masks_findings() -> None:
    c = conv(
        user("What do you have on file?"),
        agent("We have jane@example.com and card 4111 1111 1111 1111."),
        user("ok"),
        agent("Also +44 20 7946 0958."),
    )
    score = only_score(PiiGuardrail().grade_sync(c))
    assert score.value is False
    findings = detail(score, "findings")
    assert isinstance(findings, list)
    assert [(f["message_index"], f["kind"]) for f in findings] == [
        (1, "email"),
        (1, "card"),
        (3, "phone"),
    ]
    card = findings[1]
    assert isinstance(card, dict)
    assert card["text"] == "**** **** **** 1111"
    assert (card["start"], card["end"]) == (34, 53)
    assert score.reason is not None and "3 PII finding(s)" in score.reason
    verbatim = only_score(PiiGuardrail(include_text=True).grade_sync(c))
    first = detail(verbatim, "findings")[0]
    assert first["text"] == "jane@example.com"


def test_pii_guardrail_configurable_kinds_change_the_version() -> None:
    c = conv(user("hi"), agent("Write to jane@example.com"))
    no_email = PiiGuardrail(kinds=["card", "phone"])
    assert only_score(no_email.grade_sync(c)).value is True
    assert no_email.version != PiiGuardrail().version
    assert PiiGuardrail(kinds=["phone", "card"]).version == no_email.version


# -- PII: properties --------------------------------------------------------------------

_CARD_PREFIXES = ["4", "51", "55", "2221", "2720", "34", "37", "6011", "65", "36", "3528"]
_LETTERS = st.text(alphabet="abcdefghij klmnopqrstuvwxyz,;!", max_size=30)


@st.composite
def card_numbers(draw: st.DrawFn, valid: bool) -> str:
    prefix = draw(st.sampled_from(_CARD_PREFIXES))
    length = draw(st.integers(min_value=13, max_value=19))
    body = prefix + "".join(
        draw(
            st.lists(
                st.sampled_from("0123456789"),
                min_size=length - len(prefix) - 1,
                max_size=length - len(prefix) - 1,
            )
        )
    )
    number = luhn_complete(body)
    if not valid:
        last = int(number[-1])
        number = number[:-1] + str((last + draw(st.integers(min_value=1, max_value=9))) % 10)
    style = draw(st.sampled_from(["compact", "spaces", "dashes"]))
    if style == "compact":
        return number
    groups = [number[i : i + 4] for i in range(0, len(number), 4)]
    return (" " if style == "spaces" else "-").join(groups)


@given(card_numbers(valid=True), _LETTERS, _LETTERS)
def test_valid_cards_are_found_and_redacted(card: str, before: str, after: str) -> None:
    text = f"{before} {card} {after}"
    assert ("card", card) in kinds(text)
    redacted = redact_pii(text)
    assert card not in redacted and "[CARD]" in redacted


@given(card_numbers(valid=False), _LETTERS, _LETTERS)
def test_luhn_invalid_numbers_are_never_cards(card: str, before: str, after: str) -> None:
    assert all(kind != "card" for kind, _ in kinds(f"{before} {card} {after}"))


_IBAN_COUNTRIES = {"DE": 22, "GB": 22, "FR": 27, "NL": 18, "ES": 24, "IT": 27, "NO": 15, "CH": 21}


@st.composite
def ibans(draw: st.DrawFn) -> str:
    country = draw(st.sampled_from(sorted(_IBAN_COUNTRIES)))
    length = _IBAN_COUNTRIES[country]
    # Real BBANs: an optional alphabetic bank code, then the account number's digits.
    letters = draw(st.integers(min_value=0, max_value=4))
    bank = "".join(
        draw(
            st.lists(
                st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), min_size=letters, max_size=letters
            )
        )
    )
    digits = "".join(
        draw(
            st.lists(
                st.sampled_from("0123456789"),
                min_size=length - 4 - letters,
                max_size=length - 4 - letters,
            )
        )
    )
    iban = iban_with_checksum(country, bank + digits)
    if draw(st.booleans()):
        return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban


@given(ibans(), _LETTERS, _LETTERS)
def test_checksummed_ibans_are_found(iban: str, before: str, after: str) -> None:
    text = f"{before} {iban} {after}"
    assert ("iban", iban) in kinds(text)
    assert iban not in redact_pii(text)


@given(st.text(max_size=200).filter(lambda t: not any(ch.isdigit() or ch == "@" for ch in t)))
def test_text_without_digits_or_at_signs_has_no_pii(text: str) -> None:
    assert find_pii(text) == []


_PII_ALPHABET = "0123456789 -+()./@abcxyzABCGBDE\n"
_pii_like_text = st.one_of(
    st.text(alphabet=_PII_ALPHABET, max_size=80),
    st.lists(
        st.one_of(
            card_numbers(valid=True),
            ibans(),
            _LETTERS,
            st.sampled_from(["jane@example.com", "+44 20 7946 0958", "123-45-6789"]),
        ),
        max_size=5,
    ).map(" ".join),
)


@given(_pii_like_text)
def test_redacted_text_holds_no_finding(text: str) -> None:
    found = find_pii(text)
    redacted = redact_pii(text)
    assert find_pii(redacted) == []
    for m in found:
        assert m.text not in redacted
    for m in found:
        assert text[m.start : m.end] == m.text and m.kind in ALL_PII_KINDS


# -- forbidden tools --------------------------------------------------------------------


def tool_conv(*calls: ToolCall) -> Conversation:
    messages: list[Message] = [user("please")]
    for c in calls:
        messages.append(agent(None, c))
        messages.append(result("ok", c.id))
    return conv(*messages)


def test_forbidden_tool_is_flagged() -> None:
    guard = ForbiddenToolsGuardrail({"delete_account"})
    score = only_score(guard.grade_sync(tool_conv(call("delete_account", user_id="u1"))))
    assert score.name == "guardrail.forbidden_tools" and score.value is False
    assert detail(score, "violations") == [
        {"message_index": 1, "tool": "delete_account", "call_id": "t1", "rule": "forbidden tool"}
    ]
    clean = tool_conv(call("get_user", user_id="u1"))
    assert only_score(guard.grade_sync(clean)).value is True


def test_forbidden_argument_values_and_patterns() -> None:
    guard = ForbiddenToolsGuardrail(
        arguments={
            "refund": {"amount": [re.compile(r"^[0-9]{4,}$")], "method": ["cash"]},
            "book": {"passengers": ["Mallory"], "cabin": [{"regex": "^first"}]},
        }
    )
    bad = tool_conv(
        call("refund", "a", amount=12000, method="card"),
        call("refund", "b", amount=50, method="cash"),
        call("book", "c", passengers=["Alice", "Mallory"], cabin="first_class"),
    )
    score = only_score(guard.grade_sync(bad))
    violations = detail(score, "violations")
    assert score.value is False and isinstance(violations, list)
    assert [(v["call_id"], v["argument"], v["value"]) for v in violations] == [
        ("a", "amount", 12000),
        ("b", "method", "cash"),
        ("c", "passengers", ["Alice", "Mallory"]),
        ("c", "cabin", "first_class"),
    ]
    ok = tool_conv(
        call("refund", "a", amount=50, method="card"), call("book", "c", cabin="economy")
    )
    assert only_score(guard.grade_sync(ok)).value is True


def test_forbidden_arguments_wildcard_strict_types_and_unparsable_calls() -> None:
    guard = ForbiddenToolsGuardrail(arguments={"*": {"confirm": [True]}})
    assert only_score(guard.grade_sync(tool_conv(call("x", confirm=True)))).value is False
    # True is not 1 in JSON.
    assert only_score(guard.grade_sync(tool_conv(call("x", confirm=1)))).value is True
    broken = ToolCall.from_raw("t1", "x", "{not json")
    score = only_score(guard.grade_sync(tool_conv(broken)))
    assert score.value is True and detail(score, "unchecked_calls") == 1


def test_forbidden_tools_config_errors_and_stable_version() -> None:
    with pytest.raises(ConfigError, match="regex"):
        ForbiddenToolsGuardrail(arguments={"x": {"a": [{"regex": "("}]}})
    assert (
        ForbiddenToolsGuardrail({"a", "b", "c"}).version
        == ForbiddenToolsGuardrail(["c", "b", "a"]).version
    )
    assert ForbiddenToolsGuardrail({"a"}).version != ForbiddenToolsGuardrail({"b"}).version


# -- format contracts -------------------------------------------------------------------

ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
    "required": ["answer"],
    "additionalProperties": False,
}


def test_format_contract_on_assistant_text() -> None:
    guard = FormatContractGuardrail(ANSWER_SCHEMA)
    good = conv(user("q"), agent('{"answer": "yes", "confidence": 0.9}'), agent(None, call("x")))
    score = only_score(guard.grade_sync(good))
    assert score.name == "guardrail.format_contract" and score.value is True
    assert detail(score, "checked") == 1
    bad = conv(user("q"), agent('{"answer": 3}'), user("again"), agent("Sure! Here it is."))
    score = only_score(guard.grade_sync(bad))
    violations = detail(score, "violations")
    assert score.value is False and isinstance(violations, list) and len(violations) == 2
    first, second = violations
    assert first == {
        "message_index": 1,
        "errors": [{"path": "/answer", "message": "3 is not of type 'string'"}],
    }
    assert isinstance(second, dict) and second["message_index"] == 3
    assert "not JSON" in second["errors"][0]["message"]


def test_format_contract_code_fences() -> None:
    fenced = conv(user("q"), agent('```json\n{"answer": "yes"}\n```'))
    assert only_score(FormatContractGuardrail(ANSWER_SCHEMA).grade_sync(fenced)).value is False
    lenient = FormatContractGuardrail(ANSWER_SCHEMA, allow_code_fence=True)
    assert only_score(lenient.grade_sync(fenced)).value is True
    assert lenient.version != FormatContractGuardrail(ANSWER_SCHEMA).version


def test_format_contract_on_tool_arguments() -> None:
    schema = {
        "type": "object",
        "required": ["user_id"],
        "properties": {"user_id": {"type": "string"}},
    }
    one_tool = FormatContractGuardrail(schema, target="tool_arguments", tool="get_user")
    every_tool = FormatContractGuardrail(schema, target="tool_arguments")
    c = tool_conv(
        call("get_user", "a", user_id="u1"),
        call("search", "b", query="x"),
        ToolCall.from_raw("c", "get_user", "{oops"),
    )
    score = only_score(one_tool.grade_sync(c))
    assert score.value is False and detail(score, "checked") == 2
    assert detail(score, "violations") == [
        {
            "message_index": 5,
            "tool": "get_user",
            "call_id": "c",
            "errors": [{"path": "", "message": "arguments are not JSON"}],
        }
    ]
    score = only_score(every_tool.grade_sync(c))
    assert detail(score, "checked") == 3
    assert [v["call_id"] for v in detail(score, "violations")] == ["b", "c"]


def test_format_contract_config_errors() -> None:
    with pytest.raises(ConfigError, match="invalid JSON Schema"):
        FormatContractGuardrail({"type": "nope"})
    with pytest.raises(ConfigError, match="only applies"):
        FormatContractGuardrail(ANSWER_SCHEMA, tool="x")
    with pytest.raises(ConfigError, match="target"):
        FormatContractGuardrail(ANSWER_SCHEMA, target="everything")  # type: ignore[arg-type]


# -- commitments ------------------------------------------------------------------------


def commitments(c: Conversation, **options: Any) -> Score:
    return only_score(CommitmentGuardrail(**options).grade_sync(c))


def ungrounded(score: Score) -> list[tuple[str, str]]:
    items = detail(score, "ungrounded")
    assert isinstance(items, list)
    return [(u["kind"], u["text"]) for u in items]


RESERVATION = {
    "reservation_id": "ZFA04Y",
    "flights": [
        {"flight_number": "HAT229", "date": "2024-05-20", "price": 109, "departs": "16:00:00"},
        {"flight_number": "HAT266", "date": "2024-05-27", "price": 130, "departs": "04:00:00"},
    ],
    "balance": 1234.5,
}


def booked(text: str, first_user: str = "Show my trip") -> Conversation:
    return conv(
        SystemMessage(content="Checked bags cost $50 each. Today is 2024-05-15."),
        user(first_user),
        agent(None, call("get_reservation", reservation_id="ZFA04Y")),
        result(RESERVATION),
        agent(text),
    )


@pytest.mark.parametrize(
    "text",
    [
        "Your balance is $1,234.50.",
        "Your balance is 1234.5 dollars.",
        "Flight HAT229 on May 20 departs at 4:00 PM and costs $109.",
        "Flight HAT266 leaves 2024-05-27 at 04:00 for €130.",
        "Your reservation zfa04y... I mean ZFA04Y, is on 20th of May 2024.",
        "The two flights total $239.",  # 109 + 130
        "The difference between them is $21.",  # 130 - 109
        "Flight $109, flight $130, a bag $50: $289 in all.",  # in-message total
        "With one bag at $50 the first flight comes to $159.",  # stated amount + policy fee
        "The 4pm flight HAT229 is on 5/20/2024.",
    ],
)
def test_grounded_commitments_pass(text: str) -> None:
    score = commitments(booked(text))
    assert score.name == "guardrail.commitments" and score.kind == "binary"
    assert score.value is True, ungrounded(score)
    checked = detail(score, "checked")
    assert isinstance(checked, int) and checked >= 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Your refund of $412 is on its way.", [("amount", "$412")]),
        ("Your new flight is on June 3.", [("date", "June 3")]),
        ("It departs at 9:15 AM.", [("time", "9:15 AM")]),
        ("It departs at 5:00 PM.", [("time", "5:00 PM")]),
        ("Your confirmation number is QX12ZZ.", [("id", "QX12ZZ")]),
        (
            "Total $1,000 on May 21 at 11:30 under K9LMN2.",
            [("amount", "$1,000"), ("date", "May 21"), ("time", "11:30"), ("id", "K9LMN2")],
        ),
    ],
)
def test_ungrounded_commitments_are_flagged(text: str, expected: list[tuple[str, str]]) -> None:
    score = commitments(booked(text))
    assert score.value is False
    assert ungrounded(score) == expected
    items = detail(score, "ungrounded")
    assert isinstance(items, list)
    for item in items:
        assert isinstance(item, dict) and item["message_index"] == 4
        start, end = item["start"], item["end"]
        assert isinstance(start, int) and isinstance(end, int)
        assert text[start:end] == item["text"]


def test_twelve_and_twenty_four_hour_clocks() -> None:
    assert commitments(booked("HAT266 departs at 4:00 AM.")).value is True  # 04:00:00
    assert commitments(booked("HAT229 departs at 4:00 p.m.")).value is True  # 16:00:00
    assert commitments(booked("HAT266 departs at 04:00.")).value is True
    only_afternoon = conv(user("when?"), agent(None, call("get")), result({"departs": "16:00:00"}))
    for text, flagged in [("4:00 AM", True), ("04:00", True), ("4:00", False), ("4 PM", False)]:
        c = conv(*only_afternoon.messages, agent(f"It leaves at {text}."))
        assert (commitments(c).value is False) is flagged, text


def test_user_messages_ground_dates_and_ids() -> None:
    c = conv(
        user("I want to fly on may 20 and my booking is abc123"),
        agent("Sure, I will look at booking ABC123 for May 20, 2024."),
        user("And the 6th of next month?"),
        agent("The 6th is June 6th, right?"),
    )
    assert commitments(c).value is True


def test_grounding_must_come_first() -> None:
    c = conv(
        user("Book me"),
        agent("Done! Your confirmation number is ZFA04Y."),
        user("thanks"),
        agent(None, call("get_reservation")),
        result(RESERVATION),
    )
    assert ungrounded(commitments(c)) == [("id", "ZFA04Y")]


def test_system_and_argument_grounding_can_be_turned_off() -> None:
    policy = booked("A checked bag costs $50.")
    assert commitments(policy).value is True
    assert ungrounded(commitments(policy, ground_in_system=False)) == [("amount", "$50")]
    searched = conv(
        user("Find me something a day later"),
        agent("Searching flights on 2024-05-21.", call("search", date="2024-05-21")),
        result("[]"),
    )
    assert commitments(searched).value is True
    assert ungrounded(commitments(searched, ground_in_arguments=False)) == [("date", "2024-05-21")]


def test_arithmetic_can_be_turned_off() -> None:
    total = booked("The two flights total $239.")
    assert ungrounded(commitments(total, arithmetic=False)) == [("amount", "$239")]


def test_field_totals_ground_multi_leg_sums() -> None:
    legs = {"flights": [{"price": 100}, {"price": 210}, {"price": 333}]}
    c = conv(user("price?"), agent(None, call("get")), result(legs), agent("That is $643 total."))
    assert commitments(c).value is True


def test_arguments_of_a_think_tool_never_ground_amounts() -> None:
    c = conv(
        user("total?"),
        agent(None, call("think", thought="The total is $17,021")),
        result(""),
        agent("Your total is $17,021."),
    )
    assert ungrounded(commitments(c)) == [("amount", "$17,021")]


def test_commitment_options_kinds_and_custom_ids() -> None:
    c = booked("Ticket TKT-99812 costs $999.")
    assert ungrounded(commitments(c)) == [("amount", "$999")]
    custom = commitments(c, kinds=["id"], id_pattern=r"TKT-[0-9]+")
    assert ungrounded(custom) == [("id", "TKT-99812")]
    with pytest.raises(ConfigError, match="unknown commitment kinds"):
        CommitmentGuardrail(kinds=["weather"])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="id pattern"):
        CommitmentGuardrail(id_pattern="(")
    assert CommitmentGuardrail(arithmetic=False).version != CommitmentGuardrail().version


@st.composite
def grounded_values(draw: st.DrawFn) -> tuple[int, tuple[int, int, int], tuple[int, int], str]:
    cents = draw(st.integers(min_value=100, max_value=10**8))
    day = (draw(st.integers(2000, 2099)), draw(st.integers(1, 12)), draw(st.integers(1, 28)))
    clock = (draw(st.integers(0, 23)), draw(st.integers(0, 59)))
    letters = draw(st.lists(st.sampled_from("ABCDEFGHJKLMNPQRSTUVWXYZ"), min_size=5, max_size=5))
    position = draw(st.integers(min_value=0, max_value=5))
    digit = draw(st.sampled_from("0123456789"))
    code = "".join(letters[:position]) + digit + "".join(letters[position:])
    return cents, day, clock, code


_MONTH_NAMES = (
    "January February March April May June July August September October November December".split()
)


@given(grounded_values(), st.booleans())
def test_values_from_a_tool_result_are_always_grounded(
    values: tuple[int, tuple[int, int, int], tuple[int, int], str], words: bool
) -> None:
    cents, (year, month, day), (hour, minute), code = values
    payload = {
        "amount": cents / 100,
        "date": f"{year:04d}-{month:02d}-{day:02d}",
        "time": f"{hour:02d}:{minute:02d}:00",
        "code": code,
    }
    amount = (
        f"${cents / 100:,.2f}"
        if words
        else f"{cents // 100 if cents % 100 == 0 else cents / 100} dollars"
    )
    when = (
        f"{_MONTH_NAMES[month - 1]} {day}, {year}" if words else f"{year:04d}-{month:02d}-{day:02d}"
    )
    twelve = f"{hour % 12 or 12}:{minute:02d} {'PM' if hour >= 12 else 'AM'}"
    clock = twelve if words else f"{hour:02d}:{minute:02d}"
    text = f"Booking {code}: {amount} on {when} at {clock}."
    c = conv(user("status?"), agent(None, call("get")), result(payload), agent(text))
    score = commitments(c)
    assert score.value is True, (text, ungrounded(score))
    assert detail(score, "checked") == 4


@given(st.integers(min_value=1, max_value=10**6), st.integers(min_value=1, max_value=10**6))
def test_amounts_nothing_grounds_are_flagged(grounded: int, claimed: int) -> None:
    # With one number in the sources, only it, its double and zero are reachable.
    if claimed in (grounded, 2 * grounded):
        claimed += 3 * grounded + 1
    c = conv(
        user("price?"),
        agent(None, call("get")),
        result({"price": grounded}),
        agent(f"That will be ${claimed:,}."),
    )
    assert ungrounded(commitments(c)) == [("amount", f"${claimed:,}")]


# The claim pattern as first written, one readable alternation behind a lookahead. The
# module's pattern consumes the first character with a class instead (much faster to
# scan) and must find exactly the same claims.
_MONTHS = (
    r"Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?"
)
_NUM = r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?"
_MERIDIEM = r"[AaPp](?:\.[Mm]\.|[Mm]\b)"
_REFERENCE_CLAIM = re.compile(
    r"(?=[0-9$€£¥A-Z])(?:"
    rf"(?P<A1>(?P<cur>US\$|[$€£¥]|USD|EUR|GBP) ?(?P<cn>{_NUM})(?![0-9,]*[0-9]))"
    rf"|(?P<D2>(?P<mm>{_MONTHS})\.? (?P<md>[0-9]{{1,2}})(?:st|nd|rd|th)?(?![0-9:])"
    r"(?:,? (?P<my>[0-9]{4})(?![0-9]))?)"
    r"|(?P<D1>(?P<iy>[0-9]{4})-(?P<im>[0-9]{1,2})-(?P<id>[0-9]{1,2})(?![0-9]))"
    rf"|(?P<D3>(?P<dd>[0-9]{{1,2}})(?:st|nd|rd|th)? (?:of )?(?P<dm>{_MONTHS})\b\.?"
    r"(?:,? (?P<dy>[0-9]{4})(?![0-9]))?)"
    r"|(?P<D4>(?P<sa>[0-9]{1,2})/(?P<sb>[0-9]{1,2})/(?P<sy>[0-9]{4}|[0-9]{2})(?![0-9/]))"
    r"|(?P<T1>(?P<th>[0-9]{1,2}):(?P<tm>[0-5][0-9])(?P<ts>:[0-5][0-9](?:\.[0-9]+)?)?"
    rf"(?![0-9])(?: ?(?P<tp>{_MERIDIEM}))?)"
    rf"|(?P<T2>(?P<hh>[0-9]{{1,2}}) ?(?P<hp>{_MERIDIEM}))"
    rf"|(?P<A2>(?P<sn>{_NUM}) ?(?:[Dd]ollars?|[Ee]uros?|[Pp]ounds?|bucks|USD|EUR|GBP)\b)"
    rf"|(?P<A3>(?P<sn2>{_NUM}) ?[€£](?! ?[0-9]))"
    rf"|(?P<ID>{DEFAULT_ID_PATTERN}))"
)
# Groups that start with the claim's first character; the module's start one later.
_FROM_FIRST = {"A1", "D2", "D1", "D3", "D4", "T1", "T2", "A2", "A3", "ID"}
_FROM_FIRST |= {"cur", "mm", "iy", "dd", "sa", "th", "hh", "sn", "sn2"}
_CLAIM_PIECES = st.sampled_from(
    [*"$€£¥UEGADFJMNOSTX0159 -/:.,", "US$", "USD", "EUR", "GBP", "12", "123", "1,234", "2024"]
    + [*"Jan Feb Mar Apr May June July Aug Sept Oct Nov Dec Marc Julys".split()]
    + ["of ", "th", "nd", " pm", " PM", "a.m.", "am"]
    + ["dollars", "euros", "bucks", "AB12CD", "HAT123", "12:30", ":45", "2026-05-20", "5/20/24"]
)


def _signature(m: re.Match[str], shifted: bool) -> tuple[object, ...]:
    groups = []
    for name in m.re.groupindex:
        start, end = m.span(name)
        if shifted and name in _FROM_FIRST and start >= 0:
            start -= 1
        groups.append((name, start, end))
    return m.span(), m.lastgroup, groups


@settings(max_examples=1500)
@given(st.lists(_CLAIM_PIECES, max_size=14).map("".join))
@example("USD 12, US$1,234.50, 1231,234 dollars, 30€ and £5 or EUR12")
@example("123:45, 12:30 pm, 4 PM, T11:36, 9a.m. 2026-05-20 5/20/24 12th of May, 2024")
@example("May 20, 2024; Sept 3rd; Oct 9; Marc 4; HAT123 AB12CD ZFA04Y X1")
def test_the_claim_pattern_matches_the_readable_one(text: str) -> None:
    fast = [_signature(m, True) for m in _CLAIM_WITH_IDS.finditer(text)]
    assert fast == [_signature(m, False) for m in _REFERENCE_CLAIM.finditer(text)]


# -- all guardrails on generated and real data ----------------------------------------------


@given(conversations())
def test_guardrails_never_fail_on_generated_conversations(c: Conversation) -> None:
    graders = [
        *default_guardrails(),
        ForbiddenToolsGuardrail({"a"}, {"*": {"x": [{"regex": "."}, 1]}}),
        FormatContractGuardrail(ANSWER_SCHEMA),
        FormatContractGuardrail(True, target="tool_arguments"),
    ]
    outputs = grade_sync(c, graders)
    assert all(isinstance(o, Score) for o in outputs), outputs
    assert [o.name for o in outputs] == [
        "guardrail.pii",
        "guardrail.commitments",
        "guardrail.forbidden_tools",
        "guardrail.format_contract",
        "guardrail.format_contract",
    ]
    for o in outputs:
        assert isinstance(o, Score) and o.kind == "binary" and o.conversation_id == c.id


def test_default_guardrails_rarely_flag_real_airline_conversations() -> None:
    from convsim._assets import tau_airline_runs
    from convsim.datasets import ReadReport
    from convsim.formats import read_tau_bench

    runs = list(read_tau_bench(tau_airline_runs(), report=ReadReport(file="tau")))
    flagged: dict[str, int] = {}
    for c in runs:
        for s in grade_sync(c, default_guardrails()):
            assert isinstance(s, Score)
            flagged[s.name] = flagged.get(s.name, 0) + (s.value is False)
    # The agent quotes prices, dates and ids from its tools and computes totals; none of
    # that is PII, and little of it should look ungrounded (see the guardrail's limits).
    assert len(runs) == 200
    assert flagged["guardrail.pii"] == 0
    assert flagged["guardrail.commitments"] <= 10


def test_scores_carry_a_copy_of_the_conversation_tags() -> None:
    conversation = Conversation(
        id="c",
        messages=[UserMessage(content="hi"), AssistantMessage(content="Hello!")],
        tags={"vertical": "airline"},
    )
    (score,) = PiiGuardrail().grade_sync(conversation)
    assert isinstance(score, Score)
    assert score.tags == {"vertical": "airline"}
    conversation.tags["vertical"] = "retail"
    assert score.tags == {"vertical": "airline"}
