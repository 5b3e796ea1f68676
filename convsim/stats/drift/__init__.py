"""Drift between two windows of scores: calibrated tests, effects, MDEs and alarms.

Build a :class:`Window` per week (``Window.from_scores``), then
``compare_windows(baseline, current, by=("language", "vertical"))``. Every score gets one
test over all cohorts and one per cohort cell, chosen by its kind; the tests treat
conversations as the independent units, respect sampling weights, and separate a change
in the cohort mix from a change within cohorts. An alarm needs a significant p-value
after multiple-testing correction *and* an effect interval entirely beyond the score's
minimum meaningful effect; every "no drift" carries its minimum detectable effect.
Scores from different judge configurations are never compared silently.

See ``docs/statistics.md`` for the methods and their calibration by simulation.
"""

from ._compare import (
    CONTINUOUS_MIN_EFFECT_SD,
    DEFAULT_MIN_EFFECTS,
    MIX_METRIC,
    EffectMeasure,
    HasMinEffect,
    compare_windows,
    min_effects_from_rubrics,
)
from ._data import MISSING_TAG, JudgeConfig, ScoreArrays, ScoreColumn, Tag, Window
from ._effects import mde, newcombe_interval, wilson_bounds
from ._judge import AnchorResult, anchor_test
from ._mix import kitagawa_decomposition
from ._multiple import benjamini_hochberg, holm
from ._report import (
    ALL,
    Decomposition,
    DecompositionRow,
    DriftReport,
    Family,
    Finding,
    FindingKind,
    SecondaryTest,
    WindowStats,
)
from ._sequential import always_valid_p_values, msprt_log_lambda
from ._simulate import SimulationConfig, simulate_windows
from ._tests import quadratic_form_sf

__all__ = [
    "ALL",
    "CONTINUOUS_MIN_EFFECT_SD",
    "DEFAULT_MIN_EFFECTS",
    "MISSING_TAG",
    "MIX_METRIC",
    "AnchorResult",
    "Decomposition",
    "DecompositionRow",
    "DriftReport",
    "EffectMeasure",
    "Family",
    "Finding",
    "FindingKind",
    "HasMinEffect",
    "JudgeConfig",
    "ScoreArrays",
    "ScoreColumn",
    "SecondaryTest",
    "SimulationConfig",
    "Tag",
    "Window",
    "WindowStats",
    "always_valid_p_values",
    "anchor_test",
    "benjamini_hochberg",
    "compare_windows",
    "holm",
    "kitagawa_decomposition",
    "mde",
    "min_effects_from_rubrics",
    "msprt_log_lambda",
    "newcombe_interval",
    "quadratic_form_sf",
    "simulate_windows",
    "wilson_bounds",
]
