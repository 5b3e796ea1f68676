from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from convsim.errors import ConfigError
from convsim.online import (
    Filter,
    FlowAge,
    Outliers,
    Rule,
    SamplingPolicy,
    Triggers,
    decide,
    load_policy,
)
from convsim.trace import Conversation

from ._make import EXAMPLE, convo


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def matches(conversation: Conversation, **conditions: Any) -> bool:
    """Whether a one-rule policy takes ``conversation`` with that rule."""
    policy = SamplingPolicy(
        rules=[Rule(name="r", filter=Filter(**conditions), rate=1.0)],
        triggers=Triggers(escalated=False, csat_below=None, thumbs_down=False),
    )
    [decision] = decide([conversation], policy, now=date(2026, 3, 31))
    return decision.rule == "r"


# --- loading -----------------------------------------------------------------------------


def test_example_policy_loads_with_the_typical_rates() -> None:
    policy = load_policy(EXAMPLE)
    rates = {rule.name: rule.rate for rule in policy.rules}
    assert rates == {"human_handoff": 1.0, "new_flow": 0.5, "tool_calls": 0.3, "non_english": 0.25}
    assert policy.default_rate == 0.1
    assert policy.triggers == Triggers(escalated=True, csat_below=3, thumbs_down=True)
    assert policy.outliers.latency_percentile == 99
    assert policy.outliers.tokens_median_multiple == 4
    assert policy.budget is not None and policy.budget.max_judged == 5000


def test_rate_out_of_range_names_file_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "rules:\n  - name: a\n    rate: 1.5\n")
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    message = str(info.value)
    assert f"{path}: rules.0.rate:" in message
    assert "less than or equal to 1" in message
    assert "convsim schema policy" in message


def test_unknown_filter_field_names_its_path(tmp_path: Path) -> None:
    path = write(tmp_path, "rules:\n  - name: a\n    rate: 0.5\n    filter: {tagz: {a: b}}\n")
    with pytest.raises(ConfigError, match=r"policy.yaml: rules\.0\.filter\.tagz: Extra inputs"):
        load_policy(path)


def test_duplicate_and_reserved_rule_names_are_rejected(tmp_path: Path) -> None:
    dup = write(tmp_path, "rules:\n  - {name: a, rate: 0.1}\n  - {name: a, rate: 0.2}\n")
    with pytest.raises(ConfigError, match="'a' is used twice"):
        load_policy(dup)
    with pytest.raises(ConfigError, match="'default' is reserved"):
        load_policy(write(tmp_path, "rules:\n  - {name: default, rate: 0.1}\n"))
    with pytest.raises(ConfigError, match=r"rules\.0\.name: String should match pattern"):
        load_policy(write(tmp_path, "rules:\n  - {name: 'trigger:x', rate: 0.1}\n"))


def test_cost_cap_needs_a_cost_model(tmp_path: Path) -> None:
    path = write(tmp_path, "budget: {max_cost_usd: 10}\n")
    with pytest.raises(ConfigError, match=r"policy.yaml: budget: max_cost_usd needs a cost model"):
        load_policy(path)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such sampling policy file"):
        load_policy(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_policy(write(tmp_path, "rules: [\n"))


def test_schema_has_field_descriptions() -> None:
    schema = SamplingPolicy.model_json_schema()
    assert "first whose filter matches" in schema["properties"]["rules"]["description"]
    assert schema["$defs"]["Filter"]["additionalProperties"] is False


# --- filters -----------------------------------------------------------------------------


def test_empty_filter_matches_everything() -> None:
    assert matches(convo("a"))


def test_tags_equal_or_one_of() -> None:
    c = convo("a", tags={"vertical": "airline"})
    assert matches(c, tags={"vertical": "airline"})
    assert matches(c, tags={"vertical": ["retail", "airline"]})
    assert not matches(c, tags={"vertical": "retail"})
    assert not matches(convo("b"), tags={"vertical": ["airline"]})


def test_metadata_values_and_keys() -> None:
    c = convo("a", metadata={"tier": "gold", "attempt": 1, "beta": True})
    assert matches(c, metadata={"tier": "gold"})
    assert matches(c, metadata={"tier": ["silver", "gold"], "attempt": 1})
    assert not matches(c, metadata={"attempt": True}), "YAML true must not equal 1"
    assert not matches(c, metadata={"beta": 1})
    assert matches(c, metadata_keys=["tier", "beta"])
    assert not matches(c, metadata_keys=["missing"])
    assert not matches(convo("b"), metadata={"tier": None}), "an absent key is not null"


def test_signal_filters() -> None:
    assert matches(convo("a", escalated=True), escalated=True)
    assert matches(convo("a"), escalated=False)
    assert matches(convo("a", csat=2), csat_below=3)
    assert not matches(convo("a", csat=3), csat_below=3)
    assert not matches(convo("a"), csat_below=3), "unknown csat is not low"
    assert matches(convo("a", thumbs="up"), thumbs="up")
    assert not matches(convo("a", thumbs="down"), thumbs="up")
    assert matches(convo("a", abandoned=True), abandoned=True)


def test_tool_use_filters() -> None:
    with_tools = convo("a", tools=("lookup", "refund"))
    assert matches(with_tools, has_tool_calls=True)
    assert not matches(convo("b"), has_tool_calls=True)
    assert matches(convo("b"), has_tool_calls=False)
    assert matches(with_tools, tools=["refund", "cancel"])
    assert not matches(with_tools, tools=["cancel"])


def test_language_from_tag_or_metadata_with_subtags() -> None:
    assert matches(convo("a", tags={"language": "en-GB"}), language=["en"])
    assert matches(convo("a", metadata={"language": "DE"}), language=["de"])
    assert not matches(convo("a", tags={"language": "pt-PT"}), language=["pt-br"])
    assert matches(convo("a", tags={"language": "pt-BR"}), language=["pt-br"])


def test_a_single_language_or_tool_needs_no_list() -> None:
    only = Filter.model_validate({"language": "fr", "language_not": "en", "tools": "refund"})
    assert (only.language, only.language_not, only.tools) == (["fr"], ["en"], ["refund"])


def test_language_not_needs_a_known_language() -> None:
    assert matches(convo("a", tags={"language": "fr"}), language_not=["en"])
    assert not matches(convo("a", tags={"language": "en-US"}), language_not=["en"])
    assert not matches(convo("a"), language_not=["en"]), "unknown is not non-English"


def test_conditions_combine_with_and() -> None:
    c = convo("a", tags={"language": "fr"}, tools=("lookup",))
    assert matches(c, language_not=["en"], has_tool_calls=True)
    assert not matches(c, language_not=["en"], has_tool_calls=False)


# --- flow age ----------------------------------------------------------------------------


def new_flow_policy() -> SamplingPolicy:
    rule = Rule(name="new", filter=Filter(flow_age=FlowAge(max_age_days=30)), rate=1.0)
    return SamplingPolicy(rules=[rule], default_rate=0.0)


def test_flow_age_counts_whole_days_to_the_window_end() -> None:
    at = datetime(2026, 3, 31, 18, 0, tzinfo=UTC)
    window = [
        convo("day30", metadata={"flow_started": "2026-03-02"}, at=at),
        convo("day31", metadata={"flow_started": "2026-03-01"}, at=at),
        convo("tagged", tags={"flow_started": "2026-03-20T10:00:00+00:00"}),
        convo("no-date"),
        convo("bad-date", metadata={"flow_started": "last spring"}),
    ]
    rules = {d.conversation_id: d.rule for d in decide(window, new_flow_policy())}
    assert rules == {
        "day30": "new",
        "day31": "default",
        "tagged": "new",
        "no-date": "default",
        "bad-date": "default",
    }
    reason = decide(window[:1], new_flow_policy())[0].reason
    assert reason == "rule 'new' matched (flow started 2026-03-02, 29 days old)"


def test_flow_age_relative_to_a_given_now() -> None:
    c = convo("a", metadata={"flow_started": "2026-01-01"}, at=datetime(2026, 1, 5, tzinfo=UTC))
    assert decide([c], new_flow_policy())[0].rule == "new"
    assert decide([c], new_flow_policy(), now=date(2026, 6, 1))[0].rule == "default"
    later = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)
    assert decide([c], new_flow_policy(), now=later)[0].rule == "default"


def test_flow_age_without_any_clock_is_a_config_error() -> None:
    c = convo("a", metadata={"flow_started": "2026-01-01"})
    with pytest.raises(ConfigError, match="pass now="):
        decide([c], new_flow_policy())
    # Without a flow date in the window there is nothing to measure, so no error.
    assert decide([convo("b")], new_flow_policy())[0].rule == "default"


# --- triggers and precedence -----------------------------------------------------------


def test_triggers_take_precedence_at_rate_one() -> None:
    policy = SamplingPolicy(rules=[Rule(name="all", rate=0.0)], default_rate=0.0)
    window = [
        convo("esc", escalated=True),
        convo("csat", csat=2),
        convo("thumb", thumbs="down"),
        convo("fine", csat=3, thumbs="up"),
    ]
    got = {d.conversation_id: (d.rule, d.rate, d.sampled, d.reason) for d in decide(window, policy)}
    assert got == {
        "esc": ("trigger:escalated", 1.0, True, "escalated to a human"),
        "csat": ("trigger:csat", 1.0, True, "csat 2 < 3"),
        "thumb": ("trigger:thumbs_down", 1.0, True, "thumbs-down feedback"),
        "fine": ("all", 0.0, False, "rule 'all' matched"),
    }


def test_triggers_can_be_turned_off() -> None:
    policy = SamplingPolicy(
        triggers=Triggers(escalated=False, csat_below=None, thumbs_down=False), default_rate=0.0
    )
    window = [convo("a", escalated=True), convo("b", csat=1), convo("c", thumbs="down")]
    assert {d.rule for d in decide(window, policy)} == {"default"}


def test_first_matching_rule_wins() -> None:
    policy = SamplingPolicy(
        rules=[
            Rule(name="tools", filter=Filter(has_tool_calls=True), rate=0.3),
            Rule(name="foreign", filter=Filter(language_not=["en"]), rate=0.25),
        ]
    )
    c = convo("a", tags={"language": "fr"}, tools=("lookup",))
    assert decide([c], policy)[0].rule == "tools"
    swapped = policy.model_copy(update={"rules": policy.rules[::-1]})
    assert decide([c], swapped)[0].rule == "foreign"


# --- outliers ----------------------------------------------------------------------------


def test_latency_above_the_window_p99() -> None:
    policy = SamplingPolicy(outliers=Outliers(latency_percentile=99), default_rate=0.0)
    window = [convo(f"c{i}", latency=float(i)) for i in range(1, 201)]
    window.append(convo("no-latency"))
    decisions = {d.conversation_id: d for d in decide(window, policy)}
    outliers = sorted(k for k, d in decisions.items() if d.rule == "outlier:latency")
    # numpy's linear P99 of 1..200 is 198.01: exactly two conversations lie above it.
    assert outliers == ["c199", "c200"]
    assert decisions["c200"].sampled and decisions["c200"].inclusion_prob == 1.0
    assert decisions["c200"].reason == "max latency 200 ms > P99 of the window (198.01 ms)"
    assert decisions["no-latency"].rule == "default"


def test_latency_total_measure_sums_messages() -> None:
    policy = SamplingPolicy(
        outliers=Outliers(latency_percentile=50, latency_measure="total"), default_rate=0.0
    )
    window = [convo("slow-total", tools=("a",), latency=60.0), convo("fast", latency=50.0)]
    window[0].messages[1].latency_ms = 40.0  # the tool-calling reply; total 100 > 60
    rules = {d.conversation_id: d.rule for d in decide(window, policy)}
    assert rules == {"slow-total": "outlier:latency", "fast": "default"}


def test_tokens_above_k_times_the_window_median() -> None:
    policy = SamplingPolicy(outliers=Outliers(tokens_median_multiple=4, rate=0.999999))
    window = [convo(f"c{i}", tokens=100) for i in range(9)]
    window += [convo("big", tokens=401), convo("edge", tokens=400), convo("none")]
    decisions = {d.conversation_id: d for d in decide(window, policy)}
    assert decisions["big"].rule == "outlier:tokens"
    assert decisions["big"].rate == 0.999999
    assert decisions["big"].reason == "401 tokens > 4 x the window median (400)"
    assert decisions["edge"].rule == "default", "strictly above the threshold"
    assert decisions["none"].rule == "default"


def test_triggers_outrank_outliers() -> None:
    policy = SamplingPolicy(outliers=Outliers(tokens_median_multiple=2))
    window = [convo("a", tokens=1), convo("b", tokens=1), convo("c", tokens=100, escalated=True)]
    assert decide(window, policy)[2].rule == "trigger:escalated"
