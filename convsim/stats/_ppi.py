"""Prediction-powered inference: a mean from many judge scores and a few human labels.

``estimate = mean(judge on the unlabelled items) + mean(human - judge on the labelled)``
(Angelopoulos et al., 2023). The second term, the *rectifier*, removes the judge's average
bias whatever its error pattern, so the estimate is unbiased as long as the labelled items
are a random sample of the judged ones; the judge only has to be good for the interval
to be narrow. The two parts use disjoint items (a labelled item never counts in the judge
part), so their errors are independent and their variances add.

Beyond the textbook version:

- **Strata.** Labels drawn unevenly (50/50 from two cohorts that are 80/20 of traffic)
  are a random sample only within each cohort. Given the strata, each gets its own
  estimate and the strata are combined with their shares of the judged items.
- **Weights.** Judged items sampled with unequal probabilities (online sampling) carry
  weights ``1 / inclusion probability``; every mean and share is then weighted.
- **Small samples.** The interval is a t interval with Welch-Satterthwaite degrees of
  freedom, and a pass/fail rectifier's variance is shrunk toward a few disagreements:
  with 30 labels the rectifier's variance is itself uncertain, and a normal interval
  covers 93% instead of 95% (docs/statistics.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats as sps


@dataclass(frozen=True)
class PPIEstimate:
    """A mean estimated by prediction-powered inference."""

    estimate: float
    """Judge mean on the unlabelled items plus the mean human-minus-judge correction."""
    low: float | None
    """Lower bound of the interval; None when a part has fewer than two items."""
    high: float | None
    """Upper bound of the interval."""
    se: float | None
    """Standard error of ``estimate``."""
    judge_mean: float
    """Judge mean on the unlabelled items: the uncorrected estimate."""
    rectifier: float
    """Mean of human minus judge on the labelled items: the judge's estimated bias."""
    n_labelled: int
    """Items with both a judge score and a human label."""
    n_unlabelled: int
    """Items with a judge score only."""
    confidence: float
    """Coverage of the interval."""
    reason: str | None = None
    """Why the interval is missing."""
    df: float | None = None
    """Degrees of freedom of the t interval (Welch-Satterthwaite)."""
    strata: int = 1
    """Label strata the estimate combines."""


def ppi_mean(
    judge_unlabelled: Sequence[float],
    judge_labelled: Sequence[float],
    human_labelled: Sequence[float],
    confidence: float = 0.95,
) -> PPIEstimate:
    """Prediction-powered mean of a score (e.g. a pass rate), from disjoint item sets.

    ``Var = var(judge_unlabelled) / N + var(human - judge) / n`` (sample variances), with
    a t interval on Welch-Satterthwaite degrees of freedom. Neither is clipped to [0, 1]:
    the method applies to any mean. See :func:`ppi_estimate` for strata and weights.

    Args:
        judge_unlabelled: Judge scores of the items nobody labelled (pass = 1, or bools).
        judge_labelled: Judge scores of the labelled items.
        human_labelled: Human labels of those items, in the same order.
        confidence: Coverage of the interval.

    Returns:
        The estimate; its interval is None when either part has fewer than two items.

    Raises:
        ValueError: On unequal labelled lengths, an empty part or non-finite values.
    """
    if len(judge_labelled) != len(human_labelled):
        raise ValueError(
            f"judge and human labels must pair up: {len(judge_labelled)} judge vs "
            f"{len(human_labelled)} human"
        )
    if len(judge_unlabelled) == 0 or len(judge_labelled) == 0:
        raise ValueError("ppi_mean needs at least one unlabelled and one labelled item")
    judge = np.concatenate(
        [np.asarray(judge_unlabelled, dtype=float), np.asarray(judge_labelled, dtype=float)]
    )
    human = np.concatenate(
        [np.full(len(judge_unlabelled), np.nan), np.asarray(human_labelled, dtype=float)]
    )
    return ppi_estimate(judge, human, confidence=confidence)


def ppi_estimate(
    judge: Sequence[float] | NDArray[np.float64],
    human: Sequence[float | None] | NDArray[np.float64],
    *,
    weights: Sequence[float] | NDArray[np.float64] | None = None,
    strata: Sequence[str] | None = None,
    stratum_sizes: dict[str, float] | None = None,
    confidence: float = 0.95,
) -> PPIEstimate:
    """Prediction-powered mean over judged items, some of them labelled by a human.

    Within each stratum ``h``: ``theta_h = mean_w(judge on unlabelled) + mean_w(human -
    judge on labelled)``, weighted by ``weights``; the strata combine as ``sum_h W_h
    theta_h`` with ``W_h`` the stratum's weighted share of the judged items (or its share
    of ``stratum_sizes``). The variance adds, per stratum, the linearised variances of the
    two weighted means (``W_h**2`` times each), and, when the shares are estimated from the
    judged items, the variance of the shares themselves. The interval is a t interval on
    Welch-Satterthwaite degrees of freedom.

    Args:
        judge: Per judged item, the judge's value (pass = 1).
        human: Per judged item, the human label, or None / NaN when nobody labelled it.
        weights: Per judged item, 1 / its probability of having been judged (default 1).
        strata: Per judged item, the stratum labels were drawn within (default one).
        stratum_sizes: Known size of every stratum (e.g. full-traffic counts).
        confidence: Coverage of the interval.

    Returns:
        The estimate. Without two labelled and two unlabelled items in every stratum the
        interval is None, with the reason.

    Raises:
        ValueError: On unequal lengths, non-finite values, non-positive weights, a
            stratum with no labelled or no unlabelled item, or one missing from
            ``stratum_sizes``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    f = np.asarray(judge, dtype=float)
    y = np.asarray([np.nan if v is None else v for v in human], dtype=float)
    if f.ndim != 1 or y.shape != f.shape:
        raise ValueError(f"judge ({f.size}) and human ({y.size}) must have one value per item")
    if not np.isfinite(f).all():
        raise ValueError("judge values must be finite numbers")
    w = np.ones_like(f) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != f.shape or not (np.isfinite(w).all() and (w > 0).all()):
        raise ValueError("weights must be positive, finite, one per item")
    labelled = np.isfinite(y)
    names: list[str]
    if strata is None:
        names, codes = ["all"], np.zeros(f.size, dtype=np.int64)
    else:
        if len(strata) != f.size:
            raise ValueError(f"strata has {len(strata)} labels for {f.size} items")
        uniq, inv = np.unique(np.asarray(strata, dtype=str), return_inverse=True)
        names, codes = [str(u) for u in uniq], inv.astype(np.int64)
    k = len(names)
    if stratum_sizes is not None:
        missing = [s for s in names if s not in stratum_sizes]
        if missing:
            raise ValueError(f"stratum {missing[0]!r} has judged items but no size")
        sizes = np.asarray([float(stratum_sizes[s]) for s in names])
        share = sizes / float(sum(v for v in stratum_sizes.values() if v > 0))
    else:
        w_h = np.bincount(codes, weights=w, minlength=k)
        share = w_h / w_h.sum()
    theta = np.zeros(k)
    parts: list[tuple[float, float, float, float]] = []
    judge_means = np.zeros(k)
    rect = np.zeros(k)
    reason: str | None = None
    for h in range(k):
        in_h = codes == h
        u, lab = in_h & ~labelled, in_h & labelled
        if not lab.any():
            raise ValueError(
                f"stratum {names[h]!r} has no labelled item ({int(u.sum())} unlabelled): "
                "nothing to correct the judge with"
            )
        census = not u.any()
        if census:
            # Every item of the stratum is labelled: the estimate is the labels' mean (the
            # judge part and the rectifier add up to it), with that mean's variance.
            u = lab
        fu, wu = f[u], w[u]
        r, wl = y[lab] - f[lab], w[lab]
        judge_means[h] = float(wu @ fu / wu.sum())
        rect[h] = float(wl @ r / wl.sum())
        theta[h] = judge_means[h] + rect[h]
        if lab.sum() < 2 or (u.sum() < 2 and not census):
            reason = "an interval needs at least two labelled and two unlabelled items per stratum"
            continue
        if census:
            parts.append((0.0, float(lab.sum()), _mean_variance(y[lab], wl), float(lab.sum())))
        else:
            v_r = _mean_variance(r, wl)
            if np.isin(r, (-1.0, 0.0, 1.0)).all():
                v_r = max(v_r, _disagreement_variance(r, wl))
            parts.append((_mean_variance(fu, wu), float(u.sum()), v_r, float(lab.sum())))
    est = float(share @ theta)

    def result(
        low: float | None,
        high: float | None,
        se: float | None,
        *,
        reason: str | None = None,
        df: float | None = None,
    ) -> PPIEstimate:
        return PPIEstimate(
            estimate=est,
            low=low,
            high=high,
            se=se,
            judge_mean=float(share @ judge_means),
            rectifier=float(share @ rect),
            n_labelled=int(labelled.sum()),
            n_unlabelled=int((~labelled).sum()),
            confidence=confidence,
            strata=k,
            reason=reason,
            df=df,
        )

    if reason is not None:
        return result(None, None, None, reason=reason)
    # Per stratum and part, its contribution to the variance and its degrees of freedom.
    comps: list[tuple[float, float]] = []
    for h, (v_u, n_u, v_l, n_l) in enumerate(parts):
        comps += [(share[h] ** 2 * v_u, n_u - 1.0), (share[h] ** 2 * v_l, n_l - 1.0)]
    if stratum_sizes is None and k > 1:
        # The shares are estimated from the judged items: add their own variance, the
        # linearised variance of sum_h W_h theta_h over the items' strata.
        z_i = w / w.sum() * (theta[codes] - est)
        comps.append((float((z_i * z_i).sum()) * f.size / (f.size - 1), float(f.size - 1)))
    var = sum(c for c, _ in comps)
    se = math.sqrt(max(var, 0.0))
    denom = sum(c * c / d for c, d in comps if d > 0 and c > 0)
    df = var * var / denom if denom > 0 else math.inf
    tail = 0.5 + confidence / 2.0
    q = float(sps.t.ppf(tail, df)) if math.isfinite(df) else float(sps.norm.ppf(tail))
    return result(est - q * se, est + q * se, se, df=df)


def _mean_variance(x: NDArray[np.float64], w: NDArray[np.float64]) -> float:
    """Linearised variance of a weighted mean: ``n/(n-1) sum w^2 (x - mean)^2 / (sum w)^2``.

    With equal weights this is ``s^2 / n``, the sample variance over the count.
    """
    n = x.size
    mean = float(w @ x / w.sum())
    return float(((w * (x - mean)) ** 2).sum() / w.sum() ** 2) * n / (n - 1)


DISAGREEMENT_PSEUDO_COUNT = 0.1
"""Pseudo-observations of each kind of disagreement (human pass / judge fail, and the
reverse) when estimating a pass/fail rectifier's variance."""


def _disagreement_variance(r: NDArray[np.float64], w: NDArray[np.float64]) -> float:
    """Variance of a pass/fail rectifier's mean (values -1, 0, 1), shrunk for few labels.

    With 30 labels and a judge that rarely disagrees, the sample variance of the
    rectifier is often near 0 by chance and the interval falsely narrow. Adding
    :data:`DISAGREEMENT_PSEUDO_COUNT` observations of each disagreement keeps it honest;
    with 150 labels it changes nothing (the study in docs/statistics.md).
    """
    c = DISAGREEMENT_PSEUDO_COUNT
    n_eff = float(w.sum() ** 2 / (w * w).sum())
    mean_w = float(w.mean())
    total = float(w.sum()) + 2.0 * c * mean_w
    up = (float(w[r > 0].sum()) + c * mean_w) / total
    down = (float(w[r < 0].sum()) + c * mean_w) / total
    return (up + down - (up - down) ** 2) / max(n_eff - 1.0, 1.0)
