"""Judge calibration: agreement of a model judge with human labels, and corrected rates.

A judge is an instrument. Before its pass rate means anything it has to be measured on
items a human also labelled:

- binary rubrics: TPR (the judge says pass when the human says pass), TNR (the judge says
  fail when the human says fail) and Cohen's kappa. Raw agreement alone hides a lenient
  judge on a mostly-passing set, so TPR and TNR are reported separately.
- ordinal rubrics (1-5): weighted kappa, which counts a 4-vs-5 disagreement as less wrong
  than a 1-vs-5 one.
- categorical rubrics: Cohen's kappa.

With TPR and TNR known, a judged pass rate can be corrected for the judge's errors
(:func:`corrected_pass_rate`, the Rogan-Gladen estimator), or, when some items of the same
population carry human labels, estimated without any assumption about the judge
(:func:`ppi_mean`, prediction-powered inference).

Metrics never raise on degenerate data (every label the same, no items): an undefined
value is None and its ``reason`` says why. Invalid input (unequal lengths, a label outside
the given categories, a rate above 1) does raise :class:`ValueError`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

from ..trace import Score, ScoreKind

MIN_LABELS = 30
"""Human labels a judge needs before :func:`calibrate` calls it calibrated."""

KappaWeights = Literal["quadratic", "linear"]
"""Disagreement weights of weighted kappa: squared or absolute distance between categories."""

IntervalMethod = Literal["simulation", "delta"]
"""How :func:`corrected_pass_rate` builds its interval."""

Label = bool | float | str
"""A score value as :class:`~convsim.trace.Score` holds it."""


@dataclass(frozen=True)
class Estimate:
    """One agreement metric, or why it could not be computed."""

    value: float | None
    """The metric; None when undefined for this data (see ``reason``)."""
    n: int
    """Items it was computed from (for TPR: human-labelled passes; for TNR: failures)."""
    low: float | None = None
    """Lower bound of its interval, when it has one."""
    high: float | None = None
    """Upper bound of its interval, when it has one."""
    reason: str | None = None
    """Why ``value`` is None."""

    @property
    def defined(self) -> bool:
        """Whether the metric has a value."""
        return self.value is not None


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion.

    Unlike the Wald interval it stays inside [0, 1] and keeps a non-zero width at 0 or n
    successes, which matters for judges that were perfect on a small labelled set.

    Args:
        successes: Successes, ``0 <= successes <= n``.
        n: Trials, at least 1.
        confidence: Coverage, in (0, 1).

    Returns:
        ``(low, high)``.

    Raises:
        ValueError: On counts out of range or an invalid confidence.
    """
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes} of {n}")
    _check_confidence(confidence)
    z = float(sps.norm.ppf(0.5 + confidence / 2.0))
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n))
    # At 0 or n successes the bound is exactly 0 or 1; set it so rounding cannot move it.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")


def _proportion(successes: int, n: int, confidence: float, undefined: str) -> Estimate:
    if n == 0:
        return Estimate(value=None, n=0, reason=undefined)
    low, high = wilson_interval(successes, n, confidence)
    return Estimate(value=successes / n, n=n, low=low, high=high)


def _check_pairs(judge: Sequence[object], human: Sequence[object]) -> None:
    if len(judge) != len(human):
        raise ValueError(
            f"judge and human labels must pair up: {len(judge)} judge vs {len(human)} human"
        )


def _counts(
    judge: Sequence[Hashable], human: Sequence[Hashable], categories: Sequence[Hashable]
) -> list[list[int]]:
    """Confusion counts, judge category by row and human category by column."""
    index = {c: i for i, c in enumerate(categories)}
    if len(index) != len(categories):
        raise ValueError(f"categories must be distinct, got {list(categories)!r}")
    table = [[0] * len(categories) for _ in categories]
    for j, h in zip(judge, human, strict=True):
        for rater, label in (("judge", j), ("human", h)):
            if label not in index:
                raise ValueError(
                    f"{rater} label {label!r} is not one of the categories {list(categories)!r}"
                )
        table[index[j]][index[h]] += 1
    return table


def _kappa_from_table(table: list[list[int]], weights: list[list[int]]) -> Estimate:
    """Kappa with disagreement weights (zero on the diagonal), in exact integer arithmetic.

    kappa_w = 1 - sum(w * observed) / sum(w * expected), with expected = outer product of
    the marginals. Working in counts (observed * n, expected * n**2) keeps it exact, so
    perfect agreement gives exactly 1 and the value never leaves [-1, 1] by rounding.
    """
    n = sum(map(sum, table))
    if n == 0:
        return Estimate(value=None, n=0, reason="no paired labels")
    k = len(table)
    rows = [sum(r) for r in table]
    cols = [sum(table[i][j] for i in range(k)) for j in range(k)]
    observed = sum(weights[i][j] * table[i][j] for i in range(k) for j in range(k))
    expected = sum(weights[i][j] * rows[i] * cols[j] for i in range(k) for j in range(k))
    if expected == 0:
        used = sorted({i for i in range(k) if rows[i] or cols[i]})
        return Estimate(
            value=None,
            n=n,
            reason=(
                "chance agreement is total: both raters gave every item the same label "
                f"({len(used)} label{'s' if len(used) != 1 else ''} used), so kappa is undefined"
            ),
        )
    return Estimate(value=1.0 - (n * observed) / expected, n=n)


def cohen_kappa(
    judge: Sequence[Hashable],
    human: Sequence[Hashable],
    categories: Sequence[Hashable] | None = None,
) -> Estimate:
    """Unweighted Cohen's kappa: agreement beyond what the two raters' label rates predict.

    Args:
        judge: Judge labels.
        human: Human labels of the same items, in the same order.
        categories: All possible labels; default the labels seen. Unused categories do not
            change unweighted kappa.

    Returns:
        Kappa in [-1, 1], or None with a reason when there are no items or both raters used
        a single, identical label throughout (chance agreement 1).

    Raises:
        ValueError: On unequal lengths or a label outside ``categories``.
    """
    _check_pairs(judge, human)
    cats = list(dict.fromkeys([*judge, *human])) if categories is None else list(categories)
    table = _counts(judge, human, cats)
    k = len(cats)
    weights = [[0 if i == j else 1 for j in range(k)] for i in range(k)]
    return _kappa_from_table(table, weights)


def weighted_kappa(
    judge: Sequence[Hashable],
    human: Sequence[Hashable],
    categories: Sequence[Hashable],
    weights: KappaWeights = "quadratic",
) -> Estimate:
    """Weighted kappa for ordinal labels (Cohen 1968).

    A disagreement between categories ``i`` and ``j`` (positions in ``categories``) costs
    ``(i - j)**2`` (quadratic) or ``|i - j|`` (linear). Quadratic weighted kappa is close to
    the intraclass correlation and is the usual choice for 1-5 rubrics.

    Args:
        judge: Judge labels.
        human: Human labels of the same items, in the same order.
        categories: Every category in scale order, including ones nobody used: the
            distances depend on positions, so a gap in the scale must still be listed.
        weights: ``quadratic`` or ``linear``.

    Returns:
        Weighted kappa in [-1, 1], or None with a reason when there are no items, fewer than
        two categories, or both raters used one identical label throughout.

    Raises:
        ValueError: On unequal lengths, a label outside ``categories`` or unknown weights.
    """
    _check_pairs(judge, human)
    if weights not in ("quadratic", "linear"):
        raise ValueError(f"weights must be 'quadratic' or 'linear', got {weights!r}")
    cats = list(categories)
    table = _counts(judge, human, cats)
    if len(cats) < 2:
        return Estimate(
            value=None, n=len(judge), reason="weighted kappa needs at least two categories"
        )
    power = 2 if weights == "quadratic" else 1
    k = len(cats)
    w = [[abs(i - j) ** power for j in range(k)] for i in range(k)]
    return _kappa_from_table(table, w)


@dataclass(frozen=True)
class BinaryAgreement:
    """A pass/fail judge against human labels; "positive" means pass."""

    tp: int
    """Judge pass, human pass."""
    fn: int
    """Judge fail, human pass."""
    fp: int
    """Judge pass, human fail."""
    tn: int
    """Judge fail, human fail."""
    tpr: Estimate
    """Sensitivity: share of human passes the judge also passed (Wilson interval)."""
    tnr: Estimate
    """Specificity: share of human failures the judge also failed (Wilson interval)."""
    accuracy: Estimate
    """Share of items where judge and human agree (Wilson interval)."""
    kappa: Estimate
    """Cohen's kappa."""

    @property
    def n(self) -> int:
        """Paired items."""
        return self.tp + self.fn + self.fp + self.tn

    @property
    def n_pos(self) -> int:
        """Items the human passed."""
        return self.tp + self.fn

    @property
    def n_neg(self) -> int:
        """Items the human failed."""
        return self.fp + self.tn

    @property
    def judge_pass_rate(self) -> float | None:
        """Share of items the judge passed; None without items."""
        return (self.tp + self.fp) / self.n if self.n else None

    @property
    def human_pass_rate(self) -> float | None:
        """Share of items the human passed; None without items."""
        return self.n_pos / self.n if self.n else None


def _check_bools(values: Sequence[object], who: str) -> None:
    for i, v in enumerate(values):
        if not isinstance(v, bool | np.bool_):
            raise ValueError(f"{who} label {i} must be True or False, got {v!r}")


def binary_agreement(
    judge: Sequence[bool], human: Sequence[bool], confidence: float = 0.95
) -> BinaryAgreement:
    """TPR, TNR, accuracy and Cohen's kappa of a pass/fail judge against human labels.

    Args:
        judge: Judge verdicts (True = pass).
        human: Human verdicts of the same items, in the same order.
        confidence: Coverage of the Wilson intervals.

    Returns:
        The 2x2 counts and metrics. TPR is None when no item was a human pass, TNR when
        none was a human failure; kappa when both raters gave one identical verdict.

    Raises:
        ValueError: On unequal lengths or non-boolean labels.
    """
    _check_pairs(judge, human)
    _check_bools(judge, "judge")
    _check_bools(human, "human")
    _check_confidence(confidence)
    tp = fn = fp = tn = 0
    for j, h in zip(judge, human, strict=True):
        if h:
            tp += bool(j)
            fn += not j
        else:
            fp += bool(j)
            tn += not j
    n = tp + fn + fp + tn
    return BinaryAgreement(
        tp=tp,
        fn=fn,
        fp=fp,
        tn=tn,
        tpr=_proportion(tp, tp + fn, confidence, "no human-labelled passes, so TPR is undefined"),
        tnr=_proportion(tn, fp + tn, confidence, "no human-labelled failures, so TNR is undefined"),
        accuracy=_proportion(tp + tn, n, confidence, "no paired labels"),
        kappa=cohen_kappa(
            [bool(v) for v in judge], [bool(v) for v in human], categories=[True, False]
        ),
    )


@dataclass(frozen=True)
class CorrectedPassRate:
    """A judged pass rate corrected for the judge's known errors (Rogan-Gladen)."""

    estimate: float | None
    """Corrected pass rate, clipped to [0, 1]; None when the correction is undefined."""
    low: float | None
    """Lower interval bound."""
    high: float | None
    """Upper interval bound."""
    naive: float
    """The uncorrected judge pass rate."""
    youden: float
    """TPR + TNR - 1: 0 for a judge no better than chance, 1 for a perfect one."""
    confidence: float
    """Coverage of the interval."""
    method: IntervalMethod
    """How the interval was built."""
    clipped: bool = False
    """Whether the raw estimate fell outside [0, 1] and was clipped."""
    reason: str | None = None
    """Why ``estimate`` is None, or why the interval is only the full [0, 1] range."""


def _check_rate(value: float, name: str) -> None:
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise ValueError(f"{name} must be between 0 and 1, got {value}")


def _check_count(value: int, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def rogan_gladen(judge_pass_rate: float, tpr: float, tnr: float) -> float | None:
    """The Rogan-Gladen estimate (p_obs + TNR - 1) / (TPR + TNR - 1), unclipped.

    Args:
        judge_pass_rate: Share of items the judge passed.
        tpr: Judge sensitivity.
        tnr: Judge specificity.

    Returns:
        The corrected rate (it can leave [0, 1] through sampling noise), or None when
        ``tpr + tnr <= 1``: such a judge carries no information about the true rate.
    """
    youden = tpr + tnr - 1.0
    if youden <= 0.0:
        return None
    return (judge_pass_rate + tnr - 1.0) / youden


def corrected_pass_rate(
    judge_pass_rate: float,
    n_judged: int,
    tpr: float,
    tnr: float,
    n_pos: int,
    n_neg: int,
    confidence: float = 0.95,
    *,
    method: IntervalMethod = "simulation",
    draws: int = 10_000,
    seed: int = 0,
) -> CorrectedPassRate:
    """Correct a judge's pass rate for its measured TPR and TNR (Rogan-Gladen).

    A judge that passes a failing item with probability ``1 - TNR`` and fails a passing one
    with probability ``1 - TPR`` reports ``p_obs = TPR * p + (1 - TNR) * (1 - p)`` on
    average; solving for the true rate ``p`` gives
    ``p = (p_obs + TNR - 1) / (TPR + TNR - 1)``. The estimate is clipped to [0, 1].

    The interval accounts for the sampling error of all three inputs, treated as
    independent binomial proportions (``p_obs`` from ``n_judged`` items, TPR from ``n_pos``
    human passes, TNR from ``n_neg`` human failures; the labelled items must not be reused
    as part of ``n_judged``):

    - ``simulation`` (default): each proportion is drawn from its Jeffreys distribution
      ``Beta(x + 1/2, n - x + 1/2)`` (``draws`` times, seeded), the correction is applied to
      every draw and the percentile interval is taken. Unlike resampling at the point
      estimates, this does not collapse to zero width when the judge was perfect on the
      labelled set, and it follows the skew of the ratio when TPR + TNR - 1 is small. Draws
      with TPR + TNR <= 1 have no correction and are dropped; when they are more than half
      the allowed tail mass the data cannot bound the rate and the interval is [0, 1].
    - ``delta``: first-order delta method,
      ``Var = [Var(p_obs) + p**2 Var(TPR) + (1 - p)**2 Var(TNR)] / (TPR + TNR - 1)**2``, a
      normal interval clipped to [0, 1]. Deterministic, but too narrow when a proportion is
      0 or 1 or the label counts are small.

    Args:
        judge_pass_rate: Share of the judged items the judge passed.
        n_judged: Items behind ``judge_pass_rate``.
        tpr: Judge sensitivity measured on human labels.
        tnr: Judge specificity measured on human labels.
        n_pos: Human-labelled passes behind ``tpr``.
        n_neg: Human-labelled failures behind ``tnr``.
        confidence: Coverage of the interval.
        method: ``simulation`` or ``delta``.
        draws: Monte Carlo draws for ``simulation``.
        seed: Seed for ``simulation``.

    Returns:
        The corrected rate with its interval, or an estimate of None with a reason when the
        judge is no better than chance (TPR + TNR <= 1) or a count is 0.

    Raises:
        ValueError: On rates outside [0, 1], negative counts or invalid options.
    """
    _check_rate(judge_pass_rate, "judge_pass_rate")
    _check_rate(tpr, "tpr")
    _check_rate(tnr, "tnr")
    for value, name in ((n_judged, "n_judged"), (n_pos, "n_pos"), (n_neg, "n_neg")):
        _check_count(value, name)
    _check_confidence(confidence)
    if method not in ("simulation", "delta"):
        raise ValueError(f"method must be 'simulation' or 'delta', got {method!r}")
    if not isinstance(draws, int) or draws < 100:
        raise ValueError(f"draws must be an integer of at least 100, got {draws!r}")
    youden = tpr + tnr - 1.0

    def undefined(reason: str) -> CorrectedPassRate:
        return CorrectedPassRate(
            estimate=None,
            low=None,
            high=None,
            naive=judge_pass_rate,
            youden=youden,
            confidence=confidence,
            method=method,
            reason=reason,
        )

    for value, name, what in (
        (n_judged, "n_judged", "judged items"),
        (n_pos, "n_pos", "human-labelled passes to measure TPR on"),
        (n_neg, "n_neg", "human-labelled failures to measure TNR on"),
    ):
        if value == 0:
            return undefined(f"{name} is 0: no {what}")
    raw = rogan_gladen(judge_pass_rate, tpr, tnr)
    if raw is None:
        return undefined(
            f"judge no better than chance: TPR + TNR = {tpr + tnr:.3f} <= 1, so its verdicts "
            "say nothing about the true pass rate and the correction is undefined"
        )
    est = min(1.0, max(0.0, raw))
    reason: str | None = None
    if method == "delta":
        z = float(sps.norm.ppf(0.5 + confidence / 2.0))
        var = (
            judge_pass_rate * (1.0 - judge_pass_rate) / n_judged
            + est**2 * tpr * (1.0 - tpr) / n_pos
            + (1.0 - est) ** 2 * tnr * (1.0 - tnr) / n_neg
        ) / youden**2
        half = z * math.sqrt(var)
        low, high = max(0.0, est - half), min(1.0, est + half)
    else:
        rng = np.random.default_rng(seed)

        def jeffreys(rate: float, n: int) -> np.ndarray:
            x = rate * n
            return rng.beta(x + 0.5, n - x + 0.5, size=draws)

        p_s, r_s, s_s = (
            jeffreys(judge_pass_rate, n_judged),
            jeffreys(tpr, n_pos),
            jeffreys(tnr, n_neg),
        )
        j_s = r_s + s_s - 1.0
        ok = j_s > 0.0
        tail = (1.0 - confidence) / 2.0
        if 1.0 - ok.mean() > tail / 2.0:
            low, high = 0.0, 1.0
            reason = (
                f"{1.0 - ok.mean():.1%} of draws of TPR + TNR fell to 1 or below: the "
                "labels cannot tell this judge from chance, so the interval is [0, 1]"
            )
        else:
            theta = np.clip((p_s[ok] + s_s[ok] - 1.0) / j_s[ok], 0.0, 1.0)
            lo_q, hi_q = np.quantile(theta, [tail, 1.0 - tail])
            low, high = float(lo_q), float(hi_q)
    return CorrectedPassRate(
        estimate=est,
        low=low,
        high=high,
        naive=judge_pass_rate,
        youden=youden,
        confidence=confidence,
        method=method,
        clipped=raw != est,
        reason=reason,
    )


@dataclass(frozen=True)
class CalibrationReport:
    """How one judge (score name x judge model x kind) agrees with human labels.

    ``calibrated`` means the judge has been *measured* on enough human labels for its
    metrics to be defined; it does not mean the judge is good. Read kappa, TPR and TNR.
    """

    name: str
    """Score (rubric) name."""
    judge_model: str | None
    """Judge model, as recorded on its scores."""
    kind: ScoreKind
    """Score kind, which picked the metrics."""
    n_judged: int
    """Items the judge scored."""
    n: int
    """Items with both a judge score and a usable human label."""
    min_labels: int
    """Labels required before the judge counts as calibrated."""
    calibrated: bool
    """Enough labels and every required metric defined."""
    status: str
    """One line for people: ``uncalibrated: only 12 human labels; need 30``."""
    accuracy: Estimate | None = None
    """Exact agreement (binary, ordinal, categorical)."""
    kappa: Estimate | None = None
    """Unweighted Cohen's kappa (binary, ordinal, categorical)."""
    weighted_kappa: Estimate | None = None
    """Quadratic weighted kappa (ordinal only)."""
    binary: BinaryAgreement | None = None
    """2x2 table, TPR and TNR (binary only)."""
    categories: tuple[Label, ...] = ()
    """Categories the kappas were computed over, in order."""
    notes: tuple[str, ...] = ()
    """What was set aside while joining: conflicting labels, repeated judge scores."""

    def correct(
        self, judge_pass_rate: float, n_judged: int, confidence: float = 0.95
    ) -> CorrectedPassRate:
        """Correct a pass rate from this (binary) judge with its measured TPR and TNR.

        Raises:
            ValueError: When this is not a binary judge or no labels were joined.
        """
        if self.binary is None:
            raise ValueError(f"{self.name!r} is not a binary judge with labels to correct from")
        b = self.binary
        return corrected_pass_rate(
            judge_pass_rate,
            n_judged,
            b.tpr.value if b.tpr.value is not None else 0.0,
            b.tnr.value if b.tnr.value is not None else 0.0,
            b.n_pos,
            b.n_neg,
            confidence,
        )


_Key = tuple[str, str, int | None]
_Group = tuple[str, str | None, ScoreKind]


def _ordinal_categories(values: Iterable[float]) -> list[float]:
    """Scale positions for ordinal values: the full integer range when values are whole.

    Weighted kappa charges by position, so a scale point nobody used (no 3 on a 1-5
    scale) must still be there or 2-vs-4 would count as adjacent.
    """
    vals = sorted(set(values))
    if vals and all(v == int(v) for v in vals) and vals[-1] - vals[0] <= 1000:
        return [float(v) for v in range(int(vals[0]), int(vals[-1]) + 1)]
    return vals


def calibrate(
    scores: Iterable[Score],
    labels: Iterable[Score],
    *,
    min_labels: int = MIN_LABELS,
    confidence: float = 0.95,
) -> list[CalibrationReport]:
    """Measure every model judge in ``scores`` against the human labels in ``labels``.

    Judge scores (``source="model"``) are grouped by (name, judge model, kind) and joined to
    human labels (``source="human"``) on (conversation id, name, message index). Scores with
    other sources are ignored. Per item, the last judge score of a group counts (repeats are
    noted); human labels that disagree with each other are set aside (noted), agreeing ones
    count once. Binary judges get TPR, TNR, accuracy and kappa; ordinal ones quadratic
    weighted kappa, kappa and exact agreement; categorical ones kappa and agreement.
    Continuous judges are reported as uncalibrated: threshold them into a binary score to
    calibrate. A judge with no labels at all is reported too, as uncalibrated.

    Args:
        scores: Scores that include the judge scores.
        labels: Scores that include the human labels.
        min_labels: Labels a judge needs to count as calibrated.
        confidence: Coverage of the Wilson intervals.

    Returns:
        One report per judge, sorted by score name, then judge model, then kind.
    """
    if min_labels < 1:
        raise ValueError(f"min_labels must be at least 1, got {min_labels}")
    _check_confidence(confidence)
    judged: dict[_Group, dict[_Key, Label]] = defaultdict(dict)
    repeats: dict[_Group, int] = defaultdict(int)
    for s in scores:
        if s.source != "model":
            continue
        group = (s.name, s.judge_model, s.kind)
        key = (s.conversation_id, s.name, s.message_index)
        repeats[group] += key in judged[group]
        judged[group][key] = s.value
    human: dict[_Key, list[Score]] = defaultdict(list)
    for s in labels:
        if s.source == "human":
            human[(s.conversation_id, s.name, s.message_index)].append(s)

    reports = []
    for group in sorted(judged, key=lambda g: (g[0], g[1] or "", g[2])):
        items = judged[group]
        pairs: list[tuple[Label, Label]] = []
        conflicts = other_kind = 0
        for key, value in items.items():
            found = human.get(key, [])
            same = [h.value for h in found if h.kind == group[2]]
            other_kind += len(found) - len(same)
            if not same:
                continue
            if any(v != same[0] for v in same):
                conflicts += 1
                continue
            pairs.append((value, same[0]))
        notes = []
        if repeats[group]:
            notes.append(f"{repeats[group]} repeated judge scores: the last one per item counts")
        if conflicts:
            notes.append(f"{conflicts} items set aside: their human labels disagree")
        if other_kind:
            notes.append(f"{other_kind} human labels ignored: not {group[2]} like the judge")
        reports.append(_report(group, len(items), pairs, min_labels, confidence, tuple(notes)))
    return reports


def _report(
    group: _Group,
    n_judged: int,
    pairs: list[tuple[Label, Label]],
    min_labels: int,
    confidence: float,
    notes: tuple[str, ...],
) -> CalibrationReport:
    name, model, kind = group
    n = len(pairs)
    judge = [p[0] for p in pairs]
    human = [p[1] for p in pairs]

    def make(
        calibrated: bool,
        status: str,
        accuracy: Estimate | None = None,
        kappa: Estimate | None = None,
        wkappa: Estimate | None = None,
        binary: BinaryAgreement | None = None,
        cats: Sequence[Label] = (),
    ) -> CalibrationReport:
        return CalibrationReport(
            name=name,
            judge_model=model,
            kind=kind,
            n_judged=n_judged,
            n=n,
            min_labels=min_labels,
            calibrated=calibrated,
            status=status,
            accuracy=accuracy,
            kappa=kappa,
            weighted_kappa=wkappa,
            binary=binary,
            categories=tuple(cats),
            notes=notes,
        )

    if kind == "continuous":
        return make(
            False,
            "uncalibrated: no agreement metric for continuous scores; calibrate a "
            "thresholded binary score instead",
        )
    if n == 0:
        return make(False, "uncalibrated: no human labels")

    binary: BinaryAgreement | None = None
    wkappa: Estimate | None = None
    cats: list[Label]
    if kind == "binary":
        binary = binary_agreement(
            [bool(v) for v in judge], [bool(v) for v in human], confidence=confidence
        )
        cats = [True, False]
        kappa, accuracy = binary.kappa, binary.accuracy
        required = {"TPR": binary.tpr, "TNR": binary.tnr, "kappa": kappa}
        summary = (
            f"TPR {_fmt(binary.tpr)}, TNR {_fmt(binary.tnr)}, kappa {_fmt(kappa)}, "
            f"accuracy {_fmt(accuracy)}"
        )
    else:
        if kind == "ordinal":
            cats = list(_ordinal_categories(float(v) for v in (*judge, *human)))
        else:
            cats = sorted({*judge, *human}, key=str)
        kappa = cohen_kappa(judge, human, cats)
        agree = sum(j == h for j, h in pairs)
        accuracy = _proportion(agree, n, confidence, "no paired labels")
        if kind == "ordinal":
            wkappa = weighted_kappa(judge, human, cats, "quadratic")
            required = {"weighted kappa": wkappa}
            summary = (
                f"weighted kappa {_fmt(wkappa)} (quadratic), kappa {_fmt(kappa)}, "
                f"exact agreement {_fmt(accuracy)}"
            )
        else:
            required = {"kappa": kappa}
            summary = f"kappa {_fmt(kappa)}, agreement {_fmt(accuracy)}"

    if n < min_labels:
        calibrated = False
        status = f"uncalibrated: only {n} human label{'s' if n != 1 else ''}; need {min_labels}"
    else:
        missing = [(m, e.reason) for m, e in required.items() if e.value is None]
        calibrated = not missing
        if missing:
            metric, why = missing[0]
            status = f"uncalibrated: {metric} undefined ({why})"
        else:
            status = f"calibrated on {n} human labels: {summary}"
    return make(calibrated, status, accuracy, kappa, wkappa, binary, cats)


def _fmt(e: Estimate) -> str:
    return "undefined" if e.value is None else f"{e.value:.2f}"
