"""Estimates from a sampled window, weighted back to the whole window.

A sampled window over-represents whatever the policy over-samples (escalations at 100%,
routine traffic at 10%), so a plain mean of judged scores is biased toward those. Each
judged conversation stands for ``1 / inclusion_prob`` conversations of the window:

- Hájek (default): ``sum(w * y) / sum(w)``, a ratio estimator that needs no population
  size. Its variance is linearised: ``sum((1 - p) * w**2 * (y - mean)**2) / sum(w)**2``.
- Horvitz-Thompson (``method="ht"``): ``sum(w * y) / N`` with the window size ``N`` known;
  variance ``sum((1 - p) * w**2 * y**2) / N**2``. Unbiased, but noisier than Hájek when
  the sample size varies, as it does under independent (Poisson) sampling.
- Stratified: with ``strata`` and known ``stratum_sizes`` (full-traffic counts per
  stratum), per-stratum estimates are combined with weights ``N_h / N`` and variance
  ``sum(W_h**2 * var_h)``. Without sizes the stratum weights are estimated from the
  inverse probabilities, which gives the plain Hájek estimate overall plus a breakdown.

The variances are those of Poisson sampling, which is what hash-based sampling is:
each conversation is included independently with its own probability. The factor
``1 - p`` is the finite-population correction: it makes a 100% stratum contribute no
variance, which is right for "what was this window's quality". When the question is
about the process that generated the window (comparing windows for drift), pass
``fpc=False``; the variance then also covers the window's own sampling from the process.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import ConfigDict, Field, NonNegativeFloat, RootModel

from .._yaml import load_yaml_model
from ..trace import Score

EstimateMethod = Literal["hajek", "ht", "unweighted"]
"""How an estimate was computed: Hájek ratio, Horvitz-Thompson, or a plain mean."""

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class WeightedEstimate:
    """A population mean estimated from a sample, with its standard error and interval."""

    estimate: float
    """The estimated mean (a rate, for binary values)."""
    se: float
    """Standard error; NaN when a single unit cannot give one."""
    low: float
    """Lower bound of the confidence interval."""
    high: float
    """Upper bound of the confidence interval."""
    n: int
    """Sampled units the estimate uses."""
    n_eff: float
    """Kish effective sample size, ``sum(w)**2 / sum(w**2)``: what unequal weights leave."""
    population_size: float
    """Window size: the given ``N``, or its estimate ``sum(1 / p)``."""
    method: EstimateMethod
    """Estimator used."""
    confidence: float
    """Confidence level of ``low``-``high``."""
    stratified: bool = False
    """True when per-stratum estimates were combined with known stratum sizes."""
    by_stratum: dict[str, WeightedEstimate] = field(default_factory=dict)
    """Per-stratum estimates, when strata were given."""


def weighted_estimate(
    values: npt.ArrayLike,
    inclusion_probs: npt.ArrayLike,
    *,
    strata: Sequence[str] | npt.NDArray[np.str_] | None = None,
    method: Literal["hajek", "ht"] = "hajek",
    population_size: float | None = None,
    stratum_sizes: Mapping[str, float] | None = None,
    confidence: float = 0.95,
    fpc: bool = True,
) -> WeightedEstimate:
    """Estimate the window mean of ``values`` from a sample with known inclusion probabilities.

    Works for binary values (pass 0/1 or bools; the mean is a rate) and continuous ones.
    The interval is a normal (Wald) interval around the estimate.

    Args:
        values: one value per sampled unit.
        inclusion_probs: each unit's probability of having been sampled, in (0, 1].
        strata: one stratum label per unit, for a per-stratum breakdown and, with
            ``stratum_sizes``, a post-stratified estimate.
        method: ``hajek`` (ratio of weighted sums) or ``ht`` (Horvitz-Thompson, which
            needs ``population_size`` or ``stratum_sizes``).
        population_size: the window size N, when known.
        stratum_sizes: full-traffic count of every stratum, when known.
        confidence: confidence level of the interval.
        fpc: apply the finite-population correction (see the module docstring).

    Returns:
        The estimate, its standard error and interval.

    Raises:
        ValueError: lengths differ, no units, a probability outside (0, 1], a
            non-finite value, HT without a size, or a stratum that cannot be estimated.
    """
    y = np.asarray(values, dtype=np.float64)
    p = np.asarray(inclusion_probs, dtype=np.float64)
    if y.ndim != 1 or y.shape != p.shape:
        raise ValueError(f"values ({y.shape}) and inclusion_probs ({p.shape}) must be 1-D, equal")
    if y.size == 0:
        raise ValueError("no sampled units to estimate from")
    if not (np.all(p > 0) and np.all(p <= 1)):
        raise ValueError("inclusion probabilities must lie in (0, 1]")
    if not np.all(np.isfinite(y)):
        raise ValueError("values must be finite numbers")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)

    if strata is None:
        if stratum_sizes is not None:
            raise ValueError("stratum_sizes needs strata (one label per unit)")
        if method == "ht" and population_size is None:
            raise ValueError("the Horvitz-Thompson estimator needs population_size (N)")
        sizes = None if population_size is None else np.array([float(population_size)])
        [overall] = _estimates(y, p, None, 1, method, sizes, z, confidence, fpc)
        return overall

    labels = np.asarray(strata, dtype=np.str_)
    if labels.shape != y.shape:
        raise ValueError(f"strata has {labels.size} labels for {y.size} values")
    names, index = _factorize(labels)
    if stratum_sizes is None:
        if method == "ht":
            raise ValueError("a stratified Horvitz-Thompson estimate needs stratum_sizes")
        given = None if population_size is None else np.array([float(population_size)])
        [overall] = _estimates(y, p, None, 1, "hajek", given, z, confidence, fpc)
        parts = _estimates(y, p, index, len(names), "hajek", None, z, confidence, fpc)
        return replace(overall, by_stratum=dict(zip(names, parts, strict=True)))

    unknown = [name for name in names if name not in stratum_sizes]
    if unknown:
        raise ValueError(f"strata {unknown} have sampled units but no stratum_sizes entry")
    for name, size in stratum_sizes.items():
        if size > 0 and name not in names:
            raise ValueError(
                f"stratum {name!r} has {size:g} units in the window but none sampled; "
                "its mean cannot be estimated (merge it into another stratum)"
            )
    sizes = np.array([float(stratum_sizes[name]) for name in names])
    parts = _estimates(y, p, index, len(names), method, sizes, z, confidence, fpc)
    total = float(sum(size for size in stratum_sizes.values() if size > 0))
    shares = sizes / total
    estimate = float(shares @ np.array([part.estimate for part in parts]))
    # A stratum without a standard error (one unit, not a census) leaves the whole
    # estimate without one: NaN propagates rather than counting it as exact.
    se = math.sqrt(float(np.sum(shares**2 * np.array([part.se for part in parts]) ** 2)))
    w = 1 / p
    return WeightedEstimate(
        estimate=estimate,
        se=se,
        low=estimate - z * se,
        high=estimate + z * se,
        n=int(y.size),
        n_eff=float(w.sum() ** 2 / np.sum(w**2)),
        population_size=total,
        method=method,
        confidence=confidence,
        stratified=True,
        by_stratum=dict(zip(names, parts, strict=True)),
    )


def unweighted_estimate(values: npt.ArrayLike, *, confidence: float = 0.95) -> WeightedEstimate:
    """The plain sample mean with its i.i.d. standard error ``s / sqrt(n)``.

    This is what a dashboard shows when it ignores the sampling design; it is biased
    whenever rates differ between groups of different quality.
    """
    y = np.asarray(values, dtype=np.float64)
    if y.ndim != 1 or y.size == 0:
        raise ValueError("values must be a non-empty 1-D sequence")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    mean = float(y.mean())
    se = float(y.std(ddof=1) / math.sqrt(y.size)) if y.size > 1 else math.nan
    return WeightedEstimate(
        estimate=mean,
        se=se,
        low=mean - z * se,
        high=mean + z * se,
        n=int(y.size),
        n_eff=float(y.size),
        population_size=float(y.size),
        method="unweighted",
        confidence=confidence,
    )


def _factorize(labels: npt.NDArray[np.str_]) -> tuple[list[str], npt.NDArray[np.intp]]:
    """The distinct labels, sorted, and each unit's position among them."""
    # A window has a handful of strata: one vectorised comparison per stratum is several
    # times faster than np.unique, which sorts the strings. Many strata fall back to it.
    index = np.zeros(labels.size, dtype=np.intp)
    found: list[str] = []
    left = np.ones(labels.size, dtype=bool)
    while left.any():
        if len(found) == 32:
            names, inverse = np.unique(labels, return_inverse=True)
            return [str(name) for name in names], inverse.astype(np.intp).reshape(-1)
        name = labels[int(np.argmax(left))]
        hit = labels == name
        index[hit] = len(found)
        found.append(str(name))
        left &= ~hit
    order = sorted(range(len(found)), key=found.__getitem__)
    rank = np.empty(len(found), dtype=np.intp)
    rank[order] = np.arange(len(found))
    return [found[k] for k in order], rank[index]


def _sums(values: FloatArray, index: npt.NDArray[np.intp] | None, groups: int) -> FloatArray:
    if index is None:
        return np.array([values.sum()])
    return np.bincount(index, weights=values, minlength=groups).astype(np.float64)


def _estimates(
    y: FloatArray,
    p: FloatArray,
    index: npt.NDArray[np.intp] | None,
    groups: int,
    method: Literal["hajek", "ht"],
    sizes: FloatArray | None,
    z: float,
    confidence: float,
    fpc: bool,
) -> list[WeightedEstimate]:
    """One estimate per group (``index`` numbers each unit's group; None: one group)."""
    w = 1 / p
    shrink = (1 - p) if fpc else np.ones_like(p)
    count = _sums(np.ones_like(p), index, groups)
    w_sum = _sums(w, index, groups)
    w2_sum = _sums(w**2, index, groups)
    wy_sum = _sums(w * y, index, groups)
    if method == "ht":
        assert sizes is not None  # checked by the caller
        mean = wy_sum / sizes
        variance = _sums(shrink * w**2 * y**2, index, groups) / sizes**2
        population = sizes
    else:
        mean = wy_sum / w_sum
        residual = y - (mean[index] if index is not None else mean[0])
        variance = _sums(shrink * w**2 * residual**2, index, groups) / w_sum**2
        population = sizes if sizes is not None else w_sum
    # One unit gives no spread to estimate from, unless it was taken with certainty and
    # the question is about the window itself.
    census = _sums((p < 1).astype(np.float64), index, groups) == 0
    defined = (count > 1) | (census & fpc)
    se = np.where(defined, np.sqrt(variance), np.nan)
    return [
        WeightedEstimate(
            estimate=float(mean[k]),
            se=float(se[k]),
            low=float(mean[k] - z * se[k]),
            high=float(mean[k] + z * se[k]),
            n=int(count[k]),
            n_eff=float(w_sum[k] ** 2 / w2_sum[k]),
            population_size=float(population[k]),
            method=method,
            confidence=confidence,
        )
        for k in range(groups)
    ]


@dataclass(frozen=True)
class WindowEstimate:
    """One score's mean over a window (or one cohort of it), weighted and not."""

    name: str
    """Score name."""
    group: str | None
    """Value of the ``by`` tag (``(none)`` for scores without it), or None for the whole
    window."""
    n: int
    """Scores used."""
    weighted: WeightedEstimate
    """Hájek estimate with weights ``1 / inclusion_prob``: what the whole window scores;
    for the whole-window row with a census, the post-stratified estimate."""
    unweighted: WeightedEstimate
    """Plain mean of the sampled scores, for comparison; biased when rates differ."""


MISSING_GROUP = "(none)"
"""Group of the scores that lack the ``by`` tag."""


def window_estimates(
    scores: Iterable[Score],
    by: str | None = None,
    *,
    census: Mapping[str, float] | None = None,
    confidence: float = 0.95,
    fpc: bool = True,
) -> list[WindowEstimate]:
    """Weighted and unweighted means of each score name over a window.

    Scores are weighted by ``1 / inclusion_prob``, with a missing probability counting as
    1 (the score ran on every conversation). Categorical scores have no mean and are
    skipped. Turn-level scores count as units of their own; their standard error ignores
    that turns of one conversation are alike, so it is too small when there are many.

    Args:
        scores: the window's scores.
        by: a tag key to break each score down by (``language``, ``vertical``, ...); the
            whole window gets a row of its own too.
        census: with ``by``, the number of conversations in the window with each value of
            the tag (known from full-traffic logs): the whole-window row is then the
            post-stratified estimate, each group weighted by its known size.
        confidence: confidence level of the intervals.
        fpc: apply the finite-population correction (see :func:`weighted_estimate`).

    Returns:
        One entry per (score name, group), sorted by name, the whole window first.

    Raises:
        ValueError: a census without ``by``, or one that misses a sampled group.
    """
    if census is not None and by is None:
        raise ValueError("a census gives the size of each group of a tag: pass by= too")
    grouped: dict[tuple[str, str | None], tuple[list[float], list[float]]] = defaultdict(
        lambda: ([], [])
    )
    groups: dict[str, list[str]] = defaultdict(list)
    for score in scores:
        value = score.numeric
        if value is None:
            continue
        prob = score.inclusion_prob if score.inclusion_prob is not None else 1.0
        keys: list[str | None] = [None]
        if by is not None:
            group = score.tags.get(by, MISSING_GROUP)
            keys.append(group)
            groups[score.name].append(group)
        for key in keys:
            values, probs = grouped[(score.name, key)]
            values.append(value)
            probs.append(prob)
    out: list[WindowEstimate] = []
    for (name, which), (values, probs) in sorted(
        grouped.items(), key=lambda item: (item[0][0], item[0][1] is not None, item[0][1] or "")
    ):
        if which is None and census is not None:
            weighted = weighted_estimate(
                values,
                probs,
                strata=groups[name],
                stratum_sizes=census,
                confidence=confidence,
                fpc=fpc,
            )
            weighted = replace(weighted, by_stratum={})
        else:
            weighted = weighted_estimate(values, probs, confidence=confidence, fpc=fpc)
        out.append(
            WindowEstimate(
                name=name,
                group=which,
                n=len(values),
                weighted=weighted,
                unweighted=unweighted_estimate(values, confidence=confidence),
            )
        )
    return out


class Census(RootModel[dict[str, NonNegativeFloat]]):
    """Known sizes of a tag's groups in a window, from full-traffic logs.

    A YAML or JSON mapping from each value of the tag to its number of conversations,
    e.g. ``{en: 41230, de: 9120, fr: 3050}``. With it, the whole-window estimate weighs
    each group by its known size (post-stratification) rather than by its sample.
    """

    model_config = ConfigDict(allow_inf_nan=False)

    root: dict[str, NonNegativeFloat] = Field(min_length=1)


def load_census(path: str | os.PathLike[str]) -> dict[str, float]:
    """Load a census file (``convsim schema census``).

    Raises:
        ConfigError: naming the file and the group whose size is not a number >= 0.
    """
    return dict(load_yaml_model(path, Census, "census", "census").root)
