"""Online evaluation: sample a window's conversations for judging, and weight the results.

A :class:`SamplingPolicy` (``examples/sampling.yaml``) says which conversations the judges
see; :func:`decide` applies it to a window, deterministically; :func:`window_estimates`
weights the judged scores back to the whole window.
"""

from ._estimate import (
    EstimateMethod,
    WeightedEstimate,
    WindowEstimate,
    unweighted_estimate,
    weighted_estimate,
    window_estimates,
)
from ._policy import (
    Budget,
    Filter,
    FlowAge,
    Outliers,
    Rule,
    SamplingPolicy,
    Triggers,
    conversation_language,
    load_policy,
)
from ._sampler import (
    Decision,
    DecisionStatus,
    RuleTally,
    SamplingReport,
    decide,
    sampling_draw,
    stamp_scores,
    summarize,
)
from ._window import WindowResult, conversations_from, grade_window

__all__ = [
    "Budget",
    "Decision",
    "DecisionStatus",
    "EstimateMethod",
    "Filter",
    "FlowAge",
    "Outliers",
    "Rule",
    "RuleTally",
    "SamplingPolicy",
    "SamplingReport",
    "Triggers",
    "WeightedEstimate",
    "WindowEstimate",
    "WindowResult",
    "conversation_language",
    "conversations_from",
    "decide",
    "grade_window",
    "load_policy",
    "sampling_draw",
    "stamp_scores",
    "summarize",
    "unweighted_estimate",
    "weighted_estimate",
    "window_estimates",
]
