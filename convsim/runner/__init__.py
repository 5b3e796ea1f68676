"""Running many conversations: config and resume, the unit of work, the local executor."""

from ._config import RunConfig, WorkUnit, plan_units, unit_seed
from ._progress import Progress
from ._run import Execute, RunSummary, run_units

__all__ = [
    "Execute",
    "Progress",
    "RunConfig",
    "RunSummary",
    "WorkUnit",
    "plan_units",
    "run_units",
    "unit_seed",
]
