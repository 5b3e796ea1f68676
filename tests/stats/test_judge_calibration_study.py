"""The judge-calibration study (bench/judge_calibration.py), under the slow marker.

The same scenarios, seeds and code path (``judge_rates``, behind ``convsim grade
--labels``) as the study in docs/statistics.md, so the documented table is this test's.
With R = 2,000 a coverage of 0.95 has a standard error of 0.005.
"""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

from convsim.testing import (
    CALIBRATION_SCENARIOS,
    calibration_replication,
    coverage_summary,
    true_rate,
)

REPS = 2000


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a study of minutes; the 300 s default is for unit tests
@pytest.mark.parametrize("k", range(len(CALIBRATION_SCENARIOS)))
def test_ppi_is_unbiased_and_covers_95_percent(k: int) -> None:
    with mp.get_context("fork").Pool(2) as pool:
        res = pool.starmap(calibration_replication, [(k, r) for r in range(REPS)], chunksize=50)
    sc = CALIBRATION_SCENARIOS[k]
    ppi = coverage_summary([r["ppi"] for r in res], true_rate(sc.cohorts))
    assert 0.94 <= ppi["coverage"] <= 0.96, (sc.name, ppi)
    assert abs(ppi["bias_sd"]) <= 0.1, (sc.name, ppi)
    if sc.by_cohort:
        # Read as a uniform sample, the same labels are biased: the strata matter.
        plain = coverage_summary([r["ppi_unstratified"] for r in res], true_rate(sc.cohorts))
        assert abs(plain["bias_sd"]) > 0.5
    assert np.isfinite(ppi["width"])
