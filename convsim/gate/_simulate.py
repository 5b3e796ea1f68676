"""Synthetic experiment pairs with known true pass rates, for calibration and planning.

A gate is only as good as its error rates, and those can only be measured where the
truth is known. :class:`ExperimentModel` draws a baseline and a candidate run of the same
cases whose *true* pass rate per tag is set exactly, so a study can count how often the
gate says pass, regression or inconclusive when the truth is "no change", "a 5-point
drop on one tag", or "a drop exactly at the margin".

The model, per case ``c`` of tag ``g``:

- a difficulty ``theta_c = a_g + sigma * z_c`` on the logit scale, shared by both agents
  (hard cases are hard for both);
- each agent's own per-case deviation ``tau * u_c`` (the agents disagree case by case
  even when their average is the same), plus for the candidate a shift ``-s_g`` on the
  tags where it is worse;
- ``trials`` independent trials per case and agent with that probability.

``a_g`` and ``s_g`` are solved numerically so that the mean pass probability over the
case population is exactly the requested rate: a tag's "true pass rate" is that
population mean, and every experiment draws new cases from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(80)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def _expit(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-x))
    return out


def population_rate(intercept: float, spread: float) -> float:
    """Mean of ``expit(intercept + spread * Z)`` for standard normal ``Z`` (quadrature)."""
    return float(_WEIGHTS @ _expit(intercept + spread * _NODES))


def solve_intercept(rate: float, spread: float) -> float:
    """The logit intercept whose population mean pass probability is ``rate``.

    Raises:
        ValueError: When ``rate`` is not strictly between 0 and 1.
    """
    if not 0.0 < rate < 1.0:
        raise ValueError(f"a true pass rate must be strictly between 0 and 1, got {rate}")
    lo, hi = -30.0, 30.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if population_rate(mid, spread) < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@dataclass(frozen=True)
class SimulatedPair:
    """One synthetic experiment: per-case pass counts of both runs and each case's tag."""

    candidate_passes: IntArray
    """Candidate passes per case."""
    candidate_trials: IntArray
    """Candidate trials per case."""
    baseline_passes: IntArray
    """Baseline passes per case."""
    baseline_trials: IntArray
    """Baseline trials per case."""
    tags: dict[str, list[str]]
    """The tag key (``vertical``) and every case's value."""


@dataclass(frozen=True)
class ExperimentModel:
    """Baseline and candidate agents with known true pass rates per tag value.

    Args:
        rates: True baseline pass rate per tag value; cases are split evenly among them.
        drops: True drop of the candidate per tag value, in percentage points (5.0 is a
            5-point drop); missing values have no drop.
        case_spread: Standard deviation of case difficulty on the logit scale. 1.5 makes
            many cases always pass or always fail, as on tau-bench.
        agent_spread: Standard deviation of each agent's own per-case deviation on the
            logit scale: how much the two agents disagree case by case.
        tag: Tag key the values belong to.
    """

    rates: Mapping[str, float]
    drops: Mapping[str, float] = field(default_factory=dict)
    case_spread: float = 1.5
    agent_spread: float = 0.5
    tag: str = "vertical"

    def __post_init__(self) -> None:
        if not self.rates:
            raise ValueError("rates needs at least one tag value")
        unknown = set(self.drops) - set(self.rates)
        if unknown:
            raise ValueError(f"drops for tag values without a rate: {sorted(unknown)}")
        for value, rate in self.rates.items():
            target = rate - self.drops.get(value, 0.0) / 100
            if not 0.0 < target < 1.0:
                raise ValueError(f"{value}: the candidate's true rate {target} is not in (0, 1)")

    def _shifts(self) -> tuple[dict[str, float], dict[str, float]]:
        total = float(np.hypot(self.case_spread, self.agent_spread))
        intercepts: dict[str, float] = {}
        shifts: dict[str, float] = {}
        for value, rate in self.rates.items():
            a = solve_intercept(rate, total)
            intercepts[value] = a
            drop = self.drops.get(value, 0.0) / 100
            shifts[value] = a - solve_intercept(rate - drop, total) if drop else 0.0
        return intercepts, shifts

    def true_rates(self) -> dict[str, tuple[float, float]]:
        """Per tag value, the (candidate, baseline) true pass rates the model implies."""
        total = float(np.hypot(self.case_spread, self.agent_spread))
        intercepts, shifts = self._shifts()
        return {
            v: (population_rate(intercepts[v] - shifts[v], total), population_rate(a, total))
            for v, a in intercepts.items()
        }

    def sampler(self) -> _Sampler:
        """A sampler with the intercepts solved once, for drawing many pairs quickly."""
        intercepts, shifts = self._shifts()
        return _Sampler(self, intercepts, shifts)

    def draw(self, rng: np.random.Generator, cases: int, trials: int) -> SimulatedPair:
        """Draw one experiment pair of ``cases`` new cases with ``trials`` trials each."""
        return self.sampler().draw(rng, cases, trials)


@dataclass(frozen=True)
class _Sampler:
    model: ExperimentModel
    intercepts: dict[str, float]
    shifts: dict[str, float]

    def draw(self, rng: np.random.Generator, cases: int, trials: int) -> SimulatedPair:
        if cases < 1 or trials < 1:
            raise ValueError(f"need at least one case and one trial, got {cases} x {trials}")
        m = self.model
        values = list(m.rates)
        tag = [values[i % len(values)] for i in range(cases)]
        a = np.array([self.intercepts[v] for v in tag])
        s = np.array([self.shifts[v] for v in tag])
        theta = a + m.case_spread * rng.standard_normal(cases)
        p_base = _expit(theta + m.agent_spread * rng.standard_normal(cases))
        p_cand = _expit(theta - s + m.agent_spread * rng.standard_normal(cases))
        n = np.full(cases, trials, dtype=np.int64)
        return SimulatedPair(
            candidate_passes=rng.binomial(n, p_cand).astype(np.int64),
            candidate_trials=n,
            baseline_passes=rng.binomial(n, p_base).astype(np.int64),
            baseline_trials=n.copy(),
            tags={m.tag: tag},
        )
