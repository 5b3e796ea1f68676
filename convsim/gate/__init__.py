"""The offline release gate: is a candidate run worse than its baseline, or can't we tell?

``compare_runs`` pairs two runs case by case (and trial by trial where they share
seeds), tests the change in pass rate overall and per tag value against an allowed
regression, and answers pass, regression or inconclusive, with how much more data would
decide. It also reports per-case reliability (pass^k, pass@k, flaky cases, score spread),
a drilldown by tag with latency and cost, and budget checks. See "The release gate" in
docs/statistics.md.
"""

from ._load import (
    GateError,
    RunData,
    ScoreValue,
    TrialRecord,
    counts_for_agent,
    load_results_file,
    load_store_run,
    run_from_results,
)
from ._render import plan_text, render_junit, render_markdown, render_terminal
from ._report import (
    COMPLETED_METRIC,
    COMPLETED_TERMINATIONS,
    DEFAULT_METRIC,
    MISSING_TAG,
    BudgetCheck,
    CaseChange,
    CaseReliability,
    DrilldownRow,
    GateReport,
    MetricSource,
    Pairing,
    Percentiles,
    RunReliability,
    ScoreStats,
    Side,
    compare_runs,
    resolve_metric,
)
from ._simulate import ExperimentModel, SimulatedPair, population_rate, solve_intercept
from ._stats import (
    ALL_CASES,
    EXIT_CODES,
    Comparison,
    DecisionPlan,
    GroupComparison,
    Verdict,
    bootstrap_bounds,
    compare_counts,
    exact_bootstrap_bounds,
    expanded_level,
    mcnemar_exact,
    plan_decision,
)

__all__ = [
    "ALL_CASES",
    "COMPLETED_METRIC",
    "COMPLETED_TERMINATIONS",
    "DEFAULT_METRIC",
    "EXIT_CODES",
    "MISSING_TAG",
    "BudgetCheck",
    "CaseChange",
    "CaseReliability",
    "Comparison",
    "DecisionPlan",
    "DrilldownRow",
    "ExperimentModel",
    "GateError",
    "GateReport",
    "GroupComparison",
    "MetricSource",
    "Pairing",
    "Percentiles",
    "RunData",
    "RunReliability",
    "ScoreStats",
    "ScoreValue",
    "Side",
    "SimulatedPair",
    "TrialRecord",
    "Verdict",
    "bootstrap_bounds",
    "compare_counts",
    "compare_runs",
    "counts_for_agent",
    "exact_bootstrap_bounds",
    "expanded_level",
    "load_results_file",
    "load_store_run",
    "mcnemar_exact",
    "plan_decision",
    "plan_text",
    "population_rate",
    "render_junit",
    "render_markdown",
    "render_terminal",
    "resolve_metric",
    "run_from_results",
    "solve_intercept",
]
