"""What each judge's scores say about the truth, once humans labelled some of them.

A judge's raw pass rate is biased by its errors. With human labels on a sample of the
judged items, two estimators correct it:

- **prediction-powered inference** (:func:`~convsim.stats.ppi_estimate`), reported first:
  the judge's mean on the items nobody labelled plus the mean human-minus-judge
  difference on the labelled ones. Unbiased whatever the judge's error pattern, and the
  tighter of the two;
- **Rogan-Gladen** (binary judges): the judge's pass rate on the unlabelled items,
  corrected with the TPR and TNR measured on the labelled ones.

Neither reuses a labelled item in its judge-only part, so the two parts' errors are
independent, as their intervals assume. Both assume the labelled items are a random
sample of the judged ones, or one within each stratum of a tag (``strata``: labels drawn
50/50 from cohorts that are 80/20 of traffic), and both weigh every item by its
judged-sample weight (1 / ``inclusion_prob``) and every stratum by its share.

This is the code path of ``convsim grade --labels`` and ``convsim online --labels``.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ..trace import Score, ScoreKind
from ._calibration import CorrectedPassRate, corrected_pass_rate
from ._ppi import PPIEstimate, ppi_estimate

MISSING_STRATUM = "(none)"
"""Stratum of a judged item whose conversation lacks the strata tag."""


@dataclass(frozen=True)
class JudgeRate:
    """One judge's corrected mean (a pass rate for binary judges)."""

    name: str
    """Score (rubric) name."""
    judge_model: str | None
    """Judge model, as recorded on its scores."""
    kind: ScoreKind
    """Score kind."""
    n_judged: int
    """Items the judge scored."""
    n_labelled: int
    """Of those, items with a usable human label."""
    judge_mean: float
    """The judge's own (weighted) mean over all its items: the uncorrected estimate."""
    ppi: PPIEstimate | None
    """Prediction-powered estimate; None when it cannot be computed (see ``reason``)."""
    rogan_gladen: CorrectedPassRate | None = None
    """Binary judges: the pass rate corrected with the measured TPR and TNR (None when
    every judged item is labelled: the labels are then the answer)."""
    strata: str | None = None
    """Tag the labels were drawn within, when given."""
    reason: str | None = None
    """Why ``ppi`` is None."""


@dataclass(frozen=True)
class UnmatchedLabels:
    """Human labels that did not join a judged item: counted and named, never silent."""

    count: int = 0
    """Labels whose (conversation, score name, message) no judge scored."""
    names: Mapping[str, int] = field(default_factory=dict)
    """Label names that no judge score carries, with their label counts."""
    suggestions: Mapping[str, str] = field(default_factory=dict)
    """For such a name, the closest judged score name (``goal_completion`` ->
    ``rubric.goal_completion``)."""


_Key = tuple[str, str, int | None]


def judge_rates(
    scores: Iterable[Score],
    labels: Iterable[Score],
    *,
    strata: str | None = None,
    stratum_sizes: Mapping[str, float] | None = None,
    confidence: float = 0.95,
) -> tuple[list[JudgeRate], UnmatchedLabels]:
    """Correct every model judge's mean with the human labels that match its items.

    Judge scores (``source="model"``) are grouped by (name, judge model, kind) and joined
    to human labels (``source="human"``, same kind) on (conversation id, name, message
    index); labels that disagree with each other on an item are set aside; the last judge
    score of an item counts. Categorical judges have no mean and are skipped.

    Args:
        scores: Scores that include the judge scores.
        labels: Scores that include the human labels.
        strata: A tag of the judged conversations within whose values the labelled items
            were drawn at random (default: labels are a random sample of all judged items).
        stratum_sizes: Known number of conversations per value of ``strata``.
        confidence: Coverage of the intervals.

    Returns:
        ``(one rate per judge, the labels that matched nothing)``.
    """
    judged: dict[tuple[str, str | None, ScoreKind], dict[_Key, Score]] = defaultdict(dict)
    for s in scores:
        if s.source == "model":
            key = (s.conversation_id, s.name, s.message_index)
            judged[(s.name, s.judge_model, s.kind)][key] = s
    human: dict[_Key, list[Score]] = defaultdict(list)
    for s in labels:
        if s.source == "human":
            human[(s.conversation_id, s.name, s.message_index)].append(s)
    out = [
        _rate(group, items, human, strata, stratum_sizes, confidence)
        for group, items in sorted(judged.items(), key=lambda g: (g[0][0], g[0][1] or "", g[0][2]))
        if group[2] != "categorical"
    ]
    return out, _unmatched(judged, human)


def _rate(
    group: tuple[str, str | None, ScoreKind],
    items: Mapping[_Key, Score],
    human: Mapping[_Key, list[Score]],
    strata: str | None,
    stratum_sizes: Mapping[str, float] | None,
    confidence: float,
) -> JudgeRate:
    name, model, kind = group
    f = np.asarray([_number(s) for s in items.values()])
    w = np.asarray([1.0 / (s.inclusion_prob or 1.0) for s in items.values()])
    y = np.full(f.size, np.nan)
    for i, key in enumerate(items):
        same = {_number(h) for h in human.get(key, []) if h.kind == kind}
        if len(same) == 1:
            y[i] = same.pop()
    tags = (
        [s.tags.get(strata, MISSING_STRATUM) for s in items.values()]
        if strata is not None
        else None
    )
    ppi: PPIEstimate | None = None
    reason: str | None = None
    try:
        ppi = ppi_estimate(
            f,
            y,
            weights=w,
            strata=tags,
            stratum_sizes=dict(stratum_sizes) if stratum_sizes is not None else None,
            confidence=confidence,
        )
    except ValueError as e:
        reason = str(e)
    unlabelled = bool((~np.isfinite(y)).any())
    rg = None
    if kind == "binary" and ppi is not None and unlabelled:
        rg = _rogan_gladen(f, y, w, tags, confidence)
    return JudgeRate(
        name=name,
        judge_model=model,
        kind=kind,
        n_judged=int(f.size),
        n_labelled=int(np.isfinite(y).sum()),
        judge_mean=float(w @ f / w.sum()),
        ppi=ppi,
        rogan_gladen=rg,
        strata=strata,
        reason=reason,
    )


def _rogan_gladen(
    f: NDArray[np.float64],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    tags: list[str] | None,
    confidence: float,
    draws: int = 10_000,
    seed: int = 0,
) -> CorrectedPassRate:
    """Rogan-Gladen from the unlabelled items' pass rate and the labelled items' TPR/TNR.

    With strata each gets its own correction (a judge's errors differ between cohorts,
    and one pooled TPR/TNR would not undo them), and the corrections combine with the
    strata's shares of the judged items. The interval is :func:`corrected_pass_rate`'s
    simulation, per stratum, with Jeffreys draws of every rate on its Kish effective
    count and Dirichlet draws of the shares.
    """
    lab = np.isfinite(y)
    u = ~lab
    codes = np.zeros(f.size, dtype=np.int64)
    if tags is not None:
        codes = np.unique(np.asarray(tags), return_inverse=True)[1].astype(np.int64)
    k = int(codes.max()) + 1
    rates: list[tuple[float, int, float, int, float, int]] = []
    for h in range(k):
        in_h = codes == h
        uh, pos, neg = u & in_h, lab & in_h & (y == 1.0), lab & in_h & (y == 0.0)
        p_obs = float(w[uh] @ f[uh] / w[uh].sum()) if uh.any() else 0.0
        tpr = float(w[pos] @ f[pos] / w[pos].sum()) if pos.any() else 0.0
        tnr = float(w[neg] @ (1.0 - f[neg]) / w[neg].sum()) if neg.any() else 0.0
        rates.append((p_obs, _kish(w[uh]), tpr, _kish(w[pos]), tnr, _kish(w[neg])))
    if k == 1:
        p, n, tpr, n_pos, tnr, n_neg = rates[0]
        return corrected_pass_rate(p, n, tpr, tnr, n_pos, n_neg, confidence)
    parts = [corrected_pass_rate(p, n, a, b, na, nb, confidence) for p, n, a, na, b, nb in rates]
    w_h = np.bincount(codes, weights=w, minlength=k)
    share = w_h / w_h.sum()
    naive = float(w[u] @ f[u] / w[u].sum())
    youden = float(share @ np.asarray([r[2] + r[4] - 1.0 for r in rates]))
    undefined = [p.reason for p in parts if p.estimate is None]
    if undefined:
        return CorrectedPassRate(
            estimate=None,
            low=None,
            high=None,
            naive=naive,
            youden=youden,
            confidence=confidence,
            method="simulation",
            reason=f"in one stratum: {undefined[0]}",
        )
    est = float(share @ np.asarray([p.estimate for p in parts]))
    rng = np.random.default_rng(seed)
    theta = np.zeros((draws, k))
    for h, (p, n, tpr, n_pos, tnr, n_neg) in enumerate(rates):
        p_s = rng.beta(p * n + 0.5, n - p * n + 0.5, draws)
        a_s = rng.beta(tpr * n_pos + 0.5, n_pos - tpr * n_pos + 0.5, draws)
        b_s = rng.beta(tnr * n_neg + 0.5, n_neg - tnr * n_neg + 0.5, draws)
        j = a_s + b_s - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            theta[:, h] = np.where(j > 0, np.clip((p_s + b_s - 1.0) / j, 0.0, 1.0), np.nan)
    counts = np.bincount(codes, minlength=k).astype(float)
    shares = rng.dirichlet(counts + 0.5, draws)
    combined = (shares * theta).sum(axis=1)
    ok = np.isfinite(combined)
    tail = (1.0 - confidence) / 2.0
    if 1.0 - ok.mean() > tail / 2.0:
        low, high, reason = 0.0, 1.0, "the labels cannot tell this judge from chance in a stratum"
    else:
        lo_q, hi_q = np.quantile(combined[ok], [tail, 1.0 - tail])
        low, high, reason = float(lo_q), float(hi_q), None
    return CorrectedPassRate(
        estimate=est,
        low=low,
        high=high,
        naive=naive,
        youden=youden,
        confidence=confidence,
        method="simulation",
        clipped=any(p.clipped for p in parts),
        reason=reason,
    )


def _kish(w: NDArray[np.float64]) -> int:
    """Effective sample size of weighted items, ``(sum w)^2 / sum w^2``, rounded."""
    if w.size == 0:
        return 0
    return max(1, round(float(w.sum() ** 2 / (w * w).sum())))


def _number(s: Score) -> float:
    v = s.value
    return float(v) if not isinstance(v, str) else float("nan")


def _unmatched(
    judged: Mapping[tuple[str, str | None, ScoreKind], Mapping[_Key, Score]],
    human: Mapping[_Key, list[Score]],
) -> UnmatchedLabels:
    keys = {k for items in judged.values() for k in items}
    judged_names = sorted({g[0] for g in judged})
    count = 0
    names: dict[str, int] = defaultdict(int)
    for key, found in human.items():
        if key in keys:
            continue
        count += len(found)
        if key[1] not in judged_names:
            names[key[1]] += len(found)
    suggestions: dict[str, str] = {}
    for name in names:
        close = difflib.get_close_matches(name, judged_names, n=1, cutoff=0.6)
        prefixed = f"rubric.{name}"
        if prefixed in judged_names:
            suggestions[name] = prefixed
        elif close:
            suggestions[name] = close[0]
    return UnmatchedLabels(count=count, names=dict(names), suggestions=suggestions)
