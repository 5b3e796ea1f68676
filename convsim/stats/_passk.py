"""pass@k and pass^k over repeated trials of the same tasks.

Two questions about an agent that is run ``n`` times on each task:

- **pass@k**: if I may try ``k`` times and keep the best, how often do I succeed? This is
  the unbiased estimator of Chen et al. (2021), ``1 - C(n-c, k) / C(n, k)``.
- **pass^k** (tau-bench): if I run it ``k`` times, how often do *all* ``k`` runs succeed?
  This is ``C(c, k) / C(n, k)``, the chance that ``k`` trials drawn without replacement
  from the ``n`` recorded ones are all successes. It measures reliability, which is what a
  user who talks to the agent every day experiences.

Both are computed per task and averaged over tasks. Each task uses its own trial count:
tau-bench divides by one global ``num_trials`` and is wrong when a task has fewer trials.
Trials lost to infrastructure errors should be left out of the outcomes (not booked as
failures) and passed in ``excluded`` so the report says how many were dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

TaskLabel = Literal["pass", "fail", "flaky"]
"""A task's behaviour over its trials: always passed, never passed, or both (``0 < c < n``)."""


def _check_counts(n: int, c: int, k: int) -> None:
    for name, value in (("n", n), ("c", c), ("k", k)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if n < 1:
        raise ValueError(f"n (trials) must be at least 1, got {n}")
    if not 0 <= c <= n:
        raise ValueError(f"c (successes) must be between 0 and n={n}, got {c}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and n={n} (the number of trials), got {k}")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k: the chance that at least one of ``k`` of the ``n`` trials passed.

    Args:
        n: Trials of the task.
        c: Trials that passed.
        k: Attempts allowed, ``1 <= k <= n``.

    Returns:
        ``1 - C(n - c, k) / C(n, k)``, computed with exact integers before the one division.

    Raises:
        ValueError: When the counts are not integers or out of range.
    """
    _check_counts(n, c, k)
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """pass^k: the chance that ``k`` trials drawn from the ``n`` recorded ones all passed.

    Args:
        n: Trials of the task.
        c: Trials that passed.
        k: Consecutive runs that must all pass, ``1 <= k <= n``.

    Returns:
        ``C(c, k) / C(n, k)``, computed with exact integers before the one division.

    Raises:
        ValueError: When the counts are not integers or out of range.
    """
    _check_counts(n, c, k)
    return math.comb(c, k) / math.comb(n, k)


@dataclass(frozen=True)
class TaskOutcome:
    """Trial counts of one task."""

    task_id: str
    """The task."""
    n: int
    """Trials counted (excluded trials are not among them)."""
    c: int
    """Trials that passed."""

    @property
    def label(self) -> TaskLabel:
        """``pass`` or ``fail`` when every trial agreed, ``flaky`` when they did not."""
        if self.c == self.n:
            return "pass"
        if self.c == 0:
            return "fail"
        return "flaky"

    @property
    def flaky(self) -> bool:
        """Whether the task both passed and failed (``0 < c < n``)."""
        return 0 < self.c < self.n


@dataclass(frozen=True)
class PassKEstimate:
    """pass^k and pass@k at one k, averaged over tasks, with task-bootstrap intervals.

    The interval bounds are None when the report was made with ``bootstrap=0``.
    """

    k: int
    """Number of trials."""
    pass_hat: float
    """Mean over tasks of pass^k."""
    pass_hat_low: float | None
    """Lower bound of the task-bootstrap percentile interval of pass^k."""
    pass_hat_high: float | None
    """Upper bound of the task-bootstrap percentile interval of pass^k."""
    pass_at: float
    """Mean over tasks of pass@k."""
    pass_at_low: float | None
    """Lower bound of the task-bootstrap percentile interval of pass@k."""
    pass_at_high: float | None
    """Upper bound of the task-bootstrap percentile interval of pass@k."""


@dataclass(frozen=True)
class PassKReport:
    """pass^k and pass@k of a set of tasks, with what went into them."""

    tasks: tuple[TaskOutcome, ...]
    """Per-task trial and success counts, in input order."""
    estimates: tuple[PassKEstimate, ...]
    """One estimate per requested k, in increasing k."""
    max_k: int
    """Largest k that can be reported: the fewest trials of any task."""
    confidence: float
    """Coverage of the bootstrap intervals."""
    bootstrap: int
    """Bootstrap resamples of tasks (0: no intervals)."""
    seed: int
    """Seed of the bootstrap."""
    excluded: dict[str, int] = field(default_factory=dict[str, int])
    """Trials left out of the outcomes, by reason (e.g. ``infrastructure_error``)."""
    notes: tuple[str, ...] = ()
    """Plain-language caveats: unequal trial counts, exclusions."""

    @property
    def n_tasks(self) -> int:
        """Number of tasks."""
        return len(self.tasks)

    @property
    def n_trials(self) -> int:
        """Trials counted over all tasks."""
        return sum(t.n for t in self.tasks)

    @property
    def n_excluded(self) -> int:
        """Trials left out over all reasons."""
        return sum(self.excluded.values())

    @property
    def flaky_tasks(self) -> int:
        """Tasks that both passed and failed."""
        return sum(t.flaky for t in self.tasks)

    @property
    def unequal_trials(self) -> bool:
        """Whether tasks have different trial counts."""
        return len({t.n for t in self.tasks}) > 1

    def estimate(self, k: int) -> PassKEstimate:
        """The estimate at ``k``.

        Raises:
            KeyError: When ``k`` was not requested.
        """
        for e in self.estimates:
            if e.k == k:
                return e
        raise KeyError(f"k={k} is not in this report (ks: {[e.k for e in self.estimates]})")

    def pass_hat(self, k: int) -> float:
        """Mean pass^k over tasks."""
        return self.estimate(k).pass_hat

    def pass_at(self, k: int) -> float:
        """Mean pass@k over tasks."""
        return self.estimate(k).pass_at


def pass_k_report(
    outcomes: Mapping[str, Sequence[bool]],
    ks: Sequence[int] | None = None,
    *,
    excluded: Mapping[str, int] | None = None,
    confidence: float = 0.95,
    bootstrap: int = 2000,
    seed: int = 0,
) -> PassKReport:
    """pass^k and pass@k per task and averaged over tasks, with task-bootstrap intervals.

    The intervals resample *tasks* with replacement, keeping each task's trials together:
    trials of one task are strongly correlated (the same hard task fails again), so the
    task is the unit the estimate generalises over. With 50 tasks the 95% interval of
    pass^1 is about +-0.10 wide on each side.

    Args:
        outcomes: Pass (True) or fail (False) of every counted trial, by task id. Tasks may
            have different numbers of trials.
        ks: Values of k to report; default 1 up to the fewest trials of any task.
        excluded: Trials left out of ``outcomes`` (e.g. infrastructure errors), by reason;
            reported, never counted as failures.
        confidence: Coverage of the percentile intervals, in (0, 1).
        bootstrap: Number of task resamples; 0 skips the intervals.
        seed: Seed of the bootstrap, so reports are reproducible.

    Returns:
        The report.

    Raises:
        ValueError: On no tasks, a task without trials, a non-boolean outcome, a k outside
            1 to the fewest trials of any task, or invalid options.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    if not isinstance(bootstrap, int) or isinstance(bootstrap, bool) or bootstrap < 0:
        raise ValueError(f"bootstrap must be a non-negative integer, got {bootstrap!r}")
    if not outcomes:
        raise ValueError("no tasks: outcomes is empty")
    tasks: list[TaskOutcome] = []
    for task_id, trials in outcomes.items():
        if isinstance(trials, str | bytes):
            raise ValueError(f"task {task_id!r}: outcomes must be a sequence of booleans")
        if len(trials) == 0:
            raise ValueError(
                f"task {task_id!r} has no trials; leave it out (and count its trials in "
                "excluded) rather than report it as failed"
            )
        for i, passed in enumerate(trials):
            if not isinstance(passed, bool | np.bool_):
                raise ValueError(
                    f"task {task_id!r}, trial {i}: outcome must be True or False, got "
                    f"{passed!r} (threshold rewards before counting, e.g. reward >= 1)"
                )
        tasks.append(TaskOutcome(task_id=str(task_id), n=len(trials), c=sum(map(bool, trials))))
    excl = dict(excluded or {})
    for reason, count in excl.items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError(f"excluded[{reason!r}] must be a non-negative integer")

    fewest = min(tasks, key=lambda t: t.n)
    max_k = fewest.n
    requested = list(range(1, max_k + 1)) if ks is None else list(ks)
    if not requested:
        raise ValueError("ks is empty")
    for k in requested:
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= max_k:
            raise ValueError(
                f"k={k!r} is not possible: k must be between 1 and {max_k}, the fewest trials "
                f"of any task (task {fewest.task_id!r} has {max_k})"
            )
    wanted = sorted(set(requested))

    notes: list[str] = []
    counts = sorted({t.n for t in tasks})
    if len(counts) > 1:
        notes.append(
            f"tasks have unequal trial counts ({counts[0]} to {counts[-1]}); each task uses "
            f"its own count, and k stops at {max_k}, the fewest trials of any task "
            f"(task {fewest.task_id!r})"
        )
    if excl:
        total = sum(excl.values())
        parts = ", ".join(f"{reason}: {n}" for reason, n in excl.items())
        notes.append(f"{total} trials excluded and not counted as failures ({parts})")

    hat = np.array([[pass_hat_k(t.n, t.c, k) for t in tasks] for k in wanted])
    at = np.array([[pass_at_k(t.n, t.c, k) for t in tasks] for k in wanted])
    no_interval: list[float | None] = [None] * len(wanted)
    hat_lo, hat_hi, at_lo, at_hi = no_interval, no_interval, no_interval, no_interval
    if bootstrap:
        hat_means, at_means = _bootstrap_means(hat, at, bootstrap, seed)
        q = [(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0]
        hat_q = np.quantile(hat_means, q, axis=1)
        at_q = np.quantile(at_means, q, axis=1)
        hat_lo, hat_hi = [float(v) for v in hat_q[0]], [float(v) for v in hat_q[1]]
        at_lo, at_hi = [float(v) for v in at_q[0]], [float(v) for v in at_q[1]]
    estimates = tuple(
        PassKEstimate(
            k=k,
            pass_hat=float(hat[i].mean()),
            pass_hat_low=hat_lo[i],
            pass_hat_high=hat_hi[i],
            pass_at=float(at[i].mean()),
            pass_at_low=at_lo[i],
            pass_at_high=at_hi[i],
        )
        for i, k in enumerate(wanted)
    )
    return PassKReport(
        tasks=tuple(tasks),
        estimates=estimates,
        max_k=max_k,
        confidence=confidence,
        bootstrap=bootstrap,
        seed=seed,
        excluded=excl,
        notes=tuple(notes),
    )


def _bootstrap_means(
    hat: np.ndarray, at: np.ndarray, resamples: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Means over resampled tasks of every row of ``hat`` and ``at`` (k x tasks).

    One shared set of resampled task indices serves every k and both metrics, so the
    intervals of different k come from the same resamples and stay comparable. Resamples
    are drawn in blocks so memory stays bounded for many tasks.
    """
    rng = np.random.default_rng(seed)
    n_tasks = hat.shape[1]
    block = max(1, 1_000_000 // n_tasks)
    hat_means = np.empty((hat.shape[0], resamples))
    at_means = np.empty((at.shape[0], resamples))
    for start in range(0, resamples, block):
        stop = min(start + block, resamples)
        idx = rng.integers(0, n_tasks, size=(stop - start, n_tasks))
        hat_means[:, start:stop] = hat[:, idx].mean(axis=2)
        at_means[:, start:stop] = at[:, idx].mean(axis=2)
    return hat_means, at_means
