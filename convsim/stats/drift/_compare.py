"""compare_windows: every score, every cohort, one calibrated verdict each."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from ...trace import ScoreKind
from ._data import (
    MISSING_TAG,
    ScoreColumn,
    Tag,
    Units,
    Window,
    conversation_units,
    round_weights,
)
from ._effects import (
    binary_effect,
    bootstrap_means,
    mde,
    mde_alarm,
    mde_rate,
    mean_effect,
    median_effect,
    share_effect,
    weighted_quantiles,
    wilson_bounds,
    z_quantile,
)
from ._judge import AnchorResult, anchor_drift, anchor_test, config_change, dominant_config
from ._mix import cohort_mix_test, score_decomposition
from ._multiple import benjamini_hochberg, holm
from ._report import (
    ALL,
    DriftReport,
    Family,
    Finding,
    SecondaryTest,
    WindowStats,
    format_effect,
)
from ._tests import (
    Contrast,
    Design,
    binary_test,
    chi2_test,
    contrast,
    cvm_test,
    make_design,
    mann_whitney_test,
    pooled_mass,
    ridits,
    stream,
    welch_log_test,
)

EffectMeasure = Literal["mean", "median"]
"""Effect of ordinal and continuous scores: difference in mean (default) or median."""

AUTO_CLUSTER = "auto"
"""``compare_windows(cluster=...)`` default: the scores' user ids, when there are any."""


MIX_METRIC = "cohort_mix"
"""Metric name of the cohort-mix finding (and its key in ``min_effects``)."""

DEFAULT_MIN_EFFECTS: Mapping[ScoreKind, float] = {
    "binary": 0.05,
    "ordinal": 0.25,
    "categorical": 0.05,
}
"""Minimum meaningful effects when ``min_effects`` names none: 5 points of pass rate,
a quarter of a level, 5 points of one category's share. Continuous scores default to
0.2 pooled standard deviations of their conversation-level values (a "small" effect in
Cohen's terms); the cohort mix to a total variation distance of 0.05."""

CONTINUOUS_MIN_EFFECT_SD = 0.2
"""Default minimum effect of continuous scores, in pooled standard deviations."""

_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


class HasMinEffect(Protocol):
    """Anything with a rubric name and a minimum effect (e.g. a ``Rubric``)."""

    @property
    def name(self) -> str:
        """Rubric name."""
        ...

    @property
    def min_effect(self) -> float:
        """Smallest change worth an alarm."""
        ...


def min_effects_from_rubrics(rubrics: Iterable[HasMinEffect]) -> dict[str, float]:
    """``{"rubric.<name>": min_effect}`` for rubrics, the names their scores carry.

    Args:
        rubrics: Rubrics (anything with ``name`` and ``min_effect``).

    Returns:
        The mapping, ready for ``compare_windows(min_effects=...)``.
    """
    return {f"rubric.{r.name}": float(r.min_effect) for r in rubrics}


@dataclass
class _Pending:
    """A finding before multiple-testing correction."""

    finding: Finding
    se0: float | None = None
    se: float | None = None
    judge_change: str | None = None
    rates: tuple[tuple[float, float], tuple[float, float]] | None = None
    """Binary scores: each window's standardised pass rate and its variance."""
    shift_cross: float = 0.0
    """Binary scores: ``Contrast.shift_cross``."""
    test_efficiency: float = 1.0
    """Ordinal scores: how well the rank test tracks a change in the mean (correlation of
    ridits and values); the MDE of the mean is divided by it."""


def compare_windows(
    baseline: Window,
    current: Window,
    *,
    by: Sequence[str] = (),
    alpha: float = 0.05,
    min_effects: Mapping[str, float] | None = None,
    primary: Sequence[str] | None = None,
    min_n: int = 30,
    bootstrap: int = 1000,
    seed: int = 0,
    permutations: int = 999,
    anchor: Window | None = None,
    effect_measures: Mapping[str, EffectMeasure] | None = None,
    bootstrap_max_n: int = 2000,
    metrics: Sequence[str] | None = None,
    cluster: str | None = AUTO_CLUSTER,
) -> DriftReport:
    """Compare two windows of scores: one test per score and cohort, chosen by score kind.

    - binary: two-proportion z test of the pass rate (Boschloo exact or permutations for
      small counts); effect: difference in pass rate, Newcombe-Wilson interval;
    - ordinal: Mann-Whitney (design-based); effect: difference in mean level; secondary:
      chi-square on the levels;
    - continuous: stratified Cramér-von Mises; effect: difference in mean (or median);
      secondary: Welch t on logs for positive values;
    - categorical: chi-square on category shares (permutations when sparse); effect:
      the largest change in one category's share.

    All tests treat conversations as the independent units (turn-level scores are
    aggregated per conversation), stratify by cohort cell and sampling stratum, and
    weight strata by the pooled estimated population mix, so a change in the cohort mix
    alone is not a within-cohort change; the mix is tested and reported separately.

    Alarms: a finding alarms when its p-value, corrected within its family (Holm over
    the primary findings, Benjamini-Hochberg over the drill-down), is at most ``alpha``
    *and* its 95% interval lies entirely beyond the score's minimum meaningful effect.

    Args:
        baseline: The reference window.
        current: The window to check.
        by: Cohort keys (score tags) to drill down by; cells are their combinations.
        alpha: Significance level of every family.
        min_effects: Minimum meaningful effect per score name (and ``cohort_mix``);
            defaults in :data:`DEFAULT_MIN_EFFECTS`.
        primary: Score names whose all-cohort findings form the Holm family (default:
            every score).
        min_n: Conversations a cohort needs in *each* window to be tested; below it the
            finding says "insufficient data".
        bootstrap: Cluster-bootstrap replicates for effect intervals (0: analytic only).
        seed: Seed of every random draw (permutations, bootstraps).
        permutations: Permutations for small or sparse samples.
        anchor: A bridge study: anchor conversations judged under both the old and the
            new judge configuration, for a declared judge change. (Anchor sets that
            the online pipeline re-judges every window travel inside the windows,
            :attr:`Window.anchors`, and are used without being passed.)
        effect_measures: Per ordinal or continuous score, ``"mean"`` or ``"median"``.
        bootstrap_max_n: Windows larger than this (conversations) use the analytic
            interval, which the bootstrap would reproduce at that size anyway.
        metrics: Restrict the comparison to these score names.
        cluster: What groups correlated conversations. Conversations of one user are
            correlated (a user who struggles, struggles every time), so by default
            (``"auto"``) the scores' user ids are the clusters whenever either window
            has any; variances are then cluster-robust over users, also across the two
            windows. A tag name clusters by that tag instead; None assumes independent
            conversations. Conversations without an id are their own cluster. With
            clusters, permutations and bootstraps are not used (they would break
            clusters apart); p-values and intervals are asymptotic. Without any, the
            report says that the tests assume independent conversations.

    Returns:
        The report.

    Raises:
        ValueError: On invalid settings.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if min_n < 2:
        raise ValueError(f"min_n must be at least 2, got {min_n}")
    if bootstrap < 0 or permutations < 19:
        raise ValueError("bootstrap must be >= 0 and permutations >= 19")
    min_effects = dict(min_effects or {})
    measures = dict(effect_measures or {})
    cells, cell_labels = _cohort_cells(baseline, current, tuple(by))
    sampling = (_window_sampling(baseline.weights), _window_sampling(current.weights))
    weights = (baseline.weights, current.weights)
    clusters, clustering = _clusters(baseline, current, cluster)
    ctx = _Context(
        labels=(baseline.label, current.label),
        alpha=alpha,
        min_n=min_n,
        bootstrap=bootstrap,
        bootstrap_max_n=bootstrap_max_n,
        permutations=permutations,
        seed=seed,
        cell_labels=cell_labels,
    )
    names = sorted(set(baseline.names) | set(current.names))
    if metrics is not None:
        names = [n for n in names if n in set(metrics)]
    pending: list[_Pending] = []
    judge_pending: list[_Pending] = []
    anchors: dict[str, AnchorResult | None] = {}
    for name in names:
        col0 = baseline.scores.get(name)
        col1 = current.scores.get(name)
        if col0 is None or col1 is None:
            missing = ctx.labels[0] if col0 is None else ctx.labels[1]
            pending.append(
                _Pending(_insufficient(name, ALL, 0, 0, f"no {name} scores in window {missing}"))
            )
            continue
        if col0.kind != col1.kind:
            pending.append(
                _Pending(
                    _insufficient(
                        name,
                        ALL,
                        0,
                        0,
                        f"kind differs: {col0.kind} in baseline, {col1.kind} in current",
                    )
                )
            )
            continue
        change = config_change(col0, col1)
        drift = anchor_drift(baseline.anchors, current.anchors, name, alpha)
        if drift is not None:
            judge_pending.append(_anchor_finding(name, col0.kind, change, drift))
            anchors[name] = drift
        elif change is not None:
            jp, res = _judge_finding(name, col0, col1, change, anchor, alpha)
            judge_pending.append(jp)
            anchors[name] = res
        units = conversation_units((col0, col1), cells, clusters)
        delta = _min_effect(name, col0.kind, units, min_effects)
        measure = measures.get(name, "mean")
        first = _analyse(ctx, name, col0.kind, units, None, delta, measure)
        first.judge_change = change
        if first.finding.kind == "score" and col0.kind != "categorical":
            dec = score_decomposition(units, cell_labels)
            first.finding = dataclasses.replace(first.finding, decomposition=dec)
        pending.append(first)
        if by:
            for c in np.unique(units.cell):
                p = _analyse(ctx, name, col0.kind, units, int(c), delta, measure)
                p.judge_change = change
                pending.append(p)
    mix_pending: list[_Pending] = []
    if by:
        mix_pending.append(_mix_finding(ctx, cells, sampling, weights, min_effects, clusters))
    report = _finish(ctx, tuple(by), pending, mix_pending, judge_pending, anchors, primary, names)
    caveats: list[str] = []
    if clusters is None:
        caveats.append(
            "The tests assume independent conversations: "
            + ("the scores carry no user ids. " if cluster == AUTO_CLUSTER else f"{clustering}. ")
            + "If users have several conversations in a window, their conversations are "
            "alike and false alarms can exceed alpha; record the user id (metadata "
            "user_id when importing, or Score.user_id) so the tests can cluster by it."
        )
    return dataclasses.replace(report, clustering=clustering, caveats=tuple(caveats))


@dataclass(frozen=True)
class _Context:
    labels: tuple[str, str]
    alpha: float
    min_n: int
    bootstrap: int
    bootstrap_max_n: int
    permutations: int
    seed: int
    cell_labels: list[dict[str, str]]


def _cohort_cells(
    baseline: Window, current: Window, by: tuple[str, ...]
) -> tuple[tuple[NDArray[np.int64], NDArray[np.int64]], list[dict[str, str]]]:
    n0, n1 = baseline.n_conversations, current.n_conversations
    if not by:
        return (np.zeros(n0, dtype=np.int64), np.zeros(n1, dtype=np.int64)), [{}]
    per_key: list[tuple[NDArray[np.int64], NDArray[np.int64], list[str]]] = []
    for key in by:
        labels: set[str] = set()
        for w in (baseline, current):
            tag = w.tags.get(key)
            labels.update(tag.labels if tag is not None else ())
            labels.add(MISSING_TAG)
        joint = sorted(labels)
        codes = []
        for w, n in ((baseline, n0), (current, n1)):
            tag = w.tags.get(key)
            if tag is None:
                codes.append(np.full(n, joint.index(MISSING_TAG), dtype=np.int64))
                continue
            remap = np.asarray([joint.index(x) for x in (*tag.labels, MISSING_TAG)], dtype=np.int64)
            codes.append(remap[tag.codes])
        per_key.append((codes[0], codes[1], joint))
    radix = [len(j) for _, _, j in per_key]
    combined = []
    for a in range(2):
        c = np.zeros(n0 if a == 0 else n1, dtype=np.int64)
        for (c0, c1, _), r in zip(per_key, radix, strict=True):
            c = c * r + (c0 if a == 0 else c1)
        combined.append(c)
    uniq, inv = np.unique(np.concatenate(combined), return_inverse=True)
    labels_out: list[dict[str, str]] = []
    for u in uniq:
        rest = int(u)
        vals: list[str] = []
        for (_, _, joint), r in zip(reversed(per_key), reversed(radix), strict=True):
            vals.append(joint[rest % r])
            rest //= r
        labels_out.append(dict(zip(by, reversed(vals), strict=True)))
    inv = inv.astype(np.int64)
    return (inv[:n0], inv[n0:]), labels_out


def _clusters(
    baseline: Window, current: Window, cluster: str | None
) -> tuple[tuple[NDArray[np.int64], NDArray[np.int64]] | None, str]:
    """Joint cluster codes for the requested clustering, and what was used, in words."""
    if cluster is None:
        return None, "none requested"
    if cluster in (AUTO_CLUSTER, "user_id"):
        tags = (baseline.users, current.users)
        if tags[0] is None and tags[1] is None:
            return None, "no user ids in either window"
        what = "user_id"
    else:
        tags = (baseline.tags.get(cluster), current.tags.get(cluster))
        if tags[0] is None and tags[1] is None:
            return None, f"the cluster tag {cluster!r} is in neither window"
        what = f"tag {cluster!r}"
    codes = _cluster_codes(baseline, current, tags)
    shared = np.unique(np.concatenate(codes), return_counts=True)[1]
    return codes, (f"by {what}: {int((shared > 1).sum())} clusters hold several conversations")


def _cluster_codes(
    baseline: Window, current: Window, tags: tuple[Tag | None, Tag | None]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Joint cluster codes; a conversation without an id is a cluster of its own."""
    labels = [np.asarray(t.labels if t is not None else (), dtype=np.str_) for t in tags]
    joint = np.unique(np.concatenate(labels)) if labels[0].size + labels[1].size else labels[0]
    out: list[NDArray[np.int64]] = []
    offset = int(joint.size)
    for w, lab, tag in zip((baseline, current), labels, tags, strict=True):
        n = w.n_conversations
        if tag is None:
            codes = offset + np.arange(n, dtype=np.int64)
        else:
            remap = np.searchsorted(joint, lab).astype(np.int64)
            missing = tag.codes >= len(tag.labels)
            codes = np.where(
                missing, offset + np.arange(n), remap[np.minimum(tag.codes, len(lab) - 1)]
            ).astype(np.int64)
        out.append(codes)
        offset += n
    return out[0], out[1]


def _window_sampling(weights: NDArray[np.float64]) -> NDArray[np.int64]:
    """Per conversation, its sampling stratum within its own window (one weight each)."""
    return np.unique(round_weights(weights), return_inverse=True)[1].astype(np.int64)


def _min_effect(
    name: str, kind: ScoreKind, units: Units, min_effects: Mapping[str, float]
) -> float:
    if name in min_effects:
        return float(min_effects[name])
    if kind == "continuous":
        v = units.value
        sd = float(v.std(ddof=1)) if v.size > 1 else 0.0
        return CONTINUOUS_MIN_EFFECT_SD * sd
    return DEFAULT_MIN_EFFECTS[kind]


def _insufficient(
    name: str, cohort: Mapping[str, str] | Literal["all"], n0: int, n1: int, note: str
) -> Finding:
    return Finding(
        metric=name,
        cohort=cohort,
        kind="insufficient",
        test="",
        statistic=None,
        p_value=None,
        p_adjusted=None,
        effect=None,
        ci_low=None,
        ci_high=None,
        mde=None,
        n_baseline=n0,
        n_current=n1,
        alarm=False,
        note=note,
    )


def _fingerprint(total: NDArray[np.float64], turns: NDArray[np.float64]) -> str:
    # Identifies a window's data independently of its position, so bootstrap draws (and
    # hence intervals) mirror exactly when the windows are swapped.
    return f"{total.size}:{float(total.sum())!r}:{float(turns.sum())!r}"


def _analyse(
    ctx: _Context,
    name: str,
    kind: ScoreKind,
    units: Units,
    cell: int | None,
    delta: float,
    measure: EffectMeasure,
) -> _Pending:
    cohort: Mapping[str, str] | Literal["all"] = ALL if cell is None else ctx.cell_labels[cell]
    cohort_key = "all" if cell is None else repr(sorted(ctx.cell_labels[cell].items()))
    sel = np.ones(units.current.size, bool) if cell is None else units.cell == cell
    cur_all = units.current[sel]
    n0, n1 = int((~cur_all).sum()), int(cur_all.sum())
    if n0 < ctx.min_n or n1 < ctx.min_n:
        note = (
            f"insufficient data: {n0} baseline and {n1} current conversations; "
            f"at least {ctx.min_n} in each window are needed"
        )
        return _Pending(_insufficient(name, cohort, n0, n1, note))
    design = make_design(
        cur_all,
        units.cell[sel],
        units.weight[sel],
        None if units.cluster is None else units.cluster[sel],
    )
    if design.h == 0:
        note = "no cohort cell has conversations in both windows"
        return _Pending(_insufficient(name, cohort, n0, n1, note))
    left_out = _left_out(units, sel, design)
    keep = np.flatnonzero(sel)[design.keep]
    total = units.total[keep]
    turns = units.turns[keep]
    counts = None if units.counts is None else units.counts[keep]
    value = total / turns
    rng = stream(ctx.seed, name, cohort_key)
    small = max(n0, n1) <= ctx.bootstrap_max_n
    # Resampling conversations would break clusters apart: with clusters, intervals are
    # the cluster-robust normal ones.
    boot = ctx.bootstrap if small and design.cluster is None else 0
    rngs = (
        stream(
            ctx.seed, name, cohort_key, _fingerprint(total[~design.current], turns[~design.current])
        ),
        stream(
            ctx.seed, name, cohort_key, _fingerprint(total[design.current], turns[design.current])
        ),
    )
    secondary: list[SecondaryTest] = []
    efficiency = 1.0
    a = ctx.alpha
    if kind == "binary":
        res = binary_test(design, total, turns, permutations=ctx.permutations, rng=rng)
        con = contrast(design, total, turns, ddof=0, small_sample=False)
        eff = binary_effect(design, con, a)
    elif kind in ("ordinal", "continuous"):
        if kind == "ordinal":
            res, theta = mann_whitney_test(design, value, permutations=ctx.permutations, rng=rng)
            efficiency = _rank_efficiency(design, value)
            secondary.append(
                SecondaryTest(
                    "probability of superiority",
                    theta + 0.5,
                    res.p_value,
                    effect=theta + 0.5,
                    effect_name="P(current > baseline) + P(tie) / 2",
                )
            )
            assert counts is not None
            chi, _ = chi2_test(
                design,
                counts,
                turns,
                permutations=ctx.permutations,
                rng=rng,
                label="chi-square on levels",
                permute=False,
            )
            secondary.append(
                SecondaryTest(chi.test, chi.statistic, chi.p_value, df=chi.df, note=chi.note)
            )
        else:
            res = cvm_test(design, value, permutations=ctx.permutations, rng=rng)
            if bool(np.all(value > 0)):
                wl, ratio = welch_log_test(design, value)
                secondary.append(
                    SecondaryTest(
                        wl.test,
                        wl.statistic,
                        wl.p_value,
                        df=wl.df,
                        effect=ratio,
                        effect_name="ratio of geometric means, current / baseline",
                    )
                )
        con = contrast(design, total, turns, ddof=1, small_sample=True)
        unit_name = "level" if kind == "ordinal" else "value"
        if measure == "median":
            eff = median_effect(design, value, a, boot, rngs)
        else:
            reps = bootstrap_means(design, total, turns, boot, rngs) if boot else None
            eff = mean_effect(design, con, a, f"difference in mean {unit_name}", reps)
    else:
        assert counts is not None
        res, sc = chi2_test(design, counts, turns, permutations=ctx.permutations, rng=rng)
        eff = share_effect(sc, units.categories, a)
        con = None
    stats = _window_stats(ctx, kind, units, sel, con)
    note = "; ".join(x for x in (res.note, left_out) if x)
    finding = Finding(
        metric=name,
        cohort=cohort,
        kind="score",
        test=res.test,
        statistic=res.statistic,
        p_value=res.p_value,
        p_adjusted=None,
        effect=eff.estimate,
        ci_low=eff.ci_low,
        ci_high=eff.ci_high,
        mde=None,
        n_baseline=n0,
        n_current=n1,
        alarm=False,
        note=note,
        score_kind=kind,
        effect_name=eff.name,
        effect_label=eff.label,
        se=eff.se,
        min_effect=delta,
        p_method=res.method,
        df=res.df,
        ci_method=eff.method,
        secondary=tuple(secondary),
        baseline=stats[0],
        current=stats[1],
    )
    rates = None
    if kind == "binary" and con is not None:
        rates = ((con.means[0], con.mean_vars[0]), (con.means[1], con.mean_vars[1]))
    return _Pending(
        finding,
        se0=eff.se0,
        se=eff.se,
        rates=rates,
        shift_cross=con.shift_cross if rates is not None and con is not None else 0.0,
        test_efficiency=efficiency,
    )


def _left_out(units: Units, sel: NDArray[np.bool_], design: Design) -> str:
    """The conversations a within-cohort comparison cannot use, counted: none is silent."""
    out = np.flatnonzero(sel)[~design.keep]
    if not out.size:
        return ""
    lost0 = int((~units.current[out]).sum())
    lost1 = int(units.current[out].sum())
    return (
        f"{lost0} baseline and {lost1} current conversations are in cohort cells seen in "
        "one window only: a change of mix, not part of this within-cohort comparison (the "
        "decomposition counts them as mix)"
    )


def _rank_efficiency(design: Design, value: NDArray[np.float64]) -> float:
    """Within-stratum correlation of ridits and values, in (0, 1].

    The Mann-Whitney test detects a change of the mean level with the power a test of
    the mean has for a change this many times smaller (for alternatives that tilt the
    distribution toward higher values), so the mean's MDE is divided by it.
    """
    r = ridits(design, value)
    omega = pooled_mass(design)
    tot = np.bincount(design.stratum, weights=omega, minlength=design.h)
    centred = []
    for x in (r, value):
        m = np.bincount(design.stratum, weights=omega * x, minlength=design.h) / tot
        centred.append(x - m[design.stratum])
    sxy = float(omega @ (centred[0] * centred[1]))
    sxx = float(omega @ centred[0] ** 2)
    syy = float(omega @ centred[1] ** 2)
    if sxx <= 0 or syy <= 0 or sxy <= 0:
        return 1.0
    return min(1.0, sxy / math.sqrt(sxx * syy))


def _window_stats(
    ctx: _Context, kind: ScoreKind, units: Units, sel: NDArray[np.bool_], con: Contrast | None
) -> tuple[WindowStats, WindowStats]:
    out: list[WindowStats] = []
    for a in (0, 1):
        mask = sel & (units.current == bool(a))
        w = units.weight[mask]
        total = units.total[mask]
        turns = units.turns[mask]
        std = None if con is None else float(con.means[a])
        dist: dict[str, float] = {}
        est = lo = hi = None
        if kind == "categorical" or kind == "ordinal":
            assert units.counts is not None
            shares = (w @ units.counts[mask]) / float(w @ turns)
            keys = units.categories if kind == "categorical" else [f"{v:g}" for v in units.levels]
            dist = {str(k): float(s) for k, s in zip(keys, shares, strict=True)}
        if kind != "categorical":
            est, lo, hi = _own_estimate(total, turns, w, kind == "binary", ctx.alpha)
            if kind == "continuous":
                v = total / turns
                qv = weighted_quantiles(v, w, _QUANTILES)
                dist = {f"p{int(q * 100)}": x for q, x in zip(_QUANTILES, qv, strict=True)}
        out.append(
            WindowStats(
                label=ctx.labels[a],
                n=int(mask.sum()),
                rows=int(turns.sum()),
                estimate=est,
                ci_low=lo,
                ci_high=hi,
                standardized=std,
                distribution=dist,
            )
        )
    return out[0], out[1]


def _own_estimate(
    total: NDArray[np.float64],
    turns: NDArray[np.float64],
    w: NDArray[np.float64],
    binary: bool,
    alpha: float,
) -> tuple[float, float, float]:
    """The window's Hajek (ratio) estimate at its own mix, with a linearised interval."""
    swm = float(w @ turns)
    r = float(w @ total) / swm
    n = total.size
    z_i = w * (total - r * turns) / swm
    var = float(((z_i - z_i.mean()) ** 2).sum()) * n / max(n - 1, 1)
    if binary:
        r = min(max(r, 0.0), 1.0)
        n_eff = r * (1 - r) / var if var > 0 and 0 < r < 1 else float(n)
        lo, hi = wilson_bounds(r, n_eff, alpha)
        return r, lo, hi
    z = z_quantile(alpha)
    return r, r - z * math.sqrt(var), r + z * math.sqrt(var)


def _judge_finding(
    name: str,
    col0: ScoreColumn,
    col1: ScoreColumn,
    change: str,
    anchor: Window | None,
    alpha: float,
) -> tuple[_Pending, AnchorResult | None]:
    old, new = dominant_config(col0), dominant_config(col1)
    res = None
    if anchor is not None and old != new:
        res = anchor_test(anchor, name, old, new, alpha)
    if res is None:
        note = (
            f"judge configuration changed: {change}. No anchor set judged under both, so "
            "a product change cannot be told apart from a judge change; product alarms "
            "for this score are suppressed. Re-judge a fixed anchor set under both "
            "configurations to separate them."
        )
        f = Finding(
            metric=name,
            cohort=ALL,
            kind="judge",
            test="judge configuration check",
            statistic=None,
            p_value=None,
            p_adjusted=None,
            effect=None,
            ci_low=None,
            ci_high=None,
            mde=None,
            n_baseline=col0.n_rows,
            n_current=col1.n_rows,
            alarm=False,
            note=note,
            score_kind=col0.kind,
        )
        return _Pending(f, judge_change=change), None
    return _anchor_finding(name, col0.kind, change, res, bridge=True), res


def _anchor_finding(
    name: str, kind: ScoreKind, change: str | None, res: AnchorResult, *, bridge: bool = False
) -> _Pending:
    """The judge finding of an anchor test: the windows' own anchors, or a bridge study."""
    what = (
        f"judge configuration changed: {change}"
        if change is not None
        else "judge configuration unchanged in the scores' metadata"
    )
    f = Finding(
        metric=name,
        cohort=ALL,
        kind="judge",
        test=res.test,
        statistic=res.statistic,
        p_value=res.p_value,
        p_adjusted=None,
        effect=res.effect,
        ci_low=res.ci_low,
        ci_high=res.ci_high,
        mde=None,
        n_baseline=res.pairs,
        n_current=res.pairs,
        alarm=False,
        note=what,
        score_kind=kind,
        effect_name=res.effect_name
        if bridge
        else res.effect_name.replace("new minus old judge", "current minus baseline"),
        p_method="exact" if "McNemar" in res.test else "asymptotic",
    )
    return _Pending(f, se0=res.se0, judge_change=change)


def _mix_finding(
    ctx: _Context,
    cells: tuple[NDArray[np.int64], NDArray[np.int64]],
    sampling: tuple[NDArray[np.int64], NDArray[np.int64]],
    weights: tuple[NDArray[np.float64], NDArray[np.float64]],
    min_effects: Mapping[str, float],
    clusters: tuple[NDArray[np.int64], NDArray[np.int64]] | None,
) -> _Pending:
    n0, n1 = cells[0].size, cells[1].size
    if min(n0, n1) < ctx.min_n:
        note = f"insufficient data: {n0} baseline and {n1} current conversations"
        return _Pending(_insufficient(MIX_METRIC, ALL, n0, n1, note))
    n_cells = len(ctx.cell_labels)
    rngs = tuple(
        stream(ctx.seed, MIX_METRIC, f"{c.size}:{float(w.sum())!r}")
        for c, w in zip(cells, weights, strict=True)
    )
    res, tvd, ci, se_max, shares = cohort_mix_test(
        cells,
        sampling,
        weights,
        n_cells,
        alpha=ctx.alpha,
        bootstrap=max(ctx.bootstrap, 200),
        rngs=(rngs[0], rngs[1]),
        clusters=clusters,
    )
    labels = [", ".join(f"{k}={v}" for k, v in c.items()) for c in ctx.cell_labels]
    stats = [
        WindowStats(
            label=ctx.labels[a],
            n=int(cells[a].size),
            rows=int(cells[a].size),
            estimate=None,
            ci_low=None,
            ci_high=None,
            standardized=None,
            distribution={lab: float(s) for lab, s in zip(labels, shares[a], strict=True)},
        )
        for a in (0, 1)
    ]
    f = Finding(
        metric=MIX_METRIC,
        cohort=ALL,
        kind="mix",
        test=res.test,
        statistic=res.statistic,
        p_value=res.p_value,
        p_adjusted=None,
        effect=tvd,
        ci_low=ci[0],
        ci_high=ci[1],
        mde=None,
        n_baseline=n0,
        n_current=n1,
        alarm=False,
        note="",
        effect_name="total variation distance between the cohort mixes",
        min_effect=float(min_effects.get(MIX_METRIC, 0.05)),
        df=res.df,
        p_method=res.method,
        ci_method="bootstrap, percentile",
        baseline=stats[0],
        current=stats[1],
    )
    return _Pending(f, se0=se_max, se=se_max)


def _adjust(group: list[_Pending], method: Literal["holm", "bh"], family: Family) -> None:
    idx = [i for i, p in enumerate(group) if p.finding.p_value is not None]
    ps = [group[i].finding.p_value for i in idx]
    adj = (holm if method == "holm" else benjamini_hochberg)(
        [float(p) for p in ps if p is not None]
    )
    for i, q in zip(idx, adj, strict=True):
        group[i].finding = dataclasses.replace(group[i].finding, p_adjusted=q, family=family)


def _finish(
    ctx: _Context,
    by: tuple[str, ...],
    pending: list[_Pending],
    mix_pending: list[_Pending],
    judge_pending: list[_Pending],
    anchors: Mapping[str, AnchorResult | None],
    primary: Sequence[str] | None,
    names: Sequence[str],
) -> DriftReport:
    alpha = ctx.alpha
    prim = set(names if primary is None else primary)
    scores = [p for p in pending if p.finding.kind == "score"]
    fam_primary = [p for p in scores if p.finding.cohort == ALL and p.finding.metric in prim]
    fam_drill = [p for p in scores if not (p.finding.cohort == ALL and p.finding.metric in prim)]
    _adjust(fam_primary, "holm", "primary")
    _adjust(fam_drill, "bh", "drilldown")
    _adjust(mix_pending, "holm", "mix")
    _adjust(judge_pending, "holm", "judge")
    sizes = {
        "primary": len(fam_primary),
        "drilldown": len(fam_drill),
        "mix": len(mix_pending),
        "judge": len([p for p in judge_pending if p.finding.p_value is not None]),
    }
    # What the judge did, per score: "drift" (the anchors moved) and "untested" (the
    # configuration changed and nothing could check it) suppress product alarms;
    # "no effect" (changed, anchors stable) annotates them; "stable" changes nothing.
    judge_state: dict[str, str] = {}
    for jp in judge_pending:
        f = jp.finding
        sig = f.p_adjusted is not None and f.p_adjusted <= alpha
        if f.p_value is None:
            judge_state[f.metric] = "untested"
            jp.finding = dataclasses.replace(f, judge_status="configuration changed, untested")
            continue
        res = anchors.get(f.metric)
        pairs = res.pairs if res is not None else 0
        if sig:
            state = "drift"
            note = (
                f"{f.note}. The anchor test ({pairs} items judged in both) finds a judge "
                f"effect of {format_effect(f.effect, f.score_kind)} (p adj. "
                f"{f.p_adjusted:.4g}): the judge changed, so product alarms for this "
                "score are suppressed until the windows are judged alike."
            )
        elif jp.judge_change is not None:
            state = "no effect"
            note = (
                f"{f.note}. The anchor test ({pairs} items judged in both) finds no judge "
                "effect; product findings are annotated, not suppressed."
            )
        else:
            state = "stable"
            note = (
                f"{f.note}. The anchor test ({pairs} items judged in both) finds no judge effect."
            )
        judge_state[f.metric] = state
        status = {
            "drift": "judge drift",
            "no effect": "configuration changed, no effect on the anchors",
            "stable": "stable on the anchors",
        }[state]
        mde_j = mde(jp.se0 or 0.0, alpha / max(sizes["judge"], 1))
        jp.finding = dataclasses.replace(
            f, significant=sig, alarm=sig, note=note, mde=mde_j, judge_status=status
        )
    for p in [*fam_primary, *fam_drill, *mix_pending]:
        f = p.finding
        fam = f.family
        assert fam is not None and f.p_adjusted is not None
        a_fam = alpha / max(sizes[fam], 1)
        se0 = p.se0 or 0.0
        se = p.se if p.se is not None else se0
        delta = f.min_effect or 0.0
        # Mix effects (total variation distance) are shares, like category shares.
        kind = f.score_kind or ("categorical" if f.kind == "mix" else None)
        if p.rates is not None:
            k = p.shift_cross
            m = mde_rate(se0, p.rates, a_fam, shift_cross=k)
            m_alarm = mde_rate(se0, p.rates, a_fam, alpha_ci=alpha, min_effect=delta, shift_cross=k)
        else:
            m = mde(se0 / p.test_efficiency, a_fam)
            m_alarm = mde_alarm(se0 / p.test_efficiency, se, a_fam, alpha, delta)
        sig = f.p_adjusted <= alpha
        beyond = (
            f.ci_low is not None
            and f.ci_high is not None
            and (f.ci_low > delta or f.ci_high < -delta)
        )
        alarm = sig and beyond
        notes = [f.note] if f.note else []
        judged = judge_state.get(f.metric)
        if judged == "no effect":
            notes.append("judge configuration changed; the anchor set shows no judge effect")
        elif judged == "untested":
            alarm = False
            notes.append(
                "judge configuration changed; not comparable without a judge-neutral "
                "anchor result, alarm suppressed"
            )
        elif judged == "drift":
            alarm = False
            notes.append(
                "the judge moved on the anchor set between the windows; alarm suppressed "
                "(see the judge finding)"
            )
        if alarm:
            notes.insert(
                0, "alarm: significant and the whole interval is beyond the minimum effect"
            )
        elif sig:
            notes.insert(
                0,
                "significant, but the interval reaches inside the minimum effect "
                f"{format_effect(delta, kind, signed=False)}: detectable, not (yet) important",
            )
        else:
            notes.insert(
                0,
                f"no drift detected; a true change of {format_effect(m, kind, signed=False)} "
                "would be found significant 80% of the time, and one of "
                f"{format_effect(m_alarm, kind, signed=False)} would raise an alarm",
            )
        p.finding = dataclasses.replace(
            f, significant=sig, alarm=alarm, mde=m, mde_alarm=m_alarm, note="; ".join(notes)
        )
    findings = (
        [p.finding for p in pending]
        + [p.finding for p in mix_pending]
        + [p.finding for p in judge_pending]
    )
    return DriftReport(
        baseline=ctx.labels[0],
        current=ctx.labels[1],
        alpha=alpha,
        by=by,
        findings=tuple(findings),
        min_n=ctx.min_n,
    )
