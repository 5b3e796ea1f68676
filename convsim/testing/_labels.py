"""Judged conversations with a known truth and a human-labelled subset, for calibration studies.

Each conversation truly passes or fails; a judge of known sensitivity and specificity
scores every one of them; humans label a random subset (uniformly, or a fixed number per
cohort). What a team's ``convsim grade --labels`` sees, with the answer known, so the
corrected pass rates can be checked for bias and coverage (``bench/judge_calibration.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..stats import judge_rates
from ..trace import Score


@dataclass(frozen=True)
class Cohort:
    """One cohort of judged conversations."""

    share: float
    """Share of the judged conversations."""
    prevalence: float
    """True pass rate."""
    sensitivity: float
    """Chance the judge passes a truly passing conversation."""
    specificity: float
    """Chance the judge fails a truly failing conversation."""
    labels: int
    """Conversations humans label in this cohort (with ``labels_by_cohort``)."""


def true_rate(cohorts: Sequence[Cohort]) -> float:
    """The pass rate of the population the cohorts make up."""
    total = sum(c.share for c in cohorts)
    return sum(c.share * c.prevalence for c in cohorts) / total


def labelled_sample(
    cohorts: Sequence[Cohort],
    judged: int,
    labels: int,
    seed: int,
    *,
    labels_by_cohort: bool = False,
    name: str = "rubric.goal",
) -> tuple[list[Score], list[Score]]:
    """Judge scores of ``judged`` conversations and human labels of some of them.

    Args:
        cohorts: The cohorts (their shares need not sum to 1).
        judged: Conversations the judge scored.
        labels: Conversations humans labelled, drawn uniformly from the judged ones
            (ignored with ``labels_by_cohort``).
        seed: Seed of every draw.
        labels_by_cohort: Label ``Cohort.labels`` conversations in each cohort instead.
        name: Score name of the judge and the labels.

    Returns:
        ``(judge scores, human labels)``; every judge score carries its ``cohort`` tag.
    """
    rng = np.random.default_rng(seed)
    shares = np.asarray([c.share for c in cohorts], dtype=float)
    cohort = rng.choice(len(cohorts), size=judged, p=shares / shares.sum())
    prev = np.asarray([c.prevalence for c in cohorts])[cohort]
    sens = np.asarray([c.sensitivity for c in cohorts])[cohort]
    spec = np.asarray([c.specificity for c in cohorts])[cohort]
    truth = rng.random(judged) < prev
    u = rng.random(judged)
    verdict = np.where(truth, u < sens, u >= spec)
    if labels_by_cohort:
        picked: list[int] = []
        for k, c in enumerate(cohorts):
            members = np.flatnonzero(cohort == k)
            picked += rng.choice(members, size=min(c.labels, members.size), replace=False).tolist()
        chosen = np.asarray(sorted(picked), dtype=np.int64)
    else:
        chosen = np.sort(rng.choice(judged, size=labels, replace=False))
    scores = [
        Score(
            conversation_id=f"c{i}",
            name=name,
            value=bool(verdict[i]),
            kind="binary",
            source="model",
            judge_model="judge",
            tags={"cohort": f"k{int(cohort[i])}"},
        )
        for i in range(judged)
    ]
    human = [
        Score(
            conversation_id=f"c{i}", name=name, value=bool(truth[i]), kind="binary", source="human"
        )
        for i in chosen.tolist()
    ]
    return scores, human


@dataclass(frozen=True)
class LabelScenario:
    """One calibration scenario: a judged population, a judge, and how labels were drawn."""

    name: str
    """Short description."""
    cohorts: tuple[Cohort, ...]
    """The population and the judge, per cohort."""
    judged: int
    """Judged conversations."""
    labels: int = 0
    """Labelled conversations, drawn uniformly (unless ``by_cohort``)."""
    by_cohort: bool = False
    """Labels drawn per cohort (``Cohort.labels`` each) and estimated with cohort strata."""


_BASE = Cohort(1.0, 0.30, 0.90, 0.75, 0)
_LENIENT = Cohort(1.0, 0.30, 0.98, 0.55, 0)

CALIBRATION_SCENARIOS: tuple[LabelScenario, ...] = (
    LabelScenario("2% labelled (30 of 1,500)", (_BASE,), 1500, 30),
    LabelScenario("16% labelled (150 of 950)", (_BASE,), 950, 150),
    LabelScenario("33% labelled (150 of 450)", (_BASE,), 450, 150),
    LabelScenario("30 labels (of 950)", (_BASE,), 950, 30),
    LabelScenario("lenient judge", (_LENIENT,), 950, 150),
    LabelScenario("lenient judge, pass rate 5%", (Cohort(1.0, 0.05, 0.98, 0.55, 0),), 950, 150),
    LabelScenario("lenient judge, pass rate 95%", (Cohort(1.0, 0.95, 0.98, 0.55, 0),), 950, 150),
    LabelScenario(
        "cohorts 80/20, labels 50/50, strata given",
        (Cohort(0.8, 0.40, 0.90, 0.75, 75), Cohort(0.2, 0.10, 0.80, 0.95, 75)),
        950,
        by_cohort=True,
    ),
)
"""The scenarios of the judge-calibration study (docs/statistics.md): the docs' example
(pass rate 0.30, judge TPR 0.90 / TNR 0.75) with 2%, 16% and 33% labelled and with only 30
labels; a lenient judge (TPR 0.98 / TNR 0.55), also at pass rates of 5% and 95%; and
labels drawn 50/50 from cohorts that are 80/20 of traffic and differ in pass rate and in
how well the judge does."""


def calibration_replication(scenario: int, rep: int) -> dict[str, Any]:
    """One replication of a study scenario, through ``judge_rates`` (the CLI's path).

    Args:
        scenario: Index into :data:`CALIBRATION_SCENARIOS`.
        rep: Replication number (the seed is ``1_000_000 * scenario + rep``).

    Returns:
        ``{"ppi": (estimate, low, high), "rg": (...), "naive": judge mean}``, and for
        cohort-stratified labels also ``ppi_unstratified``: the same labels read as a
        uniform sample.
    """
    sc = CALIBRATION_SCENARIOS[scenario]
    scores, labels = labelled_sample(
        sc.cohorts, sc.judged, sc.labels, 1_000_000 * scenario + rep, labels_by_cohort=sc.by_cohort
    )
    [rate], _ = judge_rates(scores, labels, strata="cohort" if sc.by_cohort else None)
    ppi, rg = rate.ppi, rate.rogan_gladen
    if ppi is None or rg is None:
        raise RuntimeError(f"{sc.name}, replication {rep}: {rate.reason}")
    out: dict[str, Any] = {
        "ppi": (ppi.estimate, ppi.low, ppi.high),
        "rg": (rg.estimate, rg.low, rg.high),
        "naive": rate.judge_mean,
    }
    if sc.by_cohort:
        [plain], _ = judge_rates(scores, labels)
        if plain.ppi is None:
            raise RuntimeError(f"{sc.name}, replication {rep}: {plain.reason}")
        out["ppi_unstratified"] = (plain.ppi.estimate, plain.ppi.low, plain.ppi.high)
    return out


def coverage_summary(
    rows: Sequence[tuple[float | None, float | None, float | None]], truth: float
) -> dict[str, float]:
    """Mean, bias in SDs of the estimate, interval coverage and median width."""
    est = np.asarray([r[0] for r in rows], dtype=float)
    lo = np.asarray([r[1] for r in rows], dtype=float)
    hi = np.asarray([r[2] for r in rows], dtype=float)
    sd = float(np.nanstd(est))
    return {
        "mean": float(np.nanmean(est)),
        "bias_sd": float((np.nanmean(est) - truth) / sd) if sd > 0 else 0.0,
        "coverage": float(np.mean((lo <= truth) & (truth <= hi))),
        "width": float(np.nanmedian(hi - lo)),
    }
