"""Paired comparison of two runs' pass rates, with a three-way verdict per group.

The unit of analysis is the *case*: trials of one case are strongly correlated (a hard
case fails again), so treating trials as independent would make every interval too
narrow. For each case present in both runs the difference ``d`` is the candidate's pass
rate on that case minus the baseline's; a group's delta is the mean of ``d`` over its
cases, every case weighing the same (as in pass^1).

A group's verdict compares that delta with the allowed regression ``m``:

- **regression**: the whole interval lies below ``-m``: the drop is significant and
  larger than allowed;
- **pass**: the whole interval lies above ``-m``: any drop is smaller than allowed;
- **inconclusive**: neither. The report then estimates how many more cases (or trials
  per case) would decide, assuming the estimate and its spread stay as observed.

Every group also reports the exact one-sided sign test on its cases (worse against
better), which is the exact McNemar test when every case has one trial. It is evidence
beside the interval, not part of the verdict: it ignores how much each case changed, so
a candidate that breaks a few cases completely while nudging many up would pass it.

The interval is a paired cluster bootstrap: cases are resampled with replacement, each
keeping its candidate and baseline trials together. One pseudo-case that got fully
better and one that got fully worse are added to every group before resampling (the
paired-data form of the Agresti-Min adjustment), so a group where nothing changed does
not get a zero-width interval and pass on three cases.

The percentiles are taken at Hesterberg's *expanded* tail levels,
``Phi(-sqrt(n / (n - 1)) * t_{n-1}(1 - level))`` instead of ``level``: a plain percentile
interval is as narrow as a z-interval with the plug-in variance, which on a few dozen
cases calls a pass or a regression slightly too often.

Per-case differences are fractions with small denominators (the trial counts), so the
bootstrap distribution of their mean can usually be computed exactly, as the n-fold
convolution of the per-case distribution (by FFT): no resampling noise, the same answer
for every seed. Resampling is the fallback when the lattice would be too large (many
distinct trial counts on many cases).

Error rates: the lower bound is one-sided at level ``alpha``, so a group whose true drop
exceeds ``m`` passes at most ``alpha`` of the time, and the gate passes only when every
group does. The upper bound is one-sided at ``alpha / K`` (Bonferroni over the ``K``
groups compared), so when no group truly drops by more than ``m`` the gate reports a
regression at most ``alpha`` of the time, however many groups there are. The bootstrap
makes both approximate; docs/statistics.md gives the rates measured by
bench/gate_study.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

Verdict = Literal["pass", "regression", "inconclusive"]
"""A group's (or the whole gate's) answer."""

EXIT_CODES: Mapping[Verdict, int] = {"pass": 0, "regression": 1, "inconclusive": 3}
"""Process exit code of each verdict; 2 is reserved for usage and input errors."""

ALL_CASES = "all"
"""Label of the group that holds every compared case."""

_PLAN_CAP = 10_000_000
"""Projections beyond this many cases or conversations are reported as out of reach."""

_EXACT_LIMIT = 1 << 22
"""Largest support of the exact bootstrap distribution; beyond it, resample."""

IntervalMethod = Literal["exact", "resampled"]
"""How a group's bootstrap interval was computed."""

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def mcnemar_exact(
    worse: int, better: int, *, alternative: Literal["worse", "two-sided"] = "worse"
) -> float:
    """Exact McNemar (sign) test on discordant pairs.

    Under "no difference" a discordant case is as likely to have got worse as better, so
    ``worse`` is Binomial(``worse + better``, 1/2). With one trial per case the discordant
    cases are McNemar's off-diagonal cells; with several trials, counting cases whose
    pass rate went down or up keeps the case as the unit, as the bootstrap does.

    Args:
        worse: Cases (pairs) where the candidate did worse than the baseline.
        better: Cases where it did better.
        alternative: ``worse`` for the one-sided p-value of "the candidate is worse",
            ``two-sided`` for any difference.

    Returns:
        The exact p-value; 1.0 when there are no discordant cases.

    Raises:
        ValueError: On negative counts.
    """
    if worse < 0 or better < 0:
        raise ValueError(f"counts must be non-negative, got worse={worse}, better={better}")
    n = worse + better
    if n == 0:
        return 1.0
    upper = float(sps.binom.sf(worse - 1, n, 0.5))
    if alternative == "worse":
        return upper
    lower = float(sps.binom.cdf(worse, n, 0.5))
    return min(1.0, 2.0 * min(upper, lower))


@dataclass(frozen=True)
class DecisionPlan:
    """How much more data would likely turn an inconclusive group into a verdict.

    A planning figure, not a promise: it assumes the delta and the case-to-case spread
    stay as observed, and uses a normal approximation of the bootstrap interval.
    """

    toward: Verdict | None
    """The verdict more data would reach if the estimate held; None on the margin."""
    cases_needed: int | None
    """Cases this group would need in total, at the current trials per case."""
    more_cases: int | None
    """Cases to add to this group (``cases_needed`` minus the current count)."""
    trials_per_case: int | None
    """Trials per case and run that would decide on the current cases; None when more
    trials cannot (the case-to-case spread alone is too large) or it is unknown."""
    more_conversations: int | None
    """Extra conversations over both runs to reach ``trials_per_case``."""
    note: str
    """The plan in one sentence."""


@dataclass(frozen=True)
class GroupComparison:
    """The paired comparison and verdict of one group of cases (all, or one tag value)."""

    tag: str | None
    """Tag key of the group; None for all cases."""
    value: str | None
    """Tag value of the group; None for all cases."""
    cases: int
    """Cases compared."""
    candidate_trials: int
    """Counted candidate trials over those cases."""
    baseline_trials: int
    """Counted baseline trials over those cases."""
    candidate_rate: float
    """Candidate pass rate: mean over cases of each case's pass rate."""
    baseline_rate: float
    """Baseline pass rate, the same way."""
    delta: float
    """``candidate_rate - baseline_rate`` (a fraction; negative is a drop)."""
    low: float
    """One-sided lower bound of the delta at level ``alpha`` (the pass side)."""
    high: float
    """One-sided upper bound of the delta at level ``alpha / K`` (the regression side)."""
    worse: int
    """Cases whose pass rate went down."""
    better: int
    """Cases whose pass rate went up."""
    p_worse: float
    """Exact one-sided sign-test (McNemar) p-value that the candidate is worse; reported
    beside the interval, which alone decides the verdict."""
    verdict: Verdict
    """pass, regression or inconclusive."""
    reason: str
    """Why, in one sentence."""
    plan: DecisionPlan | None
    """How much more data would decide; only for inconclusive groups."""
    method: IntervalMethod = "exact"
    """exact bootstrap distribution, or resampled when that was out of reach."""

    @property
    def label(self) -> str:
        """``all`` or ``tag=value``."""
        return ALL_CASES if self.tag is None else f"{self.tag}={self.value}"

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON-ready data (deltas also in percentage points)."""
        return {
            "group": self.label,
            "tag": self.tag,
            "value": self.value,
            "cases": self.cases,
            "candidate_trials": self.candidate_trials,
            "baseline_trials": self.baseline_trials,
            "candidate_rate": round(self.candidate_rate, 6),
            "baseline_rate": round(self.baseline_rate, 6),
            "delta_pp": round(self.delta * 100, 4),
            "low_pp": round(self.low * 100, 4),
            "high_pp": round(self.high * 100, 4),
            "worse_cases": self.worse,
            "better_cases": self.better,
            "p_worse": self.p_worse,
            "verdict": self.verdict,
            "reason": self.reason,
            "plan": None if self.plan is None else dict(vars(self.plan)),
            "interval_method": self.method,
        }


@dataclass(frozen=True)
class Comparison:
    """Verdicts of every group and of the gate as a whole."""

    groups: tuple[GroupComparison, ...]
    """All cases first, then each tag value in the order of the tag keys."""
    max_regression: float
    """Allowed regression, in percentage points."""
    alpha: float
    """Error rate of a wrong pass, and family-wise of a wrong regression."""
    alpha_regression: float
    """Per-group level of the regression side: ``alpha / K``."""
    resamples: int
    """Bootstrap resamples per group, for groups whose exact distribution is out of reach."""
    seed: int
    """Seed of those resamples."""

    @property
    def verdict(self) -> Verdict:
        """The gate's verdict: any group regressed, every group passed, or neither."""
        verdicts = {g.verdict for g in self.groups}
        if "regression" in verdicts:
            return "regression"
        if verdicts == {"pass"}:
            return "pass"
        return "inconclusive"

    @property
    def exit_code(self) -> int:
        """0 pass, 1 regression, 3 inconclusive."""
        return EXIT_CODES[self.verdict]

    def group(self, label: str) -> GroupComparison:
        """The group labelled ``all`` or ``tag=value``.

        Raises:
            KeyError: When there is no such group.
        """
        for g in self.groups:
            if g.label == label:
                return g
        raise KeyError(f"no group {label!r} (groups: {[g.label for g in self.groups]})")


def _as_counts(name: str, values: Sequence[int] | npt.ArrayLike) -> IntArray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one count per case")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be integer counts, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def compare_counts(
    candidate_passes: Sequence[int] | npt.ArrayLike,
    candidate_trials: Sequence[int] | npt.ArrayLike,
    baseline_passes: Sequence[int] | npt.ArrayLike,
    baseline_trials: Sequence[int] | npt.ArrayLike,
    *,
    max_regression: float,
    tags: Mapping[str, Sequence[str]] | None = None,
    alpha: float = 0.05,
    resamples: int | None = None,
    seed: int = 0,
) -> Comparison:
    """Compare paired per-case pass counts of a candidate and a baseline.

    Position ``i`` of every sequence is the same case in both runs.

    Args:
        candidate_passes: Candidate trials that passed, per case.
        candidate_trials: Candidate trials counted, per case (at least 1).
        baseline_passes: Baseline trials that passed, per case.
        baseline_trials: Baseline trials counted, per case (at least 1).
        max_regression: Allowed drop in percentage points (1.5 means 1.5 points).
        tags: Per tag key, the tag value of every case; each value becomes a group.
        alpha: Largest acceptable rate of a wrong pass, and of a wrong regression over
            all groups together; in (0, 0.5).
        resamples: Bootstrap resamples per group when the exact bootstrap distribution is
            out of reach; default enough for about 50 resamples beyond the regression
            bound (at least 2,000).
        seed: Seed of those resamples, so reports are reproducible.

    Returns:
        The comparison: all cases first, then each tag value (sorted) per tag key.

    Raises:
        ValueError: On mismatched lengths, no cases, counts out of range or bad options.
    """
    cp = _as_counts("candidate_passes", candidate_passes)
    ct = _as_counts("candidate_trials", candidate_trials)
    bp = _as_counts("baseline_passes", baseline_passes)
    bt = _as_counts("baseline_trials", baseline_trials)
    n = cp.size
    if not n == ct.size == bp.size == bt.size:
        raise ValueError(
            f"one count per case in every sequence: got {cp.size}, {ct.size}, {bp.size}, {bt.size}"
        )
    if n == 0:
        raise ValueError("no cases to compare")
    if (ct < 1).any() or (bt < 1).any():
        raise ValueError("every case needs at least one counted trial in both runs")
    if (cp < 0).any() or (cp > ct).any() or (bp < 0).any() or (bp > bt).any():
        raise ValueError("passes must be between 0 and the number of trials")
    if not 0.0 <= max_regression < 100.0:
        raise ValueError(f"max_regression is in percentage points, 0 to 100; got {max_regression}")
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must be between 0 and 0.5, got {alpha}")

    groups: list[tuple[str | None, str | None, IntArray]] = [(None, None, np.arange(n))]
    for key, values in (tags or {}).items():
        if len(values) != n:
            raise ValueError(f"tag {key!r}: {len(values)} values for {n} cases")
        arr = np.asarray([str(v) for v in values])
        groups.extend(
            (key, value, np.flatnonzero(arr == value).astype(np.int64))
            for value in sorted(set(arr.tolist()))
        )
    alpha_reg = alpha / len(groups)
    if resamples is None:
        resamples = max(2000, math.ceil(50 / alpha_reg))
    if resamples < 100:
        raise ValueError(f"resamples must be at least 100, got {resamples}")

    rng = np.random.default_rng(seed)
    margin = max_regression / 100.0
    rows = tuple(
        _compare_group(
            key,
            value,
            cp[idx],
            ct[idx],
            bp[idx],
            bt[idx],
            margin=margin,
            alpha=alpha,
            alpha_reg=alpha_reg,
            resamples=resamples,
            rng=rng,
        )
        for key, value, idx in groups
    )
    return Comparison(
        groups=rows,
        max_regression=max_regression,
        alpha=alpha,
        alpha_regression=alpha_reg,
        resamples=resamples,
        seed=seed,
    )


def expanded_level(level: float, n: int) -> float:
    """Hesterberg's expanded tail level for a percentile bootstrap of a mean of ``n``.

    ``Phi(-sqrt(n / (n - 1)) * t_{n-1}(1 - level))``: the tail whose normal quantile is
    as far out as the t quantile with the unbiased variance, so the percentile interval
    is as wide as a t-interval on small samples and unchanged on large ones.

    Args:
        level: Nominal one-sided tail probability, e.g. 0.05.
        n: Sample size (at least 2).

    Returns:
        The smaller tail probability to take the percentile at.
    """
    if n < 2:
        return level
    return float(sps.norm.cdf(-math.sqrt(n / (n - 1)) * sps.t.isf(level, n - 1)))


def exact_bootstrap_bounds(
    numerators: IntArray, denominator: int, *, low_level: float, high_level: float
) -> tuple[float, float] | None:
    """Exact percentile bounds of the case-bootstrap mean of ``numerators / denominator``.

    The mean of ``n`` cases drawn with replacement is the sum of ``n`` independent draws
    from the cases' empirical distribution, divided by ``n``. On the integer lattice of
    the numerators that sum's distribution is the ``n``-fold convolution of the
    empirical one, which an FFT computes at once. One pseudo-case at +1 and one at -1
    are added first (see the module docstring). Bounds are inverted-CDF percentiles.

    Args:
        numerators: Per-case differences times ``denominator`` (integers).
        denominator: Common denominator, e.g. the least common multiple of the trial
            counts.
        low_level: Tail probability below the lower bound.
        high_level: Tail probability above the upper bound.

    Returns:
        ``(low, high)``, or None when the lattice is too large to compute exactly.
    """
    k = np.concatenate([numerators, [denominator, -denominator]]).astype(np.int64)
    n = int(k.size)
    offset = int(k.min())
    width = int(k.max()) - offset
    support = n * width + 1
    if support > _EXACT_LIMIT:
        return None
    pmf = np.bincount(k - offset, minlength=width + 1) / n
    size = 1 << (support - 1).bit_length()
    dist = np.fft.irfft(np.fft.rfft(pmf, size) ** n, size)[:support]
    cdf = np.cumsum(np.clip(dist, 0.0, None))
    cdf /= cdf[-1]
    # Rounding leaves ~1e-12 of noise in the CDF; the tolerance keeps a CDF that equals
    # the level exactly from stepping over a lattice point.
    i_low = int(np.searchsorted(cdf, low_level - 1e-9))
    i_high = int(np.searchsorted(cdf, 1.0 - high_level - 1e-9))
    scale = n * denominator
    return (i_low + n * offset) / scale, (i_high + n * offset) / scale


def bootstrap_bounds(
    diffs: FloatArray,
    *,
    low_level: float,
    high_level: float,
    resamples: int,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """Lower and upper percentile bounds of the mean of ``diffs`` by case bootstrap.

    One pseudo-case at +1 and one at -1 are added first (see the module docstring).
    Resampling ``n`` cases with replacement only decides how often each *distinct*
    difference is drawn, so the draw is multinomial over the distinct values: exactly the
    same distribution as resampling cases, at a cost that does not grow with ``n``.

    Args:
        diffs: Per-case differences in [-1, 1].
        low_level: Tail probability below the lower bound, e.g. 0.05.
        high_level: Tail probability above the upper bound, e.g. 0.01.
        resamples: Bootstrap resamples.
        rng: Random generator.

    Returns:
        ``(low, high)``.
    """
    # Differences are ratios of small integers; rounding merges the float spellings of
    # one value (2/3 - 1/3 and 1/3) so the multinomial has few categories.
    values, counts = np.unique(
        np.round(np.concatenate([diffs, [1.0, -1.0]]), 12), return_counts=True
    )
    # The most common value goes last, where it takes what is left without a draw.
    order = np.argsort(counts, kind="stable")
    values, counts = values[order], counts[order]
    total = int(counts.sum())
    # A multinomial draw as a chain of binomials, each vectorised over all resamples:
    # the same distribution as rng.multinomial, many times faster for many resamples.
    sums = np.zeros(resamples)
    left = np.full(resamples, total, dtype=np.int64)
    mass = float(total)
    for value, count in zip(values[:-1], counts[:-1], strict=True):
        drawn = rng.binomial(left, min(1.0, count / mass))
        sums += drawn * value
        left -= drawn
        mass -= count
    sums += left * values[-1]
    means = sums / total
    low, high = np.quantile(means, [low_level, 1.0 - high_level])
    return float(low), float(high)


def _compare_group(
    key: str | None,
    value: str | None,
    cp: IntArray,
    ct: IntArray,
    bp: IntArray,
    bt: IntArray,
    *,
    margin: float,
    alpha: float,
    alpha_reg: float,
    resamples: int,
    rng: np.random.Generator,
) -> GroupComparison:
    ra = cp / ct
    rb = bp / bt
    d = ra - rb
    delta = float(d.mean())
    denominator = math.lcm(*{int(t) for t in np.concatenate([ct, bt])})
    numerators = cp * (denominator // ct) - bp * (denominator // bt)
    # The bootstrap sample holds the cases and the two pseudo-cases.
    low_level = expanded_level(alpha, d.size + 2)
    high_level = expanded_level(alpha_reg, d.size + 2)
    exact = exact_bootstrap_bounds(
        numerators, denominator, low_level=low_level, high_level=high_level
    )
    method: IntervalMethod = "exact"
    if exact is None:
        method = "resampled"
        exact = bootstrap_bounds(
            d, low_level=low_level, high_level=high_level, resamples=resamples, rng=rng
        )
    low, high = exact
    # Rounding noise must not turn a case with equal rates into a changed one.
    worse = int((d < -1e-12).sum())
    better = int((d > 1e-12).sum())
    p_worse = mcnemar_exact(worse, better)
    pp = margin * 100
    if high < -margin:
        verdict: Verdict = "regression"
        reason = (
            f"the drop is larger than the allowed {pp:g} pp even at the interval's upper "
            f"bound ({high * 100:+.1f} pp); {worse} cases got worse, {better} better"
        )
    elif low > -margin:
        verdict = "pass"
        reason = (
            f"any drop is smaller than the allowed {pp:g} pp: the interval's lower bound is "
            f"{low * 100:+.1f} pp"
        )
    else:
        verdict = "inconclusive"
        reason = (
            f"the interval [{low * 100:+.1f}, {high * 100:+.1f}] pp contains -{pp:g} pp: "
            "the data cannot tell a pass from a regression"
        )
    plan = None
    if verdict == "inconclusive":
        plan = plan_decision(
            d,
            ct,
            bt,
            cp,
            bp,
            delta=delta,
            low=low,
            high=high,
            margin=margin,
            alpha=alpha,
            alpha_reg=alpha_reg,
        )
    return GroupComparison(
        tag=key,
        value=value,
        cases=int(d.size),
        candidate_trials=int(ct.sum()),
        baseline_trials=int(bt.sum()),
        candidate_rate=float(ra.mean()),
        baseline_rate=float(rb.mean()),
        delta=delta,
        low=low,
        high=high,
        worse=worse,
        better=better,
        p_worse=p_worse,
        verdict=verdict,
        reason=reason,
        plan=plan,
        method=method,
    )


def _z(tail: float) -> float:
    return float(sps.norm.isf(tail))


def _within_variance(cp: IntArray, ct: IntArray, bp: IntArray, bt: IntArray) -> float | None:
    """Mean over cases of the trial-to-trial sampling variance of ``d``, or None.

    ``p(1 - p) / (t - 1)`` is the unbiased estimate of the variance of a case's observed
    pass rate over ``t`` trials; it needs two trials per case and run, so it is taken
    over the cases that have them, and is None unless most cases do.
    """
    ok = (ct >= 2) & (bt >= 2)
    if 2 * int(ok.sum()) <= ok.size:
        return None
    ra, rb = cp[ok] / ct[ok], bp[ok] / bt[ok]
    within = ra * (1 - ra) / (ct[ok] - 1) + rb * (1 - rb) / (bt[ok] - 1)
    return float(within.mean())


def plan_decision(
    d: FloatArray,
    ct: IntArray,
    bt: IntArray,
    cp: IntArray,
    bp: IntArray,
    *,
    delta: float,
    low: float,
    high: float,
    margin: float,
    alpha: float,
    alpha_reg: float,
) -> DecisionPlan:
    """Estimate the cases, or trials per case, that would decide an inconclusive group.

    The interval's half-width on the side that matters shrinks like one over the square
    root of the number of cases. It must fall below the distance from the estimate to
    the margin. More trials per case only shrink the part of the spread that comes from
    trial-to-trial noise; the part from cases that truly changed stays, so when that part
    alone is too wide, only more cases help.

    Args:
        d: Per-case differences of the group.
        ct: Candidate trials per case.
        bt: Baseline trials per case.
        cp: Candidate passes per case.
        bp: Baseline passes per case.
        delta: The group's delta.
        low: Its lower bound (level ``alpha``).
        high: Its upper bound (level ``alpha_reg``).
        margin: Allowed regression, as a fraction.
        alpha: Level of the pass side.
        alpha_reg: Level of the regression side.

    Returns:
        The plan.
    """
    n = int(d.size)
    if delta > -margin:
        toward: Verdict = "pass"
        z = _z(alpha)
        distance = delta + margin
        se_now = (delta - low) / z
    elif delta < -margin:
        toward = "regression"
        z = _z(alpha_reg)
        distance = -margin - delta
        se_now = (high - delta) / z
    else:
        return DecisionPlan(
            None,
            None,
            None,
            None,
            None,
            "the estimate sits exactly on the allowed regression; no amount of data decides it",
        )
    se_target = distance / z
    # An inconclusive interval reaches past the margin, so se_now >= se_target here.
    ratio = max(se_now / se_target, 1.0) ** 2
    needed_cases = math.ceil(n * ratio)
    if needed_cases > _PLAN_CAP:
        return DecisionPlan(
            toward,
            None,
            None,
            None,
            None,
            f"out of reach: the estimate ({delta * 100:+.1f} pp) is too close to the margin "
            f"(-{margin * 100:g} pp) for any realistic number of cases",
        )
    more_cases = max(needed_cases - n, 1)
    trials, conversations, why_not = _trials_to_decide(d, ct, bt, cp, bp, se_now, se_target)
    note = f"about {more_cases:,} more cases at the current trials per case"
    if trials is not None and conversations is not None:
        note += (
            f", or {trials} trials per case and run on the current cases "
            f"({conversations:,} more conversations)"
        )
    else:
        note += f"; {why_not}"
    return DecisionPlan(toward, needed_cases, more_cases, trials, conversations, note)


def _trials_to_decide(
    d: FloatArray,
    ct: IntArray,
    bt: IntArray,
    cp: IntArray,
    bp: IntArray,
    se_now: float,
    se_target: float,
) -> tuple[int | None, int | None, str]:
    """Trials per case and run, and extra conversations, that would decide; or why not."""
    n = int(d.size)
    within = _within_variance(cp, ct, bp, bt)
    if within is None or n < 2:
        return None, None, "the effect of more trials is unknown with one trial per case"
    raw = float(d.var(ddof=1))
    # Scale both parts by how much wider the actual interval is than the plain
    # standard error, so the projection starts from the interval the verdict used.
    scale = n * se_now**2 / raw if raw > 0 else 1.0
    between = max(raw - within, 0.0) * scale
    within *= scale
    room = n * se_target**2 - between
    if room <= 0 or within <= 0:
        return (
            None,
            None,
            "more trials on the same cases cannot decide: the cases themselves differ too much",
        )
    factor = within / room
    trials = math.ceil(factor * max(float(ct.mean()), float(bt.mean())))
    more = trials * n * 2 - int(ct.sum()) - int(bt.sum())
    if trials > _PLAN_CAP or more > _PLAN_CAP:
        return None, None, "more trials on the same cases are out of reach"
    if more <= 0:
        return None, None, "the projection for more trials is unreliable here; add cases"
    return trials, more, ""
