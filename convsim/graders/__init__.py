"""Graders: outcome checks, guardrails, implicit user signals and rubric judges.

Every grader produces :class:`convsim.trace.Score` records, or
:class:`convsim.trace.ScoreFailure` records when it cannot: a failure is never a 0.
The same graders grade pre-deploy runs and production traces.
"""

from ._base import (
    AnyGrader,
    GradeOutput,
    Grader,
    ScoreBuilder,
    SyncGrader,
    config_hash,
    grade_sync,
    run_graders,
)
from .guardrails import (
    CommitmentGuardrail,
    ForbiddenToolsGuardrail,
    FormatContractGuardrail,
    PiiGuardrail,
    PiiMatch,
    default_guardrails,
    find_pii,
    redact_pii,
)
from .metrics import MetadataMetrics
from .outcome import DEFAULT_COMPLETED, CheckError, OutcomeChecks
from .rubric import (
    JUDGE_PREAMBLE,
    Category,
    Example,
    Level,
    Rubric,
    RubricJudge,
    load_rubric,
    load_rubrics,
    render_conversation,
)
from .signals import default_signals

__all__ = [
    "DEFAULT_COMPLETED",
    "JUDGE_PREAMBLE",
    "AnyGrader",
    "Category",
    "CheckError",
    "CommitmentGuardrail",
    "Example",
    "ForbiddenToolsGuardrail",
    "FormatContractGuardrail",
    "GradeOutput",
    "Grader",
    "Level",
    "MetadataMetrics",
    "OutcomeChecks",
    "PiiGuardrail",
    "PiiMatch",
    "Rubric",
    "RubricJudge",
    "ScoreBuilder",
    "SyncGrader",
    "config_hash",
    "default_guardrails",
    "default_signals",
    "find_pii",
    "grade_sync",
    "load_rubric",
    "load_rubrics",
    "redact_pii",
    "render_conversation",
    "run_graders",
]
