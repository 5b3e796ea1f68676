"""Hypothesis strategies for canonical conversations and scores.

Everything generated here is valid: every tool result answers an earlier open call, call
ids are never reused while open, and message ids are unique within a conversation.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st
from pydantic import JsonValue

from convsim.trace import (
    AssistantMessage,
    Conversation,
    Message,
    Provenance,
    Score,
    ScoreKind,
    ScoreSource,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    Usage,
    UserMessage,
    UserSignals,
)

MAX_MESSAGES = 12

# Short unicode text; hypothesis leaves out surrogates, which UTF-8 cannot carry.
short_text = st.text(max_size=20)
names = st.text(min_size=1, max_size=12)

json_scalars: st.SearchStrategy[JsonValue] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    short_text,
)

json_values: st.SearchStrategy[JsonValue] = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=8), children, max_size=3),
    ),
    max_leaves=8,
)

json_objects: st.SearchStrategy[dict[str, JsonValue]] = st.dictionaries(
    st.text(max_size=8), json_values, max_size=4
)

utc_datetimes: st.SearchStrategy[datetime] = st.datetimes(timezones=st.just(UTC))

non_negative_floats = st.floats(min_value=0, max_value=1e9, allow_nan=False)

token_counts = st.none() | st.integers(min_value=0, max_value=10**7)

usages: st.SearchStrategy[Usage] = st.builds(
    Usage,
    input_tokens=token_counts,
    output_tokens=token_counts,
    cache_read_tokens=token_counts,
    reasoning_tokens=token_counts,
    cost_usd=st.none() | st.floats(min_value=0, max_value=100, allow_nan=False),
)

signals: st.SearchStrategy[UserSignals] = st.builds(
    UserSignals,
    thumbs=st.sampled_from([None, "up", "down"]),
    csat=st.none() | st.integers(min_value=1, max_value=5),
    retries=st.none() | st.integers(min_value=0, max_value=20),
    edits=st.none() | st.integers(min_value=0, max_value=20),
    abandoned=st.none() | st.booleans(),
    escalated=st.none() | st.booleans(),
)

provenances: st.SearchStrategy[Provenance] = st.builds(
    Provenance,
    source_format=st.sampled_from(["openai", "tau-bench", "simulated"]),
    source_ids=st.lists(names, max_size=2),
    source_file=st.none() | names,
    source_line=st.none() | st.integers(min_value=1, max_value=10**6),
    record=json_values,
)


_KINDS: list[ScoreKind] = ["binary", "ordinal", "continuous", "categorical"]
_SOURCES: list[ScoreSource] = ["rule", "model", "human", "user"]


def _value_for(kind: ScoreKind) -> st.SearchStrategy[bool | float | str]:
    if kind == "binary":
        return st.booleans()
    if kind == "categorical":
        return names
    if kind == "ordinal":
        return st.integers(min_value=1, max_value=5)
    return st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def scores(draw: st.DrawFn, conversation_id: str | None = None) -> Score:
    """A valid score: the value's type always matches its kind."""
    kind = draw(st.sampled_from(_KINDS))
    return Score(
        conversation_id=conversation_id if conversation_id is not None else draw(names),
        message_index=draw(st.none() | st.integers(min_value=0, max_value=50)),
        name=draw(names),
        value=draw(_value_for(kind)),
        kind=kind,
        reason=draw(st.none() | short_text),
        source=draw(st.sampled_from(_SOURCES)),
        grader=draw(names),
        grader_version=draw(st.none() | names),
        judge_model=draw(st.none() | names),
        prompt_hash=draw(st.none() | names),
        cost_usd=draw(st.none() | st.floats(min_value=0, max_value=10, allow_nan=False)),
        run_id=draw(st.none() | names),
        trial=draw(st.none() | st.integers(min_value=0, max_value=9)),
        created_at=draw(st.none() | utc_datetimes),
    )


class _State:
    """Bookkeeping while a conversation is drawn: open calls and ids already used."""

    def __init__(self) -> None:
        self.open_calls: list[str] = []
        self.answered: set[str] = set()
        self.message_ids: set[str] = set()
        self.next_call = 0

    def new_call_id(self, draw: st.DrawFn, taken: set[str]) -> str:
        # Sometimes reuse an id whose call was answered (recorded traces do this).
        reusable = sorted(self.answered - set(self.open_calls) - taken)
        if reusable and draw(st.integers(min_value=0, max_value=3)) == 0:
            return draw(st.sampled_from(reusable))
        while True:
            self.next_call += 1
            candidate = f"call_{self.next_call}"
            if candidate not in self.answered and candidate not in taken:
                return candidate


def _common(draw: st.DrawFn, state: _State) -> dict[str, object]:
    fields: dict[str, object] = {}
    if draw(st.booleans()):
        fields["content"] = draw(short_text)
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        fields["parts"] = [TextPart(text=t) for t in draw(st.lists(short_text, max_size=2))]
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        fields["name"] = draw(names)
    if draw(st.integers(min_value=0, max_value=2)) == 0:
        message_id = draw(names)
        if message_id not in state.message_ids:
            state.message_ids.add(message_id)
            fields["id"] = message_id
    if draw(st.integers(min_value=0, max_value=2)) == 0:
        fields["timestamp"] = draw(utc_datetimes)
    if draw(st.integers(min_value=0, max_value=3)) == 0:
        fields["latency_ms"] = draw(non_negative_floats)
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        fields["metadata"] = draw(json_objects)
    return fields


def _tool_call(draw: st.DrawFn, call_id: str) -> ToolCall:
    name = draw(names)
    if draw(st.integers(min_value=0, max_value=5)) == 0:
        return ToolCall(id=call_id, name=name, arguments=None, arguments_raw="{not json")
    return ToolCall(id=call_id, name=name, arguments=draw(json_objects))


def _message(draw: st.DrawFn, state: _State) -> Message:
    roles = ["system", "user", "assistant", "assistant"]
    if state.open_calls:
        roles += ["tool", "tool"]
    role = draw(st.sampled_from(roles))
    fields = _common(draw, state)
    if role == "system":
        return SystemMessage.model_validate({**fields, "developer": draw(st.booleans())})
    if role == "user":
        return UserMessage.model_validate(fields)
    if role == "tool":
        call_id = draw(st.sampled_from(state.open_calls))
        state.open_calls.remove(call_id)
        state.answered.add(call_id)
        return ToolMessage.model_validate(
            {**fields, "tool_call_id": call_id, "is_error": draw(st.booleans())}
        )
    calls: list[ToolCall] = []
    taken: set[str] = set()
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        call_id = state.new_call_id(draw, taken)
        taken.add(call_id)
        calls.append(_tool_call(draw, call_id))
    state.open_calls.extend(c.id for c in calls)
    extra: dict[str, object] = {"tool_calls": calls}
    if draw(st.booleans()):
        extra["model"] = draw(st.sampled_from(["gpt-4o", "claude-x", "local/ü-model"]))
    if draw(st.booleans()):
        extra["usage"] = draw(usages)
    if draw(st.booleans()):
        extra["finish_reason"] = draw(st.sampled_from(["stop", "length", "tool_calls"]))
    return AssistantMessage.model_validate({**fields, **extra})


@st.composite
def conversations(draw: st.DrawFn, max_messages: int = MAX_MESSAGES) -> Conversation:
    """A valid conversation mixing system, user, assistant and tool messages."""
    state = _State()
    conversation_id = draw(names)
    count = draw(st.integers(min_value=0, max_value=max_messages))
    messages = [_message(draw, state) for _ in range(count)]
    fields: dict[str, object] = {"id": conversation_id, "messages": messages}
    if draw(st.booleans()):
        fields["tags"] = draw(st.dictionaries(names, short_text, max_size=3))
    if draw(st.integers(min_value=0, max_value=2)) == 0:
        fields["metadata"] = draw(json_objects)
    if draw(st.integers(min_value=0, max_value=2)) == 0:
        fields["signals"] = draw(signals)
    if draw(st.integers(min_value=0, max_value=3)) == 0:
        fields["scores"] = draw(st.lists(scores(conversation_id), max_size=2))
    if draw(st.integers(min_value=0, max_value=3)) == 0:
        fields["provenance"] = draw(provenances)
    return Conversation.model_validate(fields)
