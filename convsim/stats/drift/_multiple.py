"""Multiple-testing corrections: Holm for the paging family, Benjamini-Hochberg for drill-down.

A weekly report runs one test per score and cohort. Paging on raw p-values would raise a
false alarm somewhere almost every week, so the report splits its findings into families:

- the *primary* family (by default one all-cohorts finding per score) is corrected with
  Holm's step-down method, which keeps the chance of any false alarm at or below alpha;
- the *drill-down* family (per-cohort findings) is corrected with Benjamini-Hochberg,
  which keeps the expected share of false discoveries among the flagged cohorts at or
  below alpha: the right trade-off for a list someone reads after an alarm.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values: reject a finding at level alpha when its value is <= alpha.

    Args:
        p_values: Raw p-values in [0, 1].

    Returns:
        Adjusted p-values, in the input order.
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return [float(x) for x in out]


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values under independence or PRDS).

    Args:
        p_values: Raw p-values in [0, 1].

    Returns:
        Adjusted p-values, in the input order.
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return [float(x) for x in out]
