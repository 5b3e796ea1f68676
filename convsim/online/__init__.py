"""Online evaluation: sample a window's conversations for judging, and weight the results.

A :class:`SamplingPolicy` (``examples/sampling.yaml``) says which conversations the judges
see; :func:`decide` applies it to a window, deterministically; :func:`window_estimates`
weights the judged scores back to the whole window.
"""

from ._anchors import anchor_draw, choose_anchors, stamp_anchor_scores
from ._estimate import (
    MISSING_GROUP,
    Census,
    EstimateMethod,
    WeightedEstimate,
    WindowEstimate,
    load_census,
    unweighted_estimate,
    weighted_estimate,
    window_estimates,
)
from ._policy import (
    Anchors,
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
    "MISSING_GROUP",
    "Anchors",
    "Budget",
    "Census",
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
    "anchor_draw",
    "choose_anchors",
    "conversation_language",
    "conversations_from",
    "decide",
    "grade_window",
    "load_census",
    "load_policy",
    "sampling_draw",
    "stamp_anchor_scores",
    "stamp_scores",
    "summarize",
    "unweighted_estimate",
    "weighted_estimate",
    "window_estimates",
]
