"""Reduced, seeded calibration studies (the full ones are in bench/drift_calibration.py).

Tolerances come from the binomial standard error of a rate estimated from R replications:
SE = sqrt(p (1 - p) / R). A band of +-3 SE around the target fails by chance with
probability below 0.3% per check, and the seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize

from convsim.stats.drift import always_valid_p_values, compare_windows, msprt_log_lambda
from convsim.stats.drift._simulate import (
    SimulationConfig,
    simulate_windows,
    true_standardized_effect,
)

ALPHA = 0.05


def band(p: float, r: int) -> tuple[float, float]:
    """Target rate +- 3 binomial standard errors for R replications."""
    se = math.sqrt(p * (1 - p) / r)
    return p - 3 * se, p + 3 * se


def test_null_false_alarm_rate_is_alpha() -> None:
    # R = 400 null window pairs: unequal windows (400 vs 600 expected conversations),
    # ten turns per conversation with a latent ICC of 0.3, stratified sampling (routine
    # 15% in the baseline, 12% in the current window, escalated 100%), tied ordinal
    # levels, lognormal latency, Poisson tool calls, a sparse categorical label and a
    # noisy (but fixed) judge. Users have a Zipf number of conversations sharing a random
    # effect; the windows carry their ids, so the default comparison clusters by user.
    r = 400
    cfg = SimulationConfig(
        inclusion_current=(0.12, 1.0),
        n_baseline=400,
        n_current=600,
        scores=(
            "goal_completion",
            "policy_adherence",
            "tone",
            "latency_ms",
            "tool_calls",
            "escalation_reason",
        ),
    )
    rejections: dict[str, int] = {}
    any_holm = 0
    for rep in range(r):
        b, c = simulate_windows(cfg, 10_000 + rep)
        rep_ = compare_windows(b, c, bootstrap=0, permutations=199)
        assert rep_.clustering.startswith("by user_id") and not rep_.caveats
        for f in rep_.findings:
            assert f.kind == "score" and f.p_value is not None
            rejections[f.metric] = rejections.get(f.metric, 0) + (f.p_value <= ALPHA)
        any_holm += any(f.significant for f in rep_.findings)
    # Per test: R = 400, SE = 0.0109, band [0.017, 0.083].
    lo, hi = band(ALPHA, r)
    rates = {k: v / r for k, v in rejections.items()}
    assert all(lo <= x <= hi for x in rates.values()), rates
    # Pooled over the 6 tests (2,400 rejections): SE = 0.0044, band [0.037, 0.063].
    pooled = sum(rejections.values()) / (r * len(rejections))
    plo, phi = band(ALPHA, r * len(rejections))
    assert plo <= pooled <= phi, pooled
    # Report-level family-wise error under Holm: at most alpha (+3 SE).
    assert any_holm / r <= band(ALPHA, r)[1]


def test_mix_only_shift_is_mix_not_within() -> None:
    # The cohort mix moves a lot (TVD about 0.3) and nothing changes within cohorts.
    r = 80
    mix0 = tuple(np.linspace(1, 4, 10))
    cfg = SimulationConfig(
        n_baseline=1500,
        n_current=1500,
        scores=("goal_completion",),
        mix_baseline=mix0,
        mix_current=mix0[::-1],
        cell_scale=2.0,
    )
    within = mix_alarm = 0
    for rep in range(r):
        b, c = simulate_windows(cfg, 20_000 + rep)
        out = compare_windows(b, c, by=("language", "vertical"), bootstrap=0, permutations=199)
        main = out.findings[0]
        assert main.decomposition is not None
        within += main.significant
        mix = next(f for f in out.findings if f.kind == "mix")
        mix_alarm += mix.alarm
    assert within / r <= band(ALPHA, r)[1]
    assert mix_alarm / r >= 0.8


def test_simpson_case_raises_within_alarm() -> None:
    # Traffic moves to the cohorts that pass most, so the aggregate pass rate rises
    # (true change +6.0 points), while every cohort's pass rate drops (-7.3 points at the
    # pooled mix; between -0.9 and -9.7 points per stratum).
    r = 60
    mix0 = tuple(np.linspace(1, 4, 10))
    base = SimulationConfig(
        n_baseline=3000,
        n_current=3000,
        scores=("goal_completion",),
        cell_scale=2.0,
        judge_se=(1.0, 1.0),
        judge_sp=(1.0, 1.0),
    )
    from convsim.stats.drift._simulate import _BASE, _cell_effects

    spec = next(s for s in _BASE if s.name == "goal_completion")
    order = np.argsort(_cell_effects(base, spec))
    mix_b = np.empty(10)
    mix_b[order] = mix0[::-1]  # baseline: hard cohorts common
    mix_c = np.empty(10)
    mix_c[order] = mix0  # current: easy cohorts common
    cfg = SimulationConfig(
        n_baseline=3000,
        n_current=3000,
        scores=("goal_completion",),
        cell_scale=3.0,
        judge_se=(1.0, 1.0),
        judge_sp=(1.0, 1.0),
        mix_baseline=tuple(mix_b),
        mix_current=tuple(mix_c),
        shifts={"goal_completion": -0.5},
    )
    alarms = up = 0
    for rep in range(r):
        b, c = simulate_windows(cfg, 30_000 + rep)
        out = compare_windows(
            b, c, by=("language", "vertical"), bootstrap=0, permutations=199,
            min_effects={"goal_completion": 0.02},
        )  # fmt: skip
        main = out.findings[0]
        assert main.decomposition is not None
        up += main.decomposition.total > 0
        alarms += main.alarm and (main.effect or 0) < 0
    assert up / r >= 0.9
    assert alarms / r >= 0.8


def test_power_at_stated_mde() -> None:
    # The MDE a null comparison states for a binary conversation-level score is the
    # change found significant 80% of the time; check it with R = 200 (SE 0.028).
    cfg0 = SimulationConfig(
        n_baseline=1500,
        n_current=2000,
        scores=("goal_completion",),
        judge_se=(1.0, 1.0),
        judge_sp=(1.0, 1.0),
    )
    b, c = simulate_windows(cfg0, 1)
    mde = compare_windows(b, c, bootstrap=0).findings[0].mde
    assert mde is not None

    def gap(shift: float) -> float:
        cfg = SimulationConfig(**{**cfg0.__dict__, "shifts": {"goal_completion": shift}})
        return true_standardized_effect(cfg, "goal_completion") - mde

    shift = optimize.brentq(gap, 0.0, 2.0)
    cfg = SimulationConfig(**{**cfg0.__dict__, "shifts": {"goal_completion": shift}})
    r = 200
    hits = sum(
        bool(
            compare_windows(*simulate_windows(cfg, 40_000 + i), bootstrap=0).findings[0].significant
        )
        for i in range(r)
    )
    assert hits / r >= band(0.8, r)[0]


def test_msprt_keeps_family_wise_error_over_seven_daily_looks() -> None:
    # 4,000 null sequences of 7 daily looks at cumulative data (300 conversations per
    # window per day, pass rate 0.8). Naive looks at alpha = 0.05 alarm far more often.
    rng = np.random.default_rng(7)
    r, days, n_day, p = 4000, 7, 300, 0.8
    x0 = rng.binomial(n_day, p, (r, days)).cumsum(1)
    x1 = rng.binomial(n_day, p, (r, days)).cumsum(1)
    n = n_day * np.arange(1, days + 1)
    p0, p1 = x0 / n, x1 / n
    pool = (x0 + x1) / (2 * n)
    var = np.maximum(pool * (1 - pool) * 2 / n, 1e-12)
    d = p1 - p0
    av = always_valid_p_values(d, var, tau=0.05)
    assert np.all((av >= 0) & (av <= 1)) and np.all(np.diff(av, axis=1) <= 0)
    fwer = float((av[:, -1] <= ALPHA).mean())
    assert fwer <= band(ALPHA, r)[1]
    from scipy.special import ndtr

    naive = 2 * ndtr(-np.abs(d) / np.sqrt(var))
    assert float((naive.min(axis=1) <= ALPHA).mean()) > 0.1
    # A real 5-point drop is caught, usually within the week.
    x1s = rng.binomial(n_day, p - 0.05, (r, days)).cumsum(1)
    d_s = x1s / n - p0
    pool_s = (x0 + x1s) / (2 * n)
    av_s = always_valid_p_values(d_s, pool_s * (1 - pool_s) * 2 / n, tau=0.05)
    assert float((av_s[:, -1] <= ALPHA).mean()) > 0.8


def test_msprt_formula() -> None:
    # V = 1, tau = 1, d = 2: Lambda = sqrt(1/2) * exp(1 * 4 / (2 * 1 * 2)) = e / sqrt(2).
    assert float(msprt_log_lambda(2.0, 1.0, 1.0)) == pytest.approx(1 - 0.5 * math.log(2))
    with pytest.raises(ValueError, match="tau"):
        msprt_log_lambda(0.0, 1.0, 0.0)
