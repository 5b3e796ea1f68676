"""Deterministic sampling decisions for one online window.

Each conversation gets a draw ``u = sha256(f"{salt}:{conversation_id}")``, its first 53
bits read as a fraction in [0, 1), and is sampled iff ``u < rate``. The draw depends only
on the id and the policy salt, so a decision reproduces in any process (Python's own
``hash()`` is randomized per process and is not used), every grader with the same salt
sees the same sample, and samples nest: a conversation sampled at 10% is also sampled at
30%.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ConfigError
from ..trace import AssistantMessage, Conversation, Score, ScoreSource
from ._policy import SamplingPolicy, flow_start

DecisionStatus = Literal["judge", "skipped_budget", "not_sampled"]
"""What happens to a conversation: judged, sampled but over budget, or not sampled."""

_TIER_PRIORITY = 0
"""Budget tier of trigger and outlier picks, which are spent first."""
_TIER_RULES = 1
"""Budget tier of everything else."""

_JUDGE_SOURCES: tuple[ScoreSource, ...] = ("model",)


def sampling_draw(conversation_id: str, salt: str = "") -> float:
    """The conversation's uniform draw in [0, 1): ``sha256(f"{salt}:{id}")``, top 53 bits.

    Other systems can reproduce it exactly; 53 bits is what a float holds, so the value
    is never rounded up to 1.0.
    """
    digest = hashlib.sha256(f"{salt}:{conversation_id}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / 2.0**53


class Decision(BaseModel):
    """Whether one conversation of a window is judged, and why. One is logged per conversation."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    conversation_id: str = Field(min_length=1)
    """Conversation the decision is about."""
    sampled: bool
    """The draw fell below the rate. Judged unless ``budget_skipped``."""
    rule: str
    """What set the rate: ``trigger:<name>``, ``outlier:<name>``, a rule name, or ``default``."""
    rate: float = Field(ge=0, le=1)
    """The configured rate of that rule."""
    inclusion_prob: float = Field(ge=0, le=1)
    """Probability of being judged: ``rate``, scaled down when the budget binds."""
    reason: str
    """Human-readable account of the rule match."""
    budget_skipped: bool = False
    """Sampled, but the window's budget was spent; deterministic checks still ran."""
    draw: float = Field(ge=0, lt=1)
    """The hash draw ``u``; sampled iff ``u < rate``."""
    est_cost_usd: float | None = Field(default=None, ge=0)
    """Estimated judge cost, when the policy's budget has a cost model."""

    @property
    def judged(self) -> bool:
        """True when the judges run on this conversation."""
        return self.sampled and not self.budget_skipped

    @property
    def status(self) -> DecisionStatus:
        """``judge``, ``skipped_budget`` or ``not_sampled``."""
        if not self.sampled:
            return "not_sampled"
        return "skipped_budget" if self.budget_skipped else "judge"


@dataclass(slots=True)
class _Row:
    """What the second pass needs of one conversation, so messages need not be kept."""

    conversation_id: str
    draw: float
    latency: float | None
    tokens: int | None
    trigger: tuple[str, str] | None
    # (rule index, flow start date) for rules whose window-independent part matched, in
    # order, up to the first one with no flow-age condition (date None); that one always
    # matches, so later rules cannot win.
    candidates: list[tuple[int, date | None]] = field(default_factory=list)


@dataclass(slots=True)
class _Pick:
    row: _Row
    rule: str
    rate: float
    reason: str
    tier: int


def decide(
    conversations: Iterable[Conversation],
    policy: SamplingPolicy,
    *,
    now: datetime | date | None = None,
) -> list[Decision]:
    """Decide, for every conversation of a window, whether it is judged.

    ``conversations`` is read once, so a generator over a large JSONL file works: the
    first pass keeps a small row per conversation (id, draw, latency, tokens and which
    rules matched), never its messages; the second pass, over those rows, applies the
    window's outlier thresholds, flow ages and budget. Memory is a few hundred bytes per
    conversation, so 100k conversations fit easily.

    Args:
        conversations: the whole window.
        policy: the sampling policy.
        now: reference time for flow ages; defaults to the window end, the latest
            message timestamp in the window.

    Returns:
        One decision per conversation, in input order.

    Raises:
        ConfigError: a rule tests flow age but there is no ``now`` and no timestamps.
    """
    rows: list[_Row] = []
    latest: datetime | None = None
    for conversation in conversations:
        rows.append(_first_pass(conversation, policy))
        stamp = _latest_timestamp(conversation)
        if stamp is not None and (latest is None or stamp > latest):
            latest = stamp

    today = _reference_day(now, latest, rows)
    latency_cut, tokens_cut = _outlier_thresholds(rows, policy)
    picks = [_pick(row, policy, today, latency_cut, tokens_cut) for row in rows]
    scales, skipped, costs = _apply_budget(picks, policy)
    return [
        Decision(
            conversation_id=p.row.conversation_id,
            sampled=p.row.draw < p.rate,
            rule=p.rule,
            rate=p.rate,
            inclusion_prob=p.rate * scales[p.tier],
            reason=p.reason,
            budget_skipped=i in skipped,
            draw=p.row.draw,
            est_cost_usd=costs[i] if costs is not None else None,
        )
        for i, p in enumerate(picks)
    ]


def _first_pass(conversation: Conversation, policy: SamplingPolicy) -> _Row:
    c = conversation
    latencies = [m.latency_ms for m in c.messages if m.latency_ms is not None]
    latency: float | None = None
    if latencies:
        latency = max(latencies) if policy.outliers.latency_measure == "max" else sum(latencies)
    usages = [m.usage for m in c.messages if isinstance(m, AssistantMessage) and m.usage]
    tokens = sum((u.input_tokens or 0) + (u.output_tokens or 0) for u in usages) if usages else None
    row = _Row(
        conversation_id=c.id,
        draw=sampling_draw(c.id, policy.salt),
        latency=latency,
        tokens=tokens,
        trigger=_trigger(c, policy),
    )
    if row.trigger is not None:
        return row  # a trigger outranks every rule, so matching them is wasted work
    for index, rule in enumerate(policy.rules):
        if not rule.filter.matches_static(c):
            continue
        if rule.filter.flow_age is None:
            row.candidates.append((index, None))
            break
        started = flow_start(c, rule.filter.flow_age.key)
        if started is not None:
            row.candidates.append((index, started))
    return row


def _trigger(c: Conversation, policy: SamplingPolicy) -> tuple[str, str] | None:
    t = policy.triggers
    s = c.signals
    if t.escalated and s.escalated:
        return "trigger:escalated", "escalated to a human"
    if t.csat_below is not None and s.csat is not None and s.csat < t.csat_below:
        return "trigger:csat", f"csat {s.csat} < {t.csat_below}"
    if t.thumbs_down and s.thumbs == "down":
        return "trigger:thumbs_down", "thumbs-down feedback"
    return None


def _latest_timestamp(c: Conversation) -> datetime | None:
    stamps = [m.timestamp for m in c.messages if m.timestamp is not None]
    if not stamps:
        return None
    # Canonical timestamps are UTC; a naive one is read as UTC rather than local time.
    return max(s if s.tzinfo is not None else s.replace(tzinfo=UTC) for s in stamps)


def _reference_day(
    now: datetime | date | None, latest: datetime | None, rows: Sequence[_Row]
) -> date | None:
    if isinstance(now, datetime):
        return (now.astimezone(UTC) if now.tzinfo is not None else now).date()
    if now is not None:
        return now
    if latest is not None:
        return latest.astimezone(UTC).date()
    if any(started is not None for row in rows for _, started in row.candidates):
        raise ConfigError(
            "the sampling policy tests flow age, but the window has no message timestamps "
            "to measure it from; pass now= (the window end)"
        )
    return None


def _outlier_thresholds(
    rows: Sequence[_Row], policy: SamplingPolicy
) -> tuple[float | None, float | None]:
    o = policy.outliers
    latency_cut = tokens_cut = None
    if o.latency_percentile is not None:
        latencies = [r.latency for r in rows if r.latency is not None]
        if latencies:
            latency_cut = float(np.percentile(latencies, o.latency_percentile))
    if o.tokens_median_multiple is not None:
        tokens = [r.tokens for r in rows if r.tokens is not None]
        if tokens:
            tokens_cut = o.tokens_median_multiple * float(np.median(tokens))
    return latency_cut, tokens_cut


def _pick(
    row: _Row,
    policy: SamplingPolicy,
    today: date | None,
    latency_cut: float | None,
    tokens_cut: float | None,
) -> _Pick:
    if row.trigger is not None:
        return _Pick(row, row.trigger[0], 1.0, row.trigger[1], _TIER_PRIORITY)
    o = policy.outliers
    if latency_cut is not None and row.latency is not None and row.latency > latency_cut:
        reason = (
            f"{o.latency_measure} latency {row.latency:g} ms > "
            f"P{o.latency_percentile:g} of the window ({latency_cut:g} ms)"
        )
        return _Pick(row, "outlier:latency", o.rate, reason, _TIER_PRIORITY)
    if tokens_cut is not None and row.tokens is not None and row.tokens > tokens_cut:
        reason = (
            f"{row.tokens} tokens > {o.tokens_median_multiple:g} x the window median "
            f"({tokens_cut:g})"
        )
        return _Pick(row, "outlier:tokens", o.rate, reason, _TIER_PRIORITY)
    for index, started in row.candidates:
        rule = policy.rules[index]
        if started is None:
            return _Pick(row, rule.name, rule.rate, f"rule {rule.name!r} matched", _TIER_RULES)
        assert today is not None and rule.filter.flow_age is not None  # _reference_day
        age = (today - started).days
        if age < rule.filter.flow_age.max_age_days:
            reason = f"rule {rule.name!r} matched (flow started {started}, {age} days old)"
            return _Pick(row, rule.name, rule.rate, reason, _TIER_RULES)
    return _Pick(row, "default", policy.default_rate, "no trigger or rule matched", _TIER_RULES)


def _apply_budget(
    picks: Sequence[_Pick], policy: SamplingPolicy
) -> tuple[dict[int, float], set[int], list[float] | None]:
    """Spend the budget; return per-tier rate scales, skipped positions, and costs."""
    scales = {_TIER_PRIORITY: 1.0, _TIER_RULES: 1.0}
    budget = policy.budget
    if budget is None:
        return scales, set(), None
    with_cost = budget.max_cost_usd is not None
    costs = [budget.estimated_cost(p.row.tokens) for p in picks] if with_cost else None
    sampled = [i for i, p in enumerate(picks) if p.row.draw < p.rate]
    # draw / rate is uniform on [0, 1) among a rule's sampled conversations, whatever its
    # rate, so cutting this order at any point thins every rule by the same factor.
    sampled.sort(key=lambda i: (picks[i].tier, picks[i].row.draw / picks[i].rate, i))
    judged = 0
    spent = 0.0
    for position, i in enumerate(sampled):
        over_count = budget.max_judged is not None and judged + 1 > budget.max_judged
        cost = costs[i] if costs is not None else 0.0
        over_cost = budget.max_cost_usd is not None and spent + cost > budget.max_cost_usd
        if over_count or over_cost:
            tier = picks[i].tier
            # Sequential Poisson sampling: judged iff draw < rate * scale, with the scale
            # the priority of the first conversation left out.
            scales[tier] = picks[i].row.draw / picks[i].rate
            for later in (_TIER_PRIORITY, _TIER_RULES):
                if later > tier:
                    scales[later] = 0.0
            return scales, set(sampled[position:]), costs
        judged += 1
        spent += cost
    return scales, set(), costs


@dataclass(frozen=True, slots=True)
class RuleTally:
    """Counts for one rule over a window."""

    rule: str
    """Rule name (``trigger:...``, ``outlier:...``, a rule, or ``default``)."""
    rate: float
    """The rule's configured rate."""
    seen: int
    """Conversations the rule took."""
    sampled: int
    """Of those, how many fell under the rate."""
    judged: int
    """Of those, how many the budget allowed."""
    budget_skipped: int
    """Sampled but skipped for budget."""

    @property
    def share(self) -> float:
        """Sampled share, ``sampled / seen``; comparable with ``rate``."""
        return self.sampled / self.seen if self.seen else math.nan


@dataclass(frozen=True, slots=True)
class SamplingReport:
    """What a window's decisions amount to, for logs and the CLI."""

    total: int
    """Conversations in the window."""
    sampled: int
    """Conversations whose draw fell under their rate."""
    judged: int
    """Conversations the judges run on."""
    budget_skipped: int
    """Sampled conversations skipped because the budget was spent."""
    by_rule: dict[str, RuleTally]
    """Counts per rule, in order of first appearance."""
    skipped_ids: list[str]
    """Ids of the budget-skipped conversations (their deterministic checks still ran)."""
    judged_cost_usd: float | None
    """Estimated judge cost of the judged conversations, with a cost model."""
    skipped_cost_usd: float | None
    """Estimated judge cost that the budget saved, with a cost model."""


def summarize(decisions: Iterable[Decision]) -> SamplingReport:
    """Tally decisions per rule and list what the budget skipped."""
    tallies: dict[str, list[int]] = {}
    rates: dict[str, float] = {}
    skipped: list[str] = []
    total = 0
    judged_cost: float | None = None
    skipped_cost: float | None = None
    for d in decisions:
        total += 1
        t = tallies.setdefault(d.rule, [0, 0, 0, 0])
        rates.setdefault(d.rule, d.rate)
        t[0] += 1
        t[1] += d.sampled
        t[2] += d.judged
        t[3] += d.budget_skipped
        if d.budget_skipped:
            skipped.append(d.conversation_id)
        if d.est_cost_usd is not None:
            judged_cost = (judged_cost or 0.0) + (d.est_cost_usd if d.judged else 0.0)
            skipped_cost = (skipped_cost or 0.0) + (d.est_cost_usd if d.budget_skipped else 0.0)
    by_rule = {name: RuleTally(name, rates[name], *counts) for name, counts in tallies.items()}
    return SamplingReport(
        total=total,
        sampled=sum(t.sampled for t in by_rule.values()),
        judged=sum(t.judged for t in by_rule.values()),
        budget_skipped=len(skipped),
        by_rule=by_rule,
        skipped_ids=skipped,
        judged_cost_usd=judged_cost,
        skipped_cost_usd=skipped_cost,
    )


def stamp_scores(
    scores: Iterable[Score],
    decisions: Iterable[Decision],
    *,
    window: str | None = None,
    sampled_sources: Collection[ScoreSource] = _JUDGE_SOURCES,
) -> list[Score]:
    """Copy scores with their inclusion probability, sampling rule and window filled in.

    Scores from ``sampled_sources`` (judges, by default) get their conversation's
    ``inclusion_prob`` and the ``sampling_rule`` that set it; the others ran on every
    conversation and keep theirs (None counts as 1 when weighting).

    Raises:
        ValueError: a sampled-source score is about a conversation the decisions did not
            judge, which would make its weight meaningless.
    """
    by_id = {d.conversation_id: d for d in decisions}
    stamped: list[Score] = []
    for score in scores:
        update: dict[str, object] = {}
        if window is not None:
            update["window"] = window
        if score.source in sampled_sources:
            d = by_id.get(score.conversation_id)
            if d is None or not d.judged:
                state = "has no decision" if d is None else f"was {d.status.replace('_', ' ')}"
                raise ValueError(
                    f"score {score.name!r} is about conversation {score.conversation_id!r}, "
                    f"which {state}; judge only conversations the decisions mark judged"
                )
            update["inclusion_prob"] = d.inclusion_prob
            update["sampling_rule"] = d.rule
        stamped.append(score.model_copy(update=update))
    return stamped
