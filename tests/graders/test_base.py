"""Scores: the validated builder and the rule graders' unvalidated path agree."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import JsonValue, ValidationError

from convsim._assets import tau_airline_runs
from convsim.datasets import ReadReport
from convsim.formats import read_tau_bench
from convsim.graders._base import ScoreBuilder, grade_sync, rule_score
from convsim.graders.guardrails import default_guardrails
from convsim.graders.signals import AbandonmentSignal, default_signals
from convsim.trace import AssistantMessage, Conversation, Score, ScoreFailure, UserMessage
from tests.strategies import conversations, json_objects, names, short_text

metadata = st.fixed_dictionaries(
    {},
    optional={
        "trial": st.integers(min_value=-2, max_value=9) | st.booleans() | short_text,
        "run_id": names | st.integers(),
        "inclusion_prob": st.floats(min_value=-1, max_value=2, allow_nan=False),
        "window": names | st.none(),
        "user_id": names | st.integers() | st.just(""),
    },
)


def conversation_with(meta: dict[str, JsonValue], tags: dict[str, str]) -> Conversation:
    return Conversation(id="c-1", messages=[UserMessage(content="hi")], metadata=meta, tags=tags)


def same_score(a: Score, b: Score) -> None:
    assert a == b
    assert a.model_dump_json() == b.model_dump_json()
    assert list(a.__dict__) == list(b.__dict__) == list(Score.model_fields)
    assert a.model_fields_set == b.model_fields_set


class _Grader:
    name = "signal.example"
    version = "v1"

    def grade_sync(self, conversation: Conversation) -> list[Score]:
        return []


@given(
    meta=metadata,
    tags=st.dictionaries(names, short_text, max_size=3),
    value=st.booleans(),
    reason=short_text,
    details=json_objects,
)
@example(meta={"trial": -1}, tags={}, value=True, reason="r", details={})
def test_a_rule_score_equals_the_validated_one(
    meta: dict[str, JsonValue],
    tags: dict[str, str],
    value: bool,
    reason: str,
    details: dict[str, JsonValue],
) -> None:
    conversation = conversation_with(meta, tags)
    grader = _Grader()
    builder = ScoreBuilder(grader.name, grader.version, conversation)
    try:
        checked = builder.score(grader.name, value, "binary", reason, details=details)
    except ValidationError:
        # A negative trial in the metadata: the fast path must fail just the same.
        with pytest.raises(ValidationError):
            rule_score(grader, conversation, value, reason, details)
        return
    fast = rule_score(grader, conversation, value, reason, details)
    same_score(fast, checked)
    assert fast.tags is not conversation.tags


def test_the_public_builder_always_validates() -> None:
    builder = ScoreBuilder("g", "v1", conversation_with({}, {}))
    assert isinstance(builder.score("stars", 4, "ordinal").value, float)
    with pytest.raises(ValidationError, match="binary score needs true/false"):
        builder.score("flag", 1, "binary")
    with pytest.raises(ValidationError, match="details"):
        builder.score("flag", True, "binary", details=None)
    with pytest.raises(ValidationError, match="details"):
        builder.score("flag", True, "binary", details={"x": (1, 2)})


def test_what_the_conversation_gets_wrong_is_still_a_failure() -> None:
    # Fields set after validation, or a negative trial, must not reach a score unchecked.
    graders = [*default_guardrails(), *default_signals()]
    negative = conversation_with({"trial": -1}, {})
    outputs = grade_sync(negative, graders)
    assert outputs and all(isinstance(o, ScoreFailure) for o in outputs)
    assert {o.error_type for o in outputs if isinstance(o, ScoreFailure)} == {"ValidationError"}
    edited = conversation_with({}, {})
    edited.signals.abandoned = 1  # type: ignore[assignment]
    (failure,) = grade_sync(edited, [AbandonmentSignal()])
    assert isinstance(failure, ScoreFailure) and "true/false" in failure.message


def _check_every_score(conversation: Conversation) -> int:
    checked = 0
    for out in grade_sync(conversation, [*default_guardrails(), *default_signals()]):
        assert isinstance(out, Score), out
        # A tuple, a NaN or any other non-JSON value in the details would not survive
        # either round trip unchanged.
        assert Score.model_validate(out.model_dump()) == out
        assert Score.model_validate_json(out.model_dump_json()) == out
        assert list(out.__dict__) == list(Score.model_fields)
        checked += 1
    return checked


@given(conversations())
def test_default_graders_build_valid_scores(conversation: Conversation) -> None:
    assert _check_every_score(conversation) >= 8


def test_default_graders_build_valid_scores_with_findings() -> None:
    runs = list(read_tau_bench(tau_airline_runs(), report=ReadReport(file="tau")))
    flagged = Conversation(
        id="flagged",
        messages=[
            UserMessage(content="this is RIDICULOUS!!! I already told you, get me a human"),
            AssistantMessage(content="Your refund of $412.50 is booked for May 3 at 4:15 PM."),
            UserMessage(content="no, I said my card 4111 1111 1111 1111, mail bob@example.com"),
            AssistantMessage(content="Card 4111 1111 1111 1111 and bob@example.com noted."),
            AssistantMessage(content="Card 4111 1111 1111 1111 and bob@example.com noted."),
            UserMessage(content="no, I said my card 4111 1111 1111 1111, mail bob@example.com"),
        ],
    )
    signals = [s for c in [*runs, flagged] for s in grade_sync(c, default_signals())]
    present = {s.name for s in signals if isinstance(s, Score) and s.value is True}
    guardrails = grade_sync(flagged, default_guardrails())
    assert [(s.name, s.value) for s in guardrails if isinstance(s, Score)] == [
        ("guardrail.pii", False),
        ("guardrail.commitments", False),
    ]
    assert _check_every_score(flagged) >= 8
    assert sum(_check_every_score(c) for c in runs) >= 8 * len(runs)
    assert {"signal.frustration", "signal.correction", "signal.loop"} <= present
