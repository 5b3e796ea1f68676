"""Cohort mix versus within-cohort change.

An aggregate pass rate can rise while every cohort's falls (Simpson's paradox) when
traffic moves toward cohorts that pass more. The report therefore separates:

- the *mix*: did the weighted share of each cohort cell change? A design-based chi-square
  test on the cohort shares (Pearson's chi-square on the 2 x cells table of counts when
  there are no sampling weights), with the total variation distance as effect;
- the *within-cohort* change: what the score tests measure, standardised to a common mix;
- per score, a Kitagawa decomposition of the aggregate change into the two parts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import stats as sps

from ._data import Units
from ._report import Decomposition, DecompositionRow
from ._tests import ClusterIndex, TestResult


def kitagawa_decomposition(
    shares_baseline: Sequence[float] | NDArray[np.float64],
    means_baseline: Sequence[float] | NDArray[np.float64],
    shares_current: Sequence[float] | NDArray[np.float64],
    means_current: Sequence[float] | NDArray[np.float64],
) -> Decomposition:
    """Split ``sum(w1 * m1) - sum(w0 * m0)`` into mix and within-cohort parts.

    Symmetric form (Kitagawa 1955): ``mix = sum (w1 - w0) (m0 + m1) / 2`` and
    ``within = sum (w0 + w1) / 2 (m1 - m0)``, which add up to the total exactly. A cohort
    with no conversations in one window (share 0, mean NaN) counts entirely as mix.

    Args:
        shares_baseline: Baseline share of each cohort (summing to 1).
        means_baseline: Baseline mean per cohort (NaN when absent).
        shares_current: Current share of each cohort.
        means_current: Current mean per cohort.

    Returns:
        The decomposition (without per-cohort rows).
    """
    mix, within = _parts(
        np.asarray(shares_baseline, dtype=np.float64),
        np.asarray(means_baseline, dtype=np.float64),
        np.asarray(shares_current, dtype=np.float64),
        np.asarray(means_current, dtype=np.float64),
    )
    m = float(mix.sum())
    w = float(within.sum())
    return Decomposition(total=m + w, mix=m, within=w)


def _parts(
    s0: NDArray[np.float64],
    m0: NDArray[np.float64],
    s1: NDArray[np.float64],
    m1: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    both = (s0 > 0) & (s1 > 0) & np.isfinite(m0) & np.isfinite(m1)
    a0 = np.where(s0 > 0, s0 * np.nan_to_num(m0), 0.0)
    a1 = np.where(s1 > 0, s1 * np.nan_to_num(m1), 0.0)
    mix = np.where(both, (s1 - s0) * (np.nan_to_num(m0) + np.nan_to_num(m1)) / 2.0, a1 - a0)
    within = np.where(both, (s0 + s1) / 2.0 * (np.nan_to_num(m1) - np.nan_to_num(m0)), 0.0)
    return mix, within


def score_decomposition(units: Units, cells: Sequence[Mapping[str, str]]) -> Decomposition:
    """Kitagawa decomposition of one score over cohort cells.

    Args:
        units: The score's conversation units (both windows).
        cells: Label of each cohort cell code.

    Returns:
        The decomposition with one row per cohort cell.
    """
    codes, inv = np.unique(units.cell, return_inverse=True)
    h = codes.size
    g = inv * 2 + units.current.astype(np.int64)
    w = np.bincount(g, weights=units.weight, minlength=2 * h).reshape(h, 2).T
    share = w / np.maximum(w.sum(1, keepdims=True), 1e-300)
    wt = units.weight
    num = np.bincount(g, weights=wt * units.total, minlength=2 * h).reshape(h, 2).T
    den = np.bincount(g, weights=wt * units.turns, minlength=2 * h).reshape(h, 2).T
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(den > 0, num / den, np.nan)
    mix, within = _parts(share[0], mean[0], share[1], mean[1])
    # Totals at each window's own mix (Hajek), so that total = mix + within exactly.
    total = float(np.nansum(share[1] * mean[1]) - np.nansum(share[0] * mean[0]))
    rows = [
        DecompositionRow(
            cohort=dict(cells[int(c)]),
            share_baseline=float(share[0, k]),
            share_current=float(share[1, k]),
            mean_baseline=None if np.isnan(mean[0, k]) else float(mean[0, k]),
            mean_current=None if np.isnan(mean[1, k]) else float(mean[1, k]),
            mix=float(mix[k]),
            within=float(within[k]),
        )
        for k, c in enumerate(codes)
    ]
    return Decomposition(
        total=total, mix=float(mix.sum()), within=float(within.sum()), rows=tuple(rows)
    )


def weighted_shares(
    cell: NDArray[np.int64], weight: NDArray[np.float64], n_cells: int
) -> NDArray[np.float64]:
    """Hajek estimate of each cell's population share."""
    w = np.bincount(cell, weights=weight, minlength=n_cells)
    return w / max(float(w.sum()), 1e-300)


def cohort_mix_test(
    cells: tuple[NDArray[np.int64], NDArray[np.int64]],
    sampling: tuple[NDArray[np.int64], NDArray[np.int64]],
    weights: tuple[NDArray[np.float64], NDArray[np.float64]],
    n_cells: int,
    *,
    alpha: float,
    bootstrap: int,
    rngs: tuple[np.random.Generator, np.random.Generator],
    clusters: tuple[NDArray[np.int64], NDArray[np.int64]] | None = None,
) -> tuple[TestResult, float, tuple[float, float], float, tuple[NDArray[np.float64], ...]]:
    """Test whether the weighted cohort shares differ between the windows.

    Without sampling weights (one inclusion probability in both windows) this is
    ``chi2_contingency`` on the 2 x cells table of conversation counts. With weights it
    is the Wald test of the difference of Hajek shares, whose covariance is the
    linearised (sandwich) covariance of each window's ratio estimator around the pooled
    shares.

    Args:
        cells: Per window, per conversation, its cohort cell.
        sampling: Per window, per conversation, its sampling stratum.
        weights: Per window, per conversation, its weight.
        n_cells: Number of cohort cells.
        alpha: One minus the interval coverage.
        bootstrap: Replicates for the interval of the total variation distance.
        rngs: Random streams per window.
        clusters: Per window, per conversation, its top-level cluster (e.g. user); the
            covariance is then cluster-robust and the interval a normal-theory one.

    Returns:
        ``(result, tvd, (low, high), se of the largest share change, (shares0, shares1))``.
    """
    shares = tuple(weighted_shares(c, w, n_cells) for c, w in zip(cells, weights, strict=True))
    one_stratum = np.unique(np.concatenate(sampling)).size == 1
    tvd = 0.5 * float(np.abs(shares[1] - shares[0]).sum())
    pooled = (shares[0] + shares[1]) / 2.0
    cov = np.zeros((n_cells, n_cells))
    for c, w in zip(cells, weights, strict=True):
        tot = float(w.sum())
        s = np.bincount(c, weights=w * w, minlength=n_cells)
        sw2 = float((w * w).sum())
        n = c.size
        v = np.diag(s) - np.outer(pooled, s) - np.outer(s, pooled) + np.outer(pooled, pooled) * sw2
        cov += v / tot**2 * (n / max(n - 1, 1))
    clustered = False
    index = None if clusters is None else ClusterIndex.build(np.concatenate(clusters))
    if index is not None:
        # Influence of each conversation (in a shared cluster) on the share difference.
        u = index.units
        cell_all = np.concatenate(cells)[u]
        scale = np.concatenate(
            [-weights[0] / float(weights[0].sum()), weights[1] / float(weights[1].sum())]
        )[u]
        onehot = np.zeros((u.size, n_cells))
        onehot[np.arange(u.size), cell_all] = 1.0
        cov = cov + index.cross(scale[:, None] * (onehot - pooled[None, :]))
        clustered = True
    se_max = math.sqrt(max(float(np.diag(cov).max(initial=0.0)), 0.0))
    if one_stratum and not clustered:
        counts = np.vstack([np.bincount(c, minlength=n_cells) for c in cells]).astype(float)
        counts = counts[:, counts.sum(0) > 0]
        if counts.shape[1] < 2:
            res = TestResult("chi-square on cohort counts", 0.0, 1.0, df=0.0)
        else:
            ct = sps.chi2_contingency(counts, correction=False)
            res = TestResult(
                "chi-square on cohort counts",
                float(ct.statistic),
                min(1.0, max(0.0, float(ct.pvalue))),
                df=float(ct.dof),
            )
    else:
        d = shares[1] - shares[0]
        evals, evecs = np.linalg.eigh(cov)
        keep = evals > max(float(evals.max(initial=0.0)), 0.0) * 1e-10
        proj = evecs[:, keep].T @ d
        x2 = float((proj**2 / evals[keep]).sum()) if keep.any() else 0.0
        df = int(keep.sum())
        p = float(sps.chi2.sf(x2, df)) if df else 1.0
        res = TestResult(
            "design-based chi-square on weighted cohort shares", x2, min(1.0, p), df=float(df)
        )
    reps = np.zeros(bootstrap)
    if bootstrap and clustered:
        # Resampling conversations would ignore the clusters; draw the share difference
        # from its (cluster-robust) normal approximation instead.
        d_hat = shares[1] - shares[0]
        evals, evecs = np.linalg.eigh(cov)
        root = evecs * np.sqrt(np.maximum(evals, 0.0))[None, :]
        # The stream of the "smaller" window, and antithetic pairs, so that swapping the
        # windows (d -> -d) gives the same replicates.
        fp = [(c.size, float(w.sum())) for c, w in zip(cells, weights, strict=True)]
        rng = rngs[0] if fp[0] <= fp[1] else rngs[1]
        noise = rng.standard_normal((bootstrap, n_cells)) @ root.T
        reps = 0.5 * np.concatenate([np.abs(d_hat + noise).sum(1), np.abs(d_hat - noise).sum(1)])
        lo, hi = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
        ci = (float(lo), float(hi))
    elif bootstrap:
        boot = []
        for c, s_, w, rng in zip(cells, sampling, weights, rngs, strict=True):
            # Resample conversations: the counts per (cell, sampling stratum) are
            # multinomial; each stratum's weight is constant.
            n_s = int(s_.max()) + 1 if s_.size else 1
            key = c * n_s + s_
            cnt = np.bincount(key, minlength=n_cells * n_s).astype(float)
            wk = np.zeros(n_cells * n_s)
            np.maximum.at(wk, key, w)
            draws = rng.multinomial(c.size, cnt / max(cnt.sum(), 1.0), size=bootstrap)
            ww = (draws * wk).reshape(bootstrap, n_cells, n_s).sum(2)
            boot.append(ww / np.maximum(ww.sum(1, keepdims=True), 1e-300))
        reps = 0.5 * np.abs(boot[1] - boot[0]).sum(1)
        lo, hi = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
        ci = (float(lo), float(hi))
    else:
        ci = (math.nan, math.nan)
    return res, tvd, ci, se_max, shares
