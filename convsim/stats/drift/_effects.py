"""Effect sizes in native units, their intervals, and minimum detectable effects.

Every effect is the standardised difference the test used (both windows at the pooled
cohort and sampling mix), so an alarm's effect and its p-value describe the same change:

- binary: difference in pass rate, with a Newcombe hybrid (Wilson) interval whose sample
  sizes are the *effective* ones, ``p (1 - p) / Var``, so clustering and weights widen it;
- ordinal and continuous: difference in mean, with a normal interval from the
  cluster-robust linearised variance, or a stratified cluster bootstrap (conversations
  resampled within window and stratum) when the windows are small enough for it to be
  cheap; optionally the difference in medians (Woodruff interval);
- categorical: the largest change in one category's share, with a Bonferroni interval
  over the categories (so picking the largest does not make it overconfident).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import special as spc

from ._tests import Contrast, Design, ShareContrast

POWER = 0.8
"""Power at which minimum detectable effects are stated."""


@dataclass(frozen=True)
class Effect:
    """An effect estimate and its interval."""

    name: str
    """What is measured, e.g. ``difference in pass rate``."""
    estimate: float
    """Current minus baseline, in the score's units."""
    se: float
    """Standard error of the estimate (each window's own variance)."""
    se0: float
    """Standard error under no change (pooled variance), used for the MDE."""
    ci_low: float
    """Lower bound of the interval."""
    ci_high: float
    """Upper bound of the interval."""
    method: str
    """How the interval was built."""
    label: str | None = None
    """For categorical effects: the category that moved most."""


def z_quantile(alpha: float) -> float:
    """``z_{1 - alpha/2}``."""
    return float(-spc.ndtri(alpha / 2.0))


def wilson_bounds(p: float, n: float, alpha: float) -> tuple[float, float]:
    """Wilson score interval for a proportion with a (possibly effective, non-integer) n.

    Args:
        p: Estimated proportion.
        n: (Effective) sample size, > 0.
        alpha: One minus the coverage.

    Returns:
        ``(low, high)`` within [0, 1].
    """
    z = z_quantile(alpha)
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(max(p * (1 - p) / n + z * z / (4 * n * n), 0.0))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(
    p0: float, n0: float, p1: float, n1: float, alpha: float
) -> tuple[float, float]:
    """Newcombe's hybrid score interval for ``p1 - p0`` (method 10 of Newcombe 1998).

    Args:
        p0: Baseline proportion.
        n0: Baseline (effective) sample size.
        p1: Current proportion.
        n1: Current (effective) sample size.
        alpha: One minus the coverage.

    Returns:
        ``(low, high)``.
    """
    l0, u0 = wilson_bounds(p0, n0, alpha)
    l1, u1 = wilson_bounds(p1, n1, alpha)
    d = p1 - p0
    return d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + math.sqrt(
        (u1 - p1) ** 2 + (p0 - l0) ** 2
    )


def _effective_n(p: float, var: float, n: float) -> float:
    # p (1 - p) / Var is the sample size a simple random sample would need for the same
    # precision; at p = 0 or 1 the variance says nothing, so fall back to the count.
    if 0.0 < p < 1.0 and var > 0.0:
        return p * (1.0 - p) / var
    return max(n, 1.0)


def binary_effect(design: Design, con: Contrast, alpha: float) -> Effect:
    """Difference in pass rate with a Newcombe-Wilson interval on effective sizes.

    Args:
        design: Strata.
        con: The binary contrast (``ddof=0``, no small-sample factor).
        alpha: One minus the coverage.

    Returns:
        The effect.
    """
    n0, n1 = design.n.sum(1)
    p0, p1 = (min(max(m, 0.0), 1.0) for m in con.means)
    lo, hi = newcombe_interval(
        p0,
        _effective_n(p0, con.mean_vars[0], float(n0)),
        p1,
        _effective_n(p1, con.mean_vars[1], float(n1)),
        alpha,
    )
    return Effect(
        "difference in pass rate",
        con.delta,
        math.sqrt(con.var),
        math.sqrt(con.var0),
        lo,
        hi,
        "Newcombe-Wilson (effective n)",
    )


def mean_effect(
    design: Design,
    con: Contrast,
    alpha: float,
    name: str,
    replicates: NDArray[np.float64] | None = None,
) -> Effect:
    """Difference in mean, with a normal or a cluster-bootstrap percentile interval.

    Args:
        design: Strata.
        con: The contrast of the values.
        alpha: One minus the coverage.
        name: What is measured.
        replicates: Bootstrap replicates of the difference, when bootstrapped.

    Returns:
        The effect.
    """
    se = math.sqrt(con.var)
    if replicates is not None and replicates.size:
        lo, hi = np.quantile(replicates, [alpha / 2, 1 - alpha / 2])
        return Effect(
            name,
            con.delta,
            se,
            math.sqrt(con.var0),
            float(lo),
            float(hi),
            f"cluster bootstrap, percentile ({replicates.size} replicates)",
        )
    z = z_quantile(alpha)
    return Effect(
        name,
        con.delta,
        se,
        math.sqrt(con.var0),
        con.delta - z * se,
        con.delta + z * se,
        "normal, cluster-robust linearised variance",
    )


def _window_masks(design: Design) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    return ~design.current, design.current


def bootstrap_means(
    design: Design,
    total: NDArray[np.float64],
    turns: NDArray[np.float64],
    b: int,
    rngs: tuple[np.random.Generator, np.random.Generator],
) -> NDArray[np.float64]:
    """Stratified cluster bootstrap of the standardised difference in (ratio) means.

    Conversations are resampled with replacement within each window and stratum (so the
    strata sizes and the standardisation stay fixed); all turns of a conversation move
    together.

    Args:
        design: Strata.
        total: Per kept unit, the sum of its values.
        turns: Per kept unit, its rows.
        b: Replicates.
        rngs: One random stream per window (baseline, current).

    Returns:
        ``b`` replicates of current minus baseline.
    """
    out = np.zeros(b)
    # A resampled conversation keeps its sampling weight (all 1 where weights are equal).
    wt, wm = design.u * total, design.u * turns
    for sign, mask, rng in zip((-1.0, 1.0), _window_masks(design), rngs, strict=True):
        idx_w = np.flatnonzero(mask)
        strata = design.stratum[idx_w]
        order = np.argsort(strata, kind="stable")
        bounds = np.searchsorted(strata[order], np.arange(design.h + 1))
        for h in range(design.h):
            units = idx_w[order[bounds[h] : bounds[h + 1]]]
            draw = units[rng.integers(0, units.size, size=(b, units.size))]
            with np.errstate(divide="ignore", invalid="ignore"):
                mu = wt[draw].sum(1) / wm[draw].sum(1)
            out += sign * design.wbar[h] * mu
    return out


def weighted_quantile(values: NDArray[np.float64], weights: NDArray[np.float64], q: float) -> float:
    """The smallest value whose cumulative weight share reaches ``q`` (no interpolation)."""
    return weighted_quantiles(values, weights, (q,))[0]


def weighted_quantiles(
    values: NDArray[np.float64], weights: NDArray[np.float64], qs: tuple[float, ...]
) -> list[float]:
    """:func:`weighted_quantile` at several levels, sorting once."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    cum /= cum[-1]
    idx = np.searchsorted(cum, np.asarray(qs) - 1e-12, side="left")
    return [float(values[order][min(int(i), values.size - 1)]) for i in idx]


def _standard_weights(design: Design, mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    a = 1 if bool(design.current[mask][0]) else 0
    out: NDArray[np.float64] = (design.wbar / design.n[a])[design.stratum[mask]] * design.u[mask]
    return out


def median_effect(
    design: Design,
    value: NDArray[np.float64],
    alpha: float,
    b: int = 0,
    rngs: tuple[np.random.Generator, np.random.Generator] | None = None,
) -> Effect:
    """Difference in standardised medians of the conversation-level values.

    The interval is Woodruff's (1952): the interval of the CDF at the median, from its
    stratified variance, mapped back through the quantile function, gives each median's
    standard error; or, with ``b`` replicates, a stratified cluster bootstrap.

    Args:
        design: Strata.
        value: Per kept unit, its conversation-level value.
        alpha: One minus the coverage.
        b: Bootstrap replicates (0 for Woodruff).
        rngs: Random streams per window, for the bootstrap.

    Returns:
        The effect.
    """
    z = z_quantile(alpha)
    meds: list[float] = []
    ses: list[float] = []
    for a, mask in enumerate(_window_masks(design)):
        v = value[mask]
        w = _standard_weights(design, mask)
        med = weighted_quantile(v, w, 0.5)
        below = (v <= med).astype(np.float64)
        st = design.stratum[mask]
        ua = design.u[mask]
        n_a = design.n[a]
        p_h = np.bincount(st, weights=ua * below, minlength=design.h) / n_a
        # sum_i u_i^2 (b_i - p)^2 / (n (n - 1)): p (1 - p) / (n - 1) with equal weights.
        dev = np.bincount(st, weights=(ua * (below - p_h[st])) ** 2, minlength=design.h)
        var_f = float((design.wbar**2 * dev / (n_a * np.maximum(n_a - 1, 1))).sum())
        se_f = math.sqrt(var_f)
        lo = weighted_quantile(v, w, max(0.0, 0.5 - z * se_f))
        hi = weighted_quantile(v, w, min(1.0, 0.5 + z * se_f))
        meds.append(med)
        ses.append((hi - lo) / (2 * z))
    delta = meds[1] - meds[0]
    se = math.hypot(ses[0], ses[1])
    if b and rngs is not None:
        reps = np.zeros(b)
        for sign, mask, rng in zip((-1.0, 1.0), _window_masks(design), rngs, strict=True):
            idx_w = np.flatnonzero(mask)
            w = _standard_weights(design, mask)
            strata = design.stratum[idx_w]
            draws = np.empty((b, idx_w.size), dtype=np.int64)
            col = 0
            for h in range(design.h):
                pos = np.flatnonzero(strata == h)
                draws[:, col : col + pos.size] = pos[rng.integers(0, pos.size, (b, pos.size))]
                col += pos.size
            vals = value[idx_w][draws]
            ww = w[draws]
            order = np.argsort(vals, axis=1, kind="stable")
            cum = np.cumsum(np.take_along_axis(ww, order, 1), axis=1)
            cum /= cum[:, -1:]
            i = np.minimum((cum < 0.5 - 1e-12).sum(1), idx_w.size - 1)
            reps += (
                sign * np.take_along_axis(np.take_along_axis(vals, order, 1), i[:, None], 1)[:, 0]
            )
        lo_b, hi_b = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
        return Effect(
            "difference in median",
            delta,
            se,
            se,
            float(lo_b),
            float(hi_b),
            f"cluster bootstrap, percentile ({b} replicates)",
        )
    return Effect("difference in median", delta, se, se, delta - z * se, delta + z * se, "Woodruff")


def share_effect(sc: ShareContrast, categories: tuple[str, ...], alpha: float) -> Effect:
    """The largest change in one category's share, with a Bonferroni interval.

    Args:
        sc: The share contrast.
        categories: Category labels, in the contrast's order.
        alpha: One minus the (simultaneous) coverage.

    Returns:
        The effect; ``label`` names the category.
    """
    k = int(np.argmax(np.abs(sc.delta)))
    kk = max(len(categories), 1)
    z = z_quantile(alpha / kk)
    se = math.sqrt(max(float(sc.var[k]), 0.0))
    se0 = math.sqrt(max(float(sc.cov0[k, k]), 0.0))
    d = float(sc.delta[k])
    return Effect(
        "largest change in a category share",
        d,
        se,
        se0,
        d - z * se,
        d + z * se,
        f"normal, Bonferroni over {kk} categories",
        label=categories[k],
    )


def mde(se0: float, alpha: float, power: float = POWER) -> float:
    """Minimum detectable effect: the true change a level-``alpha`` test finds with ``power``.

    ``(z_{1-alpha/2} + z_{power}) * se0``, where ``se0`` is the standard error of the effect
    under no change: the observed variance, with the design effect of clustering and the
    weights already in it.

    Args:
        se0: Null standard error.
        alpha: Significance level (already corrected for multiple testing).
        power: Target power.

    Returns:
        The MDE in the effect's units.
    """
    return (z_quantile(alpha) + float(spc.ndtri(power))) * se0


def mde_alarm(
    se0: float, se: float, alpha_test: float, alpha_ci: float, min_effect: float
) -> float:
    """The true change that raises an *alarm* (significant, beyond the minimum) 80% of the time.

    An alarm needs the estimate beyond both ``z_test * se0`` (significance) and
    ``min_effect + z_ci * se`` (interval beyond the minimum effect); the estimate's
    spread adds ``z_0.8 * se``.

    Args:
        se0: Null standard error.
        se: Standard error of the estimate.
        alpha_test: Corrected significance level.
        alpha_ci: One minus the interval coverage.
        min_effect: The minimum meaningful effect.

    Returns:
        The alarm MDE.
    """
    need = max(z_quantile(alpha_test) * se0, min_effect + z_quantile(alpha_ci) * se)
    return need + float(spc.ndtri(POWER)) * se


def mde_rate(
    se0: float,
    rates: tuple[tuple[float, float], tuple[float, float]],
    alpha_test: float,
    *,
    alpha_ci: float | None = None,
    min_effect: float = 0.0,
    power: float = POWER,
    shift_cross: float = 0.0,
) -> float:
    """MDE of a pass-rate difference, allowing for the variance growing under the change.

    A pass rate that moves toward 50% gets noisier: both the test's pooled standard error
    and the spread of the estimate grow, so at the textbook MDE (computed with the
    no-change variance) the power falls short of 80% for such moves. Here both are
    re-evaluated at the moved rates (toward 50%, the less favourable direction) until
    the MDE is self-consistent:
    ``d = z_test * se_pooled(d) + z_power * se_alt(d)``. Each window keeps its design
    effect: ``var_a = p_a (1 - p_a) * c_a``.

    Args:
        se0: Null standard error of the difference.
        rates: ``((p_base, var_base), (p_cur, var_cur))``, standardised rates and the
            variances of those estimates.
        alpha_test: Corrected significance level.
        alpha_ci: When given, the MDE of an *alarm*: the interval at this level must also
            clear ``min_effect``.
        min_effect: The minimum meaningful effect (alarm MDE only).
        power: Target power.
        shift_cross: With clusters, what a change of ``d`` adds to the test's variance,
            divided by ``d**2`` (``Contrast.shift_cross``): the pooled null variance
            sees each user's units all off the pooled mean the same way.

    Returns:
        The MDE in pass-rate units.
    """
    (p0, v0), (p1, v1) = rates
    pbar = min(max((p0 + p1) / 2.0, 0.0), 1.0)
    var_p = pbar * (1 - pbar)
    if var_p <= 0.0:
        return mde(se0, alpha_test, power)
    c0, c1 = (v / max(p * (1 - p), 1e-12) for p, v in ((p0, v0), (p1, v1)))
    if c0 + c1 <= 0.0:
        return mde(se0, alpha_test, power)
    toward = -1.0 if pbar > 0.5 else 1.0

    def moved(step: float) -> float:
        q = pbar + toward * step
        return min(q, 0.5) if toward > 0 else max(q, 0.5)

    z_test = z_quantile(alpha_test)
    z_pow = float(spc.ndtri(power))
    d = 0.0
    for _ in range(50):
        q1 = moved(d)
        q_pool = moved(d * c0 / (c0 + c1))
        se_test = math.sqrt(se0 * se0 * q_pool * (1 - q_pool) / var_p + shift_cross * d * d)
        se_alt = se0 * math.sqrt((var_p * c0 + q1 * (1 - q1) * c1) / (var_p * (c0 + c1)))
        need = z_test * se_test
        if alpha_ci is not None:
            need = max(need, min_effect + z_quantile(alpha_ci) * se_alt)
        new = need + z_pow * se_alt
        if abs(new - d) < 1e-12:
            return new
        d = new
    return d
