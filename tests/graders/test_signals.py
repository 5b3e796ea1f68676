import copy
import re
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from convsim.graders._base import SyncGrader, grade_sync
from convsim.graders.signals import (
    _CORRECTION_RULES,
    _ESCALATION_NEGATION,
    _ESCALATION_RULES,
    _FRUSTRATION_RULES,
    _NEGATED,
    _STOPWORDS,
    SIGNAL_NAMES,
    AbandonmentSignal,
    CorrectionSignal,
    EscalationSignal,
    FeedbackSignals,
    FrustrationSignal,
    LoopSignal,
    RephraseSignal,
    _content_words,
    _Rule,
    _runs,
    _scan,
    _UserText,
    default_signals,
)
from convsim.trace import (
    AssistantMessage,
    Conversation,
    Message,
    Score,
    TextPart,
    ToolCall,
    ToolMessage,
    UserMessage,
    UserSignals,
)
from tests.strategies import conversations


def detail(score: Score, key: str) -> Any:
    """One entry of a score's details, as plain JSON data."""
    return score.details[key]


def conv(*messages: Message, **fields: Any) -> Conversation:
    return Conversation(id="c1", messages=list(messages), **fields)


def user(text: str) -> UserMessage:
    return UserMessage(content=text)


def agent(text: str | None = None, *calls: ToolCall) -> AssistantMessage:
    return AssistantMessage(content=text, tool_calls=list(calls))


def dialogue(*user_texts: str, reply: str = "Let me check that for you.") -> Conversation:
    """Agent greeting, then each user message answered by ``reply``."""
    messages: list[Message] = [agent("Hi! How can I help?")]
    for text in user_texts:
        messages += [user(text), agent(reply)]
    return conv(*messages)


def score_of(grader: SyncGrader, c: Conversation) -> Score:
    (score,) = grader.grade_sync(c)
    assert isinstance(score, Score)
    assert score.name == grader.name and score.kind == "binary" and score.source == "rule"
    return score


def present(grader: SyncGrader, c: Conversation) -> bool:
    value = score_of(grader, c).value
    assert isinstance(value, bool)
    return value


def matched(grader: SyncGrader, c: Conversation) -> list[tuple[Any, Any]]:
    matches = detail(score_of(grader, c), "matches")
    assert isinstance(matches, list)
    return [(m["message_index"], m.get("text")) for m in matches]


# -- rephrase ---------------------------------------------------------------------------


def test_rephrase_detects_a_repeated_request() -> None:
    c = dialogue(
        "Can you check the status of my order 4471?",
        "Could you please check my order status, order 4471?",
    )
    score = score_of(RephraseSignal(), c)
    assert score.value is True
    (match,) = detail(score, "matches")
    assert match["message_index"] == 3 and match["previous_index"] == 1
    assert match["similarity"] >= 0.6


@pytest.mark.parametrize(
    "texts",
    [
        ("Yes, please.", "Yes, please."),  # short confirmations do not count
        ("I want to cancel my flight to Boston", "I want to change my hotel in Denver"),
        ("Book the window seat please", "###STOP###"),
    ],
)
def test_rephrase_negatives(texts: tuple[str, ...]) -> None:
    assert present(RephraseSignal(), dialogue(*texts)) is False


_REGEX_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOP = {w.encode() for w in _STOPWORDS}


_WORDISH = st.sampled_from(
    [
        "it's",
        "a'b",
        "rock'n'roll",
        "'90s",
        "users'",
        "5's",
        "don't",
        "café",
        "İK",
        "ok",
        " ",
        ".",
        "\n",
    ]
)


@given(st.lists(_WORDISH | st.text(max_size=3), max_size=12).map("".join))
def test_rephrase_words_are_the_regex_words(text: str) -> None:
    # The split fast path and the bytes regex must both give exactly what the word
    # regex finds in the text, lone surrogates and non-ASCII letters included.
    low = text.lower()
    expected = {w.encode() for w in _REGEX_WORD.findall(low)} - _STOP
    assert _content_words(low, _runs(low)) == expected
    plain = low.replace("'", "")
    assert _content_words(plain, _runs(plain)) == (
        {w.encode() for w in _REGEX_WORD.findall(plain)} - _STOP
    )


# -- the word check before each anchor scan ----------------------------------------------

_RULE_SETS = {
    "correction": (_CORRECTION_RULES, None, None),
    "frustration": (_FRUSTRATION_RULES, _NEGATED, 24),
    "escalation": (_ESCALATION_RULES, _ESCALATION_NEGATION, None),
}
_PIECES = [r.anchor for rules, _, _ in _RULE_SETS.values() for r in rules] + [
    *(" ", ", ", ". ", "!", "'", "’", "-", "_", "é", "²", "\n"),
    *("s", "ing", "ed", "x", "up", "said", "a real", "that's "),
    # Whole phrases, so that rules with a pattern match too.
    *("waste of my time", "wasting my time", "fed up", "sick of", "are you kidding"),
    *("no, i said", "not what i asked", "i didn't ask", "that's not right", "you're wrong"),
    *("not economy, but business", "speak to a human", "transfer me", "escalating"),
]


def _without_word_check(rule: _Rule) -> _Rule:
    unchecked = copy.copy(rule)
    object.__setattr__(unchecked, "words", ())
    object.__setattr__(unchecked, "head", None)
    return unchecked


@given(st.lists(st.lists(st.sampled_from(_PIECES), max_size=8).map("".join), max_size=3))
@example(["What a waste of my time.", "No, I said Tuesday. Transfer me to a manager!"])
@example(["I'm so frustrated", "Why is it escalating? You misunderstood, f*ck this"])
def test_the_word_check_never_hides_a_match(texts: list[str]) -> None:
    # Skipping a rule whose words are missing must change no result: every anchor scan
    # finds the same matches with the check as without it.
    view = _UserText.of(dialogue(*texts))
    view.piece_runs()  # the check is on once the runs exist
    for rules, negation, window in _RULE_SETS.values():
        plain = [_without_word_check(r) for r in rules]
        assert _scan(view, rules, negation, window) == _scan(view, plain, negation, window)


def test_the_word_check_skips_rules_whose_words_are_missing() -> None:
    view = _UserText.of(dialogue("I am so frustrated, get me a manager"))
    rules = _FRUSTRATION_RULES + _ESCALATION_RULES
    # Until the runs exist there is no index, and every rule is scanned.
    assert all(view.may_match(r) for r in rules)
    view.piece_runs()
    checked = {r.anchor for r in rules if view.may_match(r)}
    assert {"frustrat", "manager"} <= checked
    assert not {"terrible", "wtf", "annoy", "ridiculous", "supervisor", "escalat"} & checked


# -- correction -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "No, I said Tuesday.",
        "That's not what I asked for.",
        "I meant the window seat.",
        "That is wrong.",
        "You booked the wrong flight!",
        "I didn't ask for travel insurance.",
        "Not economy, but business.",
        "It's not JFK but EWR.",
        "I think you misunderstood me.",
        "That’s not correct.",
    ],
)
def test_correction_positives(text: str) -> None:
    c = dialogue("Book me a flight to New York on Monday.", text)
    assert matched(CorrectionSignal(), c)[0][0] == 3


@pytest.mark.parametrize(
    "text",
    [
        "I'm not entirely sure, but I think it was Monday.",
        "What's wrong with my order?",
        "Is anything wrong with the payment?",
        "Not only that, but also a hotel.",
        "No worries, I need a hotel too.",
        "I have not been charged yet.",
    ],
)
def test_correction_negatives(text: str) -> None:
    assert present(CorrectionSignal(), dialogue("Book me a flight.", text)) is False


def test_correction_needs_an_agent_message_before_it() -> None:
    c = conv(user("No, I said Tuesday."), agent("Sorry, Tuesday it is."))
    assert present(CorrectionSignal(), c) is False


# -- frustration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cue"),
    [
        ("This is ridiculous.", "lexicon"),
        ("I'm really frustrated with this delay.", "lexicon"),
        ("I already told you my booking code.", "lexicon"),
        ("What a waste of my time.", "lexicon"),
        ("wtf is going on", "lexicon"),
        ("I NEED THIS FIXED NOW", "shouting"),
        ("Where is my refund???", "punctuation"),
        ("You cancelled it?!", "punctuation"),
    ],
)
def test_frustration_positives(text: str, cue: str) -> None:
    score = score_of(FrustrationSignal(), dialogue("Hello.", text))
    assert score.value is True
    (match,) = detail(score, "matches")
    assert match["message_index"] == 3 and match["cue"] == cue


@pytest.mark.parametrize(
    "text",
    [
        "Thank you so much!!!",
        "Great, that's perfect!!!",
        "I'm not upset at all, just curious.",
        "I'm flying SFO JFK LAX next week.",
        "My booking code is IFOYYZ and the other is NQNU5R.",
        "Could you help me change my flight?",
        "Hello, I would appreciate some help with a reservation.",
        "I'm not frustrated, thanks for asking.",
        "I don't find this terrible at all.",
    ],
)
def test_frustration_negatives(text: str) -> None:
    assert present(FrustrationSignal(), dialogue(text)) is False


# -- escalation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Can I speak to a human?",
        "Please transfer me to a manager.",
        "I want a supervisor right now.",
        "Let me talk to a real person.",
        "Could you connect me with a customer service representative?",
        "Please escalate this.",
        "agent",
        "Representative please",
        "Yes, please transfer me.",
    ],
)
def test_escalation_positives(text: str) -> None:
    assert matched(EscalationSignal(), dialogue("Hello.", text))[0][0] == 3


@pytest.mark.parametrize(
    "text",
    [
        "No, I really don't want to be transferred.",
        "I don't want to speak to a manager, just fix it.",
        "I'd rather not talk to another agent.",
        "I'd like to solve this without involving another agent.",
        "My travel agent booked this trip.",
        "I'll contact a human agent if needed.",
        "The agent at the airport was very kind.",
    ],
)
def test_escalation_negatives(text: str) -> None:
    assert present(EscalationSignal(), dialogue(text)) is False


# -- abandonment ------------------------------------------------------------------------


def abandonment(c: Conversation) -> tuple[bool, str]:
    score = score_of(AbandonmentSignal(), c)
    reason = detail(score, "reason")
    assert isinstance(score.value, bool) and isinstance(reason, str)
    return score.value, reason


def test_abandonment_cases() -> None:
    assert abandonment(conv(user("Hi"), agent("Hello!"), user("Are you there?"))) == (
        True,
        "unanswered_user_turn",
    )
    assert abandonment(conv(user("Change my flight"), agent("Which date would you like?"))) == (
        True,
        "unanswered_agent_question",
    )
    assert abandonment(
        conv(user("Thanks"), agent("Done. Is there anything else I can help you with?"))
    ) == (False, "closing_offer")
    assert abandonment(conv(user("Change it"), agent("Changed. Have a nice day."))) == (
        False,
        "answered",
    )
    assert abandonment(conv(agent("Hi!"))) == (False, "no_user_message")
    assert abandonment(conv()) == (False, "no_user_message")


def test_stop_markers_close_the_conversation() -> None:
    only_marker = conv(user("Change it"), agent("Which date?"), user("###STOP###"))
    assert abandonment(only_marker) == (False, "user_closed")
    with_text = conv(
        user("Change it"), agent("Done, anything else?"), user("No, thanks! ###STOP###")
    )
    assert abandonment(with_text) == (False, "user_closed")


def test_closing_offers_can_count_and_explicit_signals_win() -> None:
    c = conv(user("Thanks"), agent("Done. Is there anything else I can help you with?"))
    strict = AbandonmentSignal(closing_offers=None)
    assert score_of(strict, c).value is True
    assert strict.version != AbandonmentSignal().version
    explicit = conv(user("Thanks"), agent("Bye."), signals=UserSignals(abandoned=True))
    assert abandonment(explicit) == (True, "explicit")


def test_abandonment_ignores_tool_traffic_after_the_question() -> None:
    c = conv(
        user("Change it"),
        agent("Shall I go ahead?", ToolCall(id="t1", name="log", arguments={})),
        ToolMessage(tool_call_id="t1", content="ok"),
        agent(None, ToolCall(id="t2", name="log", arguments={})),
        ToolMessage(tool_call_id="t2", content="ok"),
    )
    assert abandonment(c) == (True, "unanswered_agent_question")


# -- loops ------------------------------------------------------------------------------


def test_loop_detects_repeated_and_near_duplicate_texts() -> None:
    again = "I'm sorry, I can't find a reservation with that number. Could you check it?"
    assert present(LoopSignal(), dialogue("Find ABC123", "It is ABC123", reply=again)) is True
    near = conv(
        user("Price?"),
        agent("The cheapest flight on Monday leaves at 9:00 and costs $120, shall I book it?"),
        user("Hmm"),
        agent("The cheapest flight on Monday leaves at 9:00 and costs $125, shall I book it?"),
    )
    (match,) = detail(score_of(LoopSignal(), near), "matches")
    assert match["type"] == "text" and match["message_indices"] == [1, 3]


def test_loop_detects_identical_tool_calls() -> None:
    def attempts(n: int) -> Conversation:
        messages: list[Message] = [user("Book it")]
        for i in range(n):
            c = ToolCall(id=f"t{i}", name="book", arguments={"flight": "HAT1", "seats": 1})
            messages += [agent(None, c), ToolMessage(tool_call_id=f"t{i}", content="error")]
        return conv(*messages)

    assert present(LoopSignal(), attempts(2)) is False
    score = score_of(LoopSignal(), attempts(3))
    assert score.value is True
    (match,) = detail(score, "matches")
    assert match["type"] == "tool_call" and match["count"] == 3
    assert present(LoopSignal(min_identical_calls=2), attempts(2)) is True


def test_loop_negatives() -> None:
    c = conv(
        user("Hi"),
        agent("Hello! How can I help you today?"),
        user("Change my flight"),
        agent("Sure. What is your reservation number?"),
        user("ABC123"),
        agent("Thanks. Your flight is on May 20 at 9:00. What date would you like instead?"),
        user("Thanks"),
        agent("Thanks for your patience!"),  # texts of parts count too
        AssistantMessage(parts=[TextPart(text="Thanks for your patience, I'm on it!")]),
    )
    assert present(LoopSignal(), c) is False


# -- explicit feedback ------------------------------------------------------------------


def test_feedback_scores_only_when_present() -> None:
    grader = FeedbackSignals()
    assert grader.grade_sync(conv(user("hi"))) == []
    down = grader.grade_sync(conv(user("hi"), signals=UserSignals(thumbs="down", csat=2)))
    assert [(s.name, s.value, s.kind, s.source) for s in down if isinstance(s, Score)] == [
        ("signal.thumbs_down", True, "binary", "user"),
        ("signal.csat", 2, "ordinal", "user"),
    ]
    (up,) = grader.grade_sync(conv(user("hi"), signals=UserSignals(thumbs="up")))
    assert isinstance(up, Score) and up.name == "signal.thumbs_down" and up.value is False


# -- all signals ------------------------------------------------------------------------


@given(conversations())
def test_signals_never_fail_and_emit_only_documented_names(c: Conversation) -> None:
    outputs = grade_sync(c, default_signals())
    assert all(isinstance(o, Score) for o in outputs), outputs
    names = [o.name for o in outputs]
    assert names[:6] == [
        "signal.rephrase",
        "signal.correction",
        "signal.frustration",
        "signal.escalation",
        "signal.abandonment",
        "signal.loop",
    ]
    expected_feedback = []
    if c.signals.thumbs is not None:
        expected_feedback.append("signal.thumbs_down")
    if c.signals.csat is not None:
        expected_feedback.append("signal.csat")
    assert names[6:] == expected_feedback
    assert set(names) <= set(SIGNAL_NAMES)
    for o in outputs:
        assert isinstance(o, Score) and o.conversation_id == c.id
        if o.name != "signal.csat":
            assert o.kind == "binary" and isinstance(o.value, bool)


def test_signals_on_real_airline_conversations() -> None:
    from convsim._assets import tau_airline_runs
    from convsim.datasets import ReadReport
    from convsim.formats import read_tau_bench

    runs = list(read_tau_bench(tau_airline_runs(), report=ReadReport(file="tau")))
    rates: dict[str, int] = {}
    for c in runs:
        for s in grade_sync(c, default_signals()):
            assert isinstance(s, Score)
            rates[s.name] = rates.get(s.name, 0) + (s.value is True)
    # Simulated users end with ###STOP###, so almost nothing looks abandoned; the
    # bundled tasks include users who ask for a human and users who complain about
    # delays.
    assert rates["signal.abandonment"] <= 5
    assert 10 <= rates["signal.escalation"] <= 60
    assert 5 <= rates["signal.frustration"] <= 40
    assert rates["signal.correction"] <= 10


def test_signals_see_a_message_edited_between_calls() -> None:
    c = dialogue("Hello.", "This is fine, thanks.")
    assert present(FrustrationSignal(), c) is False
    edited = c.messages[3]
    assert isinstance(edited, UserMessage)
    edited.content = "This is ridiculous."
    assert present(FrustrationSignal(), c) is True
    assert present(RephraseSignal(), c) is False
    # A replaced message and edited parts are seen too.
    c.messages[3] = UserMessage(parts=[TextPart(text="This is fine.")])
    assert present(FrustrationSignal(), c) is False
    edited = c.messages[3]
    assert isinstance(edited, UserMessage) and edited.content is None
    edited.parts = [TextPart(text="This is useless.")]
    assert present(FrustrationSignal(), c) is True
