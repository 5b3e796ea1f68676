"""Test doubles that ship with convsim: a loopback OpenAI-compatible server and friends.

The agent and user doubles live with their kind (``convsim.agents.FunctionAgent``,
``convsim.agents.ScriptedAgent``, ``convsim.users.ScriptedUser``); this package holds
the model-side doubles: a scripted model client, an offline rule-based judge, and a
loopback OpenAI-compatible server; and synthetic production traffic with a known truth
(with a judge and checks that read it), for checking drift reports end to end.
"""

from .._llm import ScriptedClient
from ._drift_study import (
    NULL_SCENARIOS,
    WEEKS,
    WeekPair,
    graded_windows,
    null_pair,
    study_policy,
)
from ._judge import OfflineJudge
from ._labels import (
    CALIBRATION_SCENARIOS,
    Cohort,
    LabelScenario,
    calibration_replication,
    coverage_summary,
    labelled_sample,
    true_rate,
)
from ._loopback import LoopbackServer
from ._server import FAULT_KINDS, FakeOpenAIServer, Responder, echo_responder
from ._traffic import (
    JudgeProfile,
    TrafficChecks,
    TrafficConfig,
    TrafficJudge,
    traffic_weeks,
    true_effect,
)

__all__ = [
    "CALIBRATION_SCENARIOS",
    "FAULT_KINDS",
    "NULL_SCENARIOS",
    "WEEKS",
    "Cohort",
    "FakeOpenAIServer",
    "JudgeProfile",
    "LabelScenario",
    "LoopbackServer",
    "OfflineJudge",
    "Responder",
    "ScriptedClient",
    "TrafficChecks",
    "TrafficConfig",
    "TrafficJudge",
    "WeekPair",
    "calibration_replication",
    "coverage_summary",
    "echo_responder",
    "graded_windows",
    "labelled_sample",
    "null_pair",
    "study_policy",
    "traffic_weeks",
    "true_effect",
    "true_rate",
]
