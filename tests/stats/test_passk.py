from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convsim._assets import tau_airline_runs
from convsim.datasets import ReadReport
from convsim.formats import read_tau_bench
from convsim.stats import PassKReport, TaskOutcome, pass_at_k, pass_hat_k, pass_k_report


def airline_outcomes() -> dict[str, list[bool]]:
    outcomes: dict[str, list[bool]] = defaultdict(list)
    for conv in read_tau_bench(tau_airline_runs(), report=ReadReport(file="airline")):
        (reward,) = [s for s in conv.scores if s.name == "reward"]
        assert isinstance(reward.value, bool)
        outcomes[str(conv.metadata["task_id"])].append(reward.value)
    return dict(outcomes)


@pytest.fixture(scope="module")
def airline() -> PassKReport:
    return pass_k_report(airline_outcomes())


def test_tau_bench_airline_reproduces_the_published_pass_hat_k(airline: PassKReport) -> None:
    # The tau-bench README (gpt-4o, tool calling, airline): 0.420 / 0.273 / 0.220 / 0.200.
    assert [e.k for e in airline.estimates] == [1, 2, 3, 4]
    assert [round(airline.pass_hat(k), 3) for k in (1, 2, 3, 4)] == [0.420, 0.273, 0.220, 0.200]
    assert airline.pass_at(1) == pytest.approx(airline.pass_hat(1))
    # 50 tasks x 4 trials; successes per task 0:14, 1:12, 2:10, 3:4, 4:10.
    assert (airline.n_tasks, airline.n_trials, airline.max_k) == (50, 200, 4)
    by_c: dict[int, int] = defaultdict(int)
    for t in airline.tasks:
        by_c[t.c] += 1
    assert dict(by_c) == {0: 14, 1: 12, 2: 10, 3: 4, 4: 10}
    assert airline.flaky_tasks == 26  # 52% of tasks flip between trials
    assert not airline.unequal_trials
    assert airline.notes == ()


def test_tau_bench_airline_bootstrap_intervals(airline: PassKReport) -> None:
    # Task-bootstrap 95% intervals reported in the research notes: 0.32-0.53 and 0.10-0.32.
    one, four = airline.estimate(1), airline.estimate(4)
    assert one.pass_hat_low == pytest.approx(0.32, abs=0.02)
    assert one.pass_hat_high == pytest.approx(0.53, abs=0.02)
    assert four.pass_hat_low == pytest.approx(0.10, abs=0.02)
    assert four.pass_hat_high == pytest.approx(0.32, abs=0.02)
    for e in airline.estimates:
        assert e.pass_hat_low is not None and e.pass_hat_high is not None
        assert e.pass_at_low is not None and e.pass_at_high is not None
        assert e.pass_hat_low <= e.pass_hat <= e.pass_hat_high
        assert e.pass_at_low <= e.pass_at <= e.pass_at_high


def test_exact_small_cases() -> None:
    # Four trials, two passes, k = 2: 1 of the 6 pairs passes twice, 5 of 6 pass at least once.
    assert pass_hat_k(4, 2, 2) == pytest.approx(1 / 6)
    assert pass_at_k(4, 2, 2) == pytest.approx(5 / 6)
    assert pass_hat_k(4, 3, 3) == pytest.approx(1 / 4)
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_hat_k(5, 5, 5) == 1.0
    assert pass_at_k(5, 3, 3) == 1.0  # only two failures: any three trials include a pass
    assert pass_hat_k(10, 7, 1) == pytest.approx(0.7)
    assert pass_at_k(10, 7, 1) == pytest.approx(0.7)


def test_exact_for_large_counts() -> None:
    # Integers throughout: no overflow or cancellation where floats would lose everything.
    assert pass_hat_k(2000, 1999, 1000) == pytest.approx(0.5)
    assert pass_at_k(2000, 1, 1000) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("n", "c", "k", "message"),
    [
        (0, 0, 1, "n (trials) must be at least 1"),
        (4, 5, 1, "c (successes) must be between 0 and n=4"),
        (4, -1, 1, "c (successes)"),
        (4, 2, 0, "k must be between 1 and n=4"),
        (4, 2, 5, "k must be between 1 and n=4"),
        (4.0, 2, 1, "n must be an integer"),
        (4, True, 1, "c must be an integer"),
    ],
)
def test_invalid_counts(n: int, c: int, k: int, message: str) -> None:
    for f in (pass_at_k, pass_hat_k):
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            f(n, c, k)


def test_unequal_trial_counts_use_per_task_n_and_cap_k() -> None:
    report = pass_k_report({"a": [True, True], "b": [True, True, True, False]})
    assert report.max_k == 2
    assert report.unequal_trials
    # a: C(2,2)/C(2,2) = 1; b: C(3,2)/C(4,2) = 1/2. A single global n = 4 would give
    # C(2,2)/C(4,2) = 1/6 for a.
    assert report.pass_hat(2) == pytest.approx(0.75)
    assert report.pass_hat(1) == pytest.approx((1 + 0.75) / 2)
    assert len(report.notes) == 1
    assert "unequal trial counts (2 to 4)" in report.notes[0]
    assert "k stops at 2" in report.notes[0]
    with pytest.raises(ValueError, match=r"k=3 is not possible.*task 'a' has 2"):
        pass_k_report({"a": [True, True], "b": [True, True, True, False]}, ks=[3])


def test_labels_and_excluded_counts() -> None:
    report = pass_k_report(
        {"always": [True] * 3, "never": [False] * 3, "mixed": [True, False, True]},
        ks=[2, 1, 2],
        excluded={"infrastructure_error": 2, "timeout": 1},
        bootstrap=0,
    )
    assert [e.k for e in report.estimates] == [1, 2]
    assert [(t.task_id, t.label, t.flaky) for t in report.tasks] == [
        ("always", "pass", False),
        ("never", "fail", False),
        ("mixed", "flaky", True),
    ]
    assert report.tasks[2] == TaskOutcome(task_id="mixed", n=3, c=2)
    assert report.excluded == {"infrastructure_error": 2, "timeout": 1}
    assert report.n_excluded == 3
    assert report.notes == (
        "3 trials excluded and not counted as failures (infrastructure_error: 2, timeout: 1)",
    )
    assert report.estimate(1).pass_hat_low is None and report.estimate(2).pass_at_high is None
    with pytest.raises(KeyError, match="k=3"):
        report.estimate(3)


def test_bootstrap_is_seeded() -> None:
    outcomes = {str(i): [i % 3 == 0, i % 2 == 0, True] for i in range(20)}
    a = pass_k_report(outcomes, seed=7)
    b = pass_k_report(outcomes, seed=7)
    c = pass_k_report(outcomes, seed=8)
    assert a == b
    assert a.estimates != c.estimates


def test_bootstrap_in_blocks_for_many_tasks() -> None:
    # Many tasks force several resample blocks; the interval must stay sensible.
    outcomes = {str(i): [i % 2 == 0, i % 5 != 0] for i in range(3000)}
    report = pass_k_report(outcomes, bootstrap=600)
    e = report.estimate(1)
    assert e.pass_hat_low is not None and e.pass_hat_high is not None
    assert e.pass_hat_low < e.pass_hat < e.pass_hat_high
    assert e.pass_hat_high - e.pass_hat_low < 0.05


@pytest.mark.parametrize(
    ("outcomes", "kwargs", "message"),
    [
        ({}, {}, "no tasks"),
        ({"a": []}, {}, "task 'a' has no trials"),
        ({"a": [1.0, 0.0]}, {}, r"task 'a', trial 0: outcome must be True or False"),
        ({"a": "TF"}, {}, "sequence of booleans"),
        ({"a": [True]}, {"ks": []}, "ks is empty"),
        ({"a": [True]}, {"ks": [0]}, "k=0 is not possible"),
        ({"a": [True]}, {"confidence": 1.0}, "confidence must be between 0 and 1"),
        ({"a": [True]}, {"bootstrap": -1}, "bootstrap must be a non-negative integer"),
        ({"a": [True]}, {"excluded": {"x": -1}}, r"excluded\['x'\]"),
    ],
)
def test_invalid_reports(
    outcomes: Mapping[str, Sequence[bool]], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        pass_k_report(outcomes, **kwargs)  # type: ignore[arg-type]


def _by_enumeration(n: int, c: int, k: int) -> tuple[Fraction, Fraction]:
    trials = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(trials, k))
    all_pass = sum(all(s) for s in subsets)
    any_pass = sum(any(s) for s in subsets)
    return Fraction(all_pass, len(subsets)), Fraction(any_pass, len(subsets))


counts = st.integers(min_value=1, max_value=9).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(min_value=0, max_value=n))
)


@given(counts)
def test_matches_enumeration_of_trial_subsets(nc: tuple[int, int]) -> None:
    n, c = nc
    for k in range(1, n + 1):
        hat, at = _by_enumeration(n, c, k)
        assert pass_hat_k(n, c, k) == pytest.approx(float(hat), abs=1e-12)
        assert pass_at_k(n, c, k) == pytest.approx(float(at), abs=1e-12)


@given(counts)
def test_order_and_monotonicity_per_task(nc: tuple[int, int]) -> None:
    n, c = nc
    p1 = c / n
    hats = [pass_hat_k(n, c, k) for k in range(1, n + 1)]
    ats = [pass_at_k(n, c, k) for k in range(1, n + 1)]
    assert hats[0] == pytest.approx(p1) and ats[0] == pytest.approx(p1)
    for hat, at in zip(hats, ats, strict=True):
        assert 0.0 <= hat <= p1 + 1e-12
        assert p1 <= at + 1e-12 <= 1.0 + 1e-12
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(hats))
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(ats))


task_outcomes = st.dictionaries(
    st.text(min_size=1, max_size=4),
    st.lists(st.booleans(), min_size=1, max_size=8),
    min_size=1,
    max_size=10,
)


@given(task_outcomes)
def test_report_order_and_monotonicity(outcomes: dict[str, list[bool]]) -> None:
    report = pass_k_report(outcomes, bootstrap=50)
    assert report.max_k == min(len(v) for v in outcomes.values())
    p1 = report.pass_hat(1)
    assert p1 == pytest.approx(report.pass_at(1))
    assert p1 == pytest.approx(sum(sum(v) / len(v) for v in outcomes.values()) / len(outcomes))
    for e in report.estimates:
        assert 0.0 <= e.pass_hat <= p1 + 1e-12
        assert p1 <= e.pass_at + 1e-12 <= 1.0 + 1e-12
        assert e.pass_hat_low is not None and e.pass_hat_high is not None
        assert 0.0 <= e.pass_hat_low <= e.pass_hat_high <= 1.0
    for a, b in itertools.pairwise(report.estimates):
        assert b.pass_hat <= a.pass_hat + 1e-12
        assert b.pass_at >= a.pass_at - 1e-12
    assert report.flaky_tasks == sum(0 < sum(v) < len(v) for v in outcomes.values())
