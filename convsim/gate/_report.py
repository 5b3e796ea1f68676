"""Comparing two runs: metric, pairing, verdicts, reliability, drilldown and budgets."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..stats import PassKReport, pass_k_report
from ._load import GateError, RunData, ScoreValue, TrialRecord
from ._stats import ALL_CASES, EXIT_CODES, Comparison, Verdict, compare_counts

DEFAULT_METRIC = "outcome"
"""Score compared when ``--metric`` is not given: the conjunction of the outcome checks
that ``convsim grade`` produces."""

COMPLETED_METRIC = "completed"
"""Built-in metric: the conversation ended normally (the user or agent stopped, or the
agent transferred), judged from the termination alone. Used when neither run has an
``outcome`` score and no metric was named; a real score of this name takes precedence."""

COMPLETED_TERMINATIONS = frozenset({"user_stop", "agent_stop", "agent_transfer"})
"""Terminations :data:`COMPLETED_METRIC` counts as a pass (the outcome grader's default)."""

MISSING_TAG = "(none)"
"""Tag value of cases that do not carry the tag."""

MetricSource = Literal["score", "termination"]
"""Where the compared pass/fail comes from."""

Side = Literal["candidate", "baseline"]
"""Which run a figure belongs to."""


@dataclass(frozen=True)
class ScoreStats:
    """Mean and variance of one score over a set of conversations."""

    n: int
    """Conversations with a numeric value of the score."""
    mean: float
    """Mean value (true counts as 1)."""
    variance: float | None
    """Sample variance (n - 1 denominator); None with fewer than two values."""


@dataclass(frozen=True)
class CaseReliability:
    """How one case behaved over its counted trials in one run."""

    case_id: str
    """The case."""
    trials: int
    """Counted trials with a pass/fail."""
    passes: int
    """Trials that passed."""
    label: Literal["stable", "flaky"] | None
    """flaky when the case both passed and failed, stable when every trial agreed; None
    with a single trial, which cannot show flakiness."""
    scores: dict[str, ScoreStats] = field(default_factory=dict[str, ScoreStats])
    """Mean and variance of every numeric score over the case's counted trials."""

    @property
    def rate(self) -> float:
        """Pass rate over the case's trials."""
        return self.passes / self.trials


@dataclass(frozen=True)
class RunReliability:
    """Per-case reliability of one run: pass^k and pass@k, flakiness, score spread."""

    side: Side
    """candidate or baseline."""
    run_id: str
    """Run name."""
    source: str
    """Where the run was read from."""
    conversations: int
    """Conversations in the run."""
    counted: int
    """Conversations with a pass/fail that counts for the agent."""
    excluded: dict[str, int]
    """Conversations left out, by reason (a termination, or ``missing_score``)."""
    passk: PassKReport | None
    """pass^k and pass@k with intervals; None when no conversation counted."""
    cases: tuple[CaseReliability, ...]
    """Every case with at least one counted trial."""
    scores: dict[str, ScoreStats]
    """Mean and variance of every numeric score over the counted conversations."""

    @property
    def flaky_cases(self) -> int:
        """Cases that both passed and failed."""
        return sum(c.label == "flaky" for c in self.cases)

    @property
    def stable_cases(self) -> int:
        """Cases with several trials that all agreed."""
        return sum(c.label == "stable" for c in self.cases)


@dataclass(frozen=True)
class Percentiles:
    """P50 and P95 of a per-conversation quantity."""

    n: int
    """Conversations with a value."""
    p50: float | None
    """Median; None without values."""
    p95: float | None
    """95th percentile (nearest rank: an observed value); None without values."""


@dataclass(frozen=True)
class DrilldownRow:
    """One run's figures for one group of conversations."""

    side: Side
    """candidate or baseline."""
    tag: str | None
    """Tag key; None for all conversations."""
    value: str | None
    """Tag value; None for all conversations."""
    cases: int
    """Cases with a counted trial."""
    conversations: int
    """Counted conversations."""
    excluded: int
    """Conversations excluded (errors that are not the agent's, missing scores)."""
    rate: float | None
    """Pass rate (mean over cases of each case's rate); None when nothing counted."""
    low: float | None
    """Lower bound of its case-bootstrap interval."""
    high: float | None
    """Upper bound of its case-bootstrap interval."""
    latency_ms: Percentiles
    """Agent latency per conversation (all conversations that count for the agent)."""
    cost_usd: Percentiles
    """Agent cost per conversation."""

    @property
    def label(self) -> str:
        """``all`` or ``tag=value``."""
        return ALL_CASES if self.tag is None else f"{self.tag}={self.value}"


@dataclass(frozen=True)
class BudgetCheck:
    """The candidate's P95 per conversation against a budget, for one group."""

    group: str
    """``all`` or ``tag=value``."""
    kind: Literal["latency_ms", "cost_usd"]
    """What is budgeted."""
    budget: float
    """The budget."""
    p95: float | None
    """The candidate's P95; None when no conversation recorded the quantity."""
    baseline_p95: float | None
    """The baseline's P95, for context."""

    @property
    def ok(self) -> bool | None:
        """Within budget; None when there is nothing to check."""
        return None if self.p95 is None else self.p95 <= self.budget


@dataclass(frozen=True)
class CaseChange:
    """A case whose pass rate differs between the runs."""

    case_id: str
    """The case."""
    tags: dict[str, str]
    """Its values of the compared tags."""
    candidate_passes: int
    """Candidate passes."""
    candidate_trials: int
    """Candidate trials compared."""
    baseline_passes: int
    """Baseline passes."""
    baseline_trials: int
    """Baseline trials compared."""

    @property
    def delta(self) -> float:
        """Candidate rate minus baseline rate on this case."""
        return (
            self.candidate_passes / self.candidate_trials
            - self.baseline_passes / self.baseline_trials
        )


@dataclass(frozen=True)
class Pairing:
    """How the two runs' trials were matched."""

    cases: int
    """Cases compared (a counted trial in both runs)."""
    by_seed: int
    """Cases whose trials were matched by seed (both runs ran the same seeds)."""
    by_case: int
    """Cases compared on all their counted trials (no shared seeds)."""
    unpaired_trials: dict[str, int]
    """Per run, counted trials dropped because the other run has no counted trial with
    the same seed."""
    only_candidate: tuple[str, ...]
    """Cases the candidate ran and the baseline did not."""
    only_baseline: tuple[str, ...]
    """Cases the baseline ran and the candidate did not."""


@dataclass(frozen=True)
class GateReport:
    """Everything ``convsim compare`` reports."""

    metric: str
    """The pass/fail compared."""
    metric_source: MetricSource
    """A score of that name, or the termination (see :data:`COMPLETED_METRIC`)."""
    by: tuple[str, ...]
    """Tag keys the gate groups by."""
    comparison: Comparison
    """Verdicts per group."""
    candidate: RunReliability
    """Candidate reliability."""
    baseline: RunReliability
    """Baseline reliability."""
    pairing: Pairing
    """How trials were matched."""
    drilldown: tuple[DrilldownRow, ...]
    """Per run and group: rates, intervals, latency and cost."""
    budgets: tuple[BudgetCheck, ...]
    """Budget checks of the candidate, when budgets were given."""
    changes: tuple[CaseChange, ...]
    """Cases whose pass rate changed, most worsened first."""
    notes: tuple[str, ...]
    """Plain-language caveats: fallbacks, exclusions, unpaired cases."""

    @property
    def budget_ok(self) -> bool:
        """No group of the candidate is over a budget."""
        return all(b.ok is not False for b in self.budgets)

    @property
    def verdict(self) -> Verdict:
        """The comparison's verdict, turned into regression by any budget breach."""
        if not self.budget_ok:
            return "regression"
        return self.comparison.verdict

    @property
    def exit_code(self) -> int:
        """0 pass, 1 regression (or over budget), 3 inconclusive."""
        return EXIT_CODES[self.verdict]

    def to_dict(self) -> dict[str, Any]:
        """The whole report as JSON-ready data."""
        return _report_dict(self)


# -- building ---------------------------------------------------------------------------


def resolve_metric(
    candidate: RunData, baseline: RunData, metric: str | None
) -> tuple[str, MetricSource, list[str]]:
    """Pick the compared pass/fail and say how it was chosen.

    Args:
        candidate: Candidate run.
        baseline: Baseline run.
        metric: The metric the user named, or None for the default.

    Returns:
        ``(name, source, notes)``.

    Raises:
        GateError: When the metric is missing from a run, or only one run has the
            default ``outcome`` score.
    """
    names_c, names_b = candidate.score_names(), baseline.score_names()
    wanted = metric or DEFAULT_METRIC
    in_c, in_b = wanted in names_c, wanted in names_b
    if in_c and in_b:
        return wanted, "score", []
    if wanted == COMPLETED_METRIC and not in_c and not in_b:
        return COMPLETED_METRIC, "termination", [_completed_note()]
    if metric is None and not in_c and not in_b:
        return (
            COMPLETED_METRIC,
            "termination",
            [
                f"neither run has an {DEFAULT_METRIC!r} score, so the gate compares "
                f"{COMPLETED_METRIC!r}: {_completed_note()}. Grade both runs "
                "(convsim grade) and pass --scores-candidate/--scores-baseline to compare "
                "real outcomes"
            ],
        )
    missing = [
        (side, run, names)
        for side, run, names, has in (
            ("candidate", candidate, names_c, in_c),
            ("baseline", baseline, names_b, in_b),
        )
        if not has
    ]
    side, run, names = missing[0]
    available = ", ".join(sorted(names)[:15]) or "none"
    raise GateError(
        f"the {side} run {run.run_id!r} ({run.source}) has no {wanted!r} score (scores it "
        f"has: {available}); grade both runs the same way and pass --scores-{side} FILE, "
        f"or choose another --metric (--metric {COMPLETED_METRIC} compares terminations)"
    )


def _completed_note() -> str:
    ends = ", ".join(sorted(COMPLETED_TERMINATIONS))
    return f"a conversation passes when it ended with {ends}"


def _outcome(t: TrialRecord, metric: str, source: MetricSource) -> bool | None:
    """Pass/fail of one trial, None when the score is missing."""
    if source == "termination":
        return t.termination in COMPLETED_TERMINATIONS
    value = t.scores.get(metric)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    raise GateError(
        f"metric {metric!r} is not pass/fail: conversation {t.conversation_id!r} has "
        f"{value!r}; the gate compares binary scores, so pick one with --metric"
    )


@dataclass
class _Trials:
    """One run's trials split into usable (counted with a pass/fail) and excluded."""

    usable: dict[str, list[tuple[TrialRecord, bool]]]
    excluded: dict[str, int]
    all_by_case: dict[str, list[TrialRecord]]


def _split(run: RunData, metric: str, source: MetricSource) -> _Trials:
    usable: dict[str, list[tuple[TrialRecord, bool]]] = defaultdict(list)
    excluded: dict[str, int] = defaultdict(int)
    all_by_case: dict[str, list[TrialRecord]] = defaultdict(list)
    for t in run.trials:
        all_by_case[t.case_id].append(t)
        if not t.counts_for_agent:
            excluded[t.termination] += 1
            continue
        passed = _outcome(t, metric, source)
        if passed is None:
            excluded["missing_score"] += 1
            continue
        usable[t.case_id].append((t, passed))
    return _Trials(dict(usable), dict(excluded), dict(all_by_case))


def _numeric(value: ScoreValue) -> float | None:
    if isinstance(value, str):
        return None
    return float(value)


def _score_stats(trials: Iterable[TrialRecord]) -> dict[str, ScoreStats]:
    values: dict[str, list[float]] = defaultdict(list)
    for t in trials:
        for name, v in t.scores.items():
            x = _numeric(v)
            if x is not None:
                values[name].append(x)
    out: dict[str, ScoreStats] = {}
    for name in sorted(values):
        arr = np.asarray(values[name])
        out[name] = ScoreStats(
            n=int(arr.size),
            mean=float(arr.mean()),
            variance=float(arr.var(ddof=1)) if arr.size > 1 else None,
        )
    return out


def _reliability(
    side: Side, run: RunData, split: _Trials, *, confidence: float, seed: int
) -> RunReliability:
    cases: list[CaseReliability] = []
    for case_id, items in split.usable.items():
        n = len(items)
        c = sum(p for _, p in items)
        label: Literal["stable", "flaky"] | None = None
        if n > 1:
            label = "flaky" if 0 < c < n else "stable"
        cases.append(CaseReliability(case_id, n, c, label, _score_stats(t for t, _ in items)))
    passk = None
    if split.usable:
        passk = pass_k_report(
            {k: [p for _, p in v] for k, v in split.usable.items()},
            excluded=split.excluded,
            confidence=confidence,
            seed=seed,
        )
    counted = [t for t in run.trials if t.counts_for_agent]
    return RunReliability(
        side=side,
        run_id=run.run_id,
        source=run.source,
        conversations=len(run.trials),
        counted=sum(len(v) for v in split.usable.values()),
        excluded=dict(sorted(split.excluded.items())),
        passk=passk,
        cases=tuple(cases),
        scores=_score_stats(counted),
    )


def _percentiles(values: Sequence[float | None]) -> Percentiles:
    xs = np.asarray([v for v in values if v is not None], dtype=float)
    if xs.size == 0:
        return Percentiles(0, None, None)
    # Nearest rank (an observed value), so a P95 over 20 conversations is a real one.
    p50, p95 = np.quantile(xs, [0.5, 0.95], method="inverted_cdf")
    return Percentiles(int(xs.size), float(p50), float(p95))


def _drilldown_row(
    side: Side,
    tag: str | None,
    value: str | None,
    trials: Sequence[TrialRecord],
    outcomes: Mapping[str, list[bool]],
    excluded: int,
    *,
    confidence: float,
    seed: int,
) -> DrilldownRow:
    rate = low = high = None
    if outcomes:
        rep = pass_k_report(outcomes, ks=[1], confidence=confidence, seed=seed)
        est = rep.estimate(1)
        rate, low, high = est.pass_hat, est.pass_hat_low, est.pass_hat_high
    counted = [t for t in trials if t.counts_for_agent]
    return DrilldownRow(
        side=side,
        tag=tag,
        value=value,
        cases=len(outcomes),
        conversations=sum(len(v) for v in outcomes.values()),
        excluded=excluded,
        rate=rate,
        low=low,
        high=high,
        latency_ms=_percentiles([t.latency_ms for t in counted]),
        cost_usd=_percentiles([t.cost_usd for t in counted]),
    )


def _drilldown(
    side: Side,
    run: RunData,
    split: _Trials,
    by: Sequence[str],
    *,
    confidence: float,
    seed: int,
) -> list[DrilldownRow]:
    # Trial records are frozen but not hashable by value alone; identity keys them.
    passed_of = {id(t): p for items in split.usable.values() for t, p in items}
    groups: list[tuple[str | None, str | None, list[TrialRecord]]] = [
        (None, None, list(run.trials))
    ]
    for key in by:
        members: dict[str, list[TrialRecord]] = defaultdict(list)
        for t in run.trials:
            members[t.tags.get(key, MISSING_TAG)].append(t)
        groups.extend((key, value, members[value]) for value in sorted(members))
    rows = []
    for group_key, group_value, trials in groups:
        outcomes: dict[str, list[bool]] = defaultdict(list)
        for t in trials:
            if id(t) in passed_of:
                outcomes[t.case_id].append(passed_of[id(t)])
        rows.append(
            _drilldown_row(
                side,
                group_key,
                group_value,
                trials,
                dict(outcomes),
                len(trials) - sum(len(v) for v in outcomes.values()),
                confidence=confidence,
                seed=seed,
            )
        )
    return rows


def _pair_case(
    a: list[tuple[TrialRecord, bool]],
    b: list[tuple[TrialRecord, bool]],
    all_a: list[TrialRecord],
    all_b: list[TrialRecord],
) -> tuple[bool, list[bool], list[bool]]:
    """Match a case's trials; returns (paired by seed, candidate outcomes, baseline's)."""
    seeds_a = [t.seed for t in all_a]
    seeds_b = [t.seed for t in all_b]
    shared = (
        None not in seeds_a
        and None not in seeds_b
        and len(set(seeds_a)) == len(seeds_a)
        and len(set(seeds_b)) == len(seeds_b)
        and bool(set(seeds_a) & set(seeds_b))
    )
    if not shared:
        return False, [p for _, p in a], [p for _, p in b]
    pa = {t.seed: p for t, p in a}
    pb = {t.seed: p for t, p in b}
    common = sorted(s for s in pa if s in pb and s is not None)
    return True, [pa[s] for s in common], [pb[s] for s in common]


def _case_tags(
    case_id: str, by: Sequence[str], cand: _Trials, base: _Trials
) -> tuple[dict[str, str], bool]:
    """The case's value of every compared tag, and whether the runs disagreed on one."""
    out: dict[str, str] = {}
    disagree = False
    for key in by:
        seen = [
            t.tags[key]
            for t in [*base.all_by_case.get(case_id, []), *cand.all_by_case.get(case_id, [])]
            if key in t.tags
        ]
        out[key] = seen[0] if seen else MISSING_TAG
        disagree = disagree or len(set(seen)) > 1
    return out, disagree


def compare_runs(
    candidate: RunData,
    baseline: RunData,
    *,
    max_regression: float,
    by: Sequence[str] = (),
    alpha: float = 0.05,
    metric: str | None = None,
    latency_budget_ms: float | None = None,
    cost_budget_usd: float | None = None,
    resamples: int | None = None,
    seed: int = 0,
) -> GateReport:
    """Gate a candidate run against a baseline run.

    Cases are paired by case id. Where both runs ran a case with the same seeds, its
    trials are also paired by seed: a trial counts only when the other run has a counted
    trial with the same seed. Conversations that end in a simulator or infrastructure
    error, or were voided, are excluded and reported, as are conversations without the
    compared score.

    Args:
        candidate: The run under test.
        baseline: The run it must not be worse than.
        max_regression: Allowed drop, in percentage points, overall and per tag value.
        by: Tag keys to gate per value (e.g. ``vertical``).
        alpha: Error rate of a wrong pass, and of a wrong regression over all groups.
        metric: Binary score to compare; default ``outcome``, or ``completed`` when
            neither run has ``outcome`` scores (see :data:`COMPLETED_METRIC`).
        latency_budget_ms: Budget for the candidate's P95 agent latency per conversation.
        cost_budget_usd: Budget for the candidate's P95 agent cost per conversation.
        resamples: Bootstrap resamples per group (default: see :func:`compare_counts`).
        seed: Seed of every bootstrap.

    Returns:
        The report.

    Raises:
        GateError: When the runs cannot be compared (no shared cases, missing metric or
            tag, invalid options).
    """
    if not 0.0 <= max_regression < 100.0:
        raise GateError(
            f"--max-regression is in percentage points from 0 to 100, got {max_regression}"
        )
    if not 0.0 < alpha < 0.5:
        raise GateError(f"--alpha must be between 0 and 0.5, got {alpha}")
    by = tuple(dict.fromkeys(by))
    name, source, notes = resolve_metric(candidate, baseline, metric)
    for key in by:
        if not any(key in t.tags for run in (candidate, baseline) for t in run.trials):
            keys = sorted({k for run in (candidate, baseline) for t in run.trials for k in t.tags})
            raise GateError(
                f"no conversation in either run has the tag {key!r}; tags present: "
                f"{', '.join(keys) or 'none'}"
            )
    cand = _split(candidate, name, source)
    base = _split(baseline, name, source)
    confidence = 1.0 - alpha

    common = [c for c in base.usable if c in cand.usable]
    only_c = tuple(sorted(c for c in cand.all_by_case if c not in base.all_by_case))
    only_b = tuple(sorted(c for c in base.all_by_case if c not in cand.all_by_case))
    # Cases both runs ran, but where every trial of one run was excluded.
    nothing_counted = sorted(
        c
        for c in cand.all_by_case
        if c in base.all_by_case and (c not in cand.usable or c not in base.usable)
    )
    cp: list[int] = []
    ct: list[int] = []
    bp: list[int] = []
    bt: list[int] = []
    ids: list[str] = []
    tag_values: dict[str, list[str]] = {k: [] for k in by}
    by_seed = 0
    unpaired = {"candidate": 0, "baseline": 0}
    disagreements = 0
    no_pair: list[str] = []
    for case_id in sorted(common):
        seeded, oa, ob = _pair_case(
            cand.usable[case_id],
            base.usable[case_id],
            cand.all_by_case[case_id],
            base.all_by_case[case_id],
        )
        unpaired["candidate"] += len(cand.usable[case_id]) - len(oa)
        unpaired["baseline"] += len(base.usable[case_id]) - len(ob)
        if not oa:
            no_pair.append(case_id)
            continue
        by_seed += seeded
        tags, disagree = _case_tags(case_id, by, cand, base)
        disagreements += disagree
        ids.append(case_id)
        cp.append(sum(oa))
        ct.append(len(oa))
        bp.append(sum(ob))
        bt.append(len(ob))
        for k in by:
            tag_values[k].append(tags[k])
    if not ids:
        raise GateError(
            f"no case has a counted trial in both runs (candidate {candidate.run_id!r}: "
            f"{len(cand.usable)} cases, baseline {baseline.run_id!r}: {len(base.usable)} "
            f"cases, {len(common)} shared); compare runs of the same cases, and check the "
            "excluded conversations"
        )
    comparison = compare_counts(
        cp,
        ct,
        bp,
        bt,
        max_regression=max_regression,
        tags=tag_values,
        alpha=alpha,
        resamples=resamples,
        seed=seed,
    )

    rel_c = _reliability("candidate", candidate, cand, confidence=confidence, seed=seed)
    rel_b = _reliability("baseline", baseline, base, confidence=confidence, seed=seed)
    drill = [
        *_drilldown("candidate", candidate, cand, by, confidence=confidence, seed=seed),
        *_drilldown("baseline", baseline, base, by, confidence=confidence, seed=seed),
    ]
    budgets = _budgets(drill, latency_budget_ms, cost_budget_usd)
    changes = sorted(
        (
            CaseChange(i, {k: tag_values[k][n] for k in by}, cp[n], ct[n], bp[n], bt[n])
            for n, i in enumerate(ids)
            if cp[n] * bt[n] != bp[n] * ct[n]
        ),
        key=lambda c: (c.delta, c.case_id),
    )
    pairing = Pairing(
        cases=len(ids),
        by_seed=by_seed,
        by_case=len(ids) - by_seed,
        unpaired_trials=unpaired,
        only_candidate=only_c,
        only_baseline=only_b,
    )
    if nothing_counted:
        shown = ", ".join(nothing_counted[:5]) + (" ..." if len(nothing_counted) > 5 else "")
        notes.append(
            f"{len(nothing_counted)} cases ran in both runs but have no counted trial in one "
            f"of them (all excluded), not compared: {shown}"
        )
    notes.extend(_notes(candidate, baseline, rel_c, rel_b, pairing, no_pair, disagreements, by))
    return GateReport(
        metric=name,
        metric_source=source,
        by=by,
        comparison=comparison,
        candidate=rel_c,
        baseline=rel_b,
        pairing=pairing,
        drilldown=tuple(drill),
        budgets=tuple(budgets),
        changes=tuple(changes),
        notes=tuple(notes),
    )


def _budgets(
    drill: Sequence[DrilldownRow], latency: float | None, cost: float | None
) -> list[BudgetCheck]:
    base = {r.label: r for r in drill if r.side == "baseline"}
    out: list[BudgetCheck] = []
    for row in drill:
        if row.side != "candidate":
            continue
        other = base.get(row.label)
        if latency is not None:
            out.append(
                BudgetCheck(
                    row.label,
                    "latency_ms",
                    latency,
                    row.latency_ms.p95,
                    None if other is None else other.latency_ms.p95,
                )
            )
        if cost is not None:
            out.append(
                BudgetCheck(
                    row.label,
                    "cost_usd",
                    cost,
                    row.cost_usd.p95,
                    None if other is None else other.cost_usd.p95,
                )
            )
    return out


def _notes(
    candidate: RunData,
    baseline: RunData,
    rel_c: RunReliability,
    rel_b: RunReliability,
    pairing: Pairing,
    no_pair: Sequence[str],
    disagreements: int,
    by: Sequence[str],
) -> list[str]:
    notes: list[str] = []
    if candidate.run_id == baseline.run_id and candidate.source == baseline.source:
        notes.append("the candidate and the baseline are the same run")
    for rel in (rel_c, rel_b):
        if rel.excluded:
            parts = ", ".join(f"{k} {v}" for k, v in rel.excluded.items())
            notes.append(
                f"{rel.side} {rel.run_id!r}: {sum(rel.excluded.values())} of "
                f"{rel.conversations} conversations excluded ({parts}); errors that are "
                "not the agent's and missing scores are never counted as failures"
            )
    for side, only in (("candidate", pairing.only_candidate), ("baseline", pairing.only_baseline)):
        if only:
            shown = ", ".join(only[:5]) + (" ..." if len(only) > 5 else "")
            notes.append(f"{len(only)} cases only in the {side}, not compared: {shown}")
    if pairing.by_seed:
        dropped = sum(pairing.unpaired_trials.values())
        extra = (
            f"; {dropped} trials without a counted partner of the same seed were left out"
            if dropped
            else ""
        )
        notes.append(f"{pairing.by_seed} cases were paired trial by trial on shared seeds{extra}")
    if no_pair:
        notes.append(
            f"{len(no_pair)} cases have no seed-matched pair of counted trials, not compared"
        )
    if disagreements:
        notes.append(
            f"{disagreements} cases carry different values of a compared tag "
            f"({', '.join(by)}) in different conversations; each is grouped by the "
            "baseline's first value"
        )
    for run in (candidate, baseline):
        notes.extend(run.notes)
    return notes


# -- JSON -------------------------------------------------------------------------------


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None or math.isnan(x) else round(x, digits)


def _stats_dict(s: ScoreStats) -> dict[str, Any]:
    return {"n": s.n, "mean": _r(s.mean), "variance": _r(s.variance)}


def _reliability_dict(rel: RunReliability) -> dict[str, Any]:
    passk: dict[str, Any] | None = None
    if rel.passk is not None:
        passk = {
            "confidence": rel.passk.confidence,
            "max_k": rel.passk.max_k,
            "estimates": [
                {
                    "k": e.k,
                    "pass_hat": _r(e.pass_hat),
                    "pass_hat_low": _r(e.pass_hat_low),
                    "pass_hat_high": _r(e.pass_hat_high),
                    "pass_at": _r(e.pass_at),
                    "pass_at_low": _r(e.pass_at_low),
                    "pass_at_high": _r(e.pass_at_high),
                }
                for e in rel.passk.estimates
            ],
            "notes": list(rel.passk.notes),
        }
    return {
        "run_id": rel.run_id,
        "source": rel.source,
        "conversations": rel.conversations,
        "counted": rel.counted,
        "excluded": rel.excluded,
        "cases": len(rel.cases),
        "flaky_cases": rel.flaky_cases,
        "stable_cases": rel.stable_cases,
        "pass_k": passk,
        "scores": {k: _stats_dict(v) for k, v in rel.scores.items()},
        "per_case": [
            {
                "case_id": c.case_id,
                "trials": c.trials,
                "passes": c.passes,
                "rate": _r(c.rate),
                "label": c.label,
                "scores": {k: _stats_dict(v) for k, v in c.scores.items()},
            }
            for c in rel.cases
        ],
    }


def _pct_dict(p: Percentiles) -> dict[str, Any]:
    return {"n": p.n, "p50": _r(p.p50), "p95": _r(p.p95)}


def _report_dict(rep: GateReport) -> dict[str, Any]:
    cmp = rep.comparison
    return {
        "verdict": rep.verdict,
        "exit_code": rep.exit_code,
        "metric": rep.metric,
        "metric_source": rep.metric_source,
        "by": list(rep.by),
        "max_regression_pp": cmp.max_regression,
        "alpha": cmp.alpha,
        "alpha_regression": cmp.alpha_regression,
        "groups_compared": len(cmp.groups),
        "bootstrap": {"resamples": cmp.resamples, "seed": cmp.seed},
        "comparison_verdict": cmp.verdict,
        "groups": [g.to_dict() for g in cmp.groups],
        "budgets": [
            {
                "group": b.group,
                "kind": b.kind,
                "budget": b.budget,
                "p95": _r(b.p95),
                "baseline_p95": _r(b.baseline_p95),
                "ok": b.ok,
            }
            for b in rep.budgets
        ],
        "budget_ok": rep.budget_ok,
        "pairing": {
            "cases": rep.pairing.cases,
            "by_seed": rep.pairing.by_seed,
            "by_case": rep.pairing.by_case,
            "unpaired_trials": rep.pairing.unpaired_trials,
            "only_candidate": list(rep.pairing.only_candidate),
            "only_baseline": list(rep.pairing.only_baseline),
        },
        "candidate": _reliability_dict(rep.candidate),
        "baseline": _reliability_dict(rep.baseline),
        "drilldown": [
            {
                "run": r.side,
                "group": r.label,
                "cases": r.cases,
                "conversations": r.conversations,
                "excluded": r.excluded,
                "rate": _r(r.rate),
                "low": _r(r.low),
                "high": _r(r.high),
                "latency_ms": _pct_dict(r.latency_ms),
                "cost_usd": _pct_dict(r.cost_usd),
            }
            for r in rep.drilldown
        ],
        "changed_cases": [
            {
                "case_id": c.case_id,
                "tags": c.tags,
                "candidate": f"{c.candidate_passes}/{c.candidate_trials}",
                "baseline": f"{c.baseline_passes}/{c.baseline_trials}",
                "delta_pp": round(c.delta * 100, 4),
            }
            for c in rep.changes
        ],
        "notes": list(rep.notes),
    }
