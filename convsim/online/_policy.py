"""Sampling policies: which conversations of a window are judged, and at what rate.

A policy is a YAML file (``convsim schema policy``) validated into :class:`SamplingPolicy`.
Precedence, highest first: ``triggers`` (always 100%), ``outliers`` (computed over the
whole window), the ordered ``rules`` (first match wins), then ``default_rate``.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from .._yaml import load_yaml_model
from ..trace import Conversation

_CONFIG = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

Rate = Annotated[float, Field(ge=0, le=1)]
"""A sampling rate: the probability that a matching conversation is judged."""

MetadataValue = str | int | float | bool | None
"""A metadata value a filter can compare against (JSON scalars only)."""

RESERVED_RULE_NAMES = ("default",)
"""Rule names the sampler uses itself; ``trigger:`` and ``outlier:`` prefixes are reserved too."""


class FlowAge(BaseModel):
    """Matches conversations of a flow that started recently (e.g. its first 30 days)."""

    model_config = _CONFIG

    max_age_days: int = Field(ge=1)
    """Match while the flow is younger than this many whole days (30 = its first 30 days)."""
    key: str = Field(default="flow_started", min_length=1)
    """Metadata key (or tag) holding the flow's start date, ISO 8601 (``2026-03-01``)."""


class Filter(BaseModel):
    """Conditions on one conversation. Every condition given must hold; none means all."""

    model_config = _CONFIG

    tags: dict[str, str | list[str]] = Field(default_factory=dict)
    """Tag equals a value, or is one of a list (``{vertical: [airline, retail]}``)."""
    metadata: dict[str, MetadataValue | list[MetadataValue]] = Field(default_factory=dict)
    """Metadata key equals a value, or is one of a list."""
    metadata_keys: list[str] = Field(default_factory=list)
    """Metadata keys that must be present (any value)."""
    escalated: bool | None = None
    """The conversation was (true) or was not (false) handed to a human."""
    csat_below: int | None = Field(default=None, ge=2, le=6)
    """CSAT is known and below this value."""
    thumbs: Literal["up", "down"] | None = None
    """Explicit thumbs feedback equals this."""
    abandoned: bool | None = None
    """The user did (true) or did not (false) abandon the conversation."""
    has_tool_calls: bool | None = None
    """The agent called at least one tool (true), or none (false)."""
    tools: list[str] = Field(default_factory=list)
    """The agent called at least one of these tools."""
    language: list[str] | None = None
    """Language (tag or metadata ``language``) is one of these. ``en`` also matches ``en-GB``."""
    language_not: list[str] | None = None
    """Language is known and none of these: ``[en]`` selects non-English conversations."""
    flow_age: FlowAge | None = None
    """The conversation's flow started less than ``max_age_days`` before the window end."""

    @field_validator("language", "language_not", "tools", mode="before")
    @classmethod
    def _one_as_list(cls, value: object) -> object:
        # ``language: en`` reads better in YAML than ``language: [en]``; accept both.
        return [value] if isinstance(value, str) else value

    @property
    def is_static(self) -> bool:
        """True when the filter does not depend on the window (no flow-age condition)."""
        return self.flow_age is None

    def matches_static(self, conversation: Conversation) -> bool:
        """Whether every condition except ``flow_age`` holds for ``conversation``."""
        c = conversation
        for key, want in self.tags.items():
            if not _one_of(c.tags.get(key), want, present=key in c.tags):
                return False
        for key, wanted in self.metadata.items():
            if not _one_of(c.metadata.get(key), wanted, present=key in c.metadata):
                return False
        if any(key not in c.metadata for key in self.metadata_keys):
            return False
        s = c.signals
        if self.escalated is not None and bool(s.escalated) != self.escalated:
            return False
        if self.csat_below is not None and (s.csat is None or s.csat >= self.csat_below):
            return False
        if self.thumbs is not None and s.thumbs != self.thumbs:
            return False
        if self.abandoned is not None and bool(s.abandoned) != self.abandoned:
            return False
        if self.has_tool_calls is not None or self.tools:
            called = {call.name for call in c.tool_calls()}
            if self.has_tool_calls is not None and bool(called) != self.has_tool_calls:
                return False
            if self.tools and called.isdisjoint(self.tools):
                return False
        if self.language is not None or self.language_not is not None:
            lang = conversation_language(c)
            if self.language is not None and not _language_in(lang, self.language):
                return False
            if self.language_not is not None and (
                lang is None or _language_in(lang, self.language_not)
            ):
                return False
        return True


class Rule(BaseModel):
    """One sampling rule: conversations matching ``filter`` are judged at ``rate``."""

    model_config = _CONFIG

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    """Rule name, recorded in every decision it makes."""
    filter: Filter = Field(default_factory=Filter)
    """Which conversations the rule takes; an empty filter takes every conversation."""
    rate: Rate
    """Probability that a conversation this rule takes is judged (its inclusion probability)."""


class Triggers(BaseModel):
    """Signals that put a conversation in the judged sample every time (rate 1)."""

    model_config = _CONFIG

    escalated: bool = True
    """Judge every conversation handed to a human."""
    csat_below: int | None = Field(default=3, ge=2, le=6)
    """Judge every conversation whose CSAT is below this; null turns the trigger off."""
    thumbs_down: bool = True
    """Judge every conversation with thumbs-down feedback."""


class Outliers(BaseModel):
    """Conversations that are extreme for their window; thresholds come from the window."""

    model_config = _CONFIG

    latency_percentile: float | None = Field(default=None, gt=0, lt=100)
    """Take conversations whose latency is above this window percentile (99 = P99)."""
    latency_measure: Literal["max", "total"] = "max"
    """Conversation latency: the slowest message (``max``) or the sum over messages."""
    tokens_median_multiple: float | None = Field(default=None, gt=0)
    """Take conversations using more than this many times the window's median tokens."""
    rate: Rate = 1.0
    """Rate at which outliers are judged."""


class Budget(BaseModel):
    """A cap on judging per window. Sampled conversations beyond it are skipped, not judged.

    The cap is spent in priority order: trigger and outlier picks first, then the rest in
    increasing ``draw / rate``. That is the same as scaling every remaining rate by one
    factor, which each decision records in ``inclusion_prob``, so weighted estimates stay
    (approximately) unbiased. Spending it in arrival order instead would leave the end of
    the window unjudged.
    """

    model_config = _CONFIG

    max_judged: int | None = Field(default=None, ge=0)
    """Most conversations judged per window."""
    max_cost_usd: float | None = Field(default=None, ge=0)
    """Most judge spend per window, from the cost model below."""
    cost_per_conversation_usd: float = Field(default=0.0, ge=0)
    """Estimated fixed judge cost of one conversation (all judges together)."""
    cost_per_1k_tokens_usd: float = Field(default=0.0, ge=0)
    """Estimated judge cost per 1,000 conversation tokens (the judge reads the transcript)."""

    @model_validator(mode="after")
    def _cost_model_for_cost_cap(self) -> Budget:
        if (
            self.max_cost_usd is not None
            and self.cost_per_conversation_usd == 0
            and self.cost_per_1k_tokens_usd == 0
        ):
            raise ValueError(
                "max_cost_usd needs a cost model: set cost_per_conversation_usd "
                "and/or cost_per_1k_tokens_usd"
            )
        return self

    def estimated_cost(self, tokens: int | None) -> float:
        """Estimated judge cost of a conversation with ``tokens`` tokens (None: unknown)."""
        return self.cost_per_conversation_usd + self.cost_per_1k_tokens_usd * (tokens or 0) / 1000


class Anchors(BaseModel):
    """A fixed set of conversations that the judges see again in every window.

    Its scores change only if the judge does (a provider updating the model behind a
    name, a new prompt, a new grader), so drift reports tell a judge change from a
    product change without anyone declaring it. The set is drawn once, by hash, from
    the first window graded with a store, and kept there; it is judged in addition
    to the sample and the budget, without the response cache.
    """

    model_config = _CONFIG

    size: int = Field(default=300, ge=0)
    """Conversations in the set; 0 turns anchoring off. With 300, a judge change that
    moved a judged pass rate by 5 points was found in 93% of windows, one that moved
    it by 4 points in 75% (docs/statistics.md); a larger set finds smaller changes."""


class SamplingPolicy(BaseModel):
    """Which conversations of an online window are judged, loaded from a YAML file.

    Deterministic checks and guardrails run on every conversation; the policy only
    decides which ones the (costly) judges see.
    """

    model_config = _CONFIG

    salt: str = ""
    """Mixed into the hash of each conversation id. Keep it fixed so reruns and graders agree."""
    triggers: Triggers = Field(default_factory=Triggers)
    """Signals judged at 100%, checked before anything else."""
    outliers: Outliers = Field(default_factory=Outliers)
    """Window outliers, checked after triggers and before rules."""
    rules: list[Rule] = Field(default_factory=list)
    """Ordered rules; the first whose filter matches sets the rate."""
    default_rate: Rate = 0.1
    """Rate for conversations that no trigger, outlier or rule takes."""
    budget: Budget | None = None
    """Optional cap on judging per window."""
    anchors: Anchors = Field(default_factory=Anchors)
    """The anchor set re-judged every window, to catch a judge that changed."""

    @model_validator(mode="after")
    def _unique_rule_names(self) -> SamplingPolicy:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in RESERVED_RULE_NAMES:
                raise ValueError(f"rule name {rule.name!r} is reserved; choose another")
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice; names must be unique")
            seen.add(rule.name)
        return self


def load_policy(path: str | os.PathLike[str]) -> SamplingPolicy:
    """Load and validate a sampling policy file.

    Raises:
        ConfigError: naming the file and the field path of every problem.
    """
    return load_yaml_model(path, SamplingPolicy, "sampling policy", "policy")


def conversation_language(conversation: Conversation) -> str | None:
    """The conversation's language: tag ``language``, else metadata ``language``."""
    lang = conversation.tags.get("language")
    if lang is None:
        value = conversation.metadata.get("language")
        lang = value if isinstance(value, str) else None
    return lang.strip().lower() if lang and lang.strip() else None


def parse_day(value: JsonValue) -> date | None:
    """A UTC date from an ISO 8601 date or datetime string; None when it is not one."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date()


def flow_start(conversation: Conversation, key: str) -> date | None:
    """The flow start date stored under ``key`` in metadata (preferred) or tags."""
    if key in conversation.metadata:
        return parse_day(conversation.metadata[key])
    return parse_day(conversation.tags.get(key))


def _one_of(
    value: JsonValue, wanted: MetadataValue | list[MetadataValue] | list[str], *, present: bool
) -> bool:
    if not present:
        return False
    if isinstance(wanted, list):
        return any(_same(value, w) for w in wanted)
    return _same(value, wanted)


def _same(value: JsonValue, wanted: MetadataValue) -> bool:
    # True == 1 in Python; YAML `true` must not match a metadata value of 1.
    if isinstance(value, bool) != isinstance(wanted, bool):
        return False
    return value == wanted


def _language_in(lang: str | None, wanted: list[str]) -> bool:
    if lang is None:
        return False
    primary = lang.split("-", 1)[0]
    for w in wanted:
        w = w.strip().lower()
        # A bare subtag (``en``) covers its regional variants (``en-gb``); a regional
        # one (``pt-br``) matches only itself.
        if lang == w or ("-" not in w and primary == w):
            return True
    return False
